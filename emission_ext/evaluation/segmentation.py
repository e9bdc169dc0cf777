"""Scoring trip and section segmentation against a reference.

Why: "correct on real phones" needs a number. A predicted trip matches a reference trip when
their time intervals overlap by at least half of their union (intersection over union
>= 0.5); each trip matches at most once (best IoU first). From the matches come precision,
recall, F1 and the start/end time errors. Section boundaries are scored separately: the share
of true mode changes with a predicted section boundary within a tolerance. Everything here is
pure (frames in, numbers out); :func:`read_emission_ground_truth` is the one reader, of
e-mission's ``*.ground_truth.json.gz`` files.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emission_ext import schema
from emission_ext.errors import InputError


@dataclass(frozen=True)
class TripScore:
    """Trip-level scores. Errors in seconds (NaN without matches)."""

    n_pred: int
    n_ref: int
    matched: int
    precision: float
    recall: float
    f1: float
    median_start_err_s: float
    median_end_err_s: float

    @classmethod
    def from_counts(cls, n_pred: int, n_ref: int, start_err, end_err) -> "TripScore":
        m = len(start_err)
        p = m / n_pred if n_pred else (1.0 if n_ref == 0 else 0.0)
        r = m / n_ref if n_ref else (1.0 if n_pred == 0 else 0.0)
        f1 = 2 * m / (n_pred + n_ref) if (n_pred + n_ref) else 1.0
        med = (lambda v: float(np.median(v)) if len(v) else float("nan"))
        return cls(n_pred, n_ref, m, p, r, f1, med(start_err), med(end_err))


def _interval_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return schema.to_unix(df["start_ts"]), schema.to_unix(df["end_ts"])


def overlap_pairs(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of rows of ``a`` and ``b`` of the same user whose time intervals overlap.

    Parameters
    ----------
    a, b : DataFrame
        With ``user_id``, ``start_ts``, ``end_ts`` (trips or sections).

    Returns
    -------
    (ai, bi, overlap_s) : arrays
        Positional row indexes into ``a`` and ``b`` and the overlap of each pair, seconds (> 0).
        A sweep over intervals sorted by (user, start): no ``len(a) x len(b)`` matrix.
    """
    if len(a) == 0 or len(b) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    a0, a1 = _interval_arrays(a)
    b0, b1 = _interval_arrays(b)
    users = pd.Index(pd.unique(np.concatenate([a["user_id"].astype(str).to_numpy(dtype=object),
                                               b["user_id"].astype(str).to_numpy(dtype=object)])))
    au = users.get_indexer(a["user_id"].astype(str).to_numpy(dtype=object)).astype("float64")
    bu = users.get_indexer(b["user_id"].astype(str).to_numpy(dtype=object)).astype("float64")
    span = 1e10  # seconds: puts each user's intervals on its own stretch of one time line
    base = float(np.nanmin(np.concatenate([a0, b0])))
    kb0, kb1 = bu * span + b0 - base, bu * span + b1 - base
    order = np.argsort(kb0, kind="stable")
    k0 = kb0[order]
    k1 = np.maximum.accumulate(kb1[order])  # b rows before `lo` all end before a starts
    lo = np.searchsorted(k1, au * span + a0 - base, side="left")
    hi = np.searchsorted(k0, au * span + a1 - base, side="right")
    cnt = np.maximum(hi - lo, 0)
    ai = np.repeat(np.arange(len(a)), cnt)
    bi = order[np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))]
    ov = np.minimum(a1[ai], b1[bi]) - np.maximum(a0[ai], b0[bi])
    ok = (ov > 0) & (au[ai] == bu[bi])
    return ai[ok], bi[ok], ov[ok]


