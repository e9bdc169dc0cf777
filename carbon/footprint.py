"""Carbon (kg CO2e) and cost (EUR) per section, and their sums per trip: the footprint table.

Why: this is the pipeline's carbon stage and the one entry point the runner, the CLI and the
API call (``docs/INTERFACES.md``). It joins the two independent halves — the emission factor
chosen for each section (:mod:`carbon.factors`) and its cost (:mod:`carbon.cost`) — into the
schema ``footprint`` table, and stamps every row with the factor and tariff versions so a
result can always be traced back to the data that produced it. Carbon per section = distance
(km) x factor (kg CO2e/km); a trip's carbon is the sum of its sections.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emission_ext import schema

from .cost import CostParams, section_costs
from .factors import EmissionFactors, FactorParams, factor_table, section_factor_ids
from .tariffs import Tariffs


@dataclass(frozen=True)
class FootprintParams:
    """Parameters of :func:`compute_footprint` (factor choices and cost choices)."""

    factors: FactorParams = field(default_factory=FactorParams)
    cost: CostParams = field(default_factory=CostParams)


def _carshare_fuel(sections: pd.DataFrame, records: pd.DataFrame | None) -> pd.Series | None:
    """Vehicle fuel of the car-share record matched to each section (needs an optional
    ``vehicle_fuel`` column in ``records``; null otherwise)."""
    if records is None or len(records) == 0 or "vehicle_fuel" not in records or "section_id" not in records:
        return None
    r = records[(records["source"] == "yelo_car") & records["section_id"].notna()]
    r = r.drop_duplicates(["user_id", "section_id"]).set_index(["user_id", "section_id"])["vehicle_fuel"]
    idx = pd.MultiIndex.from_arrays([sections["user_id"].astype(str), sections["section_id"].astype(str)])
    return pd.Series(r.reindex(idx).to_numpy(dtype=object), index=sections.index)


def compute_footprint(sections: pd.DataFrame, testers: pd.DataFrame | None,
                      factors: EmissionFactors, tariffs: Tariffs,
                      records: pd.DataFrame | None = None,
                      params: FootprintParams = FootprintParams()) -> pd.DataFrame:
    """The schema ``footprint`` table: one row per section.

    Parameters
    ----------
    sections : DataFrame
        Schema ``sections`` of one or many users (distance in metres, duration in seconds).
    testers : DataFrame or None
        Schema ``testers`` (car profile, Yélo pass, parking subscription, time zone).
    factors, tariffs
        From :func:`carbon.factors.load_factors` and :func:`carbon.tariffs.load_tariffs`.
    records : DataFrame or None
        Schema ``records`` matched to sections by fusion; may be empty or None.
    params : FootprintParams
        Construction included or not, car occupancy, bus mix, car-cost method...

    Returns
    -------
    DataFrame
        ``user_id, trip_id, section_id, mode, distance_m, co2e_kg, co2e_kg_low, co2e_kg_high,
        cost_eur, factor_id, tariff_id, factor_version, tariff_version``. ``co2e_kg`` is null
        for modes with only a range (UNKNOWN, FERRY); low/high always bound it.
    """
    if len(sections) == 0:
        return schema.empty("footprint")
    sec = schema.coerce(sections, "sections").reset_index(drop=True)
    if records is not None and len(records):
        records = schema.coerce(records, "records")
    fids = section_factor_ids(sec, testers, factors, params.factors, _carshare_fuel(sec, records))
    ft = factor_table(factors, params.factors)
    km = sec["distance_m"].to_numpy(dtype="float64") / 1000.0
    fid = pd.Series(fids, dtype=object)
    costs = section_costs(sec, testers, fids, factors, tariffs, records, params.cost)
    out = pd.DataFrame({
        "user_id": sec["user_id"],
        "trip_id": sec["trip_id"],
        "section_id": sec["section_id"],
        "mode": sec["mode"],
        "distance_m": sec["distance_m"],
        "co2e_kg": km * fid.map(ft["per_km"]).to_numpy(dtype="float64"),
        "co2e_kg_low": km * fid.map(ft["low_per_km"]).to_numpy(dtype="float64"),
        "co2e_kg_high": km * fid.map(ft["high_per_km"]).to_numpy(dtype="float64"),
        "cost_eur": costs["cost_eur"].to_numpy(),
        "factor_id": fids,
        "tariff_id": costs["tariff_id"].to_numpy(dtype=object),
        "factor_version": factors.version,
        "tariff_version": tariffs.version,
    })
    return schema.coerce(out, "footprint")


def trip_footprint(footprint: pd.DataFrame) -> pd.DataFrame:
    """Sum a footprint table per trip.

    Returns
    -------
    DataFrame with ``user_id, trip_id, distance_m, co2e_kg`` (null when any section has no
    central value), ``co2e_kg_known`` (sum of the known central values), ``co2e_kg_low``,
    ``co2e_kg_high``, ``cost_eur`` (null when any section's cost is unknown), ``n_sections``.
    """
    f = footprint
    g = f.groupby(["user_id", "trip_id"], sort=True)
    out = pd.DataFrame({
        "distance_m": g["distance_m"].sum(),
        "co2e_kg": g["co2e_kg"].sum(min_count=1),
        "co2e_kg_known": g["co2e_kg"].sum(),
        "co2e_kg_low": g["co2e_kg_low"].sum(),
        "co2e_kg_high": g["co2e_kg_high"].sum(),
        "cost_eur": g["cost_eur"].sum(min_count=1),
        "n_sections": g.size(),
    })
    size = g.size()
    out.loc[(g["co2e_kg"].count() < size).to_numpy(), "co2e_kg"] = np.nan
    out.loc[(g["cost_eur"].count() < size).to_numpy(), "cost_eur"] = np.nan
    return out.reset_index()
