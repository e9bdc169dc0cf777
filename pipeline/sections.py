"""Section segmentation: split each trip where the travel mode changes.

Why: carbon, cost and operator-record fusion are per mode, so a "walk - bus - walk" trip must
become three sections. Each point of a trip gets a mode class from its smoothed speed (a
centred time window, so one noisy fix does not flip it) or, when the phone reports a
confident motion activity near that time, from the activity. A standstill between two
vehicle fixes (a light, a car-park barrier, a bus stop) takes the vehicle's class. Runs of
equal class are sections; runs shorter than ``min_section_s`` (a car slowing at a light, a
GPS glitch) are merged into their longer neighbour, shortest first, until none is left: first
on foot vs in a vehicle (so a bus that reads as cycling between stops and as a car when it
runs stays whole), then bike vs motorised inside each vehicle leg; a vehicle run that the
phone ("in vehicle") or its long fast steps vouch for is kept from ``sure_vehicle_min_s`` (a
two-fix bus ride sampled every 30 s). A walk that opens or closes a trip (to the stop, from
the car park) is kept from ``edge_walk_min_s``; the still tail after the arrival (arrival fix
included) joins the last section, unless a vehicle ends there, the phone says "on foot" and a
transit stop is next to it (the walk home from the bus stop: a fix or two at 30 s sampling).
A silence after a vehicle longer than any vehicle stop, crossed at no more than a walker's
pace, is a wait or a walk on foot (an iOS phone records nothing at a transfer stop). A
foot/vehicle change then moves by up to five fixes to where the speeds between fixes change
regime, and is placed inside the sampling gap before the new section's first fix, from the
vehicle's pace over the gap's step. With a transit
index, ferry crossings (slower than a walk) are cut out by their position on the water,
unless the run looks like a walk along the quay (no wait at the pier; "on foot" readings).
With a transit index, too, a pause between two bus rides on different routes is a transfer
on foot, and a motorised run is cut at a railway station where a train's pace drops to a
car's. Minutes of "in vehicle" readings can make a vehicle at any pace (a bus crawling in a
jam; ``vehicle_reading_run_s``, off by default).
Each section gets a sensed-mode hint (WALKING, BICYCLING or CAR) with ``mode_source="rule"``;
the mode classifier overwrites it later. All numpy over whole arrays: per-pass work is over
runs, never per point in Python.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emission_ext import schema

from .trips import Track, _trim_to_radius, expand_ranges, linestrings_wkb, make_track

WALK, BIKE, MOTOR = 0, 1, 2
#: Activity code of a cycling reading of middling confidence (see ``bike_activity_min_mps``).
WEAK_BIKE = 3
#: Sensed-mode hint per class.
CLASS_MODE = np.array([schema.Mode.WALKING.value, schema.Mode.BICYCLING.value,
                       schema.Mode.CAR.value], dtype=object)
#: Phone activity -> class.
ACTIVITY_CLASS = {"ON_FOOT": WALK, "WALKING": WALK, "RUNNING": WALK, "ON_BICYCLE": BIKE,
                  "IN_VEHICLE": MOTOR}


@dataclass(frozen=True)
class SectionParams:
    """Section segmentation thresholds.

    Attributes
    ----------
    walk_max_mps : float
        Smoothed speeds up to this (m/s) read as walking.
    bike_max_mps : float
        ... up to this as cycling, above as motorised.
    smooth_s : float
        Half-width of the centred speed-smoothing window, seconds.
    smooth_min_span_s : float
        A smoothing window whose fixes span less than this (seconds) is widened by one fix on
        each side (a fix within twice ``smooth_s`` of the point): two fixes a few seconds
        apart read their GPS jitter as the speed (20 m in 4 s: 5 m/s, a bus's pace in the
        middle of a walk).
    min_section_s : float
        Shorter runs are merged into a neighbour (flip-flops), seconds.
    activity_window_s : float
        A motion reading counts for a point within this many seconds.
    min_activity_confidence : float
        Readings below this confidence (percent) are ignored.
    max_merge_passes : int
        Upper bound on flip-flop merging passes.
    stopped_mps : float
        Below this smoothed speed a fix is standing still, m/s (see ``max_vehicle_stop_s``;
        with ``keep_stopped_vehicle`` an "in vehicle" reading then decides).
    keep_stopped_vehicle : bool
        Trust "in vehicle" readings at a standstill. Off by default: on synthetic worlds the
        reading lags after alighting and holds the vehicle through the wait at the stop;
        standstills inside a ride are short and merged anyway.
    vehicle_reading_run_s : float
        Consecutive fixes of a trip that the phone calls "in vehicle" for this long (seconds)
        or longer are a vehicle whatever their pace (a bus crawling in a jam); a reading that
        lags after alighting lasts a minute or so, so shorter runs at a walker's pace are not
        trusted. Off (0) by default: at 180 s it found one change more on the tuning worlds
        and removed 16 false boundaries, but `evaluate fusion --seed 5` then fused one
        section mode fewer with the shipped classifier (168/170 instead of 169/170).
    walk_activity_max_factor : float
        An "on foot" reading decides up to this times ``walk_max_mps`` (1.5: 3.3 m/s, the
        pace above which a walking section is relabelled from its speed anyway, see
        ``implausible_factor``; at 2x, 4.4 m/s, a bus crawling to its stop with a lagging
        "walking" reading became the walk minutes early).
    bike_activity_min_mps, bike_activity_sure_confidence : float
        A cycling reading below ``bike_activity_sure_confidence`` (percent) decides only above
        ``bike_activity_min_mps`` smoothed speed: at a walker's pace a lone "on bicycle"
        reading at confidence 50 would cut a walk into pieces too short to keep, and the walk
        from the stop would vanish into the ride.
    min_vehicle_change_s : float
        Inside one vehicle leg (no walk between), the kind of vehicle (bike / motorised) only
        changes for runs at least this long, seconds.
    tail_counts : bool
        The last run of a trip's moving core lasts until the trip's end (the still tail joins
        it) when its length is judged.
    edge_walk_min_s : float
        A walking run that opens or closes a trip (to the stop, from the car park) is kept from
        this length, seconds; other runs need ``min_section_s``.
    implausible_factor : float
        A walking (cycling) section faster on average than this times the class's top speed is
        relabelled from its speed.
    still_radius_m : float
        Points at the end of a trip within this of its last point (after arriving) are not
        classified on their own.
    arrival_in_tail : bool
        The arrival fix (the first within ``still_radius_m``) belongs to that still tail too.
    stopped_mps, keep_stopped_vehicle, max_vehicle_stop_s : float, bool, float
        See ``_vehicle_stops``: a standstill of up to ``max_vehicle_stop_s`` seconds between
        two vehicle fixes is the vehicle waiting.
    place_in_gap, min_gap_to_place_s : bool, float
        Place a foot/vehicle change inside the sampling gap before the new section's first
        fix (gaps of at least ``min_gap_to_place_s`` seconds), see ``_change_times``.
    refine_points : int
        A foot/vehicle change may move by up to this many fixes to where the step speeds
        change regime (0: off), see ``_refine_foot_changes``.
    refine_fast_weight, refine_fast_min_m : int, float
        There, a step at ``hop_min_mps`` or more on the walker's side counts this many times
        (a car's first fast step outweighs its wait at a car park's barrier) when it covers
        ``refine_fast_min_m`` metres or more; a shorter one may be a fix's GPS jump (70-100 m
        in a few seconds) and counts once.
    foot_step_max_mps : float
        A step between two fixes at most this fast (m/s) reads as on foot when a change is
        refined.
    ferry_line_m, ferry_quay_m, ferry_min_s : float
        With a transit index, fixes within ``ferry_line_m`` of a ferry route and farther than
        ``ferry_quay_m`` from every ferry quay, between a fix at one quay and a fix at another
        quay, lasting at least ``ferry_min_s`` seconds, are a ferry crossing (a vehicle
        section), whatever their speed, see ``_ferry_crossings``.
    ferry_acc_cap_m, ferry_quay_reach_m : float
        A fix's reported accuracy widens ``ferry_line_m`` by up to ``ferry_acc_cap_m``; a
        crossing with no fix at a quay just before (after) it starts (ends) at the quay nearest
        its first (last) fix on the water, within ``ferry_quay_reach_m``.
    ferry_dock_m : float
        A fix within this of a quay is at the pier: a crossing's start, placed at the ferry's
        pace before its first fix on the water, is not moved before the last such fix.
    ferry_dock_approach_s : float
        The fixes between a crossing's last fix on the water and the first fix at the pier
        (``ferry_dock_m``) that follows within this many seconds are the boat's approach, part
        of the crossing (0: off).
    hop_min_mps, hop_min_steps : float, int
        At least ``hop_min_steps`` consecutive steps each faster than ``hop_min_mps`` (m/s),
        covering as much ground in a straight line, are a vehicle however short (a one-stop
        bus hop, shorter than ``min_section_s``), see ``_sure_vehicle``; 0 steps: off.
    sure_vehicle_min_s, sure_step_m : float
        A vehicle run (between walks) at least half of whose fixes are sure is kept from
        ``sure_vehicle_min_s`` seconds instead of ``min_section_s``: a fix is sure when a
        confident "in vehicle" reading decides it (above a walker's pace) or the step into it
        covers at least ``sure_step_m`` metres at ``hop_min_mps`` or more (a two-fix bus ride
        sampled every 30 s); ``sure_vehicle_min_s >= min_section_s``: off.
    tail_walk, tail_walk_stop_m, tail_walk_min_s : bool, float, float
        With a transit index, the still tail after a vehicle is a walk when the phone says
        "on foot" at its first fix, a stop lies within ``tail_walk_stop_m`` metres of that fix
        or of the vehicle's last one, and the vehicle's last fix is ``tail_walk_min_s``
        seconds or more before the trip's end, see ``_tail_walks``.
    transfer_pauses, transfer_min_s, transfer_side_s, transfer_side_min_s : bool, float, float, float
        With a transit index, a pause of ``transfer_min_s`` to ``max_vehicle_stop_s`` seconds
        inside a vehicle run, next to a stop, between two rides of at least
        ``transfer_side_min_s`` on two different bus routes, is a transfer on foot, see
        ``_transfer_pauses``.
    transfer_route_share, transfer_union_share, transfer_jitter_m : float, float, float
        There, each ride's best route holds ``transfer_route_share`` or more of its fixes (over
        ``transfer_side_s`` next to the pause, as long on both sides), both together at most
        ``transfer_union_share``; a step of at most ``foot_step_max_mps`` or within
        ``transfer_jitter_m`` metres is part of the pause.
    rail_cut, rail_window_s, rail_min_mps, rail_road_ratio, rail_station_m : bool, float, float, float, float
        With a transit index that knows railway stations, a motorised run is cut at a fix
        within ``rail_station_m`` of a station where the mean speed over the
        ``rail_window_s`` before reaches ``rail_min_mps`` and the mean speed over the
        ``rail_window_s`` after is at most ``rail_road_ratio`` of it, never reaching
        ``rail_min_mps`` again (a train, then a car from the station's car park), see
        ``_rail_road_cuts``.
    tail_walk_back : bool
        That walk may start at the fix after a motorised run's last fast step (the bus's
        arrival at the stop), before the still tail, see ``_tail_walks``.
    silent_waits, silent_wait_mps, silent_wait_any_next : bool, float, bool
        A silence after a vehicle fix longer than ``max_vehicle_stop_s`` and crossed at under
        ``silent_wait_mps`` (a wait, or a walk to another line's stop) is on foot (an iOS
        transfer), whatever the phone makes of the next fix (``silent_wait_any_next``; else
        only when the next fix is a vehicle's too), see ``_silent_waits``.
    ferry_foot_share, ferry_foot_min_mps, ferry_wait_s : float
        A run on a ferry route is no crossing when the phone says "on foot" on more than
        ``ferry_foot_share`` of its fixes and it moves at ``ferry_foot_min_mps`` or more (a
        walker on the quayside), or when no step at under ``stopped_mps`` (standing at the
        pier, or a silence) ends within ``ferry_wait_s`` seconds before it (0: no such test).
    """

    walk_max_mps: float = 2.2
    bike_max_mps: float = 6.5
    smooth_s: float = 30.0
    min_section_s: float = 90.0
    activity_window_s: float = 60.0
    min_activity_confidence: float = 50.0
    max_merge_passes: int = 50
    still_radius_m: float = 40.0
    implausible_factor: float = 1.5
    stopped_mps: float = 0.5
    walk_activity_max_factor: float = 1.5
    bike_activity_min_mps: float = 2.0
    bike_activity_sure_confidence: float = 100.0
    min_vehicle_change_s: float = 300.0
    keep_stopped_vehicle: bool = False
    tail_counts: bool = True
    edge_walk_min_s: float = 45.0
    place_in_gap: bool = True
    max_vehicle_stop_s: float = 180.0
    min_gap_to_place_s: float = 0.0
    refine_points: int = 5
    refine_fast_weight: int = 5
    refine_fast_min_m: float = 150.0
    smooth_min_span_s: float = 30.0
    silent_waits: bool = True
    silent_wait_mps: float = 1.5
    silent_wait_any_next: bool = True
    arrival_in_tail: bool = True
    foot_step_max_mps: float = 2.0
    ferry_line_m: float = 15.0
    ferry_quay_m: float = 40.0
    ferry_min_s: float = 60.0
    ferry_acc_cap_m: float = 30.0
    ferry_quay_reach_m: float = 150.0
    ferry_dock_m: float = 20.0
    ferry_dock_approach_s: float = 120.0
    ferry_foot_share: float = 0.5
    ferry_foot_min_mps: float = 1.0
    ferry_wait_s: float = 300.0
    hop_min_mps: float = 6.0
    hop_min_steps: int = 3
    vehicle_reading_run_s: float = 0.0
    sure_vehicle_min_s: float = 45.0
    tail_walk: bool = True
    tail_walk_stop_m: float = 60.0
    tail_walk_min_s: float = 30.0
    tail_walk_back: bool = True
    transfer_pauses: bool = True
    transfer_min_s: float = 45.0
    transfer_side_s: float = 300.0
    transfer_side_min_s: float = 120.0
    transfer_route_share: float = 0.7
    transfer_union_share: float = 0.9
    transfer_jitter_m: float = 15.0
    rail_cut: bool = True
    rail_window_s: float = 300.0
    rail_min_mps: float = 20.0
    rail_road_ratio: float = 0.6
    rail_station_m: float = 250.0
    sure_step_m: float = 150.0


def _point_trip(n: int, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Trip ordinal of each point (-1 outside trips); a shared boundary goes to the later trip."""
    out = np.full(n, -1, dtype=np.int64)
    if s.size == 0:
        return out
    idx, k = expand_ranges(s, e)
    out[idx] = k  # later trips written last
    return out


def _run_ends(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last position of each element's run in sorted ``g``: what
    ``searchsorted(g, g, "left")`` and ``searchsorted(g, g, "right") - 1`` give, without a
    million binary searches."""
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    lens = np.diff(np.r_[starts, g.size])
    return np.repeat(starts, lens), np.repeat(starts + lens - 1, lens)


def _smoothed_speed(tr: Track, trip_of: np.ndarray, h: float, min_span_s: float = 0.0) -> np.ndarray:
    """Mean speed over the centred window [t - h, t + h] inside the point's trip, m/s.

    A window whose fixes span less than ``min_span_s`` seconds takes in one more fix on each
    side (inside the trip, within ``2 h`` of the point: not across a silence, whose average
    mixes a wait with a ride): a phone may record two fixes a few seconds apart between 30 s
    gaps, and their jitter alone (20 m in 4 s) would be the window's speed.
    """
    n = tr.t.size
    speed = np.zeros(n)
    inside = np.flatnonzero(trip_of >= 0)
    if inside.size < 2:
        return speed
    t = tr.t[inside]
    g = trip_of[inside]
    # the track's own steps (a trip's points are consecutive fixes); only a gap inside a run
    # (not met on tracks from make_track) needs its step measured
    step = tr.step[inside]
    new_run = np.r_[True, g[1:] != g[:-1]]
    gap = np.flatnonzero(~new_run & (np.r_[True, np.diff(inside) != 1] | tr.new_user[inside]))
    if gap.size:
        a, b = inside[gap - 1], inside[gap]
        step[gap] = np.hypot(tr.x[b] - tr.x[a], tr.y[b] - tr.y[a])
    step[new_run] = 0.0
    cum = np.cumsum(step)
    span = (t.max() - t.min()) + 4 * h + 1.0
    key = g * span + (t - t.min())
    lo = np.searchsorted(key, key - h, side="left")
    hi = np.searchsorted(key, key + h, side="right") - 1
    # at least one step: widen single-point windows to a neighbour of the same trip
    first, last = _run_ends(g)
    lo = np.where(lo == hi, np.maximum(lo - 1, first), lo)
    hi = np.where(lo == hi, np.minimum(hi + 1, last), hi)
    if min_span_s > 0:
        # not across a silence: the fix taken in lies within 2 h of the point
        k = np.flatnonzero((t[hi] - t[lo]) < min_span_s)
        lo1, hi1 = np.maximum(lo[k] - 1, first[k]), np.minimum(hi[k] + 1, last[k])
        lo[k] = np.where(t[k] - t[lo1] <= 2 * h, lo1, lo[k])
        hi[k] = np.where(t[hi1] - t[k] <= 2 * h, hi1, hi[k])
    dt = t[hi] - t[lo]
    sp = np.where(dt > 0, (cum[hi] - cum[lo]) / np.where(dt > 0, dt, 1.0), 0.0)
    speed[inside] = sp
    return speed


def _activity_class(tr: Track, motion: pd.DataFrame | None, p: SectionParams) -> np.ndarray:
    """Class from the nearest confident motion reading within the window, -1 when none
    (``WEAK_BIKE`` for a cycling reading below ``bike_activity_sure_confidence``)."""
    n = tr.t.size
    out = np.full(n, -1, dtype=np.int64)
    if motion is None or len(motion) == 0 or n == 0:
        return out
    m = motion[["user_id", "ts", "activity", "confidence"]].copy()
    # STILL (and other non-mode readings) take part as "no opinion": they keep an older
    # moving reading from speaking for a point where the phone already saw a stop
    m["cls"] = m["activity"].astype(str).map(ACTIVITY_CLASS).fillna(-1)
    conf = pd.to_numeric(m["confidence"], errors="coerce").fillna(100.0)
    m.loc[(m["cls"] == BIKE).to_numpy() & (conf < p.bike_activity_sure_confidence).to_numpy(),
          "cls"] = WEAK_BIKE
    m = m[conf >= p.min_activity_confidence]
    if len(m) == 0:
        return out
    ucode = pd.Index(tr.users).get_indexer(m["user_id"].astype(str))
    m = m.assign(u=ucode, t=schema.to_unix(pd.to_datetime(m["ts"], utc=True)))
    m = m[m["u"] >= 0].sort_values(["t"], kind="stable")
    if len(m) == 0:
        return out
    left = pd.DataFrame({"u": tr.codes, "t": tr.t, "i": np.arange(n)}).sort_values("t", kind="stable")
    res = pd.merge_asof(left, m[["u", "t", "cls"]], on="t", by="u", direction="nearest",
                        tolerance=p.activity_window_s)
    ok = res["cls"].notna().to_numpy()
    out[res["i"].to_numpy()[ok]] = res["cls"].to_numpy()[ok].astype(np.int64)
    out[out < 0] = -1
    return out


def _runs(cls: np.ndarray, grp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start positions and lengths of runs of equal (grp, cls)."""
    if cls.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    new = np.r_[True, (cls[1:] != cls[:-1]) | (grp[1:] != grp[:-1])]
    starts = np.flatnonzero(new)
    lens = np.diff(np.r_[starts, cls.size])
    return starts, lens


def _merge_short(cls: np.ndarray, grp: np.ndarray, t_start: np.ndarray, t_end_of_grp: np.ndarray,
                 min_s: float, passes: int, edge_walk_min_s: float | None = None,
                 sure: np.ndarray | None = None, sure_min_s: float = 0.0) -> np.ndarray:
    """Relabel runs shorter than ``min_s`` with their longer neighbour's class, shortest first.

    Each pass relabels every short run that is shorter than both neighbours (so two adjacent
    short runs never swap labels), then runs are recomputed. With ``edge_walk_min_s``, a
    walking run that opens or closes its group only needs that long. With ``sure`` (per
    point), a vehicle run at least half of whose points are sure only needs ``sure_min_s``.
    """
    cls = cls.copy()
    sure_cum = np.r_[0, np.cumsum(sure)] if sure is not None else None
    for _ in range(passes):
        starts, lens = _runs(cls, grp)
        if starts.size < 2:
            break
        g = grp[starts]
        nxt_same = np.r_[g[1:] == g[:-1], False]
        prv_same = np.r_[False, g[1:] == g[:-1]]
        end_t = np.where(nxt_same, np.r_[t_start[starts][1:], 0.0], t_end_of_grp[g])
        dur = end_t - t_start[starts]
        lim = min_s
        if edge_walk_min_s is not None:
            lim = np.where((cls[starts] == WALK) & ~(nxt_same & prv_same), edge_walk_min_s, min_s)
        if sure_cum is not None:
            n_sure = sure_cum[starts + lens] - sure_cum[starts]
            lim = np.where((cls[starts] != WALK) & (2 * n_sure >= lens), np.minimum(lim, sure_min_s), lim)
        short = (dur < lim) & (nxt_same | prv_same)
        if not short.any():
            break
        inf = np.inf
        d_prev = np.where(prv_same, np.r_[inf, dur[:-1]], inf)
        d_next = np.where(nxt_same, np.r_[dur[1:], inf], inf)
        # shortest first among the short runs: a neighbour long enough to stay (a walk at a
        # trip's edge, a sure vehicle run) does not hold a longer short run back
        s_prev = np.where(np.r_[False, short[:-1]], d_prev, inf)
        s_next = np.where(np.r_[short[1:], False], d_next, inf)
        local_min = short & (dur <= s_prev) & (dur <= s_next)
        # ties between equal neighbours: only the earlier one moves this pass
        local_min &= ~(np.r_[False, local_min[:-1]] & (np.r_[inf, dur[:-1]] == dur))
        if not local_min.any():
            break
        take_prev = np.where(prv_same & nxt_same, d_prev >= d_next, prv_same)
        c_prev = np.r_[-1, cls[starts][:-1]]
        c_next = np.r_[cls[starts][1:], -1]
        new_c = np.where(take_prev, c_prev, c_next)
        sel = np.flatnonzero(local_min)
        idx, k = expand_ranges(starts[sel], starts[sel] + lens[sel] - 1)
        cls[idx] = new_c[sel][k]
    return cls


def _vehicle_stops(c: np.ndarray, g: np.ndarray, t: np.ndarray, v: np.ndarray,
                   p: SectionParams) -> np.ndarray:
    """Give standstills inside a vehicle leg the vehicle's class.

    A point standing still (smoothed speed below ``stopped_mps``) says nothing about the mode.
    Between two vehicle points of the same trip, for at most ``max_vehicle_stop_s`` (a light,
    a car-park barrier, a bus stop), it is the vehicle waiting; next to walking it is the walker
    waiting (at the stop), and stays walking.
    """
    n = c.size
    if n == 0:
        return c.copy()
    still = (c == WALK) & (v < p.stopped_mps)
    if not still.any():
        return c.copy()
    pos = np.arange(n)
    prev = np.maximum.accumulate(np.where(~still, pos, -1))
    nxt = np.minimum.accumulate(np.where(~still, pos, n)[::-1])[::-1]
    ok = still & (prev >= 0) & (nxt < n)
    pi, ni = np.where(ok, prev, 0), np.where(ok, nxt, 0)
    ok &= (g[pi] == g) & (g[ni] == g) & (c[pi] != WALK) & (c[ni] != WALK)
    # the wait lasts from the first still fix to the next moving one
    ok &= (t[ni] - t[np.minimum(pi + 1, n - 1)]) <= p.max_vehicle_stop_s
    return np.where(ok, c[pi], c)


def _silent_waits(c: np.ndarray, g: np.ndarray, t: np.ndarray, step: np.ndarray,
                  p: SectionParams) -> np.ndarray:
    """Mark the tester waiting through a silence inside a vehicle leg (a transfer on iOS).

    A phone on a distance filter (iOS) records nothing while it stands still, so the wait at
    a transfer stop leaves no fix: the last fix of the first vehicle and the first of the next
    are neighbours. A silence longer than ``max_vehicle_stop_s`` after a vehicle fix, crossed
    at under ``silent_wait_mps`` on average, is longer than any vehicle's stop, and a vehicle
    moving on would have been recorded: the fix before it (where the vehicle stopped) starts a
    wait (or a walk to another line's stop) on foot, which the next vehicle ends. With
    ``silent_wait_any_next`` the next fix may read as walking too (the phone still says "on
    foot" as the next bus pulls away: a walk run too short to keep would give the silence
    back to the first ride).

    Parameters
    ----------
    c, g, t, step : ndarray
        Class, trip ordinal, time (unix s) and distance from the previous fix (m) of the moving
        points of the trips, in (trip, time) order.
    p : SectionParams
        ``max_vehicle_stop_s``, ``silent_wait_mps``, ``silent_wait_any_next``.

    Returns
    -------
    ndarray
        The classes, with the fix before each such silence on foot.
    """
    if c.size < 3:
        return c
    dt = np.diff(t)
    same = g[1:] == g[:-1]
    nxt_ok = np.ones(dt.size, dtype=bool) if p.silent_wait_any_next else (c[1:] != WALK)
    wait = (same & nxt_ok & (c[:-1] != WALK) & (dt > p.max_vehicle_stop_s)
            & (step[1:] < p.silent_wait_mps * dt))
    # not the trip's first fix: a silence there is the wait before the first vehicle
    wait &= np.r_[False, same[:-1]]
    if not wait.any():
        return c
    out = c.copy()
    out[np.flatnonzero(wait)] = WALK
    return out


def _merge_vehicle_legs(c: np.ndarray, g: np.ndarray, t: np.ndarray, t_end_of_grp: np.ndarray,
                        p: SectionParams, sure: np.ndarray | None = None) -> np.ndarray:
    """Two-level flip-flop merging: on foot vs in a vehicle first, then bike vs motorised
    inside each vehicle leg.

    A bus at city speed reads as cycling between stops and as motorised when it runs; merged
    with three classes at once, its short alternating pieces each fall to the longer walking
    neighbour and the whole ride vanishes. Deciding foot/vehicle first keeps the ride whole;
    the kind of vehicle then only changes inside a leg for runs of ``min_vehicle_change_s``.
    """
    if c.size == 0:
        return c.copy()
    foot = np.where(c == WALK, WALK, MOTOR)
    foot = _merge_short(foot, g, t, t_end_of_grp, p.min_section_s, p.max_merge_passes,
                        p.edge_walk_min_s, sure, p.sure_vehicle_min_s)
    out = np.where(foot == WALK, WALK, c)
    veh = foot != WALK
    if not veh.any():
        return out
    # vehicle legs: runs of vehicle points, numbered over the whole array
    leg_start = np.r_[True, (g[1:] != g[:-1]) | (veh[1:] != veh[:-1])]
    leg = np.cumsum(leg_start) - 1
    iv = np.flatnonzero(veh)
    lv = leg[iv]
    # end of each leg: the time of the point after it (or the trip's moving end)
    nxt = np.minimum(np.r_[np.flatnonzero(leg_start)[1:], c.size], c.size)
    starts = np.flatnonzero(leg_start)
    last_of_trip = np.r_[g[starts][1:] != g[starts][:-1], True]
    leg_end_t = np.where(last_of_trip | (nxt >= c.size), t_end_of_grp[g[starts]],
                         t[np.minimum(nxt, c.size - 1)])
    # a leg whose points are all walking-class after activity (none) cannot occur; legs hold
    # BIKE/MOTOR and possibly WALK points outvoted by the merge: those take the leg's majority
    sub = c[iv]
    n_bike = np.bincount(lv, weights=(sub == BIKE), minlength=leg.max() + 1)
    n_motor = np.bincount(lv, weights=(sub == MOTOR), minlength=leg.max() + 1)
    major = np.where(n_bike > n_motor, BIKE, MOTOR)
    sub = np.where(sub == WALK, major[lv], sub)
    out[iv] = _merge_short(sub, lv, t[iv], leg_end_t, p.min_vehicle_change_s,
                           p.max_merge_passes)
    return out


def _relabel_by_speed(cls, starts, lens, inside, g, tr: Track, e, p: SectionParams) -> np.ndarray:
    """Relabel runs whose mean speed is far above their class's range (m/s)."""
    first = inside[starts]
    last_in_trip = np.r_[g[starts][1:] != g[starts][:-1], True]
    nxt = np.where(last_in_trip, e[g[starts]], np.r_[first[1:], 0])
    cum = np.cumsum(np.where(tr.new_user, 0.0, tr.step))
    dt = tr.t[nxt] - tr.t[first]
    v = np.where(dt > 0, (cum[nxt] - cum[first]) / np.where(dt > 0, dt, 1.0), 0.0)
    c = cls[starts].copy()
    by_speed = np.where(v <= p.walk_max_mps, WALK, np.where(v <= p.bike_max_mps, BIKE, MOTOR))
    too_fast = ((c == WALK) & (v > p.implausible_factor * p.walk_max_mps)) | \
               ((c == BIKE) & (v > p.implausible_factor * p.bike_max_mps))
    c = np.where(too_fast, by_speed, c)
    return np.repeat(c, lens)


def _refine_foot_changes(cls: np.ndarray, starts: np.ndarray, g: np.ndarray, t: np.ndarray,
                         step: np.ndarray, p: SectionParams) -> np.ndarray:
    """Move each foot/vehicle change by up to ``refine_points`` fixes to where the step speeds
    change regime.

    The point classes come from speeds smoothed over ``smooth_s``, which blur a bus slowing
    down to its stop (or pulling away from it) into the walk. Around each change the steps
    between consecutive fixes are read as on foot (at most ``foot_step_max_mps``) or not; the
    change goes to the fix that leaves the fewest steps on the wrong side (a slow step on the
    vehicle's side, a fast one on the walker's), and stays put unless a move does strictly
    better (nearest move on ties). Adjacent changes never cross. A step at a vehicle's pace
    (``hop_min_mps``) on the walker's side counts ``refine_fast_weight`` times: no walker
    makes it, while slow steps on the vehicle's side may be the vehicle waiting (a car at a
    car park's barrier right after its first metres). Only a step of ``refine_fast_min_m``
    or more weighs so: a shorter one may be one fix's GPS jump (a phone's fix 70-100 m off
    in a street canyon, a few seconds after the last), and held a walk's start back past
    it. Five fixes reach a slow bus's last stops (the smoothed speeds read its last 2-3
    minutes at 2-3 m/s as a walk). Work is over a (changes x offsets) matrix.

    Parameters
    ----------
    cls : ndarray
        Class of each point of the trips (WALK, BIKE, MOTOR), points in (trip, time) order.
    starts : ndarray
        First position of each run of equal class (see :func:`_runs`).
    g : ndarray
        Trip ordinal of each point.
    t, step : ndarray
        Time (unix s) of each point and distance from the previous point (m).
    p : SectionParams
        ``refine_points``, ``foot_step_max_mps``, ``hop_min_mps``, ``refine_fast_weight``.

    Returns
    -------
    ndarray
        The classes with the points between an old and a new change position relabelled.
    """
    n = cls.size
    k = np.arange(1, starts.size)
    b = starts[k]
    same_trip = g[b] == g[starts[k - 1]]
    c_prev, c_new = cls[starts[k - 1]], cls[b]
    foot_change = same_trip & ((c_prev == WALK) != (c_new == WALK))
    if not foot_change.any():
        return cls
    k, b = k[foot_change], b[foot_change]
    to_foot = (c_new == WALK)[foot_change]
    lo = starts[k - 1] + 1                                   # previous section keeps a fix
    hi = np.where(k + 1 < starts.size, np.r_[starts, n][np.minimum(k + 1, starts.size)], n) - 1
    trip_last = np.searchsorted(g, g[b], side="right") - 1
    hi = np.minimum(hi, trip_last)                           # this section keeps a fix
    first_of_trip = np.r_[True, g[1:] != g[:-1]]
    dt = np.r_[np.inf, np.diff(t)]
    u = np.where(first_of_trip | (dt <= 0), np.nan, step / np.where(dt > 0, dt, 1.0))
    K = int(p.refine_points)
    cand = b[:, None] + np.arange(-K, K + 1)[None, :]       # candidate first fix of the new side
    cand_ok = (cand >= lo[:, None]) & (cand <= hi[:, None])
    win = b[:, None] + np.arange(-K - 1, K + 2)[None, :]    # steps judged (into these fixes)
    win_ok = (win >= lo[:, None]) & (win <= hi[:, None] + 1) & (win < n)
    uw = u[np.clip(win, 0, n - 1)]
    known = win_ok & np.isfinite(uw)
    fast = known & (uw > p.foot_step_max_mps)
    slow = known & (uw <= p.foot_step_max_mps)
    # before the change: the old side (vehicle when going on foot); after: the new side
    # a step at a vehicle's pace (``hop_min_mps``) on the walker's side weighs more: no
    # walker makes it, while a slow step on the vehicle's side may be the vehicle waiting
    sw = step[np.clip(win, 0, n - 1)]
    heavy = fast & (uw >= p.hop_min_mps) & (sw >= p.refine_fast_min_m)
    fw = np.where(heavy, int(p.refine_fast_weight), 1) * fast
    bad_before = np.where(to_foot[:, None], slow, fw)
    bad_after = np.where(to_foot[:, None], fw, slow)
    # cost of candidate j: bad steps into fixes before j plus bad steps into fixes after j
    before = win[:, None, :] < cand[:, :, None]
    after = win[:, None, :] > cand[:, :, None]
    cost = (before * bad_before[:, None, :]).sum(-1) + (after * bad_after[:, None, :]).sum(-1)
    big = (2 * K + 4) * max(int(p.refine_fast_weight), 1)
    cost = np.where(cand_ok, cost, big)    # above any real cost; no overflow below
    # strictly better than staying put, nearest on ties
    dist = np.abs(np.arange(-K, K + 1))[None, :]
    order = cost * (2 * K + 2) + dist
    best = np.argmin(order, axis=1)
    new_b = cand[np.arange(b.size), best]
    new_b = np.where(cost[np.arange(b.size), best] < cost[:, K], new_b, b)
    # changes of one trip must stay in order
    nxt_same = np.r_[(k[1:] == k[:-1] + 1) & (g[b[1:]] == g[b[:-1]]), False]
    crossed = nxt_same & (new_b >= np.r_[new_b[1:], n])
    crossed |= np.r_[False, crossed[:-1]]
    new_b = np.where(crossed, b, new_b)
    moved = new_b != b
    if not moved.any():
        return cls
    out = cls.copy()
    a0, a1 = np.minimum(b, new_b)[moved], np.maximum(b, new_b)[moved] - 1
    # points between join the previous section (change moved later) or the new one (earlier)
    val = np.where(new_b > b, c_prev[foot_change], c_new[foot_change])[moved]
    idx, r = expand_ranges(a0, a1)
    out[idx] = val[r]
    return out


def _ferry_crossings(tr: Track, inside: np.ndarray, g: np.ndarray, transit,
                     p: SectionParams,
                     act: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which trip points (positions in ``inside``) are on a ferry crossing.

    A harbour ferry is slower than a walk, so speed cannot tell it from the walks around it;
    its position can: on the water along a ferry route, away from both quays. A fix is on the
    water when it lies within ``ferry_line_m`` of a ferry route, widened by its own reported
    accuracy up to ``ferry_acc_cap_m`` (a 30 m fix of a boat 10 m off the line is read 30 m
    off it), and farther than ``ferry_quay_m`` from every quay. A run of such consecutive
    fixes of one trip is a crossing when it goes from one quay to another: each end is the
    quay of the fix just outside the run when that fix is at a quay, else the quay nearest the
    run's own end fix (within ``ferry_quay_reach_m``): an iOS phone on a distance filter
    records nothing while its owner waits on the pier, so the fix before the first one on the
    water may be the last of the walk there. A walk along a quayside promenade next to a
    ferry route does not go from one quay to another on the water. The crossing lasts at
    least ``ferry_min_s``. A fix followed by a silence spent standing (as in
    ``_silent_waits``) is the wait on the pier, never on the water. The ferry's pace is taken
    over the run itself (the wait is not part of it); the departure is placed that pace
    before the first fix on the water, no earlier than the last fix at the pier (within
    ``ferry_dock_m`` of a quay) or the trip's previous fix. A walker on a quayside that
    follows the route's very positions from one quay to the next is told apart by what a
    boarding has and a walk has not: a wait at the pier (a standstill or a silence within
    ``ferry_wait_s`` before the run) and, when the phone reports activities, readings other
    than "on foot" at more than a walker's crawl (``ferry_foot_share``, ``ferry_foot_min_mps``;
    a passenger walking on deck moves at the boat's pace).

    Parameters
    ----------
    act : ndarray, optional
        Activity class per trip point (-1: no reading), see ``_activity_class``.

    Returns
    -------
    on_ferry : ndarray of bool
        Per trip point (positions in ``inside``).
    change_at : ndarray of float
        Unix seconds, NaN but at a crossing's first fix (when the ferry left the quay) and at
        the fix after it (when it arrived): the ferry's own pace on the water carries it from
        the quay to that fix, so the change is placed that distance before (after) it.
    """
    out = np.zeros(inside.size, dtype=bool)
    change_at = np.full(inside.size, np.nan)
    if transit is None or inside.size < 3:
        return out, change_at
    qxy, qst = transit.ferry_quays()
    if len(qxy) == 0:
        return out, change_at
    lat, lon = tr.lat[inside], tr.lon[inside]
    d_line = transit.distance_to_ferry_line(lat, lon)
    acc = tr.acc[inside] if tr.acc is not None else np.zeros(inside.size)
    tol = p.ferry_line_m + np.clip(acc, 0.0, p.ferry_acc_cap_m)
    near = d_line <= tol + max(p.ferry_quay_m, p.ferry_quay_reach_m)
    cand = np.flatnonzero(near)
    if cand.size == 0:
        return out, change_at
    x, y = transit.project(lat[cand], lon[cand])
    d2 = (np.atleast_1d(x)[:, None] - qxy[None, :, 0]) ** 2 + (np.atleast_1d(y)[:, None] - qxy[None, :, 1]) ** 2
    k = d2.argmin(axis=1)
    d_quay = np.full(inside.size, np.inf)
    d_quay[cand] = np.sqrt(d2[np.arange(cand.size), k])
    quay = np.full(inside.size, -1, np.int64)
    quay[cand] = qst[k]
    on = (d_line <= tol) & (d_quay > p.ferry_quay_m)
    # a fix followed by a silence spent standing (see ``_silent_waits``) is the tester waiting
    # on the pier, not yet on the water
    t = tr.t[inside]
    dt_next = np.r_[np.diff(t), 0.0]
    step_next = np.r_[tr.step[inside][1:], 0.0]
    on &= ~((dt_next > p.max_vehicle_stop_s) & (step_next < p.stopped_mps * dt_next)
            & np.r_[g[1:] == g[:-1], False])
    at_quay = d_quay <= p.ferry_quay_m
    # runs of "on the water" inside one trip
    starts = np.flatnonzero(on & np.r_[True, ~on[:-1] | (g[1:] != g[:-1])])
    ends = np.flatnonzero(on & np.r_[~on[1:] | (g[1:] != g[:-1]), True])
    if starts.size == 0:
        return out, change_at
    b = np.clip(starts - 1, 0, inside.size - 1)
    a = np.clip(ends + 1, 0, inside.size - 1)
    # each end of the run: the fix just outside it at a quay, else the run's own end fix
    b_quay = (starts > 0) & (g[b] == g[starts]) & at_quay[b]
    a_quay = (ends + 1 < inside.size) & (g[a] == g[ends]) & at_quay[a]
    reach = p.ferry_quay_reach_m
    q0 = np.where(b_quay, quay[b], np.where(d_quay[starts] <= reach, quay[starts], -1))
    q1 = np.where(a_quay, quay[a], np.where(d_quay[ends] <= reach, quay[ends], -1))
    t0 = np.where(b_quay, t[b], t[starts])
    t1 = np.where(a_quay, t[a], t[ends])
    ok = (q0 >= 0) & (q1 >= 0) & (q0 != q1) & (t1 - t0 >= p.ferry_min_s)
    if act is not None and p.ferry_foot_share < 1.0:
        # a walker on the quayside next to the route: the phone says "on foot" on the way
        foot_cum = np.r_[0, np.cumsum(act == WALK)]
        n_foot = foot_cum[ends + 1] - foot_cum[starts]
        cum0 = np.cumsum(tr.step[inside])
        run_pace = (cum0[ends] - cum0[starts]) / np.maximum(t[ends] - t[starts], 1.0)
        ok &= ~((n_foot > p.ferry_foot_share * (ends - starts + 1))
                & (run_pace >= p.ferry_foot_min_mps))
    if p.ferry_wait_s > 0 and ok.any():
        # boarding takes a wait at the pier: a step at under ``stopped_mps`` (standing, or a
        # silence on iOS) ending within ``ferry_wait_s`` before the run's first fix; a walker
        # on the quayside keeps walking
        dtp = np.r_[0.0, np.diff(t)]
        slow = (dtp > 0) & (tr.step[inside] < p.stopped_mps * dtp) & np.r_[False, g[1:] == g[:-1]]
        last_slow = np.maximum.accumulate(np.where(slow, np.arange(inside.size), -1))[starts]
        ok &= (last_slow >= 0) & (g[np.maximum(last_slow, 0)] == g[starts]) \
            & (t[starts] - t[np.maximum(last_slow, 0)] <= p.ferry_wait_s)
    if ok.any():
        starts, ends, b, a = starts[ok], ends[ok], b[ok], a[ok]
        b_quay, a_quay = b_quay[ok], a_quay[ok]
        idx, _ = expand_ranges(starts, ends)
        out[idx] = True
        # the ferry's pace on the water (a wait on the pier, silent on iOS, is not part of
        # it): path over time between the run's end fixes, else from quay fix to quay fix
        cum = np.cumsum(tr.step[inside])
        own = t[ends] - t[starts] >= p.ferry_min_s / 2
        i0, i1 = np.where(own, starts, b), np.where(own, ends, a)
        pace = (cum[i1] - cum[i0]) / np.maximum(t[i1] - t[i0], 1.0)
        pace = np.maximum(pace, 0.1)
        # not before the last fix at the pier (within ``ferry_dock_m`` of a quay), nor before
        # the previous fix of the trip; a fix 30 m off the quay may be on a ferry pulling out
        docked = d_quay <= p.ferry_dock_m
        prev_dock = np.maximum.accumulate(np.where(docked, np.arange(inside.size), -1))
        prev_dock = prev_dock[np.maximum(starts - 1, 0)]
        before = (starts > 0) & (g[b] == g[starts])
        lo = np.where(before, t[b], -np.inf)
        dock_ok = before & (prev_dock >= 0) & (g[np.maximum(prev_dock, 0)] == g[starts])
        lo = np.where(dock_ok, t[np.maximum(prev_dock, 0)], lo)
        change_at[starts] = np.clip(t[starts] - d_quay[starts] / pace, lo, t[starts])
        after = (ends + 1 < inside.size) & (g[a] == g[ends])   # a fix of the trip follows
        if p.ferry_dock_approach_s > 0:
            # the boat's approach to its pier (off the drawn line, inside the quay radius)
            # is still the crossing: up to the first fix at the pier that follows within
            # ``ferry_dock_approach_s``
            n_in = inside.size
            nxt_dock = np.minimum.accumulate(np.where(docked, np.arange(n_in), n_in)[::-1])[::-1]
            nd = nxt_dock[np.minimum(ends + 1, n_in - 1)]
            ndc = np.minimum(nd, n_in - 1)
            ext = after & (nd < n_in) & (nd > ends + 1) & (g[ndc] == g[ends]) \
                & (t[ndc] - t[np.minimum(ends + 1, n_in - 1)] <= p.ferry_dock_approach_s)
            if ext.any():
                idx, _ = expand_ranges(ends[ext] + 1, nd[ext] - 1)
                out[idx] = True
                ends = np.where(ext, nd - 1, ends)
                a = np.where(ext, nd, a)
        change_at[a[after]] = np.clip(t[ends] + d_quay[ends] / pace, t[ends], t[a])[after]
    return out, change_at


def _sure_vehicle(tr: Track, inside: np.ndarray, g: np.ndarray, merged: np.ndarray,
                  p: SectionParams) -> np.ndarray:
    """Which trip points (positions in ``inside``) end a run of plainly motorised steps that
    the merging left wholly on foot (``merged`` classes).

    A one-stop bus hop lasts less than ``min_section_s`` and is merged into the walks around
    it; its fixes, though, cover ``hop_min_mps`` or more step after step, which no walker and
    no GPS jitter does: jitter at dense sampling makes single fast steps that zig-zag, so the
    run's straight-line distance must also be covered at that pace.
    """
    out = np.zeros(inside.size, dtype=bool)
    k = p.hop_min_steps
    if k <= 0 or inside.size <= k:
        return out
    t = tr.t[inside]
    x, y = tr.x[inside], tr.y[inside]
    dt = np.r_[np.inf, np.diff(t)]
    step = np.r_[0.0, np.hypot(np.diff(x), np.diff(y))]
    fast = (step >= p.hop_min_mps * dt) & np.r_[False, g[1:] == g[:-1]]
    # runs of fast steps: point i's step comes from i - 1
    starts = np.flatnonzero(fast & ~np.r_[False, fast[:-1]])
    ends = np.flatnonzero(fast & ~np.r_[fast[1:], False])
    ok = ends - starts + 1 >= k
    b = starts - 1
    net = np.hypot(x[ends] - x[b], y[ends] - y[b])
    ok &= net >= p.hop_min_mps * (t[ends] - t[b])
    # only runs the merging put wholly on foot: a ride's last fast fix before a silent wait
    # is the wait's first point and stays on foot
    walk_cum = np.r_[0, np.cumsum(merged == WALK)]
    ok &= walk_cum[ends + 1] - walk_cum[starts] == ends - starts + 1
    if ok.any():
        idx, _ = expand_ranges(starts[ok], ends[ok])
        out[idx] = True
    return out


def _transfer_pauses(merged: np.ndarray, g: np.ndarray, t: np.ndarray, step: np.ndarray,
                     lat: np.ndarray, lon: np.ndarray, transit, p: SectionParams) -> np.ndarray:
    """Put on foot the pause between two bus rides on different routes (a transfer).

    A rider who changes lines at a stop waits there a minute or two, often walking a few
    metres only: the fixes show a pause inside what reads as one vehicle run, like a bus's
    dwell at a stop (which ``_vehicle_stops`` keeps in the vehicle up to
    ``max_vehicle_stop_s``). The routes tell them apart: a bus keeps to its route through
    its stops, a transfer changes it. A pause (consecutive steps each at most
    ``foot_step_max_mps`` or within ``transfer_jitter_m`` metres, from the fix where the
    vehicle stopped) of ``transfer_min_s`` to ``max_vehicle_stop_s`` inside a vehicle run,
    with a stop (``tail_walk_stop_m``) next to its first or last fix, and vehicle fixes for
    at least ``transfer_side_min_s`` on each side, is a transfer when, over the same
    duration on both sides (at most ``transfer_side_s``), each side's best bus route holds
    ``transfer_route_share`` of its fixes and no route holds ``transfer_union_share`` of both
    sides' fixes together. Its fixes are then on foot (the ride before ends where it
    stopped, the next one starts with the pause's next fix). A real bus ride behaves the
    same; without a transit index nothing changes.

    Parameters
    ----------
    merged : ndarray
        Classes of the trip points, in (trip, time) order.
    g, t, step, lat, lon : ndarray
        Trip ordinal, time (unix s), distance from the previous fix (m) and position.
    transit : pipeline.transit.TransitIndex
        Its ``nearest_station`` and ``route_share``.
    p : SectionParams

    Returns
    -------
    ndarray
        The classes, with such pauses on foot.
    """
    n = merged.size
    if n < 5:
        return merged
    same = np.r_[False, g[1:] == g[:-1]]
    dt = np.r_[np.inf, np.diff(t)]
    veh = merged != WALK
    calm = same & veh & np.r_[False, veh[:-1]] & (
        (step <= p.foot_step_max_mps * np.where(dt > 0, dt, np.inf)) | (step <= p.transfer_jitter_m))
    # runs of calm steps: the pause spans from the fix before the first to the last
    c0 = np.flatnonzero(calm & ~np.r_[False, calm[:-1]])
    c1 = np.flatnonzero(calm & ~np.r_[calm[1:], False])
    a, b = c0 - 1, c1
    dur = t[b] - t[a]
    ok = (dur >= p.transfer_min_s) & (dur <= p.max_vehicle_stop_s) & (b + 1 < n)
    a, b = a[ok], b[ok]
    if a.size == 0:
        return merged
    ok = same[b + 1] & veh[b + 1]
    # vehicle fixes of the trip for transfer_side_min_s on each side
    pos = np.arange(n)
    run_start = np.maximum.accumulate(np.where(~(same & veh & np.r_[False, veh[:-1]]), pos, 0))
    goes_on = np.r_[same[1:], False] & veh & np.r_[veh[1:], False]  # the next fix too
    nxt_break = np.minimum.accumulate(np.where(~goes_on, pos, n - 1)[::-1])[::-1]
    b1 = np.minimum(b + 1, n - 1)
    side = np.minimum(t[a] - t[run_start[a]], t[nxt_break[b1]] - t[b1])
    ok &= side >= p.transfer_side_min_s
    a, b, side = a[ok], b[ok], np.minimum(side[ok], p.transfer_side_s)
    if a.size == 0:
        return merged
    near = np.zeros(a.size, dtype=bool)
    for i in (a, b):
        _, d = transit.nearest_station(lat[i], lon[i])
        near |= d <= p.tail_walk_stop_m
    a, b, side = a[near], b[near], side[near]
    if a.size == 0:
        return merged
    # the fixes of each side over the same duration; group 3k: before, 3k+1: after, 3k+2: both
    key = g * ((t.max() - t.min()) + 4 * p.transfer_side_s + 1.0) + (t - t.min())
    lo = np.searchsorted(key, key[a] - side, side="left")
    hi = np.searchsorted(key, key[b + 1] + side, side="right") - 1
    bi, kb = expand_ranges(lo, a)
    ai, ka = expand_ranges(b + 1, hi)
    pts = np.r_[bi, ai, bi, ai]
    grp = np.r_[3 * kb, 3 * ka + 1, 3 * kb + 2, 3 * ka + 2]
    share, route = transit.route_share(lat[pts], lon[pts], grp, 3 * a.size)
    sb, sa, su = share[0::3], share[1::3], share[2::3]
    rb, ra = route[0::3], route[1::3]
    xfer = ((sb >= p.transfer_route_share) & (sa >= p.transfer_route_share)
            & (rb != ra) & (su <= p.transfer_union_share))
    if not xfer.any():
        return merged
    idx, _ = expand_ranges(a[xfer], b[xfer])
    out = merged.copy()
    out[idx] = WALK
    return out


def _rail_road_cuts(tr: Track, inside: np.ndarray, g: np.ndarray, merged: np.ndarray,
                    speed: np.ndarray, transit, p: SectionParams) -> np.ndarray:
    """Where a train ride hands over to a car at a station: positions (in ``inside``) that
    start a new section inside a motorised run.

    A train and the car taken at the station's car park are both motorised; when the walk
    between them leaves no fix (a few steps from the platform to the car park, a phone that
    records nothing on the way), one vehicle section spans both. Their paces tell them apart:
    a train averages 20 m/s or more between stations, a car from a station drives through
    town. A fix within ``rail_station_m`` of a railway station of the transit index, inside
    one motorised run over the ``rail_window_s`` before and after it, where the mean speed over
    the window before reaches ``rail_min_mps`` and the mean speed over the window after is at
    most ``rail_road_ratio`` of it, and the smoothed speed never reaches ``rail_min_mps`` in
    the window after, may start the car; of consecutive such fixes the one with the largest
    drop in pace does. A train calling at a station (a stop of a minute or two halves its mean
    pace over the next five) picks its pace up again; a car passing a station at motorway
    speed rarely slows that much right there. A real phone behaves the same: the pace is the
    train's and the road's, whatever the walk between them left.

    Parameters
    ----------
    tr : Track
    inside : ndarray
        Track positions of the trip points, in (trip, time) order.
    g, merged, speed : ndarray
        Trip ordinal, class and smoothed speed (m/s) of the trip points.
    transit : pipeline.transit.TransitIndex
        Its ``distance_to_rail_station`` (no station: nothing is cut).
    p : SectionParams

    Returns
    -------
    ndarray of int
        Sorted positions in ``inside`` of the first fix of each car section.
    """
    none = np.empty(0, np.int64)
    if len(getattr(transit, "rail_xy", ())) == 0 or inside.size < 3:
        return none
    W = p.rail_window_s
    t = tr.t[inside]
    fast = (speed >= p.rail_min_mps) & (merged == MOTOR)
    if not fast.any():
        return none
    pos = np.arange(inside.size)
    # only fixes up to W after a fast one of their trip can have a train's pace before them
    last_fast = np.maximum.accumulate(np.where(fast, pos, -1))
    lf = np.maximum(last_fast, 0)
    idx = np.flatnonzero((last_fast >= 0) & (g[lf] == g) & (t - t[lf] <= W) & (merged == MOTOR))
    if idx.size == 0:
        return none
    same = np.r_[False, g[1:] == g[:-1]]
    cum = np.cumsum(np.where(same, tr.step[inside], 0.0))
    span = (t.max() - t.min()) + 4 * W + 1.0
    key = g * span + (t - t.min())
    lo = np.searchsorted(key, key[idx] - W, side="left")
    hi = np.searchsorted(key, key[idx] + W, side="right") - 1
    d0, d1 = t[idx] - t[lo], t[hi] - t[idx]
    ok = (d0 >= W / 2) & (d1 >= W / 2)
    pre = (cum[idx] - cum[lo]) / np.maximum(d0, 1.0)
    post = (cum[hi] - cum[idx]) / np.maximum(d1, 1.0)
    motor_cum = np.r_[0, np.cumsum(merged == MOTOR)]
    ok &= motor_cum[hi + 1] - motor_cum[lo] == hi - lo + 1
    ok &= (pre >= p.rail_min_mps) & (post <= p.rail_road_ratio * pre)
    idx, pre, post, hi = idx[ok], pre[ok], post[ok], hi[ok]
    if idx.size == 0:
        return none
    # a train calling at a station picks up its pace again after the stop; a car does not
    # reach it (smoothed speed) in the window after
    bounds = np.ravel(np.c_[idx + 1, hi + 1])
    top = np.maximum.reduceat(np.r_[speed, 0.0], bounds)[::2]
    keep = top < p.rail_min_mps
    idx, pre, post = idx[keep], pre[keep], post[keep]
    if idx.size == 0:
        return none
    near = transit.distance_to_rail_station(tr.lat[inside][idx], tr.lon[inside][idx]) <= p.rail_station_m
    idx, drop = idx[near], (pre - post)[near]
    if idx.size == 0:
        return none
    # one cut per run of consecutive candidates: the largest drop in pace
    grp = np.cumsum(np.r_[True, (np.diff(idx) != 1) | (g[idx][1:] != g[idx][:-1])])
    order = np.lexsort((-drop, grp))
    first = order[np.r_[True, grp[order][1:] != grp[order][:-1]]]
    return np.sort(idx[first])


def _tail_walks(merged: np.ndarray, moving: np.ndarray, g: np.ndarray, t: np.ndarray,
                act: np.ndarray, lat: np.ndarray, lon: np.ndarray, transit,
                p: SectionParams, step: np.ndarray | None = None) -> np.ndarray:
    """Put the still tail of a trip that a vehicle ends on foot when the tester walked it
    from a bus stop.

    The tail (from the arrival fix, within ``still_radius_m`` of the trip's end) joins the
    last section. After a bus, though, the walk home from the stop often has only that fix
    or two (a fix every 30 s, a walk of 40-120 s), so the bus section ran to the trip's end
    and the change was a minute or two from any boundary. The tail is a walk when the phone
    says "on foot" at its first fix, a stop of the transit index lies within
    ``tail_walk_stop_m`` of that fix or of the vehicle's last one, and the vehicle's last fix
    is at least ``tail_walk_min_s`` before the trip's last point. A car parked at the door
    looks the same (the phone says "on foot" as its driver gets out): the bus stop is what
    tells them apart, so without a transit index nothing changes.

    With ``tail_walk_back`` the walk may start before the tail: at the fix after the trip's
    last step at more than a walker's pace (``foot_step_max_mps``), when that fix lies inside
    a motorised run (the bus braked into the stop between its last two fixes, so the fix at
    the stop still read as the bus's pace, and the tail began only at the next one). The
    phone's "on foot" may then come at any fix from there to the tail's first; the stop is
    looked for next to that fix or the one before it. A bicycle's run is left alone (the
    cyclist gets off at the door: "on foot", and maybe a stop nearby, too).

    Parameters
    ----------
    merged : ndarray
        Classes of the trip points (tail already filled from the last moving point).
    moving : ndarray of bool
        Not in the still tail.
    g, t, act, lat, lon : ndarray
        Trip ordinal, time (unix s), activity class (-1: none) and position of the trip points.
    transit : pipeline.transit.TransitIndex or None
    p : SectionParams

    Returns
    -------
    ndarray
        The classes, with such tails on foot.
    """
    if merged.size < 2 or transit is None:
        return merged
    tail = ~moving
    first = np.flatnonzero(tail & np.r_[True, ~tail[:-1] | (g[1:] != g[:-1])])
    first = first[first > 0]
    if p.tail_walk_back and step is not None and first.size:
        # the walk starts at the fix after the trip's last step at more than a walker's pace
        # (the bus's arrival at the stop), when that lies inside the vehicle's run; the
        # phone's "on foot" may come at the vehicle's last fix or anywhere after it
        same = np.r_[False, g[1:] == g[:-1]]
        dt = np.r_[np.inf, np.diff(t)]
        fast = same & (step > p.foot_step_max_mps * np.where(dt > 0, dt, np.inf))
        pos = np.arange(g.size)
        last_fast = np.maximum.accumulate(np.where(fast, pos, -1))[first]
        run0 = np.maximum.accumulate(np.where(np.r_[True, (merged[1:] != merged[:-1])
                                                    | (g[1:] != g[:-1])], pos, 0))
        back = ((last_fast > 0) & (last_fast < first) & (g[np.maximum(last_fast, 0)] == g[first])
                & (last_fast > run0[first - 1]) & (merged[first - 1] == MOTOR))
        start = np.where(back, last_fast, first)
        foot_cum = np.r_[0, np.cumsum(act == WALK)]
        says_foot = foot_cum[first + 1] - foot_cum[start] > 0
    else:
        start = first
        says_foot = act[first] == WALK
    prev = start - 1
    last = np.searchsorted(g, g[first], side="right") - 1
    ok = ((g[prev] == g[first]) & moving[prev] & (merged[prev] != WALK) & says_foot
          & (t[last] - t[prev] >= p.tail_walk_min_s))
    first, prev, last = start[ok], prev[ok], last[ok]
    if first.size == 0:
        return merged
    near = np.zeros(first.size, dtype=bool)
    for i in (prev, first):
        _, d = transit.nearest_station(lat[i], lon[i])
        near |= d <= p.tail_walk_stop_m
    if not near.any():
        return merged
    idx, _ = expand_ranges(first[near], last[near])
    out = merged.copy()
    out[idx] = WALK
    return out


def _fill_from_moving(values: np.ndarray, moving: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Give non-moving points the value of the previous moving point of their trip (or the
    next one at a trip's head). Trips without a moving point keep their values."""
    pos = np.arange(values.size)
    first, last = _run_ends(g)
    prev_mv = np.maximum.accumulate(np.where(moving, pos, -1))
    nxt_mv = np.minimum.accumulate(np.where(moving, pos, values.size)[::-1])[::-1]
    src = np.where(moving, pos, np.where(prev_mv >= first, prev_mv,
                                          np.where(nxt_mv <= last, nxt_mv, pos)))
    return values[src]


def _change_times(tr: Track, speed: np.ndarray, first_pt: np.ndarray, first_of_trip: np.ndarray,
                  sec_cls: np.ndarray, p: SectionParams) -> np.ndarray:
    """Time of each mode change inside the gap before a section's first fix, unix seconds.

    The change happened between the previous fix and the section's first one. The step
    between them is covered at vehicle speed, so a vehicle that ends (walking follows) is
    placed the step's travel time at that speed after the previous fix, and a vehicle that
    starts (after a walk or a wait at the stop) that long before its first fix. The speed is
    the smoothed speed of the vehicle side, at least ``walk_max_mps``. Other changes (bike to
    motorised) stay at the first fix.
    """
    b = first_pt
    out = tr.t[b].astype(float)
    ok = ~first_of_trip & (b > 0) & p.place_in_gap
    if not ok.any():
        return out
    a = np.where(ok, b - 1, b)
    prev_cls = np.r_[-1, sec_cls[:-1]]
    ends_vehicle = ok & (prev_cls != WALK) & (sec_cls == WALK)
    starts_vehicle = ok & (prev_cls == WALK) & (sec_cls != WALK)
    gap = tr.t[b] - tr.t[a]
    # two paces over the gap: the vehicle's (v) for tau seconds, the walker's (w) for the rest
    veh_side = np.where(ends_vehicle, a, b)
    foot_side = np.where(ends_vehicle, b, a)
    v = np.maximum(speed[veh_side], p.walk_max_mps)
    w = np.minimum(speed[foot_side], p.walk_max_mps)
    tau = (tr.step[b] - w * gap) / np.maximum(v - w, 0.1)
    travel = np.clip(tau, 0.0, gap)
    travel = np.where(gap >= p.min_gap_to_place_s, travel, np.where(ends_vehicle, gap, 0.0))
    out = np.where(ends_vehicle, tr.t[a] + travel, out)
    out = np.where(starts_vehicle, tr.t[b] - travel, out)
    return out


def sections_from_track(tr: Track, trips: pd.DataFrame, s: np.ndarray, e: np.ndarray,
                        motion: pd.DataFrame | None = None, params: SectionParams = SectionParams(),
                        labelled: bool | str = True, transit=None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Sections and labelled points (None unless ``labelled``) for trips given as index
    ranges into a sorted track; ``labelled="arrays"`` gives the sections' points as a
    :class:`pipeline.features.SectionPoints` instead (all the mode features need). With
    ``transit`` (a :class:`pipeline.transit.TransitIndex`), ferry crossings become sections
    of their own (see ``_ferry_crossings``)."""
    p = params
    n = tr.t.size
    trip_of = _point_trip(n, s, e)
    speed = _smoothed_speed(tr, trip_of, p.smooth_s, p.smooth_min_span_s)
    cls = np.where(speed <= p.walk_max_mps, WALK, np.where(speed <= p.bike_max_mps, BIKE, MOTOR))
    act = _activity_class(tr, motion, p)
    # the phone's activity decides, unless the speed plainly contradicts it (walking at bus
    # speed, cycling at car speed, "in a vehicle" at a steady walking pace, which is the
    # phone's activity lagging behind); a vehicle that stands still stays a vehicle
    stopped_ok = (speed < p.stopped_mps) if p.keep_stopped_vehicle else np.zeros(n, dtype=bool)
    use_act = ((act == MOTOR) & (stopped_ok | (speed > p.walk_max_mps))
               | ((act == WALK) & (speed <= p.walk_activity_max_factor * p.walk_max_mps))
               | ((act == BIKE) & (speed <= 1.5 * p.bike_max_mps))
               | ((act == WEAK_BIKE) & (speed <= 1.5 * p.bike_max_mps)
                  & (speed > p.bike_activity_min_mps)))
    iv = act == MOTOR
    if p.vehicle_reading_run_s > 0 and iv.any():
        # a long run of "in vehicle" readings at a walker's pace is a slow vehicle (a reading
        # lagging after alighting lasts a minute or so): see ``vehicle_reading_run_s``
        pos_ = np.arange(n)
        same_ = np.r_[False, trip_of[1:] == trip_of[:-1]] & (trip_of >= 0)
        brk = ~(iv & np.r_[False, iv[:-1]] & same_)
        r0 = np.maximum.accumulate(np.where(brk, pos_, 0))
        r1 = np.minimum.accumulate(np.where(np.r_[brk[1:], True], pos_, n - 1)[::-1])[::-1]
        long_iv = iv & (tr.t[r1] - tr.t[r0] >= p.vehicle_reading_run_s) & (trip_of >= 0)
        use_act = use_act | long_iv
    cls = np.where(use_act, np.where(act == WEAK_BIKE, BIKE, act), cls)
    inside = np.flatnonzero(trip_of >= 0)
    g = trip_of[inside]
    raw_cls = cls.copy()
    c = cls[inside]
    t_in = tr.t[inside]
    # flip-flops are merged on the moving core of each trip; the still tail (after the
    # arrival, up to the e-mission-style end) then joins the last section, so no trip ends
    # with a fake "walking" section
    moving = np.ones(inside.size, dtype=bool)
    t_end_core = tr.t[e] if e.size else np.empty(0)
    if s.size:
        dep, arr = _trim_to_radius(tr.x, tr.y, s, e, p.still_radius_m)
        # the arrival fix (first of the still tail) is at the destination already: alone,
        # at a crawl, it would make a one-fix "walk" that the tail then stretches past
        # ``edge_walk_min_s``
        if p.arrival_in_tail:
            arr = np.where(arr > dep + 1, arr - 1, arr)
        arr = np.maximum(arr, dep)
        moving = inside <= arr[g]
        t_end_core = tr.t[e] if p.tail_counts else tr.t[arr]
    merged = c.copy()
    cm = c[moving]
    if p.max_vehicle_stop_s > 0:
        cm = _vehicle_stops(cm, g[moving], t_in[moving], speed[inside][moving], p)
        if p.silent_waits:
            cm = _silent_waits(cm, g[moving], t_in[moving], tr.step[inside][moving], p)
    sure = None
    if p.sure_vehicle_min_s < p.min_section_s:
        # a vehicle fix the merging keeps from sure_vehicle_min_s: the phone says "in a
        # vehicle" at more than a walker's pace, or the step into it is a long fast one
        dt_in = np.r_[np.inf, np.diff(t_in)]
        step_in = np.where(np.r_[False, g[1:] == g[:-1]], tr.step[inside], 0.0)
        sure = (use_act[inside] & (act[inside] == MOTOR)) | \
               ((step_in >= p.sure_step_m) & (step_in >= p.hop_min_mps * dt_in))
        sure = sure[moving]
    merged[moving] = _merge_vehicle_legs(cm, g[moving], t_in[moving], t_end_core, p, sure)
    merged = _fill_from_moving(merged, moving, g)
    if p.tail_walk and transit is not None and s.size:
        merged = _tail_walks(merged, moving, g, t_in, act[inside], tr.lat[inside],
                             tr.lon[inside], transit, p, tr.step[inside])
    if p.transfer_pauses and transit is not None and s.size:
        merged = _transfer_pauses(merged, g, t_in, tr.step[inside], tr.lat[inside],
                                  tr.lon[inside], transit, p)
    starts, lens = _runs(merged, g)
    # a run's own mean speed overrides an implausible label (a train that the phone called
    # "on foot" for ten minutes); equal neighbours then fuse
    if starts.size:
        merged = _relabel_by_speed(merged, starts, lens, inside, g, tr, e, p)
        starts, lens = _runs(merged, g)
    if starts.size > 1 and p.refine_points > 0:
        merged = _refine_foot_changes(merged, starts, g, tr.t[inside], tr.step[inside], p)
        starts, lens = _runs(merged, g)
    if starts.size and p.hop_min_steps > 0:
        hop = _sure_vehicle(tr, inside, g, merged, p)
        if hop.any():
            merged = np.where(hop, MOTOR, merged)
            starts, lens = _runs(merged, g)
    ferry_at = None
    if transit is not None and starts.size:
        ferry, ferry_at = _ferry_crossings(tr, inside, g, transit, p, act[inside])
        if ferry.any():
            merged = np.where(ferry, MOTOR, merged)
            starts, lens = _runs(merged, g)
    if transit is not None and starts.size and p.rail_cut:
        cut = _rail_road_cuts(tr, inside, g, merged, speed[inside], transit, p)
        if cut.size:
            starts = np.union1d(starts, cut)
            lens = np.diff(np.r_[starts, inside.size])

    trip_ids = trips["trip_id"].to_numpy(dtype=object)
    users = trips["user_id"].to_numpy(dtype=object)
    sec_trip = g[starts] if starts.size else np.empty(0, np.int64)
    ordinal = np.arange(starts.size) - np.searchsorted(sec_trip, sec_trip, side="left")
    sec_ids = (np.char.add(np.char.add(trip_ids[sec_trip].astype(str), "-s"), ordinal.astype(str))
               .astype(object) if starts.size else np.empty(0, dtype=object))
    # a section runs from its first point to the next section's first point (or the trip end)
    first_pt = inside[starts] if starts.size else np.empty(0, np.int64)
    nxt_same = np.r_[sec_trip[1:] == sec_trip[:-1], False] if starts.size else np.empty(0, bool)
    last_pt = np.where(nxt_same, np.r_[first_pt[1:], 0], e[sec_trip] if starts.size else 0)
    last_pt = np.maximum(last_pt, first_pt)
    cum = np.cumsum(np.where(tr.new_user, 0.0, tr.step)) if n else np.empty(0)
    geom = linestrings_wkb(tr.lon, tr.lat, first_pt, last_pt)
    # the first section of a trip starts when the trip does (a departure may precede its
    # first fix, see pipeline.trips.departure_times)
    sec_start = tr.t[first_pt] if starts.size else np.empty(0)
    sec_cls = merged[starts] if starts.size else np.empty(0, np.int64)
    sec_end = tr.t[last_pt] if starts.size else np.empty(0)
    if starts.size:
        first_of_trip = ordinal == 0
        trip_start = schema.to_unix(trips["start_ts"])
        sec_start = np.where(first_of_trip, np.minimum(trip_start[sec_trip], sec_start),
                             _change_times(tr, speed, first_pt, first_of_trip, sec_cls, p))
        if ferry_at is not None:  # a ferry leaves and reaches a quay at its own pace
            at = ferry_at[starts]
            sec_start = np.where(~first_of_trip & np.isfinite(at), at, sec_start)
        # a section ends where the next one of its trip starts
        sec_end = np.where(nxt_same, np.r_[sec_start[1:], 0.0], sec_end)
    # confidence of the hint: share of the section's points whose own class agrees
    agree = (raw_cls[inside] == np.repeat(sec_cls, lens)).astype(float) if starts.size else np.empty(0)
    conf = np.add.reduceat(agree, np.r_[0, np.cumsum(lens)[:-1]]) / lens if starts.size else np.empty(0)
    sensed = CLASS_MODE[sec_cls] if starts.size else np.empty(0, dtype=object)
    sections = schema.coerce(pd.DataFrame({
        "user_id": users[sec_trip].astype(str) if starts.size else np.empty(0, dtype=str),
        "trip_id": trip_ids[sec_trip] if starts.size else np.empty(0, dtype=object),
        "section_id": sec_ids,
        "start_ts": schema.from_unix(sec_start),
        "end_ts": schema.from_unix(sec_end),
        "distance_m": cum[last_pt] - cum[first_pt],
        "duration_s": sec_end - sec_start,
        "mode": sensed,
        "mode_confidence": np.clip(conf, 0.0, 1.0),
        "mode_source": np.full(starts.size, "rule", dtype=object),
        "sensed_mode": sensed,
        "geometry": geom,
    }), "sections")

    if not labelled:
        return sections, None
    if labelled == "arrays":  # what the mode features read, without a million-row table
        from .features import SectionPoints

        pts = tr.points
        tz = (pts["tz"].to_numpy(dtype=object)[first_pt]
              if "tz" in pts and starts.size else None)
        acc = (pts["accuracy_m"].to_numpy(float, na_value=np.nan)[inside] if "accuracy_m" in pts
               else np.full(inside.size, np.nan))
        return sections, SectionPoints(
            tr.t[inside], tr.lat[inside], tr.lon[inside], acc, lens.astype(np.int64),
            sections["user_id"].to_numpy(dtype=object), sec_ids, tz)
    # labelled points: each point in a trip gets its trip and section
    pt_trip = np.full(n, None, dtype=object)
    pt_sec = np.full(n, None, dtype=object)
    if inside.size:
        pt_trip[inside] = trip_ids[g]
        pt_sec[inside] = np.repeat(sec_ids, lens)
    labelled = tr.points.copy()
    labelled["trip_id"] = pd.Series(pt_trip, index=labelled.index, dtype="object")
    labelled["section_id"] = pd.Series(pt_sec, index=labelled.index, dtype="object")
    return sections, labelled


def segment_sections(points: pd.DataFrame, trips: pd.DataFrame, motion: pd.DataFrame | None = None,
                     params: SectionParams = SectionParams()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split trips into single-mode sections.

    Parameters
    ----------
    points : DataFrame
        Cleaned schema ``points`` (one or many users, any order).
    trips : DataFrame
        Schema ``trips`` for those points (e.g. from :func:`pipeline.trips.segment_trips`).
    motion : DataFrame, optional
        Schema ``motion``; confident readings decide the class of nearby points.
    params : SectionParams
        Thresholds (m/s, seconds).

    Returns
    -------
    sections : DataFrame
        Schema ``sections``: ``mode`` and ``sensed_mode`` hold the hint (WALKING, BICYCLING,
        CAR), ``mode_source="rule"``; ids ``<trip_id>-s<k>``.
    labelled_points : DataFrame
        The cleaned points sorted by user and time, plus ``trip_id`` and ``section_id``
        (null outside trips).
    """
    tr = make_track(points)
    trips = schema.coerce(trips, "trips").sort_values(["user_id", "start_ts"], kind="stable")
    trips = trips.reset_index(drop=True)
    if len(trips) == 0 or tr.t.size == 0:
        labelled = tr.points.assign(trip_id=pd.Series(None, index=tr.points.index, dtype="object"),
                                    section_id=pd.Series(None, index=tr.points.index, dtype="object"))
        return schema.empty("sections"), labelled
    # map each trip to point index ranges through (user, time)
    ucode = pd.Index(tr.users).get_indexer(trips["user_id"].astype(str))
    base = tr.t.min() - 1.0
    span = (tr.t.max() - base) + 1e6
    key = tr.codes * span + (tr.t - base)
    ts0 = schema.to_unix(trips["start_ts"])
    ts1 = schema.to_unix(trips["end_ts"])
    s = np.searchsorted(key, ucode * span + (ts0 - base) - 1e-4, side="left")
    e = np.searchsorted(key, ucode * span + (ts1 - base) + 1e-4, side="right") - 1
    ok = (ucode >= 0) & (e >= s)
    trips = trips.loc[ok].reset_index(drop=True)
    return sections_from_track(tr, trips, s[ok], e[ok], motion, params)