def match_trips(pred: pd.DataFrame, ref: pd.DataFrame, min_iou: float = 0.5) -> pd.DataFrame:
    """Match predicted to reference trips of the same user by time IoU.

    Parameters
    ----------
    pred, ref : DataFrame
        With ``user_id``, ``start_ts``, ``end_ts`` (UTC timestamps).
    min_iou : float
        Minimum intersection over union of the two time intervals.

    Returns
    -------
    DataFrame
        One row per match: ``pred_idx``, ``ref_idx`` (positional), ``iou``,
        ``start_err_s``, ``end_err_s`` (absolute, seconds).
    """
    cols = ["pred_idx", "ref_idx", "iou", "start_err_s", "end_err_s"]
    if len(pred) == 0 or len(ref) == 0:
        return pd.DataFrame({c: pd.Series([], dtype="float64") for c in cols})
    ps, pe = _interval_arrays(pred)
    rs, re_ = _interval_arrays(ref)
    pi, rj, inter = overlap_pairs(pred, ref)  # same user, overlapping
    union = np.maximum(pe[pi], re_[rj]) - np.minimum(ps[pi], rs[rj])
    iou = inter / union
    ok = iou >= min_iou
    pi, rj, iou = pi[ok], rj[ok], iou[ok]
    # greedy one-to-one, best IoU first (with IoU >= 0.5 a trip can overlap that much with
    # at most a couple of others, so this is a handful of candidates)
    best = np.argsort(-iou, kind="stable")
    used_p, used_r, rows = set(), set(), []
    for k in best:  # over candidate pairs, not points
        a, b = int(pi[k]), int(rj[k])
        if a in used_p or b in used_r:
            continue
        used_p.add(a), used_r.add(b)
        rows.append((a, b, float(iou[k]), abs(ps[a] - rs[b]), abs(pe[a] - re_[b])))
    return pd.DataFrame(rows, columns=cols)


def score_trips(pred: pd.DataFrame, ref: pd.DataFrame, min_iou: float = 0.5) -> TripScore:
    """Precision, recall, F1 and median start/end errors of ``pred`` against ``ref``."""
    m = match_trips(pred, ref, min_iou)
    return TripScore.from_counts(len(pred), len(ref), m["start_err_s"].to_numpy(),
                                 m["end_err_s"].to_numpy())


def section_boundary_hits(pred_sections: pd.DataFrame, ref_sections: pd.DataFrame,
                          tolerance_s: float = 60.0, pred_trips: pd.DataFrame | None = None
                          ) -> tuple[int, int]:
    """How many true mode changes have a predicted section boundary within ``tolerance_s``.

    A true mode change is the start of a reference section that follows a section of another
    mode in the same trip. A predicted boundary is the start of any predicted section that is
    not the first of its trip.

    With ``pred_trips`` the start and end of every predicted trip count as boundaries too
    (the "with trip edges" definition). A phone that wakes only once the bus moves (the walk
    to the stop stayed inside its geofence) or that stops reporting as the tester alights
    leaves no fix of the walk: the predicted trip then starts or ends at the mode change, which
    is the change found, though not a section boundary of the first definition. A trip wrongly
    split at a change also scores here, and is paid for in the trip F1 instead. Both
    definitions are reported side by side.

    Returns
    -------
    (hits, total) : tuple of int
    """
    ru, rt = _boundaries(ref_sections, True)
    pu, pt = _boundaries(pred_sections, False)
    if pred_trips is not None and len(pred_trips):
        tu = pred_trips["user_id"].astype(str).to_numpy()
        pu = np.concatenate([pu, tu, tu])
        pt = np.concatenate([pt, schema.to_unix(pred_trips["start_ts"]),
                             schema.to_unix(pred_trips["end_ts"])])
    return _near_count(ru, rt, pu, pt, tolerance_s), int(rt.size)


def predicted_boundaries_near(pred_sections: pd.DataFrame, ref_sections: pd.DataFrame,
                              tolerance_s: float = 60.0) -> tuple[int, int]:
    """How many predicted section boundaries lie within ``tolerance_s`` of a true mode change.

    The precision side of :func:`section_boundary_hits` (same definitions: a predicted
    boundary is the start of a predicted section that is not the first of its trip; a true
    change is the start of a reference section after one of another mode in its trip). A
    boundary far from every true change is a false cut (a bus stop read as a walk).

    Returns
    -------
    (near, total) : tuple of int
        Predicted boundaries near a true change, and all predicted boundaries.
    """
    ru, rt = _boundaries(ref_sections, True)
    pu, pt = _boundaries(pred_sections, False)
    return _near_count(pu, pt, ru, rt, tolerance_s), int(pt.size)


