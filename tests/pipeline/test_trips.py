import numpy as np
import pandas as pd
import pytest

from emission_ext import schema
from emission_ext.io.readers import read
from emission_ext.reference import EMISSION_REAL_DIR
from emission_ext.evaluation.segmentation import read_emission_ground_truth, score_trips
from pipeline.trips import TripParams, range_minmax, segment_trips
from tests.pipeline._frames import T0, day, frame


def test_range_minmax_matches_brute_force():
    rng = np.random.default_rng(1)
    v = rng.normal(size=500).astype(np.float32)  # the tables are float32
    lo = rng.integers(0, 500, 200)
    hi = np.minimum(lo + rng.integers(0, 80, 200), 499)
    [(mn, mx)] = range_minmax([v], lo, hi)
    for k in range(200):
        assert mn[k] == v[lo[k]:hi[k] + 1].min() and mx[k] == v[lo[k]:hi[k] + 1].max()


def test_two_trips_between_three_stays_android():
    pts, truth = day(stays=(1800, 1800, 1800), moves=((3000, 10.0), (2000, 1.4)))
    places, trips = segment_trips(pts)
    schema.validate(trips, "trips"), schema.validate(places, "places")
    assert len(trips) == 2 and len(places) == 3
    for (a, b), (_, r) in zip(truth, trips.iterrows()):
        assert abs(r.start_ts.timestamp() - T0 - a) <= 60
        # the trip ends between the arrival and the middle of the 5-min dwell window
        assert -60 <= r.end_ts.timestamp() - T0 - b <= 200
    assert places["enter_ts"].isna().iloc[0] and places["exit_ts"].isna().iloc[-1]
    assert trips["start_place_id"].iloc[1] == trips["end_place_id"].iloc[0]


def test_stay_shorter_than_dwell_time_does_not_split():
    pts, _ = day(stays=(1800, 200, 1800), moves=((3000, 10.0), (3000, 10.0)))
    _, trips = segment_trips(pts)
    assert len(trips) == 1


def test_ios_distance_filter_gap_ends_trip():
    # iOS: no fixes while still; a 20 min silence within 100 m ends the trip
    t = np.r_[np.arange(0, 600, 20.0), np.arange(1800, 2400, 20.0)]
    x = np.r_[np.arange(0, 600, 20.0) * 8, 4800 + 30 + (np.arange(1800, 2400, 20.0) - 1800) * 8]
    _, trips = segment_trips(frame(t, x, np.zeros_like(t), source="ios"))
    assert len(trips) == 2


def test_trip_that_never_ends_is_closed_at_last_point():
    t = np.arange(0, 1200, 30.0)
    pts = frame(t, 10 * t, np.zeros_like(t))
    places, trips = segment_trips(pts)
    assert len(trips) == 1
    assert trips["end_ts"].iloc[0] == pts["ts"].iloc[-1]
    assert places["exit_ts"].isna().iloc[-1]


def test_restart_transition_splits_and_ids_are_stable():
    t = np.arange(0, 1200, 30.0)
    pts = frame(t, 10 * t, np.zeros_like(t))
    tr = pd.DataFrame({"user_id": ["u1"], "ts": pd.to_datetime([T0 + 600 - 10], unit="s", utc=True),
                       "transition": ["STOP_TRACKING"]})
    _, a = segment_trips(pts, transitions=tr)
    _, b = segment_trips(pts.sample(frac=1, random_state=3), transitions=tr)
    assert len(a) == 2
    assert list(a["trip_id"]) == list(b["trip_id"])


def test_many_users_at_once_equals_one_by_one():
    p1, _ = day(user="001", seed=1)
    p2, _ = day(user="002", seed=2, moves=((5000, 12.0),))
    _, both = segment_trips(pd.concat([p1, p2]))
    _, one = segment_trips(p1)
    _, two = segment_trips(p2)
    assert list(both["trip_id"]) == list(one["trip_id"]) + list(two["trip_id"])
    assert set(both["user_id"]) == {"001", "002"}


@pytest.mark.parametrize("name", ["shankari_2016-08-10", "iphone_2016-02-22"])
def test_real_days_match_emission_reference(name):
    from pipeline.clean import clean_points

    raw = read(EMISSION_REAL_DIR / f"{name}.json.gz")
    clean, _ = clean_points(raw.points)
    _, trips = segment_trips(clean, raw.motion, raw.transitions)
    gt, _ = read_emission_ground_truth(EMISSION_REAL_DIR / f"{name}.ground_truth.json.gz",
                                       user_id=trips["user_id"].iloc[0])
    s = score_trips(trips, gt)
    # per day the issue asks to explain anything below 0.8 (overall >= 0.9: test_evaluation)
    assert s.f1 >= 0.8 and s.median_start_err_s < 120 and s.median_end_err_s < 120


