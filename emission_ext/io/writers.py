"""Tables -> files: CSV, GeoJSON, (Geo)Parquet and GeoPackage, written atomically.

Why: testers export their data, planners receive study extracts, analysts open results in QGIS
or pandas. One :func:`write_table` turns any schema table into the format each of them expects,
with the SPEC conventions fixed in one place:

* CSV: the section-3 column names, timestamps as unix seconds (float), geometry as WKT, text
  fields quoted (so "010" stays text), written by pyarrow's C++ CSV writer;
* GeoJSON: one feature per row, properties with ISO-8601 UTC timestamps;
* Parquet: GeoParquet (geopandas) when the table has a geometry, plain Parquet (pyarrow)
  otherwise; timestamps stay timezone-aware;
* GeoPackage (pyogrio): a layer named after the table, for trips and sections (any table with
  geometry, or with ``lat``/``lon`` as points); GDAL stores times to the millisecond, so they
  are rounded to the millisecond first.

Timestamp resolution kept: Parquet nanoseconds, CSV (float seconds) and GeoJSON (text rounded
to the microsecond) about a microsecond, GeoPackage a millisecond.

Geometry columns in tables hold WKB bytes (see :mod:`emission_ext.schema`). Tables without a
``geometry`` column but with ``lat``/``lon`` (points, places) get point geometries in GeoJSON
and GeoPackage. Every write goes to a temporary file in the target directory and is moved in
place with :func:`os.replace`, so a reader never sees half a file.

:func:`read_table` reads any of these files back into a schema-typed frame.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError

FORMATS = {".csv": "csv", ".geojson": "geojson", ".json": "geojson", ".parquet": "parquet",
           ".pq": "parquet", ".gpkg": "gpkg"}
CRS = "EPSG:4326"

__all__ = ["write_table", "write_csv_into", "geometry_wkt", "read_table", "format_from_path", "FORMATS"]


def format_from_path(path: str | Path, fmt: str | None = None) -> str:
    """The output format: ``fmt`` if given, else from the extension (.csv .geojson .parquet .gpkg)."""
    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        if fmt not in set(FORMATS.values()):
            raise InputError(str(path), f"unknown table format {fmt!r}; use csv, geojson, parquet "
                             "or gpkg", field="format")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(str(path), f"cannot tell the format from the extension {suffix!r}; "
                         "use .csv, .geojson, .parquet or .gpkg (or pass fmt)", field="format")
    return FORMATS[suffix]


@contextmanager
def _atomic(path: Path, suffix: str):
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # let the writer create it (GDAL refuses to open an empty file)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _geometry(df: pd.DataFrame):
    """A GeoSeries for ``df`` (from WKB ``geometry``, else ``lat``/``lon`` points) or None."""
    import geopandas as gpd

    if "geometry" in df.columns:
        return gpd.GeoSeries(_wkb_shapes(df), index=df.index, crs=CRS)
    if "lat" in df.columns and "lon" in df.columns:
        return gpd.GeoSeries(gpd.points_from_xy(df["lon"], df["lat"]), index=df.index, crs=CRS)
    return None


def _wkb_shapes(df: pd.DataFrame) -> np.ndarray:
    """The WKB ``geometry`` column as shapely geometries (None stays None), without geopandas
    (the CSV writer needs no CRS, and geopandas costs ~50 ms to import)."""
    return _shapes(df["geometry"], _name(df))


def _shapes(geometry, name: str) -> np.ndarray:
    """WKB values as shapely geometries (None stays None); bad WKB is a SchemaError of table
    ``name``."""
    import shapely

    wkb = np.asarray(geometry, dtype=object)
    wkb = np.where(pd.isna(wkb), None, wkb)
    try:
        return shapely.from_wkb(wkb)
    except shapely.errors.GEOSException as exc:
        raise schema.SchemaError(name, "geometry", f"invalid WKB: {exc}") from None


def _as_table(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """``df`` coerced to table ``table`` and validated, named. Not copied: a frame that
    already conforms comes back as it is (the writers only read it)."""
    df = schema.validate(schema.coerce(df, table, copy=False), table)
    df.attrs["table"] = table
    return df


def _name(df: pd.DataFrame) -> str:
    return str(df.attrs.get("table", "table"))


def _ts_columns(df: pd.DataFrame) -> list[str]:
    return [c for c, dt in df.dtypes.items() if isinstance(dt, pd.DatetimeTZDtype)
            or pd.api.types.is_datetime64_dtype(dt)]


def _iso(s: pd.Series) -> pd.Series:
    """ISO-8601 UTC text (``...Z``, microseconds only when present); NaT -> None."""
    s = s.dt.tz_convert("UTC") if isinstance(s.dtype, pd.DatetimeTZDtype) else s.dt.tz_localize("UTC")
    s = s.dt.round("us")  # %f would truncate
    whole = (s.dt.microsecond == 0) & (s.dt.nanosecond == 0)
    out = pd.Series(np.where(whole, s.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             s.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")), index=s.index, dtype=object)
    return out.where(s.notna(), None)


def _write_csv(df: pd.DataFrame, path, header: bool = True) -> None:
    """CSV with the shortest exact repr of every float; text fields are quoted. ``path``: the
    file to create.

    pyarrow's C++ writer is ~20x faster than ``DataFrame.to_csv`` on long WKT geometries; a
    column arrow cannot type (mixed Python objects) falls back to pandas.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        # one thread: tables of a few thousand rows convert faster than a pool starts
        tbl = pa.Table.from_pandas(df, preserve_index=False, nthreads=1)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        df.to_csv(path, index=False, header=header)
        return
    import csv
    import io

    names = io.StringIO()
    csv.writer(names, lineterminator="\n").writerow(tbl.column_names)  # arrow quotes every name
    with open(path, "wb") as fh:
        if header:
            fh.write(names.getvalue().encode("utf-8"))
        pacsv.write_csv(tbl, fh, pacsv.WriteOptions(include_header=False, quoting_style="needed"))


