"""Hand-made point frames for the segmentation tests (metres around a reference point)."""
from __future__ import annotations

import numpy as np
import pandas as pd

LAT0, LON0 = 46.16, -1.15
M_LAT = 111_320.0
M_LON = M_LAT * np.cos(np.radians(LAT0))
T0 = 1_700_000_000.0


def frame(t, x, y, user="u1", acc=10.0, source="android") -> pd.DataFrame:
    """Points at times ``t`` (s from T0) and local metres ``x`` east, ``y`` north."""
    t = np.asarray(t, dtype=float)
    return pd.DataFrame({
        "user_id": user, "ts": pd.to_datetime(T0 + t, unit="s", utc=True),
        "lat": LAT0 + np.asarray(y, float) / M_LAT, "lon": LON0 + np.asarray(x, float) / M_LON,
        "accuracy_m": acc, "source": source,
    })


def day(stays=(1800, 1800, 1800), moves=((3000, 10.0),), dt=30.0, user="u1", noise=5.0, seed=0,
        mode_speeds=None):
    """Alternating stays (durations, s) and moves (distance m, speed m/s) eastwards, sampled
    every ``dt`` s with Gaussian noise. ``mode_speeds``: list per move of [(dist, speed), ...]
    legs to build multi-mode trips. Returns (points, true trip intervals in s from T0)."""
    rng = np.random.default_rng(seed)
    t, x, y, trips = [], [], [], []
    now, pos = 0.0, 0.0
    for k, stay in enumerate(stays):
        n = int(stay / dt)
        tt = now + dt * np.arange(1, n + 1)
        t.append(tt); x.append(pos + rng.normal(0, noise, n)); y.append(rng.normal(0, noise, n))
        now = tt[-1]
        if k < len(moves):
            legs = mode_speeds[k] if mode_speeds else [moves[k]]
            start = now
            for dist, v in legs:
                n = max(1, int(dist / v / dt))
                tt = now + dt * np.arange(1, n + 1)
                t.append(tt)
                x.append(pos + v * (tt - now) + rng.normal(0, noise, n))
                y.append(rng.normal(0, noise, n))
                now, pos = tt[-1], pos + v * (tt[-1] - now)
            trips.append((start, now))
    return frame(np.concatenate(t), np.concatenate(x), np.concatenate(y), user=user), trips
