"""Algorithms from raw points to modes: cleaning, trip and section segmentation, features,
mode classification, transit (GTFS) matching and fusion with operator records.

Every function here is pure: DataFrames (tables of :mod:`emission_ext.schema`) in, DataFrames
out, parameters as arguments. No file, database, clock or global state.
"""
