"""Transit index: proximity to lines, route share, stations, timetable match.

A tiny hand-made feed (one east-west bus line with a shape, one ferry without a shape) whose
answers are known, plus the shipped Yélo feed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emission_ext.reference import load_gtfs
from pipeline.transit import TransitIndex, TransitParams

LAT0, LON0 = 46.15, -1.15
M_PER_DEG_LAT = 111_195.0
M_PER_DEG_LON = M_PER_DEG_LAT * np.cos(np.radians(LAT0))


def east(m):
    return LON0 + np.asarray(m, float) / M_PER_DEG_LON


def north(m):
    return LAT0 + np.asarray(m, float) / M_PER_DEG_LAT


def tiny_feed() -> dict[str, pd.DataFrame]:
    """Bus line L1 runs east along lat LAT0 from x=0 to x=3000 m (stops every 1000 m), ferry F
    crosses from (0, 2000) to (1500, 2000) with no shape. L1 runs weekdays, every 10 min."""
    routes = pd.DataFrame({"route_id": ["L1", "F"], "route_type": [3, 4]})
    stops = pd.DataFrame({
        "stop_id": ["S0", "S1", "S2", "S3", "P0", "P1", "G"],
        "stop_name": ["Zero", "One", "Two", "Three", "Port A", "Port B", "Gare Centrale"],
        "stop_lat": [LAT0, LAT0, LAT0, LAT0, north(2000), north(2000), north(-800)],
        "stop_lon": [east(0), east(1000), east(2000), east(3000), east(0), east(1500), east(3000)],
        "location_type": [0] * 7,
        "parent_station": [np.nan] * 7,
    })
    n = 6
    trips = pd.DataFrame({
        "route_id": ["L1"] * n + ["F"],
        "service_id": ["WK"] * n + ["ALL"],
        "trip_id": [f"t{i}" for i in range(n)] + ["f0"],
        "shape_id": ["SH1"] * n + [np.nan],
    })
    rows = []
    for i in range(n):
        dep = 8 * 3600 + i * 600
        for k in range(4):  # 4 min between stops
            t = dep + k * 240
            hms = f"{t // 3600:02d}:{t % 3600 // 60:02d}:00"
            rows.append((f"t{i}", hms, hms, f"S{k}", k + 1))
    rows += [("f0", "09:00:00", "09:00:00", "P0", 1), ("f0", "09:15:00", "09:15:00", "P1", 2)]
    stop_times = pd.DataFrame(rows, columns=["trip_id", "arrival_time", "departure_time", "stop_id",
                                             "stop_sequence"])
    shapes = pd.DataFrame({"shape_id": ["SH1"] * 4, "shape_pt_lat": [LAT0] * 4,
                           "shape_pt_lon": east([0, 1000, 2000, 3000]),
                           "shape_pt_sequence": [0, 1, 2, 3]})
    calendar = pd.DataFrame({"service_id": ["WK", "ALL"],
                             "monday": ["1", "1"], "tuesday": ["1", "1"], "wednesday": ["1", "1"],
                             "thursday": ["1", "1"], "friday": ["1", "1"], "saturday": ["0", "1"],
                             "sunday": ["0", "1"], "start_date": ["20250101", "20250101"],
                             "end_date": ["20251231", "20251231"]})
    calendar_dates = pd.DataFrame({"service_id": ["WK"], "date": ["20250602"], "exception_type": ["2"]})
    return {"routes": routes, "trips": trips, "stops": stops, "stop_times": stop_times,
            "shapes": shapes, "calendar": calendar, "calendar_dates": calendar_dates}


@pytest.fixture(scope="module")
def tiny() -> TransitIndex:
    return TransitIndex.from_gtfs(tiny_feed(), TransitParams(cell_m=5.0, margin_m=500.0))


def test_distance_to_bus_line_matches_geometry(tiny):
    offsets = np.array([0.0, 20.0, 50.0, 200.0])
    d = tiny.distance_to_bus_line(north(offsets), east(np.full(4, 1500.0)))
    np.testing.assert_allclose(d, offsets, atol=5.0)


def test_far_points_are_far(tiny):
    d = tiny.distance_to_bus_line([37.4], [-122.1])  # California, outside the raster
    assert d[0] >= 10_000


def test_ferry_without_shape_uses_stop_to_stop_leg(tiny):
    d = tiny.distance_to_ferry_line(north([2000.0, 2100.0]), east([750.0, 750.0]))
    np.testing.assert_allclose(d, [0.0, 100.0], atol=5.0)
    # the bus line is not a ferry line
    assert tiny.distance_to_ferry_line([LAT0], [east(1500.0)])[0] > 1500


def test_route_share_per_group(tiny):
    # group 0: all 10 points on the line; group 1: half on, half 300 m away; group 2: none near
    x = np.linspace(100, 2900, 10)
    lat = np.concatenate([np.full(10, LAT0), np.r_[np.full(5, LAT0), np.full(5, north(300.0))],
                          np.full(10, north(-500.0))])
    lon = np.concatenate([east(x), east(x), east(x)])
    group = np.repeat([0, 1, 2], 10)
    share, route = tiny.route_share(lat, lon, group, 4)  # group 3 has no points
    np.testing.assert_allclose(share, [1.0, 0.5, 0.0, 0.0])
    assert list(tiny.route_ids[route[:2]]) == ["L1", "L1"]
    assert route[2] == -1 and route[3] == -1


def test_rail_station_found_by_name(tiny):
    d = tiny.distance_to_rail_station([north(-800.0), LAT0], [east(3000.0), east(3000.0)])
    np.testing.assert_allclose(d, [0.0, 800.0], atol=1.0)


def _ts(day: str, hms: str) -> float:
    return pd.Timestamp(f"{day} {hms}", tz="Europe/Paris").timestamp()


@pytest.mark.parametrize("day,board,alight,expected", [
    ("2025-06-03", "08:10:30", "08:18:00", True),   # trip t1 S0 08:10 -> S2 08:18 on a Tuesday
    ("2025-06-03", "08:10:30", "09:30:00", False),  # arrives far too late
    ("2025-06-07", "08:10:30", "08:18:00", False),  # Saturday: weekday service does not run
    ("2025-06-02", "08:10:30", "08:18:00", False),  # removed by calendar_dates
    ("2025-06-03", "05:00:00", "05:08:00", False),  # before the first bus
])
def test_schedule_match(tiny, day, board, alight, expected):
    m, r = tiny.schedule_match([LAT0], [east(0.0)], [_ts(day, board)],
                               [LAT0], [east(2000.0)], [_ts(day, alight)])
    assert bool(m[0]) is expected
    if expected:
        assert tiny.route_ids[r[0]] == "L1"


def test_schedule_match_needs_the_right_direction_and_stops(tiny):
    # reverse direction (S2 -> S0) has no trip; a point far from any stop never matches
    m, _ = tiny.schedule_match([LAT0, north(500.0)], [east(2000.0), east(0.0)],
                               [_ts("2025-06-03", "08:10:00")] * 2,
                               [LAT0, LAT0], [east(0.0), east(2000.0)],
                               [_ts("2025-06-03", "08:18:00")] * 2)
    assert not m.any()


def test_yelo_feed_line_follows_its_own_shape():
    g = load_gtfs()
    ti = TransitIndex.from_gtfs(g)
    assert set(ti.route_mode) == {"BUS", "FERRY"}
    assert len(ti.rail_xy) > 0  # La Rochelle, Aytré, Châtelaillon... stations
    sh = g["shapes"]
    first = sh[sh["shape_id"] == sh["shape_id"].iloc[0]]
    lat, lon = first["shape_pt_lat"].to_numpy(), first["shape_pt_lon"].to_numpy()
    assert ti.distance_to_bus_line(lat, lon).max() <= 15.0
    share, route = ti.route_share(lat, lon, np.zeros(len(lat), int), 1)
    assert share[0] == 1.0
    # the Vieux-Port ferry crossing is near a ferry route
    assert ti.distance_to_ferry_line([46.1556], [-1.1520])[0] < 400


def test_arrays_round_trip_answers_the_same(tiny):
    back = TransitIndex.from_arrays(tiny.to_arrays(), tiny.params)
    lat = north(np.array([0.0, 20.0, 2000.0, 300.0]))
    lon = east(np.array([500.0, 1500.0, 750.0, 100.0]))
    np.testing.assert_array_equal(back.distance_to_bus_line(lat, lon), tiny.distance_to_bus_line(lat, lon))
    np.testing.assert_array_equal(back.distance_to_ferry_line(lat, lon), tiny.distance_to_ferry_line(lat, lon))
    g = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(back.route_share(lat, lon, g, 2)[0], tiny.route_share(lat, lon, g, 2)[0])
    m, r = back.schedule_match([LAT0], [east(0.0)], [_ts("2025-06-03", "08:10:30")],
                               [LAT0], [east(2000.0)], [_ts("2025-06-03", "08:18:00")])
    assert m[0] and back.route_ids[r[0]] == "L1"
    m, _ = back.schedule_match([LAT0], [east(0.0)], [_ts("2025-06-02", "08:10:30")],
                               [LAT0], [east(2000.0)], [_ts("2025-06-02", "08:18:00")])
    assert not m[0]  # the calendar exception survives the round trip


def test_nearest_station_equals_brute_force_on_the_yelo_feed():
    """The strip search finds the same station as a full distance matrix, within and just
    beyond ``stop_near_m`` of many stops; (-1, inf) farther away."""
    from emission_ext.models.apply import transit_index

    ti = transit_index()
    rng = np.random.default_rng(5)
    xy = ti.stop_xy[rng.integers(0, len(ti.stop_xy), 3000)] + rng.normal(0, 60.0, (3000, 2))
    ky = np.pi / 180.0 * 6_371_008.8
    lat, lon = xy[:, 1] / ky + ti.lat0, xy[:, 0] / (np.cos(np.radians(ti.lat0)) * ky) + ti.lon0
    x, y = ti.project(lat, lon)
    d = np.sqrt((x[:, None] - ti.stop_xy[None, :, 0]) ** 2 + (y[:, None] - ti.stop_xy[None, :, 1]) ** 2)
    best = d.argmin(axis=1)
    dmin = d[np.arange(len(d)), best]
    near = dmin <= ti.params.stop_near_m
    st, dist = ti.nearest_station(lat, lon)
    assert 0.2 < near.mean() < 0.98
    np.testing.assert_array_equal(st, np.where(near, ti.stop_station[best], -1))
    np.testing.assert_allclose(dist[near], dmin[near], rtol=0, atol=1e-9)
    assert np.isinf(dist[~near]).all()
    dr = np.sqrt((x[:, None] - ti.rail_xy[None, :, 0]) ** 2 + (y[:, None] - ti.rail_xy[None, :, 1]) ** 2).min(axis=1)
    np.testing.assert_allclose(ti.distance_to_rail_station(lat, lon), dr, rtol=0, atol=1e-9)


def test_ferry_quays_are_the_stops_a_ferry_calls_at_worked_out_once(tiny):
    xy, station = tiny.ferry_quays()
    names = tiny.station_ids[station]
    assert sorted(names) == ["P0", "P1"]  # the bus stops and the railway station are not quays
    px, py = tiny.project(np.array([north(2000), north(2000)]), np.array([east(0), east(1500)]))
    np.testing.assert_allclose(xy[np.argsort(names)], np.c_[px, py], atol=1e-6)
    assert tiny.ferry_quays() is tiny.ferry_quays()  # kept on the index after the first call
    back = TransitIndex.from_arrays(tiny.to_arrays(), tiny.params)
    np.testing.assert_array_equal(back.ferry_quays()[0], xy)
