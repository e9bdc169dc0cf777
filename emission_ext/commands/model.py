"""``emission-ext model``: build labelled data, train, evaluate and time the mode classifier.

Why: the classifier is trained offline and shipped; these commands make that reproducible
and measurable. ``dataset`` builds labelled section tables (synthetic worlds through the real
segmentation, the real e-mission days) once, since that is the slow part; ``train`` fits and
saves a model; ``evaluate`` prints accuracy, per-mode precision/recall/F1 and the confusion
matrix next to the two baselines, the coarse agreement per real day, and can retrain per
held-out day; ``overhead`` times features + prediction against segmentation on the same points.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import click
import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..models.dataset import MIN_TRAIN_POINTS, MIN_TRAIN_PURITY
from ._common import progress

FEATURE_SETS = ("all", "no-transit", "gps", "gps-no-transit")


def _feature_set(name: str) -> tuple[str, ...]:
    from pipeline.features import FEATURES, MOTION_FEATURES, TRANSIT_FEATURES

    drop = set()
    if "no-transit" in name:
        drop |= set(TRANSIT_FEATURES)
    if name.startswith("gps"):
        drop |= set(MOTION_FEATURES)
    return tuple(f for f in FEATURES if f not in drop)


def _seeds(text: str) -> list[int]:
    try:
        out = []
        for part in text.split(","):
            if "-" in part:
                a, b = part.split("-")
                out += list(range(int(a), int(b) + 1))
            elif part.strip():
                out.append(int(part))
        return out
    except ValueError:
        raise click.BadParameter(f"seeds must look like 1,2,5-8, not {text!r}") from None


def _build(data: str, seeds, testers, days, transit, jitter=None, ferry_outing=None) -> pd.DataFrame:
    """A labelled table from ``synth``, ``real`` or a Parquet/CSV file."""
    from ..models.dataset import real_sections, synthetic_sections

    if data == "synth":
        frames = [synthetic_sections(s, testers, days, transit, jitter_m=jitter, ferry_outing=ferry_outing)
                  for s in progress(seeds, desc="synthetic worlds", unit="world")]
        df = pd.concat(frames, ignore_index=True)
        df["source"] = "synth"
        return df
    if data == "real":
        df = real_sections(transit)
        df["source"] = "real"
        return df
    path = Path(data)
    if not path.exists():
        raise InputError(data, "no such dataset file (or use 'synth' / 'real')")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - unreadable file is a user mistake
        raise InputError(data, f"cannot read dataset: {exc}") from None
    if "label" not in df.columns:
        raise InputError(data, "not a labelled section table (no 'label' column)", field="label")
    return df


def _load_data(datas, seeds, testers, days, no_transit=False, jitter=None, ferry_outing=None) -> pd.DataFrame:
    transit = None
    if not no_transit and any(d in ("synth", "real") for d in datas):
        from ..models.apply import transit_index

        transit = transit_index()
    return pd.concat([_build(d, seeds, testers, days, transit, jitter, ferry_outing) for d in datas],
                     ignore_index=True)


_data_opts = [
    click.option("--data", "datas", multiple=True, required=True,
                 help="'synth' (generate worlds), 'real' (shipped e-mission days) or a table written "
                      "by `model dataset` (.parquet/.csv). Repeatable."),
    click.option("--seeds", default="1-3", show_default=True, help="Synthetic world seeds (e.g. 1,2,5-8)."),
    click.option("--testers", default=20, show_default=True, help="Testers per synthetic world."),
    click.option("--days", default=5, show_default=True, help="Days per synthetic world."),
]


def data_options(f):
    for opt in reversed(_data_opts):
        f = opt(f)
    return f


@click.group("model")
def command():
    """Mode classifier: build data, train, evaluate, time."""


@command.command("dataset")
@data_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .parquet or .csv.")
@click.option("--jitter", default=None, help="Extra GPS noise per synthetic phone, metres, e.g. 5-30.")
@click.option("--ferry-outing", type=click.FloatRange(0.0, 1.0), default=None,
              help="Synthetic worlds: probability that a day-off outing of a tester living near a "
                   "sea-shuttle terminal takes the shuttle (default world: 0.25). A ferry-rich "
                   "training world; use its own seeds.")
def dataset_cmd(datas, seeds, testers, days, out, jitter, ferry_outing):
    """Build a labelled section table (features + true mode + group) and write it to OUT."""
    t0 = time.perf_counter()
    if jitter:
        try:
            lo, hi = (float(v) for v in jitter.split("-"))
        except ValueError:
            raise click.BadParameter(f"--jitter must look like 5-30, not {jitter!r}") from None
        jitter = (lo, hi)
    df = _load_data(datas, _seeds(seeds), testers, days, jitter=jitter, ferry_outing=ferry_outing)
    if jitter:
        df["group"] = df["group"] + f":jitter{jitter[0]:g}-{jitter[1]:g}"
    if ferry_outing is not None:
        df["group"] = df["group"] + f":ferry{ferry_outing:g}"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out, index=False) if out.suffix == ".parquet" else df.to_csv(out, index=False)
    counts = df["label"].fillna("(none)").value_counts().to_dict()
    click.echo(f"{len(df)} sections, {df['group'].nunique()} groups -> {out} "
               f"({time.perf_counter() - t0:.1f} s); labels {counts}")


def _weights(X: pd.DataFrame, real_weight: float) -> np.ndarray:
    """Sample weights: ``real_weight`` for sections of the real e-mission days, 1 otherwise."""
    src = X["source"].to_numpy(dtype=object) if "source" in X else np.full(len(X), "synth", dtype=object)
    return np.where(src == "real", real_weight, 1.0)


def _training_rows(df: pd.DataFrame, min_purity: float, drop_motion_copy: bool,
                   min_points: int = MIN_TRAIN_POINTS) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows with a label (and, for synthetic ones, enough purity, and fixes or motion:
    :func:`emission_ext.models.dataset.training_mask`); synthetic rows are duplicated with the
    motion features removed so the model also works without them, and the mask is applied again
    to those copies (a one-fix section's motion-free copy holds no evidence of movement)."""
    from pipeline.features import MOTION_FEATURES

    from ..models.dataset import training_mask

    d = df[training_mask(df, min_purity, min_points)]
    if drop_motion_copy:
        has_motion = d[list(MOTION_FEATURES)].notna().any(axis=1)
        copy = d[has_motion].copy()
        copy[list(MOTION_FEATURES)] = np.nan
        d = pd.concat([d, copy], ignore_index=True)
        d = d[training_mask(d, min_purity, min_points)]
    return d, d["label"].to_numpy(dtype=object)


