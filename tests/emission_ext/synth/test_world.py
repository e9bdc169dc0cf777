"""Invariants of generated worlds: schemas, determinism, ordering, gaps, DST, statistics."""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from emission_ext import schema
from emission_ext.errors import ConfigError
from emission_ext.synth import check_stats, generate_world, world_stats
from emission_ext.synth.world import days_for_points


def test_tables_follow_the_schema(world):
    schema.validate(world.testers, "testers")
    schema.validate(world.truth_places, "places")
    schema.validate(world.truth_trips, "trips")
    schema.validate(world.truth_sections, "sections")
    schema.validate(world.motion, "motion")
    schema.validate(world.transitions, "transitions")
    schema.validate(world.records, "records")
    assert set(world.points["source"]) <= {"android", "ios"}
    assert world.testers["user_id"].str.fullmatch(r"\d{3}").all()


def test_sections_tile_their_trips(world):
    s = world.truth_sections.sort_values(["user_id", "trip_id", "start_ts"])
    t = world.truth_trips.set_index(["user_id", "trip_id"])
    g = s.groupby(["user_id", "trip_id"])
    first, last = g["start_ts"].min(), g["end_ts"].max()
    assert (first == t.loc[first.index, "start_ts"]).all()
    assert (last == t.loc[last.index, "end_ts"]).all()
    # consecutive sections touch
    same = s["trip_id"].to_numpy()[1:] == s["trip_id"].to_numpy()[:-1]
    gap = (s["start_ts"].to_numpy()[1:] - s["end_ts"].to_numpy()[:-1])[same]
    assert (np.abs(gap / np.timedelta64(1, "s")) < 1e-3).all()
    # trips of a tester do not overlap and alternate with places
    tt = world.truth_trips.sort_values(["user_id", "start_ts"])
    same_u = tt["user_id"].to_numpy()[1:] == tt["user_id"].to_numpy()[:-1]
    assert (tt["start_ts"].to_numpy()[1:][same_u] > tt["end_ts"].to_numpy()[:-1][same_u]).all()
    assert (tt["end_place_id"].to_numpy()[:-1][same_u] == tt["start_place_id"].to_numpy()[1:][same_u]).all()


def test_no_empty_sections(week):
    """Every true section takes time and every ride covers ground: a tester whose car is parked
    where the trip ends walks there (no 0 m drive after the walk, a mode change no phone could
    see). A 0 m walk is allowed: the wait for the next bus at the stop the first one left at."""
    s = week.truth_sections
    dur = (s["end_ts"] - s["start_ts"]) / np.timedelta64(1, "s")
    assert (dur > 0).all(), s.loc[dur <= 0, ["section_id", "mode"]]
    ride = s["mode"] != "WALKING"
    assert (s.loc[ride, "distance_m"] > 0).all(), s.loc[ride & (s["distance_m"] <= 0), ["section_id", "mode"]]


def test_same_seed_same_world_other_seed_other_world(clean_world):
    again = generate_world(testers=4, days=2, seed=2, faults=False)
    pd.testing.assert_frame_equal(again.points, clean_world.points)
    pd.testing.assert_frame_equal(again.truth_sections, clean_world.truth_sections)
    other = generate_world(testers=4, days=2, seed=3, faults=False)
    assert len(other.points) != len(clean_world.points) or not np.allclose(
        other.points["lat"].to_numpy()[:50], clean_world.points["lat"].to_numpy()[:50])


def _inversions(points):
    ts = schema.to_unix(points["ts"])
    same = points["user_id"].to_numpy()[1:] == points["user_id"].to_numpy()[:-1]
    return int(((np.diff(ts) < 0) & same).sum())


def test_points_sorted_or_not_as_configured(world, clean_world):
    assert _inversions(clean_world.points) == 0
    schema.validate(clean_world.points, "points")           # no duplicate key without faults
    assert (clean_world.point_truth["fault"] == "none").all()
    assert _inversions(world.points) > 0                      # out-of-order fixes configured
    assert (world.point_truth["fault"] == "duplicate").sum() > 0
    assert world.points.duplicated(["user_id", "ts"]).sum() == (world.point_truth["fault"] == "duplicate").sum()
    s = generate_world(testers=3, days=1, seed=5, sorted_points=True)
    assert _inversions(s.points) == 0
    assert (s.point_truth["fault"] == "duplicate").any() or len(s.points) < 300


def test_every_section_has_points_unless_a_gap_is_configured(world, clean_world):
    for w in (world, clean_world):
        pt = w.point_truth
        counts = pt[pt["section_id"].notna() & (pt["fault"] != "duplicate")].groupby("section_id").size()
        s = w.truth_sections.set_index("section_id")
        assert (counts.reindex(s.index).fillna(0).astype(int) == s["n_points"]).all()
        empty = s[s["n_points"] == 0]
        assert empty["gap"].notna().all(), empty
        # without faults, only sections shorter than the geofence radius may be unseen
        if w is clean_world:
            assert set(empty["gap"]) <= {"geofence"}
            assert (empty["distance_m"] < 1.3 * w.params.sensing.geofence_m + 50).all()
    phone_off = world.truth_trips[world.truth_trips["phone_off"]]
    assert len(phone_off) > 0
    assert not world.point_truth["trip_id"].isin(phone_off["trip_id"]).any()


