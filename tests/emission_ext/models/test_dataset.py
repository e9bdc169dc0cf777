"""Labelled section tables: truth labels by majority of points, real e-mission days."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emission_ext.models.dataset import read_real_day, real_sections, truth_labels
from emission_ext.reference import EMISSION_REAL_DIR
from emission_ext.schema import from_unix


def test_truth_labels_take_the_majority_mode_of_the_points():
    # truth: walk 0-100 s, bus 100-400 s (as BUS), bikeshare 500-600 s
    truth = pd.DataFrame({"user_id": "u", "section_id": ["a", "b", "c"],
                          "start_ts": from_unix([0, 100, 500]), "end_ts": from_unix([100, 400, 600]),
                          "mode": ["WALKING", "BUS", "BIKESHARE"]})
    # our sections: s1 covers 0-300 (10 walk points? no: 4 walk + 8 bus), s2 covers 500-600, s3 nothing
    ts = np.r_[np.arange(0, 100, 25), np.arange(100, 300, 25), np.arange(500, 600, 20), [450.0]]
    sec = np.r_[["s1"] * 4, ["s1"] * 8, ["s2"] * 5, ["s3"]]
    pts = pd.DataFrame({"user_id": "u", "ts": from_unix(ts), "section_id": sec})
    sections = pd.DataFrame({"user_id": "u", "section_id": ["s2", "s1", "s3"]}, index=[7, 8, 9])
    lab = truth_labels(pts, sections, truth)
    assert list(lab.index) == [7, 8, 9]
    assert lab.loc[8, "label"] == "BUS" and lab.loc[8, "purity"] == pytest.approx(8 / 12)
    assert lab.loc[7, "label"] == "BICYCLING" and lab.loc[7, "purity"] == 1.0  # bikeshare is a bicycle
    assert lab.loc[9, "label"] is None  # its only point lies between truth sections


def test_truth_labels_do_not_mix_users():
    truth = pd.DataFrame({"user_id": ["u", "v"], "section_id": ["a", "a"],
                          "start_ts": from_unix([0, 0]), "end_ts": from_unix([100, 100]),
                          "mode": ["CAR", "WALKING"]})
    pts = pd.DataFrame({"user_id": ["v", "v"], "ts": from_unix([10, 20]), "section_id": ["x", "x"]})
    lab = truth_labels(pts, pd.DataFrame({"user_id": ["v"], "section_id": ["x"]}), truth)
    assert lab.loc[0, "label"] == "WALKING"


def test_real_day_sections_and_user_confirmations():
    day = read_real_day(EMISSION_REAL_DIR / "shankari_2016-06-20.json.gz")
    assert day.tz == "America/Los_Angeles"
    assert len(day.sections) == 8
    assert set(day.sections["coarse"]) == {"on_foot", "vehicle"}
    confirmed = day.sections.dropna(subset=["user_label"])
    assert len(confirmed) >= 3
    # a confirmed car trip only names its vehicle sections, never its walking legs
    assert (confirmed.loc[confirmed["user_label"] == "CAR", "coarse"] == "vehicle").all()
    assert read_real_day(EMISSION_REAL_DIR / "shankari_2023-04-13.json.gz") is None  # no ground truth


def test_real_sections_are_gps_only():
    df = real_sections(None, days=[EMISSION_REAL_DIR / "shankari_2016-08-10.json.gz"])
    assert len(df) == 6 and (df["group"] == "shankari_2016-08-10").all()
    assert df["motion_n"].isna().all()  # motion removed from the input
    assert df["n_points"].gt(0).all()
    walk = df[df["coarse"] == "on_foot"]
    assert (walk["label"] == "WALKING").all() and walk["speed_p50"].lt(2.5).all()


def test_ferry_outing_reaches_the_generator(monkeypatch):
    """``ferry_outing`` builds the world with that sea-shuttle outing probability (and only then)."""
    import emission_ext.synth as synth
    from emission_ext.models.dataset import synthetic_sections

    seen = []

    class Stop(Exception):
        pass

    def fake(**kw):
        seen.append(kw)
        raise Stop

    monkeypatch.setattr(synth, "generate_world", fake)
    with pytest.raises(Stop):
        synthetic_sections(3, 2, 1, ferry_outing=1.0)
    with pytest.raises(Stop):
        synthetic_sections(3, 2, 1)
    assert seen[0]["plans"].p_ferry_outing == 1.0 and seen[0]["seed"] == 3
    assert "plans" not in seen[1]


def test_synthetic_sections_segment_with_the_transit_index(monkeypatch):
    """The training sections are cut like ``process`` cuts them: with the reference lines (so a
    ferry crossing is its own section), also when the GTFS *features* are left out."""
    import pipeline.segment as segment
    from emission_ext.models.apply import transit_index
    from emission_ext.models.dataset import synthetic_sections

    seen = []

    class Stop(Exception):
        pass

    def fake(points, motion=None, transitions=None, params=None, **kw):
        seen.append(kw.get("transit"))
        raise Stop

    monkeypatch.setattr(segment, "segment_user", fake)
    index = transit_index()
    for transit in (index, None):
        with pytest.raises(Stop):
            synthetic_sections(3, 2, 1, transit)
    assert seen[0] is index and seen[1] is not None


def test_training_mask_drops_impure_and_evidence_free_synthetic_sections_only():
    from emission_ext.models.dataset import MIN_TRAIN_POINTS, MIN_TRAIN_PURITY, training_mask
    from pipeline.features import MOTION_FEATURES

    df = pd.DataFrame({
        "label": ["WALKING", "WALKING", "CAR", None, "WALKING", "BUS", "BUS"],
        "purity": [1.0, 1.0, 0.5, 1.0, np.nan, 0.9, 1.0],
        "n_points": [1, 2, 30, 30, 1, 40, 1],
        "source": ["synth", "synth", "synth", "synth", "real", "synth", "synth"],
    })
    for c in MOTION_FEATURES:
        df[c] = np.nan
    df.loc[6, "motion_n"] = 3.0  # a one-fix section with the phone's motion activity
    assert MIN_TRAIN_POINTS == 2 and MIN_TRAIN_PURITY == 0.6
    # one fix and no motion: out; with motion: kept; impure out; unlabelled out; real one-fix kept
    assert training_mask(df).tolist() == [False, True, False, False, True, True, True]
    # min_points=1 is the former rule: purity and label only
    assert training_mask(df, min_points=1).tolist() == [True, True, False, False, True, True, True]
    assert training_mask(df, min_purity=0.0, min_points=1).tolist() == [True, True, True, False, True, True, True]
    # without a source column every row is synthetic; without motion columns none has motion
    assert training_mask(df.drop(columns="source")).tolist() == [False, True, False, False, False, True, True]
    assert training_mask(df.drop(columns=list(MOTION_FEATURES))).tolist() == [
        False, True, False, False, True, True, False]
    # an unknown number of fixes (or purity) does not drop the row
    assert training_mask(df.assign(n_points=np.nan)).tolist() == [True, True, False, False, True, True, True]


def test_training_rows_drop_the_motion_free_copy_of_one_fix_sections():
    from emission_ext.commands.model import _training_rows
    from pipeline.features import MOTION_FEATURES

    df = pd.DataFrame({"label": ["BUS", "CAR"], "purity": [1.0, 1.0], "n_points": [1, 5],
                       "source": "synth"})
    for c in MOTION_FEATURES:
        df[c] = 0.5
    X, y = _training_rows(df, 0.6, drop_motion_copy=True)
    # the one-fix BUS keeps its motion row only; the 5-fix CAR is there with and without motion
    assert sorted(y.tolist()) == ["BUS", "CAR", "CAR"]
    assert X.loc[X["label"] == "BUS", list(MOTION_FEATURES)].notna().all(axis=None)
    X1, y1 = _training_rows(df, 0.6, drop_motion_copy=True, min_points=1)
    assert len(X1) == 4
