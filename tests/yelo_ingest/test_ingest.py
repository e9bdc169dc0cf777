"""Yélo files end to end (pure part): formats, card map, records, and the fault-injection cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emission_ext import schema
from emission_ext.errors import InputError
from yelo_ingest.cardmap import empty_card_map
from yelo_ingest.ingest import ingest_bytes, merge_records

from .helpers import CARD_MAP, bikeshare_csv, carshare_csv, ids, ref_index, validations_csv


@pytest.fixture(scope="module")
def card_map():
    res = ingest_bytes(CARD_MAP.encode(), "card_map.csv", ref=ref_index(), card_map=empty_card_map())
    assert res.ok and res.format == "card_map"
    return res.card_map


def ing(text_or_bytes, name, card_map, **kw):
    raw = text_or_bytes.encode() if isinstance(text_or_bytes, str) else text_or_bytes
    return ingest_bytes(raw, name, ref=ref_index(), card_map=card_map, **kw)


def accounted(res):
    """Nothing lost: every data row is good, bad or a counted identical repeat."""
    s = res.stats
    return s["good"] + s["bad"] + s["duplicates"] == s["rows"] and s["bad"] == len(res.quarantine)


def test_validations_to_records(card_map):
    res = ing(validations_csv(), "yelo_validations.csv", card_map)
    assert res.ok, res.problems
    r = res.records
    schema.validate(r, "records")
    assert list(r["record_id"]) == ["V1", "V2", "V3", "V4"]
    assert list(r["source"]) == ["yelo_bus", "yelo_bus", "yelo_boat", "yelo_boat"]  # V4: ferry-only stop
    assert list(r["user_id"]) == ["010", "010", "011", "011"]
    assert r["end_ts"].isna().all() and r["start_lat"].notna().all()
    assert r.loc[0, "start_ts"] == pd.Timestamp("2026-03-02 07:14:05", tz="UTC")
    assert r.loc[1, "start_ts"] == pd.Timestamp("2026-03-02 07:40:00", tz="UTC")  # naive = Paris
    assert r.loc[0, "amount_eur"] == 1.5
    st = ref_index().stops.loc[ids()["bus_stop"]]
    assert (r.loc[0, "start_lat"], r.loc[0, "start_lon"]) == (st["lat"], st["lon"])


def test_bikeshare_and_carshare_records(card_map):
    b = ing(bikeshare_csv(), "yelo_bikeshare_2026-03.csv", card_map)
    assert b.ok, b.problems
    assert set(b.records["source"]) == {"yelo_bike"} and b.records["end_lat"].notna().all()
    assert b.records.loc[0, "distance_m"] == 3100
    c = ing(carshare_csv(), "yelo_carshare.csv", card_map)
    assert c.ok, c.problems
    rec = c.records.iloc[0]
    assert rec["source"] == "yelo_car" and rec["car_park_id"] == ids()["cp1"] == rec["station_id"]
    schema.validate(pd.concat([b.records, c.records]), "records")


@pytest.mark.parametrize("variant", ["utf8", "bom", "latin1_semicolon_comma", "json"])
def test_encodings_and_separators_give_the_same_records(card_map, variant):
    base = ing(validations_csv(), "yelo_validations.csv", card_map).records
    if variant == "utf8":
        raw = validations_csv().encode("utf-8")
    elif variant == "bom":
        raw = b"\xef\xbb\xbf" + validations_csv().encode("utf-8")
    elif variant == "latin1_semicolon_comma":
        raw = validations_csv(sep=";", dec=",").encode("latin-1")
    else:
        df = pd.read_csv(pd.io.common.StringIO(validations_csv()), dtype=str, keep_default_na=False)
        raw = df.to_json(orient="records", force_ascii=False).encode()
    res = ing(raw, "yelo_validations.csv", card_map)
    assert res.ok, res.problems
    pd.testing.assert_frame_equal(res.records, base)
    assert res.records.loc[3, "fare_product"] == "Billet à l'unité"


def test_unknown_tester_unknown_stop_malformed_date(card_map):
    i = ids()
    text = validations_csv() + "\n".join([
        f"V5,C999,2026-03-02T08:00:00Z,{i['bus_stop']},,,",           # line 6: unknown card
        "V6,C001,2026-03-02T08:00:00Z,NOT:A:STOP,,,",                 # 7: unknown stop id
        f"V7,C001,02/03/2026 08:00,{i['bus_stop']},,,",               # 8: malformed date
        f"V8,C002,2025-06-01T08:00:00Z,{i['bus_stop']},,,",           # 9: card map not valid then
    ]) + "\n"
    res = ing(text, "yelo_validations.csv", card_map)
    assert list(res.records["record_id"]) == ["V1", "V2", "V3", "V4"]
    p = res.problems.set_index("line")
    assert p.loc[6, "field"] == "card_id" and "unknown tester" in p.loc[6, "reason"]
    assert p.loc[7, "field"] == "stop_id" and "unknown gtfs stop id" in p.loc[7, "reason"]
    assert p.loc[8, "field"] == "validated_at" and "malformed" in p.loc[8, "reason"]
    assert "validity" in p.loc[9, "reason"]
    assert list(res.quarantine["validation_id"]) == ["V5", "V6", "V7", "V8"]
    assert accounted(res)


def test_duplicated_rows_and_reingest(card_map):
    text = validations_csv()
    lines = text.splitlines()
    dup = "\n".join(lines + [lines[1], lines[2]]) + "\n"
    res = ing(dup, "yelo_validations.csv", card_map)
    assert res.ok and res.stats["duplicates"] == 2 and len(res.records) == 4
    assert accounted(res)
    merged, added, updated = merge_records(None, res.records)
    assert added == 4
    # re-ingest the same file, and an overlapping one: nothing twice
    again, added, updated = merge_records(merged, res.records)
    assert (added, updated, len(again)) == (0, 4, 4)
    i = ids()
    overlap = "\n".join(lines[:1] + lines[3:] + [f"V9,C001,2026-03-05T08:00:00Z,{i['bus_stop']},,,"]) + "\n"
    res2 = ing(overlap, "yelo_validations_b.csv", card_map)
    merged2, added, updated = merge_records(again, res2.records)
    assert (added, updated, len(merged2)) == (1, 2, 5)
    assert not merged2.duplicated(["source", "record_id"]).any()


def test_merge_keeps_previous_match():
    r = pd.DataFrame({"user_id": ["u"], "record_id": ["R"], "source": ["yelo_bus"], "kind": ["validation"],
                      "start_ts": [pd.Timestamp("2026-03-02", tz="UTC")], "section_id": ["s1"], "trip_id": ["t1"]})
    fresh = r.drop(columns=["section_id", "trip_id"])
    merged, added, updated = merge_records(r, schema.coerce(fresh, "records"))
    assert merged.loc[0, "section_id"] == "s1" and updated == 1


def test_truncated_file_keeps_good_rows(card_map):
    text = validations_csv()
    cut = text[: text.rindex("\n", 0, len(text) - 1) + 12]  # the last row stops mid-way
    res = ing(cut, "yelo_validations.csv", card_map)
    assert list(res.records["record_id"]) == ["V1", "V2", "V3"]
    assert res.problems.iloc[-1]["reason"].startswith("truncated row") and res.problems.iloc[-1]["line"] == 5
    assert accounted(res)


def test_empty_file(card_map):
    res = ing(b"", "yelo_validations.csv", card_map)
    assert len(res.records) == 0 and not res.ok and "empty file" in res.problems.loc[0, "reason"]
    res = ing(validations_csv().splitlines()[0] + "\n", "yelo_validations.csv", card_map)
    assert len(res.records) == 0 and "header only" in res.problems.loc[0, "reason"]


def test_unrecognised_file_is_an_input_error(card_map):
    with pytest.raises(InputError, match="cannot tell which operator file"):
        ing("a,b\n1,2\n", "whatever.csv", card_map)


def test_bad_bikeshare_durations(card_map):
    i = ids()
    text = bikeshare_csv() + (
        f"Yelo,B3,C001,,2026-03-02T09:00:00Z,2026-03-02T08:00:00Z,{i['st1']},{i['st2']},,,\n"
        f"Yelo,B4,C001,,2026-03-02T09:00:00Z,2026-03-04T09:00:00Z,{i['st1']},{i['st2']},,,\n"
        f"Yelo,B5,C001,,2026-03-02T09:00:00Z,2026-03-02T09:10:00Z,{i['st1']},{i['st2']},3600,,\n"
        f"Yelo,B6,C001,,2026-03-02T09:00:00Z,2026-03-02T09:10:00Z,{i['st1']},999999,,,\n")
    res = ing(text, "yelo_bikeshare.csv", card_map)
    assert list(res.records["record_id"]) == ["B1", "B2"]
    r = dict(zip(res.quarantine["trip_id"], res.quarantine["reject_reason"]))
    assert "not after" in r["B3"] and "over 86400" in r["B4"]
    assert "trip_duration" in r["B5"] and "unknown bike station id" in r["B6"]


def test_card_map_validation():
    text = CARD_MAP + "yelo,C002,012,2026-06-01,\nyelo,C003,013,2026-05-01,2026-04-01\nbus,C4,014,,\nyelo,C005,099,,\n"
    res = ingest_bytes(text.encode(), "card_map.csv", ref=ref_index(), card_map=empty_card_map(),
                       known_users=np.array(["010", "011", "012", "013", "014"]))
    bad = dict(zip(res.quarantine["account_id"], res.quarantine["reject_reason"]))
    assert "already mapped to tester 011" in bad["C002"]
    assert "valid_to is not after valid_from" in bad["C003"]
    assert "not one of yelo, parking" in bad["C4"]
    assert "unknown tester" in bad["C005"]
    assert sorted(res.card_map["account_id"]) == ["C001", "C002", "P001"]


def test_shuttle_validation_lands_at_the_other_terminal(card_map):
    r = ref_index().routes
    passeur = r.loc["CA_LA_ROCHELLE:Line:PASSEUR"]
    assert passeur["crossing_s"] == 300.0  # GTFS: 5 min crossings
    a, b = passeur["terminal_a"], passeur["terminal_b"]
    text = ("validation_id,card_id,validated_at,stop_id,route_id\n"
            f"F1,C001,2026-03-02T08:00:00Z,{a},CA_LA_ROCHELLE:Line:PASSEUR\n"
            f"F2,C001,2026-03-02T09:00:00Z,{b},CA_LA_ROCHELLE:Line:PASSEUR\n"
            f"F3,C001,2026-03-02T10:00:00Z,{ids()['bus_stop']},{ids()['bus_route']}\n")
    rec = ing(text, "yelo_validations.csv", card_map).records.set_index("record_id")
    assert rec.loc["F1", "end_stop_id"] == b and rec.loc["F2", "end_stop_id"] == a
    assert rec.loc["F1", "end_lat"] == ref_index().stops.loc[b, "lat"]
    assert rec.loc["F1", "expected_ride_s"] == 300.0 and rec.loc["F1", "source"] == "yelo_boat"
    assert pd.isna(rec.loc["F3", "end_stop_id"]) and pd.isna(rec.loc["F3", "expected_ride_s"])
