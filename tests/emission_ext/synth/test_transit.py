"""Bus and sea-shuttle rides are real GTFS trips: real stops, real shapes, timetable times."""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import shapely

from emission_ext.synth import load_reference
from emission_ext.synth.stats import timetable_deviation
from emission_ext.synth.transit import BUS, FERRY, service_day_origin


def test_bus_sections_follow_gtfs_shape_and_stop_at_real_stops_on_time(world):
    ref = load_reference()
    net = ref.net
    s = world.truth_sections
    bus = s[s["mode"].isin(["BUS", "FERRY"])]
    assert (bus["mode"] == "BUS").sum() >= 3
    stops = net.stops.set_index("stop_id")
    for _, sec in bus.iterrows():
        trip_id = sec["gtfs_trip_id"]
        lo, hi = net._trip_range[trip_id]
        gtfs_stops = list(net.stop_times["stop_id"].iloc[lo:hi])
        bs = world.bus_stops[(world.bus_stops["user_id"] == sec["user_id"])
                             & (world.bus_stops["section_id"] == sec["section_id"])].sort_values("seq")
        # the stops served are a contiguous run of the real trip's stop list
        served = list(bs["stop_id"])
        k = gtfs_stops.index(served[0])
        assert gtfs_stops[k:k + len(served)] == served
        assert served[0] == sec["board_stop_id"] and served[-1] == sec["alight_stop_id"]
        # within a few minutes of the timetable at every stop
        dev = np.abs(timetable_deviation(bs))
        assert dev.max() < 10 * 60
        # the section starts at the boarding stop and ends at the alighting stop
        line = shapely.from_wkb(sec["geometry"])
        coords = np.asarray(line.coords)
        for (lon, lat), sid in ((coords[0], served[0]), (coords[-1], served[-1])):
            d = np.hypot((lon - stops.at[sid, "lon"]) * 77_000, (lat - stops.at[sid, "lat"]) * 111_000)
            assert d < 60.0
        # every vertex lies on the GTFS shape (buses with a shape)
        shape_id = net._trip_shape[trip_id]
        if sec["mode"] == "BUS" and shape_id in net.shapes:
            sh = ref.net.shapes[shape_id]
            from emission_ext.synth import geo
            slon, slat = geo.to_lonlat(sh[0], sh[1])
            shape_line = shapely.linestrings(np.column_stack([slon, slat]))
            d = shapely.distance(shape_line, shapely.points(coords)) * 111_000
            assert d.max() < 30.0
        # the section's time window is the ride
        assert abs(sec["start_ts"].timestamp() - bs["arr_ts"].iloc[0]) < 1.0
        assert abs(sec["end_ts"].timestamp() - bs["arr_ts"].iloc[-1]) < 1.0


def test_delays_are_realistic_overall(week):
    bs = week.bus_stops
    dev = timetable_deviation(bs)
    assert len(dev) > 20
    assert np.percentile(np.abs(dev), 95) < 6 * 60
    assert np.median(dev) > 0          # buses run late more often than early


def test_find_rides_returns_a_scheduled_trip_after_the_ready_time():
    net = load_reference().net
    day = date(2026, 2, 3)
    st = net.stops
    a = st.loc[st["name"].str.contains("Gare La Rochelle")].iloc[0]
    b = st.loc[st["name"].str.contains("Minimes")].iloc[0]
    rides = net.find_rides(day, 8 * 3600.0, a["x"], a["y"], b["x"], b["y"], radius_m=900)
    assert rides
    r = rides[0]
    assert r.sched_dep_s >= 8 * 3600.0
    assert r.route_type in (BUS, FERRY)
    last = rides[-1]
    assert last.sched_arr_s > r.sched_dep_s
    # a day of the week outside the regular timetable maps to a regular one of the same weekday
    mapped = net.service_date(date(2026, 3, 3))
    assert mapped.weekday() == 1 and len(net.day_stop_times(mapped)) > 10000


def test_service_day_origin_is_noon_minus_12h_on_dst_days():
    # 2026-03-29: clocks go forward; GTFS 12:00:00 must be local noon (10:00 UTC)
    o = service_day_origin(date(2026, 3, 29), "Europe/Paris")
    assert pd.Timestamp(o + 12 * 3600, unit="s", tz="UTC").hour == 10
    o = service_day_origin(date(2026, 2, 2), "Europe/Paris")
    assert pd.Timestamp(o + 8 * 3600, unit="s", tz="UTC").hour == 7
