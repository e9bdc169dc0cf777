"""Monthly export to the cooperative carbon aggregator, with consent and a group threshold.

Why: La Rochelle's earlier carbon app sent, with the tester's consent, one record per month
``{"measureName": "co2-emissions-monthly", "startDate": "YYYY-MM-DD", "value": <kg CO2e>}``
to an aggregator that publishes a group only above a size threshold. This module builds those
records from the footprint: only testers in the consenting set, only testers with data in the
month (no data is not zero emissions), months in each tester's own time zone, and the group
total only when at least ``threshold`` testers contribute. ``value`` is the sum of the known
central CO2e; the part of the month that only has a range (unknown modes) is reported beside
the record, never folded into it as a guess. Consent comes in as a set of user ids (the
cooperative API owns consent; the CLI reads it from a file until that API exists).
"""
from __future__ import annotations

import re
from typing import Iterable

import pandas as pd

from emission_ext.errors import EmissionExtError

from ._files import local_naive

MEASURE_NAME = "co2-emissions-monthly"
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class AggregatorError(EmissionExtError):
    """Bad input to the aggregator export (month format, threshold)."""


def monthly_export(footprint: pd.DataFrame, sections: pd.DataFrame, testers: pd.DataFrame | None,
                   consenting: Iterable[str], month: str, threshold: int = 5,
                   decimals: int = 3) -> dict:
    """The aggregator payload for one month.

    Parameters
    ----------
    footprint, sections : DataFrame
        Footprint and sections (for start times) of any testers.
    testers : DataFrame or None
        For each tester's time zone (Europe/Paris when unknown).
    consenting : iterable of str
        User ids that consented to the export; everybody else is left out.
    month : str
        ``YYYY-MM``.
    threshold : int
        Minimum number of contributors for the group total to be published (>= 1).

    Returns
    -------
    dict
        ``{"month", "threshold", "contributors", "records": [{"user_id", "record":
        {"measureName", "startDate", "value"}, "unknown_kg_range": [low, high]}], "group":
        record or None, "group_withheld_reason": str or None}``. ``value`` in kg CO2e.
    """
    if not isinstance(month, str) or not _MONTH.match(month):
        raise AggregatorError(f"month must look like YYYY-MM, not {month!r}")
    if int(threshold) < 1:
        raise AggregatorError("threshold must be at least 1")
    start_date = f"{month}-01"
    consenting = {str(u) for u in consenting}
    out = {"month": month, "threshold": int(threshold), "contributors": 0, "records": [],
           "group": None, "group_withheld_reason": None}
    f = footprint[footprint["user_id"].astype(str).isin(consenting)]
    if len(f):
        f = f.merge(sections[["user_id", "section_id", "start_ts"]], on=["user_id", "section_id"], how="inner")
        tz = pd.Series(dtype=object)
        if testers is not None and len(testers) and "tz" in testers:
            tz = testers.drop_duplicates("user_id").set_index("user_id")["tz"]
        local = local_naive(f["start_ts"], f["user_id"].map(tz))
        f = f[(local.dt.to_period("M").astype(str) == month).to_numpy()]
    if len(f):
        unknown = f["co2e_kg"].isna()
        g = f.assign(lo_u=f["co2e_kg_low"].where(unknown, 0.0), hi_u=f["co2e_kg_high"].where(unknown, 0.0)) \
            .groupby("user_id", sort=True)
        per = pd.DataFrame({"kg": g["co2e_kg"].sum(), "lo": g["lo_u"].sum(), "hi": g["hi_u"].sum()})
        for uid, r in per.iterrows():  # one row per tester
            out["records"].append({
                "user_id": str(uid),
                "record": {"measureName": MEASURE_NAME, "startDate": start_date,
                           "value": round(float(r.kg), decimals)},
                "unknown_kg_range": [round(float(r.lo), decimals), round(float(r.hi), decimals)],
            })
        out["contributors"] = len(per)
        if len(per) >= int(threshold):
            out["group"] = {"measureName": MEASURE_NAME, "startDate": start_date,
                            "value": round(float(per["kg"].sum()), decimals)}
    if out["group"] is None:
        out["group_withheld_reason"] = (f"{out['contributors']} contributor(s), fewer than the threshold "
                                        f"of {int(threshold)}")
    return out
