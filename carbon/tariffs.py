"""Tariffs: the operator-editable price file and the price rules that read it.

Why: no current official Yélo price sheet exists in our reference data, so every price is a
value in ``carbon/data/tariffs.csv`` with its source and date (unverified ones say so), and the
French *barème kilométrique* is its own small table (``bareme_kilometrique.csv``). An operator
fixes a price by editing a file; the recorded ``tariff_version`` (declared version + content
hash) shows which prices produced a result. The rules here are pure, vectorised functions of
durations and distances: bike-share time grid, barème cost per km.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emission_ext.errors import ConfigError

from ._files import DATA, content_version, read_meta, require

TARIFFS_PATH = DATA / "tariffs.csv"
BAREME_PATH = DATA / "bareme_kilometrique.csv"
TARIFFS_META_PATH = DATA / "tariffs.meta.json"

#: tariff ids the cost rules read; the loader refuses a file without them
REQUIRED_IDS = (
    "bus_ticket_1h", "bus_ticket_validity_min", "pass_monthly", "pass_annual", "boat_single",
    "bikeshare_free_min", "bikeshare_to_60min", "bikeshare_to_120min", "bikeshare_extra_hour",
    "carshare_hour", "carshare_km", "fuel_petrol", "fuel_diesel", "electricity",
    "parking_hourly", "parking_subscription_month", "bareme_electric_uplift", "bareme_default_cv",
)


@dataclass(frozen=True)
class Tariffs:
    """The tariff files in memory.

    Attributes
    ----------
    table : DataFrame
        ``tariff_id, value, unit, source, date, note`` indexed by tariff_id.
    bareme : DataFrame
        ``cv_max, km_max, rate_eur_per_km, fixed_eur`` (annual cost = d x rate + fixed).
    version : str
        Declared version plus a content hash of the files.
    """

    table: pd.DataFrame
    bareme: pd.DataFrame
    meta: dict = field(repr=False)
    version: str = ""

    def __getitem__(self, tariff_id: str) -> float:
        """The numeric value of ``tariff_id``."""
        return float(self.table.at[tariff_id, "value"])


def load_tariffs(path: str | Path = TARIFFS_PATH, bareme_path: str | Path | None = None,
                 meta_path: str | Path | None = None) -> Tariffs:
    """Read the tariff CSV, the barème CSV (default: beside it) and the metadata sidecar.

    Raises
    ------
    ConfigError
        Missing file/column/tariff id, a value that is not a number, a negative price, a
        barème that is not a complete grid.
    """
    path = require(path)
    bareme_path = require(bareme_path or path.parent / BAREME_PATH.name)
    meta_path = require(meta_path or path.parent / TARIFFS_META_PATH.name)
    meta = read_meta(meta_path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in ("tariff_id", "value", "unit", "source", "date"):
        if c not in df.columns:
            raise ConfigError(f"{path}: missing column {c}")
    vals = pd.to_numeric(df["value"].str.strip(), errors="coerce")
    if vals.isna().any():
        i = int(np.argmax(vals.isna().to_numpy()))
        raise ConfigError(f"{path}: line {i + 2}: value {df['value'].iloc[i]!r} is not a number")
    if (vals < 0).any():
        raise ConfigError(f"{path}: negative tariff value")
    if (df["source"].str.strip() == "").any():
        raise ConfigError(f"{path}: every tariff needs a source")
    df["value"] = vals.astype("float64")
    if df["tariff_id"].duplicated().any():
        raise ConfigError(f"{path}: duplicate tariff_id")
    missing = sorted(set(REQUIRED_IDS) - set(df["tariff_id"]))
    if missing:
        raise ConfigError(f"{path}: missing tariff(s) {missing}")
    b = pd.read_csv(bareme_path, dtype=str, keep_default_na=False)
    for c in ("cv_max", "km_max", "rate_eur_per_km", "fixed_eur"):
        if c not in b.columns:
            raise ConfigError(f"{bareme_path}: missing column {c}")
        b[c] = pd.to_numeric(b[c].str.strip(), errors="coerce")
        if b[c].isna().any():
            raise ConfigError(f"{bareme_path}: non-numeric value in {c}")
    b = b.sort_values(["cv_max", "km_max"]).reset_index(drop=True)
    if not np.isinf(b["cv_max"].max()) or not b.groupby("cv_max")["km_max"].max().map(np.isinf).all():
        raise ConfigError(f"{bareme_path}: the grid must end with cv_max=inf and km_max=inf bands")
    return Tariffs(df.set_index("tariff_id", drop=False), b, meta,
                   content_version(str(meta["version"]), [path, bareme_path, meta_path]))


def bikeshare_fare(duration_s, tariffs: Tariffs) -> np.ndarray:
    """Bike-share price (EUR) of rentals lasting ``duration_s`` seconds.

    Free up to and including ``bikeshare_free_min``; ``bikeshare_to_60min`` up to 60 min;
    ``bikeshare_to_120min`` up to 120 min; then ``bikeshare_extra_hour`` per started hour.
    NaN durations give NaN.
    """
    d = np.asarray(duration_s, dtype="float64") / 60.0
    extra_h = np.ceil(np.maximum(d - 120.0, 0.0) / 60.0)
    fare = np.select(
        [d <= tariffs["bikeshare_free_min"], d <= 60.0, d <= 120.0],
        [0.0, tariffs["bikeshare_to_60min"], tariffs["bikeshare_to_120min"]],
        default=tariffs["bikeshare_to_120min"] + extra_h * tariffs["bikeshare_extra_hour"],
    )
    return np.where(np.isnan(d), np.nan, fare)


def bareme_annual_cost(annual_km, fiscal_hp, electric, tariffs: Tariffs) -> np.ndarray:
    """Full annual car cost (EUR) of the French barème kilométrique.

    Parameters
    ----------
    annual_km : array-like
        Kilometres driven per year (d).
    fiscal_hp : array-like
        Fiscal horsepower (CV); NaN uses ``bareme_default_cv``.
    electric : array-like of bool
        Electric cars get ``bareme_electric_uplift`` (+20 %).
    """
    d = np.asarray(annual_km, dtype="float64")
    cv = np.asarray(fiscal_hp, dtype="float64")
    cv = np.where(np.isnan(cv), tariffs["bareme_default_cv"], cv)
    b = tariffs.bareme
    cv_levels = np.sort(b["cv_max"].unique())
    cv_band = cv_levels[np.clip(np.searchsorted(cv_levels, cv, side="left"), 0, len(cv_levels) - 1)]
    cost = np.full(d.shape, np.nan)
    for level in cv_levels:
        rows = b[b["cv_max"] == level].sort_values("km_max")
        sel = cv_band == level
        if not sel.any():
            continue
        i = np.clip(np.searchsorted(rows["km_max"].to_numpy(), d[sel], side="left"), 0, len(rows) - 1)
        cost[sel] = d[sel] * rows["rate_eur_per_km"].to_numpy()[i] + rows["fixed_eur"].to_numpy()[i]
    uplift = np.where(np.asarray(electric, dtype=bool), 1.0 + tariffs["bareme_electric_uplift"], 1.0)
    return cost * uplift


def bareme_cost_per_km(annual_km, fiscal_hp, electric, tariffs: Tariffs) -> np.ndarray:
    """Barème cost per kilometre (EUR/km) = annual cost / annual km (NaN when km <= 0)."""
    d = np.asarray(annual_km, dtype="float64")
    cost = bareme_annual_cost(d, fiscal_hp, electric, tariffs)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, cost / d, np.nan)