def _csv_frame(df: pd.DataFrame, wkt=None) -> pd.DataFrame:
    """``df`` as the CSV holds it: unix-second timestamps, WKT geometry (``wkt`` if given)."""
    out = df.copy()
    for c in _ts_columns(out):
        out[c] = schema.to_unix(out[c])
    if "geometry" in out.columns:
        if wkt is None:
            wkt = geometry_wkt(out["geometry"], _name(out))
        elif len(wkt) != len(out):
            raise ValueError(f"wkt: {len(wkt)} texts for {len(out)} rows")
        # straight into an Arrow string column (the CSV writer takes it as is): pandas' own
        # text column would check and convert every string first (~4x slower)
        import pyarrow as pa

        text = pa.array(np.asarray(wkt, dtype=object), type=pa.string(), from_pandas=True)
        out["geometry"] = pd.Series(pd.arrays.ArrowExtensionArray(text), index=out.index)
    return out


def geometry_wkt(geometry, name: str = "table") -> np.ndarray:
    """The WKT text the CSV writer gives a column of WKB geometries (object array; None
    stays None), for a caller that writes the same shapes into several tables (see ``wkt``
    of :func:`write_table`)."""
    import shapely

    return shapely.to_wkt(_shapes(geometry, name), rounding_precision=-1)


def write_table(df: pd.DataFrame, path: str | Path, fmt: str | None = None,
                table: str | None = None, header: bool = True, wkt=None) -> Path:
    """Write a table to CSV, GeoJSON, Parquet or GeoPackage, atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; a ``geometry`` column holds WKB bytes (or None).
    path : str or Path
        Destination; parent folders are created.
    fmt : {"csv", "geojson", "parquet", "gpkg"}, optional
        Default: from the extension.
    table : str, optional
        Schema table name (``trips``, ``sections``...). When given, the frame is coerced and
        validated against it first (columns in schema order, extra columns kept after them),
        and it names the GeoPackage layer.
    header : bool
        CSV only: write the header line (default). ``False`` writes rows only, for a part
        appended to another file (the ``process`` command's workers).
    wkt : array of str, optional
        CSV only: the ``geometry`` column already as WKT text, one per row in order, as
        :func:`geometry_wkt` makes it (a caller writing the same shapes into two tables
        formats them once; formatting is most of a CSV write).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InputError
        Unknown format.
    SchemaError
        ``df`` does not match ``table``, or holds invalid WKB.
    """
    path = Path(path)
    fmt = format_from_path(path, fmt)
    if table is not None:
        df = _as_table(df, table)
    if fmt == "csv":
        out = _csv_frame(df, wkt)
        with _atomic(path, ".csv") as tmp:
            _write_csv(out, tmp, header)
    elif fmt == "geojson":
        import geopandas as gpd

        out = df.copy()
        for c in _ts_columns(out):
            out[c] = _iso(out[c])
        geom = _geometry(out)
        props = out.drop(columns=["geometry"], errors="ignore")
        gdf = gpd.GeoDataFrame(props, geometry=geom if geom is not None else
                               gpd.GeoSeries([None] * len(out), index=out.index, crs=CRS), crs=CRS)
        text = gdf.to_json(na="null", drop_id=True, to_wgs84=False)
        with _atomic(path, ".geojson") as tmp:
            tmp.write_text(text, encoding="utf-8")
    elif fmt == "parquet":
        if "geometry" in df.columns:
            import geopandas as gpd

            gdf = gpd.GeoDataFrame(df.drop(columns=["geometry"]), geometry=_geometry(df), crs=CRS)
            with _atomic(path, ".parquet") as tmp:
                gdf.to_parquet(tmp, index=False)
        else:
            with _atomic(path, ".parquet") as tmp:
                df.to_parquet(tmp, index=False, engine="pyarrow")
    else:  # gpkg
        import geopandas as gpd

        geom = _geometry(df)
        layer = table or df.attrs.get("table") or path.stem
        df = df.copy()
        for c in _ts_columns(df):  # GDAL keeps milliseconds and truncates: round instead
            df[c] = df[c].dt.round("ms")
        with _atomic(path, ".gpkg") as tmp:
            if geom is None:
                import pyogrio

                pyogrio.write_dataframe(df, tmp, layer=layer, driver="GPKG")
            else:
                gdf = gpd.GeoDataFrame(df.drop(columns=["geometry"], errors="ignore"),
                                       geometry=geom, crs=CRS)
                gdf.to_file(tmp, layer=layer, driver="GPKG", engine="pyogrio")
    return path


