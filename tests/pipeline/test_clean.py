import numpy as np
import pandas as pd

from pipeline.clean import CleanParams, clean_points, clean_points_coded
from tests.pipeline._frames import frame


def test_invalid_duplicate_inaccurate_removed_with_reasons():
    df = frame([0, 30, 30, 60, 90, 120], [0, 10, 10, 20, 30, 40], [0] * 6,
               acc=[10, 10, 50, 500, 10, 10])
    df.loc[4, "lat"] = np.nan
    clean, removed = clean_points(df)
    assert len(clean) == 3
    assert sorted(removed["reason"]) == ["duplicate", "inaccurate", "invalid"]
    # the duplicate kept is the more accurate fix
    assert clean["accuracy_m"].iloc[1] == 10


def test_unsorted_input_comes_back_sorted_per_user():
    a = frame([60, 0, 30], [20, 0, 10], [0, 0, 0], user="b")
    b = frame([10, 0], [0, 0], [5, 0], user="a")
    clean, removed = clean_points(pd.concat([a, b]))
    assert list(clean["user_id"]) == ["a", "a", "b", "b", "b"]
    assert clean.groupby("user_id")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    assert len(removed) == 0


def test_single_jump_removed_but_fast_car_kept():
    t = np.arange(0, 600, 30.0)
    x = 30.0 * t  # a car at 30 m/s (108 km/h): kept
    x[10] += 20_000  # one fix 20 km off, then back: a jump
    clean, removed = clean_points(frame(t, x, np.zeros_like(t)))
    assert list(removed["reason"]) == ["jump"]
    assert len(clean) == len(t) - 1


def test_threshold_is_robust_per_user():
    # a train user travelling at 80 m/s keeps all points (threshold adapts above 50 m/s)
    t = np.arange(0, 3000, 30.0)
    clean, removed = clean_points(frame(t, 80.0 * t, np.zeros_like(t)), CleanParams())
    assert len(removed) == 0


def test_empty():
    clean, removed = clean_points(frame([], [], []))
    assert len(clean) == 0 and len(removed) == 0 and "reason" in removed


def test_clean_points_coded_gives_make_track_the_codes_it_would_compute():
    from pipeline.clean import clean_points_coded
    from pipeline.trips import make_track

    a = frame([60, 0, 30], [20, 0, 10], [0, 0, 0], user="c")
    b = frame([10, 0], [0, 0], [5, 0], user="a")
    gone = frame([0, 30], [0, 10], [0, 0], user="b")  # every fix invalid: the user disappears
    gone["lat"] = np.nan
    clean, _, coded = clean_points_coded(pd.concat([a, gone, b]))
    codes, users = coded
    assert list(users) == ["a", "c"] and list(codes) == [0, 0, 1, 1, 1]
    fast, slow = make_track(clean, coded), make_track(clean)
    for name in ("codes", "t", "lat", "lon", "x", "y", "step", "new_user"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    assert list(fast.users) == list(slow.users)
    assert clean_points_coded(frame([], [], []))[2] is None


def test_user_codes_match_factorize_sorted_or_not():
    from emission_ext import schema
    from pipeline.clean import user_codes

    for values in (["a", "a", "b", "c", "c"], ["c", "a", "c", "b", "a"], ["x", None, "x"]):
        ids = pd.Series(values, dtype=schema.STR)
        codes, users = user_codes(ids)
        want, want_users = pd.factorize(ids, sort=True)
        assert codes.tolist() == want.tolist() and list(users) == list(want_users), values
    ids = pd.Series(["a", "a", "b", "c", "c"], dtype=schema.STR)
    assert user_codes(ids.iloc[2:])[0].tolist() == [0, 1, 1]  # a slice: its own numbering


def test_clean_uses_given_codes_and_checks_their_length():
    import pytest

    from pipeline.clean import user_codes

    pts = pd.concat([frame([0, 30, 60], [0, 5, 10], [0, 0, 0], user=u) for u in ("a", "b")],
                    ignore_index=True)
    codes = user_codes(pts["user_id"])
    with_codes = clean_points_coded(pts, codes=codes)
    without = clean_points_coded(pts)
    pd.testing.assert_frame_equal(with_codes[0], without[0])
    assert with_codes[2][0].tolist() == without[2][0].tolist() == [0, 0, 0, 1, 1, 1]
    # the given codes are used, not computed again: the points come back in their order
    swapped = (1 - codes[0], codes[1][::-1])
    clean, _, (kept, users) = clean_points_coded(pts, codes=swapped)
    assert list(clean["user_id"]) == ["b"] * 3 + ["a"] * 3 and list(users) == ["b", "a"]
    with pytest.raises(ValueError, match="3 user codes for 6 points"):
        clean_points_coded(pts, codes=(codes[0][:3], codes[1]))


def test_segment_user_with_reader_codes_equals_without(tmp_path):
    from emission_ext.io.readers import read
    from pipeline.segment import segment_user
    from tests.pipeline._frames import day

    pts, _ = day(user="007")
    path = tmp_path / "pts.csv"
    out = pts.assign(ts=pts["ts"].astype("int64") // 10**9)
    out[["user_id", "ts", "lat", "lon", "accuracy_m"]].to_csv(path, index=False)
    raw = read(path)
    assert raw.user_codes is not None and len(raw.user_codes[0]) == len(raw.points)
    a = segment_user(raw.points, labelled=False, codes=raw.user_codes)
    b = segment_user(raw.points, labelled=False)
    for name in ("trips", "sections", "places"):
        pd.testing.assert_frame_equal(a[name], b[name])


def test_points_in_order_are_cleaned_without_gathering_them(monkeypatch):
    """Valid points already in (user, time) order take views of their own arrays (no copy
    by an identity index), and come out as the same points reordered input gives."""
    import pipeline.clean as C

    t = np.arange(0, 900, 30.0)
    x = 10.0 * t
    x[12] += 20_000  # a jump
    pts = pd.concat([frame(t, x, np.zeros_like(t), user="a"),
                     frame(t, 5.0 * t, np.zeros_like(t), user="b")], ignore_index=True)
    pts = C.as_points(pts)  # schema-typed, as a reader gives it: cleaned without a copy
    lat = pts["lat"].to_numpy()
    shared = []
    real = C._jump_pass

    def spy(la, lo, tt, cc, params):
        shared.append(np.shares_memory(la, lat))
        return real(la, lo, tt, cc, params)

    monkeypatch.setattr(C, "_jump_pass", spy)
    clean, removed, coded = C.clean_points_coded(pts)
    assert shared[0]  # first pass: a view of the input's own latitudes
    assert list(removed["reason"]) == ["jump"] and len(clean) == len(pts) - 1
    shuffled = pts.sample(frac=1.0, random_state=3)  # the gathering path
    clean2, removed2, coded2 = C.clean_points_coded(shuffled)
    pd.testing.assert_frame_equal(clean, clean2)
    assert np.array_equal(coded[0], coded2[0]) and list(coded[1]) == list(coded2[1])
    assert list(removed2["reason"]) == ["jump"]
