"""Benchmark points: a CSV of N phone-like points for U users, the same file for every tool.

Why: the speed comparison needs one input both tools read. By default this module's own
simple generator makes it (seconds for a million points): Android-like days (fixes every ~30 s; stays of 10-120 min with
GPS noise alternating with walking, cycling or driving trips), vectorised per segment. The synthetic La Rochelle world (:mod:`emission_ext.synth`) can be
used instead; it is more realistic but generates about a thousand points a second.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

LA_ROCHELLE = (46.16, -1.15)  # lat, lon
SPEEDS = np.array([1.4, 4.5, 11.0])  # walk, bike, car, m/s


def simple_points(n_points: int, n_users: int, seed: int = 0, start: float = 1.7e9) -> pd.DataFrame:
    """Generate ``n_points`` points over ``n_users`` users (schema ``points`` columns).

    Each user alternates stays (10-120 min, 5-15 m noise) and trips (5-40 min, one of three
    speeds, a random heading that drifts), sampled every 25-35 s, until their share of points
    is reached. Coordinates are around La Rochelle; timestamps unix seconds from ``start``.
    """
    rng = np.random.default_rng(seed)
    per_user = np.full(n_users, n_points // n_users)
    per_user[: n_points - per_user.sum()] += 1
    frames = []
    m_per_deg_lat = 111_320.0
    m_per_deg_lon = m_per_deg_lat * np.cos(np.radians(LA_ROCHELLE[0]))
    for u in range(n_users):  # per user and per segment below; never per point
        need = int(per_user[u])
        xs, ys, ts = [], [], []
        x = rng.normal(0, 3000)
        y = rng.normal(0, 3000)
        t = start + rng.uniform(0, 3600)
        got = 0
        stay = True
        while got < need:
            dur = rng.uniform(600, 7200) if stay else rng.uniform(300, 2400)
            k = max(2, int(dur / 30))
            dt = rng.uniform(25, 35, k)
            tt = t + np.cumsum(dt)
            if stay:
                px = x + rng.normal(0, 8, k)
                py = y + rng.normal(0, 8, k)
            else:
                v = SPEEDS[rng.integers(0, 3)]
                heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.15, k))
                px = x + np.cumsum(v * dt * np.cos(heading)) + rng.normal(0, 5, k)
                py = y + np.cumsum(v * dt * np.sin(heading)) + rng.normal(0, 5, k)
                x, y = px[-1], py[-1]
            xs.append(px), ys.append(py), ts.append(tt)
            t = tt[-1]
            got += k
            stay = not stay
        px = np.concatenate(xs)[:need]
        py = np.concatenate(ys)[:need]
        tt = np.concatenate(ts)[:need]
        frames.append(pd.DataFrame({
            "user_id": f"{u:03d}", "ts": np.round(tt, 3),
            "lat": LA_ROCHELLE[0] + py / m_per_deg_lat, "lon": LA_ROCHELLE[1] + px / m_per_deg_lon,
            "accuracy": np.round(rng.uniform(5, 30, need), 1),
        }))
    return pd.concat(frames, ignore_index=True)


def synth_points(n_points: int, n_users: int, seed: int = 0) -> pd.DataFrame | None:
    """Points from the synthetic world, or None when the generator is not available."""
    try:
        from emission_ext.synth import generate_world
    except ImportError:
        return None
    from emission_ext import schema

    days = 1
    while True:  # grow the number of days until there are enough points (a few iterations)
        w = generate_world(testers=n_users, days=days, seed=seed)
        if len(w.points) >= n_points or days >= 64:
            break
        days = max(days + 1, int(np.ceil(days * n_points / max(len(w.points), 1))))
    p = w.points.sort_values(["user_id", "ts"]).head(n_points)
    return pd.DataFrame({"user_id": p["user_id"].astype(str), "ts": schema.to_unix(p["ts"]),
                         "lat": p["lat"], "lon": p["lon"], "accuracy": p["accuracy_m"]})


def write_bench_csv(path: str | Path, n_points: int, n_users: int, seed: int = 0,
                    use_synth: bool = True) -> tuple[Path, str]:
    """Write the benchmark CSV; returns (path, generator name)."""
    df = synth_points(n_points, n_users, seed) if use_synth else None
    name = "emission_ext.synth"
    if df is None:
        df = simple_points(n_points, n_users, seed)
        name = "emission_ext.bench.points.simple_points"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path, name
