"""Local metric geometry for the synthetic world: projection, polylines, detoured paths.

Why: the generator moves people along paths in metres and samples them at arbitrary times;
doing that in lon/lat would mean geodesic maths at every step. La Rochelle's agglomeration is
about 30 km across, so a local equirectangular projection centred on the city is accurate to
a few centimetres here, costs two multiplications per point and is trivially vectorised.
Everything in this module works on whole numpy arrays.
"""
from __future__ import annotations

import numpy as np

from ..geodesy import metres_per_degree

#: projection centre (Vieux-Port, La Rochelle), degrees
LAT0 = 46.16
LON0 = -1.15
_KX, _KY = metres_per_degree(LAT0)  # metres per degree of longitude, of latitude


def to_xy(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees -> local (x east, y north) metres around (LON0, LAT0)."""
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    return (lon - LON0) * _KX, (lat - LAT0) * _KY


def to_lonlat(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Local metres -> WGS84 (lon, lat) degrees; inverse of :func:`to_xy`."""
    return np.asarray(x, dtype="float64") / _KX + LON0, np.asarray(y, dtype="float64") / _KY + LAT0


def cumdist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cumulative distance along a polyline, metres (first value 0)."""
    d = np.hypot(np.diff(x), np.diff(y))
    return np.concatenate([[0.0], np.cumsum(d)])


def along(x: np.ndarray, y: np.ndarray, cd: np.ndarray, s) -> tuple[np.ndarray, np.ndarray]:
    """Positions at distances ``s`` (metres) along the polyline (x, y) with cumulative distance ``cd``."""
    s = np.asarray(s, dtype="float64")
    return np.interp(s, cd, x), np.interp(s, cd, y)


def detoured_path(rng: np.random.Generator, x0: float, y0: float, x1: float, y1: float,
                  detour: float = 0.15, step_m: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """A plausible street-like path between two points, without a road network.

    The straight line is bent through two intermediate waypoints pushed sideways by up to
    ``detour`` times the distance (so the length is ~1.05-1.35 times the crow-fly distance,
    the usual urban detour factor), then densified every ``step_m`` metres with a small
    lateral wiggle (a few metres) so that it is not made of perfectly straight segments.

    Returns
    -------
    x, y : ndarray
        Vertices in local metres, starting at (x0, y0) and ending at (x1, y1).
    """
    dx, dy = x1 - x0, y1 - y0
    dist = float(np.hypot(dx, dy))
    if dist < 1.0:
        return np.array([x0, x1]), np.array([y0, y1])
    ux, uy = dx / dist, dy / dist
    px, py = -uy, ux
    a = np.sort(rng.uniform(0.2, 0.8, 2))
    off = rng.uniform(-detour, detour, 2) * dist
    wx = np.concatenate([[x0], x0 + a * dx + off * px, [x1]])
    wy = np.concatenate([[y0], y0 + a * dy + off * py, [y1]])
    cd = cumdist(wx, wy)
    n = max(2, int(np.ceil(cd[-1] / step_m)) + 1)
    s = np.linspace(0.0, cd[-1], n)
    x, y = along(wx, wy, cd, s)
    if n > 2:  # lateral wiggle, zero at both ends
        w = rng.normal(0.0, 3.0, n)
        w[0] = w[-1] = 0.0
        x = x + w * px
        y = y + w * py
    return x, y


def timed_path(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, t0: float, speed: float,
               speed_sd: float = 0.12, chunk_m: float = 250.0, stop_every_m: float | None = None,
               stop_prob: float = 0.0, stop_s: tuple[float, float] = (10.0, 45.0)
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Put times on a polyline: piecewise-constant speed plus optional stops (traffic lights).

    Parameters
    ----------
    x, y : ndarray
        Path vertices, metres.
    t0 : float
        Departure, unix seconds.
    speed : float
        Mean cruising speed, m/s; each ``chunk_m`` chunk gets a log-normal factor of sd
        ``speed_sd``.
    stop_every_m, stop_prob, stop_s :
        Candidate stop every ``stop_every_m`` metres, taken with probability ``stop_prob``,
        lasting uniform ``stop_s`` seconds.

    Returns
    -------
    t, x, y : ndarray
        Knots (times non-decreasing; a stop is two knots at the same place).
    """
    cd = cumdist(x, y)
    total = cd[-1]
    cuts = np.arange(chunk_m, total, chunk_m)
    stops = np.empty(0)
    if stop_every_m and total > stop_every_m:
        cand = np.arange(stop_every_m, total - 30.0, stop_every_m) + rng.uniform(-0.3, 0.3) * stop_every_m
        cand = cand[(cand > 30.0) & (cand < total - 30.0)]
        stops = np.sort(cand[rng.random(cand.size) < stop_prob])
    s = np.unique(np.concatenate([cd, cuts, stops]))
    chunk = np.minimum((s[:-1] / chunk_m).astype(int), max(0, cuts.size))
    factors = np.exp(rng.normal(0.0, speed_sd, cuts.size + 1))
    v = speed * factors[chunk]
    dt = np.diff(s) / v
    t = t0 + np.concatenate([[0.0], np.cumsum(dt)])
    px, py = along(x, y, cd, s)
    if stops.size:
        waits = rng.uniform(stop_s[0], stop_s[1], stops.size)
        idx = np.searchsorted(s, stops)  # knot index of each stop
        shift = np.zeros(s.size)
        np.add.at(shift, np.minimum(idx + 1, s.size - 1), waits)
        t = t + np.cumsum(shift)
        # duplicate the stop knots: arrive at t[idx], leave at t[idx] + wait
        t_dep = t[idx] + waits
        t = np.concatenate([t, t_dep])
        px = np.concatenate([px, px[idx]])
        py = np.concatenate([py, py[idx]])
        order = np.argsort(t, kind="stable")
        t, px, py = t[order], px[order], py[order]
    return t, px, py
