"""Readers (raw phone/GPS files -> schema tables) and writers (tables -> CSV, GeoJSON,
GeoParquet, GeoPackage)."""
