"""End-to-end scoring helpers: best-overlap section matching, mode score, record attachment."""
import pandas as pd

from emission_ext import schema
from emission_ext.evaluation.pipeline import best_overlap, mode_score, record_attachment

T0 = 1.77e9


def _sections(rows):
    df = pd.DataFrame(rows, columns=["user_id", "section_id", "start", "end", "mode"])
    df["start_ts"] = schema.from_unix(T0 + df["start"]).to_numpy()
    df["end_ts"] = schema.from_unix(T0 + df["end"]).to_numpy()
    return df.drop(columns=["start", "end"])


TRUTH = _sections([("a", "t1", 0, 600, "WALKING"), ("a", "t2", 600, 1800, "BUS"),
                   ("b", "t3", 0, 100, "CAR")])


def test_best_overlap_picks_the_longest_overlap_and_leaves_uncovered_sections_null():
    pred = _sections([("a", "p1", 0, 700, "WALKING"), ("a", "p2", 700, 1800, "CAR")])
    b = best_overlap(pred, TRUTH)
    assert b["pred_section_id"].tolist()[:2] == ["p1", "p2"] and pd.isna(b["pred_section_id"].iloc[2])
    assert b["overlap_s"].tolist() == [600, 1100, 0]


def test_mode_score_counts_uncovered_sections_as_wrong_and_weights_by_time():
    pred = _sections([("a", "p1", 0, 700, "WALKING"), ("a", "p2", 700, 1800, "BUS")])
    s = mode_score(pred, TRUTH)
    assert (s.n, s.covered) == (3, 2)
    assert abs(s.accuracy - 2 / 3) < 1e-12
    assert abs(s.duration_accuracy - 1800 / 1900) < 1e-12


def test_record_attachment_scores_only_records_with_a_true_section():
    pred = _sections([("a", "p1", 0, 700, "WALKING"), ("a", "p2", 700, 1800, "BUS")])
    truth = pd.DataFrame({"source": ["yelo_bus", "yelo_bus", "yelo_bike"], "record_id": ["r1", "r2", "r3"],
                          "user_id": ["a", "a", "a"], "section_id": ["t2", "t1", None]})
    got = pd.DataFrame({"source": ["yelo_bus", "yelo_bus", "yelo_bike"], "record_id": ["r1", "r2", "r3"],
                        "section_id": ["p2", "p2", None]})
    assert record_attachment(got, truth, pred, TRUTH) == (1, 2)