def read_table(path: str | Path, table: str | None = None, fmt: str | None = None) -> pd.DataFrame:
    """Read a file written by :func:`write_table` back into a frame.

    Timestamps become ``datetime64[ns, UTC]`` (unix seconds in CSV, ISO-8601 text in GeoJSON),
    geometry becomes WKB bytes again (dropped when it was only made from ``lat``/``lon``).
    With ``table``, the result is coerced and validated against that schema table.
    """
    import geopandas as gpd
    import shapely

    path = Path(path)
    fmt = format_from_path(path, fmt)
    if not path.exists():
        raise InputError(str(path), "file not found")
    t = schema.table(table) if table else None
    ts_cols = [c.name for c in t.columns if c.dtype == schema.UTC_TS] if t else []
    str_cols = {c.name: str for c in t.columns if c.dtype == schema.STR} if t else {}
    if fmt == "csv":
        df = pd.read_csv(path, dtype=str_cols, keep_default_na=True)
        if "geometry" in df.columns:
            wkt = df["geometry"].to_numpy(dtype=object)
            missing = pd.isna(wkt)
            wkb = shapely.to_wkb(shapely.from_wkt(np.where(missing, None, wkt)))
            df["geometry"] = pd.Series(np.where(missing, None, wkb), index=df.index, dtype=object)
    elif fmt == "parquet":
        try:
            gdf = gpd.read_parquet(path)
            df = _from_gdf(gdf, t)
        except ValueError:  # plain Parquet without geo metadata
            df = pd.read_parquet(path)
    else:
        import pyogrio

        # timestamps as text: GDAL's own parsing would round them to milliseconds
        opts = {"DATE_AS_STRING": "YES"} if fmt == "geojson" else {}
        gdf = pyogrio.read_dataframe(path, datetime_as_string=True, **opts)
        df = _from_gdf(gdf, t)
        for c in df.columns:
            if c in str_cols and df[c].dtype != object:
                df[c] = df[c].astype(object).where(df[c].notna(), None)
    for c in ts_cols:
        if c in df.columns and not pd.api.types.is_numeric_dtype(df[c].dtype) \
                and not isinstance(df[c].dtype, pd.DatetimeTZDtype):
            df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
    if t is not None:
        if len(df) == 0:  # an empty GeoJSON has no properties to name the columns
            return schema.empty(t.name)
        df = schema.validate(schema.coerce(df, t.name), t.name)
    return df


def _from_gdf(gdf, t) -> pd.DataFrame:
    """GeoDataFrame -> frame with WKB ``geometry`` only where the table declares one."""
    import shapely

    df = pd.DataFrame(gdf.drop(columns=[gdf.geometry.name]))
    if t is None or "geometry" in t.names:
        g = gdf.geometry.to_numpy()
        wkb = shapely.to_wkb(g)
        df["geometry"] = pd.Series(np.where(pd.isna(g), None, wkb), index=df.index, dtype=object)
    return df

