"""Labelled section tables for training and evaluating the mode classifier.

Why: the classifier learns from, and is judged on, sections the product itself would produce.
Two sources are allowed (GeoLife is not: non-commercial licence):

* synthetic worlds (:func:`emission_ext.synth.generate_world`, several seeds): the phone
  points go through the real segmentation (:func:`pipeline.segment.segment_user`), and each
  resulting section takes the true mode of the truth section covering most of its points;
* the real e-mission phone days shipped in ``emission_ext/data/emission_real``: sections are
  e-mission's own (``*.ground_truth.json.gz``), labelled with the phone-sensed coarse mode
  (on foot / bicycle / vehicle) and, where the user confirmed a trip
  (``*.user_inputs.json.gz``), with that confirmed mode.

Each row keeps its group (tester or day) so evaluation can hold out whole testers/days.
This is orchestration (it reads the shipped files and runs the pipeline), not an algorithm.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emission_ext import schema
from emission_ext.reference import EMISSION_REAL_DIR, emission_real_days
from pipeline.features import MOTION_FEATURES, FeatureParams, section_features
from pipeline.modes import physical_modes

#: e-mission sensed modes -> coarse class.
SENSED_COARSE = {"ON_FOOT": "on_foot", "WALKING": "on_foot", "RUNNING": "on_foot",
                 "BICYCLING": "bicycle", "IN_VEHICLE": "vehicle"}
#: e-mission user mode labels -> physical mode.
USER_LABELS = {"walk": "WALKING", "bike": "BICYCLING", "e-bike": "BICYCLING", "bikeshare": "BICYCLING",
               "bus": "BUS", "free_shuttle": "BUS", "train": "TRAIN", "car": "CAR",
               "drove_alone": "CAR", "shared_ride": "CAR", "taxi": "CAR", "ferry": "FERRY"}
#: physical mode -> coarse class.
LABEL_COARSE = {"WALKING": "on_foot", "BICYCLING": "bicycle", "BUS": "vehicle", "CAR": "vehicle",
                "TRAIN": "vehicle", "FERRY": "vehicle"}
#: coarse sensed mode -> the physical label used for training when no user label exists.
COARSE_TRAIN_LABEL = {"on_foot": "WALKING", "bicycle": "BICYCLING"}
#: Training-row quality rules for synthetic sections (defaults of ``model train``): at least
#: this share of the section's points in its majority true mode ...
MIN_TRAIN_PURITY = 0.6
#: ... and, when they carry no phone motion activity, at least this many GPS fixes. A one-fix
#: section has no speed, distance or duration (every kinematic feature is missing) and its
#: "true mode" is the mode of that single point; without motion activity (the motion-free
#: copy every synthetic section gets) such a row holds no evidence of movement at all and
#: teaches the model a guess from sampling, hour and place. Chosen after the real-day failure
#: analysis of 2026-11-28 (one-fix on-foot sections called CAR): see MODEL_CARD.md.
MIN_TRAIN_POINTS = 2


def training_mask(df: pd.DataFrame, min_purity: float = MIN_TRAIN_PURITY,
                  min_points: int = MIN_TRAIN_POINTS) -> np.ndarray:
    """Which rows of a labelled section table may be used for training.

    A row needs a ``label``. Synthetic rows (``source`` not ``"real"``; every row when the
    column is absent) also need ``purity >= min_purity`` (when the table has purity), and
    either ``n_points >= min_points`` fixes or some motion-activity feature: a row with
    neither carries no evidence of movement. An unknown purity or fix count passes. Real
    e-mission rows are not filtered on either: their label is the phone's (or the user's)
    call for the whole section, not the true mode of a majority of its points.

    Parameters
    ----------
    df : DataFrame
        Labelled sections (``model dataset`` output, or its motion-free copies): ``label``,
        optionally ``purity`` (share of points, 0-1), ``n_points`` (fixes), ``source`` and
        the motion features (:data:`pipeline.features.MOTION_FEATURES`, shares 0-1).
    min_purity : float
        Minimum share (0-1) of a synthetic section's points in its labelled mode.
    min_points : int
        Minimum number of GPS fixes of a synthetic section without motion activity (1 keeps
        them all).

    Returns
    -------
    ndarray of bool, one per row of ``df``.
    """
    keep = df["label"].notna().to_numpy().copy()
    if "purity" in df:
        purity = df["purity"].to_numpy(dtype=float)
        keep &= np.isnan(purity) | (purity >= min_purity)
    if "n_points" in df and min_points > 1:
        real = (df["source"] == "real").to_numpy() if "source" in df else np.zeros(len(df), dtype=bool)
        motion = [c for c in MOTION_FEATURES if c in df]
        has_motion = df[motion].notna().any(axis=1).to_numpy() if motion else np.zeros(len(df), dtype=bool)
        n = df["n_points"].to_numpy(dtype=float)
        keep &= real | has_motion | np.isnan(n) | (n >= min_points)
    return keep


def truth_labels(labelled_points: pd.DataFrame, sections: pd.DataFrame,
                 truth_sections: pd.DataFrame) -> pd.DataFrame:
    """True physical mode of each section: the mode of the truth section holding most of its points.

    Returns a frame aligned on ``sections.index`` with ``label`` (None when no point falls in
    a truth section) and ``purity`` (share of the section's points in that truth mode).
    """
    n = len(sections)
    out = pd.DataFrame({"label": pd.Series([None] * n, index=sections.index, dtype=object),
                        "purity": np.zeros(n)}, index=sections.index)
    lp = labelled_points[labelled_points["section_id"].notna()]
    if n == 0 or len(lp) == 0 or len(truth_sections) == 0:
        return out
    ts = truth_sections.assign(_mode=physical_modes(truth_sections["mode"]))
    truth = pd.DataFrame({"user_id": ts["user_id"].astype(str).to_numpy(),
                          "start": schema.to_unix(ts["start_ts"]), "end": schema.to_unix(ts["end_ts"]),
                          "mode": ts["_mode"].to_numpy()}).sort_values("start")
    pts = pd.DataFrame({"user_id": lp["user_id"].astype(str).to_numpy(),
                        "section_id": lp["section_id"].astype(str).to_numpy(),
                        "t": schema.to_unix(lp["ts"])}).sort_values("t")
    m = pd.merge_asof(pts, truth, left_on="t", right_on="start", by="user_id", direction="backward")
    m = m[(m["t"] <= m["end"]) & m["mode"].notna()]
    if len(m) == 0:
        return out
    cnt = m.groupby(["user_id", "section_id", "mode"]).size().rename("k").reset_index()
    tot = pts.groupby(["user_id", "section_id"]).size().rename("total").reset_index()
    best = cnt.sort_values("k", ascending=False).drop_duplicates(["user_id", "section_id"])
    best = best.merge(tot, on=["user_id", "section_id"])
    key = pd.MultiIndex.from_arrays([sections["user_id"].astype(str), sections["section_id"].astype(str)])
    bidx = pd.MultiIndex.from_arrays([best["user_id"], best["section_id"]])
    pos = bidx.get_indexer(key)
    ok = pos >= 0
    out.loc[ok, "label"] = best["mode"].to_numpy()[pos[ok]]
    out.loc[ok, "purity"] = (best["k"] / best["total"]).to_numpy()[pos[ok]]
    return out


def jitter_points(points: pd.DataFrame, sigma_m: tuple[float, float], seed: int) -> pd.DataFrame:
    """Noisier copy of ``points``: each user's phone gets a GPS noise level drawn uniformly in
    ``sigma_m`` (metres, per axis), added to every fix and to its reported accuracy.

    Why: the synthetic phones are cleaner than the real e-mission days (median accuracy
    8-10 m against 20-40 m); training on both noise levels keeps walking from looking like
    cycling when the fixes wander.
    """
    rng = np.random.default_rng(seed)
    users = points["user_id"].astype(str)
    uniq = users.unique()
    sig = pd.Series(rng.uniform(sigma_m[0], sigma_m[1], len(uniq)), index=uniq)
    s = users.map(sig).to_numpy(float)
    n = len(points)
    dn, de = rng.normal(0, 1, n) * s, rng.normal(0, 1, n) * s
    lat = points["lat"].to_numpy(float)
    out = points.copy()
    out["lat"] = lat + dn / 111_195.0
    out["lon"] = points["lon"].to_numpy(float) + de / (111_195.0 * np.cos(np.radians(lat)))
    acc = points["accuracy_m"].to_numpy(float, na_value=np.nan) if "accuracy_m" in points else np.zeros(n)
    out["accuracy_m"] = np.sqrt(np.nan_to_num(acc) ** 2 + (2.0 * s) ** 2)
    return out


def synthetic_sections(seed: int, testers: int, days: int, transit=None, *,
                       motion: bool = True, world=None,
                       jitter_m: tuple[float, float] | None = None,
                       ferry_outing: float | None = None) -> pd.DataFrame:
    """Features and true labels of the segmented sections of one synthetic world.

    ``jitter_m``: add per-phone GPS noise first (see :func:`jitter_points`).
    ``ferry_outing``: probability that a day-off outing of a tester living within 2.5 km of a
    sea-shuttle terminal takes the shuttle (:attr:`emission_ext.synth.plans.PlanParams.p_ferry_outing`,
    default world 0.25); a higher value makes a ferry-rich *training* world (today's default
    worlds have about one segmented ferry section per 25 testers x 7 days).
    The points are segmented with ``transit`` (or, when None, the shipped feed's index), like
    ``process``: without it ferry crossings fold into the walks around them. ``transit=None``
    still leaves the GTFS features empty.
    Columns: the features, ``label``, ``purity``, ``user_id``, ``section_id``, ``group``
    (``"<seed>:<user_id>"``: one tester of one world) and ``seed``.
    """
    from emission_ext.synth import generate_world
    from pipeline.segment import segment_user

    if world is not None:
        w = world
    elif ferry_outing is not None:
        from emission_ext.synth.plans import PlanParams

        w = generate_world(testers=testers, days=days, seed=seed,
                           plans=PlanParams(p_ferry_outing=float(ferry_outing)))
    else:
        w = generate_world(testers=testers, days=days, seed=seed)
    points = w.points if jitter_m is None else jitter_points(w.points, jitter_m, seed + 7919)
    # segmentation always sees the reference lines, as ``process`` does (ferry crossings are cut
    # out of the walks by position); ``transit`` only decides the GTFS *features*
    from emission_ext.models.apply import transit_index

    seg = segment_user(points, w.motion, w.transitions,
                       transit=transit if transit is not None else transit_index())
    sections = seg["sections"].reset_index(drop=True)
    feats = section_features(seg["labelled_points"], sections, w.motion if motion else None, transit,
                             FeatureParams(tz=w.params.tz))
    lab = truth_labels(seg["labelled_points"], sections, w.truth_sections)
    out = pd.concat([feats, lab], axis=1)
    out["user_id"] = sections["user_id"].astype(str).to_numpy()
    out["section_id"] = sections["section_id"].astype(str).to_numpy()
    out["group"] = f"{seed}:" + out["user_id"]
    out["seed"] = seed
    return out


@dataclass(frozen=True)
class RealDay:
    """One real e-mission day: its sections (schema-like), points and labels."""

    name: str
    tz: str
    points: pd.DataFrame
    motion: pd.DataFrame
    sections: pd.DataFrame  # user_id, trip_id, section_id, start_ts, end_ts, sensed, coarse, user_label


def _walk_sections(node, out: list) -> None:
    if isinstance(node, dict):
        props = node.get("properties") or {}
        if node.get("type") == "Feature" and props.get("feature_type") == "section":
            out.append(props)
        for f in node.get("features") or []:
            _walk_sections(f, out)


def read_real_day(path: Path) -> RealDay | None:
    """Read a shipped real day and e-mission's sections for it (None when it has no ground truth)."""
    from emission_ext.io.readers import read

    name = path.name[: -len(".json.gz")]
    gt_path = path.with_name(f"{name}.ground_truth.json.gz")
    if not gt_path.exists():
        return None
    raw = read(path)
    with gzip.open(gt_path, "rt", encoding="utf-8") as fh:
        gt = json.load(fh)
    props: list = []
    for trip in gt.get("data", []):
        _walk_sections(trip, props)
    user = str(raw.points["user_id"].iloc[0]) if len(raw.points) else name
    tz = (getattr(raw, "tz", None) or {}).get(user, schema.DEFAULT_TZ)
    sensed = [str(p.get("sensed_mode", "")).split(".")[-1] for p in props]
    secs = pd.DataFrame({
        "user_id": user,
        "trip_id": [str((p.get("trip_id") or {}).get("$oid", "")) for p in props],
        "section_id": [f"{name}-{i}" for i in range(len(props))],
        "start_ts": schema.from_unix([p["start_ts"] for p in props]),
        "end_ts": schema.from_unix([p["end_ts"] for p in props]),
        "sensed": sensed,
        "coarse": [SENSED_COARSE.get(s) for s in sensed],
        "user_label": None,
    })
    ui_path = path.with_name(f"{name}.user_inputs.json.gz")
    if ui_path.exists() and len(secs):
        with gzip.open(ui_path, "rt", encoding="utf-8") as fh:
            inputs = json.load(fh)
        s0, s1 = schema.to_unix(secs["start_ts"]), schema.to_unix(secs["end_ts"])
        labels = np.array([None] * len(secs), dtype=object)
        for e in inputs:  # a handful of entries per day
            if e.get("metadata", {}).get("key") != "manual/mode_confirm":
                continue
            d = e["data"]
            mode = USER_LABELS.get(str(d.get("label")))
            if mode is None:
                continue
            # a confirmation is per trip: it names the sections the phone sensed alike
            # (a "car" trip's walk to the car park keeps its sensed walking)
            inside = ((s0 >= d["start_ts"] - 60) & (s1 <= d["end_ts"] + 60)
                      & (secs["coarse"].to_numpy() == LABEL_COARSE[mode]))
            labels[inside] = mode
        secs["user_label"] = labels
    return RealDay(name, tz, raw.points, raw.motion, secs)


def real_sections(transit=None, days: list[Path] | None = None) -> pd.DataFrame:
    """Features (GPS only: motion removed) and labels of e-mission's sections on the real days.

    Columns: the features, ``coarse`` (phone-sensed: on_foot | bicycle | vehicle | None),
    ``user_label``, ``label`` (training label: user label, else WALKING/BICYCLING from the
    coarse mode, else None: a sensed vehicle is not told apart), ``group`` (the day).
    """
    from pipeline.clean import clean_points

    frames = []
    for path in days or emission_real_days():
        day = read_real_day(Path(path))
        if day is None or len(day.sections) == 0:
            continue
        clean, _ = clean_points(day.points)
        clean = clean.sort_values("ts").reset_index(drop=True)
        secs = day.sections.sort_values("start_ts").reset_index(drop=True)
        t = schema.to_unix(clean["ts"])
        s0, s1 = schema.to_unix(secs["start_ts"]), schema.to_unix(secs["end_ts"])
        k = np.searchsorted(s0, t, side="right") - 1
        inside = (k >= 0) & (t <= s1[np.maximum(k, 0)])
        lp = clean.assign(section_id=np.where(inside, secs["section_id"].to_numpy()[np.maximum(k, 0)], None),
                          trip_id=None)
        feats = section_features(lp, secs, None, transit, FeatureParams(tz=day.tz))
        out = pd.concat([feats, secs[["user_id", "section_id", "sensed", "coarse", "user_label"]]], axis=1)
        out["label"] = [u if u is not None else COARSE_TRAIN_LABEL.get(c)
                        for u, c in zip(out["user_label"], out["coarse"])]
        out["group"] = day.name
        out["day"] = day.name
        frames.append(out)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


__all__ = ["truth_labels", "synthetic_sections", "real_sections", "read_real_day", "RealDay",
           "EMISSION_REAL_DIR"]
