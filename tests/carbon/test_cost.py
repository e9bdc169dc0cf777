"""Cost rules, one hand-made case per rule, all prices read from the tariff file."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from carbon.cost import CostParams, annualised_car_km
from carbon.footprint import FootprintParams, compute_footprint
from carbon.tariffs import bareme_annual_cost, bikeshare_fare, load_tariffs
from emission_ext.errors import ConfigError

from .conftest import a_tester, make_sections


def fp_of(sec, testers, factors, tariffs, records=None, **cost):
    return compute_footprint(sec, testers, factors, tariffs, records,
                             FootprintParams(cost=CostParams(**cost)))


def rec(sec, i, **kw):
    base = dict(user_id=sec.user_id[i], record_id=f"r{i}", source="yelo_bus", kind="validation",
                start_ts=sec.start_ts[i], end_ts=None, section_id=sec.section_id[i], trip_id=sec.trip_id[i])
    base.update(kw)
    return base


# ---- bike share: first 30 min free, then the grid ------------------------------------------
@pytest.mark.parametrize("minutes,price_id", [
    (0, None), (29.99, None), (30.0, None), (30.0 + 1 / 60, "bikeshare_to_60min"), (60.0, "bikeshare_to_60min"),
    (61.0, "bikeshare_to_120min"), (120.0, "bikeshare_to_120min"), (121.0, "extra1"), (181.0, "extra2"),
])
def test_bikeshare_grid_boundaries(tariffs, minutes, price_id):
    got = bikeshare_fare([minutes * 60.0], tariffs)[0]
    if price_id is None:
        want = 0.0
    elif price_id.startswith("extra"):
        want = tariffs["bikeshare_to_120min"] + int(price_id[-1]) * tariffs["bikeshare_extra_hour"]
    else:
        want = tariffs[price_id]
    assert got == pytest.approx(want)


def test_bikeshare_section_uses_record_times_then_amount(factors, tariffs):
    sec = make_sections([("BIKESHARE", 3000.0, 25 * 60.0), ("BIKESHARE", 3000.0, 25 * 60.0),
                         ("BIKESHARE", 3000.0, 25 * 60.0)])
    r = pd.DataFrame([  # rental lasted 31 min although the GPS section lasted 25
        rec(sec, 0, source="yelo_bike", kind="rental", end_ts=sec.start_ts[0] + pd.Timedelta(minutes=31)),
        rec(sec, 1, source="yelo_bike", kind="rental", amount_eur=0.9,
            end_ts=sec.start_ts[1] + pd.Timedelta(minutes=31)),
    ])
    fp = fp_of(sec, a_tester(), factors, tariffs, r)
    assert fp.cost_eur.tolist() == pytest.approx([tariffs["bikeshare_to_60min"], 0.9, 0.0])
    assert fp.tariff_id.tolist() == ["bikeshare_grid", "record", "bikeshare_grid"]


# ---- bus: tickets with transfers, records, pass amortisation -------------------------------
def test_bus_ticket_covers_transfers_within_validity(factors, tariffs):
    sec = make_sections([("BUS", 3000.0, 600.0, 0, "t0"), ("WALKING", 300.0, 300.0, 10, "t0"),
                         ("BUS", 3000.0, 600.0, 20, "t0"),   # transfer: same ticket
                         ("BUS", 3000.0, 600.0, 65, "t0"),   # after 60 min: new ticket
                         ("BUS", 3000.0, 600.0, 70, "t1")])  # another trip: new ticket
    fp = fp_of(sec, a_tester(), factors, tariffs)
    p = tariffs["bus_ticket_1h"]
    assert fp.cost_eur.tolist() == pytest.approx([p, 0.0, 0.0, p, p])


def test_bus_record_amount_wins_over_ticket(factors, tariffs):
    sec = make_sections([("BUS", 3000.0, 600.0), ("BUS", 3000.0, 600.0)])
    fp = fp_of(sec, a_tester(), factors, tariffs, pd.DataFrame([rec(sec, 0, amount_eur=1.7)]))
    assert fp.cost_eur.tolist() == pytest.approx([1.7, tariffs["bus_ticket_1h"]])
    assert fp.tariff_id.tolist() == ["record", "bus_ticket_1h"]


@pytest.mark.parametrize("kind", ["monthly", "annual"])
def test_pass_amortised_over_the_months_bus_sections(factors, tariffs, kind):
    # 4 bus sections in March (Paris time), 1 on April 1st at 00:30 Paris (= March 31 22:30 UTC)
    rows = [("BUS", 3000.0, 600.0, 60 * 24 * d) for d in range(4)]
    sec = make_sections(rows)
    april = make_sections([("BUS", 3000.0, 600.0)]).assign(
        section_id="x", trip_id="tx", start_ts=pd.Timestamp("2026-03-31T22:30Z"),
        end_ts=pd.Timestamp("2026-03-31T22:40Z"))
    sec = pd.concat([sec, april], ignore_index=True)
    fp = fp_of(sec, a_tester(yelo_pass=kind), factors, tariffs)
    month_price = tariffs["pass_monthly"] if kind == "monthly" else tariffs["pass_annual"] / 12
    assert fp.cost_eur.tolist() == pytest.approx([month_price / 4] * 4 + [month_price])
    assert set(fp.tariff_id) == {f"pass_{kind}"}
    assert fp.cost_eur.iloc[:4].sum() == pytest.approx(month_price)


def test_ferry_single_fare_and_record(factors, tariffs):
    sec = make_sections([("FERRY", 2000.0, 900.0), ("FERRY", 2000.0, 900.0)])
    fp = fp_of(sec, a_tester(), factors, tariffs,
               pd.DataFrame([rec(sec, 1, source="yelo_boat", amount_eur=3.2)]))
    assert fp.cost_eur.tolist() == pytest.approx([tariffs["boat_single"], 3.2])


# ---- car share: time and distance ----------------------------------------------------------
def test_carshare_time_plus_distance(factors, tariffs):
    sec = make_sections([("CARSHARE", 10000.0, 2 * 3600.0), ("CARSHARE", 10000.0, 1800.0)])
    r = pd.DataFrame([rec(sec, 1, source="yelo_car", kind="booking", distance_m=25000.0,
                          end_ts=sec.start_ts[1] + pd.Timedelta(hours=3))])
    fp = fp_of(sec, a_tester(), factors, tariffs, r)
    h, k = tariffs["carshare_hour"], tariffs["carshare_km"]
    assert fp.cost_eur.tolist() == pytest.approx([2 * h + 10 * k, 3 * h + 25 * k])
    assert set(fp.tariff_id) == {"carshare_time_km"}


# ---- own car: energy, or the barème ---------------------------------------------------------
@pytest.mark.parametrize("fuel,size,price_id", [
    ("petrol", "petite", "fuel_petrol"), ("diesel", "SUV", "fuel_diesel"),
    ("electric", "moyenne", "electricity"), ("hybrid", "berline", "fuel_petrol")])
def test_own_car_running_cost(factors, tariffs, fuel, size, price_id):
    sec = make_sections([("CAR", 12000.0, 900.0)])
    fp = fp_of(sec, a_tester(car_fuel=fuel, car_size=size), factors, tariffs)
    cons = factors.table.at[f"car_{fuel}_{size}", "consumption_per_100km"]
    assert fp.cost_eur.iloc[0] == pytest.approx(cons / 100 * 12 * tariffs[price_id], abs=1e-12)
    assert fp.tariff_id.iloc[0] == f"car_running_{fuel}"


def test_car_without_profile_has_unknown_cost(factors, tariffs):
    fp = fp_of(make_sections([("CAR", 12000.0, 900.0)]), a_tester(), factors, tariffs)
    assert math.isnan(fp.cost_eur.iloc[0]) and fp.tariff_id.isna().iloc[0]


@pytest.mark.parametrize("cv,km,rate,fixed", [
    (3, 4000, 0.529, 0), (4, 5000, 0.606, 0), (5, 5001, 0.357, 1395), (5, 10000, 0.357, 1395),
    (6, 20000, 0.374, 1457), (7, 25000, 0.470, 0), (11, 8000, 0.394, 1515), (2, 30000, 0.370, 0)])
def test_bareme_grid(tariffs, cv, km, rate, fixed):
    got = bareme_annual_cost([km], [cv], [False], tariffs)[0]
    assert got == pytest.approx(km * rate + fixed)
    assert bareme_annual_cost([km], [cv], [True], tariffs)[0] == pytest.approx((km * rate + fixed) * 1.2)


def test_own_car_bareme_cost_per_km(factors, tariffs):
    sec = make_sections([("CAR", 12000.0, 900.0)])
    fp = fp_of(sec, a_tester(car_fuel="diesel", car_size="moyenne", car_fiscal_hp=5), factors, tariffs,
               car_cost_method="bareme", annual_km={"010": 10000.0})
    assert fp.cost_eur.iloc[0] == pytest.approx(12 * (10000 * 0.357 + 1395) / 10000)
    assert fp.tariff_id.iloc[0] == "bareme"
    # electric: +20 %; unknown CV: the default CV of the tariff file
    fp = fp_of(sec, a_tester(car_fuel="electric", car_size="moyenne"), factors, tariffs,
               car_cost_method="bareme", annual_km={"010": 10000.0})
    cv = tariffs["bareme_default_cv"]
    want = bareme_annual_cost([10000.0], [cv], [True], tariffs)[0] / 10000 * 12
    assert fp.cost_eur.iloc[0] == pytest.approx(want)


def test_annualised_mileage_from_data():
    # 100 km of car over 14 days -> 100 * 365.25 / 14 km per year; shorter spans floor at 7 days
    sec = make_sections([("CAR", 60000.0, 3600.0, 0), ("CAR", 40000.0, 3600.0, 14 * 1440 - 60)])
    assert annualised_car_km(sec)["010"] == pytest.approx(100 * 365.25 / 14)
    short = make_sections([("CAR", 10000.0, 600.0)])
    assert annualised_car_km(short)["010"] == pytest.approx(10 * 365.25 / 7)


def test_bad_car_cost_method(factors, tariffs):
    with pytest.raises(ConfigError):
        fp_of(make_sections([("CAR", 1.0, 1.0)]), a_tester(), factors, tariffs, car_cost_method="guess")


# ---- parking -----------------------------------------------------------------------------------
def test_parking_record_hourly_and_subscription(factors, tariffs):
    prof = dict(car_fuel="petrol", car_size="petite", parking_subscription="17300-P-001")
    sec = make_sections([("CAR", 5000.0, 600.0, 0), ("CAR", 5000.0, 600.0, 600),
                         ("CAR", 5000.0, 600.0, 1440), ("CAR", 5000.0, 600.0, 2000)])
    end = lambda i, h: sec.end_ts[i] + pd.Timedelta(hours=h)  # noqa: E731
    r = pd.DataFrame([
        rec(sec, 0, source="parking", kind="parking_session", car_park_id="17300-P-009",
            start_ts=sec.end_ts[0], end_ts=end(0, 2), amount_eur=3.1),
        rec(sec, 1, source="parking", kind="parking_session", car_park_id="17300-P-009",
            start_ts=sec.end_ts[1], end_ts=end(1, 2.5)),  # no amount -> hourly tariff
        rec(sec, 2, source="parking", kind="parking_session", car_park_id="17300-P-001",
            start_ts=sec.end_ts[2], end_ts=end(2, 8), amount_eur=0.0),
        rec(sec, 3, source="parking", kind="parking_session", car_park_id="17300-P-001",
            start_ts=sec.end_ts[3], end_ts=end(3, 8), amount_eur=0.0),
    ])
    fp = fp_of(sec, a_tester(**prof), factors, tariffs, r)
    run = factors.table.at["car_petrol_petite", "consumption_per_100km"] / 100 * 5 * tariffs["fuel_petrol"]
    sub = tariffs["parking_subscription_month"] / 2
    assert fp.cost_eur.tolist() == pytest.approx(
        [run + 3.1, run + 2.5 * tariffs["parking_hourly"], run + sub, run + sub])
    assert fp.tariff_id.tolist() == ["car_running_petrol+parking_record", "car_running_petrol+parking_hourly",
                                     "car_running_petrol+parking_subscription",
                                     "car_running_petrol+parking_subscription"]


def test_free_modes_and_unpriced_modes(factors, tariffs):
    sec = make_sections([("WALKING", 1000.0, 600.0), ("BICYCLING", 1000.0, 600.0), ("E_BIKE", 1000.0, 600.0),
                         ("TRAIN", 50000.0, 1800.0), ("AIR", 900000.0, 7200.0), ("UNKNOWN", 1000.0, 600.0)])
    fp = fp_of(sec, a_tester(), factors, tariffs)
    assert fp.cost_eur.iloc[:3].tolist() == [0.0, 0.0, 0.0]
    assert fp.cost_eur.iloc[3:].isna().all()
    r = pd.DataFrame([rec(sec, 3, source="yelo_bus", amount_eur=12.5)])
    assert fp_of(sec, a_tester(), factors, tariffs, r).cost_eur.iloc[3] == 12.5


# ---- the tariff file drives the results ----------------------------------------------------------
def test_editing_a_tariff_changes_results_and_version(data_copy, factors):
    sec = make_sections([("BUS", 3000.0, 600.0), ("CARSHARE", 10000.0, 3600.0)])
    t0 = load_tariffs(data_copy / "tariffs.csv")
    before = compute_footprint(sec, a_tester(), factors, t0)
    p = data_copy / "tariffs.csv"
    p.write_text(p.read_text().replace("bus_ticket_1h,1.40,", "bus_ticket_1h,1.90,"))
    b = data_copy / "bareme_kilometrique.csv"
    t1 = load_tariffs(p)
    after = compute_footprint(sec, a_tester(), factors, t1)
    assert before.cost_eur.iloc[0] == pytest.approx(1.40) and after.cost_eur.iloc[0] == pytest.approx(1.90)
    assert after.cost_eur.iloc[1] == before.cost_eur.iloc[1]
    assert before.tariff_version.iloc[0] != after.tariff_version.iloc[0] == t1.version
    b.write_text(b.read_text().replace("5,20000,0.357,1395", "5,20000,0.400,1395"))
    assert load_tariffs(p).version != t1.version
    assert bareme_annual_cost([10000.0], [5], [False], load_tariffs(p))[0] == pytest.approx(10000 * 0.4 + 1395)


@pytest.mark.parametrize("edit,msg", [
    (lambda t: t.replace("carshare_km,0.37", "carshare_km,abc"), "not a number"),
    (lambda t: t.replace("carshare_km,0.37", "carshare_km,-1"), "negative"),
    (lambda t: "\n".join(ln for ln in t.splitlines() if not ln.startswith("boat_single")), "boat_single"),
])
def test_bad_tariff_file_is_a_config_error(data_copy, edit, msg):
    p = data_copy / "tariffs.csv"
    p.write_text(edit(p.read_text()))
    with pytest.raises(ConfigError, match=msg):
        load_tariffs(p)


def test_every_tariff_has_a_source_and_date(tariffs):
    t = tariffs.table
    assert (t.source.str.len() > 10).all() and (t.date.str.match(r"\d{4}-\d{2}-\d{2}")).all()
    assert np.isfinite(t.value).all()


def test_pass_shared_by_trips_then_by_each_trips_sections(factors, tariffs):
    # 3 bus trips in the month, the second with a transfer (2 bus sections)
    sec = make_sections([("BUS", 3000.0, 600.0, 0, "a"), ("BUS", 3000.0, 600.0, 1440, "b"),
                         ("BUS", 3000.0, 600.0, 1460, "b"), ("BUS", 3000.0, 600.0, 2880, "c")])
    fp = fp_of(sec, a_tester(yelo_pass="monthly"), factors, tariffs)
    p = tariffs["pass_monthly"]
    assert fp.cost_eur.tolist() == pytest.approx([p / 3, p / 6, p / 6, p / 3])


def test_pass_inferred_from_validation_records(factors, tariffs):
    sec = make_sections([("BUS", 3000.0, 600.0, 0, "a"), ("BUS", 3000.0, 600.0, 1440, "b")])
    r = pd.DataFrame([rec(sec, 0, fare_product="PASS_YEAR", amount_eur=0.0)])
    fp = fp_of(sec, a_tester(yelo_pass=None), factors, tariffs, r)
    assert fp.cost_eur.tolist() == pytest.approx([tariffs["pass_annual"] / 12 / 2] * 2)
    assert set(fp.tariff_id) == {"pass_annual"}


def test_parking_on_a_section_without_mode_tariff(factors, tariffs):
    # a car section of a tester with no car profile (cost unknown) still carries the parking paid
    sec = make_sections([("CAR", 5000.0, 600.0), ("WALKING", 300.0, 300.0)])
    r = pd.DataFrame([rec(sec, 0, source="parking", kind="parking_session", car_park_id="17300-P-009",
                          start_ts=sec.end_ts[0], end_ts=sec.end_ts[0] + pd.Timedelta(hours=1), amount_eur=2.2)])
    fp = fp_of(sec, a_tester(), factors, tariffs, r)
    assert fp.cost_eur.tolist() == pytest.approx([2.2, 0.0])
    assert fp.tariff_id.tolist() == ["parking_record", "none"]
