"""Stage ``fuse``: records fused with the user's sections, with the phone's points and the
shipped GTFS lines' stops."""
from __future__ import annotations

import pandas as pd

from emission_ext.stages import StageContext, load_stage
from emission_ext.stages import fuse as stage
from tests.pipeline.test_fusion import MID23, P, make, points_along, rec, recs, wkb


def _inputs(points):
    t, s = make([("WALKING", 0, 20, [0, 1, 2], 0.6)])
    s["geometry"] = wkb(P[0], P[1], P[2], MID23)
    return {"trips": t, "sections": s, "records": recs(rec("V1", "yelo_bus", 12.2, 1)), "labelled_points": points}


def test_stage_is_available_and_declares_its_tables():
    info = load_stage("fuse")
    assert info.available, info.reason
    assert stage.INPUTS == ("trips", "sections", "records", "labelled_points")
    assert stage.OUTPUTS == ("trips", "sections", "records", "conflicts")


def test_stage_cuts_a_short_ride_out_with_the_points():
    pts = points_along((0, 10, P[0], P[1]), (10, 12, P[1], P[1]), (12, 13, P[1], P[2]), (13, 20.01, P[2], MID23))
    out = stage.run(_inputs(pts), StageContext(user_id="u1"))
    assert list(out["sections"]["section_id"]) == ["t1-s0.1", "t1-s0.2", "t1-s0.3"]
    assert out["records"].set_index("record_id").loc["V1", "section_id"] == "t1-s0.2"
    assert "user_id" in out["conflicts"]


def test_stage_without_points_still_fuses():
    empty = pd.DataFrame({"user_id": pd.Series([], dtype=object), "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
                          "lat": pd.Series([], dtype=float), "lon": pd.Series([], dtype=float)})
    out = stage.run(_inputs(empty), StageContext(user_id="u1", params={"fuse": {"min_split_s": 120.0}}))
    assert out["records"].set_index("record_id").loc["V1", "section_id"] == "t1-s0.2"
    assert list(out["sections"]["section_id"]) == ["t1-s0.1", "t1-s0.2"]
