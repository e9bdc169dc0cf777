"""Parking sessions: format, records, and the shared validation applied to them."""
from __future__ import annotations

import pandas as pd
import pytest

from emission_ext import schema
from parking_ingest.ingest import ingest_bytes, parking_formats
from yelo_ingest.cardmap import empty_card_map

from tests.yelo_ingest.helpers import CARD_MAP, ids, parking_csv, ref_index


@pytest.fixture(scope="module")
def card_map():
    return ingest_bytes(CARD_MAP.encode(), "card_map.csv", ref=ref_index(), card_map=empty_card_map()).card_map


def test_sessions_to_records(card_map):
    res = ingest_bytes(parking_csv().encode(), "parking_sessions.csv", ref=ref_index(), card_map=card_map)
    assert res.ok, res.problems
    r = res.records
    schema.validate(r, "records")
    assert list(r["source"]) == ["parking", "parking"] and list(r["user_id"]) == ["010", "010"]
    assert r.loc[0, "car_park_id"] == ids()["cp1"] and r.loc[0, "fare_product"] == "subscription"
    assert pd.isna(r.loc[1, "end_ts"])  # still parked
    cp = ref_index().car_parks.loc[ids()["cp1"]]
    assert r.loc[0, "start_lat"] == cp["lat"] == r.loc[0, "end_lat"]


def test_bad_sessions(card_map):
    i = ids()
    text = parking_csv() + (
        f"S3,P001,17300-P-999,2026-03-02T08:00:00Z,,,\n"              # unknown car park
        f"S4,P001,{i['cp1']},2026-03-02T08:00:00Z,2026-03-01T08:00:00Z,,\n"  # exit before entry
        f"S5,P404,{i['cp1']},2026-03-02T08:00:00Z,,,\n"               # unknown account
        f"S6,P001,{i['cp1']},2026-03-02T08:00:00Z,,hourly,\"-2,00\"\n"  # negative amount
        f"S7,P001,car park 1,2026-03-02T08:00:00Z,,,\n")               # not a national id
    res = ingest_bytes(text.encode("latin-1"), "parking_sessions.csv", ref=ref_index(), card_map=card_map)
    assert list(res.records["record_id"]) == ["S1", "S2"]
    bad = dict(zip(res.quarantine["session_id"], res.quarantine["reject_reason"]))
    assert "unknown car park id" in bad["S3"]
    assert "exit_time is not after entry_time" in bad["S4"]
    assert "unknown tester" in bad["S5"]
    assert "below minimum" in bad["S6"]
    assert "does not match" in bad["S7"]
    assert res.stats["good"] + res.stats["bad"] == res.stats["rows"] == 7


def test_parking_does_not_take_yelo_files(card_map):
    from tests.yelo_ingest.helpers import validations_csv

    res = ingest_bytes(validations_csv().encode(), "parking_sessions.csv", ref=ref_index(), card_map=card_map)
    # recognised by name as a parking file, so every row lacks the parking columns
    assert len(res.records) == 0 and res.stats["bad"] == res.stats["rows"]


def test_formats():
    names = [f.name for f in parking_formats()]
    assert names == ["parking_sessions", "card_map"]
