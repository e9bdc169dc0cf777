"""The coach: suggestions only where they fit (distance, hour, a bus line that runs then, bike
stations at both ends), savings per month from the factor and tariff files, ranking."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carbon.advice import DAYS_PER_MONTH, AdviceContext, AdviceParams, advise
from carbon.factors import factor_table
from carbon.footprint import compute_footprint
from emission_ext.reference import load_bike_stations, load_gtfs

from .conftest import a_tester

# a tiny hand-made network on a north-south street: stops every ~1.1 km (0.01 deg of latitude)
LAT0, LON0 = 46.15, -1.15


def tiny_gtfs(weekdays=(1, 1, 1, 1, 1, 0, 0)):
    stops = pd.DataFrame({"stop_id": ["A", "B", "C"], "stop_name": ["Alpha", "Bravo", "Charlie"],
                          "stop_lat": [LAT0, LAT0 + 0.01, LAT0 + 0.03], "stop_lon": [LON0] * 3})
    routes = pd.DataFrame({"route_id": ["R1", "F"], "route_short_name": ["1", "Boat"], "route_type": [3, 4]})
    trips = pd.DataFrame({"route_id": ["R1", "R1", "F"], "service_id": ["WK", "WK", "WK"],
                          "trip_id": ["am", "pm", "boat"]})
    st = pd.DataFrame({
        "trip_id": ["am"] * 3 + ["pm"] * 3 + ["boat"] * 2,
        "arrival_time": ["08:00:00", "08:04:00", "08:10:00", "17:00:00", "17:04:00", "17:10:00", "12:00:00", "12:20:00"],
        "departure_time": ["08:00:00", "08:04:00", "08:10:00", "17:00:00", "17:04:00", "17:10:00", "12:00:00", "12:20:00"],
        "stop_id": ["A", "B", "C", "A", "B", "C", "A", "C"],
        "stop_sequence": [1, 2, 3, 1, 2, 3, 1, 2]})
    cal = pd.DataFrame([dict(service_id="WK", start_date="20260101", end_date="20261231",
                             **dict(zip(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                         "sunday"], weekdays)))])
    cd = pd.DataFrame({"service_id": ["WK"], "date": ["20260305"], "exception_type": ["2"]})  # no bus Thu 5 Mar
    return {"stops": stops, "routes": routes, "trips": trips, "stop_times": st, "calendar": cal,
            "calendar_dates": cd}


STATIONS = pd.DataFrame({"station_id": ["s1", "s2"], "name": ["Velo A", "Velo C"],
                         "lat": [LAT0 + 0.001, LAT0 + 0.0305], "lon": [LON0, LON0]})


def car_trips(starts_local, o=(LAT0, LON0), d=(LAT0 + 0.03, LON0), km=3.4, user="010"):
    trips, secs = [], []
    for k, s in enumerate(starts_local):
        t0 = pd.Timestamp(s).tz_localize("Europe/Paris").tz_convert("UTC")
        t1 = t0 + pd.Timedelta(minutes=10)
        trips.append(dict(user_id=user, trip_id=f"t{k}", start_ts=t0, end_ts=t1, start_lat=o[0], start_lon=o[1],
                          end_lat=d[0], end_lon=d[1], distance_m=km * 1000, duration_s=600.0))
        secs.append(dict(user_id=user, trip_id=f"t{k}", section_id=f"s{k}", start_ts=t0, end_ts=t1,
                         distance_m=km * 1000, duration_s=600.0, mode="CAR"))
    return pd.DataFrame(trips), pd.DataFrame(secs)


def run(factors, tariffs, starts, params=AdviceParams(), stations=None, prof=None, extra_sections=None, **kw):
    trips, secs = car_trips(starts, **kw)
    if extra_sections is not None:
        secs = pd.concat([secs, extra_sections], ignore_index=True)
    t = prof if prof is not None else a_tester(car_fuel="petrol", car_size="moyenne")
    fp = compute_footprint(secs, t, factors, tariffs)
    ctx = AdviceContext.build(tiny_gtfs(), stations, lat0=LAT0)
    return advise(trips, fp, secs, t, ctx, factors, tariffs, params), fp


WEEK_8AM = [f"2026-03-0{d} 08:02" for d in (2, 3, 4, 6)]  # Mon Tue Wed Fri


def test_bus_advice_when_a_line_runs_at_that_time(factors, tariffs):
    adv, fp = run(factors, tariffs, WEEK_8AM, AdviceParams(bike_max_km=0.1))
    assert len(adv) == 1
    a = adv.iloc[0]
    assert (a.kind, a.line, a.from_place, a.to_place, a.n_trips) == ("bus", "1", "Alpha", "Charlie", 4)
    bus = factor_table(factors).at["bus_mix", "per_km"]
    span_days = 7.0  # 4 trips between Mon and Fri: the observation floor of 7 days applies
    per_trip_co2 = fp.co2e_kg.iloc[0] - 3.4 * bus
    assert a.co2e_kg_saved_per_month == pytest.approx(4 * per_trip_co2 * DAYS_PER_MONTH / span_days)
    per_trip_eur = fp.cost_eur.iloc[0] - tariffs["bus_ticket_1h"]
    assert a.eur_saved_per_month == pytest.approx(4 * per_trip_eur * DAYS_PER_MONTH / span_days)
    assert "line 1" in a.message and "per month" in a.message


@pytest.mark.parametrize("starts,why", [
    (["2026-03-02 03:00"], "3 a.m.: no bus at that hour, no bike at night"),
    (["2026-03-02 12:00"], "noon: no bus of line 1 within 20 min"),
    (["2026-03-07 08:02"], "Saturday: the service does not run"),
    (["2026-03-05 08:02"], "Thursday 5 March: removed by calendar_dates"),
])
def test_no_bus_advice_that_does_not_fit(factors, tariffs, starts, why):
    adv, _ = run(factors, tariffs, starts, AdviceParams(bike_max_km=0.1))
    assert adv.empty, why


def test_no_bus_advice_when_no_line_near_an_end(factors, tariffs):
    adv, _ = run(factors, tariffs, WEEK_8AM, AdviceParams(bike_max_km=0.1), d=(LAT0 + 0.03, LON0 + 0.02))
    assert adv.empty


def test_no_bus_advice_in_the_wrong_direction(factors, tariffs):
    adv, _ = run(factors, tariffs, WEEK_8AM, AdviceParams(bike_max_km=0.1), o=(LAT0 + 0.03, LON0), d=(LAT0, LON0))
    assert adv.empty


def test_ferry_routes_are_not_bus_advice(factors, tariffs):
    adv, _ = run(factors, tariffs, ["2026-03-02 12:01"], AdviceParams(bike_max_km=0.1))
    assert adv.empty  # the noon departure A->C is the boat, not a bus


def test_bikeshare_needs_stations_at_both_ends(factors, tariffs):
    p = AdviceParams(bus_max_km=0.1)
    adv, fp = run(factors, tariffs, ["2026-03-02 12:00", "2026-03-09 12:00"], p, stations=STATIONS)
    assert adv.kind.tolist() == ["bikeshare"]
    a = adv.iloc[0]
    assert (a.from_place, a.to_place) == ("Velo A", "Velo C")
    bs = factor_table(factors).at["bikeshare", "per_km"]
    span = 7 + 10 / 1440  # first start to last end: a week and one 10-minute trip
    # 3.4 km at 15 km/h = 13.6 min: inside the free 30 minutes, the whole car cost is saved
    assert a.eur_saved_per_month == pytest.approx(2 * fp.cost_eur.iloc[0] * DAYS_PER_MONTH / span)
    assert a.co2e_kg_saved_per_month == pytest.approx(2 * (fp.co2e_kg.iloc[0] - 3.4 * bs) * DAYS_PER_MONTH / span)
    one_station = STATIONS.iloc[:1]
    assert run(factors, tariffs, ["2026-03-02 12:00"], p, stations=one_station)[0].empty
    assert run(factors, tariffs, ["2026-03-02 23:30"], p, stations=STATIONS)[0].empty  # night


def test_own_bike_for_testers_who_cycle(factors, tariffs):
    bike = pd.DataFrame([dict(user_id="010", trip_id="tb", section_id="sb", start_ts=pd.Timestamp("2026-03-10T10:00Z"),
                              end_ts=pd.Timestamp("2026-03-10T10:20Z"), distance_m=3000.0, duration_s=1200.0,
                              mode="BICYCLING")])
    adv, _ = run(factors, tariffs, WEEK_8AM, extra_sections=bike)
    assert adv.kind.tolist() == ["bike"]  # preferred over the bus: it saves more
    long, _ = run(factors, tariffs, WEEK_8AM, extra_sections=bike, km=8.0)
    assert long.kind.tolist() == ["bus"]  # 8 km: too far to suggest a bike


def test_ranking_and_pass_holders(factors, tariffs):
    trips1, secs1 = car_trips(WEEK_8AM)
    # a different habit: A -> B (1.1 km) in the evening
    trips2, secs2 = car_trips(["2026-03-02 17:01"], d=(LAT0 + 0.01, LON0), km=1.2)
    trips2 = trips2.assign(trip_id="x0")
    secs2 = secs2.assign(trip_id="x0", section_id="xs0")
    trips = pd.concat([trips1, trips2], ignore_index=True)
    secs = pd.concat([secs1, secs2], ignore_index=True)
    t = a_tester(car_fuel="diesel", car_size="SUV", yelo_pass="monthly")
    fp = compute_footprint(secs, t, factors, tariffs)
    ctx = AdviceContext.build(tiny_gtfs(), None, lat0=LAT0)
    adv = advise(trips, fp, secs, t, ctx, factors, tariffs, AdviceParams(bike_max_km=0.1))
    assert adv["rank"].tolist() == [1, 2]
    assert adv.n_trips.tolist() == [4, 1]
    assert adv.co2e_kg_saved_per_month.is_monotonic_decreasing
    # pass holder: the bus costs nothing more, the whole car cost is saved
    assert adv.eur_saved_per_month.iloc[0] == pytest.approx(4 * fp.cost_eur.iloc[0] * DAYS_PER_MONTH / 7.0)


def test_nearby_trips_form_one_habit(factors, tariffs):
    # the same commute with ends jittered by up to ~150 m is one habit, not four
    trips, secs = car_trips(WEEK_8AM)
    jitter = np.array([0.0, 0.0012, -0.0012, 0.0008])
    trips = trips.assign(start_lat=trips.start_lat + jitter, end_lat=trips.end_lat - jitter)
    t = a_tester(car_fuel="petrol", car_size="moyenne")
    fp = compute_footprint(secs, t, factors, tariffs)
    ctx = AdviceContext.build(tiny_gtfs(), None, lat0=LAT0)
    adv = advise(trips, fp, secs, t, ctx, factors, tariffs, AdviceParams(bike_max_km=0.1))
    assert adv.n_trips.tolist() == [4]


def test_non_car_trips_get_no_advice(factors, tariffs):
    trips, secs = car_trips(WEEK_8AM)
    secs = secs.assign(mode="BUS")
    t = a_tester()
    fp = compute_footprint(secs, t, factors, tariffs)
    ctx = AdviceContext.build(tiny_gtfs(), STATIONS, lat0=LAT0)
    assert advise(trips, fp, secs, t, ctx, factors, tariffs).empty


@pytest.fixture(scope="module")
def real_context():
    return AdviceContext.build(load_gtfs(), load_bike_stations())


def test_real_yelo_feed_line_found_and_not_at_3am(real_context, factors, tariffs):
    """On the real Yélo GTFS: a car trip copying a real bus trip's stops and time gets bus
    advice naming that line; the same trip at 03:00 gets none."""
    g = load_gtfs()
    st = g["stop_times"].merge(g["trips"][["trip_id", "route_id"]]).merge(g["routes"][["route_id", "route_short_name"]])
    trip_id = st[(st.route_short_name == "1") & (st.departure_time.str[:2] == "08")].trip_id.iloc[0]
    seq = st[st.trip_id == trip_id].sort_values("stop_sequence")
    stops = g["stops"].set_index("stop_id")
    a, b = stops.loc[seq.stop_id.iloc[1]], stops.loc[seq.stop_id.iloc[8]]
    dep = seq.departure_time.iloc[1]
    day = "2026-03-03"  # a Tuesday inside the feed's validity
    trips, secs = car_trips([f"{day} {dep[:5]}"], o=(a.stop_lat, a.stop_lon), d=(b.stop_lat, b.stop_lon), km=3.0)
    t = a_tester(car_fuel="petrol", car_size="petite")
    fp = compute_footprint(secs, t, factors, tariffs)
    adv = advise(trips, fp, secs, t, real_context, factors, tariffs, AdviceParams(bike_max_km=0.1))
    assert adv.kind.tolist() == ["bus"]
    assert adv.line.iloc[0]  # a real line name
    trips3, secs3 = car_trips([f"{day} 03:00"], o=(a.stop_lat, a.stop_lon), d=(b.stop_lat, b.stop_lon), km=3.0)
    fp3 = compute_footprint(secs3, t, factors, tariffs)
    assert advise(trips3, fp3, secs3, t, real_context, factors, tariffs).empty
    assert np.isfinite(adv.co2e_kg_saved_per_month).all()


def test_unknown_car_cost_stays_unknown_with_walking_legs(factors, tariffs):
    trips, secs = car_trips(WEEK_8AM)
    walk = secs.assign(section_id=secs.section_id + "w", mode="WALKING", distance_m=200.0)
    secs = pd.concat([secs, walk], ignore_index=True)
    t = a_tester()  # no car profile: the car's cost is unknown
    fp = compute_footprint(secs, t, factors, tariffs)
    ctx = AdviceContext.build(tiny_gtfs(), STATIONS, lat0=LAT0)
    # (ADEME's average car without construction emits less per km than a thermal bus per
    # passenger-km, so only the bike-share suggestion saves CO2e here)
    adv = advise(trips, fp, secs, t, ctx, factors, tariffs)
    assert adv.kind.tolist() == ["bikeshare"]
    assert len(adv) == 1 and np.isnan(adv.eur_saved_per_month.iloc[0])
    assert "EUR" not in adv.message.iloc[0]


def test_negligible_savings_are_not_suggested(factors, tariffs):
    # one trip, then data a year later: ~0.08 kg/month, below the 0.1 kg floor
    trips, secs = car_trips(["2026-03-02 08:02", "2027-03-01 08:02"], km=1.0)
    trips = trips.assign(end_lat=LAT0 + 0.01)
    t = a_tester(car_fuel="petrol", car_size="petite")
    fp = compute_footprint(secs, t, factors, tariffs)
    ctx = AdviceContext.build(tiny_gtfs(), None, lat0=LAT0)
    adv = advise(trips, fp, secs, t, ctx, factors, tariffs, AdviceParams(bike_max_km=0.1))
    assert adv.empty
    adv = advise(trips, fp, secs, t, ctx, factors, tariffs,
                 AdviceParams(bike_max_km=0.1, min_co2e_kg_per_month=0.0))
    assert len(adv) == 1 and 0 < adv.co2e_kg_saved_per_month.iloc[0] < 0.1


def test_message_says_more_expensive_rather_than_a_negative_saving():
    from types import SimpleNamespace

    from carbon.advice import _message

    r = SimpleNamespace(n_trips=1, distance_km=5.6, usual_time="16:54", kind="bus", line="7",
                        from_place="Orbigny", to_place="Chagnolet", co2e_kg_saved_per_month=0.4,
                        eur_saved_per_month=-0.83)
    msg = _message(r)
    assert "1 car trip of about 5.6 km" in msg and " is served by Yélo bus line 7" in msg
    assert "EUR -" not in msg and "for about EUR 0.83 more per month" in msg
