"""write_world: the documented layout, e-mission JSON like the real exports, CSVs readable back."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from emission_ext import schema
from emission_ext.synth import write_world


@pytest.fixture(scope="module")
def written(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_world(world, out)
    return out


def test_layout(written, world):
    assert sorted(p.name for p in (written / "operator").iterdir()) == sorted(
        ["yelo_validations.csv", "yelo_bikeshare.csv", "yelo_carshare.csv", "parking_sessions.csv", "card_map.csv"])
    for name in ("testers.csv", "places.csv", "trips.csv", "sections.csv", "records.csv"):
        assert (written / "truth" / name).exists()
    assert sorted(p.name for p in (written / "emission").iterdir()) == [
        f"{u}.json.gz" for u in sorted(world.testers["user_id"])]
    pts = pd.read_csv(written / "points.csv", dtype={"user_id": str})
    assert list(pts.columns) == ["user_id", "ts", "lat", "lon", "accuracy", "speed"]
    assert len(pts) == len(world.points)
    assert np.allclose(pts["ts"], schema.to_unix(world.points["ts"]), atol=1e-3)


def test_truth_csvs_read_back_into_the_schema(written, world):
    trips = schema.coerce(pd.read_csv(written / "truth" / "trips.csv", dtype={"user_id": str}), "trips")
    secs = schema.coerce(pd.read_csv(written / "truth" / "sections.csv", dtype={"user_id": str}), "sections")
    assert len(trips) == len(world.truth_trips) and len(secs) == len(world.truth_sections)
    assert (trips["start_ts"] - world.truth_trips["start_ts"]).abs().max() < pd.Timedelta(milliseconds=1)
    assert secs["geometry"].str.startswith("LINESTRING").all()
    rec = pd.read_csv(written / "truth" / "records.csv", dtype=str)
    assert {"record_id", "source", "user_id", "trip_id", "section_id", "phone_missed"} <= set(rec.columns)
    testers = pd.read_csv(written / "truth" / "testers.csv", dtype={"user_id": str})
    assert testers["emission_uuid"].str.fullmatch(r"[0-9a-f]{32}").all()


def test_emission_json_looks_like_real_exports(written, world):
    t = world.testers.iloc[0]
    ents = json.load(gzip.open(written / "emission" / f"{t['user_id']}.json.gz", "rt"))
    keys = pd.Series([e["metadata"]["key"] for e in ents]).value_counts()
    n_pts = (world.points["user_id"] == t["user_id"]).sum()
    assert keys["background/location"] == n_pts
    acc = world.points.loc[world.points["user_id"] == t["user_id"], "accuracy_m"]
    assert keys["background/filtered_location"] == (acc <= 200).sum()
    assert keys["background/motion_activity"] == (world.motion["user_id"] == t["user_id"]).sum()
    assert keys["statemachine/transition"] >= 2
    loc = next(e for e in ents if e["metadata"]["key"] == "background/location")
    assert loc["user_id"] == {"$uuid": t["emission_uuid"]}
    assert loc["metadata"]["platform"] == t["platform"] and loc["metadata"]["time_zone"] == "Europe/Paris"
    d = loc["data"]
    assert d["loc"]["coordinates"] == [d["longitude"], d["latitude"]]
    assert d["filter"] == ("time" if t["platform"] == "android" else "distance")
    assert d["fmt_time"].endswith("+01:00")
    assert pd.Timestamp(d["fmt_time"]).timestamp() == pytest.approx(d["ts"], abs=1e-3)
    # entries in upload (write_ts) order
    w = [e["metadata"]["write_ts"] for e in ents]
    assert w == sorted(w)


def test_product_reader_reads_the_exports(written, world):
    from emission_ext.io.readers import read
    for _, t in world.testers.head(3).iterrows():
        raw = read(written / "emission" / f"{t['user_id']}.json.gz", fmt="emission")
        mine = world.points[world.points["user_id"] == t["user_id"]]
        # the reader drops the exact duplicate fixes the phone fault model adds
        assert len(raw.points) + raw.duplicates == (mine["accuracy_m"] <= 200).sum()
        assert set(raw.points["source"]) == {t["platform"]}
        assert raw.motion["activity"].isin(schema.ACTIVITIES).all()
        names = set(raw.transitions["transition"])
        assert names & {"EXITED_GEOFENCE", "STOPPED_MOVING", "TRIP_END_DETECTED"}
