"""Helpers of ``evaluate fusion`` and ``bench fusion`` (the figures come from the commands)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from emission_ext import schema
from emission_ext.bench.fusion import records_from_sections
from emission_ext.evaluation.fusion import _best_truth

T0 = pd.Timestamp("2026-03-02 07:00", tz="UTC")


def secs(rows):
    return pd.DataFrame([dict(user_id=u, trip_id="t", section_id=s, start_ts=T0 + pd.Timedelta(minutes=a),
                              end_ts=T0 + pd.Timedelta(minutes=b)) for u, s, a, b in rows])


def test_best_truth_is_the_largest_overlap_of_the_same_user():
    ours = secs([("u", "a", 0, 10), ("u", "b", 10, 30), ("v", "c", 0, 30), ("u", "d", 100, 110)])
    truth = secs([("u", "T1", 0, 4), ("u", "T2", 4, 25), ("u", "T3", 25, 30), ("v", "T9", 20, 60)])
    best = _best_truth(ours, truth)
    assert best[("u", "a")] == "T2" and best[("u", "b")] == "T2"
    assert best[("v", "c")] == "T9" and pd.isna(best[("u", "d")])


def test_records_from_sections_sit_at_the_section_ends():
    n = 40
    line = shapely.to_wkb(shapely.linestrings([[(-1.15, 46.15), (-1.14, 46.16)]] * n))
    s = schema.coerce(pd.DataFrame({
        "user_id": [f"{i % 4:03d}" for i in range(n)], "trip_id": "t", "section_id": [f"s{i}" for i in range(n)],
        "start_ts": T0 + pd.to_timedelta(np.arange(n) * 3600.0, unit="s"),
        "end_ts": T0 + pd.to_timedelta(np.arange(n) * 3600.0 + 900, unit="s"),
        "distance_m": 1000.0, "duration_s": 900.0, "mode": "UNKNOWN", "geometry": list(line)}), "sections")
    recs, pick = records_from_sections(s, 200, seed=1)
    schema.validate(recs, "records")
    assert len(recs) == 200 and recs["record_id"].is_unique
    drawn = s.iloc[pick]
    dt = np.where(recs["source"] == "parking", schema.to_unix(recs["start_ts"]) - schema.to_unix(drawn["end_ts"]),
                  schema.to_unix(recs["start_ts"]) - schema.to_unix(drawn["start_ts"]))
    assert np.abs(dt).max() <= 180.0
    park = (recs["source"] == "parking").to_numpy()
    assert np.allclose(recs.loc[park, "start_lat"], 46.16) and np.allclose(recs.loc[~park, "start_lat"], 46.15)
    assert recs.loc[recs["source"] == "yelo_bus", "end_ts"].isna().all()
