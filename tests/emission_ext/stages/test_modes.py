"""Stage ``modes``: classifies a user's segmented sections (shipped model or rules)."""
from __future__ import annotations

import pytest

from emission_ext.models import DEFAULT_MODEL_PATH
from emission_ext.stages import StageContext, load_stage
from emission_ext.stages import modes as stage
from emission_ext.stages import segment


@pytest.fixture(scope="module")
def segmented():
    from emission_ext.synth import generate_world

    w = generate_world(testers=1, days=2, seed=5)
    inputs = {"points": w.points, "motion": w.motion, "transitions": w.transitions}
    out = segment.run(inputs, StageContext(user_id=str(w.points["user_id"].iloc[0])))
    return out, w


def test_stage_is_available_and_declares_its_tables():
    info = load_stage("modes")
    assert info.available, info.reason
    assert stage.INPUTS == ("sections", "labelled_points", "motion") and stage.OUTPUTS == ("sections",)


def test_stage_sets_mode_confidence_and_source(segmented):
    seg, w = segmented
    ctx = StageContext(user_id="x")
    out = stage.run({"sections": seg["sections"], "labelled_points": seg["labelled_points"],
                     "motion": w.motion}, ctx)["sections"]
    assert len(out) == len(seg["sections"])
    assert list(out["section_id"]) == list(seg["sections"]["section_id"])
    source = "classifier" if DEFAULT_MODEL_PATH.exists() else "rule"
    assert (out["mode_source"] == source).all()
    assert out["mode"].isin(["WALKING", "BICYCLING", "BUS", "CAR", "TRAIN", "FERRY", "UNKNOWN"]).all()
    if source == "classifier":
        assert out["mode_confidence"].between(0, 1).all()


def test_stage_rules_when_asked(segmented):
    seg, w = segmented
    ctx = StageContext(user_id="x", params={"modes": {"model": None}})
    out = stage.run({"sections": seg["sections"], "labelled_points": seg["labelled_points"],
                     "motion": w.motion}, ctx)["sections"]
    assert (out["mode_source"] == "rule").all() and out["mode_confidence"].isna().all()
