"""The fitted mode classifier as plain numpy arrays, and a numpy predictor over them.

Why: loading the shipped skops file means importing scikit-learn (which pulls most of scipy)
and skops, about 1.5-2.5 s of every `process` run, more than the features and the
prediction together. Prediction itself needs none of it: a histogram gradient boosting model
is a list of binary trees (feature, threshold, where missing values go, leaf value) summed
per class, and isotonic or sigmoid calibration is an interpolation or a logistic over each
class's score. :func:`compile_estimator` copies exactly those numbers out of a fitted
:class:`sklearn.calibration.CalibratedClassifierCV` (or a bare
:class:`~sklearn.ensemble.HistGradientBoostingClassifier`) into a dict of arrays that
``np.savez`` can store without pickle; :class:`CompiledEstimator` predicts from them with the
same arithmetic, in the same order, as scikit-learn (same probabilities to the last bits).

Anything else (categorical splits, another calibration method, other estimators) raises
:class:`NotImplementedError`; callers then keep the scikit-learn estimator.
"""
from __future__ import annotations

import numpy as np

#: Bump when the arrays written by :func:`compile_estimator` change meaning.
COMPILED_VERSION = 1


def _compile_hgb(hgb, prefix: str, out: dict) -> None:
    if getattr(hgb, "is_categorical_", None) is not None and np.any(hgb.is_categorical_):
        raise NotImplementedError("categorical features")
    if getattr(hgb, "_preprocessor", None) is not None:
        raise NotImplementedError("preprocessed (categorical) input")
    k = int(hgb.n_trees_per_iteration_)
    preds = hgb._predictors
    nodes = [p.nodes for it in preds for p in it]
    if any(n["is_categorical"].any() for n in nodes):
        raise NotImplementedError("categorical splits")
    sizes = np.array([len(n) for n in nodes], np.int64)
    offset = np.cumsum(sizes) - sizes
    allnodes = np.concatenate(nodes)
    tree = np.repeat(np.arange(len(nodes)), sizes)
    out[prefix + "feature"] = allnodes["feature_idx"].astype(np.int64)
    out[prefix + "threshold"] = allnodes["num_threshold"].astype(np.float64)
    out[prefix + "missing_left"] = allnodes["missing_go_to_left"].astype(bool)
    out[prefix + "left"] = allnodes["left"].astype(np.int64) + offset[tree]
    out[prefix + "right"] = allnodes["right"].astype(np.int64) + offset[tree]
    out[prefix + "is_leaf"] = allnodes["is_leaf"].astype(bool)
    out[prefix + "value"] = allnodes["value"].astype(np.float64)
    out[prefix + "roots"] = offset.reshape(len(preds), k)
    out[prefix + "baseline"] = np.asarray(hgb._baseline_prediction, np.float64).reshape(1, k)
    if not np.isfinite(out[prefix + "threshold"][~out[prefix + "is_leaf"]]).all():
        raise NotImplementedError("non-finite split threshold")  # the walk folds NaN into +-inf


