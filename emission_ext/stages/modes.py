"""Stage ``modes``: a user's segmented sections -> the same sections with their travel mode.

Why: the second step of a run. It computes the section features (with the Yélo GTFS transit
features) and applies the shipped mode classifier, or the rule fallback when no model is
shipped (``mode_source`` then says ``rule``). The transit index and the model are loaded once
per worker process through ``ctx.resource``. Parameters: ``params["modes"]`` may be a dict
with ``model`` (a model file path, or None for the rules) and ``gtfs`` (another GTFS zip).
The model file's modification time is part of VERSION, so shipping a new model redoes
every user.
"""
from __future__ import annotations

import pandas as pd

NAME = "modes"
INPUTS = ("sections", "labelled_points", "motion")
OUTPUTS = ("sections",)


def _version() -> str:
    from emission_ext.models import DEFAULT_MODEL_PATH, MODEL_FORMAT_VERSION

    stamp = int(DEFAULT_MODEL_PATH.stat().st_mtime) if DEFAULT_MODEL_PATH.exists() else "rules"
    return f"1|{MODEL_FORMAT_VERSION}|{stamp}"


VERSION = _version()


def available() -> str | None:
    """``None`` when the features, classifier and reference data can be loaded."""
    try:
        from emission_ext.reference import GTFS_PATH
        from pipeline.features import section_features  # noqa: F401
        from pipeline.modes import classify_sections  # noqa: F401

        if not GTFS_PATH.exists():
            return f"GTFS feed missing: {GTFS_PATH}"
    except ImportError as exc:
        return f"mode classifier not importable ({exc})"
    return None


def run(inputs: dict[str, pd.DataFrame], ctx) -> dict[str, pd.DataFrame]:
    """Classify one user's sections.

    Parameters
    ----------
    inputs : dict of DataFrame
        ``sections`` and ``labelled_points`` from the ``segment`` stage, ``motion`` (may be
        empty).
    ctx : StageContext
        ``ctx.tz`` for the hour-of-day features; ``ctx.param("modes")`` as described above.

    Returns
    -------
    dict
        ``sections`` with ``mode``, ``mode_confidence``, ``mode_source`` set.
    """
    from emission_ext.models import load_model
    from emission_ext.models.apply import apply_modes, transit_index

    p = dict(ctx.param(NAME) or {})
    model_path = p.get("model", "default")
    gtfs = p.get("gtfs")
    transit = ctx.resource(f"transit_index:{gtfs}", lambda: transit_index(gtfs))
    model = (None if model_path is None else
             ctx.resource(f"mode_model:{model_path}",
                          lambda: load_model(None if model_path == "default" else model_path)))
    sections = inputs["sections"]
    if len(sections) == 0:
        return {"sections": sections}
    out = apply_modes(sections, inputs["labelled_points"], inputs.get("motion"), tz=ctx.tz,
                      model=model, transit=transit)
    return {"sections": out}
