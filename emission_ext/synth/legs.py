"""Movement of one leg (one mode) as timed knots: walking, cycling, driving, riding.

Why: every sensor the generator imitates (GPS fixes, motion activity, operator records) is
sampled from one true trajectory per leg. A leg is a short list of knots (time, x, y) that the
phone layer interpolates with numpy; a stop (traffic light, bus dwell, waiting at a stop) is two
knots at the same place. Speeds follow urban figures: walking 1.2-1.5 m/s with crossings,
cycling 4-5 m/s, cars 8-15 m/s with traffic lights, buses and ferries on the real GTFS trips
(:mod:`.transit`), regional trains ~25-35 m/s between stations.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..schema import Mode
from . import geo


@dataclass
class Leg:
    """One single-mode part of a trip (becomes a ground-truth section).

    ``t`` (unix s, non-decreasing), ``x``, ``y`` (local metres) are the knots; ``info`` carries
    what operator records need (stops, route, stations, car park...)."""

    mode: str
    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def start(self) -> float:
        return float(self.t[0])

    @property
    def end(self) -> float:
        return float(self.t[-1])

    @property
    def distance(self) -> float:
        return float(geo.cumdist(self.x, self.y)[-1])


def _ensure(t, x, y):
    return np.asarray(t, float), np.asarray(x, float), np.asarray(y, float)


def walk(rng: np.random.Generator, t0: float, x0: float, y0: float, x1: float, y1: float,
         speed: float | None = None) -> Leg:
    """Walking leg, 1.2-1.5 m/s, detour factor ~1.1-1.2, short waits at crossings."""
    v = speed if speed is not None else rng.uniform(1.2, 1.5)
    px, py = geo.detoured_path(rng, x0, y0, x1, y1, detour=0.1, step_m=40.0)
    t, x, y = geo.timed_path(rng, px, py, t0, v, speed_sd=0.08, chunk_m=150.0, stop_every_m=200.0,
                             stop_prob=0.25, stop_s=(5.0, 25.0))
    return Leg(Mode.WALKING.value, *_ensure(t, x, y))


def bike(rng: np.random.Generator, t0: float, x0: float, y0: float, x1: float, y1: float,
         mode: str = Mode.BICYCLING.value) -> Leg:
    """Cycling leg (own bike or bike share), 4-5 m/s (e-bike 5.5-6.5 m/s), a few stops at lights."""
    v = rng.uniform(5.5, 6.5) if mode == Mode.E_BIKE.value else rng.uniform(4.0, 5.0)
    px, py = geo.detoured_path(rng, x0, y0, x1, y1, detour=0.12, step_m=50.0)
    t, x, y = geo.timed_path(rng, px, py, t0, v, speed_sd=0.12, chunk_m=250.0, stop_every_m=400.0,
                             stop_prob=0.3, stop_s=(5.0, 30.0))
    return Leg(mode, *_ensure(t, x, y))


def drive(rng: np.random.Generator, t0: float, x0: float, y0: float, x1: float, y1: float,
          mode: str = Mode.CAR.value) -> Leg:
    """Car leg: street-like detoured path (factor ~1.1-1.35), 8-15 m/s depending on the trip
    length (ring roads on longer trips), stops at traffic lights every few hundred metres."""
    d = float(np.hypot(x1 - x0, y1 - y0))
    v = rng.uniform(7.5, 10.0) + min(d / 1000.0, 12.0) * 0.45
    px, py = geo.detoured_path(rng, x0, y0, x1, y1, detour=0.2, step_m=80.0)
    t, x, y = geo.timed_path(rng, px, py, t0, v, speed_sd=0.2, chunk_m=400.0, stop_every_m=450.0,
                             stop_prob=0.4, stop_s=(10.0, 50.0))
    return Leg(mode, *_ensure(t, x, y))


def train(rng: np.random.Generator, t0: float, x0: float, y0: float, x1: float, y1: float) -> Leg:
    """Regional train leg: nearly straight line, ~30 m/s cruising, one or two intermediate stops."""
    px, py = geo.detoured_path(rng, x0, y0, x1, y1, detour=0.04, step_m=200.0)
    t, x, y = geo.timed_path(rng, px, py, t0, rng.uniform(25.0, 33.0), speed_sd=0.1, chunk_m=3000.0,
                             stop_every_m=15000.0, stop_prob=0.7, stop_s=(60.0, 120.0))
    return Leg(Mode.TRAIN.value, *_ensure(t, x, y))


def stay_on(leg: Leg, t_until: float) -> None:
    """Extend ``leg`` with a stationary wait at its last position until ``t_until`` (in place)."""
    if t_until > leg.end:
        leg.t = np.append(leg.t, t_until)
        leg.x = np.append(leg.x, leg.x[-1])
        leg.y = np.append(leg.y, leg.y[-1])