@command.command("train")
@data_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Model file (.skops).")
@click.option("--features", "feature_set", type=click.Choice(FEATURE_SETS), default="all", show_default=True,
              help="Feature set: all, without GTFS transit features, GPS only (no motion), or both.")
@click.option("--min-confidence", default=0.5, show_default=True, help="Below: UNKNOWN.")
@click.option("--min-purity", default=MIN_TRAIN_PURITY, show_default=True,
              help="Train only on synthetic sections whose points are mostly one true mode.")
@click.option("--min-points", default=MIN_TRAIN_POINTS, show_default=True,
              help="Train on synthetic sections (and their motion-free copies) with fewer GPS fixes "
                   "only when they carry motion activity (fewer than 2: no speed at all, and a label "
                   "taken from one point); 1 keeps them all.")
@click.option("--max-iter", default=100, show_default=True, help="Boosting iterations.")
@click.option("--learning-rate", default=0.1, show_default=True, help="Boosting learning rate.")
@click.option("--max-leaf-nodes", default=31, show_default=True, help="Leaves per tree.")
@click.option("--threads", default=1, show_default=True, help="OpenMP threads for training.")
@click.option("--real-weight", default=1.0, show_default=True,
              help="Sample weight of the real e-mission sections (the synthetic ones weigh 1).")
