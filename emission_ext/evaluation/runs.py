"""Evaluation runs: read a reference, segment the raw data, score per day and overall.

Why: the ``evaluate segmentation`` command and the tests share these two runs, the real
e-mission days (their ``*.ground_truth.json.gz`` is e-mission's own output) and a synthetic
world with exact truth. This module does the file reading; the scoring is pure
(:mod:`emission_ext.evaluation.segmentation`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emission_ext.errors import InputError

from .segmentation import (TripScore, match_trips, predicted_boundaries_near,
                           read_emission_ground_truth, section_boundary_hits)


def _segment(raw):
    from pipeline.segment import segment_user

    from emission_ext.models.apply import transit_index

    pts = raw.points
    if raw.tz:
        pts = pts.assign(tz=pts["user_id"].map(raw.tz))
    return segment_user(pts, raw.motion if len(raw.motion) else None,
                        raw.transitions if len(raw.transitions) else None,
                        transit=transit_index(), codes=raw.user_codes)  # same rows, same codes


def real_days(reference_dir: str | Path) -> tuple[pd.DataFrame, TripScore]:
    """Score our trips on every e-mission day of ``reference_dir`` against its ground truth.

    Parameters
    ----------
    reference_dir : path
        Folder with ``<day>.json.gz`` raw exports and ``<day>.ground_truth.json.gz``.

    Returns
    -------
    per_day : DataFrame
        ``day, n_pred, n_ref, matched, precision, recall, f1, median_start_err_s,
        median_end_err_s, note`` (days without ground truth are listed with a note).
    overall : TripScore
        Pooled over the days that have ground truth.
    """
    from emission_ext.io.readers import read

    ref = Path(reference_dir)
    if not ref.is_dir():
        raise InputError(str(ref), "reference folder not found")
    days = sorted(p for p in ref.glob("*.json.gz")
                  if not p.name.endswith((".ground_truth.json.gz", ".user_inputs.json.gz")))
    if not days:
        raise InputError(str(ref), "no e-mission day (*.json.gz) in the reference folder")
    rows, n_pred, n_ref, se, ee = [], 0, 0, [], []
    for day in days:
        name = day.name[: -len(".json.gz")]
        raw = read(day, fmt="emission")
        res = _segment(raw)
        trips = res["trips"].assign(user_id=name)
        gt_path = day.with_name(f"{name}.ground_truth.json.gz")
        if not gt_path.exists():
            rows.append({"day": name, "n_pred": len(trips), "n_ref": np.nan,
                         "note": "no ground truth file"})
            continue
        gt, _ = read_emission_ground_truth(gt_path, user_id=name)
        m = match_trips(trips, gt)
        sc = TripScore.from_counts(len(trips), len(gt), m["start_err_s"], m["end_err_s"])
        n_pred += len(trips)
        n_ref += len(gt)
        se.extend(m["start_err_s"])
        ee.extend(m["end_err_s"])
        rows.append({"day": name, **sc.__dict__, "note": ""})
    return pd.DataFrame(rows), TripScore.from_counts(n_pred, n_ref, se, ee)


def synthetic(world_dir: str | Path, tolerance_s: float = 60.0) -> dict:
    """Score on a synthetic world written by :func:`emission_ext.synth.write_world`.

    Reads ``emission/*.json.gz`` (both platforms as the phones would upload them) and
    ``truth/trips.csv``, ``truth/sections.csv``.

    Returns
    -------
    dict
        ``trips``: :class:`TripScore` over the trips the phone could see (truth trips flagged
        ``phone_off`` left no data and are counted in ``unobservable_trips`` instead);
        ``boundary_hits``, ``boundary_total``,
        ``boundary_share``: true mode changes with a predicted section boundary within
        ``tolerance_s``; ``boundary_hits_with_edges``, ``boundary_share_with_edges``: the same
        when predicted trip starts and ends count as boundaries too (see
        :func:`~emission_ext.evaluation.segmentation.section_boundary_hits`); ``per_platform``: DataFrame of trip scores per platform when
        ``truth/testers.csv`` gives it.
    """
    from emission_ext import schema
    from emission_ext.io.readers import read

    world = Path(world_dir)
    files = sorted((world / "emission").glob("*.json*"))
    if not files:
        raise InputError(str(world), "no emission/*.json.gz in the synthetic world folder")
    truth_trips = pd.read_csv(world / "truth" / "trips.csv", dtype={"user_id": str})
    truth_secs = pd.read_csv(world / "truth" / "sections.csv", dtype={"user_id": str})
    # trips made while the phone was off left no data: scored separately, not as misses
    unobservable = 0
    if "phone_off" in truth_trips.columns:
        off = truth_trips["phone_off"].astype(str).str.lower().isin(("true", "1"))
        unobservable = int(off.sum())
        off_ids = set(truth_trips.loc[off, "trip_id"])
        truth_trips = truth_trips.loc[~off]
        truth_secs = truth_secs.loc[~truth_secs["trip_id"].isin(off_ids)]
    truth_trips = schema.coerce(truth_trips, "trips")
    truth_secs = schema.coerce(truth_secs, "sections")
    pred_trips, pred_secs = [], []
    for f in files:
        raw = read(f, fmt="emission", user_id=f.name.split(".")[0])
        res = _segment(raw)
        pred_trips.append(res["trips"])
        pred_secs.append(res["sections"])
    pt = pd.concat(pred_trips, ignore_index=True)
    ps = pd.concat(pred_secs, ignore_index=True)
    m = match_trips(pt, truth_trips)
    score = TripScore.from_counts(len(pt), len(truth_trips), m["start_err_s"], m["end_err_s"])
    hits, total = section_boundary_hits(ps, truth_secs, tolerance_s)
    hits_e, _ = section_boundary_hits(ps, truth_secs, tolerance_s, pred_trips=pt)
    near, n_pred_b = predicted_boundaries_near(ps, truth_secs, tolerance_s)
    out = {"trips": score, "boundary_hits": hits, "boundary_total": total,
           "boundary_share": hits / total if total else float("nan"),
           "boundary_hits_with_edges": hits_e,
           "boundary_share_with_edges": hits_e / total if total else float("nan"),
           "pred_boundaries_near": near, "pred_boundaries": n_pred_b,
           "pred_boundary_share": near / n_pred_b if n_pred_b else float("nan"),
           "unobservable_trips": unobservable}
    testers = world / "truth" / "testers.csv"
    if testers.exists():
        plat = pd.read_csv(testers, dtype={"user_id": str}).set_index("user_id")["platform"]
        rows = []
        for name, users in plat.groupby(plat).groups.items():
            a = pt[pt["user_id"].isin(users)]
            b = truth_trips[truth_trips["user_id"].isin(users)]
            mm = match_trips(a, b)
            rows.append({"platform": name, **TripScore.from_counts(
                len(a), len(b), mm["start_err_s"], mm["end_err_s"]).__dict__})
        out["per_platform"] = pd.DataFrame(rows)
    return out