def compile_estimator(est) -> dict[str, np.ndarray]:
    """Arrays of a fitted calibrated (or bare) histogram gradient boosting classifier.

    Raises
    ------
    NotImplementedError
        For a model this predictor does not reproduce exactly.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    out: dict[str, np.ndarray] = {"version": np.array(COMPILED_VERSION)}
    if isinstance(est, HistGradientBoostingClassifier):
        if int(est.n_trees_per_iteration_) == 1:
            raise NotImplementedError("binary boosting")
        out["classes"] = np.asarray(est.classes_).astype(str)
        out["n_members"] = np.array(0)
        _compile_hgb(est, "m0_", out)
        return out
    if not isinstance(est, CalibratedClassifierCV) or est.method not in ("isotonic", "sigmoid"):
        raise NotImplementedError(f"estimator {type(est).__name__}")
    classes = np.asarray(est.classes_).astype(str)
    if len(classes) <= 2:
        raise NotImplementedError("binary calibration")
    out["classes"] = classes
    out["method_isotonic"] = np.array(est.method == "isotonic")
    out["n_members"] = np.array(len(est.calibrated_classifiers_))
    for i, cc in enumerate(est.calibrated_classifiers_):
        p = f"m{i}_"
        hgb = cc.estimator
        if not isinstance(hgb, HistGradientBoostingClassifier) or int(hgb.n_trees_per_iteration_) < 3:
            raise NotImplementedError("calibrated estimator is not a multiclass boosting")
        _compile_hgb(hgb, p, out)
        pos = np.searchsorted(classes, np.asarray(hgb.classes_).astype(str))
        if not np.array_equal(classes[pos], np.asarray(hgb.classes_).astype(str)):
            raise NotImplementedError("classes of a member differ")
        out[p + "pos"] = pos.astype(np.int64)
        for j, cal in enumerate(cc.calibrators):
            q = f"{p}c{j}_"
            if est.method == "isotonic":
                if cal.out_of_bounds != "clip" or not hasattr(cal, "X_thresholds_"):
                    raise NotImplementedError("isotonic without clipping")
                out[q + "x"] = np.asarray(cal.X_thresholds_, np.float64)
                out[q + "y"] = np.asarray(cal.y_thresholds_, np.float64)
                out[q + "bounds"] = np.array([cal.X_min_, cal.X_max_], np.float64)
            else:
                out[q + "ab"] = np.array([cal.a_, cal.b_], np.float64)
    return out


#: Rows walked together: the working arrays of a block stay in the CPU cache.
BLOCK_ROWS = 256
#: Tree levels walked for every (row, tree) entry before finished entries are dropped (on
#: the shipped model ~50 % of the entries are still walking after three levels).
FULL_LEVELS = 3


def _walk_tables(a: dict, p: str) -> tuple:
    """Per-node tables of member ``p`` in the shapes the walk indexes them with.

    Missing values are folded into the comparison: the walk reads column ``2 f`` of a
    doubled feature matrix (NaN as -inf, so ``x <= threshold`` sends it left) at nodes that
    send missing values left, and column ``2 f + 1`` (NaN as +inf: right) elsewhere; this is
    exact for finite thresholds, the only ones scikit-learn writes. Children that are leaves
    are stored as ``~leaf`` (negative), so "reached a leaf" is a sign test. A second set of
    tables, where leaves loop to themselves, serves the first :data:`FULL_LEVELS` levels.

    Raises
    ------
    ValueError
        For an internal node with a non-finite threshold.
    """
    leaf = a[p + "is_leaf"]
    thr = a[p + "threshold"]
    if not np.isfinite(thr[~leaf]).all():
        raise ValueError("non-finite split threshold")
    col = (2 * a[p + "feature"] + ~a[p + "missing_left"]).astype(np.int32)
    child = np.stack([a[p + "right"], a[p + "left"]], axis=1).astype(np.int32).ravel()
    child = np.where(leaf[child], ~child, child).astype(np.int32)
    roots = a[p + "roots"]
    # the first FULL_LEVELS levels move every entry, without bookkeeping: a leaf loops to
    # itself there (threshold +inf: always "left", and both children are the leaf)
    loop = np.stack([a[p + "right"], a[p + "left"]], axis=1).astype(np.int32)
    loop[leaf] = np.flatnonzero(leaf).astype(np.int32)[:, None]
    full = (np.where(leaf, 0, col).astype(np.int32), np.where(leaf, np.inf, thr), loop.ravel(), leaf)
    return roots.shape, roots.ravel().astype(np.int32), full, col, thr, child, a[p + "value"]


def _tree_values(tables: tuple, X: np.ndarray) -> np.ndarray:
    """Leaf values, shape (n_iterations, n_classes, n_samples).

    Every tree is walked at once for a block of rows: one entry per (row, tree), advanced a
    level per step (NaN goes where the split sends missing values, else ``x <= threshold``
    goes left, as scikit-learn decides), finished entries dropped.
    """
    shape, roots, (col0, thr0, loop, leaf), col, thr, child, value = tables
    n, nf = X.shape
    nan = np.isnan(X)
    x2 = np.empty((n, 2 * nf))  # (missing-left, missing-right) copy of each feature
    x2[:, 0::2] = np.where(nan, -np.inf, X)
    x2[:, 1::2] = np.where(nan, np.inf, X)
    n_trees = roots.size
    leaves = np.empty((n_trees, n), np.int32)
    for s in range(0, n, BLOCK_ROWS):
        xf = x2[s:s + BLOCK_ROWS].ravel()
        m = min(BLOCK_ROWS, n - s)
        nd = np.tile(roots, m)
        rowoff = np.repeat(np.arange(m, dtype=np.int32) * (2 * nf), n_trees)
        for _ in range(FULL_LEVELS):  # most entries are still inside their tree here
            nd = loop[2 * nd + (xf[rowoff + col0[nd]] <= thr0[nd])]
        node = np.where(leaf[nd], ~nd, nd).astype(np.int32)  # then only the unfinished ones
        active = np.flatnonzero(node >= 0)
        while len(active):
            nd = node[active]
            nd = child[2 * nd + (xf[rowoff[active] + col[nd]] <= thr[nd])]
            node[active] = nd
            active = np.compress(nd >= 0, active)
        leaves[:, s:s + m] = ~node.reshape(m, n_trees).T
    return value[leaves].reshape(*shape, n)


def _raw(a: dict, p: str, tables: tuple, X: np.ndarray) -> np.ndarray:
    vals = _tree_values(tables, X)
    raw = np.zeros((len(X), vals.shape[1]), dtype=np.float64, order="F")
    raw += a[p + "baseline"]
    rt = raw.T  # (n_classes, n_samples) view, contiguous rows
    for it in range(vals.shape[0]):  # iteration order, as scikit-learn sums them
        rt += vals[it]
    return raw


def _softmax(raw: np.ndarray) -> np.ndarray:
    e = np.exp(raw - raw.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class CompiledEstimator:
    """Predicts from :func:`compile_estimator` arrays (numpy only).

    Parameters
    ----------
    arrays : mapping of str to ndarray
    """

    def __init__(self, arrays):
        self.arrays = {k: np.asarray(v) for k, v in dict(arrays).items()}
        if int(self.arrays.get("version", -1)) != COMPILED_VERSION:
            raise ValueError("compiled model of another version")
        self.classes_ = self.arrays["classes"].astype(str)
        n = max(int(self.arrays["n_members"]), 1)
        self._tables = [_walk_tables(self.arrays, f"m{i}_") for i in range(n)]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        a = self.arrays
        X = np.ascontiguousarray(X, dtype=np.float64)
        k = len(self.classes_)
        n_members = int(a["n_members"])
        if n_members == 0:  # bare boosting: softmax of the raw scores
            return _softmax(_raw(a, "m0_", self._tables[0], X))
        mean = np.zeros((len(X), k))
        for i in range(n_members):
            p = f"m{i}_"
            raw = _raw(a, p, self._tables[i], X)
            proba = np.zeros((len(X), k))
            for j, cls in enumerate(a[p + "pos"]):
                q = f"{p}c{j}_"
                t = raw[:, j]
                if bool(a["method_isotonic"]):
                    proba[:, cls] = _interp(np.clip(t, *a[q + "bounds"]), a[q + "x"], a[q + "y"])
                else:
                    aa, bb = a[q + "ab"]
                    proba[:, cls] = 1.0 / (1.0 + np.exp(aa * t + bb))
            den = np.sum(proba, axis=1)[:, np.newaxis]
            proba = np.divide(proba, den, out=np.full_like(proba, 1 / k), where=den != 0)
            mean += proba
        mean /= n_members
        return mean


def _interp(t: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Linear interpolation with the arithmetic of :class:`scipy.interpolate.interp1d`."""
    if len(x) == 1:
        return np.repeat(y, t.shape)
    hi = np.clip(np.searchsorted(x, t), 1, len(x) - 1)
    lo = hi - 1
    slope = (y[hi] - y[lo]) / (x[hi] - x[lo])
    return slope * (t - x[lo]) + y[lo]
