"""Stores behind one interface: the embedded Parquet store (default) and the e-mission
MongoDB store."""
