"""Mode classifier: estimator behaviour, calibrated confidence, UNKNOWN, rule fallback, report."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emission_ext.schema import from_unix
from pipeline.features import FEATURES
from pipeline.modes import (CLASSES, ModeClassifier, classify_sections, mode_report,
                            physical_modes, rule_modes)

# typical 50th / 95th percentile speeds (m/s) and bus-line share of each mode
PROFILE = {"WALKING": (1.3, 1.9, 0.3), "BICYCLING": (4.5, 6.5, 0.3), "BUS": (5.0, 11.0, 1.0),
           "CAR": (8.0, 16.0, 0.3), "TRAIN": (25.0, 38.0, 0.0), "FERRY": (4.0, 6.0, 0.0)}


def toy_features(n_per_mode: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A small feature table where each mode has its own (noisy) speed and transit profile."""
    rng = np.random.default_rng(seed)
    rows, y = [], []
    for mode, (p50, p95, share) in PROFILE.items():
        n = n_per_mode
        f = pd.DataFrame(np.nan, index=range(n), columns=list(FEATURES))
        f["speed_p50"] = p50 * rng.lognormal(0, 0.15, n)
        f["speed_p85"] = f["speed_p50"] * 1.2
        f["speed_p95"] = p95 * rng.lognormal(0, 0.15, n)
        f["route_share"] = np.clip(share - rng.uniform(0, 0.3, n), 0, 1)
        f["sched_match"] = (rng.uniform(size=n) < (0.9 if mode == "BUS" else 0.05)).astype(float)
        f["stops_at_bus_stops"] = rng.poisson(3 if mode == "BUS" else 0.3, n).astype(float)
        f["ferry_near_share"] = np.clip((0.95 if mode == "FERRY" else 0.0) + rng.normal(0, 0.05, n), 0, 1)
        rows.append(f)
        y += [mode] * n
    return pd.concat(rows, ignore_index=True), np.array(y, dtype=object)


@pytest.fixture(scope="module")
def trained():
    X, y = toy_features(60, seed=1)
    return ModeClassifier(max_iter=60, calibration="sigmoid").fit(X, y)


def test_fit_predict_on_held_out_toy_data(trained):
    X, y = toy_features(40, seed=2)  # other draws: held out
    pred = trained.predict(X)
    assert set(trained.classes_) == set(CLASSES)
    assert np.mean(pred == y) > 0.85


def test_predict_proba_is_a_distribution(trained):
    X, _ = toy_features(5, seed=3)
    p = trained.predict_proba(X)
    assert p.shape == (len(X), len(trained.classes_))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert ((p >= 0) & (p <= 1)).all()


def test_low_confidence_gives_unknown(trained):
    X, _ = toy_features(5, seed=4)
    strict = ModeClassifier(**{**trained.get_params(), "min_confidence": 1.01})
    strict.estimator_, strict.classes_ = trained.estimator_, trained.classes_
    strict.features_in_ = trained.features_in_
    assert (strict.predict(X) == "UNKNOWN").all()
    modes, conf = trained.predict_with_confidence(X)
    assert (modes[conf < trained.min_confidence] == "UNKNOWN").all()
    assert (modes[conf >= trained.min_confidence] != "UNKNOWN").all()


def test_missing_feature_columns_are_nan_not_errors(trained):
    X, _ = toy_features(3, seed=5)
    assert len(trained.predict(X[["speed_p50", "speed_p95"]])) == len(X)


def test_fit_maps_refined_modes_and_drops_others():
    X, y = toy_features(30, seed=6)
    y = y.copy()
    y[y == "BICYCLING"] = "BIKESHARE"
    y[:5] = "AIR"
    m = ModeClassifier(max_iter=20, calibration=None).fit(X, y)
    assert "BICYCLING" in m.classes_ and "BIKESHARE" not in m.classes_ and "AIR" not in m.classes_


def test_fit_needs_two_classes():
    X, _ = toy_features(5, seed=7)
    with pytest.raises(ValueError):
        ModeClassifier().fit(X, ["CAR"] * len(X))


