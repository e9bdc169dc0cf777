"""Emission factors: load the versioned factor file and resolve one factor per section.

Why: carbon per section is distance x factor, but *which* factor depends on the mode, the
tester's own car (fuel and ADEME size class), the car-share vehicle, the distance band (train,
plane), the bus fleet mix and whether vehicle construction is counted. All values live in
``carbon/data/emission_factors.csv`` (one row per factor, each with its ADEME source) and its
sidecar ``emission_factors.meta.json`` (version, bus fleet mix, car-share default fuel, the
ranges used where no factor is known). This module turns those files into a per-km table
(:func:`factor_table`) and picks a factor id for every section (:func:`section_factor_ids`),
with numpy over whole columns. Modes with no sourced factor (UNKNOWN; FERRY, which ADEME's
shipped data lacks) get a low/high range and a null central value rather than a guess.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emission_ext.errors import ConfigError
from emission_ext.schema import MODES

from ._files import DATA, content_version, read_meta, require

FACTORS_PATH = DATA / "emission_factors.csv"
FACTORS_META_PATH = DATA / "emission_factors.meta.json"

_NUMERIC = ("min_km", "max_km", "construction_kg_per_km", "usage_kg_per_km",
            "contrails_kg_per_km", "consumption_per_100km")
_REQUIRED = ("factor_id", "mode", "per", "source") + _NUMERIC

#: factor ids that do not exist as rows but are computed from rows (bus mix, ranges)
BUS_MIX_ID = "bus_mix"
RANGE_IDS = {"FERRY": "ferry_range", "UNKNOWN": "unknown_range"}


@dataclass(frozen=True)
class EmissionFactors:
    """The factor file in memory.

    Attributes
    ----------
    table : DataFrame
        One row per factor, indexed by ``factor_id``; kg CO2e per km in
        ``construction_kg_per_km``, ``usage_kg_per_km``, ``contrails_kg_per_km``; ``per`` is
        ``passenger_km`` or ``vehicle_km`` (cars: divided by the occupancy).
    meta : dict
        The sidecar: ``version``, ``bus_fleet_mix``, ``carshare_default_fuel``, ``ranges``.
    version : str
        Declared version plus a content hash of both files (what results record).
    """

    table: pd.DataFrame
    meta: dict = field(repr=False)
    version: str = ""


def load_factors(path: str | Path = FACTORS_PATH,
                 meta_path: str | Path | None = None) -> EmissionFactors:
    """Read the factor CSV and its metadata sidecar (the only file access for factors).

    Parameters
    ----------
    path : path, optional
        The factor CSV (default: the shipped ``carbon/data/emission_factors.csv``).
    meta_path : path, optional
        The sidecar JSON; default ``<path without .csv>.meta.json``.

    Raises
    ------
    ConfigError
        Missing file, missing column, non-numeric value, duplicate id, unknown mode, a bus
        mix that does not sum to 1, or a range naming an unknown factor.
    """
    path = require(path)
    meta_path = require(meta_path or path.with_suffix("").with_suffix(".meta.json"))
    meta = read_meta(meta_path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}")
    for c in _NUMERIC:
        raw = df[c].str.strip()
        vals = pd.to_numeric(raw.replace("", np.nan), errors="coerce")
        bad = vals.isna() & (raw != "")
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise ConfigError(f"{path}: line {i + 2}, column {c}: {raw.iloc[i]!r} is not a number")
        df[c] = vals.astype("float64")
    for c in ("construction_kg_per_km", "usage_kg_per_km", "contrails_kg_per_km"):
        df[c] = df[c].fillna(0.0)
        if (df[c] < 0).any():
            raise ConfigError(f"{path}: negative value in {c}")
    if df["factor_id"].duplicated().any():
        raise ConfigError(f"{path}: duplicate factor_id {df.loc[df.factor_id.duplicated(), 'factor_id'].iloc[0]!r}")
    bad_modes = set(df["mode"]) - set(MODES)
    if bad_modes:
        raise ConfigError(f"{path}: unknown mode(s) {sorted(bad_modes)}")
    if not set(df["per"]) <= {"passenger_km", "vehicle_km"}:
        raise ConfigError(f"{path}: column per must be passenger_km or vehicle_km")
    table = df.set_index("factor_id", drop=False)
    mix = meta.get("bus_fleet_mix", {}).get("shares", {})
    if mix:
        unknown = set(mix) - set(table.index)
        if unknown or abs(sum(mix.values()) - 1.0) > 1e-9:
            raise ConfigError(f"{meta_path}: bus_fleet_mix shares must name factor rows and sum to 1")
    for mode, spec in meta.get("ranges", {}).items():
        unknown = set(spec.get("candidates", [])) - set(table.index)
        if unknown:
            raise ConfigError(f"{meta_path}: range {mode} names unknown factor(s) {sorted(unknown)}")
    return EmissionFactors(table, meta, content_version(str(meta["version"]), [path, meta_path]))


@dataclass(frozen=True)
class FactorParams:
    """Choices that change the factors used.

    Attributes
    ----------
    include_construction : bool
        Add vehicle construction (default False, as ADEME Impact CO2's API).
    car_occupancy : float
        People in a car (CAR and CARSHARE), dividing the vehicle-km factor; 1 = driving alone.
    bus_mix : dict or None
        Shares of ``bus_thermal``/``bus_cng``/``bus_electric`` (sum 1); None = the file's mix.
    carshare_fuel : str or None
        Car-share fuel when no record says (``hybrid``/``electric``); None = the file's default.
    """

    include_construction: bool = False
    car_occupancy: float = 1.0
    bus_mix: dict | None = None
    carshare_fuel: str | None = None


def factor_table(factors: EmissionFactors, params: FactorParams = FactorParams()) -> pd.DataFrame:
    """kg CO2e per km of every factor id, including the computed ones (bus mix, ranges).

    Returns
    -------
    DataFrame indexed by factor_id with ``per_km`` (central, NaN for range-only ids),
    ``low_per_km`` and ``high_per_km`` (kg CO2e per passenger-km).
    """
    if params.car_occupancy <= 0:
        raise ConfigError("car_occupancy must be > 0")
    t = factors.table
    per_km = t["usage_kg_per_km"] + t["contrails_kg_per_km"]
    if params.include_construction:
        per_km = per_km + t["construction_kg_per_km"]
    per_km = per_km.where(t["per"] != "vehicle_km", per_km / params.car_occupancy)
    out = pd.DataFrame({"per_km": per_km, "low_per_km": per_km, "high_per_km": per_km})
    mix = params.bus_mix or factors.meta.get("bus_fleet_mix", {}).get("shares") or {"bus_thermal": 1.0}
    if set(mix) - set(t.index) or abs(sum(mix.values()) - 1.0) > 1e-9:
        raise ConfigError(f"bus mix {mix} must name bus factor rows and sum to 1")
    bus = float(sum(share * per_km[fid] for fid, share in mix.items()))
    rows = {BUS_MIX_ID: (bus, bus, bus)}
    ranges = factors.meta.get("ranges", {})
    for mode, fid in RANGE_IDS.items():
        cands = ranges.get(mode, {}).get("candidates") or []
        if cands:
            v = per_km[cands]
            rows[fid] = (np.nan, float(v.min()), float(v.max()))
        else:
            rows[fid] = (np.nan, np.nan, np.nan)
    extra = pd.DataFrame.from_dict(rows, orient="index", columns=["per_km", "low_per_km", "high_per_km"])
    out = pd.concat([out, extra])
    car_cands = ranges.get("CAR", {}).get("candidates")
    if car_cands and "car_generic" in out.index:
        v = per_km[car_cands]
        out.loc["car_generic", ["low_per_km", "high_per_km"]] = [float(v.min()), float(v.max())]
    out.index.name = "factor_id"
    return out


def _banded(factors: EmissionFactors, mode: str, km: np.ndarray) -> np.ndarray:
    """Factor id of a distance-banded mode (TRAIN, AIR): band with min_km < km <= max_km."""
    t = factors.table[factors.table["mode"] == mode].sort_values("min_km", na_position="first")
    if t.empty:
        raise ConfigError(f"no emission factor row for mode {mode}")
    upper = t["max_km"].fillna(np.inf).to_numpy()
    idx = np.clip(np.searchsorted(upper, km, side="left"), 0, len(t) - 1)
    return t["factor_id"].to_numpy()[idx]


def section_factor_ids(sections: pd.DataFrame, testers: pd.DataFrame | None,
                       factors: EmissionFactors, params: FactorParams = FactorParams(),
                       carshare_fuel: pd.Series | None = None) -> np.ndarray:
    """The factor id of every section (array aligned with ``sections`` rows).

    Parameters
    ----------
    sections : DataFrame
        Schema ``sections`` (``user_id``, ``mode``, ``distance_m`` are used).
    testers : DataFrame or None
        Schema ``testers``; ``car_fuel`` and ``car_size`` select the own-car factor.
    carshare_fuel : Series or None
        Per-section car-share fuel from operator records (aligned with ``sections``; null =
        default).
    """
    n = len(sections)
    mode = sections["mode"].astype(str).to_numpy()
    km = sections["distance_m"].to_numpy(dtype="float64", na_value=np.nan) / 1000.0
    ids = np.full(n, None, dtype=object)
    t = factors.table
    simple = {m: t.loc[t["mode"] == m, "factor_id"].iloc[0]
              for m in ("WALKING", "BICYCLING", "E_BIKE", "BIKESHARE", "TRAM", "SUBWAY")
              if (t["mode"] == m).any()}
    for m, fid in simple.items():
        ids[mode == m] = fid
    ids[mode == "BUS"] = BUS_MIX_ID
    for m, fid in RANGE_IDS.items():
        ids[mode == m] = fid
    for m in ("TRAIN", "AIR"):
        sel = mode == m
        if sel.any():
            ids[sel] = _banded(factors, m, km[sel])
    sel = mode == "CAR"
    if sel.any():
        car = np.full(n, "car_generic", dtype=object)
        if testers is not None and len(testers) and "car_fuel" in testers:
            prof = testers.drop_duplicates("user_id").set_index("user_id")
            fuel = sections["user_id"].map(prof["car_fuel"]).astype(object)
            size = sections["user_id"].map(prof["car_size"]).astype(object) if "car_size" in prof else None
            if size is not None:
                cand = ("car_" + fuel.astype(str) + "_" + size.astype(str)).to_numpy(dtype=object)
                ok = fuel.notna().to_numpy() & size.notna().to_numpy() & np.isin(cand, t.index)
                car[ok] = cand[ok]
        ids[sel] = car[sel]
    sel = mode == "CARSHARE"
    if sel.any():
        default = params.carshare_fuel or factors.meta.get("carshare_default_fuel", {}).get("value", "hybrid")
        fuel = np.full(n, default, dtype=object)
        if carshare_fuel is not None:
            cf = carshare_fuel.to_numpy(dtype=object)
            known = pd.notna(cf)
            fuel[known] = cf[known]
        cand = ("carshare_" + pd.Series(fuel).astype(str)).to_numpy(dtype=object)
        cand[~np.isin(cand, t.index)] = "carshare_" + default
        ids[sel] = cand[sel]
    missing = pd.isna(ids)
    if missing.any():
        raise ConfigError(f"no emission factor for mode {mode[np.argmax(missing)]!r}")
    return ids
