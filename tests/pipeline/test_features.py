"""Section features on hand-made tracks whose answers are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emission_ext.schema import from_unix
from pipeline.features import (FEATURES, KINEMATIC_FEATURES, MOTION_FEATURES, TRANSIT_FEATURES,
                               group_quantiles, section_features)
from pipeline.transit import TransitIndex, TransitParams
from tests.pipeline.test_transit import LAT0, LON0, east, tiny_feed

T0 = pd.Timestamp("2025-06-03 08:00", tz="Europe/Paris").timestamp()


def track(speeds, dt=5.0, t0=T0, lat0=LAT0, lon0=LON0, heading=90.0, user="u", sec="s1", zigzag=0.0):
    """Points of a straight (or zig-zag) track moving at ``speeds[i]`` m/s during step i."""
    speeds = np.asarray(speeds, float)
    d = np.r_[0.0, np.cumsum(speeds * dt)]
    h = np.radians(heading)
    north = d * np.cos(h)
    east_m = d * np.sin(h)
    if zigzag:
        north = north + zigzag * (np.arange(len(d)) % 2)
    t = t0 + np.arange(len(d)) * dt
    return pd.DataFrame({
        "user_id": user, "ts": from_unix(t),
        "lat": lat0 + north / 111_195.0,
        "lon": lon0 + east_m / (111_195.0 * np.cos(np.radians(lat0))),
        "accuracy_m": 8.0, "source": "android", "trip_id": "t1", "section_id": sec,
    })


def sections_of(points: pd.DataFrame) -> pd.DataFrame:
    g = points.groupby(["user_id", "section_id"], sort=False)["ts"].agg(["min", "max"]).reset_index()
    return pd.DataFrame({"user_id": g["user_id"], "trip_id": "t1", "section_id": g["section_id"],
                         "start_ts": g["min"], "end_ts": g["max"]})


def test_constant_speed_track():
    pts = track([1.4] * 60)
    f = section_features(pts, sections_of(pts)).iloc[0]
    assert f["n_points"] == 61
    assert f["duration_s"] == pytest.approx(300.0)
    assert f["distance_m"] == pytest.approx(420.0, rel=1e-3)
    assert f["sinuosity"] == pytest.approx(1.0, abs=1e-6)
    for c in ("speed_p10", "speed_p50", "speed_p95", "speed_mean"):
        assert f[c] == pytest.approx(1.4, rel=1e-3)
    assert f["acc_p90"] == pytest.approx(0.0, abs=1e-6)
    assert f["stop_per_km"] == 0.0 and f["stop_share"] == 0.0
    assert f["dt_median"] == 5.0 and f["gap_share"] == 0.0
    assert f["accuracy_median"] == 8.0


def test_stops_counted_with_their_duration():
    # 10 m/s, then stopped 30 s (6 steps), then 10 m/s, then stopped 5 s (too short to count)
    pts = track([10.0] * 20 + [0.0] * 6 + [10.0] * 20 + [0.0] + [10.0] * 10)
    f = section_features(pts, sections_of(pts)).iloc[0]
    assert f["stop_mean_s"] == pytest.approx(30.0)
    assert f["stop_per_km"] == pytest.approx(1000.0 / 2500.0, rel=1e-3)  # 50 steps of 50 m
    assert f["stop_share"] == pytest.approx(30.0 / f["duration_s"])
    assert f["acc_p90"] > 0


def test_turn_rate_separates_zigzag_from_straight():
    straight = track([3.0] * 40, sec="a")
    zig = track([3.0] * 40, sec="b", zigzag=10.0, t0=T0 + 1000)
    pts = pd.concat([straight, zig], ignore_index=True)
    f = section_features(pts, sections_of(pts))
    assert f.loc[0, "turn_per_100m"] == pytest.approx(0.0, abs=1e-6)
    assert f.loc[1, "turn_per_100m"] > 100.0
    assert f.loc[1, "sharp_turn_share"] > 0.9
    assert f.loc[1, "sinuosity"] < 0.9


def test_rows_follow_sections_order_and_index_whatever_the_points_order():
    a = track([1.4] * 30, sec="walk")
    b = track([12.0] * 30, sec="car", t0=T0 + 2000)
    c = track([4.0] * 30, sec="bike", user="v")
    pts = pd.concat([a, b, c], ignore_index=True).sample(frac=1.0, random_state=1)
    secs = sections_of(pd.concat([a, b, c])).iloc[[2, 0, 1]]
    secs.index = [10, 20, 30]
    f = section_features(pts, secs)
    assert list(f.index) == [10, 20, 30]
    assert list(f.columns) == list(FEATURES)
    np.testing.assert_allclose(f["speed_p50"].to_numpy(), [4.0, 1.4, 12.0], rtol=1e-3)


def test_section_without_points_is_nan_and_points_outside_sections_ignored():
    pts = track([2.0] * 10)
    pts.loc[:3, "section_id"] = None
    secs = pd.concat([sections_of(pts.dropna(subset=["section_id"])),
                      pd.DataFrame({"user_id": ["u"], "trip_id": ["t1"], "section_id": ["empty"],
                                    "start_ts": from_unix([T0]), "end_ts": from_unix([T0 + 10])})],
                     ignore_index=True)
    f = section_features(pts, secs)
    assert f.loc[0, "n_points"] == 7
    assert f.loc[1, "n_points"] == 0
    assert np.isnan(f.loc[1, "speed_p50"])


def test_gps_jumps_do_not_make_speeds():
    pts = track([1.4] * 20)
    pts.loc[10, "lat"] += 0.5  # a 55 km jump for one fix
    f = section_features(pts, sections_of(pts)).iloc[0]
    assert f["speed_p95"] < 3.0


def test_motion_shares():
    pts = track([1.4] * 60)  # 08:00 - 08:05
    ts = from_unix(T0 + np.array([10, 20, 30, 40, 400.0]))
    motion = pd.DataFrame({"user_id": "u", "ts": ts,
                           "activity": ["WALKING", "ON_FOOT", "IN_VEHICLE", "STILL", "ON_BICYCLE"],
                           "confidence": 90.0})
    f = section_features(pts, sections_of(pts), motion=motion).iloc[0]
    assert f["motion_foot"] == pytest.approx(0.5)
    assert f["motion_vehicle"] == pytest.approx(0.25)
    assert f["motion_still"] == pytest.approx(0.25)
    assert f["motion_bike"] == 0.0  # the bicycle reading is after the section
    assert f["motion_n"] == 4
    g = section_features(pts, sections_of(pts)).iloc[0]
    assert g[list(MOTION_FEATURES)].isna().all()


@pytest.fixture(scope="module")
def tiny():
    return TransitIndex.from_gtfs(tiny_feed(), TransitParams(cell_m=5.0, margin_m=500.0))


def test_transit_features_for_a_scheduled_bus_ride(tiny):
    # trip t1 leaves S0 (x=0) at 08:10, reaches S1 08:14, S2 08:18: ride it with a 20 s dwell at S1
    dt = 5.0
    leg = [1000.0 / 220.0] * 44  # 1000 m in 220 s, then dwell 20 s
    bus = track(leg + [0.0] * 4 + leg, dt=dt, t0=T0 + 600, sec="bus")
    # a car on a parallel street 300 m north, same times
    car = track(leg + [0.0] * 4 + leg, dt=dt, t0=T0 + 600, sec="car", lat0=LAT0 + 300 / 111_195.0)
    pts = pd.concat([bus, car], ignore_index=True)
    f = section_features(pts, sections_of(pts), transit=tiny)
    bus_f, car_f = f.iloc[0], f.iloc[1]
    assert bus_f["bus_near_share"] == 1.0 and bus_f["route_share"] == 1.0
    assert bus_f["stops_at_bus_stops"] == 1 and bus_f["stop_at_stop_share"] == 1.0
    assert bus_f["sched_match"] == 1.0
    assert car_f["bus_near_share"] == 0.0 and car_f["route_share"] == 0.0
    assert car_f["sched_match"] == 0.0
    assert car_f["bus_dist_median"] == pytest.approx(300.0, abs=10.0)
    assert bus_f["rail_station_dist"] == pytest.approx(np.hypot(1000.0, 800.0), abs=5.0)  # ends at (2000, 0); G at (3000, -800)
    assert bus_f["ferry_near_share"] == 0.0


def test_transit_features_off_schedule_do_not_match(tiny):
    leg = [1000.0 / 220.0] * 44
    bus = track(leg + [0.0] * 4 + leg, t0=T0 - 3 * 3600, sec="early")  # 05:00, no bus yet
    f = section_features(bus, sections_of(bus), transit=tiny).iloc[0]
    assert f["route_share"] == 1.0 and f["sched_match"] == 0.0


def test_without_transit_index_the_transit_features_are_nan():
    pts = track([5.0] * 10)
    f = section_features(pts, sections_of(pts)).iloc[0]
    assert f[list(TRANSIT_FEATURES)].isna().all()


def test_group_quantiles_nearest_rank():
    v = np.array([5.0, 1.0, 3.0, np.nan, 10.0, 20.0])
    g = np.array([0, 0, 0, 0, 2, 2])
    q = group_quantiles(v, g, 3, (0.0, 0.5, 1.0))
    np.testing.assert_allclose(q[0], [1.0, 3.0, 5.0])
    assert np.isnan(q[1]).all()
    np.testing.assert_allclose(q[2, [0, 2]], [10.0, 20.0])


def test_endpoint_features(tiny):
    leg = [1000.0 / 220.0] * 44
    bus = track(leg + [0.0] * 4 + leg, t0=T0 + 600, sec="bus")          # S0 -> S2
    rail = track([20.0] * 50, t0=T0, sec="rail", lat0=LAT0 - 800 / 111_195.0,
                 lon0=east(3000.0), heading=270.0)                       # leaves station G westwards
    pts = pd.concat([bus, rail], ignore_index=True)
    f = section_features(pts, sections_of(pts), transit=tiny)
    assert f.loc[0, "endpoints_at_stops"] == 2 and f.loc[0, "endpoints_at_rail"] == 0
    assert f.loc[1, "endpoints_at_rail"] == 1


def test_local_hour_per_section_zone():
    a = track([1.4] * 5, sec="paris", t0=pd.Timestamp("2025-06-03 12:00", tz="UTC").timestamp())
    b = track([1.4] * 5, sec="sf", t0=pd.Timestamp("2025-06-03 12:00", tz="UTC").timestamp(), user="v")
    pts = pd.concat([a, b], ignore_index=True)
    secs = sections_of(pts)
    f = section_features(pts, secs, tz=["Europe/Paris", "America/Los_Angeles"])
    hours = np.degrees(np.arctan2(f["hour_sin"], f["hour_cos"])) % 360 / 15.0
    np.testing.assert_allclose(hours, [14.0, 5.0], atol=1e-6)  # 14:00 CEST, 05:00 PDT


def test_group_quantiles_fast_path_matches_numpy():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 500, 20_000)
    v = rng.lognormal(0, 2, 20_000)
    q = group_quantiles(v, g, 500, (0.1, 0.5, 0.9))
    for k in (0, 7, 499):
        vals = np.sort(v[g == k])
        ranks = np.floor(np.array([0.1, 0.5, 0.9]) * (len(vals) - 1) + 0.5).astype(int)
        np.testing.assert_allclose(q[k], vals[ranks], rtol=1e-9)
    neg = group_quantiles(-v, g, 500, (0.5,))  # lexsort path
    np.testing.assert_allclose(neg[7, 0], np.sort(-v[g == 7])[int(np.floor(0.5 * ((g == 7).sum() - 1) + 0.5))])


def test_group_quantiles_do_not_depend_on_the_other_groups():
    """A section's quantiles are the same alone or behind thousands of others with a huge
    maximum (the per-user results of ``process`` must not depend on its batch)."""
    rng = np.random.default_rng(1)
    mine = rng.gamma(2.0, 3.0, 50)
    alone = group_quantiles(mine, np.zeros(50, dtype=np.int64), 1, (0.1, 0.5, 0.85))
    others = rng.gamma(2.0, 3.0, 40_000) * 1e4
    g = np.r_[np.repeat(np.arange(4000), 10), np.full(50, 4000)]
    batch = group_quantiles(np.r_[others, mine], g, 4001, (0.1, 0.5, 0.85))
    assert np.array_equal(batch[4000], alone[0])
    np.testing.assert_allclose(alone[0], np.sort(mine)[[5, 25, 42]], rtol=3e-10)
    assert not np.isnan(group_quantiles(np.array([-0.0, 1.0]), np.array([0, 0]), 1, (0.0,))).any()


def test_two_step_speed_damps_gps_noise():
    rng = np.random.default_rng(3)
    pts = track([1.4] * 200, dt=10.0)
    pts["lat"] += rng.normal(0, 15.0, len(pts)) / 111_195.0  # 15 m noise north-south
    f = section_features(pts, sections_of(pts)).iloc[0]
    assert f["speed2_p50"] < f["speed_p50"]  # noise inflates one-step speeds more
    assert f["speed_net"] == pytest.approx(1.4, abs=0.2)


def test_section_index_any_point_order_and_null_spelling():
    from pipeline.features import _section_index

    sections = pd.DataFrame({"user_id": ["a", "a", "b"], "section_id": ["s1", "s2", "s1"]})
    pts = pd.DataFrame({"user_id": pd.array(list("aaaaabbbba"), dtype="string"),
                        "section_id": ["s1", "s1", None, "s2", "s2", "s1", np.nan, "s1", "zz", "s1"]})
    expected = np.array([0, 0, -1, 1, 1, 2, -1, 2, -1, 0])
    np.testing.assert_array_equal(_section_index(pts, sections), expected)
    perm = np.random.default_rng(3).permutation(len(pts))
    np.testing.assert_array_equal(_section_index(pts.iloc[perm], sections), expected[perm])


def test_section_points_from_segmentation_give_the_labelled_features():
    """segment_user(labelled="arrays") hands the features the same points, grouped the same,
    as the labelled-points table: identical features, in any sections order."""
    from pipeline.features import SectionPoints
    from pipeline.segment import segment_user
    from tests.pipeline._frames import day

    a, _ = day(stays=(1800, 900, 1200, 1800), moves=((3000, 10.0), (800, 1.3), (5000, 4.0)), dt=5.0)
    b, _ = day(stays=(1200, 1800), moves=((9000, 14.0),), dt=3.0, user="u2", seed=4)
    pts = pd.concat([a, b], ignore_index=True)
    lab = segment_user(pts)
    arr = segment_user(pts, labelled="arrays")
    sp = arr["section_points"]
    assert isinstance(sp, SectionPoints) and arr["labelled_points"] is None
    sec = lab["sections"].reset_index(drop=True)
    assert len(sec) >= 4
    pd.testing.assert_frame_equal(arr["sections"], lab["sections"])
    want = section_features(lab["labelled_points"], sec)
    got = section_features(sp, sec)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    # other order, and a section the arrays do not know: matched by key, NaN row
    extra = sec.iloc[[0]].assign(section_id="nope")
    other = pd.concat([sec.iloc[::-1], extra], ignore_index=True)
    got2 = section_features(sp, other)
    ref = section_features(lab["labelled_points"], other)
    np.testing.assert_array_equal(got2.to_numpy(), ref.to_numpy())
    assert got2.iloc[-1][list(KINEMATIC_FEATURES[1:])].isna().all()


def test_section_points_carry_the_users_time_zones():
    from emission_ext.models.apply import apply_modes
    from pipeline.segment import segment_user
    from tests.pipeline._frames import day

    a, _ = day(stays=(1800, 1800), moves=((3000, 10.0),), dt=5.0)
    b, _ = day(stays=(1800, 1800), moves=((3000, 10.0),), dt=5.0, user="u2")
    pts = pd.concat([a.assign(tz="Europe/Paris"), b.assign(tz="America/New_York")], ignore_index=True)
    lab = segment_user(pts)
    arr = segment_user(pts, labelled="arrays")
    assert set(arr["section_points"].tz) == {"Europe/Paris", "America/New_York"}
    from pipeline.modes import ModeClassifier

    class HourEstimator:  # confidence = a function of the local hour the features saw
        def predict_proba(self, X):
            s = (X[:, 0] + 1.0) / 4.0
            return np.column_stack([s, 1.0 - s])

    model = ModeClassifier(features=("hour_sin",))
    model.estimator_, model.features_in_ = HourEstimator(), ("hour_sin",)
    model.classes_ = np.array(["WALKING", "CAR"])
    want = apply_modes(lab["sections"], lab["labelled_points"], model=model, transit=None)
    got = apply_modes(arr["sections"], arr["section_points"], model=model, transit=None)
    pd.testing.assert_frame_equal(got, want)
    paris = apply_modes(arr["sections"], arr["section_points"].__class__(
        **{**arr["section_points"].__dict__, "tz": None}), model=model, transit=None)
    u2 = (got["user_id"] == "u2").to_numpy()
    assert u2.any() and (~u2).any()
    np.testing.assert_array_equal(got["mode_confidence"][~u2], paris["mode_confidence"][~u2])
    assert (got["mode_confidence"][u2] != paris["mode_confidence"][u2]).all()