def test_physical_modes():
    got = physical_modes(pd.Series(["CARSHARE", "E_BIKE", "TRAM", "AIR", "BUS"]))
    assert list(got[:3]) == ["CAR", "BICYCLING", "TRAIN"] and got[3] is None or pd.isna(got[3])
    assert got[4] == "BUS"


def _sections(n):
    return pd.DataFrame({"user_id": "u", "trip_id": "t", "section_id": [f"s{i}" for i in range(n)],
                         "start_ts": from_unix(np.arange(n) * 100.0), "end_ts": from_unix(np.arange(n) * 100.0 + 50),
                         "distance_m": 100.0, "duration_s": 50.0, "mode": "UNKNOWN"})


def test_classify_sections_with_model_and_with_rules(trained):
    X, y = toy_features(3, seed=8)
    secs = _sections(len(X))
    X.index = secs.index
    out = classify_sections(secs, X, trained)
    assert (out["mode_source"] == "classifier").all()
    assert out["mode_confidence"].between(0, 1).all()
    assert set(out["mode"]) <= set(CLASSES) | {"UNKNOWN"}
    ruled = classify_sections(secs, X, None)
    assert (ruled["mode_source"] == "rule").all() and ruled["mode_confidence"].isna().all()
    assert len(out) == len(secs) and (out["section_id"] == secs["section_id"]).all()


def test_rule_modes_on_clear_cases():
    f = pd.DataFrame(np.nan, index=range(6), columns=list(FEATURES))
    f["speed_p85"] = [1.5, 5.0, 12.0, 9.0, 35.0, 5.0]
    f["speed_p95"] = [1.8, 6.0, 15.0, 11.0, 40.0, 6.0]
    f["route_share"] = [0.1, 0.1, 0.1, 0.95, 0.0, 0.0]
    f["sched_match"] = [0, 0, 0, 1, 0, 0]
    f["ferry_near_share"] = [0, 0, 0, 0, 0, 0.9]
    assert list(rule_modes(f)) == ["WALKING", "BICYCLING", "CAR", "BUS", "TRAIN", "FERRY"]
    f.loc[2, ["motion_foot", "motion_bike", "motion_vehicle"]] = [0.9, 0.0, 0.1]  # phone says walking
    assert rule_modes(f)[2] == "WALKING"
    f.loc[0, "speed_p85"] = np.nan
    assert rule_modes(f)[0] == "UNKNOWN"


def test_mode_report_counts():
    y = ["CAR", "CAR", "BUS", "WALKING"]
    p = ["CAR", "BUS", "BUS", "UNKNOWN"]
    r = mode_report(y, p)
    assert r["accuracy"] == pytest.approx(0.5)
    assert r["per_mode"]["CAR"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert r["per_mode"]["BUS"]["precision"] == 0.5
    assert r["confusion"].loc["WALKING", "UNKNOWN"] == 1


def test_calibration_error():
    from pipeline.modes import calibration_error

    classes = np.array(["BUS", "CAR"])
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    r = calibration_error(["BUS", "CAR", "CAR", "BUS"], proba, classes, n_bins=10)
    # bins: 0.9 -> acc 0.5 (2 rows), 0.8 -> acc 1, 0.6 -> acc 0
    assert r["ece"] == pytest.approx((2 * 0.4 + 0.2 + 0.6) / 4)
    assert r["accuracy"] == 0.5 and r["mean_confidence"] == pytest.approx(0.8)


def test_shipped_style_model_is_calibrated_on_toy_data(trained):
    from pipeline.modes import calibration_error

    X, y = toy_features(60, seed=30)
    r = calibration_error(y, trained.predict_proba(X), trained.classes_)
    assert r["ece"] < 0.1


def test_fit_with_rows_grouped_by_missing_features():
    # the second half of the rows lacks a feature entirely (as motion-less copies do):
    # calibration folds must still see it in every training part
    X, y = toy_features(30, seed=40)
    X["motion_foot"] = np.random.default_rng(0).uniform(size=len(X))
    copy = X.copy()
    copy["motion_foot"] = np.nan
    X2 = pd.concat([X, copy], ignore_index=True)
    y2 = np.concatenate([y, y])
    m = ModeClassifier(max_iter=10, calibration="sigmoid", calibration_cv=2).fit(X2, y2)
    assert "motion_foot" in m.features_in_