def train_cmd(datas, seeds, testers, days, out, feature_set, min_confidence, min_purity, min_points,
              max_iter, learning_rate, max_leaf_nodes, threads, real_weight):
    """Train the mode classifier and save it (skops) to OUT."""
    from pipeline.modes import ModeClassifier

    from ..models import save_model

    t0 = time.perf_counter()
    df = _load_data(datas, _seeds(seeds), testers, days, no_transit="no-transit" in feature_set)
    X, y = _training_rows(df, min_purity, drop_motion_copy=not feature_set.startswith("gps"),
                          min_points=min_points)
    if len(X) == 0:
        raise ConfigError("no labelled section to train on")
    model = ModeClassifier(features=_feature_set(feature_set), min_confidence=min_confidence,
                           max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
                           n_threads=threads)
    model.fit(X, y, sample_weight=_weights(X, real_weight))
    labels, counts = np.unique(y.astype(str), return_counts=True)
    info = {
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": list(datas),
        "groups": int(X["group"].nunique()) if "group" in X else None,
        "rows": int(len(X)),
        "labels": {str(k): int(v) for k, v in zip(labels, counts)},
        "feature_set": feature_set,
        "min_purity": min_purity,
        "min_points": min_points,
        "real_weight": real_weight,
        "real_days_in_training": sorted(X.loc[X["source"] == "real", "group"].astype(str).unique().tolist())
        if "source" in X and "group" in X else [],
        "max_iter": max_iter,
    }
    save_model(model, out, info)
    click.echo(f"trained on {len(X)} sections {info['labels']} with {len(model.features_in_)} features "
               f"({feature_set}) -> {out} ({time.perf_counter() - t0:.1f} s)")


def _fmt_report(name: str, rep: dict) -> str:
    lines = [f"{name}: accuracy {rep['accuracy']:.3f} on {rep['n']} sections"]
    return "\n".join(lines)


