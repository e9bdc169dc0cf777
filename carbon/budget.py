"""Mobility budget: kg CO2e, euros and kilometres per tester per day, week or month, by mode,
with the trend and comparisons with the panel and with the French average.

Why: testers see their footprint over calendar periods of their own time zone (a trip at
00:30 in Paris on the 1st belongs to the new month). Totals keep the uncertain part visible:
``co2e_kg`` sums the known central values and ``co2e_kg_low``/``co2e_kg_high`` bound the
total including range-only modes. Comparisons are per observed day, so a period only partly
covered by data (the first week of the experiment) is not compared with a full period. The
French reference (SDES, EMP 2019) is a data value with its source in
``carbon/data/reference_averages.csv``, read by :func:`load_reference_averages`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emission_ext.errors import ConfigError
from emission_ext.schema import to_unix

from ._files import DATA, local_naive, require

REFERENCES_PATH = DATA / "reference_averages.csv"
FR_DAILY_ID = "fr_local_mobility_co2e_per_day"
PERIODS = ("day", "week", "month")


def load_reference_averages(path: str | Path = REFERENCES_PATH) -> pd.DataFrame:
    """Reference averages (``ref_id, value, unit, source, url, date, note``) indexed by ref_id."""
    p = require(path)
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    for c in ("ref_id", "value", "unit", "source"):
        if c not in df.columns:
            raise ConfigError(f"{p}: missing column {c}")
    v = pd.to_numeric(df["value"], errors="coerce")
    if v.isna().any():
        raise ConfigError(f"{p}: non-numeric value")
    df["value"] = v
    return df.set_index("ref_id", drop=False)


def _check_period(period: str) -> None:
    if period not in PERIODS:
        raise ConfigError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")


def period_start(local: pd.Series, period: str) -> pd.Series:
    """First local day (midnight, tz-naive) of the day/week (Monday)/month holding each time."""
    _check_period(period)
    day = local.dt.normalize()
    if period == "day":
        return day
    if period == "week":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return day - pd.to_timedelta(day.dt.day - 1, unit="D")


def period_end(start: pd.Series, period: str) -> pd.Series:
    """Exclusive end of the periods beginning at ``start``."""
    if period == "day":
        return start + pd.Timedelta(days=1)
    if period == "week":
        return start + pd.Timedelta(days=7)
    return (start.dt.to_period("M") + 1).dt.to_timestamp()


def _with_local_time(footprint: pd.DataFrame, sections: pd.DataFrame,
                     testers: pd.DataFrame | None) -> pd.DataFrame:
    s = sections[["user_id", "section_id", "start_ts", "end_ts"]]
    f = footprint.merge(s, on=["user_id", "section_id"], how="inner", validate="one_to_one")
    tz = pd.Series(dtype=object)
    if testers is not None and len(testers) and "tz" in testers:
        tz = testers.drop_duplicates("user_id").set_index("user_id")["tz"]
    f["local_start"] = local_naive(f["start_ts"], f["user_id"].map(tz))
    f["local_end"] = local_naive(f["end_ts"], f["user_id"].map(tz))
    return f


def budget_by_mode(footprint: pd.DataFrame, sections: pd.DataFrame, testers: pd.DataFrame | None,
                   period: str = "week") -> pd.DataFrame:
    """Per tester, period and mode: CO2e (kg), cost (EUR), distance (km), section count.

    A section belongs to the period of its local start time.

    Returns
    -------
    DataFrame ``user_id, period_start (local midnight), mode, co2e_kg (known central values),
    co2e_kg_low, co2e_kg_high, cost_eur (known costs), n_cost_unknown, distance_km,
    n_sections``.
    """
    _check_period(period)
    if len(footprint) == 0:
        return pd.DataFrame(columns=["user_id", "period_start", "mode", "co2e_kg", "co2e_kg_low",
                                     "co2e_kg_high", "cost_eur", "n_cost_unknown", "distance_km",
                                     "n_sections"])
    f = _with_local_time(footprint, sections, testers)
    f["period_start"] = period_start(f["local_start"], period)
    f["distance_km"] = f["distance_m"] / 1000.0
    f["cost_unknown"] = f["cost_eur"].isna()
    g = f.groupby(["user_id", "period_start", "mode"], sort=True)
    return pd.DataFrame({
        "co2e_kg": g["co2e_kg"].sum(),
        "co2e_kg_low": g["co2e_kg_low"].sum(),
        "co2e_kg_high": g["co2e_kg_high"].sum(),
        "cost_eur": g["cost_eur"].sum(),
        "n_cost_unknown": g["cost_unknown"].sum().astype("int64"),
        "distance_km": g["distance_km"].sum(),
        "n_sections": g.size(),
    }).reset_index()


def observed_span(sections: pd.DataFrame, testers: pd.DataFrame | None) -> pd.DataFrame:
    """First local section start and last local section end of each tester (``user_id,
    first, last``): the days the data covers."""
    f = _with_local_time(sections[["user_id", "section_id"]].assign(_=0), sections, testers)
    return f.groupby("user_id").agg(first=("local_start", "min"), last=("local_end", "max")).reset_index()


def budget_summary(by_mode: pd.DataFrame, span: pd.DataFrame, period: str,
                   references: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per tester and period: totals, trend, panel and French comparisons.

    Parameters
    ----------
    by_mode : DataFrame
        From :func:`budget_by_mode`.
    span : DataFrame
        From :func:`observed_span`; the days of a period outside it are not counted.
    references : DataFrame or None
        From :func:`load_reference_averages` (the French daily average).

    Returns
    -------
    DataFrame ``user_id, period_start, days_observed, co2e_kg, co2e_kg_low, co2e_kg_high,
    cost_eur (known costs), n_cost_unknown, distance_km, n_sections, co2e_kg_per_day, trend_pct`` (change of kg/day vs the tester's
    previous period), ``panel_co2e_kg_per_day`` (mean over the testers with data in the
    period), ``vs_panel_pct``, ``fr_co2e_kg_per_day``, ``vs_fr_pct``.
    """
    _check_period(period)
    if len(by_mode) == 0:
        return pd.DataFrame()
    g = by_mode.groupby(["user_id", "period_start"], sort=True)
    s = g[["co2e_kg", "co2e_kg_low", "co2e_kg_high", "cost_eur", "n_cost_unknown", "distance_km",
           "n_sections"]].sum().reset_index()
    s = s.merge(span, on="user_id", how="left")
    start, end = s["period_start"], period_end(s["period_start"], period)
    first = s["first"].dt.normalize()
    last = s["last"].dt.normalize() + pd.Timedelta(days=1)
    lo = np.maximum(to_unix(start), to_unix(first))
    hi = np.minimum(to_unix(end), to_unix(last))
    s["days_observed"] = np.maximum(np.round((hi - lo) / 86400.0), 1.0)
    s["co2e_kg_per_day"] = s["co2e_kg"] / s["days_observed"]
    prev = s.groupby("user_id")["co2e_kg_per_day"].shift(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s["trend_pct"] = np.where(prev > 0, (s["co2e_kg_per_day"] / prev - 1.0) * 100.0, np.nan)
        s["panel_co2e_kg_per_day"] = s.groupby("period_start")["co2e_kg_per_day"].transform("mean")
        s["vs_panel_pct"] = np.where(s["panel_co2e_kg_per_day"] > 0,
                                     (s["co2e_kg_per_day"] / s["panel_co2e_kg_per_day"] - 1) * 100, np.nan)
        fr = np.nan
        if references is not None and FR_DAILY_ID in references.index:
            fr = float(references.at[FR_DAILY_ID, "value"])
        s["fr_co2e_kg_per_day"] = fr
        s["vs_fr_pct"] = (s["co2e_kg_per_day"] / fr - 1.0) * 100.0 if fr == fr and fr > 0 else np.nan
    return s.drop(columns=["first", "last"])
