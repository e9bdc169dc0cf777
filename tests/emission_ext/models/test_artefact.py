"""Model artefact: safe save/load round trip, version and trust checks, the shipped model."""
from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio

from emission_ext.errors import ConfigError
from emission_ext.models import (DEFAULT_MODEL_PATH, MODEL_FORMAT, MODEL_FORMAT_VERSION, load_model,
                                 read_model, save_model)
from pipeline.features import FEATURES
from pipeline.modes import ModeClassifier
from tests.pipeline.test_modes import toy_features


@pytest.fixture(scope="module")
def model():
    X, y = toy_features(40, seed=11)
    return ModeClassifier(max_iter=30).fit(X, y)


def test_round_trip_gives_the_same_predictions(model, tmp_path):
    path = save_model(model, tmp_path / "m.skops", info={"trained_on": "toy"})
    back, info = read_model(path)
    X, _ = toy_features(10, seed=12)
    np.testing.assert_allclose(back.predict_proba(X), model.predict_proba(X))
    assert info == {"trained_on": "toy"}
    assert back.get_params() == model.get_params()


def test_wrong_version_is_refused(model, tmp_path):
    path = tmp_path / "old.skops"
    sio.dump({"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION + 1,
              "params": model.get_params(), "classes": list(model.classes_),
              "estimator": model.estimator_, "info": {}}, path)
    with pytest.raises(ConfigError, match="version"):
        read_model(path)


def test_untrusted_types_are_refused(tmp_path):
    import fractions

    path = tmp_path / "evil.skops"
    sio.dump({"format": MODEL_FORMAT, "x": fractions.Fraction(1, 2)}, path)
    with pytest.raises(ConfigError, match="untrusted"):
        read_model(path)


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "x.skops"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError):
        read_model(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_model(tmp_path / "missing.skops")


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.exists(), reason="no model shipped yet")
def test_shipped_model_loads_and_predicts():
    m = load_model()
    assert m is not None and set(m.features) <= set(FEATURES)
    X, _ = toy_features(3, seed=13)
    assert len(m.predict(X)) == len(X)


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.exists(), reason="no model shipped yet")
def test_shipped_model_on_a_fresh_synthetic_world():
    """End to end on a world no model saw (seed 777): segmentation, features, shipped model."""
    from emission_ext.models.apply import transit_index
    from emission_ext.models.dataset import synthetic_sections
    from pipeline.modes import physical_modes

    df = synthetic_sections(777, testers=8, days=2, transit=transit_index())
    df = df[df["label"].notna() & (df["purity"] >= 0.6)]
    assert len(df) >= 40 and df["label"].nunique() >= 3
    pred = load_model().predict(df)
    acc = float(np.mean(pred == physical_modes(df["label"]).to_numpy()))
    assert acc >= 0.85, acc
