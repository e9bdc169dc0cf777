"""Phone sensing like e-mission's: what the TRACES app would have recorded of the true trips.

Why: segmentation, cleaning and mode classification are only worth testing on data that has
the habits of real phones. This module samples each true trip (timed knots from :mod:`.legs`)
the way e-mission's tracking does:

* Android "time filter": a fix about every 30 s while tracking, with the odd burst of fixes a
  few seconds apart; iOS "distance filter": a fix about every 50 m moved, nothing while still.
* Tracking starts only once the phone leaves the geofence (~100 m) around the place it was
  resting at, and stops once the phone has been still for a while: Android keeps sampling the
  new place for ~5 min before the trip-end transition, iOS sends a few fixes; then nothing
  until the next trip.
* GPS error scaled by the reported accuracy (larger indoors), urban-canyon bursts (a few
  consecutive fixes shifted tens of metres, accuracy understated), rare wild outliers (km off).
* Gaps: a configured share of trips is not recorded at all (phone off), another loses a few
  minutes in the middle (battery saver).
* Motion-activity readings drawn from a confusion matrix (a bus is often read as a car, a bike
  as on foot; stops read as STILL) and state-machine transitions at tracking start and end.

All per-point work is numpy over a trip's sample arrays; Python only loops over trips.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..schema import Mode
from . import geo

#: e-mission enums (emission/core/wrapper/transition.py and motionactivity.py)
TRANSITION_CODES = {"INITIALIZE": 0, "EXITED_GEOFENCE": 1, "STOPPED_MOVING": 2, "STOP_TRACKING": 3,
                    "BOOTED": 4, "TRIP_STARTED": 6, "RECEIVED_SILENT_PUSH": 7,
                    "TRIP_END_DETECTED": 8, "TRIP_RESTARTED": 9, "END_TRIP_TRACKING": 10,
                    "TRACKING_STOPPED": 11, "NOP": 12, "START_TRACKING": 17}
STATE_CODES = {"START": 0, "WAITING_FOR_TRIP_START": 1, "ONGOING_TRIP": 2, "TRACKING_STOPPED": 3}
ACTIVITY_CODES = {"IN_VEHICLE": 0, "ON_BICYCLE": 1, "ON_FOOT": 2, "STILL": 3, "UNKNOWN": 4,
                  "TILTING": 5, "WALKING": 7, "RUNNING": 8}

_ACTS = ("IN_VEHICLE", "ON_BICYCLE", "ON_FOOT", "STILL", "UNKNOWN", "TILTING")
#: P(activity | true mode, moving); rows sum to 1, columns in _ACTS order
CONFUSION = {
    Mode.WALKING.value: (0.03, 0.03, 0.84, 0.05, 0.03, 0.02),
    Mode.BICYCLING.value: (0.10, 0.58, 0.20, 0.04, 0.05, 0.03),
    Mode.E_BIKE.value: (0.15, 0.55, 0.18, 0.04, 0.05, 0.03),
    Mode.BIKESHARE.value: (0.10, 0.58, 0.20, 0.04, 0.05, 0.03),
    Mode.BUS.value: (0.74, 0.04, 0.06, 0.10, 0.04, 0.02),
    Mode.CAR.value: (0.86, 0.03, 0.02, 0.05, 0.03, 0.01),
    Mode.CARSHARE.value: (0.86, 0.03, 0.02, 0.05, 0.03, 0.01),
    Mode.FERRY.value: (0.45, 0.02, 0.12, 0.28, 0.10, 0.03),
    Mode.TRAIN.value: (0.70, 0.02, 0.05, 0.15, 0.06, 0.02),
}
_CONF_STILL = (0.04, 0.01, 0.05, 0.85, 0.03, 0.02)


@dataclass(frozen=True)
class SensingParams:
    """How the phones sample (seconds, metres)."""

    android_interval_s: float = 30.0
    android_burst_p: float = 0.06       # share of fixes followed by one a few seconds later
    ios_distance_m: float = 50.0
    geofence_m: float = 100.0           # tracking starts after leaving this radius (0: at once)
    android_stop_detect_s: tuple[float, float] = (300.0, 420.0)  # keeps sampling after arrival
    ios_stay_fixes: tuple[int, int] = (1, 3)
    motion_interval_s: tuple[float, float] = (15.0, 45.0)


@dataclass(frozen=True)
class PhoneFaults:
    """Sensing faults; :meth:`none` switches them all off."""

    p_phone_off_trip: float = 0.03      # a whole trip unrecorded (its operator records remain)
    p_battery_gap_trip: float = 0.05    # a trip loses a window of a few minutes
    battery_gap_s: tuple[float, float] = (180.0, 720.0)
    p_canyon_trip: float = 0.3          # a trip through the centre has an urban-canyon burst
    p_outlier: float = 1.0 / 2500.0     # per fix: a wild jump of kilometres
    p_duplicate: float = 0.004          # per fix: recorded twice
    p_out_of_order: float = 0.004       # per fix: swapped with its neighbour in the upload

    @classmethod
    def none(cls) -> "PhoneFaults":
        return cls(0.0, 0.0, (0.0, 0.0), 0.0, 0.0, 0.0, 0.0)


def _accuracy(rng, platform: str, n: int, still: bool) -> np.ndarray:
    if platform == "ios":
        vals = np.array([5.0, 10.0, 16.0, 30.0, 65.0])
        p = (0.05, 0.2, 0.2, 0.25, 0.3) if still else (0.35, 0.35, 0.15, 0.1, 0.05)
        return vals[rng.choice(5, n, p=p)]
    if still:
        return np.round(np.clip(rng.lognormal(np.log(20.0), 0.6, n), 4.0, 200.0), 3)
    return np.round(np.clip(rng.lognormal(np.log(8.0), 0.45, n), 3.0, 80.0), 3)


def sense_trip(rng: np.random.Generator, platform: str, legs: list, stay_xy: tuple[float, float],
               t_next: float, sp: SensingParams, faults: PhoneFaults) -> dict:
    """Sample one trip and the start of the stay that follows it.

    Parameters
    ----------
    legs : list of Leg
        The trip's legs (knots in unix seconds and local metres).
    stay_xy : (float, float)
        Where the following stay is.
    t_next : float
        Start of the next trip (unix s), bounding the stay's samples; ``inf`` if none.

    Returns
    -------
    dict with arrays ``ts, x, y, acc, speed, heading, leg`` (leg index, -1 for stay fixes),
    ``fault`` (0 none, 1 canyon, 2 outlier), ``motion_ts, motion_act, motion_conf``,
    ``transitions`` (list of (ts, name, state)), ``gap`` (battery-saver window or None),
    ``track_start`` (unix s).
    """
    T = np.concatenate([lg.t for lg in legs])
    X = np.concatenate([lg.x for lg in legs])
    Y = np.concatenate([lg.y for lg in legs])
    starts = np.array([lg.start for lg in legs])
    t_end = legs[-1].end
    D = geo.cumdist(X, Y)
    Dm = D + 1e-6 * np.arange(D.size)  # strictly increasing for interpolation
    r_geo = sp.geofence_m * rng.uniform(0.8, 1.3)
    track_start = float(np.interp(r_geo, Dm, T)) if D[-1] > r_geo else t_end
    # --- sample times
    if platform == "android":
        dur = max(t_end - track_start, 0.0)
        n = int(dur / sp.android_interval_s * 1.2) + 3
        iv = rng.normal(sp.android_interval_s, 1.0, n)
        burst = rng.random(n) < sp.android_burst_p
        iv[burst] = rng.uniform(2.0, 8.0, burst.sum())
        ts = track_start + rng.uniform(0, 3.0) + np.concatenate([[0.0], np.cumsum(iv)])
        ts = ts[ts <= t_end]
        stay_end = min(t_end + rng.uniform(*sp.android_stop_detect_s), t_next - 60.0)
        st_ts = t_end + np.arange(rng.uniform(5, 30), max(stay_end - t_end, 0.0), sp.android_interval_s)
        trip_end_detect = max(stay_end, t_end + 1.0)
    else:
        s = np.arange(r_geo + rng.uniform(0, sp.ios_distance_m), D[-1],
                      sp.ios_distance_m * rng.uniform(0.9, 1.1))
        ts = np.interp(s, Dm, T) + rng.uniform(0.0, 1.5, s.size)
        ts = np.sort(ts[ts <= t_end])
        k = int(rng.integers(sp.ios_stay_fixes[0], sp.ios_stay_fixes[1] + 1))
        st_ts = np.sort(t_end + rng.uniform(5.0, 300.0, k))
        st_ts = st_ts[st_ts < t_next - 60.0]
        trip_end_detect = min(t_end + rng.uniform(300.0, 660.0), max(t_next - 30.0, t_end + 1.0))
    x = np.interp(ts, T, X)
    y = np.interp(ts, T, Y)
    x2 = np.interp(ts + 2.0, T, X)
    y2 = np.interp(ts + 2.0, T, Y)
    speed = np.hypot(x2 - x, y2 - y) / 2.0
    heading = np.degrees(np.arctan2(x2 - x, y2 - y)) % 360.0
    if platform == "ios":  # old iOS builds report -1 (unknown) for speed and course
        speed = np.full(ts.size, np.nan)
        heading = np.full(ts.size, np.nan)
    else:
        speed = np.round(np.abs(speed + rng.normal(0.0, 0.3, ts.size)), 2)
    leg = np.searchsorted(starts, ts, side="right") - 1
    modes = np.array([lg.mode for lg in legs])
    acc = _accuracy(rng, platform, ts.size, still=False)
    st_acc = _accuracy(rng, platform, st_ts.size, still=True)
    # --- gaps
    gap = None
    if rng.random() < faults.p_battery_gap_trip and ts.size > 4:
        g0 = rng.uniform(track_start, max(track_start, t_end - faults.battery_gap_s[0]))
        gap = (g0, g0 + rng.uniform(*faults.battery_gap_s))
        keep = (ts < gap[0]) | (ts > gap[1])
        ts, x, y, speed, heading, leg, acc = (a[keep] for a in (ts, x, y, speed, heading, leg, acc))
    # --- positions of the stay fixes
    sx = np.full(st_ts.size, stay_xy[0])
    sy = np.full(st_ts.size, stay_xy[1])
    ts_all = np.concatenate([ts, st_ts])
    x_all = np.concatenate([x, sx])
    y_all = np.concatenate([y, sy])
    acc_all = np.concatenate([acc, st_acc])
    speed_all = np.concatenate([speed, np.zeros(st_ts.size)])
    head_all = np.concatenate([heading, np.full(st_ts.size, np.nan)])
    leg_all = np.concatenate([leg, np.full(st_ts.size, -1)])
    fault = np.zeros(ts_all.size, dtype=np.int8)
    # --- GPS noise scaled by accuracy
    sig = acc_all / 2.0
    x_all = x_all + rng.normal(0.0, 1.0, ts_all.size) * sig
    y_all = y_all + rng.normal(0.0, 1.0, ts_all.size) * sig
    # urban canyon: a burst of consecutive fixes shifted together, accuracy understated
    central = np.flatnonzero((np.hypot(x, y) < 1500.0))
    if central.size >= 3 and rng.random() < faults.p_canyon_trip:
        i0 = int(rng.choice(central[:-2]))
        n = int(min(rng.integers(2, 6), ts.size - i0))
        ang = rng.uniform(0, 2 * np.pi)
        off = rng.uniform(40.0, 150.0)
        x_all[i0:i0 + n] += off * np.cos(ang)
        y_all[i0:i0 + n] += off * np.sin(ang)
        acc_all[i0:i0 + n] = np.round(rng.uniform(10.0, 30.0, n), 1)
        fault[i0:i0 + n] = 1
    out = rng.random(ts_all.size) < faults.p_outlier
    if out.any():
        k = int(out.sum())
        ang = rng.uniform(0, 2 * np.pi, k)
        dist = rng.uniform(2000.0, 30000.0, k)
        x_all[out] += dist * np.cos(ang)
        y_all[out] += dist * np.sin(ang)
        fault[out] = 2
    # --- motion activity
    m_ts = np.arange(track_start + rng.uniform(0, 10), trip_end_detect, rng.uniform(*sp.motion_interval_s))
    if gap is not None:
        m_ts = m_ts[(m_ts < gap[0]) | (m_ts > gap[1])]
    m_leg = np.searchsorted(starts, m_ts, side="right") - 1
    in_trip = m_ts <= t_end
    mx0, my0 = np.interp(m_ts, T, X), np.interp(m_ts, T, Y)
    mx1, my1 = np.interp(m_ts + 5.0, T, X), np.interp(m_ts + 5.0, T, Y)
    moving = (np.hypot(mx1 - mx0, my1 - my0) / 5.0 > 0.4) & in_trip
    rows = np.array([CONFUSION.get(m, CONFUSION[Mode.WALKING.value]) for m in modes])  # per leg
    probs = np.where(moving[:, None], rows[np.maximum(m_leg, 0)], np.array(_CONF_STILL)[None, :])
    u = rng.random(m_ts.size)[:, None]
    act_idx = np.minimum((u > np.cumsum(probs, axis=1)).sum(axis=1), len(_ACTS) - 1)
    acts = np.array(_ACTS)[act_idx]
    if platform == "ios":  # iOS CoreMotion has no "on foot" nor "tilting"
        acts = np.where(acts == "ON_FOOT", "WALKING", np.where(acts == "TILTING", "UNKNOWN", acts))
    conf = np.where(act_idx == 3, rng.choice([92.0, 97.0, 100.0], m_ts.size), rng.choice([50.0, 75.0, 92.0, 100.0], m_ts.size))
    # --- transitions
    if platform == "android":
        tr = [(track_start, "EXITED_GEOFENCE", "WAITING_FOR_TRIP_START"),
              (trip_end_detect, "STOPPED_MOVING", "ONGOING_TRIP")]
    else:
        tr = [(track_start, "EXITED_GEOFENCE", "WAITING_FOR_TRIP_START"),
              (track_start + 0.5, "TRIP_STARTED", "WAITING_FOR_TRIP_START"),
              (trip_end_detect, "TRIP_END_DETECTED", "ONGOING_TRIP"),
              (trip_end_detect + 0.5, "END_TRIP_TRACKING", "ONGOING_TRIP")]
    return dict(ts=ts_all, x=x_all, y=y_all, acc=acc_all, speed=speed_all, heading=head_all,
                leg=leg_all, fault=fault, motion_ts=m_ts, motion_act=acts, motion_conf=conf,
                transitions=tr, gap=gap, track_start=track_start)

