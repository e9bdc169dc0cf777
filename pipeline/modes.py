"""Travel-mode classifier: a trained, calibrated model over section features, with a rule
fallback.

Why: testers should see how they travelled without labelling every trip. e-mission decides
modes with a few rules and trackintel with speed bins; neither uses the timetable, and
neither says how sure it is. :class:`ModeClassifier` is a small estimator-style wrapper
(parameters in ``__init__``, ``fit`` / ``predict`` / ``predict_proba``) around scikit-learn's
histogram gradient boosting (it handles missing features natively: no motion data, no GTFS)
with probability calibration, so ``mode_confidence`` means what it says; sections whose best
probability is below ``min_confidence`` are reported as UNKNOWN rather than guessed.
:func:`rule_modes` is the fallback when no model is available (``mode_source="rule"``).

Pure: no file is read here; the shipped artefact is loaded by :mod:`emission_ext.models`.
scikit-learn is imported only where a model is trained, evaluated or run through its own
estimator (about 1.5 s of imports): the shipped model predicts through numpy alone
(:mod:`emission_ext.models.compiled`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emission_ext.schema import Mode

from .features import FEATURES, TRANSIT_FEATURES

#: Physical modes the classifier predicts (UNKNOWN is added at prediction time).
CLASSES: tuple[str, ...] = (Mode.WALKING.value, Mode.BICYCLING.value, Mode.BUS.value,
                            Mode.CAR.value, Mode.TRAIN.value, Mode.FERRY.value)

#: Operator/refined modes -> the physical mode a GPS track shows.
PHYSICAL: dict[str, str] = {
    Mode.WALKING.value: Mode.WALKING.value, Mode.BICYCLING.value: Mode.BICYCLING.value,
    Mode.E_BIKE.value: Mode.BICYCLING.value, Mode.BIKESHARE.value: Mode.BICYCLING.value,
    Mode.BUS.value: Mode.BUS.value, Mode.CAR.value: Mode.CAR.value,
    Mode.CARSHARE.value: Mode.CAR.value, Mode.TRAIN.value: Mode.TRAIN.value,
    Mode.TRAM.value: Mode.TRAIN.value, Mode.SUBWAY.value: Mode.TRAIN.value,
    Mode.FERRY.value: Mode.FERRY.value,
}

#: Coarse classes of the phone's activity recogniser.
COARSE: dict[str, str] = {
    Mode.WALKING.value: "on_foot", Mode.BICYCLING.value: "bicycle", Mode.BUS.value: "vehicle",
    Mode.CAR.value: "vehicle", Mode.TRAIN.value: "vehicle", Mode.FERRY.value: "vehicle",
    Mode.UNKNOWN.value: "unknown",
}

GPS_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if not f.startswith("motion_"))
NO_TRANSIT_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f not in TRANSIT_FEATURES)


def physical_modes(modes: pd.Series) -> pd.Series:
    """Map any schema mode to the physical class a GPS track shows (None when not one of
    :data:`CLASSES`, e.g. AIR or UNKNOWN)."""
    return modes.astype(object).map(PHYSICAL)


class ModeClassifier:
    """Estimator-style travel-mode classifier over :func:`pipeline.features.section_features`.

    Parameters
    ----------
    features : sequence of str
        Feature columns used (others are ignored; missing ones are taken as NaN).
    min_confidence : float
        Below this calibrated probability the prediction is UNKNOWN.
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization :
        Passed to :class:`sklearn.ensemble.HistGradientBoostingClassifier`.
    class_weight : "balanced" or None
        Re-weight classes so rare modes (ferry, train) count.
    calibration : "isotonic", "sigmoid", "auto" or None
        Probability calibration by cross-validation (``auto``: isotonic from 2,000 samples,
        sigmoid below).
    calibration_cv : int
        Folds of the calibration.
    calibration_ensemble : bool
        False (default): one booster trained on all the data, calibrated on out-of-fold
        predictions; True: one calibrated booster per fold, averaged (slower to load and
        predict, for little gain here).
    random_state : int
    n_threads : int or None
        OpenMP threads used by the boosting during fit and predict (None: library default).
        One is fastest for the few thousand sections of a batch and never oversubscribes
        the cores of a process pool or Dask worker.
    """

    def __init__(self, features=FEATURES, min_confidence: float = 0.5, learning_rate: float = 0.1,
                 max_iter: int = 200, max_leaf_nodes: int = 31, min_samples_leaf: int = 10,
                 l2_regularization: float = 0.0, class_weight: str | None = "balanced",
                 calibration: str | None = "auto", calibration_cv: int = 3,
                 calibration_ensemble: bool = False, random_state: int = 0,
                 n_threads: int | None = 1):
        self.features = tuple(features)
        self.min_confidence = min_confidence
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.class_weight = class_weight
        self.calibration = calibration
        self.calibration_cv = calibration_cv
        self.calibration_ensemble = calibration_ensemble
        self.random_state = random_state
        self.n_threads = n_threads

    _PARAMS = ("features", "min_confidence", "learning_rate", "max_iter", "max_leaf_nodes",
               "min_samples_leaf", "l2_regularization", "class_weight", "calibration",
               "calibration_cv", "calibration_ensemble", "random_state", "n_threads")

    def get_params(self) -> dict:
        """Constructor parameters (JSON-friendly)."""
        p = {k: getattr(self, k) for k in self._PARAMS}
        p["features"] = list(p["features"])
        return p

    def _matrix(self, X: pd.DataFrame, columns=None) -> np.ndarray:
        cols = list(columns if columns is not None else getattr(self, "features_in_", self.features))
        return X.reindex(columns=cols).to_numpy(dtype=float, na_value=np.nan)

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> "ModeClassifier":
        """Train on a feature table and its modes (any schema modes; mapped to :data:`CLASSES`,
        rows with other labels are dropped).

        Raises
        ------
        ValueError
            When fewer than two classes remain.
        """
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold
        from threadpoolctl import threadpool_limits

        y = physical_modes(pd.Series(np.asarray(y, dtype=object), index=X.index))
        keep = y.notna().to_numpy()
        Xm, yv = self._matrix(X, self.features)[keep], y.to_numpy()[keep].astype(str)
        # features never observed in training (e.g. no motion data at all) carry no information
        observed = np.isfinite(Xm).any(axis=0)
        self.features_in_ = tuple(f for f, o in zip(self.features, observed) if o)
        Xm = Xm[:, observed]
        w = None if sample_weight is None else np.asarray(sample_weight, float)[keep]
        classes, counts = np.unique(yv, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"need at least two modes to train, got {list(classes)}")
        base = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate, max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization, class_weight=self.class_weight,
            early_stopping=False, random_state=self.random_state)
        method = self.calibration
        if method == "auto":
            method = "isotonic" if len(yv) >= 2000 else "sigmoid"
        cv = min(self.calibration_cv, int(counts.min()))
        if method and cv >= 2:
            # shuffled folds: rows often arrive grouped (e.g. copies without motion appended)
            folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=self.random_state)
            est = CalibratedClassifierCV(base, method=method, cv=folds, ensemble=self.calibration_ensemble)
        else:
            est = base
        with threadpool_limits(self.n_threads):
            if w is None:
                est.fit(Xm, yv)
            else:
                est.fit(Xm, yv, sample_weight=w)
        if isinstance(est, CalibratedClassifierCV):
            est.cv = cv  # keep the saved estimator free of splitter objects (plain int param)
        self.estimator_ = est
        self.classes_ = np.asarray(est.classes_).astype(str)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n, len(classes_)), columns in ``classes_`` order."""
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        if not type(self.estimator_).__module__.startswith("sklearn"):
            return self.estimator_.predict_proba(self._matrix(X))  # numpy-only predictor
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.n_threads):
            return self.estimator_.predict_proba(self._matrix(X))

    def predict_with_confidence(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Modes (UNKNOWN below ``min_confidence``) and the probability of the best mode."""
        p = self.predict_proba(X)
        if len(p) == 0:
            return np.zeros(0, dtype=object), np.zeros(0)
        best = p.argmax(axis=1)
        conf = p[np.arange(len(p)), best]
        modes = self.classes_[best].astype(object)
        modes[conf < self.min_confidence] = Mode.UNKNOWN.value
        return modes, conf

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Modes, UNKNOWN where the best calibrated probability is below ``min_confidence``."""
        return self.predict_with_confidence(X)[0]


@dataclass(frozen=True)
class RuleParams:
    """Thresholds of the fallback rules (m/s and shares)."""

    walk_p85_mps: float = 2.6
    bike_p85_mps: float = 8.5
    train_p95_mps: float = 33.0
    bus_route_share: float = 0.7
    ferry_share: float = 0.6


def rule_modes(features: pd.DataFrame, params: RuleParams = RuleParams()) -> np.ndarray:
    """Fallback modes when no trained model is available (no confidence is claimed).

    Order of the rules: a section mostly along a ferry route is FERRY; one following a bus
    line that either matches the timetable or stops at bus stops is BUS; very fast is TRAIN;
    then the motion activity when present, else the 85th-percentile speed, separates walking,
    cycling and car.
    """
    f = features
    get = lambda c: f[c].to_numpy(float) if c in f else np.full(len(f), np.nan)  # noqa: E731
    p85, p95 = get("speed_p85"), get("speed_p95")
    foot, bike, veh = get("motion_foot"), get("motion_bike"), get("motion_vehicle")
    has_motion = np.isfinite(foot) & (np.nan_to_num(foot + bike + veh) > 0)
    coarse_speed = np.where(p85 < params.walk_p85_mps, Mode.WALKING.value,
                            np.where(p85 < params.bike_p85_mps, Mode.BICYCLING.value, Mode.CAR.value))
    coarse_motion = np.select([(veh >= foot) & (veh >= bike), bike >= foot],
                              [Mode.CAR.value, Mode.BICYCLING.value], Mode.WALKING.value)
    coarse = np.where(has_motion, coarse_motion, coarse_speed)
    ferry = np.nan_to_num(get("ferry_near_share")) >= params.ferry_share
    bus = (np.nan_to_num(get("route_share")) >= params.bus_route_share) & (
        (np.nan_to_num(get("sched_match")) > 0) | (np.nan_to_num(get("stops_at_bus_stops")) >= 1))
    train = np.nan_to_num(p95) >= params.train_p95_mps
    out = np.select([ferry & (coarse != Mode.WALKING.value), bus & (coarse == Mode.CAR.value), train],
                    [Mode.FERRY.value, Mode.BUS.value, Mode.TRAIN.value], coarse).astype(object)
    out[~(np.isfinite(p85) | has_motion)] = Mode.UNKNOWN.value
    return out


def classify_sections(sections: pd.DataFrame, features: pd.DataFrame,
                      model: ModeClassifier | None = None) -> pd.DataFrame:
    """Set ``mode``, ``mode_confidence`` and ``mode_source`` on sections.

    Parameters
    ----------
    sections : DataFrame
        Schema ``sections`` table.
    features : DataFrame
        :func:`pipeline.features.section_features` output, same index as ``sections``.
    model : ModeClassifier, optional
        Trained model; without it :func:`rule_modes` decides (``mode_source="rule"``,
        ``mode_confidence`` null).

    Returns
    -------
    DataFrame
        A copy of ``sections`` with the three columns set.
    """
    out = sections.copy()
    f = features.reindex(sections.index)
    if model is None:
        out["mode"] = pd.Series(rule_modes(f), index=out.index, dtype=object).astype(str)
        out["mode_confidence"] = np.nan
        out["mode_source"] = "rule"
    else:
        modes, conf = model.predict_with_confidence(f)
        out["mode"] = pd.Series(modes, index=out.index, dtype=object).astype(str)
        out["mode_confidence"] = conf.astype(float)
        out["mode_source"] = "classifier"
    out["mode_source"] = out["mode_source"].astype(str)
    return out


def mode_report(y_true, y_pred, labels=CLASSES) -> dict:
    """Accuracy, per-mode precision/recall/F1/support and the confusion matrix.

    UNKNOWN predictions count as errors (they are in the confusion matrix's last column).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    labels = list(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cols = labels + [Mode.UNKNOWN.value]
    cm = confusion_matrix(y_true, y_pred, labels=cols)[: len(labels)]
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        "per_mode": {m: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                         "support": int(s[i])} for i, m in enumerate(labels)},
        "confusion": pd.DataFrame(cm, index=labels, columns=cols),
    }


def calibration_error(y_true, proba: np.ndarray, classes, n_bins: int = 10) -> dict:
    """Expected calibration error of the top-class probability (equal-width bins).

    Returns ``ece`` (mean |accuracy - confidence| weighted by bin size), ``mean_confidence``
    and ``accuracy`` of the argmax prediction (no UNKNOWN threshold).
    """
    y_true = np.asarray(y_true, dtype=object).astype(str)
    if len(y_true) == 0:
        return {"ece": float("nan"), "mean_confidence": float("nan"), "accuracy": float("nan")}
    best = proba.argmax(axis=1)
    conf = proba[np.arange(len(proba)), best]
    hit = (np.asarray(classes).astype(str)[best] == y_true).astype(float)
    b = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    cnt = np.bincount(b, minlength=n_bins)
    gap = np.abs(np.bincount(b, weights=hit, minlength=n_bins) - np.bincount(b, weights=conf, minlength=n_bins))
    return {"ece": float(gap.sum() / len(conf)), "mean_confidence": float(conf.mean()),
            "accuracy": float(hit.mean())}
