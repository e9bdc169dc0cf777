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


# --------------------------------------------------------------------------- fault injection
# (the list, for the parking operator's files: the same cases as tests/yelo_ingest)

def sessions(sep=",", dec="."):
    i = ids()
    rows = [["session_id", "account_id", "car_park_id", "entry_time", "exit_time", "rate_type", "amount_eur"],
            ["S1", "P001", i["cp1"], "2026-03-02T08:05:00+01:00", "2026-03-02T17:40:00+01:00", "subscription", "0"],
            ["S2", "P001", i["cp2"], "2026-03-03 08:05:00", "2026-03-03 11:35:00", "hourly", f"2{dec}40"],
            ["S3", "P001", i["cp1"], "2026-03-04T08:05:00Z", "", "hourly", ""]]
    return "\n".join(sep.join(r) for r in rows) + "\n"


def accounted(res):
    """Nothing lost: every data row is good, bad or a counted identical repeat."""
    s = res.stats
    return s["good"] + s["bad"] + s["duplicates"] == s["rows"] and s["bad"] == len(res.quarantine)


def ing(raw, card_map, name="parking_sessions.csv"):
    return ingest_bytes(raw if isinstance(raw, bytes) else raw.encode(), name, ref=ref_index(), card_map=card_map)


@pytest.mark.parametrize("variant", ["utf8", "bom", "latin1_semicolon_comma", "tab", "json"])
def test_encodings_and_separators_give_the_same_records(card_map, variant):
    base = ing(sessions(), card_map)
    assert base.ok, base.problems
    if variant == "utf8":
        raw = sessions().encode("utf-8")
    elif variant == "bom":
        raw = b"\xef\xbb\xbf" + sessions().encode("utf-8")
    elif variant == "latin1_semicolon_comma":
        raw = sessions(sep=";", dec=",").encode("latin-1")
    elif variant == "tab":
        raw = sessions(sep="\t").encode("utf-8")
    else:
        df = pd.read_csv(pd.io.common.StringIO(sessions()), dtype=str, keep_default_na=False)
        raw = df.to_json(orient="records", force_ascii=False).encode()
    res = ing(raw, card_map)
    assert res.ok, res.problems
    pd.testing.assert_frame_equal(res.records, base.records)
    assert res.records.loc[1, "amount_eur"] == 2.40


def test_duplicated_rows_and_reingest(card_map):
    from yelo_ingest.ingest import merge_records

    lines = sessions().splitlines()
    res = ing("\n".join(lines + [lines[1], lines[3]]) + "\n", card_map)
    assert res.ok and res.stats["duplicates"] == 2 and len(res.records) == 3 and accounted(res)
    merged, added, _ = merge_records(None, res.records)
    again, added2, _ = merge_records(merged, ing(sessions(), card_map).records)
    assert (added, added2, len(again)) == (3, 0, 3)
    # the same id with other content is not a repeat: quarantined
    changed = lines[1].replace("subscription", "hourly")
    res = ing("\n".join(lines + [changed]) + "\n", card_map)
    assert len(res.records) == 3 and res.stats["bad"] == 1 and accounted(res)


def test_malformed_dates(card_map):
    i = ids()
    text = sessions() + (f"S4,P001,{i['cp1']},02/03/2026 08:05,,hourly,\n"          # line 5: not ISO-8601
                         f"S5,P001,{i['cp1']},2026-03-02T08:05:00Z,tomorrow,hourly,\n")  # line 6
    res = ing(text, card_map)
    assert list(res.records["record_id"]) == ["S1", "S2", "S3"]
    p = res.problems.set_index("line")
    assert p.loc[5, "field"] == "entry_time" and "malformed" in p.loc[5, "reason"]
    assert p.loc[6, "field"] == "exit_time" and "malformed" in p.loc[6, "reason"]
    assert accounted(res)


def test_truncated_file_keeps_good_rows(card_map):
    text = sessions()
    cut = text[: text.rindex("\n", 0, len(text) - 1) + 12]  # the last row stops mid-way
    res = ing(cut, card_map)
    assert list(res.records["record_id"]) == ["S1", "S2"]
    assert res.problems.iloc[-1]["reason"].startswith("truncated row") and res.problems.iloc[-1]["line"] == 4
    assert accounted(res)


def test_empty_file(card_map):
    res = ing(b"", card_map)
    assert len(res.records) == 0 and not res.ok and "empty file" in res.problems.loc[0, "reason"]
    res = ing(sessions().splitlines()[0] + "\n", card_map)
    assert len(res.records) == 0 and "header only" in res.problems.loc[0, "reason"]
