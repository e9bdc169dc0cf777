"""Stage ``segment``: raw points -> cleaned points, places, trips and sections for one user.

Why: the first step of every run. It wraps :func:`pipeline.segment.segment_user` (cleaning,
trip and section segmentation) so the runner can apply it per user and store its results:
the schema tables ``places``, ``trips`` and ``sections``, plus two auxiliary tables later
stages need: ``labelled_points`` (clean points with their ``trip_id``/``section_id``, input of
the mode features) and ``removed_points`` (what cleaning dropped and why).
"""
from __future__ import annotations

import pandas as pd

from ..errors import ConfigError

NAME = "segment"
VERSION = "1"
INPUTS = ("points", "motion", "transitions")
OUTPUTS = ("places", "trips", "sections", "labelled_points", "removed_points")


def available() -> str | None:
    """``None`` when :mod:`pipeline.segment` can be imported, else why not."""
    try:
        from pipeline.segment import segment_user  # noqa: F401
    except ImportError as exc:
        return f"pipeline.segment.segment_user not importable ({exc})"
    return None


def run(inputs: dict[str, pd.DataFrame], ctx) -> dict[str, pd.DataFrame]:
    """Segment one user's points.

    Parameters
    ----------
    inputs : dict of DataFrame
        ``points`` (schema ``points``), ``motion`` and ``transitions`` (may be empty).
    ctx : StageContext
        ``ctx.tz`` becomes the ``tz`` of the user's places and trips; ``ctx.param("segment")``
        may hold a :class:`pipeline.segment.SegmentParams`.

    Returns
    -------
    dict of DataFrame
        ``places``, ``trips``, ``sections``, ``labelled_points``, ``removed_points``.
    """
    from pipeline.segment import SegmentParams, segment_user

    params = ctx.param(NAME)
    if params is None:
        params = SegmentParams()
    elif not isinstance(params, SegmentParams):
        raise ConfigError(f"params['{NAME}'] must be a pipeline.segment.SegmentParams, "
                          f"got {type(params).__name__}")
    points = inputs["points"]
    if "tz" not in points.columns:
        points = points.assign(tz=ctx.tz)
    motion = inputs.get("motion")
    transitions = inputs.get("transitions")
    from emission_ext.models.apply import transit_index

    # the same resource as the modes stage's default feed: ferry crossings are found by position
    transit = ctx.resource("transit_index:None", lambda: transit_index(None))
    res = segment_user(points, transit=transit,
                       motion=motion if motion is not None and len(motion) else None,
                       transitions=transitions if transitions is not None and len(transitions) else None,
                       params=params)
    removed = res.get("removed")
    if removed is None:
        removed = points.iloc[0:0]
    labelled = res["labelled_points"]
    return {
        "places": res["places"],
        "trips": res["trips"],
        "sections": res["sections"],
        "labelled_points": labelled.drop(columns=["tz"], errors="ignore"),
        "removed_points": removed.drop(columns=["tz"], errors="ignore"),
    }
