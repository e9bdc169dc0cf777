"""Budgets per tester and period: local calendar periods, totals by mode, ranges kept apart,
trend, panel and French comparisons per observed day."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from carbon.budget import (FR_DAILY_ID, REFERENCES_PATH, budget_by_mode, budget_summary,
                           load_reference_averages, observed_span, period_start)
from carbon.footprint import compute_footprint
from emission_ext.errors import ConfigError

from .conftest import a_tester, make_sections


def _world(factors, tariffs):
    # user 010: Mon 2 Mar 2026 08:00 Paris onwards; one car trip per day for 14 days + 1 bus
    rows = [("CAR", 10000.0, 900.0, 1440 * d) for d in range(14)] + [("BUS", 5000.0, 900.0, 60)]
    a = make_sections(rows, "010")
    b = make_sections([("BICYCLING", 4000.0, 900.0, 1440 * d) for d in range(14)], "020")
    c = make_sections([("UNKNOWN", 2000.0, 900.0, 0)], "030")
    sec = pd.concat([a, b, c], ignore_index=True)
    testers = pd.concat([a_tester("010", car_fuel="petrol", car_size="moyenne"), a_tester("020"),
                         a_tester("030")], ignore_index=True)
    return sec, testers, compute_footprint(sec, testers, factors, tariffs)


def test_reference_average_is_a_sourced_data_value():
    refs = load_reference_averages()
    r = refs.loc[FR_DAILY_ID]
    assert r.value == pytest.approx(1450 * 0.65 / 365.25, rel=1e-4)
    assert "SDES" in r.source and r.url.startswith("https://")


def test_period_start_local_calendar():
    local = pd.Series(pd.to_datetime(["2026-03-04 10:00", "2026-03-01 00:30", "2026-03-08 23:59"]))
    assert period_start(local, "week").dt.strftime("%Y-%m-%d").tolist() == ["2026-03-02", "2026-02-23", "2026-03-02"]
    assert period_start(local, "month").dt.strftime("%Y-%m-%d").tolist() == ["2026-03-01"] * 3
    assert period_start(local, "day").dt.strftime("%Y-%m-%d").tolist() == ["2026-03-04", "2026-03-01", "2026-03-08"]
    with pytest.raises(ConfigError):
        period_start(local, "year")


def test_month_boundary_in_tester_time_zone(factors, tariffs):
    # 2026-03-31 22:30 UTC is April 1st 00:30 in Paris
    sec = make_sections([("CAR", 1000.0, 600.0)]).assign(start_ts=pd.Timestamp("2026-03-31T22:30Z"),
                                                        end_ts=pd.Timestamp("2026-03-31T22:40Z"))
    t = a_tester(car_fuel="diesel", car_size="petite")
    bm = budget_by_mode(compute_footprint(sec, t, factors, tariffs), sec, t, "month")
    assert bm.period_start.dt.strftime("%Y-%m-%d").tolist() == ["2026-04-01"]


def test_budget_by_mode_sums(factors, tariffs):
    sec, testers, fp = _world(factors, tariffs)
    bm = budget_by_mode(fp, sec, testers, "week")
    u = bm[bm.user_id == "010"]
    assert u.period_start.dt.strftime("%Y-%m-%d").unique().tolist() == ["2026-03-02", "2026-03-09"]
    car_w1 = u[(u["mode"] == "CAR") & (u.period_start == "2026-03-02")].iloc[0]
    one = fp[(fp.user_id == "010") & (fp["mode"] == "CAR")].co2e_kg.iloc[0]
    assert car_w1.co2e_kg == pytest.approx(7 * one) and car_w1.distance_km == pytest.approx(70.0)
    assert car_w1.n_sections == 7
    assert bm.co2e_kg.sum() == pytest.approx(fp.co2e_kg.sum())  # nothing lost
    unk = bm[bm.user_id == "030"].iloc[0]
    assert unk.co2e_kg == 0.0 and unk.co2e_kg_high > 0  # the range stays visible, no guess
    assert unk.n_cost_unknown == 1


def test_summary_trend_panel_and_french(factors, tariffs):
    sec, testers, fp = _world(factors, tariffs)
    refs = load_reference_averages()
    s = budget_summary(budget_by_mode(fp, sec, testers, "week"), observed_span(sec, testers), "week", refs)
    u = s[s.user_id == "010"].reset_index(drop=True)
    assert u.days_observed.tolist() == [7.0, 7.0]
    assert u.trend_pct.iloc[1] == pytest.approx(
        (u.co2e_kg_per_day.iloc[1] / u.co2e_kg_per_day.iloc[0] - 1) * 100)
    assert math.isnan(u.trend_pct.iloc[0])
    w1 = s[s.period_start == "2026-03-02"]
    assert w1.panel_co2e_kg_per_day.iloc[0] == pytest.approx(w1.co2e_kg_per_day.mean())
    fr = refs.loc[FR_DAILY_ID, "value"]
    assert u.vs_fr_pct.iloc[0] == pytest.approx((u.co2e_kg_per_day.iloc[0] / fr - 1) * 100)
    # user 030 was seen on one day only: compared per that day, not per 7
    assert s[s.user_id == "030"].days_observed.iloc[0] == 1.0


def test_reference_file_errors(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(REFERENCES_PATH.read_text().replace(",2.5804,", ",lots,"))
    with pytest.raises(ConfigError):
        load_reference_averages(p)
