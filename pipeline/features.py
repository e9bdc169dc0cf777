"""Per-section features for the travel-mode classifier.

Why: a mode leaves a signature in the points of a section: how fast and how steadily it
moves (speed percentiles, acceleration, jerk), how it turns (heading change rate), how often
and how long it stops, how the phone sampled it, what the phone's activity recogniser said,
and, with a GTFS feed, whether it follows a bus line, stops at that line's stops when the
timetable says a bus passes, crosses water on a ferry route or starts/ends at a railway
station. This module computes all of them for every section at once.

How: points are matched to their section row, sorted once by (section, time), and every
statistic is a whole-array numpy operation over that order (``np.bincount`` sums, grouped
quantiles from one ``lexsort``, run-length encoding of stops). No Python loop visits a
section or a point. Distances use a local equirectangular approximation per step (exact to
well under 1 % over the few hundred metres between two fixes), so data from anywhere works.

The output has one row per section, in the order (and with the index) of ``sections``;
features that cannot be computed are NaN (the classifier handles missing values).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emission_ext.geodesy import EARTH_RADIUS_M
from emission_ext.schema import to_unix

FOOT_ACTIVITIES = ("ON_FOOT", "WALKING", "RUNNING")

#: GPS-only kinematic features (always computed).
KINEMATIC_FEATURES: tuple[str, ...] = (
    "n_points", "duration_s", "distance_m", "straight_m", "sinuosity",
    "speed_mean", "speed_p10", "speed_p50", "speed_p85", "speed_p95", "speed_max", "speed_cv",
    "speed2_p50", "speed2_p85", "speed_net",
    "acc_p50", "acc_p90", "jerk_p90",
    "turn_rate_deg_s", "turn_per_100m", "sharp_turn_share",
    "stop_per_km", "stop_share", "stop_mean_s",
    "dt_median", "gap_share", "accuracy_median",
    "hour_sin", "hour_cos",
)
#: Phone motion-activity shares (NaN when the section has no reading).
MOTION_FEATURES: tuple[str, ...] = (
    "motion_foot", "motion_bike", "motion_vehicle", "motion_still", "motion_n",
)
#: GTFS transit features (NaN when no transit index is given).
TRANSIT_FEATURES: tuple[str, ...] = (
    "bus_near_share", "bus_dist_median", "route_share", "stops_at_bus_stops",
    "stop_at_stop_share", "sched_match", "ferry_near_share", "rail_station_dist",
    "endpoints_at_stops", "endpoints_at_rail",
)
FEATURES: tuple[str, ...] = KINEMATIC_FEATURES + MOTION_FEATURES + TRANSIT_FEATURES


@dataclass(frozen=True)
class FeatureParams:
    """Parameters of the feature extraction.

    Attributes
    ----------
    stop_speed_mps : float
        A step slower than this is "stopped", m/s.
    min_stop_s : float
        A stop lasts at least this long to count, seconds.
    min_turn_step_m : float
        Steps shorter than this carry no reliable heading, metres.
    gap_s : float
        A sampling interval longer than this is a gap, seconds.
    max_speed_mps : float
        Steps faster than this are treated as GPS jumps and ignored, m/s.
    route_sample : int
        At most this many points per section are used for the per-route share.
    ferry_near_m : float
        A point within this distance of a ferry route is near it, metres.
    rail_near_m : float
        A section end within this distance of a railway station is at the station, metres.
    tz : str
        Time zone for the local hour of day.
    """

    stop_speed_mps: float = 0.6
    min_stop_s: float = 8.0
    min_turn_step_m: float = 3.0
    gap_s: float = 60.0
    max_speed_mps: float = 120.0
    route_sample: int = 64
    ferry_near_m: float = 150.0
    rail_near_m: float = 300.0
    tz: str = "Europe/Paris"


def _section_index(points: pd.DataFrame, sections: pd.DataFrame) -> np.ndarray:
    """Row position in ``sections`` of each point's (user_id, section_id); -1 when none.

    A section's points come in runs (a segmenter writes them in time order), so only the
    first point of each run of equal (user, section) pairs is looked up in ``sections``
    (a few thousand pairs, not a million strings); the answer is repeated over the run.
    Points in any order still get the right row (more runs, same result).
    """
    if len(sections) == 0 or len(points) == 0:
        return np.full(len(points), -1, np.int64)
    u_codes, u_uniq = pd.factorize(points["user_id"])  # Arrow-backed: no string copies
    sid = points["section_id"].to_numpy(dtype=object)
    null = pd.isna(sid)
    with np.errstate(invalid="ignore"):
        change = ((u_codes[1:] != u_codes[:-1]) | (null[1:] != null[:-1])
                  | (~null[1:] & (sid[1:] != sid[:-1])))
    head = np.flatnonzero(np.r_[True, change])
    run_len = np.diff(np.r_[head, len(sid)])
    keys = _keys(sections["user_id"], sections["section_id"])
    hu = np.asarray(u_uniq, dtype=object)[u_codes[head]].astype(str)
    hs = sid[head]
    rows = np.full(len(head), -1, np.int64)
    ok = ~null[head] & (u_codes[head] >= 0)
    if ok.any():
        rows[ok] = keys.get_indexer(pd.MultiIndex.from_arrays([hu[ok], hs[ok].astype(str)]))
    return np.repeat(rows, run_len)


def _keys(user_ids, section_ids) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([np.asarray(user_ids, dtype=object).astype(str),
                                      np.asarray(section_ids, dtype=object).astype(str)])


@dataclass(frozen=True)
class SectionPoints:
    """The points of every section as the arrays the features read, grouped by section.

    Why: the features need only times, positions and accuracies per section. Segmentation
    already holds them sorted (:func:`pipeline.sections.sections_from_track` with
    ``labelled="arrays"``), so handing them over as arrays spares building, and then
    re-grouping, a million-row labelled-points table with two string ids per point.

    Attributes
    ----------
    t : ndarray of float
        Unix seconds, ascending within each section.
    lat, lon : ndarray of float
        Degrees (WGS84).
    acc : ndarray of float
        Horizontal accuracy, metres (NaN when unknown).
    counts : ndarray of int
        Points of each section; the points of section ``k`` follow those of section ``k-1``.
    user_ids, section_ids : ndarray of object
        Key of each section (to align with a sections table).
    tz : ndarray of object, optional
        IANA time zone of each section's user (None: the caller's default zone).
    """

    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    acc: np.ndarray
    counts: np.ndarray
    user_ids: np.ndarray
    section_ids: np.ndarray
    tz: np.ndarray | None = None

    @classmethod
    def from_labelled(cls, labelled_points: pd.DataFrame, sections: pd.DataFrame) -> "SectionPoints":
        """Points of a labelled-points table (clean points + ``section_id``), any order,
        grouped in the row order of ``sections``; points of no listed section are dropped."""
        n = len(sections)
        row = _section_index(labelled_points, sections)
        keep = row >= 0
        g = row[keep]
        t = to_unix(labelled_points["ts"])[keep]
        lat = labelled_points["lat"].to_numpy(float)[keep]
        lon = labelled_points["lon"].to_numpy(float)[keep]
        acc = (labelled_points["accuracy_m"].to_numpy(float, na_value=np.nan)[keep]
               if "accuracy_m" in labelled_points else np.full(len(g), np.nan))
        order = np.lexsort((t, g))
        return cls(t[order], lat[order], lon[order], acc[order],
                   np.bincount(g, minlength=n).astype(np.int64),
                   sections["user_id"].to_numpy(dtype=object),
                   sections["section_id"].to_numpy(dtype=object))

    def aligned(self, sections: pd.DataFrame) -> tuple[np.ndarray, ...]:
        """``(g, t, lat, lon, acc)``: the points of the sections of ``sections`` with ``g``
        their row in it, sorted by (row, time). Free when both list the same sections in
        the same order (the usual case); else sections are matched by (user_id, section_id)."""
        n = len(sections)
        su = sections["user_id"].to_numpy(dtype=object)
        ss = sections["section_id"].to_numpy(dtype=object)
        same = (len(self.counts) == n and np.array_equal(ss.astype(str), self.section_ids.astype(str))
                and np.array_equal(su.astype(str), self.user_ids.astype(str)))
        if same:
            return (np.repeat(np.arange(n), self.counts), self.t, self.lat, self.lon, self.acc)
        rows = _keys(su, ss).get_indexer(_keys(self.user_ids, self.section_ids))
        g = np.repeat(rows, self.counts)
        keep = np.flatnonzero(g >= 0)
        keep = keep[np.argsort(g[keep], kind="stable")]  # sections' order, time kept within
        return g[keep], self.t[keep], self.lat[keep], self.lon[keep], self.acc[keep]


# group_quantiles' packed sort key: 20 bits of group, the top 43 bits of a non-negative double
_GROUP_BITS = 20
_VALUE_BITS = 63 - _GROUP_BITS
_VALUE_MASK = (1 << _VALUE_BITS) - 1
_GROUP_LIMIT = 1 << _GROUP_BITS


def group_quantiles(values: np.ndarray, group: np.ndarray, n_groups: int, qs) -> np.ndarray:
    """Quantiles of ``values`` within each group (nearest rank), shape (n_groups, len(qs)).

    NaN values are ignored; groups without values give NaN. Non-negative values (speeds,
    durations, distances: every use here) are sorted within their groups by one sort of a
    64-bit integer key: the group in the top 20 bits, the value's IEEE-754 bits (order-
    preserving for non-negative floats) truncated to 43 bits below. Quantiles are therefore
    the values truncated to a relative 2.3e-10, and a section's quantiles never depend on
    which other sections are in the batch (a ``group + value / scale`` float key did: its
    rounding followed the batch's largest value and the group's position). Negative values
    or more than 2**20 groups fall back to an exact ``lexsort``. No loop over groups.
    """
    ok = np.isfinite(values)
    v, g = values[ok], group[ok]
    out = np.full((n_groups, len(qs)), np.nan)
    if len(v) == 0:
        return out
    if v.min() >= 0 and n_groups <= _GROUP_LIMIT:
        v = v.astype(np.float64) + 0.0  # contiguous copy; -0.0 (sign bit set) becomes +0.0
        key = (g.astype(np.int64) << _VALUE_BITS) | (v.view(np.int64) >> _GROUP_BITS)
        key.sort(kind="stable")  # groups arrive contiguous: ~10x faster than a lexsort
        v = ((key & _VALUE_MASK) << _GROUP_BITS).view(np.float64)
    else:
        v = v[np.lexsort((v, g))]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    has = counts > 0
    for j, q in enumerate(qs):  # loop over the few quantiles, not over groups
        pos = starts + np.floor(q * (counts - 1) + 0.5).astype(np.int64)
        out[has, j] = v[pos[has]]
    return out


def _sum(w, g, n):
    return np.bincount(g, weights=w, minlength=n)


def _local_hour(start_ts: pd.Series, tz) -> np.ndarray:
    """Local hour of day (fractional) of each timestamp, in one zone or one zone per row."""
    idx = pd.DatetimeIndex(start_ts)
    if isinstance(tz, str):
        loc = idx.tz_convert(tz)
        return loc.hour.to_numpy() + loc.minute.to_numpy() / 60.0
    tz = np.asarray(tz, dtype=object)
    out = np.full(len(idx), np.nan)
    for zone in pd.unique(tz):  # a handful of zones, never one iteration per section
        sel = tz == zone
        loc = idx[sel].tz_convert(str(zone))
        out[sel] = loc.hour.to_numpy() + loc.minute.to_numpy() / 60.0
    return out


def _motion_shares(motion: pd.DataFrame | None, sections: pd.DataFrame) -> np.ndarray:
    """(n_sections, 5) shares of foot/bike/vehicle/still readings and their count."""
    n = len(sections)
    out = np.full((n, 5), np.nan)
    if motion is None or len(motion) == 0 or n == 0:
        return out
    sec = pd.DataFrame({"user_id": sections["user_id"].astype(str).to_numpy(),
                        "start": to_unix(sections["start_ts"]), "end": to_unix(sections["end_ts"]),
                        "row": np.arange(n)}).sort_values("start")
    mo = pd.DataFrame({"user_id": motion["user_id"].astype(str).to_numpy(),
                       "ts": to_unix(motion["ts"]),
                       "activity": motion["activity"].astype(str).to_numpy()}).sort_values("ts")
    m = pd.merge_asof(mo, sec, left_on="ts", right_on="start", by="user_id", direction="backward")
    m = m[m["row"].notna() & (m["ts"] <= m["end"])]
    if len(m) == 0:
        out[:, 4] = 0.0
        return out
    row = m["row"].to_numpy(np.int64)
    act = m["activity"].to_numpy()
    cnt = np.bincount(row, minlength=n).astype(float)
    cols = [np.isin(act, FOOT_ACTIVITIES), act == "ON_BICYCLE", act == "IN_VEHICLE", act == "STILL"]
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, c in enumerate(cols):
            out[:, j] = np.where(cnt > 0, np.bincount(row, weights=c.astype(float), minlength=n) / cnt, np.nan)
    out[:, 4] = cnt
    return out


def section_features(labelled_points: "pd.DataFrame | SectionPoints", sections: pd.DataFrame,
                     motion: pd.DataFrame | None = None, transit=None,
                     params: FeatureParams = FeatureParams(), tz=None) -> pd.DataFrame:
    """Feature matrix, one row per section.

    Parameters
    ----------
    labelled_points : DataFrame or SectionPoints
        Clean points (schema ``points``) with ``section_id`` (null outside sections), any
        order; or the same points already grouped by section (:class:`SectionPoints`).
    sections : DataFrame
        Schema ``sections`` table (``user_id, section_id, start_ts, end_ts`` are used).
    motion : DataFrame, optional
        Schema ``motion`` table; without it the motion features are NaN.
    transit : pipeline.transit.TransitIndex, optional
        Without it the transit features are NaN.
    params : FeatureParams
    tz : str or array-like of str, optional
        Time zone(s) for the local hour of day: one for all sections or one per section
        (default ``params.tz``).

    Returns
    -------
    DataFrame
        Columns :data:`FEATURES` (speeds m/s, accelerations m/s², jerk m/s³, distances m,
        durations s, turn rates degrees/s and degrees/100 m, shares 0-1), index of ``sections``.
    """
    n = len(sections)
    if n == 0:
        return pd.DataFrame(np.nan, index=sections.index, columns=list(FEATURES))
    sp = (labelled_points if isinstance(labelled_points, SectionPoints)
          else SectionPoints.from_labelled(labelled_points, sections))
    g, t, lat, lon, acc = sp.aligned(sections)
    npts = np.bincount(g, minlength=n).astype(float)

    # steps between consecutive fixes of the same section
    same = g[1:] == g[:-1]
    gs = g[1:][same]
    dt = (t[1:] - t[:-1])[same]
    latm = np.radians((lat[1:] + lat[:-1]) / 2.0)[same]
    dx = np.radians(lon[1:] - lon[:-1])[same] * np.cos(latm) * EARTH_RADIUS_M
    dy = np.radians(lat[1:] - lat[:-1])[same] * EARTH_RADIUS_M
    d = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(dt > 0, d / dt, np.nan)
    v[v > params.max_speed_mps] = np.nan
    good = np.isfinite(v)

    dist = _sum(np.where(good, d, 0.0), gs, n)
    first = np.searchsorted(g, np.arange(n), side="left")
    last = np.searchsorted(g, np.arange(n), side="right") - 1
    has = npts > 0
    fi, la = np.minimum(first, len(g) - 1), np.maximum(last, 0)
    dur = np.where(has, t[la] - t[fi], np.nan) if len(g) else np.full(n, np.nan)
    sx = np.radians(lon[la] - lon[fi]) * np.cos(np.radians(lat[fi])) * EARTH_RADIUS_M if len(g) else np.zeros(n)
    sy = np.radians(lat[la] - lat[fi]) * EARTH_RADIUS_M if len(g) else np.zeros(n)
    straight = np.where(has, np.hypot(sx, sy), np.nan)

    q = group_quantiles(v, gs, n, (0.10, 0.50, 0.85, 0.95, 0.99))  # p99 stands for the max
    # speeds over two steps (fix i to fix i+2): independent GPS errors weigh half as much
    same2 = (g[2:] == g[:-2])
    with np.errstate(invalid="ignore", divide="ignore"):
        lat2 = np.radians((lat[2:] + lat[:-2]) / 2.0)
        d2 = np.hypot(np.radians(lon[2:] - lon[:-2]) * np.cos(lat2), np.radians(lat[2:] - lat[:-2])) * EARTH_RADIUS_M
        dt2 = t[2:] - t[:-2]
        v2 = np.where(same2 & (dt2 > 0), d2 / dt2, np.nan)
    v2[v2 > params.max_speed_mps] = np.nan
    q2 = group_quantiles(v2, g[2:], n, (0.50, 0.85))
    with np.errstate(invalid="ignore", divide="ignore"):
        speed_mean = np.where(dur > 0, dist / dur, np.nan)
        vsum = _sum(np.where(good, v, 0.0), gs, n)
        v2 = _sum(np.where(good, v * v, 0.0), gs, n)
        nv = _sum(good.astype(float), gs, n)
        vm = vsum / nv
        speed_cv = np.sqrt(np.maximum(v2 / nv - vm * vm, 0.0)) / vm

    # acceleration and jerk between consecutive steps
    s2 = gs[1:] == gs[:-1]
    tmid = (t[1:] + t[:-1])[same] / 2.0
    ga = gs[1:][s2]
    with np.errstate(invalid="ignore", divide="ignore"):
        dta = (tmid[1:] - tmid[:-1])[s2]
        a = np.where(dta > 0, (v[1:] - v[:-1])[s2] / dta, np.nan)
        s3 = ga[1:] == ga[:-1]
        tma = ((tmid[1:] + tmid[:-1])[s2])
        dtj = ((tma[1:] - tma[:-1]) / 2.0)[s3]
        j = np.where(dtj > 0, (a[1:] - a[:-1])[s3] / dtj, np.nan)
    qa = group_quantiles(np.abs(a), ga, n, (0.5, 0.9))
    qj = group_quantiles(np.abs(j), ga[1:][s3], n, (0.9,))

    # heading changes between consecutive steps long enough to carry a heading
    heading = np.degrees(np.arctan2(dx, dy))
    moving = d >= params.min_turn_step_m
    turn = np.abs((heading[1:] - heading[:-1] + 180.0) % 360.0 - 180.0)
    tv = s2 & moving[1:] & moving[:-1]
    tsum = _sum(np.where(tv, turn, 0.0), gs[1:], n)
    tn = _sum(tv.astype(float), gs[1:], n)
    sharp = _sum((tv & (turn > 45.0)).astype(float), gs[1:], n)

    # stops: runs of slow steps
    slow = good & (v < params.stop_speed_mps)
    prev_same = np.r_[False, gs[1:] == gs[:-1]]
    run_start = slow & ~(np.r_[False, slow[:-1]] & prev_same)
    run_id = np.cumsum(run_start) - 1
    rid = run_id[slow]
    n_runs = int(run_start.sum())
    run_dur = np.bincount(rid, weights=dt[slow], minlength=n_runs) if n_runs else np.zeros(0)
    run_g = gs[run_start]
    real = run_dur >= params.min_stop_s
    n_stops = np.bincount(run_g[real], minlength=n).astype(float)
    stop_time = _sum(run_dur[real], run_g[real], n)

    h = _local_hour(sections["start_ts"], tz if tz is not None else params.tz) * 2 * np.pi / 24.0

    with np.errstate(invalid="ignore", divide="ignore"):
        dts = group_quantiles(dt, gs, n, (0.5,))[:, 0]
        cols = {
            "n_points": npts,
            "duration_s": dur,
            "distance_m": dist,
            "straight_m": straight,
            "sinuosity": np.where(dist > 0, straight / dist, np.nan),
            "speed_mean": speed_mean,
            "speed_p10": q[:, 0], "speed_p50": q[:, 1], "speed_p85": q[:, 2], "speed_p95": q[:, 3],
            "speed_max": q[:, 4],
            "speed_cv": speed_cv,
            "speed2_p50": q2[:, 0], "speed2_p85": q2[:, 1],
            "speed_net": np.where(dur > 0, straight / dur, np.nan),
            "acc_p50": qa[:, 0], "acc_p90": qa[:, 1], "jerk_p90": qj[:, 0],
            "turn_rate_deg_s": np.where(dur > 0, tsum / dur, np.nan),
            "turn_per_100m": np.where(dist > 0, 100.0 * tsum / dist, np.nan),
            "sharp_turn_share": np.where(tn > 0, sharp / tn, np.nan),
            "stop_per_km": np.where(dist > 0, 1000.0 * n_stops / dist, np.nan),
            "stop_share": np.where(dur > 0, stop_time / dur, np.nan),
            "stop_mean_s": np.where(n_stops > 0, stop_time / n_stops, 0.0),
            "dt_median": dts,
            "gap_share": np.where(nv > 0, _sum((dt > params.gap_s).astype(float), gs, n) / np.maximum(npts - 1, 1), np.nan),
            "accuracy_median": group_quantiles(acc, g, n, (0.5,))[:, 0],
            "hour_sin": np.sin(h), "hour_cos": np.cos(h),
        }
    # one matrix, one DataFrame at the end (column-by-column frame assignment costs ~20 ms)
    mat = np.full((n, len(FEATURES)), np.nan)
    nk, nm = len(KINEMATIC_FEATURES), len(MOTION_FEATURES)
    mat[:, :nk] = np.column_stack([cols[k] for k in KINEMATIC_FEATURES])
    mat[~has, 1:nk] = np.nan
    mat[:, nk:nk + nm] = _motion_shares(motion, sections)
    if transit is not None and len(g):
        mat[:, nk + nm:] = _transit_features(
            transit, params, n, g, t, lat, lon, first, last, has,
            slow, run_start, run_id, real, run_g, gs, same)
    return pd.DataFrame(mat, index=sections.index, columns=list(FEATURES))


def _transit_features(ti, params, n, g, t, lat, lon, first, last, has,
                      slow, run_start, run_id, real, run_g, gs, same) -> np.ndarray:
    """(n_sections, len(TRANSIT_FEATURES)) transit features; see :data:`TRANSIT_FEATURES`."""
    out = np.full((n, len(TRANSIT_FEATURES)), np.nan)
    npts = np.bincount(g, minlength=n).astype(float)
    dbus, dfer = ti.distance_to_lines(lat, lon)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 0] = _sum((dbus <= ti.params.near_m).astype(float), g, n) / npts
    out[:, 1] = group_quantiles(np.minimum(dbus, 5000.0), g, n, (0.5,))[:, 0]
    # per-route share on an even sample of at most route_sample points per section
    rank = np.arange(len(g)) - first[g]
    stride = np.maximum(np.ceil(npts / params.route_sample), 1).astype(np.int64)
    pick = (rank % stride[g]) == 0
    share, route = ti.route_share(lat[pick], lon[pick], g[pick], n)
    out[:, 2] = share
    # stop events (centroid of each real stop run) at a bus stop
    if real.any():
        step_lat = (lat[1:][same] + lat[:-1][same]) / 2.0
        step_lon = (lon[1:][same] + lon[:-1][same]) / 2.0
        rid = run_id[slow]
        n_runs = len(real)
        cnt = np.bincount(rid, minlength=n_runs).astype(float)
        clat = np.bincount(rid, weights=step_lat[slow], minlength=n_runs) / np.maximum(cnt, 1)
        clon = np.bincount(rid, weights=step_lon[slow], minlength=n_runs) / np.maximum(cnt, 1)
        st, _ = ti.nearest_station(clat[real], clon[real])
        at = (st >= 0).astype(float)
        n_at = np.bincount(run_g[real], weights=at, minlength=n)
        n_all = np.bincount(run_g[real], minlength=n).astype(float)
        out[:, 3] = n_at
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, 4] = np.where(n_all > 0, n_at / n_all, 0.0)
    else:
        out[:, 3] = 0.0
        out[:, 4] = 0.0
    fi, la = np.minimum(first, len(g) - 1), np.maximum(last, 0)
    m, _ = ti.schedule_match(lat[fi], lon[fi], t[fi], lat[la], lon[la], t[la])
    out[:, 5] = m.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 6] = _sum((dfer <= params.ferry_near_m).astype(float), g, n) / npts
    drail = ti.distance_to_rail_station(np.r_[lat[fi], lat[la]], np.r_[lon[fi], lon[la]])
    out[:, 7] = np.minimum(np.minimum(drail[:n], drail[n:]), 50_000.0)
    st_b, _ = ti.nearest_station(lat[fi], lon[fi])
    st_a, _ = ti.nearest_station(lat[la], lon[la])
    out[:, 8] = (st_b >= 0).astype(float) + (st_a >= 0)
    out[:, 9] = (drail[:n] <= params.rail_near_m).astype(float) + (drail[n:] <= params.rail_near_m)
    out[~has] = np.nan
    return out
