"""Numpy predictor of the compiled model: same probabilities as scikit-learn, and the cached
load path of :func:`emission_ext.models.load_model`."""
from __future__ import annotations

import numpy as np
import pytest

import emission_ext.models as models
from emission_ext.models import DEFAULT_MODEL_PATH, load_model, read_model, save_model
from emission_ext.models.compiled import CompiledEstimator, compile_estimator
from pipeline.modes import ModeClassifier
from tests.pipeline.test_modes import toy_features


def _probe(seed: int):
    X, _ = toy_features(15, seed=seed)
    X = X.copy()
    rng = np.random.default_rng(seed)
    # missing values in every used column, and values beyond the training range
    for c in ("speed_p50", "route_share", "sched_match", "ferry_near_share"):
        X.loc[rng.uniform(size=len(X)) < 0.2, c] = np.nan
    X.loc[X.index[:3], "speed_p95"] = [1e6, -1e6, 0.0]
    return X


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic", None])
def test_compiled_probabilities_equal_scikit_learn(calibration):
    X, y = toy_features(40, seed=21)
    m = ModeClassifier(max_iter=25, calibration=calibration).fit(X, y)
    c = CompiledEstimator(compile_estimator(m.estimator_))
    Xp = m._matrix(_probe(22))
    expected = m.estimator_.predict_proba(Xp)
    got = c.predict_proba(Xp)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert list(c.classes_) == list(m.estimator_.classes_)


def test_trees_that_are_a_single_leaf():
    """A boosting round that finds no split leaves a one-leaf tree: the walk starts at a leaf."""
    X, y = toy_features(40, seed=25)
    m = ModeClassifier(max_iter=6, min_samples_leaf=len(X) // 2 + 1, calibration=None).fit(X, y)
    roots = compile_estimator(m.estimator_)
    assert roots["m0_is_leaf"][roots["m0_roots"].ravel()].any()  # the case under test exists
    c = CompiledEstimator(roots)
    Xp = m._matrix(_probe(26))
    np.testing.assert_allclose(c.predict_proba(Xp), m.estimator_.predict_proba(Xp), rtol=0, atol=1e-12)


def test_ensemble_calibration_is_compiled_too():
    X, y = toy_features(40, seed=23)
    m = ModeClassifier(max_iter=15, calibration="sigmoid", calibration_ensemble=True).fit(X, y)
    c = CompiledEstimator(compile_estimator(m.estimator_))
    Xp = m._matrix(_probe(24))
    np.testing.assert_allclose(c.predict_proba(Xp), m.estimator_.predict_proba(Xp), rtol=0, atol=1e-12)


def test_load_model_writes_then_reads_the_numpy_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMISSION_EXT_CACHE", str(tmp_path / "cache"))
    X, y = toy_features(40, seed=25)
    m = ModeClassifier(max_iter=20).fit(X, y)
    path = save_model(m, tmp_path / "m.skops", info={"trained_on": "toy"})
    models._cached.cache_clear()
    first = load_model(path)
    assert list((tmp_path / "cache").glob("model-*.npz")), "compiled model not cached"
    models._cached.cache_clear()
    monkeypatch.setattr(models, "read_model", lambda p: pytest.fail("skops file read again"))
    second = load_model(path)
    models._cached.cache_clear()
    assert isinstance(second.estimator_, CompiledEstimator)
    assert second.get_params() == m.get_params() and second.features_in_ == m.features_in_
    Xp = _probe(26)
    np.testing.assert_allclose(second.predict_proba(Xp), m.predict_proba(Xp), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(first.predict(Xp), m.predict(Xp))


def test_corrupt_cache_falls_back_to_the_skops_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EMISSION_EXT_CACHE", str(tmp_path / "cache"))
    X, y = toy_features(30, seed=27)
    m = ModeClassifier(max_iter=10).fit(X, y)
    path = save_model(m, tmp_path / "m.skops")
    compiled = models._compiled_path(path)
    compiled.parent.mkdir(parents=True)
    compiled.write_bytes(b"not an npz")
    models._cached.cache_clear()
    back = load_model(path)
    models._cached.cache_clear()
    Xp = _probe(28)
    np.testing.assert_allclose(back.predict_proba(Xp), m.predict_proba(Xp), rtol=0, atol=1e-12)


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.exists(), reason="no model shipped yet")
def test_shipped_model_compiles_exactly():
    m, _ = read_model(DEFAULT_MODEL_PATH)
    c = CompiledEstimator(compile_estimator(m.estimator_))
    Xp = m._matrix(_probe(29))
    np.testing.assert_allclose(c.predict_proba(Xp), m.estimator_.predict_proba(Xp), rtol=0, atol=1e-12)
