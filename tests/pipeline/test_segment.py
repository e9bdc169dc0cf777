"""segment_user end to end, and property-based robustness on nasty input (hypothesis)."""
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emission_ext import schema
from pipeline.segment import segment_user
from tests.pipeline._frames import T0, day, frame

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(res, n_in):
    for name in ("places", "trips", "sections"):
        schema.validate(res[name], name)
    assert len(res["labelled_points"]) + len(res["removed"]) == n_in
    t = res["trips"]
    assert (t["end_ts"] >= t["start_ts"]).all()
    s = res["sections"]
    assert set(s["trip_id"]) <= set(t["trip_id"])
    # trips of a user do not overlap
    for _, g in t.groupby("user_id"):
        assert (g["start_ts"].iloc[1:].to_numpy() >= g["end_ts"].iloc[:-1].to_numpy()).all()


def test_empty_and_one_point():
    check(segment_user(frame([], [], [])), 0)
    r = segment_user(frame([0], [0], [0]))
    check(r, 1)
    assert len(r["trips"]) == 0 and len(r["places"]) == 1


def test_all_identical_points():
    r = segment_user(frame(np.zeros(50), np.zeros(50), np.zeros(50)))
    check(r, 50)
    assert len(r["trips"]) == 0


def test_twelve_hour_gap_splits_and_midnight_dst():
    # 2023-10-29 01:00 UTC: Paris leaves summer time; trips before and after midnight
    base = pd.Timestamp("2023-10-28T21:30Z").timestamp() - T0
    t = np.r_[np.arange(0, 1800, 30.0), np.arange(1800 + 12 * 3600, 1800 + 12 * 3600 + 1800, 30.0)] + base
    x = np.r_[np.arange(60) * 300.0, 18000 + np.arange(60) * 300.0]
    r = segment_user(frame(t, x, np.zeros_like(t)).assign(tz="Europe/Paris"))
    check(r, 120)
    assert len(r["trips"]) == 2
    assert (r["trips"]["tz"] == "Europe/Paris").all()


def test_duplicated_timestamps_and_unsorted():
    pts, _ = day()
    nasty = pd.concat([pts, pts.iloc[::7]]).sample(frac=1, random_state=0)
    r = segment_user(nasty)
    check(r, len(nasty))
    assert len(r["trips"]) == 1 and (r["removed"]["reason"] == "duplicate").sum() == len(pts.iloc[::7])


def test_rerun_is_idempotent():
    pts, _ = day(moves=((3000, 10.0), (2000, 1.4)), stays=(1800, 1800, 1800))
    a, b = segment_user(pts), segment_user(pts.iloc[::-1])
    for name in ("places", "trips", "sections"):
        pd.testing.assert_frame_equal(a[name], b[name])


@FAST
@given(st.lists(st.tuples(st.floats(0, 86400 * 2), st.floats(-5000, 5000), st.floats(-5000, 5000)),
                max_size=60),
       st.sampled_from(["android", "ios"]))
def test_random_points_never_crash(rows, source):
    t = np.array([r[0] for r in rows], dtype=float)
    x = np.array([r[1] for r in rows], dtype=float)
    y = np.array([r[2] for r in rows], dtype=float)
    check(segment_user(frame(t, x, y, source=source)), len(rows))


@FAST
@given(st.integers(2, 400), st.floats(0.0, 40.0), st.floats(1.0, 120.0), st.integers(0, 3))
def test_moving_tracks_with_repeats_and_users(n, speed, dt, users):
    t = np.repeat(np.arange(n // 2 + 1) * dt, 2)[:n]  # every timestamp twice
    pts = pd.concat([frame(t, speed * t, np.zeros(n), user=f"{u:03d}") for u in range(users + 1)])
    res = segment_user(pts)
    check(res, len(pts))
    # a trip that never ends is closed at the last point
    if len(res["trips"]):  # (unix-second floats carry ~0.2 us of rounding)
        assert res["trips"]["end_ts"].max() <= pts["ts"].max() + pd.Timedelta("1ms")
