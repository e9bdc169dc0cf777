"""Trip segmentation: split each user's cleaned points into stays (places) and moves (trips).

Why: a trip is what the tester recognises ("home to work"), and everything downstream (modes,
operator-record fusion, carbon) hangs off it. The rules follow e-mission's dwell segmentation
so results agree with its reference output on real phones, but run on whole arrays for every
user at once (in blocks of whole users) instead of one point at a time:

* **Dwell** (dense sampling: Android's time filter, GPS loggers): a point is *dwelling* when
  every point of the trailing ``dwell_time_s`` window (and of at least ``dwell_points``
  points) lies within ``dwell_radius_m`` of it. A level-by-level sparse table gives each
  window's bounding box (range min/max over variable windows in O(n log w) numpy work); only
  windows the box cannot settle are checked point by point.
* **Silences** (iOS's distance filter stops reporting when the phone is still; Android stops
  tracking after a stop): longer than ``dwell_time_s`` with less than ``dwell_radius_m`` of
  displacement, longer than ``max_gap_s`` at walking pace or with no moving phone activity,
  longer than ``untracked_gap_s``, a tracking restart, or a trip-end transition inside a
  silence longer than ``end_transition_gap_s``: the trip ended.
* **Phone activity**: a long run of confident STILL readings is a stay.
* **Phone state machine**: while it says the trip goes on (and its trip-end transition is
  trustworthy, not woken by an iOS silent push), waits at a stop or in a transfer are not stays.
* **Ends and starts**: a trip ends between the arrival and the middle of the window that
  detected the stay (``end_at``); a trip cut by a silence ends at its arrival when the phone
  calls the tail still; a first fix after a silence is preceded by the real departure, taken
  back by distance over speed (:func:`departure_times`).
* Moves that never leave the ``dwell_radius_m`` circle, or are shorter than
  ``min_trip_distance_m`` or ``min_trip_duration_s``, are GPS jitter. A move whose first fix
  follows a silence (the phone woke past its geofence) is measured from the fix before the
  silence, where the tester set off, so a short walk is not lost for the part the phone slept.
* A trip still moving at the end of the data ends at the last point (its end place has no
  ``exit_ts``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emission_ext import schema

from .clean import as_points, sort_by_user_time, user_codes
from .geo import project_by_group

#: Substrings of state-machine transition names meaning tracking was stopped or the phone
#: restarted: whatever happened in between, the trip before has ended.
RESTART_TRANSITIONS = ("STOP_TRACKING", "BOOTED", "TRACKING_STOPPED")

#: Transitions after which the phone considers a trip under way, and after which it considers
#: it over (e-mission Android and iOS state machines).
TRIP_START_TRANSITIONS = ("EXITED_GEOFENCE", "TRIP_STARTED", "TRIP_RESTARTED")
TRIP_END_TRANSITIONS = ("STOPPED_MOVING", "TRIP_END_DETECTED", "END_TRIP_TRACKING",
                        "STOP_TRACKING", "TRACKING_STOPPED")

#: A trip-end transition this soon after a silent push (seconds) was woken by the push.
PUSH_WAKE_S = 30.0

#: Phone activities that mean the tester was moving.
MOVING_ACTIVITIES = ("IN_VEHICLE", "ON_BICYCLE", "ON_FOOT", "WALKING", "RUNNING")

#: Trip detection works on blocks of whole users of about this many points (bounds memory).
BLOCK_POINTS = 200_000

#: Points expanded at a time when building geometries or place medians (bounds memory).
CHUNK_POINTS = 250_000

#: Largest number of window points checked exactly in one numpy batch (bounds memory).
_EXACT_BATCH = 500_000

#: A trip's start is taken back from its first fix over at most this distance, metres: the
#: phone wakes once past its ~100 m geofence, a sampling step or so later
#: (:func:`departure_times`).
DEPARTURE_MAX_BACK_M = 250.0

#: A dwell window may be this much shorter than ``dwell_time_s`` (sampling jitter), seconds.
DWELL_FUZZ_S = 30.0


@dataclass(frozen=True)
class TripParams:
    """Trip segmentation thresholds (metres, seconds).

    Attributes
    ----------
    dwell_radius_m : float
        A stay fits in a box this wide.
    dwell_time_s : float
        ... for at least this long.
    max_gap_s : float
        A silence longer than this at no more than ``gap_speed_mps`` ends the trip.
    gap_speed_mps : float
        Mean speed across a long silence below which the tester is taken to have stopped.
    untracked_gap_s : float
        Any silence longer than this ends the trip (untracked time).
    dwell_points : int
        ... and over at least this many points (sparse fixes alone never make a stay).
    still_min_s : float
        Consecutive confident STILL motion readings spanning this long make a stay.
    min_still_confidence : float
        Confidence (percent) for a STILL reading to count.
    activity_window_s : float
        A motion reading describes the points within this many seconds of it.
    max_bridge_s : float
        Longest silence the phone's state machine can bridge (a wait, a transfer; up to an
        hour: the next run of an hourly train, bus or ferry), seconds.
    end_transition_gap_s : float
        A trip-end transition inside a silence longer than this ends the trip, seconds.
    arrival_radius_m : float
        A trip cut by a silence ends at the first of its last fixes within this (plus the
        fix's accuracy) of its last one.
    departure_gap_s : float
        A stay point followed by a longer silence is not taken as the departure.
    end_at : str
        Where a trip that ends at a detected stay ends: ``"window_median"`` (as e-mission: the
        middle of the window that detected the stay, ~2.5 min after the arrival),
        ``"arrival"`` (the first fix within ``arrival_radius_m`` of the stay) or
        ``"midpoint"`` (default: halfway between the two, in fixes; a compromise measured
        against both references, see docs/segmentation.md).
    min_trip_distance_m : float
        Shorter moves (path length) are jitter.
    min_trip_duration_s : float
        Shorter moves are jitter.
    """

    dwell_radius_m: float = 100.0
    dwell_time_s: float = 300.0
    max_gap_s: float = 600.0
    gap_speed_mps: float = 100.0 / 300.0
    untracked_gap_s: float = 12 * 3600.0
    dwell_points: int = 9
    still_min_s: float = 180.0
    activity_window_s: float = 60.0
    arrival_radius_m: float = 50.0
    max_bridge_s: float = 3600.0
    end_transition_gap_s: float = 300.0
    min_still_confidence: float = 50.0
    departure_gap_s: float = 120.0
    end_at: str = "midpoint"
    min_trip_distance_m: float = 100.0
    min_trip_duration_s: float = 60.0


@dataclass
class Track:
    """Points of one or many users as aligned numpy arrays, sorted by (user, ts).

    ``codes`` index ``users``; ``t`` unix seconds; ``x``, ``y`` metres in each user's local
    projection, relative to the user's first fix; ``step`` metres from the previous point of the
    same user (0 at a user's first).
    """

    points: pd.DataFrame
    users: np.ndarray
    codes: np.ndarray
    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    x: np.ndarray
    y: np.ndarray
    step: np.ndarray
    new_user: np.ndarray
    acc: np.ndarray | None = None


def make_track(points: pd.DataFrame, coded: tuple[np.ndarray, object] | None = None) -> Track:
    """Sort schema points by (user, ts) and compute the projected arrays of a :class:`Track`.

    ``coded``: the third result of :func:`pipeline.clean.clean_points_coded` when ``points``
    is its clean table (sorted by user and time, with these user codes): the codes are then
    taken as they are instead of being computed and the points sorted again.
    """
    pts = as_points(points)
    ti = pts["ts"].to_numpy(dtype="datetime64[ns]").astype("int64")
    if coded is not None and len(coded[0]) == len(pts):
        codes, users = coded
    else:
        codes, users = user_codes(pts["user_id"])
        order = sort_by_user_time(codes, ti)
        if not (order.size == 0 or np.all(order[1:] > order[:-1])):
            pts = pts.iloc[order]
            codes, ti = codes[order], ti[order]
    pts = pts.reset_index(drop=True)
    lat = pts["lat"].to_numpy(dtype="float64")
    lon = pts["lon"].to_numpy(dtype="float64")
    x, y = project_by_group(lat, lon, codes)
    if x.size:  # metres from each user's first fix: small numbers, exact in float32 tables
        first = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
        count = np.diff(np.r_[first, x.size])
        x = x - np.repeat(x[first], count)  # a repeat: cheaper than gathering by index
        y = y - np.repeat(y[first], count)
    n = lat.size
    new_user = np.ones(n, dtype=bool)
    step = np.zeros(n)
    if n > 1:
        new_user[1:] = codes[1:] != codes[:-1]
        step[1:] = np.hypot(np.diff(x), np.diff(y))
        step[new_user] = 0.0
    acc = np.nan_to_num(pts["accuracy_m"].to_numpy(dtype="float32", na_value=np.nan), nan=0.0)
    return Track(pts, np.asarray(users, dtype=object), codes, ti.astype("float64") / 1e9, lat, lon,
                 x, y, step, new_user, acc)


def range_minmax(values: list[np.ndarray], lo: np.ndarray, hi: np.ndarray
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(min, max)`` of each array over the inclusive index ranges ``[lo[k], hi[k]]``.

    A sparse table built one level at a time: level ``l`` holds the max/min over runs of
    ``2**l`` elements; each query is answered at its own level by two overlapping runs and the
    level is then discarded. Work O(n log w) for windows up to ``w`` points, memory O(n).
    Requires ``0 <= lo <= hi < n``.
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    out = [(np.zeros(lo.size), np.zeros(lo.size)) for _ in values]
    if lo.size == 0:
        return out
    level_of = np.floor(np.log2(hi - lo + 1)).astype(np.int8)
    top = int(level_of.max())
    # float32 tables halve the memory; callers pass coordinates relative to a nearby origin
    # (metres within a city: ~1 cm resolution)
    cur_max = [v.astype(np.float32) for v in values]
    cur_min = [v.astype(np.float32) for v in values]
    for level in range(top + 1):
        sel = np.flatnonzero(level_of == level)
        if sel.size:
            a = lo[sel]
            b = hi[sel] - (1 << level) + 1
            for j in range(len(values)):
                out[j][0][sel] = np.minimum(cur_min[j][a], cur_min[j][b])
                out[j][1][sel] = np.maximum(cur_max[j][a], cur_max[j][b])
        if level < top:
            s = 1 << level
            for j in range(len(values)):
                cur_max[j] = np.maximum(cur_max[j][:-s], cur_max[j][s:])
                cur_min[j] = np.minimum(cur_min[j][:-s], cur_min[j][s:])
    return out


def _within_radius(x, y, lo, anchor, radius):
    """Whether every point of each window ``[lo[k], anchor[k]]`` lies within ``radius`` of
    point ``anchor[k]`` (Euclidean).

    The window's bounding box (sparse table) settles most windows: inside the inscribed square
    means yes, outside the circumscribed square means no. Only the windows in between are
    checked point by point, in bounded numpy batches.
    """
    (xmin, xmax), (ymin, ymax) = range_minmax([x, y], lo, anchor)
    xa, ya = x[anchor], y[anchor]
    reach = np.maximum(np.maximum(xmax - xa, xa - xmin), np.maximum(ymax - ya, ya - ymin))
    inner = radius / np.sqrt(2.0)
    ok = reach <= inner
    unsure = np.flatnonzero((reach > inner) & (reach <= radius))
    if unsure.size:
        lens = anchor[unsure] - lo[unsure] + 1
        bounds = np.searchsorted(np.cumsum(lens), np.arange(_EXACT_BATCH, lens.sum() + _EXACT_BATCH,
                                                            _EXACT_BATCH), side="right")
        start = 0
        for stop in np.unique(np.r_[bounds, unsure.size]):  # a few batches, not per point
            if stop <= start:
                continue
            sel = unsure[start:stop]
            idx, k = expand_ranges(lo[sel], anchor[sel])
            d2 = (x[idx] - x[anchor[sel]][k]) ** 2 + (y[idx] - y[anchor[sel]][k]) ** 2
            far = np.zeros(sel.size, dtype=bool)
            far[k[d2 > radius * radius]] = True
            ok[sel] = ~far
            start = stop
    return ok


def _events_in_gaps(tr: Track, events: pd.DataFrame | None, mask=None) -> np.ndarray:
    """Per point i: one of ``events`` (rows with user_id, ts) lies in (t[i-1], t[i]]."""
    n = tr.t.size
    out = np.zeros(n, dtype=bool)
    if events is None or len(events) == 0 or n < 2:
        return out
    ev = events if mask is None else events.loc[mask]
    if len(ev) == 0:
        return out
    ucode = pd.Index(tr.users).get_indexer(ev["user_id"].astype(str))
    ok = ucode >= 0
    if not ok.any():
        return out
    ets = schema.to_unix(pd.to_datetime(ev["ts"], utc=True))[ok]
    ucode = ucode[ok]
    base = np.nanmin(tr.t) - 5 * 86400.0
    span = (np.nanmax(tr.t) - base) + 10 * 86400.0
    key_pts = tr.codes * span + (tr.t - base)
    key_ev = ucode * span + np.clip(ets - base, 0, span - 1)
    pos = np.searchsorted(key_pts, key_ev, side="left")  # first point at/after the event
    pos = pos[(pos > 0) & (pos < n)]
    pos = pos[~tr.new_user[pos]]
    out[pos] = True
    return out


def _user_event_times(tr: Track, df: pd.DataFrame, mask) -> tuple[np.ndarray, np.ndarray]:
    """(user code, unix time) of the selected rows of an events table, sorted, known users only."""
    ev = df.loc[mask] if mask is not None else df.iloc[0:0]
    if len(ev) == 0:
        return np.empty(0, np.int64), np.empty(0)
    u = pd.Index(tr.users).get_indexer(ev["user_id"].astype(str))
    t = schema.to_unix(pd.to_datetime(ev["ts"], utc=True))
    ok = u >= 0
    u, t = u[ok], t[ok]
    order = np.lexsort((t, u))
    return u[order].astype(np.int64), t[order]


def _per_user_search(tr: Track, eu: np.ndarray, et: np.ndarray, side: str) -> np.ndarray:
    """For each point, the position in the sorted events (eu, et) of its own time."""
    base = min(np.nanmin(tr.t), et.min() if et.size else np.inf) - 1.0
    span = max(np.nanmax(tr.t), et.max() if et.size else -np.inf) - base + 1.0
    return np.searchsorted(eu * span + (et - base), tr.codes * span + (tr.t - base), side=side)


def _phone_trip_continues(tr: Track, transitions: pd.DataFrame | None, margin_s: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per point: whether the phone's state machine is on a trip at this time (a trip-start
    transition since its last trip-end one) with its next trip-end transition more than
    ``margin_s`` later, and the time of that next trip-end transition (inf when none)."""
    n = tr.t.size
    out = np.zeros(n, dtype=bool)
    none = (out, np.full(n, np.inf))
    if transitions is None or len(transitions) == 0 or n == 0:
        return none
    su, st = _user_event_times(tr, transitions, _matching(transitions, "transition",
                                                          TRIP_START_TRANSITIONS))
    eu, et = _user_event_times(tr, transitions, _matching(transitions, "transition",
                                                          TRIP_END_TRANSITIONS))
    if st.size == 0 or et.size == 0:
        return none
    # an end the phone only noticed because a silent push woke it up (iOS) says nothing
    # about when the trip really ended: such a phone trip is not trusted
    pu, pt = _user_event_times(tr, transitions, _matching(transitions, "transition",
                                                          ("SILENT_PUSH",)))
    trusted = np.ones(et.size, dtype=bool)
    if pt.size:
        span = max(et.max(), pt.max()) - min(et.min(), pt.min()) + 1e6
        base = min(et.min(), pt.min()) - 1.0
        kp = np.searchsorted(pu * span + (pt - base), eu * span + (et - base), side="right") - 1
        same = (kp >= 0) & (pu[np.maximum(kp, 0)] == eu)
        trusted = ~(same & (et - pt[np.maximum(kp, 0)] <= PUSH_WAKE_S))
    # last start at or before t, last end at or before t, next end after t (same user)
    ks = _per_user_search(tr, su, st, "right") - 1
    ke = _per_user_search(tr, eu, et, "right")
    last_start = np.where((ks >= 0) & (su[np.maximum(ks, 0)] == tr.codes), st[np.maximum(ks, 0)], -np.inf)
    prev_e = ke - 1
    last_end = np.where((prev_e >= 0) & (eu[np.maximum(prev_e, 0)] == tr.codes),
                        et[np.maximum(prev_e, 0)], -np.inf)
    nxt_ok = (ke < et.size) & (eu[np.minimum(ke, et.size - 1)] == tr.codes)
    next_end = np.where(nxt_ok, et[np.minimum(ke, et.size - 1)], np.inf)
    nxt_trusted = nxt_ok & trusted[np.minimum(ke, et.size - 1)]
    on = (last_start > last_end) & nxt_trusted & (next_end - tr.t > margin_s)
    return on, next_end


def _nearest_activity_is(tr: Track, motion: pd.DataFrame, activity: str, window_s: float
                         ) -> np.ndarray:
    """Per point: the nearest motion reading of its user within ``window_s`` is ``activity``."""
    n = tr.t.size
    m = motion.assign(u=pd.Index(tr.users).get_indexer(motion["user_id"].astype(str)),
                      t=schema.to_unix(pd.to_datetime(motion["ts"], utc=True)))
    m = m[m["u"] >= 0]
    if len(m) == 0 or n == 0:
        return np.zeros(n, dtype=bool)
    m = m.assign(hit=(m["activity"].astype(str) == activity).astype(float))
    left = pd.DataFrame({"u": tr.codes, "t": tr.t, "i": np.arange(n)}).sort_values("t", kind="stable")
    res = pd.merge_asof(left, m[["u", "t", "hit"]].sort_values("t", kind="stable"), on="t", by="u",
                        direction="nearest", tolerance=window_s)
    out = np.zeros(n, dtype=bool)
    out[res["i"].to_numpy()] = res["hit"].fillna(0.0).to_numpy() > 0
    return out


def _still_runs(tr: Track, motion: pd.DataFrame, min_s: float, min_conf: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Points inside runs of consecutive confident STILL readings lasting >= ``min_s``, and the
    first point of each such run."""
    n = tr.t.size
    inside = np.zeros(n, dtype=bool)
    first = np.zeros(n, dtype=bool)
    mu, mt = _user_event_times(tr, motion, np.ones(len(motion), dtype=bool))
    if mt.size == 0 or n == 0:
        return inside, first
    # the same rows, sorted the same way, to read their activity and confidence
    m = motion.assign(_u=pd.Index(tr.users).get_indexer(motion["user_id"].astype(str)),
                      _t=schema.to_unix(pd.to_datetime(motion["ts"], utc=True)))
    m = m[m["_u"] >= 0].sort_values(["_u", "_t"], kind="stable")
    conf = pd.to_numeric(m["confidence"], errors="coerce").fillna(100.0).to_numpy()
    still = (m["activity"].astype(str).to_numpy() == "STILL") & (conf >= min_conf)
    new_run = np.r_[True, (still[1:] != still[:-1]) | (mu[1:] != mu[:-1])]
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], mt.size] - 1
    # a run lasts until the next reading (or its own last one)
    nxt = np.minimum(ends + 1, mt.size - 1)
    run_end_t = np.where((ends + 1 < mt.size) & (mu[nxt] == mu[ends]), mt[nxt], mt[ends])
    keep = still[starts] & (run_end_t - mt[starts] >= min_s)
    if not keep.any():
        return inside, first
    ru, ra, rb = mu[starts[keep]], mt[starts[keep]], run_end_t[keep]
    k = _per_user_search(tr, ru, ra, "right") - 1  # last run starting at or before the point
    ok = (k >= 0) & (ru[np.maximum(k, 0)] == tr.codes)
    kk = np.maximum(k, 0)
    inside = ok & (tr.t <= rb[kk])
    first = inside & np.r_[True, ~inside[:-1] | tr.new_user[1:]]
    return inside, first


def _matching(df: pd.DataFrame | None, col: str, keys: tuple[str, ...]) -> np.ndarray | None:
    if df is None or len(df) == 0 or col not in df.columns:
        return None
    names = df[col].astype(str).str.upper()
    m = np.zeros(len(df), dtype=bool)
    for k in keys:
        m |= names.str.contains(k, regex=False).to_numpy()
    return m


def _trip_ids(users: np.ndarray, start_ts: np.ndarray) -> np.ndarray:
    ms = np.round(start_ts * 1000).astype(np.int64).astype(str)
    return np.char.add(np.char.add(users.astype(str), "-t"), ms).astype(object)


def user_blocks(codes: np.ndarray, max_points: int) -> list[tuple[int, int]]:
    """Split sorted points into ``[lo, hi)`` blocks of whole users of about ``max_points``."""
    n = codes.size
    if n <= max_points:
        return [(0, n)] if n else []
    starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1, n]
    blocks, lo = [], 0
    for k in range(1, starts.size):  # one iteration per user
        if starts[k] - lo >= max_points or k == starts.size - 1:
            blocks.append((lo, int(starts[k])))
            lo = int(starts[k])
    return blocks


def _slice(tr: Track, lo: int, hi: int) -> Track:
    """The points ``[lo, hi)`` of a track (array views; ``points`` left whole)."""
    return Track(tr.points, tr.users, tr.codes[lo:hi], tr.t[lo:hi], tr.lat[lo:hi], tr.lon[lo:hi],
                 tr.x[lo:hi], tr.y[lo:hi], tr.step[lo:hi], tr.new_user[lo:hi],
                 None if tr.acc is None else tr.acc[lo:hi])


def detect_trips(tr: Track, motion: pd.DataFrame | None = None,
                 transitions: pd.DataFrame | None = None,
                 params: TripParams = TripParams()) -> tuple[np.ndarray, np.ndarray]:
    """Trip start and end point indices (inclusive) into the sorted :class:`Track`.

    Users are independent, so large tracks are processed in blocks of whole users (about
    ``BLOCK_POINTS`` points each) to bound the memory of the work arrays.

    Returns
    -------
    (start_idx, end_idx) : int arrays, one entry per trip, in (user, time) order.
    """
    ss, ee = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for lo, hi in user_blocks(tr.codes, BLOCK_POINTS):
        s, e = _detect_block(_slice(tr, lo, hi), motion, transitions, params)
        ss.append(s + lo)
        ee.append(e + lo)
    return np.concatenate(ss), np.concatenate(ee)


def _detect_block(tr: Track, motion, transitions, params: TripParams):
    p = params
    n = tr.t.size
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    t, x, y = tr.t, tr.x, tr.y
    dt = np.r_[np.inf, np.diff(t)]
    disp = tr.step
    gap_speed = np.where(dt > 0, disp / np.maximum(dt, 1e-9), 0.0)
    long_gap = dt > p.max_gap_s
    # a long silence with no moving phone activity inside it is a stay
    if motion is not None and len(motion):
        moving = _matching(motion, "activity", MOVING_ACTIVITIES)
        has_motion_user = np.zeros(len(tr.users), dtype=bool)
        mu = pd.Index(tr.users).get_indexer(motion["user_id"].astype(str).unique())
        has_motion_user[mu[mu >= 0]] = True
        moved_in_gap = _events_in_gaps(tr, motion, moving)
        still_gap = long_gap & has_motion_user[tr.codes] & ~moved_in_gap
    else:
        still_gap = np.zeros(n, dtype=bool)
    # the phone's own state machine says the trip goes on for a while yet (a wait at a bus
    # stop, a transfer, a traffic jam): silences and dwells there are not stays
    ongoing, next_end = _phone_trip_continues(tr, transitions, p.dwell_time_s)
    # a silence is bridged when the phone was on a trip when it began and stayed so through it
    # (an iOS visit reported inside the silence means it was a stay after all)
    bridged = np.r_[False, ongoing[:-1] & (next_end[:-1] > t[1:])] & (dt <= p.max_bridge_s)
    bridged &= ~_events_in_gaps(tr, transitions, _matching(transitions, "transition", ("VISIT_",)))
    stay_gap = (((dt > p.dwell_time_s) & (disp < p.dwell_radius_m))
                | (long_gap & (gap_speed <= p.gap_speed_mps)) | still_gap) & ~bridged
    # the phone said the trip ended during a long silence
    ended_in_gap = (dt > p.end_transition_gap_s) & _events_in_gaps(tr, transitions, _matching(transitions, "transition",
                                                                        TRIP_END_TRANSITIONS))
    brk = (tr.new_user | (dt > p.untracked_gap_s) | stay_gap | ended_in_gap
           | _events_in_gaps(tr, transitions, _matching(transitions, "transition",
                                                        RESTART_TRANSITIONS)))
    brk[0] = True
    seg_start = np.maximum.accumulate(np.where(brk, np.arange(n), 0))

    # dwell: the trailing window [w, i] spans >= dwell_time_s and >= dwell_points points,
    # and every point of it lies within dwell_radius_m (Chebyshev) of point i
    span = (t.max() - t.min()) + 4 * p.dwell_time_s + 1.0
    key = tr.codes * span + (t - t.min())  # monotone over (user, t)
    w = np.searchsorted(key, key - p.dwell_time_s, side="right")  # first point inside the window
    w = np.minimum(w, np.arange(n) - (p.dwell_points - 1))
    wc = np.clip(w, 0, n - 1)
    cand = np.flatnonzero((w >= seg_start) & (t - t[wc] >= p.dwell_time_s - DWELL_FUZZ_S))
    dwelling = np.zeros(n, dtype=bool)
    if cand.size:
        dwelling[cand[_within_radius(x, y, w[cand], cand, p.dwell_radius_m)]] = True
    dwelling &= ~ongoing
    # every point of a dwelling window is at the stay
    di = np.flatnonzero(dwelling)
    cover = np.zeros(n + 1, dtype=np.int64)
    np.add.at(cover, w[di] if p.end_at == "arrival" else (w[di] + di) // 2, 1)
    np.add.at(cover, di + 1, -1)
    stay = np.cumsum(cover[:-1]) > 0
    # a long run of confident STILL readings is a stay too (sparse iOS fixes near arrival)
    if motion is not None and len(motion):
        still, still_start = _still_runs(tr, motion, p.still_min_s, p.min_still_confidence)
        still &= ~ongoing
        stay |= still
        brk |= still_start & ~ongoing

    move = ~stay
    prev_move = np.r_[False, move[:-1]]
    run_start = move & (brk | ~prev_move)
    next_brk = np.r_[brk[1:], True]
    next_move = np.r_[move[1:], False]
    run_end = move & (next_brk | ~next_move)
    s = np.flatnonzero(run_start)
    e = np.flatnonzero(run_end)
    # extend to the adjoining stay points (departure and arrival), within the segment
    s_ext = np.where((s > 0) & ~brk[s] & stay[np.maximum(s - 1, 0)], s - 1, s)
    e_nxt = np.minimum(e + 1, n - 1)
    e_ext = np.where((e + 1 < n) & ~brk[e_nxt] & stay[e_nxt], e + 1, e)
    # a stay point before a silence is not the departure: the tester left during the silence
    s_ext = np.where((s_ext < s) & (dt[s] > p.departure_gap_s), s, s_ext)
    dep, arr = _trim_to_radius(x, y, s_ext, e_ext, p.dwell_radius_m)
    # a trip whose first fix follows a silence began where the fix before it was (the phone
    # woke up once past its geofence, ~100 m out): the jitter checks below measure from there,
    # so a short walk is not dropped for the part the phone slept through
    woke = ((s_ext == s) & (s_ext > 0) & ~tr.new_user[s_ext] & (dt[s_ext] > p.departure_gap_s)
            & (disp[s_ext] <= DEPARTURE_MAX_BACK_M))
    leaves = arr > dep
    recheck = woke & ~leaves
    if recheck.any():
        dep_w, arr_w = _trim_to_radius(x, y, s_ext[recheck] - 1, e_ext[recheck], p.dwell_radius_m)
        leaves[recheck] = arr_w > dep_w
    if p.end_at == "arrival":
        e_ext = arr
    else:
        # window median for ends found by a stay; a trip cut by a silence (or the end of the
        # data) ends where it arrived, not at the last stationary fix before the silence
        # (when the phone reports motion, only if it calls the trimmed tail still)
        trim = (e_ext == e) & (arr < e_ext)
        if trim.any() and motion is not None and len(motion):
            still_pt = _nearest_activity_is(tr, motion, "STILL", p.activity_window_s)
            idx, k = expand_ranges(arr[trim] + 1, e_ext[trim])
            share = np.bincount(k, weights=still_pt[idx], minlength=int(trim.sum())) / \
                np.maximum(np.bincount(k, minlength=int(trim.sum())), 1)
            trim[np.flatnonzero(trim)] = share >= 0.5
        acc = tr.acc if tr.acc is not None else np.zeros(n)
        _, arr_near = _trim_to_radius(x, y, s_ext, e_ext, p.arrival_radius_m, acc)
        e_ext = np.where(trim, np.maximum(arr_near, s_ext), e_ext)
        if p.end_at == "midpoint":  # between the arrival and the window median
            e_ext = np.where(trim, e_ext, np.maximum((arr_near + e_ext) // 2, s_ext))
        # moves that never leave the radius are dropped below
        e_ext = np.where(leaves, e_ext, s_ext)

    # filter jitter: too few points, too short
    cum = np.cumsum(np.where(brk, 0.0, disp))
    dist = cum[e_ext] - cum[s_ext] + np.where(woke, disp[s_ext], 0.0)
    dur = t[e_ext] - t[s_ext]
    ok = (e_ext > s_ext) & (dist >= p.min_trip_distance_m) & (dur >= p.min_trip_duration_s)
    return s_ext[ok].astype(np.int64), e_ext[ok].astype(np.int64)


def expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All indices of the inclusive ranges ``[lo[k], hi[k]]`` and the range number of each."""
    lens = np.maximum(hi - lo + 1, 0)
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.r_[0, np.cumsum(lens)[:-1]]
    idx = np.repeat(lo - starts, lens) + np.arange(total)
    return idx.astype(np.int64), np.repeat(np.arange(lo.size), lens)


def _trim_to_radius(x, y, s, e, radius, slack=None):
    """Move each trip's start to the departure (last point of the initial run within
    ``radius`` of the start point) and its end to the arrival (first point of the final run
    within ``radius`` of the end point). A trip that never leaves comes back with s >= e."""
    if s.size == 0:
        return s, e
    idx, k = expand_ranges(s, e)
    offsets = np.r_[0, np.cumsum(e - s + 1)[:-1]]
    r = radius if slack is None else radius + slack[idx]
    far_s = np.hypot(x[idx] - x[s[k]], y[idx] - y[s[k]]) > r
    far_e = np.hypot(x[idx] - x[e[k]], y[idx] - y[e[k]]) > r
    big = np.iinfo(np.int64).max
    first_far = np.minimum.reduceat(np.where(far_s, idx, big), offsets)
    last_far = np.maximum.reduceat(np.where(far_e, idx, -1), offsets)
    dep = np.where(first_far == big, e, first_far - 1)
    arr = np.where(last_far < 0, s, last_far + 1)
    return dep, arr


def _user_tz(tr: Track) -> np.ndarray:
    """Time zone per user code: the points' ``tz`` column when given, else the default."""
    if "tz" in tr.points.columns and len(tr.points):
        # the first point of each user (points are sorted by user): no per-point strings
        first = np.searchsorted(tr.codes, np.arange(len(tr.users)), side="left")
        ok = first < tr.codes.size
        vals = tr.points["tz"].iloc[first[ok]]
        tz = np.full(len(tr.users), schema.DEFAULT_TZ, dtype=object)
        tz[np.flatnonzero(ok)] = vals.fillna(schema.DEFAULT_TZ).astype(str).to_numpy()
        return tz
    return np.full(len(tr.users), schema.DEFAULT_TZ, dtype=object)


def departure_times(tr: Track, s: np.ndarray, e: np.ndarray, min_speed_mps: float = 0.5,
                    first_steps: int = 3, max_back_m: float = DEPARTURE_MAX_BACK_M) -> np.ndarray:
    """Start time of each trip, seconds.

    A trip whose first fix follows a silence (the phone only woke up once the tester had left,
    e.g. after an iOS geofence exit) started before that fix: the departure is taken back from
    the first fix by the distance from the previous fix (where the tester was) at the trip's
    initial speed (mean over its first steps, at least ``min_speed_mps``), and never before
    the previous fix. Otherwise it is the time of the first fix. At most ``max_back_m``
    metres are taken back: a phone wakes within a few hundred metres of the place it left,
    and a longer step means the tester moved in between without the phone (a trip made with
    the phone off) — the previous fix is then not where this trip began.
    """
    start = tr.t[s].copy()
    if s.size == 0:
        return start
    prev = s - 1
    has_prev = (s > 0) & ~tr.new_user[s]
    if not has_prev.any():
        return start
    cum = np.cumsum(np.where(tr.new_user, 0.0, tr.step))
    k = np.minimum(s + first_steps, e)
    dt0 = tr.t[k] - tr.t[s]
    v = np.where(dt0 > 0, (cum[k] - cum[s]) / np.where(dt0 > 0, dt0, 1.0), 0.0)
    v = np.maximum(v, min_speed_mps)
    back = np.minimum(tr.step[s], max_back_m) / v
    pp = np.maximum(prev, 0)
    est = np.maximum(tr.t[pp], tr.t[s] - back)
    return np.where(has_prev, est, start)


def build_trips(tr: Track, s: np.ndarray, e: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trips and places tables from trip index ranges (see :func:`detect_trips`)."""
    users = tr.users[tr.codes[s]] if s.size else np.empty(0, dtype=object)
    cum = np.cumsum(tr.step)
    tz = _user_tz(tr)
    # geometry: one LineString per trip from all its points (vectorised constructor)
    geom = linestrings_wkb(tr.lon, tr.lat, s, e)
    start_ts = departure_times(tr, s, e)
    trip_id = _trip_ids(users, start_ts)
    trip_code = tr.codes[s]

    # places: before the first trip, between consecutive trips, after the last trip of a user
    first_of_user = np.r_[True, trip_code[1:] != trip_code[:-1]] if s.size else np.empty(0, bool)
    last_of_user = np.r_[trip_code[1:] != trip_code[:-1], True] if s.size else np.empty(0, bool)
    # place k of a trip list: "before trip j" for each first trip, and "after trip j" for every trip
    before = np.flatnonzero(first_of_user)
    pl_code = np.r_[trip_code[before], trip_code]
    pl_enter = np.r_[np.full(before.size, np.nan), tr.t[e]]
    pl_exit = np.r_[start_ts[before], np.where(last_of_user, np.nan, np.r_[start_ts[1:], np.nan])]
    # location: median of the points of the stay (between the trips), or the trip end point
    lo_idx = np.r_[np.searchsorted(tr.codes, trip_code[before], side="left"), e]
    hi_idx = np.r_[s[before], np.where(last_of_user, np.searchsorted(tr.codes, trip_code, side="right") - 1,
                                        np.r_[s[1:], 0])]
    pl_lat, pl_lon = _range_median(tr, lo_idx, hi_idx)
    # users without any trip: one place over all their points
    no_trip = np.setdiff1d(np.arange(len(tr.users)), np.unique(trip_code))
    if no_trip.size:
        lo_u = np.searchsorted(tr.codes, no_trip, side="left")
        hi_u = np.searchsorted(tr.codes, no_trip, side="right") - 1
        keep = hi_u >= lo_u
        no_trip, lo_u, hi_u = no_trip[keep], lo_u[keep], hi_u[keep]
        mlat, mlon = _range_median(tr, lo_u, hi_u)
        pl_code = np.r_[pl_code, no_trip]
        pl_enter = np.r_[pl_enter, np.full(no_trip.size, np.nan)]
        pl_exit = np.r_[pl_exit, np.full(no_trip.size, np.nan)]
        pl_lat, pl_lon = np.r_[pl_lat, mlat], np.r_[pl_lon, mlon]
        lo_idx = np.r_[lo_idx, lo_u]
    order = np.lexsort((np.where(np.isnan(pl_enter), -np.inf, pl_enter), pl_code))
    pl_code, pl_enter, pl_exit = pl_code[order], pl_enter[order], pl_exit[order]
    pl_lat, pl_lon, lo_idx = pl_lat[order], pl_lon[order], lo_idx[order]
    ref_ts = np.where(np.isfinite(pl_enter), pl_enter, np.where(np.isfinite(pl_exit), pl_exit, tr.t[lo_idx]
                                                                  if lo_idx.size else pl_exit))
    pl_users = tr.users[pl_code] if pl_code.size else np.empty(0, dtype=object)
    place_id = np.char.add(np.char.add(pl_users.astype(str), "-p"),
                           np.round(ref_ts * 1000).astype(np.int64).astype(str)).astype(object) \
        if pl_code.size else np.empty(0, dtype=object)
    places = schema.coerce(pd.DataFrame({
        "user_id": pl_users.astype(str) if pl_code.size else np.empty(0, dtype=str),
        "place_id": place_id,
        "enter_ts": schema.from_unix(pl_enter),
        "exit_ts": schema.from_unix(pl_exit),
        "lat": pl_lat, "lon": pl_lon,
        "tz": tz[pl_code] if pl_code.size else np.empty(0, dtype=object),
    }), "places")

    # the place each trip leaves/reaches: places are in (user, time) order, trip j of a user
    # leaves that user's place j and reaches place j + 1
    if s.size:
        pl_first = np.searchsorted(pl_code, trip_code, side="left")
        ord_in_user = np.arange(s.size) - np.searchsorted(trip_code, trip_code, side="left")
        start_place = place_id[pl_first + ord_in_user]
        end_place = place_id[pl_first + ord_in_user + 1]
    else:
        start_place = end_place = np.empty(0, dtype=object)
    trips = schema.coerce(pd.DataFrame({
        "user_id": users.astype(str) if s.size else np.empty(0, dtype=str),
        "trip_id": trip_id,
        "start_ts": schema.from_unix(start_ts),
        "end_ts": schema.from_unix(tr.t[e]),
        "start_lat": tr.lat[s], "start_lon": tr.lon[s],
        "end_lat": tr.lat[e], "end_lon": tr.lon[e],
        "start_place_id": start_place, "end_place_id": end_place,
        "distance_m": cum[e] - cum[s],
        "duration_s": tr.t[e] - start_ts,
        "geometry": geom,
        "origin": np.full(s.size, "gps", dtype=object),
        "tz": tz[trip_code] if s.size else np.empty(0, dtype=object),
    }), "trips")
    return places, trips


def range_chunks(lo: np.ndarray, hi: np.ndarray, max_points: int = CHUNK_POINTS):
    """Split inclusive ranges into consecutive groups of about ``max_points`` points in all.

    Yields ``slice`` objects over the ranges, so per-range work can expand a bounded number of
    points at a time.
    """
    lens = np.maximum(hi - lo + 1, 0)
    cum = np.cumsum(lens)
    start = 0
    while start < lo.size:  # a few chunks, not per point
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + max_points, side="right"))
        stop = max(stop, start + 1)
        yield slice(start, stop)
        start = stop


#: Start of a 2D LineString in little-endian WKB: byte order 1, geometry type 2 (uint32).
_WKB_LINE = np.array([1, 2, 0, 0, 0], dtype=np.uint8)


def linestrings_wkb(lon: np.ndarray, lat: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """WKB LineStrings of the points ``[lo[k], hi[k]]`` (object array; None for one point).

    The bytes are laid out with numpy, chunk by chunk of ranges, exactly as
    ``shapely.to_wkb(shapely.linestrings(...))`` writes them (little-endian 2D WKB: byte
    order, type 2, number of points, then x y of each point): no geometry objects, never
    one object per point (~5x faster than building shapes and asking GEOS for their WKB).
    """
    out = np.full(lo.size, None, dtype=object)
    multi = np.flatnonzero(hi > lo)
    for sl in range_chunks(lo[multi], hi[multi]):
        sel = multi[sl]
        n = hi[sel] - lo[sel] + 1
        head = np.empty((sel.size, 9), dtype=np.uint8)
        head[:, :5] = _WKB_LINE
        head[:, 5:] = n.astype("<u4").view(np.uint8).reshape(-1, 4)
        idx, _ = expand_ranges(lo[sel], hi[sel])
        xy = np.empty((idx.size, 2), dtype="<f8")
        xy[:, 0] = lon[idx]
        xy[:, 1] = lat[idx]
        heads, coords = head.tobytes(), memoryview(xy).cast("B")
        end = (16 * np.cumsum(n)).tolist()
        out[sel] = [heads[9 * j:9 * j + 9] + coords[a:b]  # one bytes object per line
                    for j, (a, b) in enumerate(zip([0, *end[:-1]], end))]
    return out


def _range_median(tr: Track, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median lat/lon over inclusive index ranges (ranges may overlap at their ends)."""
    if lo.size == 0:
        return np.empty(0), np.empty(0)
    hi = np.maximum(hi, lo)
    mlat = np.empty(lo.size)
    mlon = np.empty(lo.size)
    for sl in range_chunks(lo, hi):  # bounded memory
        idx, grp = expand_ranges(lo[sl], hi[sl])
        for vals, med in ((tr.lat[idx], mlat), (tr.lon[idx], mlon)):
            got = _group_median(vals, hi[sl] - lo[sl] + 1)
            if got is None:  # NaN, zeros or a wide spread: pandas' own median
                got = pd.Series(vals).groupby(grp, sort=True).median().to_numpy()
            med[sl] = got
    return mlat, mlon


def _group_median(vals: np.ndarray, lens: np.ndarray) -> np.ndarray | None:
    """Median of each run of ``vals`` (consecutive runs of ``lens`` >= 1 values), exactly as
    pandas' groupby median gives it (mean of the two middle values for an even count), or
    None when this shortcut does not apply (NaN or zero values, or runs too wide to sort).

    Why: one flat integer sort instead of a groupby. Each float becomes an int64 of the same
    order (its bits, the negatives' magnitude bits flipped); a run's values, offset by the
    run's smallest, and the run number make one sortable key when they fit in 62 bits
    (places span a few hundred metres: ~40 bits of a latitude's ulps).
    """
    if not np.all(np.isfinite(vals)) or np.any(vals == 0.0):  # -0.0 / 0.0 ties: leave to pandas
        return None
    key = vals.view(np.int64)
    key = key ^ ((key >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))  # same order as the floats
    starts = np.r_[0, np.cumsum(lens)[:-1]]
    kmin = np.minimum.reduceat(key, starts)
    kmax = np.maximum.reduceat(key, starts)
    if not np.all((kmin >= 0) | (kmax < 0)):  # mixed signs: the span could overflow
        return None
    width = int((kmax - kmin).max()) + 1
    if width * lens.size >= 1 << 62:
        return None
    shift = np.arange(lens.size, dtype=np.int64) * width - kmin  # run k's keys from k * width
    key += np.repeat(shift, lens)
    key.sort()
    lo = key[starts + (lens - 1) // 2] - shift
    hi = key[starts + lens // 2] - shift
    lo = (lo ^ ((lo >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))).view(np.float64)
    hi = (hi ^ ((hi >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))).view(np.float64)
    return np.where(lens % 2 == 1, hi, (hi + lo) / 2)


def segment_trips(points: pd.DataFrame, motion: pd.DataFrame | None = None,
                  transitions: pd.DataFrame | None = None, params: TripParams = TripParams()
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split cleaned points into places (stays) and trips (moves).

    Parameters
    ----------
    points : DataFrame
        Schema ``points`` (cleaned: see :func:`pipeline.clean.clean_points`), one or many users,
        any order. An extra ``tz`` column (IANA name) sets the trips' and places' ``tz``.
    motion : DataFrame, optional
        Schema ``motion``. Not needed for trip boundaries (used by section segmentation);
        accepted so callers can pass what they have.
    transitions : DataFrame, optional
        Schema ``transitions``; trip-end transitions inside silences end trips.
    params : TripParams
        Thresholds, metres and seconds.

    Returns
    -------
    places, trips : DataFrame
        Schema ``places`` and ``trips`` tables, sorted by user and time. Ids are derived from
        the user and the start (trips) or arrival (places) time in milliseconds, so re-running
        on the same points gives the same ids.
    """
    tr = make_track(points)
    s, e = detect_trips(tr, motion, transitions, params)
    return build_trips(tr, s, e)
