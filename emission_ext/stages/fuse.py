"""Stage ``fuse``: attach the user's operator records to their sections and refine modes.

Why: the runner applies :func:`pipeline.fusion.fuse` per user after segmentation and mode
classification: sections get the modes the records prove (split where the GPS missed a mode
change), record-only trips are added, and conflicts are kept for review.

Outputs: ``trips`` and ``sections`` (replaced: later stages and readers expect the fused ones),
``records`` (the same rows with their ``trip_id``/``section_id``) and the auxiliary table
``conflicts``. Rewriting ``records`` is safe because ``emission-ext ingest`` appends a user's
records under the same per-user lock the runner holds while it processes that user.
"""
from __future__ import annotations

import pandas as pd

NAME = "fuse"
VERSION = "2"
INPUTS = ("trips", "sections", "records", "labelled_points")
OUTPUTS = ("trips", "sections", "records", "conflicts")


def available() -> str | None:
    """``None`` when :mod:`pipeline.fusion` can be imported, else why not."""
    try:
        from pipeline.fusion import fuse  # noqa: F401
    except ImportError as exc:
        return f"pipeline.fusion not importable ({exc})"
    return None


def _route_stops():
    """The stops of each route of the shipped Yélo GTFS (where a validated ride can end)."""
    from emission_ext.reference import load_gtfs
    from pipeline.fusion import route_stops

    return route_stops(load_gtfs(tables=("trips", "stops", "stop_times")))


def run(inputs: dict[str, pd.DataFrame], ctx) -> dict[str, pd.DataFrame]:
    """Fuse one user's records with their trips and sections.

    Parameters
    ----------
    inputs : dict of DataFrame
        ``trips``, ``sections`` (schema tables, from the previous stages), ``records``
        (schema ``records``, from ``emission-ext ingest``) and ``labelled_points`` (the
        segmentation's clean points: where the phone's speed rises and drops around a
        record, and whether the phone recorded anything after it; optional).
        The stops of each line of the shipped GTFS (where a bus ride can end) are loaded once
        per worker through ``ctx.resource``.
    ctx : StageContext
        ``ctx.param("fuse")`` may hold a :class:`pipeline.fusion.FusionParams` or a dict of
        its fields.

    Returns
    -------
    dict of DataFrame
        ``trips``, ``sections``, ``records``, ``conflicts``.
    """
    from pipeline.fusion import FusionParams, fuse

    p = ctx.param(NAME)
    if isinstance(p, dict):
        p = FusionParams(**p)
    res = fuse(inputs["trips"], inputs["sections"], inputs["records"], p or FusionParams(),
               points=inputs.get("labelled_points"), stops=ctx.resource("route_stops", _route_stops))
    conflicts = res.conflicts.copy()
    if not len(conflicts):
        conflicts = conflicts.assign(user_id=pd.Series([], dtype=object))
    return {"trips": res.trips, "sections": res.sections, "records": res.records,
            "conflicts": conflicts}
