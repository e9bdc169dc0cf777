"""End-to-end scores of a pipeline run against a synthetic world's ground truth.

Why: the demo (and anyone who runs the whole chain on a synthetic world) wants one honest
answer to "how right was it?": trips found, modes right, operator records attached, carbon
close to the truth. Trip matching reuses :func:`emission_ext.evaluation.segmentation.score_trips`;
sections are scored by time overlap. Pure: frames in, numbers out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emission_ext import schema

from .segmentation import overlap_pairs


@dataclass(frozen=True)
class ModeScore:
    """Share of true sections (and of their duration) whose best-overlapping predicted section
    has the true mode. ``n`` true sections were scored; ``covered`` had an overlapping one."""

    n: int
    covered: int
    accuracy: float
    duration_accuracy: float


def best_overlap(pred: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """For each true section, the predicted section of the same user overlapping it the most.

    Parameters
    ----------
    pred, truth : DataFrame
        Sections with ``user_id``, ``section_id``, ``start_ts``, ``end_ts``, ``mode``.

    Returns
    -------
    DataFrame
        One row per true section (truth's index): ``true_mode``, ``pred_mode`` and
        ``pred_section_id`` (null when no predicted section overlaps), ``overlap_s`` and
        ``duration_s`` (of the true section), in seconds.
    """
    n = len(truth)
    pred_mode = np.full(n, None, dtype=object)
    pred_id = np.full(n, None, dtype=object)
    overlap = np.zeros(n)
    ti, pi, ov = overlap_pairs(truth, pred)
    if len(ti):
        best = pd.DataFrame({"t": ti, "p": pi, "ov": ov}).sort_values(
            ["t", "ov", "p"], ascending=[True, False, True]).drop_duplicates("t")
        t, p = best["t"].to_numpy(), best["p"].to_numpy()
        overlap[t] = best["ov"].to_numpy()
        pred_mode[t] = pred["mode"].astype(str).to_numpy()[p]
        pred_id[t] = pred["section_id"].astype(str).to_numpy()[p]
    return pd.DataFrame({"true_mode": truth["mode"].astype(str).to_numpy(), "pred_mode": pred_mode,
                         "pred_section_id": pred_id, "overlap_s": overlap,
                         "duration_s": schema.to_unix(truth["end_ts"]) - schema.to_unix(truth["start_ts"])},
                        index=truth.index)


def mode_score(pred: pd.DataFrame, truth: pd.DataFrame) -> ModeScore:
    """Section mode agreement (see :class:`ModeScore`); no overlap counts as wrong."""
    b = best_overlap(pred, truth)
    if b.empty:
        return ModeScore(0, 0, float("nan"), float("nan"))
    right = (b["pred_mode"] == b["true_mode"]).to_numpy()
    dur = b["duration_s"].to_numpy()
    return ModeScore(len(b), int(b["pred_mode"].notna().sum()), float(right.mean()),
                     float((dur * right).sum() / dur.sum()) if dur.sum() > 0 else float("nan"))


def record_attachment(records: pd.DataFrame, record_truth: pd.DataFrame, pred_sections: pd.DataFrame,
                      truth_sections: pd.DataFrame) -> tuple[int, int]:
    """How many records were attached to the predicted section that best covers their true
    section: ``(right, scored)``. Only records whose trip the phone recorded are scored."""
    rt = record_truth.dropna(subset=["section_id"])
    if rt.empty:
        return 0, 0
    b = best_overlap(pred_sections, truth_sections)
    want = pd.DataFrame({"user_id": truth_sections["user_id"].astype(str).to_numpy(),
                         "section_id": truth_sections["section_id"].astype(str).to_numpy(),
                         "want": b["pred_section_id"].to_numpy()})
    got = records[["source", "record_id", "section_id"]].rename(columns={"section_id": "got"})
    m = (rt.astype({"user_id": str, "section_id": str})
         .merge(want, on=["user_id", "section_id"], how="left")
         .merge(got.astype({"record_id": str}), on=["source", "record_id"], how="left"))
    right = m["got"].notna() & (m["got"].astype(str) == m["want"].astype(str))
    return int(right.sum()), len(m)
