"""Emission factors: the file matches its ADEME sources, and carbon per section equals a hand
computation from the factor file for every mode, with and without construction."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest

from carbon.factors import FACTORS_META_PATH, FACTORS_PATH, FactorParams, factor_table, load_factors
from carbon.footprint import FootprintParams, compute_footprint
from emission_ext.errors import ConfigError
from emission_ext.reference import DATA as REF_DATA
from emission_ext import schema
from emission_ext.schema import MODES

from .conftest import a_tester, make_sections


def _rows():
    with open(FACTORS_PATH, newline="") as fh:
        return {r["factor_id"]: r for r in csv.DictReader(fh)}


def _hand(fid, construction):
    """kg CO2e per km of one factor row, straight from the CSV text."""
    r = _rows()[fid]
    v = float(r["usage_kg_per_km"] or 0) + float(r["contrails_kg_per_km"] or 0)
    return v + (float(r["construction_kg_per_km"] or 0) if construction else 0.0)


META = json.loads(FACTORS_META_PATH.read_text())

# mode, distance_m, tester car profile, expected factor ids (central or range candidates)
CASES = [
    ("WALKING", 1234.5, {}, "walking"),
    ("BICYCLING", 4321.0, {}, "bicycling"),
    ("E_BIKE", 7000.0, {}, "e_bike"),
    ("BIKESHARE", 2500.0, {}, "bikeshare"),
    ("BUS", 6100.0, {}, "bus_mix"),
    ("FERRY", 3000.0, {}, "range:FERRY"),
    ("CAR", 12345.0, {"car_fuel": "petrol", "car_size": "petite"}, "car_petrol_petite"),
    ("CAR", 12345.0, {"car_fuel": "diesel", "car_size": "SUV"}, "car_diesel_SUV"),
    ("CAR", 12345.0, {"car_fuel": "electric", "car_size": "berline"}, "car_electric_berline"),
    ("CAR", 12345.0, {"car_fuel": "hybrid", "car_size": "moyenne"}, "car_hybrid_moyenne"),
    ("CAR", 12345.0, {}, "car_generic"),
    ("CARSHARE", 8000.0, {}, "carshare_hybrid"),
    ("TRAIN", 80000.0, {}, "train_ter"),
    ("TRAIN", 150000.0, {}, "train_ter"),
    ("TRAIN", 470000.0, {}, "train_tgv"),
    ("TRAM", 3000.0, {}, "tram"),
    ("SUBWAY", 3000.0, {}, "subway"),
    ("AIR", 800000.0, {}, "air_short"),
    ("AIR", 1500000.0, {}, "air_medium"),
    ("AIR", 4000000.0, {}, "air_medium_long"),
    ("AIR", 9000000.0, {}, "air_long"),
    ("UNKNOWN", 5000.0, {}, "range:UNKNOWN"),
]


def test_every_schema_mode_is_covered():
    assert {c[0] for c in CASES} == set(MODES)


@pytest.mark.parametrize("construction", [False, True], ids=["without_construction", "with_construction"])
@pytest.mark.parametrize("mode,dist,profile,expected", CASES,
                         ids=[f"{c[0]}-{c[3]}-{int(c[1])}" for c in CASES])
def test_carbon_per_mode_matches_hand_computation(factors, tariffs, construction, mode, dist, profile,
                                                   expected):
    sec = make_sections([(mode, dist, 600.0)])
    fp = compute_footprint(sec, a_tester(**profile), factors, tariffs,
                           params=FootprintParams(factors=FactorParams(include_construction=construction)))
    schema.validate(fp, "footprint")
    row = fp.iloc[0]
    km = dist / 1000.0
    if expected.startswith("range:"):
        cands = META["ranges"][expected[6:]]["candidates"]
        vals = [_hand(c, construction) for c in cands]
        assert math.isnan(row["co2e_kg"])  # a range, not a guess presented as fact
        assert row["co2e_kg_low"] == pytest.approx(km * min(vals), abs=1e-9)
        assert row["co2e_kg_high"] == pytest.approx(km * max(vals), abs=1e-9)
        return
    if expected == "bus_mix":
        want = sum(s * _hand(fid, construction) for fid, s in META["bus_fleet_mix"]["shares"].items())
    else:
        want = _hand(expected, construction)
    assert row["factor_id"] == expected
    assert abs(row["co2e_kg"] - km * want) <= 1e-9
    if expected != "car_generic":
        assert row["co2e_kg_low"] == row["co2e_kg_high"] == row["co2e_kg"]
    else:  # unknown car: central value plus the range over every car row
        cands = META["ranges"]["CAR"]["candidates"]
        assert row["co2e_kg_low"] == pytest.approx(km * min(_hand(c, construction) for c in cands), abs=1e-9)
        assert row["co2e_kg_high"] == pytest.approx(km * max(_hand(c, construction) for c in cands), abs=1e-9)


def test_construction_makes_a_difference(factors, tariffs):
    sec = make_sections([("CAR", 10000.0, 600.0)])
    without = compute_footprint(sec, a_tester(car_fuel="petrol", car_size="moyenne"), factors, tariffs)
    with_c = compute_footprint(sec, a_tester(car_fuel="petrol", car_size="moyenne"), factors, tariffs,
                               params=FootprintParams(factors=FactorParams(include_construction=True)))
    assert with_c.co2e_kg.iloc[0] - without.co2e_kg.iloc[0] == pytest.approx(
        10 * float(_rows()["car_petrol_moyenne"]["construction_kg_per_km"]), abs=1e-12)


def test_car_occupancy_divides_car_factor(factors, tariffs):
    sec = make_sections([("CAR", 10000.0, 600.0), ("BUS", 10000.0, 600.0)])
    one = compute_footprint(sec, a_tester(car_fuel="diesel", car_size="petite"), factors, tariffs)
    two = compute_footprint(sec, a_tester(car_fuel="diesel", car_size="petite"), factors, tariffs,
                            params=FootprintParams(factors=FactorParams(car_occupancy=2.0)))
    assert two.co2e_kg.iloc[0] == pytest.approx(one.co2e_kg.iloc[0] / 2, abs=1e-12)
    assert two.co2e_kg.iloc[1] == one.co2e_kg.iloc[1]  # buses are per passenger-km already


def test_bus_mix_parameter(factors, tariffs):
    sec = make_sections([("BUS", 10000.0, 600.0)])
    mix = {"bus_thermal": 0.5, "bus_cng": 0.25, "bus_electric": 0.25}
    fp = compute_footprint(sec, a_tester(), factors, tariffs,
                           params=FootprintParams(factors=FactorParams(bus_mix=mix)))
    want = 10 * sum(s * _hand(f, False) for f, s in mix.items())
    assert abs(fp.co2e_kg.iloc[0] - want) <= 1e-9
    with pytest.raises(ConfigError):
        factor_table(factors, FactorParams(bus_mix={"bus_thermal": 0.5}))


def test_carshare_vehicle_fuel_from_record(factors, tariffs):
    sec = make_sections([("CARSHARE", 10000.0, 3600.0)])
    rec = pd.DataFrame([dict(user_id="010", record_id="b1", source="yelo_car", kind="booking",
                             start_ts=sec.start_ts[0], end_ts=sec.end_ts[0], section_id=sec.section_id[0],
                             vehicle_fuel="electric", amount_eur=5.0)])
    fp = compute_footprint(sec, a_tester(), factors, tariffs, records=rec)
    assert fp.factor_id.iloc[0] == "carshare_electric"
    assert abs(fp.co2e_kg.iloc[0] - 10 * _hand("carshare_electric", False)) <= 1e-9


def test_factor_file_rederived_from_ademe_sources():
    """Every row's values come from the shipped ADEME files (no value typed by hand)."""
    ademe = REF_DATA / "ademe"
    ic = pd.read_csv(ademe / "impactco2_transport_factors.csv")
    cons = pd.read_csv(ademe / "car_consumption_nosgestesclimat.csv").set_index("size_class")
    fuel = pd.read_csv(ademe / "fuel_emission_factors.csv").set_index("fuel")["kgco2e_per_litre"]
    for fid, r in _rows().items():
        ref = dict(kv.split("=") for kv in r["source_ref"].split())
        src = ic[(ic["id"] == int(ref["id"])) & (ic["slug"] == ref["slug"])]
        if "subtitle" in ref:
            src = src[src["subtitle"] == ref["subtitle"]]
        assert len(src) == 1, fid
        s = src.iloc[0].fillna(0)
        assert float(r["construction_kg_per_km"]) == pytest.approx(s["construction_5"], abs=1e-15), fid
        assert float(r["contrails_kg_per_km"]) == pytest.approx(s["contrails_7"], abs=1e-15), fid
        if r["fuel"] in ("petrol", "diesel"):
            want = cons.at[r["size_class"], f"{r['fuel']}_l_per_100km"] / 100 * fuel[r["fuel"]]
            assert float(r["usage_kg_per_km"]) == pytest.approx(want, abs=1e-12), fid
            assert float(r["consumption_per_100km"]) == cons.at[r["size_class"], f"{r['fuel']}_l_per_100km"]
        else:
            assert float(r["usage_kg_per_km"]) == pytest.approx(s["fuel_or_usage_6"], abs=1e-15), fid
        if r["fuel"] == "electric":
            assert float(r["consumption_per_100km"]) == cons.at[r["size_class"], "electric_kwh_per_100km"]
        assert r["source"].startswith("ADEME"), fid


