"""Synthetic testers: home and work places, vehicles, Yélo and parking subscriptions, habits.

Why: the fusion, carbon and cost computations depend on who owns what (a car's fuel and size,
a Yélo card and pass, a car-park subscription), and the trip generator needs homes, workplaces
and a usual commute mode. Homes and workplaces are drawn near real GTFS stops, which cover the
populated area of the agglomeration; workplaces lean towards the centre (Vieux-Port) as jobs do.
Car fleet shares follow the French fleet (petrol/diesel dominant, a few percent hybrid and
electric). Everything is drawn from one numpy Generator: same seed, same testers.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..schema import CAR_FUELS, CAR_SIZES, DEFAULT_TZ, Mode
from . import geo

#: namespace of the deterministic e-mission uuids of synthetic testers
UUID_NAMESPACE = uuid.UUID("6c1f3f4e-9a57-4c2a-8f3e-1a5e5d0c7a11")


@dataclass(frozen=True)
class PopulationParams:
    """Shares of testers owning each thing (probabilities 0-1)."""

    p_car: float = 0.75            # car in the household (CDA La Rochelle: ~80 %)
    p_bike: float = 0.55           # own bike (La Rochelle is a cycling city)
    p_ebike: float = 0.2           # the own bike is electric
    p_yelo_card: float = 0.5       # Yélo card (bus, bike share, sea shuttle)
    p_carshare: float = 0.35       # Yélo car-share account, among card holders without a car
    p_parking_sub: float = 0.6     # car-park subscription, among drivers working near a car park
    android_share: float = 0.7     # Android vs iOS, when the platform is "mixed"
    fuel_shares: tuple[float, ...] = (0.42, 0.40, 0.10, 0.08)   # petrol, diesel, hybrid, electric
    size_shares: tuple[float, ...] = (0.35, 0.35, 0.15, 0.15)   # petite, moyenne, berline, SUV


def emission_uuid(user_id: str) -> str:
    """Deterministic e-mission uuid (32 hex digits) of a synthetic tester."""
    return uuid.uuid5(UUID_NAMESPACE, f"emission-ext-synth:{user_id}").hex


def _near_stop(rng, stops_x, stops_y, idx, lo=40.0, hi=350.0):
    r = rng.uniform(lo, hi, len(idx))
    a = rng.uniform(0, 2 * np.pi, len(idx))
    return stops_x[idx] + r * np.cos(a), stops_y[idx] + r * np.sin(a)


def make_testers(rng: np.random.Generator, n: int, stops: pd.DataFrame, car_parks: pd.DataFrame,
                 platform: str = "mixed", params: PopulationParams = PopulationParams()) -> pd.DataFrame:
    """Draw ``n`` testers.

    Parameters
    ----------
    stops : DataFrame
        Transit stops with local ``x, y`` metres (:class:`.transit.TransitNet` ``stops``).
    car_parks : DataFrame
        ``car_park_id, name, lat, lon`` (reference data).
    platform : {"android", "ios", "mixed"}

    Returns
    -------
    DataFrame
        The schema ``testers`` columns plus generator columns: ``emission_uuid``, ``home_x/y``,
        ``work_x/y`` (metres), ``has_bike``, ``ebike``, ``carshare``, ``commute_mode``, ``work_start_h``,
        ``work_days`` (weekdays worked, 4 or 5).
    """
    sx, sy = stops["x"].to_numpy(), stops["y"].to_numpy()
    ids = [f"{i + 1:03d}" for i in range(n)]
    has_car = rng.random(n) < params.p_car
    has_bike = rng.random(n) < params.p_bike
    yelo = rng.random(n) < params.p_yelo_card
    # car share: card holders, mostly those without a car of their own
    carshare = yelo & (rng.random(n) < np.where(has_car, params.p_carshare / 4.0, params.p_carshare))
    cp = car_parks.dropna(subset=["car_park_id", "lat", "lon"])
    cp = cp[~cp["name"].str.contains("camping", case=False, na=False)]
    cpx, cpy = geo.to_xy(cp["lon"].to_numpy(), cp["lat"].to_numpy())
    # homes: anywhere served by the network (uniform over stops, so denser areas get more
    # homes); car-share members live within reach of a car-share station (central car parks)
    hidx = rng.integers(0, len(sx), n)
    near_cp = np.flatnonzero(np.hypot(sx[:, None] - cpx[None, :], sy[:, None] - cpy[None, :]).min(axis=1) < 1500)
    if near_cp.size:
        hidx = np.where(carshare, rng.choice(near_cp, n), hidx)
    hx, hy = _near_stop(rng, sx, sy, hidx)
    # workplaces: 45 % in the centre (stops within 2.5 km of Vieux-Port), else distance-decayed
    centre = np.flatnonzero(np.hypot(sx, sy) < 2500.0)
    widx = np.empty(n, dtype=int)
    for i in range(n):  # per tester
        if rng.random() < 0.45:
            widx[i] = rng.choice(centre)
        else:
            d = np.hypot(sx - hx[i], sy - hy[i])
            w = np.exp(-d / 4000.0) * (d > 800.0)
            widx[i] = rng.choice(len(sx), p=w / w.sum())
    wx, wy = _near_stop(rng, sx, sy, widx, 20.0, 200.0)
    fuel = np.where(has_car, rng.choice(CAR_FUELS, n, p=params.fuel_shares), None)
    size = np.where(has_car, rng.choice(CAR_SIZES, n, p=params.size_shares), None)
    base_hp = {"petite": 4, "moyenne": 5, "berline": 7, "SUV": 8}
    hp = [pd.NA if not c else (3 if f == "electric" else base_hp[s] + int(rng.integers(-1, 2)))
          for c, f, s in zip(has_car, fuel, size)]
    # parking subscriptions: drivers whose workplace is within 600 m of a public car park
    dwork = np.hypot(cpx[None, :] - wx[:, None], cpy[None, :] - wy[:, None])
    nearest = dwork.argmin(axis=1)
    sub = has_car & (dwork.min(axis=1) < 600.0) & (rng.random(n) < params.p_parking_sub)
    sub_cp = np.where(sub, cp["car_park_id"].to_numpy()[nearest], None)
    if platform == "mixed":
        plat = np.where(rng.random(n) < params.android_share, "android", "ios")
    else:
        plat = np.full(n, platform)
    yelo_pass = np.where(yelo, rng.choice(["none", "monthly", "annual"], n, p=[0.5, 0.3, 0.2]), None)
    hlon, hlat = geo.to_lonlat(hx, hy)
    wlon, wlat = geo.to_lonlat(wx, wy)
    d_commute = np.hypot(wx - hx, wy - hy)
    commute = [_commute_mode(rng, d, c, b, y) for d, c, b, y in zip(d_commute, has_car, has_bike, yelo)]
    return pd.DataFrame({
        "user_id": ids,
        "tz": DEFAULT_TZ,
        "home_lat": hlat, "home_lon": hlon, "work_lat": wlat, "work_lon": wlon,
        "platform": plat,
        "car_fuel": fuel, "car_size": size,
        "car_fiscal_hp": pd.array(hp, dtype="Int64"),
        "yelo_card_id": [f"25{70000000 + i * 7919 % 9999991 + 1000:08d}" if y else None
                         for i, y in enumerate(yelo)],
        "yelo_pass": yelo_pass,
        "parking_account_id": [f"PK-{31000 + i * 37:06d}" if s else None for i, s in enumerate(sub)],
        "parking_subscription": sub_cp,
        "emission_uuid": [emission_uuid(u) for u in ids],
        "home_x": hx, "home_y": hy, "work_x": wx, "work_y": wy,
        "has_car": has_car, "has_bike": has_bike, "carshare": carshare,
        "ebike": has_bike & (rng.random(n) < params.p_ebike),
        "commute_mode": commute,
        "work_start_h": np.round(rng.choice([6.0, 7.5, 8.0, 8.5, 9.0], n, p=[0.15, 0.2, 0.3, 0.2, 0.15])
                                 + rng.uniform(-0.25, 0.25, n), 2),
        "work_days": rng.choice([4, 5], n, p=[0.25, 0.75]),
    })


def _commute_mode(rng, d, car, bike, yelo) -> str:
    """Usual commute mode from the home-work distance (metres) and what the tester owns,
    roughly after the La Rochelle household travel survey (car ~55-60 % of trips, bike ~8-10 %)."""
    w = {
        Mode.WALKING.value: 4.0 if d < 1500 else (0.6 if d < 2500 else 0.0),
        Mode.BICYCLING.value: (1.2 if d < 6000 else 0.3) if bike else 0.0,
        Mode.CAR.value: (1.0 + d / 2000.0) if car else 0.0,
        Mode.BUS.value: (2.2 if d > 1000 else 0.2) if yelo else 0.0,
        Mode.BIKESHARE.value: (0.7 if 1000 < d < 5000 else 0.0) if yelo else 0.0,
    }
    if sum(w.values()) == 0:
        w[Mode.WALKING.value] = 1.0 if d < 3000 else 0.0
        w[Mode.CAR.value] = 0.0 if d < 3000 else 1.0  # a lift (passenger)
    k = list(w)
    p = np.array([w[m] for m in k])
    return str(rng.choice(k, p=p / p.sum()))
