"""Statistics of a synthetic world and the plausible ranges they must fall in.

Why: a generator is only useful if it is realistic; these figures (printed by the CLI and
checked by the tests) are how we know. Ranges and their sources:

* trips per tester per day: French household travel surveys (EMD/EMC2, INSEE/SDES "Enquête
  mobilité des personnes" 2019) give 3-4 trips per person on weekdays and fewer at weekends,
  so 2.6-4.5 over a week of days.
* main-mode shares of trips, La Rochelle household survey (EMD 2011) orders of magnitude: car
  (driver + passenger) ~55-60 %, walking ~25 %, cycling ~8-10 % (a cycling city), public
  transport ~5-7 %. Ranges are wide because a synthetic week of 50 people is a small sample.
* e-mission sampling: Android time filter ~30 s between fixes while moving (median 25-35 s);
  iOS distance filter ~50 m between fixes (median 35-75 m).
* points per trip: 30 s fixes over the median 10-25 min urban trip, plus the fixes at arrival:
  a median of 10-120.
* buses: departure from each stop of a ride (arrival at the last) minus the timetable: 95 %
  within 6 min (Yélo buses run a few minutes late at most, the generator's delays drift by ~12 s a stop).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import Mode, to_unix

#: name -> (low, high) plausible range
RANGES: dict[str, tuple[float, float]] = {
    "trips_per_tester_day": (2.6, 4.5),
    "share_car": (0.35, 0.72),
    "share_walking": (0.10, 0.45),
    "share_bike": (0.03, 0.25),
    "share_transit": (0.02, 0.22),
    "points_per_trip_median": (10.0, 120.0),
    "android_interval_median_s": (25.0, 35.0),
    "ios_step_median_m": (35.0, 75.0),
    "bus_delay_p95_s": (0.0, 360.0),
}

_GROUPS = {
    "share_car": (Mode.CAR.value, Mode.CARSHARE.value),
    "share_walking": (Mode.WALKING.value,),
    "share_bike": (Mode.BICYCLING.value, Mode.BIKESHARE.value, Mode.E_BIKE.value),
    "share_transit": (Mode.BUS.value, Mode.FERRY.value, Mode.TRAIN.value),
}


def _haversine(lat1, lon1, lat2, lon2):
    la1, lo1, la2, lo2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


def timetable_deviation(bus_stops: pd.DataFrame) -> np.ndarray:
    """Seconds late (negative: early) of the vehicle at each stop of each ride: departure
    minus scheduled departure, and arrival minus scheduled arrival at the last stop."""
    bs = bus_stops
    last = np.r_[bs["section_id"].to_numpy()[1:] != bs["section_id"].to_numpy()[:-1], True] if len(bs) else \
        np.zeros(0, bool)
    dep = bs["dep_ts"].to_numpy(float) - bs["sched_dep_ts"].to_numpy(float)
    arr = bs["arr_ts"].to_numpy(float) - bs["sched_arr_ts"].to_numpy(float)
    return np.where(last, arr, dep)


def world_stats(world) -> dict:
    """Figures describing ``world`` (see the module docstring for their meaning).

    Returns
    -------
    dict with ``testers, days, trips, sections, points, records``, ``trips_per_tester_day``,
    ``mode_shares`` (main mode -> share of trips), the grouped shares of :data:`RANGES`,
    ``points_per_trip_median``, ``android_interval_median_s``, ``ios_step_median_m``,
    ``bus_delay_p95_s``, ``bus_delay_max_s``, ``phone_off_trips``, ``records_by_source``.
    """
    p = world.params
    trips = world.truth_trips
    n_td = max(1, p.testers * p.days)
    st: dict = {"testers": int(len(world.testers)), "days": int(p.days), "trips": int(len(trips)),
                "sections": int(len(world.truth_sections)), "points": int(len(world.points)),
                "motion": int(len(world.motion)), "records": int(len(world.records))}
    st["trips_per_tester_day"] = len(trips) / n_td
    shares = trips["main_mode"].value_counts(normalize=True) if len(trips) else pd.Series(dtype=float)
    st["mode_shares"] = {k: round(float(v), 4) for k, v in shares.items()}
    for name, modes in _GROUPS.items():
        st[name] = float(shares.reindex(list(modes)).fillna(0).sum())
    pt = world.point_truth
    in_trip = pt["trip_id"].notna().to_numpy()
    per_trip = pt.loc[in_trip].groupby("trip_id").size()
    st["points_per_trip_median"] = float(per_trip.median()) if len(per_trip) else 0.0
    # sampling: consecutive clean fixes of the same section, sorted by time
    pts = world.points.assign(section_id=pt["section_id"].to_numpy(), fault=pt["fault"].to_numpy())
    pts = pts[pts["section_id"].notna() & (pts["fault"] == "none")].sort_values(["user_id", "ts"])
    ts = to_unix(pts["ts"])
    same = (pts["section_id"].to_numpy()[1:] == pts["section_id"].to_numpy()[:-1])
    dt = np.diff(ts)[same]
    src = pts["source"].to_numpy()[1:][same]
    lat, lon = pts["lat"].to_numpy(), pts["lon"].to_numpy()
    dd = _haversine(lat[:-1], lon[:-1], lat[1:], lon[1:])[same]
    and_dt = dt[(src == "android") & (dt > 0)]
    st["android_interval_median_s"] = float(np.median(and_dt)) if and_dt.size else float("nan")
    ios_dd = dd[src == "ios"]
    st["ios_step_median_m"] = float(np.median(ios_dd)) if ios_dd.size else float("nan")
    bs = world.bus_stops
    if len(bs):
        dev = np.abs(timetable_deviation(bs))
        st["bus_delay_p95_s"] = float(np.percentile(dev, 95))
        st["bus_delay_max_s"] = float(dev.max())
    else:
        st["bus_delay_p95_s"] = st["bus_delay_max_s"] = float("nan")
    st["phone_off_trips"] = int(trips["phone_off"].sum()) if "phone_off" in trips else 0
    st["records_by_source"] = world.records["source"].value_counts().to_dict() if len(world.records) else {}
    return st


def check_stats(stats: dict, ranges: dict = RANGES) -> list[tuple[str, float, float, float, bool]]:
    """Compare ``stats`` with ``ranges``: list of (name, value, low, high, ok); NaN (no data,
    e.g. no iOS tester) counts as ok."""
    out = []
    for name, (lo, hi) in ranges.items():
        v = float(stats.get(name, float("nan")))
        out.append((name, v, lo, hi, bool(np.isnan(v) or lo <= v <= hi)))
    return out