def _per_mode_table(reports: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for name, rep in reports.items():
        for mode, m in rep["per_mode"].items():
            rows.append({"mode": mode, "method": name, "precision": m["precision"], "recall": m["recall"],
                         "f1": m["f1"], "support": m["support"]})
    t = pd.DataFrame(rows)
    return t.pivot_table(index=["mode", "support"], columns="method", values=["precision", "recall", "f1"],
                         sort=False).round(3)


def _predict(model, X: pd.DataFrame) -> np.ndarray:
    return model.predict(X)


@command.command("evaluate")
@click.option("--model", "models", multiple=True, type=click.Path(dir_okay=False),
              help="Model file(s) (default: the shipped model). Several are compared side by side.")
@data_options
@click.option("--min-purity", default=0.0, show_default=True,
              help="Evaluate only synthetic sections at least this pure (0: every labelled section).")
@click.option("--gps-only", is_flag=True, help="Remove the motion-activity features before predicting.")
@click.option("--retrain-from", type=click.Path(exists=True, dir_okay=False),
              help="Training table: retrain the (first) model's configuration once per held-out real "
                   "day on this table plus the other real days, and report each day (leave-one-day-out).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the figures as JSON.")
def evaluate_cmd(models, datas, seeds, testers, days, min_purity, gps_only, retrain_from, json_out):
    """Per-mode precision/recall/F1, confusion matrix and accuracy on labelled sections,
    next to the trackintel speed-bin and e-mission rule baselines."""
    from pipeline.baselines import emission_rules, speed_bins
    from pipeline.features import MOTION_FEATURES
    from pipeline.modes import COARSE, ModeClassifier, calibration_error, mode_report, physical_modes

    from ..models import DEFAULT_MODEL_PATH, read_model

    paths = list(models) or [str(DEFAULT_MODEL_PATH)]
    infos = {Path(p).stem: read_model(p) for p in paths}
    loaded = {k: v[0] for k, v in infos.items()}
    df = _load_data(datas, _seeds(seeds), testers, days)
    if gps_only:
        df = df.copy()
        df[list(MOTION_FEATURES)] = np.nan
    results: dict = {"data": list(datas), "models": paths, "gps_only": gps_only}

    # 1) sections with a physical label (synthetic truth, user-confirmed real sections)
    purity = df["purity"] if "purity" in df else pd.Series(np.nan, index=df.index)
    lab = df[df["label"].notna() & (purity.isna() | (purity >= min_purity))]
    if "source" in lab and (lab["source"] == "real").any():
        # real rows' labels partly come from the phone's coarse mode: judged in part 2
        lab = lab[lab["source"] != "real"]
    if len(lab):
        preds = {name: _predict(m, lab) for name, m in loaded.items()}
        preds["speed_bins"] = speed_bins(lab).to_numpy()
        preds["emission_rules"] = emission_rules(lab).to_numpy()
        reports = {k: mode_report(lab["label"], v) for k, v in preds.items()}
        click.echo(f"\n== {len(lab)} labelled sections ({lab['group'].nunique()} held-out groups) ==")
        for k, r in reports.items():
            click.echo(_fmt_report(k, r))
        for k, m in loaded.items():
            cal = calibration_error(physical_modes(lab["label"]).to_numpy(), m.predict_proba(lab), m.classes_)
            unknown = float(np.mean(preds[k] == "UNKNOWN"))
            click.echo(f"{k}: calibration: mean confidence {cal['mean_confidence']:.3f} vs argmax accuracy "
                       f"{cal['accuracy']:.3f}, expected calibration error {cal['ece']:.3f}; "
                       f"UNKNOWN {100 * unknown:.1f}%")
            reports[k]["calibration"] = cal | {"unknown_share": unknown}
        click.echo("\nper-mode precision / recall / F1:")
        click.echo(_per_mode_table(reports).to_string())
        for k in loaded:
            click.echo(f"\nconfusion matrix ({k}; rows = truth, columns = predicted):")
            click.echo(reports[k]["confusion"].to_string())
        results["labelled"] = {k: {kk: vv for kk, vv in r.items() if kk != "confusion"} | {
            "confusion": r["confusion"].to_dict()} for k, r in reports.items()}

    # 2) real days: agreement with the phone-sensed coarse mode, per day
    if "coarse" in df and df["coarse"].notna().any():
        real = df[df["coarse"].notna()].copy()
        real[list(MOTION_FEATURES)] = np.nan  # GPS features only
        per_day = {}
        method_preds: dict[str, np.ndarray] = {}
        if retrain_from:
            first, first_info = next(iter(infos.values()))
            real_weight = float(first_info.get("real_weight", 1.0))
            train_df = _build(retrain_from, [], 0, 0, None)
            pred = np.empty(len(real), dtype=object)
            for day in progress(sorted(real["day"].unique()), desc="held-out days", unit="day"):
                others = df[(df.get("source") == "real") & (df["day"] != day)] if "day" in df else df.iloc[0:0]
                # the first model's own training-row rules (files older than --min-points kept all)
                X, y = _training_rows(pd.concat([train_df, others], ignore_index=True),
                                      float(first_info.get("min_purity", MIN_TRAIN_PURITY)), True,
                                      min_points=int(first_info.get("min_points", 1)))
                m = ModeClassifier(**first.get_params()).fit(X, y, sample_weight=_weights(X, real_weight))
                sel = (real["day"] == day).to_numpy()
                pred[sel] = m.predict(real[sel])
            method_preds["retrained_per_day"] = pred
        else:
            for name, m in loaded.items():
                method_preds[name] = _predict(m, real)
        method_preds["speed_bins"] = speed_bins(real).to_numpy()
        method_preds["emission_rules_gps"] = emission_rules(real).to_numpy()
        rows = []
        for name, pred in method_preds.items():
            coarse = pd.Series(pred, index=real.index).map(COARSE)
            ok = (coarse == real["coarse"]).to_numpy()
            for day, grp in real.groupby("day"):
                sel = (real["day"] == day).to_numpy()
                rows.append({"day": day, "method": name, "sections": int(sel.sum()),
                             "agreement": float(ok[sel].mean())})
            rows.append({"day": "ALL", "method": name, "sections": len(real), "agreement": float(ok.mean())})
            per_day[name] = rows
        t = pd.DataFrame(rows).pivot_table(index=["day", "sections"], columns="method",
                                           values="agreement", sort=False).round(3)
        click.echo("\n== real e-mission days: agreement with the phone-sensed coarse mode "
                   "(on foot / bicycle / vehicle), GPS features only ==")
        click.echo(t.to_string())
        if not retrain_from:
            for name, (_, info) in infos.items():
                seen = info.get("real_days_in_training")
                if seen is None:  # older files: guess from the training data names
                    seen = ["?"] if any("real" in str(d) for d in info.get("data", [])) else []
                if seen:
                    click.echo(f"note: {name} was trained on real days ({', '.join(seen)}): these figures are "
                               f"not held out; use --retrain-from TRAIN for leave-one-day-out figures")
        results["real_coarse_agreement"] = pd.DataFrame(rows).to_dict(orient="records")
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=1, default=str))