def test_editing_the_factor_file_changes_results_and_version(data_copy, tariffs):
    sec = make_sections([("BUS", 10000.0, 600.0), ("TRAM", 10000.0, 600.0)])
    before_f = load_factors(data_copy / "emission_factors.csv")
    before = compute_footprint(sec, a_tester(), before_f, tariffs)
    text = (data_copy / "emission_factors.csv").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("tram,"))
    parts = next(csv.reader([line]))
    parts[9] = "0.05"  # usage_kg_per_km
    new_line = ",".join(f'"{p}"' if "," in p else p for p in parts)
    (data_copy / "emission_factors.csv").write_text(text.replace(line, new_line))
    after_f = load_factors(data_copy / "emission_factors.csv")
    after = compute_footprint(sec, a_tester(), after_f, tariffs)
    assert after.co2e_kg.iloc[1] == pytest.approx(10 * 0.05, abs=1e-12)
    assert after.co2e_kg.iloc[0] == before.co2e_kg.iloc[0]
    assert before.factor_version.iloc[0] != after.factor_version.iloc[0]
    assert (after.factor_version == after_f.version).all()
    # the bus mix lives in the sidecar: editing it changes BUS and the version too
    meta = json.loads((data_copy / "emission_factors.meta.json").read_text())
    meta["bus_fleet_mix"]["shares"] = {"bus_thermal": 0.0, "bus_cng": 0.0, "bus_electric": 1.0}
    (data_copy / "emission_factors.meta.json").write_text(json.dumps(meta))
    mixed_f = load_factors(data_copy / "emission_factors.csv")
    mixed = compute_footprint(sec, a_tester(), mixed_f, tariffs)
    assert mixed.co2e_kg.iloc[0] == pytest.approx(10 * _hand("bus_electric", False), abs=1e-12)
    assert mixed_f.version not in (after_f.version, before_f.version)


@pytest.mark.parametrize("edit,msg", [
    (lambda t: t.replace("0.00223", "abc"), "not a number"),
    (lambda t: t.replace("walking,WALKING", "walking,HOVERBOARD"), "unknown mode"),
    (lambda t: t.replace("bicycling,BICYCLING", "walking,BICYCLING"), "duplicate"),
])
def test_bad_factor_file_is_a_config_error(data_copy, edit, msg):
    p = data_copy / "emission_factors.csv"
    p.write_text(edit(p.read_text()))
    with pytest.raises(ConfigError, match=msg):
        load_factors(p)


def test_missing_factor_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_factors(tmp_path / "nope.csv")


def test_factor_table_has_no_negative_or_missing_central_for_sourced_modes(factors):
    t = factor_table(factors)
    sourced = t.drop(index=["ferry_range", "unknown_range"])
    assert np.isfinite(sourced.per_km).all() and (sourced.per_km >= 0).all()
    assert (t.low_per_km <= t.high_per_km).all()
