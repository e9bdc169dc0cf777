"""Writers: round trips through CSV, GeoJSON, (Geo)Parquet and GeoPackage; atomic writes."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from emission_ext import schema
from emission_ext.errors import InputError, SchemaError
from emission_ext.io import writers
from emission_ext.io.readers import read
from emission_ext.io.writers import read_table, write_table
from emission_ext.reference import emission_real_days

FORMATS = ("csv", "geojson", "parquet", "gpkg")


def _wkb(coords):
    return shapely.to_wkb(shapely.LineString(coords))


def _trips() -> pd.DataFrame:
    return schema.coerce(pd.DataFrame({
        "user_id": ["010", "010", "011"], "trip_id": ["t1", "t2", "t1"],
        "start_ts": [1.7e9, 1.7e9 + 3600.5, 1.7e9 + 100], "end_ts": [1.7e9 + 600, 1.7e9 + 4000, 1.7e9 + 900],
        "start_lat": [46.15, 46.16, 46.14], "start_lon": [-1.15, -1.14, -1.16],
        "end_lat": [46.16, 46.15, 46.15], "end_lon": [-1.14, -1.15, -1.15],
        "start_place_id": ["p1", None, "p9"], "end_place_id": ["p2", "p1", None],
        "distance_m": [1500.0, 1400.0, 2100.25], "duration_s": [600.0, 399.5, 800.0],
        "geometry": [_wkb([(-1.15, 46.15), (-1.145, 46.155), (-1.14, 46.16)]), None,
                     _wkb([(-1.16, 46.14), (-1.15, 46.15)])],
        "origin": ["gps", "gps", "record"], "tz": ["Europe/Paris"] * 3,
    }), "trips")


def _sections() -> pd.DataFrame:
    return schema.coerce(pd.DataFrame({
        "user_id": ["010", "010"], "trip_id": ["t1", "t1"], "section_id": ["s1", "s2"],
        "start_ts": [1.7e9, 1.7e9 + 300], "end_ts": [1.7e9 + 300, 1.7e9 + 600],
        "distance_m": [400.0, 1100.0], "duration_s": [300.0, 300.0], "mode": ["WALKING", "BUS"],
        "mode_confidence": [0.9, np.nan], "mode_source": ["classifier", "yelo"],
        "sensed_mode": [None, "CAR"],
        "geometry": [_wkb([(-1.15, 46.15), (-1.145, 46.155)]), _wkb([(-1.145, 46.155), (-1.14, 46.16)])],
    }), "sections")


#: Timestamp resolution each format keeps: CSV floats and GeoJSON text keep microseconds,
#: GeoPackage (GDAL) keeps milliseconds, Parquet keeps nanoseconds.
RESOLUTION_S = {"csv": 1e-6, "geojson": 1e-6, "gpkg": 1e-3, "parquet": 0.0}


def _same(back: pd.DataFrame, want: pd.DataFrame, fmt: str = "parquet") -> None:
    back = back[want.columns].copy()
    want = want.copy()
    for c in want.columns:
        if isinstance(want[c].dtype, pd.DatetimeTZDtype):
            np.testing.assert_allclose(schema.to_unix(back[c]), schema.to_unix(want[c]),
                                       rtol=0, atol=RESOLUTION_S[fmt] + 1e-9, err_msg=c)
            back[c] = want[c]
    pd.testing.assert_frame_equal(back, want, check_dtype=False, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("fmt", FORMATS)
def test_trips_round_trip(tmp_path, fmt):
    trips = _trips()
    path = write_table(trips, tmp_path / f"trips.{fmt}", table="trips")
    back = read_table(path, table="trips")
    _same(back, trips, fmt)
    assert back["user_id"].tolist() == ["010", "010", "011"]
    assert back["geometry"].iloc[1] is None
    assert shapely.from_wkb(back["geometry"].iloc[0]).equals(shapely.from_wkb(trips["geometry"].iloc[0]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_sections_round_trip(tmp_path, fmt):
    sec = _sections()
    back = read_table(write_table(sec, tmp_path / f"s.{fmt}", table="sections"), table="sections")
    _same(back, sec, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_real_points_round_trip(tmp_path, fmt):
    pts = read(emission_real_days()[0]).points
    back = read_table(write_table(pts, tmp_path / f"p.{fmt}", table="points"), table="points")
    _same(back, pts, fmt)
    if fmt == "parquet":
        pd.testing.assert_series_equal(back["ts"], pts["ts"])  # exact


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("table", ["trips", "points"])
def test_empty_tables_round_trip(tmp_path, fmt, table):
    back = read_table(write_table(schema.empty(table), tmp_path / f"e.{fmt}", table=table),
                      table=table)
    assert len(back) == 0 and list(back.columns[: len(schema.table(table).names)]) == \
        schema.table(table).names


def test_csv_layout(tmp_path):
    path = write_table(_trips(), tmp_path / "trips.csv", table="trips")
    df = pd.read_csv(path, dtype=str)
    assert list(df.columns) == schema.TRIPS.names
    assert float(df["start_ts"].iloc[1]) == 1.7e9 + 3600.5  # unix seconds, fraction kept
    assert df["geometry"].iloc[0].startswith("LINESTRING (-1.15 46.15")
    assert pd.isna(df["geometry"].iloc[1])


def test_geojson_layout(tmp_path):
    path = write_table(_trips(), tmp_path / "trips.geojson", table="trips")
    doc = json.loads(path.read_text())
    f0, f1 = doc["features"][:2]
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 3
    assert f0["geometry"]["type"] == "LineString"
    assert f0["geometry"]["coordinates"][0] == [-1.15, 46.15]
    assert f1["geometry"] is None
    assert f0["properties"]["start_ts"] == "2023-11-14T22:13:20Z"
    assert f1["properties"]["start_ts"] == "2023-11-14T23:13:20.500000Z"
    assert f1["properties"]["start_place_id"] is None and f0["properties"]["user_id"] == "010"


def test_points_get_point_geometry_in_geojson_and_gpkg(tmp_path):
    import geopandas as gpd

    pts = read(emission_real_days()[0]).points.head(5)
    doc = json.loads(write_table(pts, tmp_path / "p.geojson", table="points").read_text())
    assert doc["features"][0]["geometry"] == {
        "type": "Point", "coordinates": [pts["lon"].iloc[0], pts["lat"].iloc[0]]}
    g = gpd.read_file(write_table(pts, tmp_path / "p.gpkg", table="points"))
    assert g.geometry.geom_type.unique().tolist() == ["Point"]
    assert g.crs.to_epsg() == 4326


def test_parquet_is_geoparquet_only_with_geometry(tmp_path):
    geo = write_table(_trips(), tmp_path / "t.parquet", table="trips")
    plain = write_table(read(emission_real_days()[0]).points, tmp_path / "p.parquet")
    assert b"geo" in pq.read_schema(geo).metadata
    assert b"geo" not in (pq.read_schema(plain).metadata or {})
    assert str(pd.read_parquet(plain)["ts"].dtype) == schema.UTC_TS


def test_gpkg_layer_named_after_table(tmp_path):
    import pyogrio

    path = write_table(_trips(), tmp_path / "out.gpkg", table="trips")
    assert [row[0] for row in pyogrio.list_layers(path)] == ["trips"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = write_table(_trips(), tmp_path / "trips.csv", table="trips")
    before = path.read_bytes()

    import pyarrow.csv as pacsv

    def broken(table, target, *a, **k):
        target.write(b"user_id,trip")  # half a file, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(pacsv, "write_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        write_table(_trips().head(1), path, table="trips")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["trips.csv"]  # no temporary file left behind


def test_parent_folders_created_and_format_forced(tmp_path):
    path = write_table(_sections(), tmp_path / "a" / "b" / "sections.txt", fmt="csv")
    assert path.exists() and path.read_text().startswith("user_id,trip_id,section_id")


def test_bad_format_and_bad_table(tmp_path):
    with pytest.raises(InputError, match="extension"):
        write_table(_trips(), tmp_path / "t.xlsx")
    with pytest.raises(InputError, match="unknown table format"):
        write_table(_trips(), tmp_path / "t.csv", fmt="xlsx")
    bad = _trips().drop(columns=["distance_m"])
    with pytest.raises(SchemaError, match="distance_m"):
        write_table(bad, tmp_path / "t.csv", table="trips")
    assert not (tmp_path / "t.csv").exists()


def test_invalid_wkb_is_a_schema_error(tmp_path):
    bad = _trips()
    bad["geometry"] = [b"not wkb", None, None]
    with pytest.raises(SchemaError, match="geometry"):
        write_table(bad, tmp_path / "t.parquet", table="trips")


def test_format_from_path():
    assert writers.format_from_path("x/y.GeoJSON") == "geojson"
    assert writers.format_from_path("y.gpkg") == "gpkg"
    assert writers.format_from_path("y.bin", "parquet") == "parquet"


def test_csv_with_given_wkt_is_the_same_file(tmp_path):
    trips = _trips()
    write_table(trips, tmp_path / "a.csv", table="trips")
    write_table(trips, tmp_path / "b.csv", table="trips",
                wkt=writers.geometry_wkt(trips["geometry"]))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    with pytest.raises(ValueError):
        write_table(trips, tmp_path / "c.csv", table="trips", wkt=["x"])


def test_process_shares_a_trips_text_only_with_sections_of_the_same_shape():
    from emission_ext.commands.process import shared_wkt

    trips = _trips()
    secs = pd.concat([_sections(), _sections().iloc[:1].assign(
        trip_id="t1", user_id="011", section_id="s3", geometry=[trips["geometry"].iloc[2]])],
        ignore_index=True)
    # s3: same trip id as 010's t1, the shape of 011's: its text follows its own bytes; s4:
    # the whole of its trip's shape (text reused); s5: no shape
    secs = pd.concat([secs, secs.iloc[:2].assign(section_id=["s4", "s5"],
                                                 geometry=[trips["geometry"].iloc[0], None])],
                     ignore_index=True)
    got = shared_wkt(trips, secs)
    assert list(got["trips"]) == list(writers.geometry_wkt(trips["geometry"]))
    assert list(got["sections"]) == list(writers.geometry_wkt(secs["geometry"]))
    assert got["sections"][3] is got["trips"][0] and got["sections"][4] is None
