"""Aggregator export: exact record format, consent, months in local time, group threshold."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from carbon.aggregator import MEASURE_NAME, AggregatorError, monthly_export
from carbon.footprint import compute_footprint

from .conftest import a_tester, make_sections


@pytest.fixture
def panel(factors, tariffs):
    secs, testers = [], []
    for k, u in enumerate(["001", "002", "003", "010"]):
        secs.append(make_sections([("CAR", 1000.0 * (k + 1), 600.0), ("UNKNOWN", 500.0, 300.0, 60)], u))
        testers.append(a_tester(u, car_fuel="diesel", car_size="petite"))
    # an April section of 001 at 00:30 Paris on April 1st (still March in UTC)
    late = make_sections([("CAR", 7000.0, 600.0)], "001").assign(
        section_id="late", start_ts=pd.Timestamp("2026-03-31T22:30Z"), end_ts=pd.Timestamp("2026-03-31T22:40Z"))
    sec = pd.concat(secs + [late], ignore_index=True)
    t = pd.concat(testers, ignore_index=True)
    return sec, t, compute_footprint(sec, t, factors, tariffs)


def test_records_format_and_values(panel):
    sec, t, fp = panel
    out = monthly_export(fp, sec, t, {"001", "002", "003"}, "2026-03", threshold=3)
    assert [r["user_id"] for r in out["records"]] == ["001", "002", "003"]
    r = out["records"][0]
    assert set(r["record"]) == {"measureName", "startDate", "value"}
    assert r["record"]["measureName"] == MEASURE_NAME == "co2-emissions-monthly"
    assert r["record"]["startDate"] == "2026-03-01"
    want = fp[(fp.user_id == "001") & (fp.section_id != "late")].co2e_kg.sum()
    assert r["record"]["value"] == pytest.approx(round(want, 3))
    low_high = fp[(fp.user_id == "001") & (fp["mode"] == "UNKNOWN")][["co2e_kg_low", "co2e_kg_high"]].iloc[0]
    assert r["unknown_kg_range"] == pytest.approx([round(low_high.iloc[0], 3), round(low_high.iloc[1], 3)])
    assert out["group"] == {"measureName": MEASURE_NAME, "startDate": "2026-03-01",
                            "value": pytest.approx(round(sum(x["record"]["value"] for x in out["records"]), 3), abs=2e-3)}
    json.dumps(out)  # JSON-serialisable as is


def test_no_consent_no_record(panel):
    sec, t, fp = panel
    out = monthly_export(fp, sec, t, {"002", "nobody"}, "2026-03", threshold=1)
    assert [r["user_id"] for r in out["records"]] == ["002"]


def test_group_withheld_below_threshold(panel):
    sec, t, fp = panel
    out = monthly_export(fp, sec, t, {"001", "002", "003", "010"}, "2026-03", threshold=5)
    assert out["contributors"] == 4 and out["group"] is None
    assert "fewer than the threshold of 5" in out["group_withheld_reason"]
    assert len(out["records"]) == 4  # individual records still go (each consented)
    assert monthly_export(fp, sec, t, {"001", "002", "003", "010"}, "2026-03", threshold=4)["group"] is not None


def test_month_in_local_time_and_no_data_is_no_record(panel):
    sec, t, fp = panel
    out = monthly_export(fp, sec, t, {"001", "002"}, "2026-04", threshold=1)
    assert [r["user_id"] for r in out["records"]] == ["001"]
    assert out["records"][0]["record"]["value"] == pytest.approx(round(fp[fp.section_id == "late"].co2e_kg.iloc[0], 3))
    assert monthly_export(fp, sec, t, {"001"}, "2026-06", threshold=1)["records"] == []


@pytest.mark.parametrize("month,threshold", [("2026-3", 5), ("2026-13", 5), ("March", 5), ("2026-03", 0)])
def test_bad_arguments(panel, month, threshold):
    sec, t, fp = panel
    with pytest.raises(AggregatorError):
        monthly_export(fp, sec, t, {"001"}, month, threshold=threshold)