def test_points_lie_near_their_true_path(clean_world):
    """Fixes of a section are within a few accuracy radii of the section's true geometry."""
    import shapely
    w = clean_world
    pts = w.points.assign(section_id=w.point_truth["section_id"].to_numpy()).dropna(subset=["section_id"])
    geoms = w.truth_sections.set_index("section_id")["geometry"]
    lines = shapely.from_wkb(geoms.reindex(pts["section_id"]).to_numpy())
    p = shapely.points(pts["lon"].to_numpy(), pts["lat"].to_numpy())
    d_deg = shapely.distance(lines, p)
    d_m = d_deg * 111_000.0 * np.cos(np.radians(46.16))  # lower bound in metres
    ratio = d_m / np.maximum(pts["accuracy_m"].to_numpy(), 1.0)
    assert np.median(ratio) < 1.0
    assert np.quantile(ratio, 0.99) < 4.0


def test_stays_are_sampled_briefly_then_tracking_stops(week):
    w = week
    stay = w.point_truth["trip_id"].isna().to_numpy()
    assert 0 < stay.mean() < 0.35
    # no fix during the middle of long stays (tracking off)
    pl = w.truth_places.dropna(subset=["enter_ts", "exit_ts"])
    pl = pl[(pl["exit_ts"] - pl["enter_ts"]) > pd.Timedelta(hours=2)]
    ts = schema.to_unix(w.points["ts"])
    users = w.points["user_id"].to_numpy()
    for _, r in pl.head(40).iterrows():
        mid0 = r["enter_ts"].timestamp() + 1800
        mid1 = r["exit_ts"].timestamp() - 1800
        inside = (users == r["user_id"]) & (ts > mid0) & (ts < mid1)
        faults = w.point_truth["fault"].to_numpy()[inside]
        assert (faults != "none").sum() == inside.sum() or inside.sum() == 0


def test_statistics_in_documented_ranges(week):
    st = world_stats(week)
    bad = [c for c in check_stats(st) if not c[4]]
    assert not bad, bad
    assert 2.6 <= st["trips_per_tester_day"] <= 4.5
    assert st["mode_shares"].get("CAR", 0) > st["mode_shares"].get("BUS", 0)
    ios = week.testers["platform"].eq("ios").any()
    assert ios and np.isfinite(st["ios_step_median_m"])


def test_dst_change_day_keeps_local_clock_times():
    w = generate_world(testers=6, days=2, seed=4, start="2026-03-28")
    t = w.truth_trips[w.truth_trips["purpose"] == "leisure"]   # outings (train days leave from 08:00)
    local = t["start_ts"].dt.tz_convert("Europe/Paris")
    day29 = local[local.dt.date == date(2026, 3, 29)]
    assert len(day29) > 0
    assert (day29.dt.strftime("%z") == "+0200").all()
    first = day29.groupby(t.loc[day29.index, "user_id"]).min()
    hours = first.dt.hour + first.dt.minute / 60
    assert (hours >= 9.5).all()          # outings leave from 09:30 local, summer time


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError):
        generate_world(testers=2, days=1, platform="windows")
    with pytest.raises(ConfigError):
        generate_world(testers=0, days=1)
    with pytest.raises(ConfigError):
        generate_world(testers=1, days=1, start="2026-13-01")


def test_days_for_points_sizes_a_million_point_world():
    d = days_for_points(1_000_000, 50)
    assert 100 <= d <= 130


def _motion_with_sections(w):
    """Each motion reading with the true section (mode) it falls in, null outside trips."""
    s = w.truth_sections.sort_values(["user_id", "start_ts"])
    out = []
    for uid, m in w.motion.groupby("user_id"):
        su = s[s["user_id"] == uid]
        ts = schema.to_unix(m["ts"])
        st, en = schema.to_unix(su["start_ts"]), schema.to_unix(su["end_ts"])
        k = np.searchsorted(st, ts, side="right") - 1
        inside = (k >= 0) & (ts <= en[np.maximum(k, 0)])
        mode = np.where(inside, su["mode"].to_numpy()[np.maximum(k, 0)], None)
        out.append(pd.DataFrame({"activity": m["activity"].to_numpy(), "mode": mode}))
    return pd.concat(out, ignore_index=True)


def test_motion_activity_confusion_is_realistic(week):
    m = _motion_with_sections(week)
    share = pd.crosstab(m["mode"], m["activity"], normalize="index")
    assert share.loc["CAR", "IN_VEHICLE"] > 0.6
    assert 0.45 < share.loc["BUS", "IN_VEHICLE"] < 0.9          # a bus reads as a car...
    assert share.loc["BUS", "STILL"] > 0.05                       # ...that stops
    walking = share.loc["WALKING"].reindex(["ON_FOOT", "WALKING"]).fillna(0).sum()
    assert walking > 0.5
    on_foot = share.loc["BICYCLING"].reindex(["ON_FOOT", "WALKING"]).fillna(0).sum()
    assert 0.08 < on_foot < 0.4                                  # a bike is often read as on foot
    assert share.loc["BICYCLING", "ON_BICYCLE"] > 0.3
    # outside trips the phone reads STILL (the first minutes of a stay)
    assert (m.loc[m["mode"].isna(), "activity"] == "STILL").mean() > 0.6
