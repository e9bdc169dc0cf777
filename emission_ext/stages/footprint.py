"""Stage ``footprint``: a user's sections (+ operator records, tester profile) -> the
``footprint`` table (kg CO2e and EUR per section, with factor and tariff versions).

Why: the last step of a run. It only adapts :func:`carbon.footprint.compute_footprint` to the
runner's contract; the factor and tariff files are loaded once per worker process through
``ctx.resource``. Parameters: ``params["footprint"]`` may be a
:class:`carbon.footprint.FootprintParams`, or a dict with ``include_construction``,
``car_occupancy``, ``car_cost_method``, ``factors_path``, ``tariffs_path``. The factor and
tariff versions are part of the stage's VERSION, so editing a data file redoes every user.
"""
from __future__ import annotations

import pandas as pd

NAME = "footprint"
INPUTS = ("sections", "records", "testers")
OUTPUTS = ("footprint",)


def _version() -> str:
    try:
        from carbon.factors import load_factors
        from carbon.tariffs import load_tariffs

        return f"1|{load_factors().version}|{load_tariffs().version}"
    except Exception:  # noqa: BLE001 - reported by available()
        return "1"


VERSION = _version()


def available() -> str | None:
    """``None`` when the carbon package and its data files load, else why not."""
    try:
        from carbon.factors import load_factors
        from carbon.tariffs import load_tariffs

        load_factors()
        load_tariffs()
    except Exception as exc:  # noqa: BLE001 - any failure makes the stage unavailable
        return f"carbon data not loadable ({exc})"
    return None


def _params(raw):
    from carbon.cost import CostParams
    from carbon.factors import FactorParams
    from carbon.footprint import FootprintParams

    if raw is None:
        return FootprintParams(), None, None
    if isinstance(raw, FootprintParams):
        return raw, None, None
    raw = dict(raw)
    fp = FootprintParams(
        factors=FactorParams(include_construction=bool(raw.get("include_construction", False)),
                             car_occupancy=float(raw.get("car_occupancy", 1.0))),
        cost=CostParams(car_cost_method=str(raw.get("car_cost_method", "running"))))
    return fp, raw.get("factors_path"), raw.get("tariffs_path")


def run(inputs: dict[str, pd.DataFrame], ctx) -> dict[str, pd.DataFrame]:
    """Compute the user's footprint.

    Parameters
    ----------
    inputs : dict of DataFrame
        ``sections``, ``records`` (may be empty), ``testers`` (the user's profile; may be empty).
    ctx : StageContext
        Gives the parameters (``ctx.param("footprint")``) and the per-process resources.

    Returns
    -------
    dict with ``footprint`` (schema ``footprint``).
    """
    from carbon.factors import FACTORS_PATH, load_factors
    from carbon.footprint import compute_footprint
    from carbon.tariffs import TARIFFS_PATH, load_tariffs

    params, fpath, tpath = _params(ctx.param(NAME))
    fpath, tpath = fpath or FACTORS_PATH, tpath or TARIFFS_PATH
    factors = ctx.resource(f"carbon.factors:{fpath}", lambda: load_factors(fpath))
    tariffs = ctx.resource(f"carbon.tariffs:{tpath}", lambda: load_tariffs(tpath))
    testers = inputs.get("testers")
    if testers is not None and len(testers) == 0:
        testers = None
    if testers is None:
        testers = pd.DataFrame({"user_id": [ctx.user_id], "tz": [ctx.tz]})
    records = inputs.get("records")
    return {"footprint": compute_footprint(inputs["sections"], testers, factors, tariffs,
                                           records if records is not None and len(records) else None,
                                           params)}