def _boundaries(df: pd.DataFrame, need_mode_change: bool) -> tuple[np.ndarray, np.ndarray]:
    """User and unix start (s) of every section that is not the first of its trip (and, with
    ``need_mode_change``, whose mode differs from the previous section's)."""
    if len(df) == 0:
        return np.empty(0, dtype=object), np.empty(0)
    d = df.sort_values(["user_id", "trip_id", "start_ts"], kind="stable")
    same_trip = (d["trip_id"].to_numpy() == np.r_[None, d["trip_id"].to_numpy()[:-1]]) & \
                (d["user_id"].to_numpy() == np.r_[None, d["user_id"].to_numpy()[:-1]])
    keep = same_trip
    if need_mode_change:
        keep &= d["mode"].to_numpy() != np.r_[None, d["mode"].to_numpy()[:-1]]
    return d["user_id"].astype(str).to_numpy()[keep], schema.to_unix(d["start_ts"])[keep]


def _near_count(ru: np.ndarray, rt: np.ndarray, pu: np.ndarray, pt: np.ndarray,
                tolerance_s: float) -> int:
    """How many of the times ``rt`` (users ``ru``) have a time of ``pt`` (users ``pu``) of the
    same user within ``tolerance_s`` seconds."""
    if rt.size == 0:
        return 0
    hits = 0
    for u in np.unique(ru):  # per user, vectorised inside
        r = rt[ru == u]
        p = np.sort(pt[pu == u])
        if p.size == 0:
            continue
        j = np.searchsorted(p, r)
        after = np.abs(p[np.minimum(j, p.size - 1)] - r)
        before = np.abs(p[np.maximum(j - 1, 0)] - r)
        near = np.minimum(after, before)
        hits += int((near <= tolerance_s).sum())
    return hits


def read_emission_ground_truth(path: str | Path, user_id: str | None = None
                               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read an e-mission ``*.ground_truth.json.gz`` (its pipeline's output for one day).

    The file holds ``{"data": [trip FeatureCollection, ...]}``; each trip's properties carry
    ``start_ts``/``end_ts`` and nested FeatureCollections hold its sections (with
    ``sensed_mode`` such as ``MotionTypes.ON_FOOT``).

    Returns
    -------
    trips, sections : DataFrame
        ``user_id, trip_id, start_ts, end_ts, distance_m`` and
        ``user_id, trip_id, section_id, start_ts, end_ts, mode``.

    Raises
    ------
    InputError
        Unreadable or not a ground-truth document.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(str(path), f"cannot read ground truth: {exc}") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise InputError(str(path), "not an e-mission ground truth document (no 'data' list)")
    uid = user_id or path.name.split(".")[0]
    trips, sections = [], []
    for k, trip in enumerate(data):
        props = trip.get("properties", {}) if isinstance(trip, dict) else {}
        if "start_ts" not in props or "end_ts" not in props:
            raise InputError(str(path), "trip without start_ts/end_ts", line=k + 1)
        tid = f"gt{k}"
        trips.append((uid, tid, props["start_ts"], props["end_ts"], props.get("distance", np.nan)))
        for feat in trip.get("features", []):
            if feat.get("type") != "FeatureCollection":
                continue
            for s in feat.get("features", []):
                sp = s.get("properties", {})
                if sp.get("feature_type") != "section":
                    continue
                mode = str(sp.get("sensed_mode", "UNKNOWN")).split(".")[-1]
                sections.append((uid, tid, f"{tid}-s{len(sections)}", sp["start_ts"], sp["end_ts"], mode))
    t = pd.DataFrame(trips, columns=["user_id", "trip_id", "start_ts", "end_ts", "distance_m"])
    s = pd.DataFrame(sections, columns=["user_id", "trip_id", "section_id", "start_ts", "end_ts", "mode"])
    for df in (t, s):
        for c in ("start_ts", "end_ts"):
            df[c] = schema.from_unix(df[c].to_numpy(dtype="float64")).to_numpy()
    return t, s