def test_departure_not_taken_back_across_a_trip_made_with_the_phone_off():
    # iOS: the last fix is 20 km away 8 h earlier (the tester went there with the phone off);
    # the first fix of the new trip may be taken back over a geofence exit, not over 20 km
    t0 = np.arange(0, 600, 20.0)
    stay = 600 + np.arange(0, 400, 30.0)  # the phone saw the arrival: a stay ends the trip
    t1 = 30000 + np.arange(0, 600, 20.0)
    x = np.r_[t0 * 10.0, np.full(stay.size, 6000.0), 20000 + (t1 - 30000) * 10.0]
    _, trips = segment_trips(frame(np.r_[t0, stay, t1], x, np.zeros_like(x), source="ios"))
    assert len(trips) == 2
    start = trips["start_ts"].iloc[1].timestamp() - T0
    assert 30000 - 30 <= start <= 30000  # at most ~250 m at 10 m/s taken back


def test_short_walk_after_a_geofence_wake_up_is_a_trip():
    # Android: the phone rests at home (fixes every 30 s), stops tracking, and wakes 120 m out
    # when the tester walks to a shop 300 m away; six fixes of the walk, then the shop
    home = np.arange(0, 1800, 30.0)
    walk = 7200 + np.arange(0, 150, 30.0)
    shop = walk[-1] + 30 + np.arange(0, 420, 30.0)
    x = np.r_[np.zeros(home.size), 120 + 1.3 * (walk - 7200), np.full(shop.size, 300.0)]
    rng = np.random.default_rng(0)
    x = x + rng.normal(0, 3, x.size)
    _, trips = segment_trips(frame(np.r_[home, walk, shop], x, rng.normal(0, 3, x.size)))
    assert len(trips) == 1
    assert abs(trips["start_ts"].iloc[0].timestamp() - T0 - (7200 - 120 / 1.3)) <= 60


def test_trip_end_transition_inside_a_five_minute_silence_ends_the_trip():
    # iOS: a trip, a few stay fixes, a 7-min silence ending 150 m away (the next trip's
    # geofence exit), with the phone's trip-end transition inside the silence
    t1 = np.arange(0, 600, 10.0)
    stay = 600 + np.array([20.0, 60.0])
    t2 = 600 + 60 + 420 + np.arange(0, 600, 10.0)
    x = np.r_[10.0 * t1, np.full(stay.size, 6000.0), 6150 + 10.0 * (t2 - t2[0])]
    pts = frame(np.r_[t1, stay, t2], x, np.zeros_like(x), source="ios")
    tr = pd.DataFrame({"user_id": "u1", "transition": ["TRIP_STARTED", "TRIP_END_DETECTED", "TRIP_STARTED"],
                       "ts": pd.to_datetime(T0 + np.array([-1.0, 900.0, t2[0] - 1]), unit="s", utc=True)})
    assert len(segment_trips(pts, transitions=tr)[1]) == 2
    assert len(segment_trips(pts, transitions=tr, params=TripParams(end_transition_gap_s=600))[1]) == 1


def test_linestrings_wkb_are_the_bytes_shapely_writes():
    import shapely

    from pipeline.trips import linestrings_wkb

    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(-1.3, -1.0, 50), rng.uniform(46.0, 46.3, 50)
    lon[4], lat[6] = -0.0, 1e-300
    lo, hi = np.array([0, 10, 12, 30]), np.array([9, 10, 29, 49])  # range 1: one point
    got = linestrings_wkb(lon, lat, lo, hi)
    assert got[1] is None
    for k in (0, 2, 3):
        line = shapely.LineString(np.column_stack([lon[lo[k]:hi[k] + 1], lat[lo[k]:hi[k] + 1]]))
        assert type(got[k]) is bytes and got[k] == shapely.to_wkb(line)


def test_group_median_matches_pandas_bit_for_bit():
    from pipeline.trips import _group_median

    # odd and even runs, negatives, one-value runs, ties, values a few ulps apart
    vals = np.array([46.1, 46.3, 46.2,  -1.5, -1.25, -1.75, -1.0,  7.0,  2.0, 2.0, 3.0, 2.0,
                     46.2, np.nextafter(46.2, 50.0), np.nextafter(46.2, 0.0), 46.2])
    lens = np.array([3, 4, 1, 4, 4])
    grp = np.repeat(np.arange(lens.size), lens)
    want = pd.Series(vals).groupby(grp).median().to_numpy()
    got = _group_median(vals, lens)
    assert np.array_equal(got.view(np.int64), want.view(np.int64))
    assert got[1] == -1.375 and got[0] == 46.2  # mean of the two middle values; the middle one


@pytest.mark.parametrize("vals", [[1.0, np.nan, 2.0], [0.0, 1.0, 2.0], [-0.0, 1.0, 2.0],
                                  [-1.0, 1.0, 2.0], [1e-300, 1e300, 2.0]])
def test_group_median_declines_what_it_cannot_sort_exactly(vals):
    from pipeline.trips import _group_median

    assert _group_median(np.array(vals), np.array([3])) is None  # the caller then asks pandas
