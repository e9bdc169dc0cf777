import gzip
import json

import numpy as np
import pandas as pd
import pytest

from emission_ext import schema
from emission_ext.errors import InputError
from emission_ext.evaluation import (match_trips, read_emission_ground_truth, score_trips,
                                     section_boundary_hits)
from emission_ext.evaluation.runs import real_days
from emission_ext.reference import EMISSION_REAL_DIR


def trips(rows, user="u"):
    return pd.DataFrame({"user_id": user,
                         "start_ts": schema.from_unix([r[0] for r in rows]),
                         "end_ts": schema.from_unix([r[1] for r in rows])})


def test_iou_threshold_is_half():
    ref = trips([(0, 100)])
    assert score_trips(trips([(0, 50)]), ref).matched == 1       # IoU 0.5
    assert score_trips(trips([(0, 49)]), ref).matched == 0       # IoU 0.49
    assert score_trips(trips([(0, 100)]), trips([(0, 100)], user="v")).matched == 0  # other user


def test_one_to_one_best_first_and_scores():
    ref = trips([(0, 100), (200, 300)])
    pred = trips([(10, 100), (0, 95), (500, 600)])
    m = match_trips(pred, ref)
    assert list(m["pred_idx"]) == [1] and list(m["ref_idx"]) == [0]
    s = score_trips(pred, ref)
    assert (s.matched, s.n_pred, s.n_ref) == (1, 3, 2)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(0.5)
    assert s.f1 == pytest.approx(2 / 5)
    assert s.median_start_err_s == 0 and s.median_end_err_s == 5


def test_empty_sides():
    s = score_trips(trips([]), trips([]))
    assert s.f1 == 1.0 and np.isnan(s.median_start_err_s)
    assert score_trips(trips([(0, 1)]), trips([])).precision == 0.0


def test_boundary_hits_count_only_mode_changes():
    ref = pd.DataFrame({"user_id": "u", "trip_id": "t", "mode": ["WALKING", "BUS", "BUS", "WALKING"],
                        "start_ts": schema.from_unix([0, 100, 200, 300])})
    pred = pd.DataFrame({"user_id": "u", "trip_id": "x", "mode": "CAR",
                         "start_ts": schema.from_unix([0, 130, 400])})
    assert section_boundary_hits(pred, ref, 60) == (1, 2)   # 100 hit (130), 300 missed (400)


def test_predicted_boundaries_near_a_true_change():
    from emission_ext.evaluation.segmentation import predicted_boundaries_near
    ref = pd.DataFrame({"user_id": "u", "trip_id": "t", "mode": ["WALKING", "BUS", "BUS", "WALKING"],
                        "start_ts": schema.from_unix([0, 100, 200, 300])})
    pred = pd.DataFrame({"user_id": "u", "trip_id": "x", "mode": "CAR",
                         "start_ts": schema.from_unix([0, 130, 210, 400])})
    # 130 is near the change at 100; 210 is near only a bus -> bus section start (no change); 400 is far
    assert predicted_boundaries_near(pred, ref, 60) == (1, 3)
    assert predicted_boundaries_near(pred.assign(user_id="v"), ref, 60) == (0, 3)


def test_boundary_hits_with_trip_edges():
    # a walk to the stop with no fix: our trip starts when the bus moves (t=100) and ends at
    # t=290 as the tester alights (no fix of the final walk)
    ref = pd.DataFrame({"user_id": "u", "trip_id": "t", "mode": ["WALKING", "BUS", "WALKING"],
                        "start_ts": schema.from_unix([0, 100, 300])})
    pred = pd.DataFrame({"user_id": "u", "trip_id": "x", "mode": "CAR",
                         "start_ts": schema.from_unix([95])})
    trips_ = pd.DataFrame({"user_id": ["u", "v"], "start_ts": schema.from_unix([95, 295]),
                           "end_ts": schema.from_unix([290, 500])})
    assert section_boundary_hits(pred, ref, 60) == (0, 2)
    assert section_boundary_hits(pred, ref, 60, pred_trips=trips_) == (2, 2)
    # another user's trip edge does not count
    assert section_boundary_hits(pred, ref, 60, pred_trips=trips_.iloc[1:]) == (0, 2)


def test_ground_truth_reader_and_errors(tmp_path):
    t, s = read_emission_ground_truth(EMISSION_REAL_DIR / "shankari_2016-08-10.ground_truth.json.gz")
    assert len(t) == 5 and t["start_ts"].is_monotonic_increasing
    assert set(s["mode"]) <= {"ON_FOOT", "BICYCLING", "WALKING", "IN_VEHICLE", "UNKNOWN"}
    bad = tmp_path / "x.ground_truth.json.gz"
    bad.write_bytes(gzip.compress(json.dumps({"nope": 1}).encode()))
    with pytest.raises(InputError):
        read_emission_ground_truth(bad)


def test_real_days_overall_f1():
    per_day, overall = real_days(EMISSION_REAL_DIR)
    assert overall.f1 >= 0.9
    assert overall.median_start_err_s < 120 and overall.median_end_err_s < 120
    assert set(per_day.loc[per_day["note"] != "", "day"]) >= {"jack_untracked_time_2023-03-12"}


def test_synthetic_world_run(tmp_path):
    synth = pytest.importorskip("emission_ext.synth")
    synth.write_world(synth.generate_world(testers=4, days=2, seed=5), tmp_path)
    from emission_ext.evaluation.runs import synthetic

    res = synthetic(tmp_path)
    assert res["trips"].n_ref > 0
    assert res["trips"].f1 >= 0.85
    assert 0 <= res["boundary_hits"] <= res["boundary_total"]