@command.command("overhead")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False),
              help="Points CSV (SPEC columns), e.g. the benchmark's points_1000000.csv.")
@click.option("--points", "n_points", default=1_000_000, show_default=True,
              help="Without --csv: generate this many synthetic points.")
@click.option("--users", default=50, show_default=True)
@click.option("--generator", type=click.Choice(["simple", "synth"]), default="simple", show_default=True,
              help="Without --csv: the benchmark's simple generator or the synthetic world.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Default: the shipped model.")
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(min=1),
              help="Alternating runs of each; the best (least disturbed) CPU time is reported.")
def overhead_cmd(csv_path, n_points, users, generator, model_path, repeat):
    """Time mode classification (section points, features, prediction; transit index and model
    loads) against segmentation on the same points, as `process` runs them, in CPU seconds
    (best of ``--repeat`` alternating runs: robust to other jobs on the machine)."""
    from pipeline.features import section_features
    from pipeline.modes import classify_sections
    from pipeline.segment import segment_user

    from ..models import load_model
    from ..models.apply import transit_index

    if csv_path:
        from ..io.readers import read

        raw = read(csv_path, fmt="csv")
        points, motion, transitions = raw.points, raw.motion, raw.transitions
    else:
        from ..bench.points import synth_points, simple_points

        points = synth_points(n_points, users) if generator == "synth" else None
        if points is None:
            points = simple_points(n_points, users)
        if "source" not in points:
            from .. import schema

            points = schema.coerce(points.rename(columns={"accuracy": "accuracy_m"}).assign(source="csv"),
                                   "points")
        motion = transitions = None
    motion = motion if motion is not None and len(motion) else None
    transitions = transitions if transitions is not None and len(transitions) else None
    from .process import keep_freed_memory

    keep_freed_memory()  # the allocator settings `process` runs with
    cpu = time.process_time
    c0 = cpu()
    ti = transit_index()
    c1 = cpu()
    model = load_model(model_path)
    c2 = cpu()
    best = {"segment": [], "segment+points": [], "features": [], "predict": []}
    for _ in range(repeat):  # alternating, so a burst of other work hits both alike
        c = cpu()
        segment_user(points, motion, transitions, labelled=False)  # `process --no-modes`
        best["segment"].append(cpu() - c)
        c = cpu()
        seg = segment_user(points, motion, transitions, labelled="arrays")  # `process`
        c3 = cpu()
        sections = seg["sections"].reset_index(drop=True)
        feats = section_features(seg["section_points"], sections, motion, ti)
        c4 = cpu()
        classify_sections(sections, feats, model)
        best["segment+points"].append(c3 - c)
        best["features"].append(c4 - c3)
        best["predict"].append(cpu() - c4)
    b = {k: min(v) for k, v in best.items()}
    points_s = max(b["segment+points"] - b["segment"], 0.0)
    modes_s = points_s + b["features"] + b["predict"]
    click.echo(f"{len(points)} points, {len(seg['sections'])} sections; CPU seconds, best of {repeat}")
    click.echo(f"segmentation {b['segment']:.3f} s | section points +{points_s:.3f} s | features "
               f"{b['features']:.3f} s | predict {b['predict']:.3f} s | once per process: transit "
               f"index {c1 - c0:.3f} s, model {c2 - c1:.3f} s")
    click.echo(f"modes = {modes_s:.3f} s = {100 * modes_s / b['segment']:.1f}% of segmentation "
               f"({100 * (modes_s + c2 - c0) / b['segment']:.1f}% with the loads)")


@command.command("warm")
def warm_cmd():
    """Build the caches `process` and `run` load: the shipped model compiled to numpy and the
    GTFS transit index (a few seconds, once per install; later loads take milliseconds)."""
    from ..models import DEFAULT_MODEL_PATH, _compiled_path
    from ..models.apply import preload

    t0 = time.perf_counter()
    preload()
    cached = _compiled_path(DEFAULT_MODEL_PATH) if DEFAULT_MODEL_PATH.exists() else None
    click.echo(f"model and transit index ready in {time.perf_counter() - t0:.1f} s"
               + (f" (compiled model: {cached})" if cached is not None and cached.exists() else ""))
