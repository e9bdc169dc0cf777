"""Readers (raw phone/GPS files -> schema tables) and writers (tables -> CSV, GeoJSON,
GeoParquet, GeoPackage).

Why a package of its own: every way data enters or leaves the product as a file goes through
here, so the format quirks (e-mission's two dialects, CSV column aliases, GPX namespaces,
GeoLife's day numbers, GDAL's millisecond times) are handled once.

* :mod:`.readers` -- :func:`~.readers.read` / :func:`~.readers.read_many`, format detection;
* :mod:`.emission` -- e-mission timeseries entries (:func:`~.emission.entries_to_raw`, also used
  by the MongoDB store);
* :mod:`.csv_points`, :mod:`.gpx`, :mod:`.geolife` -- the other input formats;
* :mod:`.writers` -- :func:`~.writers.write_table` and :func:`~.writers.read_table`.
"""
