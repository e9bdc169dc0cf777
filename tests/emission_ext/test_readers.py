"""Readers: real e-mission days, hand-made CSV/GPX/PLT files, phone payload shapes, broken input.

Every broken-input test checks that the one-line message names the file, the line (or JSON
entry) and the field, and that ``skip_bad`` counts and lists what it dropped.
"""
from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emission_ext import schema
from emission_ext.errors import EmissionExtError, InputError
from emission_ext.io.emission import entries_to_raw, normalise_user_id
from emission_ext.io.readers import RawData, detect_format, read, read_many
from emission_ext.reference import emission_real_days

HERE = Path(__file__).resolve().parents[1] / "data" / "readers"
DAYS = emission_real_days()


def _entries(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return json.load(fh)


def _check_tables(raw: RawData) -> None:
    for name in ("points", "motion", "transitions"):
        df = getattr(raw, name)
        schema.validate(df, name)
        assert list(df.columns[: len(schema.table(name).names)]) == schema.table(name).names
        assert df["ts"].is_monotonic_increasing or df["user_id"].nunique() > 1


# ---------------------------------------------------------------- real e-mission days

@pytest.mark.parametrize("path", DAYS, ids=[p.name for p in DAYS])
def test_real_day_counts_match_the_entries(path):
    entries = _entries(path)
    raw = read(path)
    _check_tables(raw)
    keys = Counter(e["metadata"]["key"] for e in entries)
    # points come from filtered_location when present: as many as distinct fix times there
    loc_key = "background/filtered_location" if keys["background/filtered_location"] else \
        "background/location"
    want_ts = {e["data"]["ts"] for e in entries if e["metadata"]["key"] == loc_key}
    assert len(raw.points) == len(want_ts) > 0
    assert len(raw.transitions) > 0
    if keys["background/motion_activity"]:
        assert len(raw.motion) > 0
        assert raw.motion["activity"].isin(schema.ACTIVITIES).all()
        assert raw.motion["confidence"].between(0, 100).all()
    # one user, the hex of the $uuid; time zone from the phone entries' metadata
    uid = {e["user_id"]["$uuid"] for e in entries}
    assert raw.users == sorted(uid)
    phone_tz = Counter(e["metadata"]["time_zone"] for e in entries
                       if e["metadata"].get("platform") in ("android", "ios"))
    assert raw.tz == {next(iter(uid)): phone_tz.most_common(1)[0][0]}
    # timestamps are the entries' own (UTC), not write times
    lo = min(want_ts)
    assert abs(schema.to_unix(raw.points["ts"]).min() - lo) < 1e-3
    assert raw.skipped == 0 and raw.problems == []


def test_real_days_cover_android_and_ios():
    sources = set()
    for p in DAYS:
        sources |= set(read(p).points["source"])
    assert sources == {"android", "ios"}


def test_ios_server_codes_normalised():
    raw = read(next(p for p in DAYS if p.name.startswith("iphone")))
    assert set(raw.points["source"]) == {"ios"}
    # type 9 (NONE: every flag false) -> UNKNOWN; 3 -> STILL; 0 -> IN_VEHICLE
    counts = raw.motion["activity"].value_counts()
    assert {"UNKNOWN", "STILL", "IN_VEHICLE", "WALKING"} <= set(counts.index)
    assert "TRIP_STARTED" in set(raw.transitions["transition"])  # iOS-only code 6


def test_locations_raw_uses_background_location():
    path = next(p for p in DAYS if p.name.startswith("shankari_2016-01-12"))
    entries = _entries(path)
    n_raw = len({e["data"]["ts"] for e in entries if e["metadata"]["key"] == "background/location"})
    n_f = len({e["data"]["ts"] for e in entries
               if e["metadata"]["key"] == "background/filtered_location"})
    assert n_raw != n_f
    assert len(read(path, locations="raw").points) == n_raw
    assert len(read(path).points) == n_f


def test_user_id_argument_overrides_uuid():
    raw = read(DAYS[0], user_id="010")
    assert raw.users == ["010"] and raw.tz == {"010": "America/Los_Angeles"}


def test_plain_json_equals_gzip(tmp_path):
    plain = tmp_path / "day.json"
    plain.write_text(json.dumps(_entries(DAYS[0])))
    a, b = read(plain), read(DAYS[0])
    pd.testing.assert_frame_equal(a.points, b.points)
    pd.testing.assert_frame_equal(a.motion, b.motion)


# ---------------------------------------------------------------- phone payload shapes

UUID_DASHED = "0763de67-f61e-3f5d-90e7-518e69793954"
UUID_HEX = "0763de67f61e3f5d90e7518e69793954"


def _e(key, data, platform="android", user=None, write_ts=1.7e9, tz="Europe/Paris"):
    return {"_id": {"$oid": "0" * 24}, "user_id": user if user is not None else {"$uuid": UUID_HEX},
            "metadata": {"key": key, "platform": platform, "write_ts": write_ts, "time_zone": tz,
                         "type": "sensor-data"},
            "data": data}


def _loc(ts, lat=46.15, lon=-1.15, key="background/location", **kw):
    return _e(key, {"ts": ts, "latitude": lat, "longitude": lon, "accuracy": 10.0,
                    "sensed_speed": 1.0, "bearing": 90}, **kw)


def test_android_and_ios_payloads_normalised():
    entries = [
        _e("background/motion_activity", {"agb": 0, "agc": 87}, write_ts=1.7e9 + 1),
        _e("background/activity", {"zzbhB": 1, "zzbhC": 60}, write_ts=1.7e9 + 2),  # old key
        _e("statemachine/transition", {"currState": "local.state.ongoing_trip",
                                       "transition": "local.transition.stopped_moving"},
           write_ts=1.7e9 + 3),
        # iOS user: boolean flags, confidence levels, T_ transitions, dashed uuid
        _e("background/motion_activity", {"ts": 1.7e9 + 10, "stationary": True, "automotive": True,
                                          "walking": False, "running": False, "cycling": False,
                                          "unknown": False, "confidence": "high"},
           platform="ios", user="11111111-2222-3333-4444-555555555555"),
        _e("background/motion_activity", {"ts": 1.7e9 + 11, "stationary": False, "automotive": False,
                                          "walking": False, "running": False, "cycling": False,
                                          "unknown": False, "confidence": "low"},
           platform="ios", user="11111111-2222-3333-4444-555555555555"),
        _e("background/motion_activity", {"ts": 1.7e9 + 12, "walking": True, "stationary": False,
                                          "automotive": False, "running": False, "cycling": False,
                                          "unknown": False, "confidence": "medium"},
           platform="ios", user="11111111-2222-3333-4444-555555555555"),
        _e("statemachine/transition", {"transition": "T_TRIP_ENDED",
                                       "currState": "STATE_WAITING_FOR_TRIP_START"},
           platform="ios", user="11111111-2222-3333-4444-555555555555", write_ts=1.7e9 + 13),
        _e("statemachine/transition", {"transition": "T_VISIT_STARTED", "ts": 1.7e9 + 14},
           platform="ios", user="11111111-2222-3333-4444-555555555555"),
        _loc(1.7e9 + 20, platform="ios", user="11111111-2222-3333-4444-555555555555"),
        _loc(1.7e12 + 21000),  # milliseconds
        _e("background/battery", {"battery_level_pct": 50}),  # ignored key
    ]
    raw = entries_to_raw(entries, "payloads")
    ios = "11111111222233334444555555555555"
    assert raw.users == sorted([UUID_HEX, ios])
    m = raw.motion.set_index(["user_id"])
    assert m.loc[UUID_HEX, "activity"].tolist() == ["IN_VEHICLE", "ON_BICYCLE"]
    assert m.loc[UUID_HEX, "confidence"].tolist() == [87.0, 60.0]
    assert m.loc[ios, "activity"].tolist() == ["IN_VEHICLE", "UNKNOWN", "WALKING"]
    assert m.loc[ios, "confidence"].tolist() == [100.0, 50.0, 75.0]
    t = raw.transitions.set_index("user_id")["transition"]
    assert t.loc[UUID_HEX] == "STOPPED_MOVING"
    assert t.loc[ios].tolist() == ["STOPPED_MOVING", "VISIT_STARTED"]
    # a transition without data.ts takes metadata.write_ts, as e-mission does
    assert schema.to_unix(raw.transitions["ts"]).tolist()[0] == pytest.approx(1.7e9 + 3)
    p = raw.points.set_index("user_id")
    assert p.loc[UUID_HEX, "source"] == "android" and p.loc[ios, "source"] == "ios"
    assert schema.to_unix(raw.points["ts"]).max() == pytest.approx(1.7e9 + 21)
    assert raw.tz == {UUID_HEX: "Europe/Paris", ios: "Europe/Paris"}


def test_user_id_forms_give_one_hex_id():
    import base64
    import uuid

    u = uuid.UUID(UUID_DASHED)
    forms = [{"$uuid": UUID_HEX}, UUID_DASHED, UUID_HEX.upper(), u, u.bytes,
             {"$binary": {"base64": base64.b64encode(u.bytes).decode(), "subType": "04"}}]
    assert {normalise_user_id(f) for f in forms} == {UUID_HEX}
    assert normalise_user_id("010") == "010"


def test_duplicates_dropped_and_counted():
    a = _loc(1.7e9, key="background/filtered_location")
    entries = [a, json.loads(json.dumps(a)), _loc(1.7e9 + 30, key="background/filtered_location")]
    raw = entries_to_raw(entries, "dup")
    assert len(raw.points) == 2 and raw.duplicates == 1


def test_filtered_preferred_per_user():
    other = {"$uuid": "f" * 32}
    entries = [_loc(1.7e9, key="background/location"),
               _loc(1.7e9 + 5, key="background/filtered_location"),
               _loc(1.7e9 + 9, key="background/location", user=other)]
    raw = entries_to_raw(entries, "mixed")
    got = dict(zip(raw.points["user_id"], schema.to_unix(raw.points["ts"])))
    assert got == {UUID_HEX: pytest.approx(1.7e9 + 5), "f" * 32: pytest.approx(1.7e9 + 9)}


def test_loc_geojson_coordinates_and_ios_minus_one():
    e = _e("background/location", {"ts": 1.7e9, "loc": {"type": "Point", "coordinates": [-1.15, 46.15]},
                                   "accuracy": -1, "sensed_speed": -1, "heading": -1},
           platform="ios")
    p = entries_to_raw([e], "x").points.iloc[0]
    assert (p["lat"], p["lon"]) == (46.15, -1.15)
    assert np.isnan(p["accuracy_m"]) and np.isnan(p["speed_mps"]) and np.isnan(p["heading"])


# ---------------------------------------------------------------- broken e-mission input

def _write_json(tmp_path, entries, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(entries, indent=1))
    return path


def test_truncated_json_names_file_and_line(tmp_path):
    text = json.dumps(_entries(DAYS[0])[:20], indent=1)
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(InputError) as exc:
        read(path)
    assert str(path) in str(exc.value) and "invalid JSON" in str(exc.value)
    assert exc.value.line is not None and exc.value.line > 1
    assert f"line {exc.value.line}" in str(exc.value)


def test_truncated_gzip(tmp_path):
    data = DAYS[0].read_bytes()
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.json.gz"):
        read(path)


def test_not_an_array(tmp_path):
    path = tmp_path / "obj.json"
    for doc in ('"hello"', '{"a": 1}'):
        path.write_text(doc)
        with pytest.raises(InputError, match="expected a JSON array"):
            read(path)


def test_single_entry_and_upload_body(tmp_path):
    one, body = tmp_path / "one.json", tmp_path / "body.json"
    one.write_text(json.dumps(_loc(1.7e9)))
    body.write_text(json.dumps({"user": "x", "phone_to_server": [_loc(1.7e9), _loc(1.7e9 + 9)]}))
    assert len(read(one).points) == 1 and len(read(body).points) == 2


@pytest.mark.parametrize("data, field, words", [
    ({"ts": 1.7e9, "latitude": float("nan"), "longitude": -1.15}, "data.latitude", "NaN"),
    ({"ts": 1.7e9, "latitude": 46.1, "longitude": 181.0}, "data.longitude", "outside"),
    ({"ts": 1.7e9, "latitude": 91.0, "longitude": -1.1}, "data.latitude", "outside"),
    ({"ts": 1.7e9, "longitude": -1.15}, "data.latitude", "missing"),
    ({"ts": "yesterday", "latitude": 46.1, "longitude": -1.1}, "data.ts", "not a number"),
    ({"latitude": 46.1, "longitude": -1.1}, "data.ts", "missing timestamp"),
])
def test_bad_location_entry_named(tmp_path, data, field, words):
    entries = [_loc(1.7e9 - 10), _loc(1.7e9 - 5), _e("background/location", data), _loc(1.7e9 + 10)]
    path = _write_json(tmp_path, entries)
    with pytest.raises(InputError) as exc:
        read(path)
    err = exc.value
    assert (err.path, err.line, err.field, err.unit) == (str(path), 2, field, "entry")
    assert f"{path}, entry 2, field '{field}'" in str(err) and words in str(err)
    raw = read(path, skip_bad=True)
    assert raw.skipped == 1 and len(raw.points) == 3
    assert [(p.line, p.field) for p in raw.problems] == [(2, field)]


def test_bad_motion_and_transition_codes(tmp_path):
    entries = [_e("background/motion_activity", {"ts": 1.7e9, "type": 42, "confidence": 50}),
               _e("statemachine/transition", {"ts": 1.7e9, "transition": 99}),
               _e("background/motion_activity", {"ts": 1.7e9 + 1, "type": 3, "confidence": 150}),
               {"data": {}},
               _e("background/motion_activity", {"ts": 1.7e9 + 2, "type": 3, "confidence": 90})]
    path = _write_json(tmp_path, entries)
    with pytest.raises(InputError, match=r"entry 0, field 'data.type': unknown motion activity 42"):
        read(path)
    raw = read(path, skip_bad=True)
    assert raw.skipped == 4 and len(raw.motion) == 1
    assert [(p.line, p.field) for p in raw.problems] == [
        (0, "data.type"), (1, "data.transition"), (2, "data.confidence"), (3, "metadata.key")]


def test_missing_platform_is_inferred_from_filter_or_reported():
    e = _loc(1.7e9)
    del e["metadata"]["platform"]
    with pytest.raises(InputError, match="metadata.platform"):
        entries_to_raw([e], "x")
    e["data"]["filter"] = "distance"
    assert entries_to_raw([e], "x").points["source"].tolist() == ["ios"]


# ---------------------------------------------------------------- CSV

def test_csv_fixture():
    raw = read(HERE / "points.csv")
    p = raw.points
    _check_tables(raw)
    assert p["user_id"].tolist() == ["010", "010", "010", "011"]  # leading zeros kept
    np.testing.assert_allclose(schema.to_unix(p["ts"]),
                               [1763623800, 1763623815, 1763623830, 1763623800])
    assert p["accuracy_m"].tolist()[:2] == [6.0, 4.0] and np.isnan(p["accuracy_m"].iloc[2])
    assert np.isnan(p["speed_mps"].iloc[2])  # -1 = unknown
    assert set(p["source"]) == {"csv"} and raw.tz == {"010": "Europe/Paris", "011": "Europe/Paris"}


def test_csv_aliases_semicolon_and_user_argument(tmp_path):
    path = tmp_path / "fr.csv"
    path.write_text("Latitude;Lng;Timestamp;accuracy_m\n46.1;-1.1;1700000000;5\n46.2;-1.2;1700000060;7\n")
    raw = read(path, user_id="007")
    assert raw.points["user_id"].tolist() == ["007", "007"]
    assert raw.points["lon"].tolist() == [-1.1, -1.2]


def test_csv_semicolon_with_decimal_commas(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("user_id;ts;lat;lon;accuracy\n010;1700000000;46,15;-1,15;5,5\n"
                    "010;1700000060;46.16;-1.14;6\n")
    p = read(path).points
    assert p["lat"].tolist() == [46.15, 46.16] and p["accuracy_m"].tolist() == [5.5, 6.0]


def _csv(tmp_path, body, name="bad.csv"):
    path = tmp_path / name
    path.write_text(body)
    return path


def test_csv_missing_column(tmp_path):
    path = _csv(tmp_path, "user_id,ts,lat\n1,1700000000,46.1\n")
    with pytest.raises(InputError) as exc:
        read(path)
    assert (exc.value.line, exc.value.field) == (1, "lon")
    assert str(path) in str(exc.value) and "missing column lon" in str(exc.value)


@pytest.mark.parametrize("row, field, words", [
    ("u,not-a-date,46.1,-1.1", "ts", "bad timestamp 'not-a-date'"),
    ("u,,46.1,-1.1", "ts", "missing timestamp"),
    ("u,1700000030,NaN,-1.1", "lat", "NaN"),
    ("u,1700000030,46.1,", "lon", "missing"),
    ("u,1700000030,46.1,200", "lon", "outside [-180, 180]"),
    ("u,1700000030,-95,-1.1", "lat", "outside [-90, 90]"),
    ("u,1700000030,46.1,-1.1,-3", "accuracy", "negative accuracy"),
    (",1700000030,46.1,-1.1", "user_id", "missing user id"),
])
def test_csv_bad_row_named(tmp_path, row, field, words):
    path = _csv(tmp_path, f"user_id,ts,lat,lon,accuracy\nu,1700000000,46.1,-1.1,5\n\n{row}\n"
                          "u,1700000090,46.2,-1.2,5\n")
    with pytest.raises(InputError) as exc:
        read(path)
    err = exc.value
    assert (err.line, err.field) == (4, field)  # header=1, blank line 3 keeps numbering exact
    assert f"{path}, line 4, field '{field}'" in str(err) and words in str(err)
    raw = read(path, skip_bad=True)
    assert raw.skipped == 1 and len(raw.points) == 2 and raw.problems[0].line == 4


def test_csv_skip_bad_lists_every_row(tmp_path):
    rows = ["u,1700000000,46.1,-1.1", "u,x,46.1,-1.1", "u,1700000020,nan,-1.1",
            "u,1700000030,46.1,-1.1", "u,1700000040,46.1,999"]
    path = _csv(tmp_path, "user_id,ts,lat,lon\n" + "\n".join(rows) + "\n")
    raw = read(path, skip_bad=True)
    assert raw.skipped == 3 and len(raw.points) == 2
    assert [(p.line, p.field) for p in raw.problems] == [(3, "ts"), (4, "lat"), (6, "lon")]


def _messy_clean_csv(tmp_path):
    """A valid CSV the pyarrow fast path takes: unsorted, repeated rows, gaps in optional
    columns, ids with leading zeros and spaces, -1 speeds, milliseconds."""
    rng = np.random.default_rng(4)
    n = 3000
    df = pd.DataFrame({"user": rng.choice(["007", " 010", "2"], n),
                       "time": 1.7e9 + rng.uniform(0, 86400, n).round(3),
                       "latitude": 46.1 + rng.normal(0, 0.01, n),
                       "lng": -1.1 + rng.normal(0, 0.01, n),
                       "acc": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(3, 50, n)),
                       "speed": np.where(rng.random(n) < 0.1, -1.0, rng.uniform(0, 20, n)),
                       "extra": "x"})
    df.loc[::7, "time"] *= 1000  # milliseconds
    df = pd.concat([df, df.iloc[:50]])  # exact repeats
    path = tmp_path / "messy.csv"
    df.to_csv(path, index=False)
    return path


def test_csv_fast_path_equals_pandas_path(tmp_path, monkeypatch):
    from emission_ext.io import csv_points

    path = _messy_clean_csv(tmp_path)
    fast = read(path)
    # the fast path never called pandas' parser
    monkeypatch.setattr(csv_points.pd, "read_csv", lambda *a, **k: 1 / 0)
    assert read(path).points.equals(fast.points)
    monkeypatch.undo()
    monkeypatch.setattr(csv_points, "read_arrow", lambda *a, **k: None)
    slow = read(path)
    pd.testing.assert_frame_equal(fast.points, slow.points)
    assert (fast.duplicates, fast.skipped, fast.tz) == (slow.duplicates, slow.skipped, slow.tz)
    assert sorted(fast.points["user_id"].unique()) == ["007", "010", "2"]


def test_csv_prefetch_gives_the_same_points(tmp_path):
    from emission_ext.io.csv_points import Prefetch, read_csv_points

    path = _messy_clean_csv(tmp_path)
    pd.testing.assert_frame_equal(read_csv_points(path, prefetch=Prefetch(path)).points,
                                  read(path).points)
    bad = _csv(tmp_path, "user_id,ts,lat,lon\nu,1700000000,46.1,-1.1\n\nu,1700000030,46.1,200\n")
    with pytest.raises(InputError) as exc:  # parsed by pyarrow, reported from pandas' lines
        read_csv_points(bad, prefetch=Prefetch(bad))
    assert (exc.value.line, exc.value.field) == (4, "lon")


def test_empty_csv(tmp_path):
    with pytest.raises(InputError, match="empty file"):
        read(_csv(tmp_path, ""))


# ---------------------------------------------------------------- GPX

def test_gpx_fixture():
    raw = read(HERE / "track.gpx")
    p = raw.points
    _check_tables(raw)
    assert p["user_id"].unique().tolist() == ["track"]  # file stem
    np.testing.assert_allclose(schema.to_unix(p["ts"]),
                               [1763623800, 1763623815, 1763623830, 1763625600])
    np.testing.assert_allclose(p["accuracy_m"], [6.0, 4.0, np.nan, 10.0])  # 5 m x HDOP
    assert set(p["source"]) == {"gpx"}
    assert read(HERE / "track.gpx", user_id="010").users == ["010"]


def test_gpx_missing_lat_attribute(tmp_path):
    text = (HERE / "track.gpx").read_text().replace('<trkpt lat="46.15602" lon', "<trkpt lon")
    path = tmp_path / "t.gpx"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        read(path)
    assert (exc.value.line, exc.value.field) == (9, "lat")
    assert f"{path}, line 9, field 'lat'" in str(exc.value)
    raw = read(path, skip_bad=True)
    assert raw.skipped == 1 and len(raw.points) == 3


@pytest.mark.parametrize("old, new, field", [
    ("<time>2025-11-20T07:30:15Z</time>", "<time>soon</time>", "time"),
    ("<time>2025-11-20T07:30:15Z</time>", "", "time"),
    ('lat="46.15602"', 'lat="nan"', "lat"),
    ('lon="-1.15341"', 'lon="-181"', "lon"),
])
def test_gpx_bad_point(tmp_path, old, new, field):
    path = tmp_path / "t.gpx"
    path.write_text((HERE / "track.gpx").read_text().replace(old, new))
    with pytest.raises(InputError) as exc:
        read(path)
    assert (exc.value.line, exc.value.field) == (9, field)


def test_gpx_malformed_xml(tmp_path):
    path = tmp_path / "t.gpx"
    lines = (HERE / "track.gpx").read_text().splitlines()
    path.write_text("\n".join(lines[:9]) + "\n<trkpt lat=\n")
    with pytest.raises(InputError, match="malformed XML") as exc:
        read(path)
    assert exc.value.line >= 10


# ---------------------------------------------------------------- GeoLife

def test_plt_fixture_user_from_folder():
    path = HERE / "Data" / "042" / "Trajectory" / "20251120073000.plt"
    raw = read(path)
    assert raw.users == ["042"] and set(raw.points["source"]) == {"geolife"}
    np.testing.assert_allclose(schema.to_unix(raw.points["ts"]), [1763623800, 1763623815, 1763623830])
    assert raw.points["lat"].iloc[0] == 46.1559


def test_plt_bad_rows(tmp_path):
    lines = (HERE / "Data" / "042" / "Trajectory" / "20251120073000.plt").read_text().splitlines()
    lines[7] = "46.15602,-1.15341,0,14,x,2025-11-31,07:30:15"   # line 8: bad date, bad days
    lines[8] = "46.15615,200,0,-777,45981.3128472222,2025-11-20,07:30:30"  # line 9: lon
    path = tmp_path / "u.plt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as exc:
        read(path, user_id="042")
    assert (exc.value.line, exc.value.field) == (8, "date/time")
    raw = read(path, user_id="042", skip_bad=True)
    assert raw.skipped == 2 and [(p.line, p.field) for p in raw.problems] == [(8, "date/time"),
                                                                              (9, "lon")]


# ---------------------------------------------------------------- dispatch

def test_detect_format(tmp_path):
    assert detect_format(DAYS[0]) == "emission"
    assert detect_format(HERE / "track.gpx") == "gpx"
    assert detect_format(HERE / "points.csv") == "csv"
    for src, fmt in ((HERE / "track.gpx", "gpx"), (HERE / "points.csv", "csv"), (DAYS[0], "emission")):
        dst = tmp_path / f"noext_{fmt}"
        dst.write_bytes(src.read_bytes())
        assert detect_format(dst) == fmt
    assert len(read(tmp_path / "noext_emission").points) == len(read(DAYS[0]).points)


def test_read_many_concatenates_and_drops_repeats():
    one = read(HERE / "points.csv")
    both = read_many([HERE / "points.csv", HERE / "points.csv", HERE / "track.gpx"])
    assert len(both.points) == len(one.points) + 4
    assert both.duplicates == len(one.points)
    assert both.users == ["010", "011", "track"]
    schema.validate(both.points, "points")


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unknown format"):
        read(HERE / "points.csv", fmt="kml")
    with pytest.raises(InputError, match="file not found"):
        read(tmp_path / "nope.json")
    assert issubclass(InputError, EmissionExtError)


def test_points_csv_written_by_write_table_reads_back(tmp_path):
    from emission_ext.io.writers import write_table

    pts = read(DAYS[0]).points
    raw = read(write_table(pts, tmp_path / "p.csv", table="points"))
    assert raw.points["source"].unique().tolist() == ["csv"]
    for col in ("lat", "lon", "accuracy_m", "speed_mps", "heading"):
        np.testing.assert_array_equal(raw.points[col].to_numpy(), pts[col].to_numpy())
    np.testing.assert_allclose(schema.to_unix(raw.points["ts"]), schema.to_unix(pts["ts"]),
                               rtol=0, atol=1e-6)


def test_finish_table_sorts_and_drops_repeats_like_pandas():
    """The vectorised sort/dedupe of every reader agrees with pandas' sort + drop_duplicates,
    and the user codes it hands on are those of the finished table."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from emission_ext.io._common import finish_table, finish_table_coded

    rows = st.lists(st.tuples(st.sampled_from(["010", "011", "2"]), st.integers(0, 5),
                              st.sampled_from(["csv", "gpx"]), st.floats(-1, 1)), max_size=30)

    @settings(max_examples=60, deadline=None)
    @given(rows)
    def check(rs):
        df = pd.DataFrame(rs, columns=["user_id", "ts", "source", "lat"]).assign(lon=0.0)
        df["ts"] = df["ts"].astype(float)
        got, ndup = finish_table(df, "points")
        want = schema.coerce(df, "points").drop_duplicates(["user_id", "ts", "source"])
        want = want.sort_values(["user_id", "ts", "source"], kind="stable").reset_index(drop=True)
        assert ndup == len(df) - len(want)
        pd.testing.assert_frame_equal(got[want.columns], want)
        got2, _, coded = finish_table_coded(df, "points")
        pd.testing.assert_frame_equal(got2, got)
        if len(df) > 1:
            codes, users = pd.factorize(got["user_id"], sort=True)
            assert coded[0].tolist() == codes.tolist() and list(coded[1]) == list(users)
        else:
            assert coded is None

    check()


def test_csv_fast_path_trims_ids_only_when_needed(tmp_path):
    import pyarrow as pa

    from emission_ext.io.csv_arrow import _may_have_space, read_arrow

    assert not _may_have_space(pa.array(["007", "a-b", None, ""]))
    assert not _may_have_space(pa.array([" 007", "abc", "x "]).slice(1, 1))  # its bytes only
    for text in (["007", " 010"], ["a\t"], ["b\u00a0"], ["\u3000c"], ["é"]):
        assert _may_have_space(pa.array(text))
    path = _csv(tmp_path, "user_id,ts,lat,lon\n\u00a0a ,1700000000,46.1,-1.1\n"
                          "b,1700000030,46.1,-1.1\n")
    table, cols = read_arrow(str(path))
    assert table.column(cols["user_id"]).to_pylist() == ["a", "b"]


def test_row_checker_numbers_rows_from_a_range():
    from emission_ext.io._common import RowChecker

    chk = RowChecker("f.csv", range(2, 7))  # rows on lines 2..6, no array of them
    chk.flag(np.array([False, False, True, False, True]), "lat", "bad {value}",
             np.array([0.0, 0.0, 95.0, 0.0, 99.0]))
    keep, errs = chk.report(skip_bad=True)
    assert keep.tolist() == [True, True, False, True, False]
    assert [(e.line, e.field) for e in errs] == [(4, "lat"), (6, "lat")]
    assert "bad 95.0" in str(errs[0])
    with pytest.raises(InputError) as exc:
        chk.report(skip_bad=False)
    assert exc.value.line == 4


def test_ms_to_s_and_parse_times_mixed_units():
    from emission_ext.io._common import MS_THRESHOLD, ms_to_s, parse_times

    v = np.array([1.7e9, 1.7e12, np.nan, 1.7e9 + 0.5, 1.7e12 + 1.0])
    want = np.where(v > MS_THRESHOLD, v / 1000.0, v)
    for x in (v, v[[0, 3]], v[[1, 4]]):  # mixed, seconds only, milliseconds only
        got = ms_to_s(x)
        np.testing.assert_array_equal(got, np.where(x > MS_THRESHOLD, x / 1000.0, x))
        assert not np.shares_memory(got, x)  # a new array, as callers write into it
    np.testing.assert_array_equal(ms_to_s(v), want)
    t, bad = parse_times(pd.Series([1.7e9, np.inf, np.nan, 1.7e12]))
    np.testing.assert_array_equal(t, [1.7e9, np.nan, np.nan, 1.7e9])
    assert bad.tolist() == [False, True, False, False]


def test_csv_fast_path_keeps_the_parsed_numbers_without_a_copy(tmp_path):
    from emission_ext.io.csv_arrow import read_arrow
    from emission_ext.io.csv_points import points_from_arrow

    path = _csv(tmp_path, "user_id,ts,lat,lon,speed,heading\n"
                          "a,1700000000,46.1,-1.1,-1,10\na,1700000030,46.2,-1.2,3,-1\n")
    table, cols = read_arrow(str(path))
    pts = points_from_arrow(str(path), table, cols).points
    # no fresh copy of the columns that need no change: a forked worker touches no new pages
    for c in ("lat", "lon"):
        assert np.shares_memory(pts[c].to_numpy(), table.column(cols[c]).chunk(0).buffers()[1])
    # -1 (unknown) still becomes NaN, in a new array (the table's memory is read-only)
    np.testing.assert_array_equal(pts["speed_mps"].to_numpy(), [np.nan, 3.0])
    np.testing.assert_array_equal(pts["heading"].to_numpy(), [10.0, np.nan])
    assert table.column(cols["speed_mps"]).to_pylist() == [-1.0, 3.0]


def test_codes_from_known_user_runs_equal_user_codes(tmp_path):
    from pipeline.clean import codes_from_starts
    from emission_ext.io.csv_arrow import read_arrow, user_starts
    from emission_ext.io.csv_points import points_from_arrow
    from pipeline.clean import user_codes

    ids = pd.Series(pd.array(["007", "007", "010", "2", "2", "2"], dtype=schema.STR))
    codes, users = codes_from_starts(ids, [0, 2, 3])
    want_codes, want_users = user_codes(ids)
    assert codes.tolist() == want_codes.tolist() and users.equals(want_users)
    assert users.dtype == want_users.dtype
    for bad in ([], [1, 3], [0, 6]):
        with pytest.raises(ValueError):
            codes_from_starts(ids, bad)
    rows = "".join(f"u{u},{1.7e9 + 30 * i},46.1,-1.1\n" for u in (1, 2, 3) for i in range(4))
    path = _csv(tmp_path, "user_id,ts,lat,lon\n" + rows)
    table, cols = read_arrow(str(path))
    starts = user_starts(table, cols)
    part = table.slice(4, 8)  # users u2 and u3, as a worker of `process` gets them
    mine = starts[(starts >= 4) & (starts < 12)] - 4
    given = points_from_arrow(str(path), part, cols, user_starts=mine)
    found = points_from_arrow(str(path), part, cols)
    pd.testing.assert_frame_equal(given.points, found.points)
    assert given.user_codes[0].tolist() == found.user_codes[0].tolist() == [0] * 4 + [1] * 4
    assert given.user_codes[1].equals(found.user_codes[1])
