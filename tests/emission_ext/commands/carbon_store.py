"""A small Parquet store for the carbon command tests: two testers, a week of car commutes
along a real Yélo bus line, one bike ride, one unknown section."""
from __future__ import annotations

import pandas as pd

from emission_ext.reference import load_gtfs
from emission_ext.stores import open_store


def build_store(path):
    g = load_gtfs()
    st = g["stop_times"].merge(g["trips"][["trip_id", "route_id"]]).merge(g["routes"][["route_id", "route_short_name"]])
    trip_id = st[(st.route_short_name == "1") & (st.departure_time.str[:2] == "08")].trip_id.iloc[0]
    seq = st[st.trip_id == trip_id].sort_values("stop_sequence")
    stops = g["stops"].set_index("stop_id")
    a, b = stops.loc[seq.stop_id.iloc[1]], stops.loc[seq.stop_id.iloc[8]]
    dep = seq.departure_time.iloc[1][:5]
    trips, secs = [], []
    for u in ("010", "020"):
        for d in range(2, 7):  # Mon 2 .. Fri 6 March 2026
            t0 = pd.Timestamp(f"2026-03-0{d} {dep}").tz_localize("Europe/Paris").tz_convert("UTC")
            t1 = t0 + pd.Timedelta(minutes=12)
            tid = f"{u}-t{d}"
            trips.append(dict(user_id=u, trip_id=tid, start_ts=t0, end_ts=t1, start_lat=a.stop_lat,
                              start_lon=a.stop_lon, end_lat=b.stop_lat, end_lon=b.stop_lon,
                              distance_m=3000.0, duration_s=720.0, tz="Europe/Paris"))
            secs.append(dict(user_id=u, trip_id=tid, section_id=f"{tid}-s0", start_ts=t0, end_ts=t1,
                             distance_m=3000.0, duration_s=720.0, mode="CAR" if u == "010" else "BUS"))
    t0 = pd.Timestamp("2026-03-07T10:00Z")
    for i, mode in enumerate(["BICYCLING", "UNKNOWN"]):
        trips.append(dict(user_id="020", trip_id=f"020-x{i}", start_ts=t0, end_ts=t0 + pd.Timedelta(minutes=20),
                          start_lat=46.15, start_lon=-1.15, end_lat=46.16, end_lon=-1.15, distance_m=4000.0,
                          duration_s=1200.0, tz="Europe/Paris"))
        secs.append(dict(user_id="020", trip_id=f"020-x{i}", section_id=f"020-x{i}-s0", start_ts=t0,
                         end_ts=t0 + pd.Timedelta(minutes=20), distance_m=4000.0, duration_s=1200.0, mode=mode))
        t0 += pd.Timedelta(hours=2)
    testers = pd.DataFrame([
        dict(user_id="010", tz="Europe/Paris", car_fuel="petrol", car_size="moyenne", car_fiscal_hp=5, yelo_pass="none"),
        dict(user_id="020", tz="Europe/Paris", car_fuel=None, car_size=None, yelo_pass="monthly"),
    ])
    s = open_store(path)
    s.append("testers", testers)
    s.append("trips", pd.DataFrame(trips))
    s.append("sections", pd.DataFrame(secs))
    return s
