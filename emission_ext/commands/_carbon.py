"""Shared plumbing of the carbon commands (``footprint``, ``advice``, ``export-carbon``).

Why: the three commands read the same tables from the store, accept the same data-file and
method options, and compute the footprint the same way; keeping that here keeps each command
module a thin shell. The footprint is computed from the stored sections at each call, so the
options (construction, car-cost method, another factor or tariff file) always apply.
"""
from __future__ import annotations

from dataclasses import dataclass

import click
import pandas as pd

from ..errors import ConfigError
from ..runner import user_tz
from ..stores.base import Store


def carbon_options(fn):
    """Add ``--with-construction``, ``--car-cost``, ``--occupancy``, ``--factors``, ``--tariffs``."""
    opts = [
        click.option("--tariffs", "tariffs_path", type=click.Path(dir_okay=False, exists=True), default=None,
                     metavar="CSV", help="Tariff file [default: the shipped carbon/data/tariffs.csv]."),
        click.option("--factors", "factors_path", type=click.Path(dir_okay=False, exists=True), default=None,
                     metavar="CSV", help="Emission factor file [default: the shipped one]."),
        click.option("--occupancy", type=click.FloatRange(min=1.0), default=1.0, show_default=True,
                     help="People per car (car-pooling divides the car's CO2e)."),
        click.option("--car-cost", "car_cost", type=click.Choice(["running", "bareme"]), default="running",
                     show_default=True, help="Own car: energy cost, or the full-cost barème kilométrique."),
        click.option("--with-construction", "construction", is_flag=True,
                     help="Include vehicle construction in the CO2e (default: without, as ADEME's API)."),
    ]
    for o in opts:
        fn = o(fn)
    return fn


@dataclass
class CarbonInputs:
    """What a carbon command reads from the store."""

    sections: pd.DataFrame
    records: pd.DataFrame
    testers: pd.DataFrame
    trips: pd.DataFrame


def read_inputs(st: Store, users: list[str] | None, with_trips: bool = False) -> CarbonInputs:
    """Sections, records, testers (and trips) of ``users`` (all when None). Testers missing
    from the store get a profile with their time zone only."""
    sections = st.read("sections", users)
    records = st.read("records", users)
    testers = st.read("testers", users)
    known = set(testers["user_id"].astype(str)) if len(testers) else set()
    missing = sorted(set(sections["user_id"].astype(str)) - known)
    if missing:
        extra = pd.DataFrame({"user_id": missing, "tz": [user_tz(st, u) for u in missing]})
        testers = pd.concat([testers, extra], ignore_index=True) if len(testers) else extra
    trips = st.read("trips", users) if with_trips else pd.DataFrame()
    return CarbonInputs(sections, records, testers, trips)


def footprint_of(data: CarbonInputs, construction: bool, occupancy: float, car_cost: str,
                 factors_path: str | None, tariffs_path: str | None):
    """(footprint, factors, tariffs) for the inputs with the command's options."""
    from carbon.cost import CostParams
    from carbon.factors import FACTORS_PATH, FactorParams, load_factors
    from carbon.footprint import FootprintParams, compute_footprint
    from carbon.tariffs import TARIFFS_PATH, load_tariffs

    factors = load_factors(factors_path or FACTORS_PATH)
    tariffs = load_tariffs(tariffs_path or TARIFFS_PATH)
    params = FootprintParams(factors=FactorParams(include_construction=construction, car_occupancy=occupancy),
                             cost=CostParams(car_cost_method=car_cost))
    fp = compute_footprint(data.sections, data.testers, factors, tariffs,
                           data.records if len(data.records) else None, params)
    return fp, factors, tariffs


def require_user(st: Store, user_id: str) -> None:
    """Raise :class:`ConfigError` unless the store has sections for ``user_id``."""
    if user_id not in st.users("sections"):
        known = st.users("points")
        hint = " (run `emission-ext run` first)" if user_id in known else ""
        raise ConfigError(f"unknown user {user_id!r}: no sections in the store{hint}")
