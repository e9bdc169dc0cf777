"""Cost (EUR) of every section from operator records, tariffs and the tester's profile.

Why: a tester's mobility budget mixes what operators charged (Yélo validations, bike-share and
car-share rentals, parking sessions, each possibly carrying ``amount_eur``), fixed costs that
must be spread over the trips that used them (a monthly/annual Yélo pass over the month's bus
sections, a parking subscription over the month's sessions at that car park), price rules when
no record exists (1-hour bus ticket with transfers, bike share free for 30 minutes, car share
per hour and per km) and the tester's own car (energy consumption x price, or the French
barème kilométrique as a full-cost alternative). Every rule reads :class:`~carbon.tariffs.Tariffs`;
nothing is hard-coded. The functions are pure and vectorised over whole columns.

Rules, per section mode:

* WALKING, BICYCLING, E_BIKE: 0 (``tariff_id`` ``none``).
* BUS: pass holders (``yelo_pass`` of the profile, else a ``PASS_MONTH``/``PASS_YEAR``
  validation in their records) -> pass price of the local calendar month (annual / 12)
  shared by the month's bus trips, then by each trip's bus sections
  (``pass_monthly``/``pass_annual``); else the matched record's amount
  (``record``); else one ``bus_ticket_1h`` per trip and validity window (a transfer within the
  window is free).
* FERRY: record amount, else ``boat_single``.
* BIKESHARE: record amount, else the time grid (:func:`carbon.tariffs.bikeshare_fare`) on the
  rental's duration (record start/end when matched, else the section's).
* CARSHARE: record amount, else ``carshare_hour`` x hours + ``carshare_km`` x km.
* CAR (own car, tester has a car profile): ``running`` = consumption (factor file) / 100 x km x
  energy price; ``bareme`` = barème cost per km at the tester's annual mileage. No profile ->
  unknown (NaN: the tester may be a passenger).
* TRAIN, AIR, TRAM, SUBWAY, UNKNOWN: record amount if any, else unknown (NaN).
* Parking records matched to a section add their cost: subscription sessions (the tester's
  ``parking_subscription`` car park, or ``fare_product`` ``subscription``) share
  ``parking_subscription_month`` over the month's such sessions; others use their
  ``amount_eur``, else ``parking_hourly`` x duration.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emission_ext.errors import ConfigError
from emission_ext.schema import to_unix

from ._files import local_naive
from .factors import EmissionFactors
from .tariffs import Tariffs, bareme_cost_per_km, bikeshare_fare

_FREE = ("WALKING", "BICYCLING", "E_BIKE")
_SEP = "\x1f"


@dataclass(frozen=True)
class CostParams:
    """Cost choices.

    Attributes
    ----------
    car_cost_method : str
        ``running`` (energy only, the marginal cost) or ``bareme`` (full cost per km of the
        barème kilométrique).
    annual_km : dict or None
        Own-car km per year by user id, for the barème; missing users are estimated from their
        CAR km in the data scaled to a year (at least ``min_days_observed`` days).
    min_days_observed : float
        Floor of the observation span (days) used to annualise mileage.
    """

    car_cost_method: str = "running"
    annual_km: dict | None = None
    min_days_observed: float = 7.0


def _keys(user, sid) -> pd.Series:
    return user.astype(str).reset_index(drop=True) + _SEP + sid.astype(str).reset_index(drop=True)


def _month(ts: pd.Series, user: pd.Series, tz_by_user: pd.Series) -> pd.Series:
    tz = user.map(tz_by_user) if len(tz_by_user) else pd.Series(np.nan, index=user.index)
    return local_naive(ts, tz).dt.to_period("M").astype(str)


def _profile(testers: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["tz", "car_fuel", "car_size", "car_fiscal_hp", "yelo_pass", "parking_subscription"]
    if testers is None or len(testers) == 0:
        return pd.DataFrame(columns=cols).rename_axis("user_id")
    p = testers.drop_duplicates("user_id").set_index("user_id")
    for c in cols:
        if c not in p:
            p[c] = np.nan
    return p[cols]


def annualised_car_km(sections: pd.DataFrame, min_days: float = 7.0) -> pd.Series:
    """Own-car km per year by user, from the CAR distance over the observed span.

    Span = first section start to last section end of the user (any mode), floored at
    ``min_days`` days; km/year = CAR km x 365.25 / span days.
    """
    if len(sections) == 0:
        return pd.Series(dtype="float64")
    s = pd.DataFrame({"user_id": sections["user_id"].to_numpy(),
                      "t0": to_unix(sections["start_ts"]), "t1": to_unix(sections["end_ts"]),
                      "car_km": np.where(sections["mode"].to_numpy() == "CAR",
                                         sections["distance_m"].to_numpy(dtype="float64") / 1000.0, 0.0)})
    g = s.groupby("user_id").agg(t0=("t0", "min"), t1=("t1", "max"), car_km=("car_km", "sum"))
    days = np.maximum((g["t1"] - g["t0"]) / 86400.0, min_days)
    return g["car_km"] * 365.25 / days


def _split_records(records: pd.DataFrame | None, sec_keys: pd.Series):
    """Mobility records (first per section) and parking records matched to these sections."""
    if records is None or len(records) == 0 or "section_id" not in records:
        return None, None
    r = records[records["section_id"].notna()].copy()
    if r.empty:
        return None, None
    r["_key"] = _keys(r["user_id"], r["section_id"]).to_numpy()
    r = r[r["_key"].isin(sec_keys)]
    park = r[r["source"] == "parking"]
    mob = r[r["source"] != "parking"].sort_values("start_ts").drop_duplicates("_key")
    mob = mob.assign(_t0=to_unix(mob["start_ts"]),
                     _t1=to_unix(mob["end_ts"]) if "end_ts" in mob else np.nan)
    return mob.set_index("_key"), park


#: Yélo fare products that mean the tester holds a pass (docs/operator_formats.md)
PASS_PRODUCTS = {"PASS_MONTH": "monthly", "PASS_YEAR": "annual"}


def _pass_kind(user: pd.Series, prof: pd.DataFrame, records: pd.DataFrame | None) -> np.ndarray:
    """Pass held by each row's user: the tester profile, else inferred from the user's Yélo
    records (a validation under ``PASS_MONTH``/``PASS_YEAR``)."""
    kind = user.map(prof["yelo_pass"]) if len(prof) else pd.Series(np.nan, index=user.index)
    kind = kind.astype(object)
    if records is not None and len(records) and "fare_product" in records:
        fp = records["fare_product"].astype(object).map(PASS_PRODUCTS)
        seen = pd.DataFrame({"u": records["user_id"].astype(str), "k": fp}).dropna()
        if len(seen):
            # an annual pass wins over a monthly one when both appear
            inferred = seen.sort_values("k").drop_duplicates("u", keep="first").set_index("u")["k"]
            unknown = kind.isna() | (kind == "none")
            kind = kind.where(~unknown | user.map(inferred).isna(), user.map(inferred))
    return kind.to_numpy(dtype=object)


def section_costs(sections: pd.DataFrame, testers: pd.DataFrame | None, factor_ids: np.ndarray,
                  factors: EmissionFactors, tariffs: Tariffs, records: pd.DataFrame | None = None,
                  params: CostParams = CostParams()) -> pd.DataFrame:
    """Cost of every section.

    Parameters
    ----------
    sections : DataFrame
        Schema ``sections`` (user_id, trip_id, section_id, start_ts, end_ts, distance_m [m],
        duration_s [s], mode).
    testers : DataFrame or None
        Schema ``testers`` (tz, car_fuel, car_size, car_fiscal_hp, yelo_pass,
        parking_subscription).
    factor_ids : array
        Factor id per section (:func:`carbon.factors.section_factor_ids`); own-car rows give the
        consumption per 100 km.
    records : DataFrame or None
        Schema ``records`` already matched to sections (``section_id``); may be empty.

    Returns
    -------
    DataFrame with ``cost_eur`` (EUR, NaN = unknown) and ``tariff_id`` (str or None), one row
    per section in the same order (RangeIndex).
    """
    if params.car_cost_method not in ("running", "bareme"):
        raise ConfigError(f"car_cost_method must be running or bareme, not {params.car_cost_method!r}")
    n = len(sections)
    sec = sections.reset_index(drop=True)
    mode = sec["mode"].astype(str).to_numpy()
    km = sec["distance_m"].to_numpy(dtype="float64", na_value=np.nan) / 1000.0
    dur = sec["duration_s"].to_numpy(dtype="float64", na_value=np.nan)
    t0 = to_unix(sec["start_ts"])
    user = sec["user_id"].astype(str)
    prof = _profile(testers)
    keys = _keys(user, sec["section_id"])
    mob, park = _split_records(records, keys)
    cost = np.full(n, np.nan)
    tid = np.full(n, None, dtype=object)

    def col(name):
        if mob is None or name not in mob:
            return np.full(n, np.nan)
        return keys.map(mob[name].astype("float64")).to_numpy(dtype="float64", na_value=np.nan)

    rec_amount = col("amount_eur")
    has_amount = ~np.isnan(rec_amount)

    free = np.isin(mode, _FREE)
    cost[free], tid[free] = 0.0, "none"

    # -- bus: pass amortisation, record, or 1-hour tickets with transfers ---------------------
    bus = mode == "BUS"
    if bus.any():
        pass_kind = _pass_kind(user, prof, records)
        has_pass = bus & np.isin(pass_kind, ("monthly", "annual"))
        if has_pass.any():
            month = _month(sec["start_ts"], user, prof["tz"])
            g = pd.DataFrame({"u": user, "m": month, "p": pass_kind,
                              "trip": sec["trip_id"].astype(str)})[has_pass]
            # the month's price is shared by the month's bus trips, then by each trip's bus sections
            n_trips = g.groupby(["u", "m"])["trip"].transform("nunique").to_numpy()
            n_in_trip = g.groupby(["u", "m", "trip"])["trip"].transform("size").to_numpy()
            price = np.where(g["p"].to_numpy() == "monthly", tariffs["pass_monthly"],
                             tariffs["pass_annual"] / 12.0)
            cost[has_pass] = price / n_trips / n_in_trip
            tid[has_pass] = np.where(g["p"].to_numpy() == "monthly", "pass_monthly", "pass_annual")
        rec = bus & ~has_pass & has_amount
        cost[rec], tid[rec] = rec_amount[rec], "record"
        tick = bus & ~has_pass & ~has_amount
        if tick.any():
            d = pd.DataFrame({"u": user, "trip": sec["trip_id"].astype(str), "t": t0})[tick]
            first = d.groupby(["u", "trip"])["t"].transform("min")
            window = np.floor((d["t"] - first) / (tariffs["bus_ticket_validity_min"] * 60.0))
            d = d.assign(w=window.to_numpy())
            order = np.argsort(d["t"].to_numpy(), kind="stable")  # the first boarding pays
            is_first = np.empty(len(d), dtype=bool)
            is_first[order] = ~d.iloc[order].duplicated(["u", "trip", "w"], keep="first").to_numpy()
            cost[tick] = np.where(is_first, tariffs["bus_ticket_1h"], 0.0)
            tid[tick] = "bus_ticket_1h"

    # -- ferry ----------------------------------------------------------------------------
    ferry = mode == "FERRY"
    cost[ferry & has_amount], tid[ferry & has_amount] = rec_amount[ferry & has_amount], "record"
    sel = ferry & ~has_amount
    cost[sel], tid[sel] = tariffs["boat_single"], "boat_single"

    # -- bike share and car share ------------------------------------------------------------
    rdur = col("_t1") - col("_t0")
    rdur = np.where(np.isnan(rdur), dur, rdur)
    bs = mode == "BIKESHARE"
    cost[bs & has_amount], tid[bs & has_amount] = rec_amount[bs & has_amount], "record"
    sel = bs & ~has_amount
    cost[sel], tid[sel] = bikeshare_fare(rdur[sel], tariffs), "bikeshare_grid"
    cs = mode == "CARSHARE"
    cost[cs & has_amount], tid[cs & has_amount] = rec_amount[cs & has_amount], "record"
    sel = cs & ~has_amount
    rkm = col("distance_m") / 1000.0
    rkm = np.where(np.isnan(rkm), km, rkm)
    cost[sel] = tariffs["carshare_hour"] * rdur[sel] / 3600.0 + tariffs["carshare_km"] * rkm[sel]
    tid[sel] = "carshare_time_km"

    # -- own car ----------------------------------------------------------------------------
    car = mode == "CAR"
    if car.any() and len(prof):
        fuel = user.map(prof["car_fuel"]).astype(object).to_numpy()
        known = car & pd.notna(fuel)
        if params.car_cost_method == "running":
            ft = factors.table
            fid = pd.Series(factor_ids, dtype=object)
            cons = fid.map(ft["consumption_per_100km"]).to_numpy(dtype="float64", na_value=np.nan)
            unit = fid.map(ft["energy_unit"]).astype(object).to_numpy()
            price = np.select([unit == "kWh", fuel == "diesel"],
                              [tariffs["electricity"], tariffs["fuel_diesel"]],
                              default=tariffs["fuel_petrol"])
            ok = known & ~np.isnan(cons)
            cost[ok] = cons[ok] / 100.0 * km[ok] * price[ok]
            tid[ok] = "car_running_" + pd.Series(fuel[ok], dtype=str).to_numpy(dtype=object)
        else:
            akm = annualised_car_km(sec, params.min_days_observed)
            if params.annual_km:
                akm = pd.Series(params.annual_km, dtype="float64").combine_first(akm)
            d = user.map(akm).to_numpy(dtype="float64", na_value=np.nan)
            hp = user.map(prof["car_fiscal_hp"]).to_numpy(dtype="float64", na_value=np.nan)
            per_km = bareme_cost_per_km(d, hp, fuel == "electric", tariffs)
            ok = known & ~np.isnan(per_km)
            cost[ok], tid[ok] = per_km[ok] * km[ok], "bareme"

    # -- other modes: a record's amount when there is one -----------------------------------
    other = np.isin(mode, ("TRAIN", "AIR", "TRAM", "SUBWAY", "UNKNOWN")) & has_amount
    cost[other], tid[other] = rec_amount[other], "record"

    # -- parking records ---------------------------------------------------------------------
    if park is not None and len(park):
        pc, ptid = parking_costs(park, prof, tariffs)
        add = pd.DataFrame({"k": park["_key"].to_numpy(), "c": pc, "t": ptid})
        csum = add.groupby("k")["c"].sum(min_count=1)
        tj = add.drop_duplicates(["k", "t"]).sort_values(["k", "t"]).groupby("k")["t"].agg("+".join)
        pcost = keys.map(csum).to_numpy(dtype="float64", na_value=np.nan)
        pt = keys.map(tj).to_numpy(dtype=object, na_value=None)
        has = pd.notna(pt)
        cost[has] = np.where(np.isnan(cost[has]), pcost[has], cost[has] + pcost[has])
        mode_t = pd.Series(tid[has], dtype=object).fillna("").to_numpy(dtype=object)
        tid[has] = np.where(mode_t == "", pt[has], mode_t + "+" + pt[has])
    return pd.DataFrame({"cost_eur": cost, "tariff_id": tid})


def parking_costs(park: pd.DataFrame, profile: pd.DataFrame, tariffs: Tariffs):
    """Cost (EUR) and tariff id of each parking record (see the module rules).

    Returns
    -------
    (ndarray of float, ndarray of str)
    """
    park = park.reset_index(drop=True)
    user = park["user_id"].astype(str)
    sub_park = user.map(profile["parking_subscription"]).astype(object) if len(profile) \
        else pd.Series(None, index=park.index, dtype=object)
    cp = park["car_park_id"].astype(object) if "car_park_id" in park else pd.Series(None, index=park.index)
    fp = park["fare_product"].astype(object) if "fare_product" in park else pd.Series(None, index=park.index)
    is_sub = ((cp.notna() & (cp == sub_park)) | (fp.astype(str).str.lower() == "subscription")).to_numpy()
    amount = park["amount_eur"].to_numpy(dtype="float64", na_value=np.nan) if "amount_eur" in park \
        else np.full(len(park), np.nan)
    hours = (to_unix(park["end_ts"]) - to_unix(park["start_ts"])) / 3600.0 if "end_ts" in park \
        else np.full(len(park), np.nan)
    cost = np.where(np.isnan(amount), tariffs["parking_hourly"] * hours, amount)
    tid = np.where(np.isnan(amount), "parking_hourly", "parking_record").astype(object)
    if is_sub.any():
        month = _month(park["start_ts"], user, profile["tz"] if len(profile) else pd.Series(dtype=str))
        g = pd.DataFrame({"u": user, "m": month})[is_sub]
        count = g.groupby(["u", "m"])["u"].transform("size").to_numpy()
        cost[is_sub] = tariffs["parking_subscription_month"] / count
        tid[is_sub] = "parking_subscription"
    return cost, tid
