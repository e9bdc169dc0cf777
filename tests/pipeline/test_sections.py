import numpy as np
import pandas as pd

from emission_ext import schema
from pipeline.sections import SectionParams, segment_sections
from pipeline.trips import segment_trips
from tests.pipeline._frames import T0, day, frame


def _walk_car_walk(dt=10.0):
    legs = [[(600, 1.4), (6000, 12.0), (600, 1.4)]]
    return day(stays=(900, 900), moves=((0, 1.0),), mode_speeds=legs, dt=dt, noise=3.0)


def test_walk_car_walk_gives_three_sections_with_hints():
    pts, truth = _walk_car_walk()
    _, trips = segment_trips(pts)
    sections, labelled = segment_sections(pts, trips)
    schema.validate(sections, "sections")
    assert list(sections["sensed_mode"]) == ["WALKING", "CAR", "WALKING"]
    assert (sections["mode"] == sections["sensed_mode"]).all()
    assert (sections["mode_source"] == "rule").all()
    # the car leg starts 600/1.4 = 428 s after the true departure
    car_start = sections["start_ts"].iloc[1].timestamp() - T0
    assert abs(car_start - (truth[0][0] + 428)) <= 60
    # sections tile the trip
    assert sections["start_ts"].iloc[0] == trips["start_ts"].iloc[0]
    assert (sections["end_ts"].iloc[:-1].to_numpy() == sections["start_ts"].iloc[1:].to_numpy()).all()
    assert labelled["section_id"].notna().sum() > 0
    assert set(labelled["section_id"].dropna()) == set(sections["section_id"])


def test_flip_flop_shorter_than_min_section_is_merged():
    legs = [[(3000, 12.0), (40, 1.0), (3000, 12.0)]]  # a 40 s crawl in traffic
    pts, _ = day(stays=(900, 900), moves=((0, 1.0),), mode_speeds=legs, dt=10.0, noise=2.0)
    _, trips = segment_trips(pts)
    sections, _ = segment_sections(pts, trips, params=SectionParams(min_section_s=90))
    assert list(sections["sensed_mode"]) == ["CAR"]


def test_motion_activity_overrides_speed():
    legs = [[(1500, 2.0)]]  # 2 m/s: walking by speed
    pts, truth = day(stays=(900, 900), moves=((0, 1.0),), mode_speeds=legs, dt=10.0, noise=1.0)
    _, trips = segment_trips(pts)
    ts = pd.to_datetime(T0 + np.arange(truth[0][0], truth[0][1], 20.0), unit="s", utc=True)
    motion = pd.DataFrame({"user_id": "u1", "ts": ts, "activity": "ON_BICYCLE", "confidence": 90.0})
    sections, _ = segment_sections(pts, trips, motion)
    assert "BICYCLING" in set(sections["sensed_mode"])


def test_middling_cycling_reading_at_a_walking_pace_does_not_decide():
    # "on bicycle" at confidence 50 all along a 1.4 m/s walk: a walk (the reading lags or errs)
    legs = [[(1500, 1.4)]]
    pts, truth = day(stays=(900, 900), moves=((0, 1.0),), mode_speeds=legs, dt=10.0, noise=1.0)
    _, trips = segment_trips(pts)
    ts = pd.to_datetime(T0 + np.arange(truth[0][0], truth[0][1], 20.0), unit="s", utc=True)
    motion = pd.DataFrame({"user_id": "u1", "ts": ts, "activity": "ON_BICYCLE", "confidence": 50.0})
    sections, _ = segment_sections(pts, trips, motion)
    assert set(sections["sensed_mode"]) == {"WALKING"}
    old, _ = segment_sections(pts, trips, motion, SectionParams(bike_activity_min_mps=0.0))
    assert "BICYCLING" in set(old["sensed_mode"])


def test_no_trips_gives_empty_sections_and_null_labels():
    pts, _ = day(stays=(1800,), moves=())
    sections, labelled = segment_sections(pts, schema.empty("trips"))
    assert len(sections) == 0 and labelled["trip_id"].isna().all() and len(labelled) == len(pts)


def _boundaries(sections):
    """Start of every section after the first of its trip, s from T0."""
    return np.array([ts.timestamp() - T0 for ts in sections["start_ts"].iloc[1:]])


def _leg_times(truth_start, legs, dt):
    """True start of each leg (s from T0) for ``day``'s sampling of ``legs``."""
    out, now = [], truth_start
    for dist, v in legs:
        out.append(now)
        now += dt * max(1, int(dist / v / dt))
    return np.array(out)


def test_walk_wait_bus_walk_gives_three_sections_with_boundaries_within_60s():
    # walk to the stop, wait 4 min, a city bus that alternates cycling-like and car-like
    # stretches with dwells at stops, then a 110 s walk from the stop to the door
    bus = [(900, 6.0), (1, 1 / 30), (300, 3.5), (1, 1 / 30), (900, 7.0), (1, 1 / 30), (300, 3.5)]
    legs = [(400, 1.4), (1, 1 / 240)] + bus + [(150, 1.4)]
    pts, truth = day(stays=(900, 900), moves=((0, 1.0),), mode_speeds=[legs], dt=30.0, noise=3.0)
    _, trips = segment_trips(pts)
    sections, _ = segment_sections(pts, trips)
    assert list(sections["sensed_mode"]) == ["WALKING", "CAR", "WALKING"] or \
        list(sections["sensed_mode"]) == ["WALKING", "BICYCLING", "WALKING"]
    starts = _leg_times(truth[0][0], legs, 30.0)
    boarding, alighting = starts[2], starts[-1]
    got = _boundaries(sections)
    assert abs(got[0] - boarding) <= 60 and abs(got[1] - alighting) <= 60


def test_bus_with_dwells_and_mixed_speeds_stays_one_vehicle_leg():
    # 60 s at 8 m/s (motorised class), 60 s at 3.5 m/s (cycling class), an 80 s dwell at a
    # stop: merged with three classes at once, each vehicle piece is shorter than the dwell
    # and the walking class swallowed the ride
    bus = [(480, 8.0), (210, 3.5), (1, 1 / 80)] * 4 + [(480, 8.0)]
    legs = [(500, 1.3)] + bus + [(500, 1.3)]
    pts, truth = day(stays=(900, 900), moves=((0, 1.0),), mode_speeds=[legs], dt=10.0, noise=3.0)
    _, trips = segment_trips(pts)
    sections, _ = segment_sections(pts, trips)
    assert len(sections) == 3
    assert sections["sensed_mode"].iloc[0] == "WALKING" and sections["sensed_mode"].iloc[2] == "WALKING"
    assert sections["sensed_mode"].iloc[1] in ("CAR", "BICYCLING")
    starts = _leg_times(truth[0][0], legs, 10.0)
    got = _boundaries(sections)
    assert abs(got[0] - starts[1]) <= 60 and abs(got[1] - starts[-1]) <= 60


def test_short_walk_closing_a_trip_is_kept():
    # a car ride then 60 s on foot from the car park: shorter than min_section_s, but a walk
    # that ends a trip is kept from edge_walk_min_s
    legs = [(6000, 12.0), (84, 1.4)]
    pts, truth = day(stays=(900, 900), moves=((0, 1.0),), mode_speeds=[legs], dt=10.0, noise=1.0)
    _, trips = segment_trips(pts)
    sections, _ = segment_sections(pts, trips)
    assert list(sections["sensed_mode"]) == ["CAR", "WALKING"]
    park = _leg_times(truth[0][0], legs, 10.0)[1]
    assert abs(_boundaries(sections)[0] - park) <= 30
    merged, _ = segment_sections(pts, trips, params=SectionParams(edge_walk_min_s=90.0))
    assert list(merged["sensed_mode"]) == ["CAR"]


def test_change_is_placed_inside_a_sampling_gap():
    # cycling at 5 m/s sampled every 10 s, then no fix for 80 s while docking, then walking:
    # the change happened right after the last cycling fix, not at the first walking one
    t_bike = np.arange(0, 600, 10.0)
    x_bike = 5.0 * t_bike
    t_walk = 590 + 80 + np.arange(0, 300, 20.0)
    x_walk = x_bike[-1] + 10 + 1.3 * (t_walk - t_walk[0])
    t_stay = np.r_[np.arange(-900, 0, 30.0), t_walk[-1] + np.arange(30, 900, 30.0)]
    x_stay = np.r_[np.zeros(30), np.full(29, x_walk[-1])]
    t = np.r_[t_stay[:30], t_bike, t_walk, t_stay[30:]]
    x = np.r_[x_stay[:30], x_bike, x_walk, x_stay[30:]]
    pts = frame(t, x, np.zeros_like(x))
    _, trips = segment_trips(pts)
    sections, _ = segment_sections(pts, trips)
    assert list(sections["sensed_mode"])[-1] == "WALKING" and len(sections) == 2
    b = _boundaries(sections)[0]
    assert 590 <= b <= 610
    gap_off, _ = segment_sections(pts, trips, params=SectionParams(place_in_gap=False))
    assert _boundaries(gap_off)[0] == t_walk[0]
    # sections still tile the trip
    assert (sections["end_ts"].iloc[:-1].to_numpy() == sections["start_ts"].iloc[1:].to_numpy()).all()


def test_standstill_inside_a_car_leg_stays_car():
    # walk to the car, 45 s of driving inside the car park, two minutes at the barrier, then
    # the road: the standstill is the car waiting, so the car leg starts at the car, not
    # after the barrier
    legs = [(400, 1.3), (360, 8.0), (1, 1 / 120), (6000, 12.0)]
    pts, truth = day(stays=(900, 900), moves=((0, 1.0),), mode_speeds=[legs], dt=30.0, noise=1.0)
    _, trips = segment_trips(pts)
    sections, _ = segment_sections(pts, trips)
    assert list(sections["sensed_mode"]) == ["WALKING", "CAR"]
    drive = _leg_times(truth[0][0], legs, 30.0)[1]
    assert abs(_boundaries(sections)[0] - drive) <= 60
    # (the 45 s in the car park, 240 m steps, would also stand as a sure vehicle run, and
    # the change would move back over the barrier to the car's first fast step)
    off, _ = segment_sections(pts, trips, params=SectionParams(max_vehicle_stop_s=0.0,
                                                               sure_vehicle_min_s=90.0,
                                                               refine_points=2))
    assert len(off) < 2 or abs(_boundaries(off)[0] - drive) > 60
    # the car's fast step weighs more than the barrier's standstill: counted as one step,
    # the change would move past the barrier
    light, _ = segment_sections(pts, trips, params=SectionParams(refine_fast_weight=1))
    assert abs(_boundaries(light)[0] - drive) > 60


def _bus_ending_on_foot(v, on_foot: slice):
    """A track sampled every 31 s at the step speeds ``v`` (m/s) along x, its trips, and the
    phone reading "on foot" (90 %) 5 s after the fixes of ``on_foot``: ``(t, pts, trips, motion)``."""
    rng = np.random.default_rng(0)
    t = 31.0 * np.arange(v.size)
    x = np.cumsum(v * 31.0) + rng.normal(0, 2, v.size)
    pts = frame(t, x, np.zeros_like(x))
    _, trips = segment_trips(pts)
    motion = pd.DataFrame({"user_id": "u1", "ts": pd.to_datetime(T0 + t[on_foot] + 5, unit="s", utc=True),
                           "activity": "ON_FOOT", "confidence": 90.0})
    return t, pts, trips, motion


def test_slow_bus_end_is_refined_over_several_fixes():
    # a bus crawls through its last stops (six 31 s steps at 2.5 m/s) while the phone
    # already reads "on foot": the change moves by up to five fixes towards where the bus
    # stopped (two left it two minutes early)
    v = np.r_[np.zeros(20), np.full(30, 9.0), np.full(6, 2.5), np.full(20, 1.2), np.zeros(20)]
    t, pts, trips, motion = _bus_ending_on_foot(v, slice(46, 60))
    err = {}
    for k in (2, 5):
        sections, _ = segment_sections(pts, trips, motion, params=SectionParams(refine_points=k))
        assert list(sections["sensed_mode"]) == ["CAR", "WALKING"]
        err[k] = abs(_boundaries(sections)[0] - t[56])
    assert err[5] <= 45 < 60 < err[2]


def test_foot_change_moves_to_where_step_speeds_change():
    # a bus slows to its stop (two 31 s steps at 3 m/s) while the phone already reads
    # "on foot": the walk starts when the bus has stopped, not when it began to slow down
    v = np.r_[np.zeros(20), np.full(30, 9.0), [3.0, 3.0], np.full(20, 1.3), np.zeros(20)]
    t, pts, trips, motion = _bus_ending_on_foot(v, slice(48, 60))
    err = {}
    for k in (0, 2):
        sections, _ = segment_sections(pts, trips, motion, params=SectionParams(refine_points=k))
        assert list(sections["sensed_mode"]) == ["CAR", "WALKING"]
        err[k] = abs(_boundaries(sections)[0] - t[51])
    assert err[2] <= 20 < err[0]


def test_silent_wait_inside_a_vehicle_leg_is_a_transfer_on_foot():
    # iOS distance filter: bus 1 (a fix every 50 m), a 4-min silence at the transfer stop
    # (30 m walked), then bus 2; the wait is a walking section between the two rides
    t1 = np.arange(0, 600, 6.0)
    x1 = 50.0 / 6.0 * t1
    t2 = 600 + 240 + np.arange(0, 600, 6.0)
    x2 = x1[-1] + 30 + 50.0 / 6.0 * (t2 - t2[0] + 6)
    walk_t = -300 + np.arange(0, 300, 40.0)  # the walk to the first stop
    t = np.r_[walk_t, t1, t2]
    x = np.r_[-1.3 * (300 - (walk_t + 300)) - 1.3 * 40, x1, x2]
    pts = frame(t, x, np.zeros_like(t), source="ios")
    _, trips = segment_trips(pts)
    assert len(trips) == 1
    sections, _ = segment_sections(pts, trips)
    assert list(sections["sensed_mode"]) == ["WALKING", "CAR", "WALKING", "CAR"]
    b = _boundaries(sections)
    assert abs(b[1] - 600) <= 30 and abs(b[2] - 840) <= 30
    off, _ = segment_sections(pts, trips, params=SectionParams(silent_waits=False))
    assert list(off["sensed_mode"]) == ["WALKING", "CAR"]


def test_arrival_fix_and_still_tail_do_not_make_a_closing_walk():
    # Android: a drive, then fixes every 30 s at the destination until the stay is detected;
    # the arrival fix comes 35 s after the last moving one, so its own smoothed speed is a
    # crawl: it belongs to the still tail, not to a one-fix "walk" the tail stretches
    rng = np.random.default_rng(1)
    drive = np.arange(0, 600, 30.0)
    stay = 605 + np.arange(0, 600, 30.0)
    t = np.r_[np.arange(-600, 0, 30.0), drive, stay]
    x = np.r_[np.zeros(20), 10.0 * drive, 6000 + rng.normal(0, 4, stay.size)]
    pts = frame(t, x, np.zeros_like(x))
    _, trips = segment_trips(pts)
    sections, _ = segment_sections(pts, trips)
    assert list(sections["sensed_mode"]) == ["CAR"]
    old, _ = segment_sections(pts, trips, params=SectionParams(arrival_in_tail=False))
    assert list(old["sensed_mode"]) == ["CAR", "WALKING"]


class _FerryStub:
    """Duck-typed transit index: one ferry route along y=0 from quay x=0 to quay x=230 m."""

    def __init__(self):
        from tests.pipeline._frames import LAT0, LON0
        self.lat0, self.lon0 = LAT0, LON0
        self.stop_times = pd.DataFrame({"station": [0, 1], "stop": [0, 1], "trip": [0, 0]})
        self.trip_route = np.array([0])
        self.route_mode = np.array(["FERRY"])
        self.stop_station = np.array([0, 1, 2])
        self.stop_xy = np.array([[0.0, 0.0], [230.0, 0.0], [-2000.0, 500.0]])  # 2: a bus stop

    def project(self, lat, lon):
        from tests.pipeline._frames import M_LAT, M_LON
        return ((np.asarray(lon) - self.lon0) * M_LON, (np.asarray(lat) - self.lat0) * M_LAT)

    def distance_to_ferry_line(self, lat, lon):
        x, y = self.project(lat, lon)
        return np.hypot(x - np.clip(x, 0.0, 230.0), y)

    def ferry_quays(self):
        return self.stop_xy[:2], self.stop_station[:2]  # the two quays, not the bus stop


def test_ferry_crossing_slower_than_a_walk_is_cut_out_by_its_position():
    from pipeline.segment import segment_user
    rng = np.random.default_rng(3)
    t, x = [], []
    stay0 = np.arange(0, 1800, 60.0)
    t += [stay0]; x += [np.full(stay0.size, -800.0)]
    walk1 = 1800 + np.arange(30, 630, 30.0)                     # 780 m at 1.3 m/s to the quay
    t += [walk1]; x += [-800.0 + 1.3 * (walk1 - 1800)]
    wait = np.arange(660, 780, 30.0) + 1800                       # 2 min at the quay
    t += [wait]; x += [np.zeros(wait.size)]
    dep = 2580.0
    ferry = dep + np.arange(30, 300, 30.0)                        # 230 m at ~0.77 m/s
    t += [ferry]; x += [(ferry - dep) * 230.0 / 300.0]
    arr = dep + 300.0
    walk2 = arr + np.arange(30, 630, 30.0)                        # on, away from the line
    t += [walk2]; x += [230.0 + 1.3 * (walk2 - arr)]
    stay1 = walk2[-1] + np.arange(60, 1800, 60.0)
    t += [stay1]; x += [np.full(stay1.size, x[-1][-1])]
    t, x = np.concatenate(t), np.concatenate(x)
    y = np.where((x > 0) & (x < 230), 0.0, 30.0 * (x > 230))     # the walk after leaves the quay inland
    pts = frame(t, x + rng.normal(0, 3, t.size), y + rng.normal(0, 3, t.size))
    plain = segment_user(pts)
    assert len(plain["trips"]) == 1 and list(plain["sections"]["sensed_mode"]) == ["WALKING"]
    res = segment_user(pts, transit=_FerryStub())["sections"]
    assert list(res["sensed_mode"]) == ["WALKING", "CAR", "WALKING"]
    got = _boundaries(res)
    assert abs(got[0] - dep) <= 60 and abs(got[1] - arr) <= 60


def test_one_stop_bus_hop_shorter_than_min_section_is_kept_by_its_step_speeds():
    # iOS: a walk to the stop (a fix every 40 s), 4 min of silence at the stop, a 40 s hop at
    # 12 m/s with a fix every 5 s, then a walk home: the hop is shorter than min_section_s
    rng = np.random.default_rng(5)
    walk1 = np.arange(0, 400, 40.0)
    hop = 400 + 240 + np.arange(0, 45, 5.0)
    walk2 = hop[-1] + np.arange(40, 480, 40.0)
    x = np.r_[1.3 * walk1, 1.3 * walk1[-1] + 12.0 * (hop - hop[0]),
              1.3 * walk1[-1] + 12.0 * 40 + 1.3 * (walk2 - hop[-1])]
    t = np.r_[walk1, hop, walk2]
    pts = frame(t, x + rng.normal(0, 3, t.size), rng.normal(0, 3, t.size), source="ios")
    _, trips = segment_trips(pts)
    assert len(trips) == 1
    sections, _ = segment_sections(pts, trips)
    assert list(sections["sensed_mode"]) == ["WALKING", "CAR", "WALKING"]
    b = _boundaries(sections)
    assert abs(b[0] - hop[0]) <= 60 and abs(b[1] - hop[-1]) <= 60
    off, _ = segment_sections(pts, trips, params=SectionParams(hop_min_steps=0))
    assert list(off["sensed_mode"]) == ["WALKING"]


def test_ferry_crossing_after_a_silent_wait_with_coarse_fixes_is_cut_out():
    # iOS: the walk's last fix is 60 m short of the quay, the phone is silent during a 4 min
    # wait on the pier, then records the crossing every 60 s with 25 m fixes read 30 m off the
    # route (the boat's path is not the drawn line): no fix at the quay before the crossing
    from pipeline.segment import SegmentParams, segment_user
    rng = np.random.default_rng(4)
    stay0 = np.arange(0, 1800, 60.0)
    walk1 = 1800 + np.arange(40, 640, 40.0)                      # 780 m at 1.3 m/s
    x_walk1 = -840.0 + 1.3 * (walk1 - 1800)                     # ends 60 m before the quay
    dep = walk1[-1] + 240.0                                      # boards after a silent wait
    ferry = dep + np.arange(40, 300, 60.0)                      # 230 m in 300 s
    arr = dep + 300.0
    walk2 = arr + np.arange(20, 620, 40.0)
    stay1 = walk2[-1] + np.arange(60, 1800, 60.0)
    t = np.r_[stay0, walk1, ferry, walk2, stay1]
    x = np.r_[np.full(stay0.size, -840.0), x_walk1, (ferry - dep) * 230.0 / 300.0,
              230.0 + 1.3 * (walk2 - arr), np.full(stay1.size, 230.0 + 1.3 * (walk2[-1] - arr))]
    y = np.r_[np.zeros(stay0.size + walk1.size), np.full(ferry.size, 30.0),
              np.full(walk2.size + stay1.size, 60.0)]
    acc = np.where((t > dep) & (t < arr), 25.0, 5.0)
    pts = frame(t, x + rng.normal(0, 2, t.size), y + rng.normal(0, 2, t.size), acc=acc,
                source="ios")
    res = segment_user(pts, transit=_FerryStub())
    assert len(res["trips"]) == 1
    sec = res["sections"]
    assert list(sec["sensed_mode"]) == ["WALKING", "CAR", "WALKING"]
    got = _boundaries(sec)
    assert abs(got[0] - dep) <= 60 and abs(got[1] - arr) <= 60
    # without the fixes' accuracy the boat's fixes are off the route: one walk
    old = segment_user(pts, transit=_FerryStub(), params=SegmentParams(
        sections=SectionParams(ferry_acc_cap_m=0.0)))["sections"]
    assert list(old["sensed_mode"]) == ["WALKING"]


def _two_fix_ride(sure_min=None):
    # Android, a fix every 30 s: a walk to the stop, one fix 270 m down the line 30 s after
    # boarding (the phone says "in vehicle"), the next one 60 m on, on foot again; the ride
    # is shorter than min_section_s
    rng = np.random.default_rng(6)
    walk1 = np.arange(0, 600, 30.0)
    ride = walk1[-1] + 30.0
    walk2 = ride + np.arange(30, 600, 30.0)
    x0 = 1.3 * walk1[-1]
    x = np.r_[1.3 * walk1, x0 + 270.0, x0 + 330.0 + 1.3 * (walk2 - walk2[0])]
    t = np.r_[walk1, ride, walk2]
    pts = frame(t, x + rng.normal(0, 3, t.size), rng.normal(0, 3, t.size))
    foot = np.r_[walk1, walk2]
    motion = pd.DataFrame({"user_id": "u1", "ts": pd.to_datetime(T0 + np.r_[foot, ride], unit="s", utc=True),
                           "activity": ["WALKING"] * foot.size + ["IN_VEHICLE"], "confidence": 75.0})
    _, trips = segment_trips(pts)
    params = SectionParams() if sure_min is None else SectionParams(sure_vehicle_min_s=sure_min)
    return segment_sections(pts, trips, motion, params)[0], (walk1[-1], walk2[0])


def test_two_fix_bus_ride_confirmed_by_its_fixes_is_kept():
    sections, ride = _two_fix_ride()
    assert list(sections["sensed_mode"]) == ["WALKING", "CAR", "WALKING"]
    b = _boundaries(sections)
    assert abs(b[0] - ride[0]) <= 60 and abs(b[1] - ride[1]) <= 60
    off, _ = _two_fix_ride(sure_min=90.0)
    assert list(off["sensed_mode"]) == ["WALKING"]


def test_short_run_next_to_a_sure_vehicle_run_is_merged():
    # runs (s): vehicle 60 (sure, kept from 45), walk 65 (short), vehicle 600. The walk is
    # longer than its sure neighbour but that neighbour stays, so the walk is the shortest
    # short run and joins the vehicle on both sides
    from pipeline.sections import MOTOR, WALK, _merge_short
    t = np.r_[0.0, 30.0, 60.0, 90.0, 125.0 + 30.0 * np.arange(20)]
    cls = np.r_[MOTOR, MOTOR, WALK, WALK, np.full(20, MOTOR)]
    g = np.zeros(t.size, dtype=np.int64)
    sure = np.r_[False, True, False, False, np.ones(20, bool)]
    out = _merge_short(cls, g, t, np.array([t[-1] + 30.0]), 90.0, 50, 45.0, sure, 45.0)
    assert (out == MOTOR).all()
    # without ``sure`` the first run is the shortest and becomes the walk's
    old = _merge_short(cls, g, t, np.array([t[-1] + 30.0]), 90.0, 50, 45.0)
    assert (old[:4] == WALK).all() and (old[4:] == MOTOR).all()


class _StopStub:
    """Duck-typed transit index: one bus stop at (x, 0) m, no ferry."""

    def __init__(self, x_stop):
        self.x_stop = x_stop
        self.stop_times = pd.DataFrame({"station": [0], "stop": [0], "trip": [0]})
        self.trip_route = np.array([0])
        self.route_mode = np.array(["BUS"])
        self.stop_station = np.array([0])
        self.stop_xy = np.array([[x_stop, 0.0]])

    def project(self, lat, lon):
        from tests.pipeline._frames import LAT0, LON0, M_LAT, M_LON
        return ((np.asarray(lon) - LON0) * M_LON, (np.asarray(lat) - LAT0) * M_LAT)

    def distance_to_ferry_line(self, lat, lon):
        return np.full(np.size(lat), 65_000.0)

    def ferry_quays(self):
        return np.empty((0, 2)), np.empty(0, np.int64)  # no ferry calls here

    def nearest_station(self, lat, lon):
        x, y = self.project(lat, lon)
        d = np.hypot(np.atleast_1d(x) - self.x_stop, np.atleast_1d(y))
        return np.where(d <= 60, 0, -1), np.where(d <= 60, d, np.inf)


def test_short_walk_home_from_the_bus_stop_is_its_own_section():
    # Android: a bus ride (a fix every 30 s at 8 m/s) to a stop, then a 50 m walk home: the
    # only walk fix is the arrival (within the still radius of home), the phone says "on foot"
    from pipeline.segment import segment_user
    rng = np.random.default_rng(9)
    stay0 = np.arange(0, 1200, 60.0)
    ride = 1200 + np.arange(30, 630, 30.0)
    x_stop = 8.0 * 600
    walk = ride[-1] + 30.0                                       # 40 m from the stop
    stay1 = walk + np.arange(30, 1200, 30.0)
    t = np.r_[stay0, ride, walk, stay1]
    x = np.r_[np.zeros(stay0.size), 8.0 * (ride - 1200), x_stop + 40.0,
              np.full(stay1.size, x_stop + 50.0)]
    y = np.r_[np.zeros(stay0.size + ride.size), 20.0, np.full(stay1.size, 30.0)]
    pts = frame(t, x + rng.normal(0, 2, t.size), y + rng.normal(0, 2, t.size))
    motion = pd.DataFrame({"user_id": "u1", "ts": pd.to_datetime(T0 + np.r_[ride, walk], unit="s", utc=True),
                           "activity": ["IN_VEHICLE"] * ride.size + ["WALKING"], "confidence": 92.0})
    res = segment_user(pts, motion, transit=_StopStub(x_stop))
    assert len(res["trips"]) == 1
    sec = res["sections"]
    assert list(sec["sensed_mode"]) == ["CAR", "WALKING"]
    assert abs(_boundaries(sec)[0] - ride[-1]) <= 30
    # no stop there (a car parked at the door looks the same): the ride runs to the end
    far = segment_user(pts, motion, transit=_StopStub(x_stop + 5000.0))["sections"]
    assert list(far["sensed_mode"]) == ["CAR"]


def test_walk_along_the_quay_next_to_a_ferry_route_stays_a_walk():
    # a walker on the quayside follows the ferry route's very positions from one quay past the
    # other, at 1.3 m/s without stopping: no wait at the pier (and, when the phone reports
    # activities, "on foot" all along), so no crossing is cut out
    from pipeline.segment import SegmentParams, segment_user
    loose = SegmentParams(sections=SectionParams(ferry_foot_share=1.0, ferry_wait_s=0.0))
    for source, dt in (("android", 30.0), ("ios", 40.0)):
        rng = np.random.default_rng(7)
        stay0 = np.arange(0, 1800, 60.0)
        walk = 1800 + np.arange(dt, 900, dt)
        x_walk = -400.0 + 1.3 * (walk - 1800)                    # x = 0 .. 230: on the route
        stay1 = walk[-1] + np.arange(60, 1800, 60.0)
        t = np.r_[stay0, walk, stay1]
        x = np.r_[np.full(stay0.size, -400.0), x_walk, np.full(stay1.size, x_walk[-1])]
        pts = frame(t, x + rng.normal(0, 3, t.size), rng.normal(0, 3, t.size), source=source)
        motion = pd.DataFrame({"user_id": "u1", "activity": "WALKING", "confidence": 100.0,
                               "ts": pd.to_datetime(T0 + np.arange(1800, walk[-1], 30.0),
                                                    unit="s", utc=True)})
        for mo in (None, motion):
            res = segment_user(pts, mo, transit=_FerryStub())
            assert len(res["trips"]) == 1
            assert list(res["sections"]["sensed_mode"]) == ["WALKING"]
        # each guard alone keeps it a walk; with neither, position alone cuts a "crossing"
        only_foot = SegmentParams(sections=SectionParams(ferry_wait_s=0.0))
        assert list(segment_user(pts, motion, params=only_foot, transit=_FerryStub())
                    ["sections"]["sensed_mode"]) == ["WALKING"]
        assert list(segment_user(pts, motion, params=loose, transit=_FerryStub())
                    ["sections"]["sensed_mode"]) == ["WALKING", "CAR", "WALKING"]


def test_silent_transfer_walk_to_another_stop_is_on_foot():
    # iOS: bus 1 (a fix every 50 m), a 6-min silence while its rider walks 400 m to another
    # line's stop (1.1 m/s, more than a standstill), then bus 2, whose first fixes the phone
    # still calls "on foot" as it pulls away (3 m/s): one vehicle section spanned both rides
    t1 = np.arange(0, 600, 6.0)
    x1 = 50.0 / 6.0 * t1
    t2 = 600 + 360 + np.arange(0, 600, 6.0)
    v2 = np.where(np.arange(t2.size) < 7, 3.0, 50.0 / 6.0)
    x2 = x1[-1] + 400 + np.cumsum(6.0 * v2)
    walk_t = -300 + np.arange(0, 300, 40.0)
    t = np.r_[walk_t, t1, t2]
    x = np.r_[-1.3 * (300 - (walk_t + 300)) - 1.3 * 40, x1, x2]
    pts = frame(t, x, np.zeros_like(t), source="ios")
    _, trips = segment_trips(pts)
    assert len(trips) == 1
    lag = t2[:7]                                                 # 36 s of "on foot" in bus 2
    motion = pd.DataFrame({"user_id": "u1", "activity": "WALKING", "confidence": 100.0,
                           "ts": pd.to_datetime(T0 + lag, unit="s", utc=True)})
    for mo in (None, motion):
        sections, _ = segment_sections(pts, trips, mo)
        assert list(sections["sensed_mode"]) == ["WALKING", "CAR", "WALKING", "CAR"]
        b = _boundaries(sections)
        assert abs(b[1] - 600) <= 30 and abs(b[2] - t2[0]) <= 60
    still_only, _ = segment_sections(pts, trips, params=SectionParams(silent_wait_mps=0.5))
    assert list(still_only["sensed_mode"]) == ["WALKING", "CAR"]
    vehicle_next, _ = segment_sections(pts, trips, motion,
                                       params=SectionParams(silent_wait_any_next=False))
    assert list(vehicle_next["sensed_mode"]) == ["WALKING", "CAR"]


def test_foot_change_moves_even_when_some_candidates_fall_outside_the_trip():
    # a walk of two fixes opens the trip, the vehicle's steps start at fix 2, the speed
    # classes put the change at fix 4: candidates before the trip's second fix are out of
    # bounds, and must not stop the change from moving (their cost once overflowed)
    from pipeline.sections import MOTOR, WALK, _refine_foot_changes
    t = 30.0 * np.arange(12)
    x = np.cumsum(np.r_[0.0, 30.0, np.full(10, 240.0)])          # 1 m/s, then 8 m/s
    step = np.r_[0.0, np.diff(x)]
    cls = np.r_[np.full(4, WALK), np.full(8, MOTOR)]
    starts = np.array([0, 4])
    g = np.zeros(12, dtype=np.int64)
    for k in (2, 5):
        out = _refine_foot_changes(cls, starts, g, t, step, SectionParams(refine_points=k))
        assert list(np.flatnonzero(out[1:] != out[:-1]) + 1) == [2]


def test_short_fast_step_in_the_walk_does_not_hold_the_change_back():
    # the bus's last fix is at 5, the walk starts at fix 6; one fix of the walk jumps 80 m in
    # 10 s (8 m/s, a GPS jump), the speed classes put the change after it: the jump is no
    # vehicle step (a vehicle's fast step covers 150 m or more), so the change moves back
    from pipeline.sections import MOTOR, WALK, _refine_foot_changes
    t = np.r_[30.0 * np.arange(8), 220.0, 30.0 * np.arange(8, 14)]
    step = np.r_[0.0, np.full(5, 240.0), 40.0, 40.0, 80.0, np.full(6, 40.0)]
    cls = np.r_[np.full(9, MOTOR), np.full(6, WALK)]
    starts = np.array([0, 9])
    g = np.zeros(t.size, dtype=np.int64)
    out = _refine_foot_changes(cls, starts, g, t, step, SectionParams())
    assert list(np.flatnonzero(out[1:] != out[:-1]) + 1) == [6]
    held = _refine_foot_changes(cls, starts, g, t, step, SectionParams(refine_fast_min_m=0.0))
    assert list(np.flatnonzero(held[1:] != held[:-1]) + 1) == [9]


def test_smoothed_speed_spans_at_least_the_half_width():
    # a walk at 1.2 m/s sampled every 30 s, but for two fixes 4 s apart, the second 20 m off
    # (GPS jitter): the ±30 s window of either holds only those two and read 5 m/s, a bus's
    # pace; widened to the fixes around it, it spans 36 s or more
    from pipeline.sections import _smoothed_speed
    from pipeline.trips import make_track
    t = np.r_[30.0 * np.arange(5), 152.0, 156.0, 188.0 + 30.0 * np.arange(5)]
    x = 1.2 * t
    x[t == 156.0] += 20.0
    tr = make_track(frame(t, x, np.zeros_like(x)))
    trip_of = np.zeros(t.size, dtype=np.int64)
    i = int(np.flatnonzero(tr.t == T0 + 156.0)[0])
    assert _smoothed_speed(tr, trip_of, 30.0, 30.0)[i] < 2.2
    assert _smoothed_speed(tr, trip_of, 30.0)[i] > 4.4


def test_smoothing_window_is_not_widened_across_a_silence():
    # the phone woke up on the bus after 500 s of silence (455 m: a wait, then the ride): the
    # first two fixes on the bus, 29 s apart, are a bus's pace, not the silence's average
    from pipeline.sections import _smoothed_speed
    from pipeline.trips import make_track
    t = np.r_[30.0 * np.arange(5), 620.0, 649.0, 679.0, 709.0]
    x = np.r_[np.zeros(5), 455.0, 665.0, 875.0, 1085.0]
    tr = make_track(frame(t, x, np.zeros_like(x)))
    sp = _smoothed_speed(tr, np.zeros(t.size, dtype=np.int64), 30.0, 30.0)
    assert sp[5] > 6.5


def test_walk_home_starts_where_the_bus_stopped():
    # Android: a bus ride (a fix every 30 s at 8 m/s) whose last step ends at the stop
    # (160 m in 30 s: too fast for the phone's "on foot" there to decide the fix's class),
    # then a 43 m walk home: the only walk fix is already within the still radius of home
    # and has no reading of its own. The walk starts at the fix after the ride's last fast
    # step, where the phone said "on foot"
    from pipeline.segment import segment_user
    rng = np.random.default_rng(3)
    stay0 = np.arange(0, 1200, 60.0)
    ride = 1200 + np.arange(30, 630, 30.0)
    x_stop = 8.0 * 600 + 160.0
    at_stop = ride[-1] + 30.0
    walk = at_stop + 36.0
    stay1 = walk + np.arange(30, 1200, 30.0)
    t = np.r_[stay0, ride, at_stop, walk, stay1]
    x = np.r_[np.zeros(stay0.size), 8.0 * (ride - 1200), x_stop, x_stop + 43.0,
              np.full(stay1.size, x_stop + 58.0)]
    pts = frame(t, x + rng.normal(0, 1, t.size), rng.normal(0, 1, t.size))
    motion = pd.DataFrame({"user_id": "u1", "ts": pd.to_datetime(T0 + np.r_[ride, at_stop, walk + 5],
                                                                  unit="s", utc=True),
                           "activity": ["IN_VEHICLE"] * ride.size + ["ON_FOOT", "STILL"],
                           "confidence": 92.0})
    res = segment_user(pts, motion, transit=_StopStub(x_stop))
    assert len(res["trips"]) == 1
    sec = res["sections"]
    assert list(sec["sensed_mode"]) == ["CAR", "WALKING"]
    assert abs(_boundaries(sec)[0] - at_stop) <= 30
    # the still tail alone (from its own first fix) is no walk: no "on foot" reading there
    from pipeline.segment import SegmentParams
    old = segment_user(pts, motion, transit=_StopStub(x_stop),
                       params=SegmentParams(sections=SectionParams(tail_walk_back=False)))
    assert list(old["sections"]["sensed_mode"]) == ["CAR"]
    # nor a bicycle's ride (the cyclist gets off at the door, "on foot" as well)
    bike = motion.assign(activity=["ON_BICYCLE"] * ride.size + ["ON_FOOT", "STILL"])
    assert list(segment_user(pts, bike, transit=_StopStub(x_stop))["sections"]["sensed_mode"]) \
        == ["BICYCLING"]


class _RailStub(_StopStub):
    """Duck-typed transit index: one railway station at (x, 0) m, no bus stop near the track."""

    def __init__(self, x_station):
        super().__init__(-1e6)
        self.rail_xy = np.array([[x_station, 0.0]])

    def distance_to_rail_station(self, lat, lon):
        x, y = self.project(lat, lon)
        return np.hypot(np.atleast_1d(x) - self.rail_xy[0, 0], np.atleast_1d(y))


def _train_then_car(dwell_then_train: bool = False):
    """A fix every 30 s: a 10 min stay, 15 min by train at 28 m/s to a station, then 10 min
    by car at 11 m/s (or, with ``dwell_then_train``, a 150 s stop there and the train on),
    then a stay. Returns (points, time of the first fix after the station, station x)."""
    rng = np.random.default_rng(5)
    stay0 = np.arange(0, 600, 30.0)
    train = 600 + np.arange(30, 930, 30.0)
    x_station = 28.0 * 900
    if dwell_then_train:
        dwell = train[-1] + np.arange(30, 180, 30.0)
        after = dwell[-1] + np.arange(30, 630, 30.0)
        x_after = x_station + 28.0 * (after - dwell[-1])
        x_dwell = np.full(dwell.size, x_station)
    else:
        dwell, x_dwell = np.empty(0), np.empty(0)
        after = train[-1] + np.arange(30, 630, 30.0)
        x_after = x_station + 11.0 * (after - train[-1])
    stay1 = after[-1] + np.arange(30, 900, 30.0)
    t = np.r_[stay0, train, dwell, after, stay1]
    x = np.r_[np.zeros(stay0.size), 28.0 * (train - 600), x_dwell, x_after,
              np.full(stay1.size, x_after[-1])]
    pts = frame(t, x + rng.normal(0, 3, t.size), rng.normal(0, 3, t.size))
    return pts, (dwell[0] if dwell.size else after[0]), x_station


def test_train_then_car_at_a_station_are_two_sections():
    # park and ride home: the walk from the platform to the car park left no fix, so one
    # motorised run spans the train and the car; the pace drops from a train's to a car's
    # at the station
    from pipeline.segment import SegmentParams, segment_user
    pts, t_car, x_station = _train_then_car()
    sec = segment_user(pts, transit=_RailStub(x_station))["sections"]
    assert len(sec) == 2
    assert abs(_boundaries(sec)[0] - t_car) <= 30
    off = SegmentParams(sections=SectionParams(rail_cut=False))
    assert len(segment_user(pts, transit=_RailStub(x_station), params=off)["sections"]) == 1
    # no station there: a car leaving the motorway for town is not cut
    assert len(segment_user(pts, transit=_RailStub(x_station + 5000.0))["sections"]) == 1
    # a train calling at the station (2.5 min there, then on at its pace) is not cut, though
    # the mean pace over the 5 min after the station is half a train's
    pts, _, x_station = _train_then_car(dwell_then_train=True)
    assert len(segment_user(pts, transit=_RailStub(x_station))["sections"]) == 1


class _TwoLinesStub(_StopStub):
    """Duck-typed transit index: a stop at (x_stop, 0) m where line 0 (along y = 0) meets
    line 1 (along x = x_stop), each within 30 m."""

    def route_share(self, lat, lon, group, n_groups):
        x, y = self.project(lat, lon)
        on = np.c_[np.abs(y) <= 30, np.abs(x - self.x_stop) <= 30]
        cnt = np.stack([np.bincount(group, weights=on[:, r], minlength=n_groups) for r in (0, 1)], 1)
        n = np.maximum(np.bincount(group, minlength=n_groups), 1)
        best = cnt.argmax(1)
        return cnt[np.arange(n_groups), best] / n, np.where(cnt.max(1) > 0, best, -1)


def _bus_transfer_bus(turn: bool):
    """A fix every 30 s: a stay, 6 min by bus at 8 m/s along y = 0 to a stop, 90 s there
    (a few metres of jitter), then 6 min by bus at 8 m/s, north along x = x_stop (``turn``)
    or on along y = 0, then a stay. Returns (points, time of the first fix at the stop, of
    the first fix of the second ride, x_stop)."""
    rng = np.random.default_rng(11)
    stay0 = np.arange(0, 600, 30.0)
    ride0 = 600 + np.arange(30, 390, 30.0)
    x_stop = 8.0 * 360
    pause = ride0[-1] + np.arange(30, 120, 30.0)
    ride1 = pause[-1] + np.arange(30, 390, 30.0)
    stay1 = ride1[-1] + np.arange(30, 900, 30.0)
    d1 = 8.0 * (ride1 - pause[-1])
    x1 = np.full(ride1.size, x_stop) if turn else x_stop + d1
    y1 = d1 if turn else np.zeros(ride1.size)
    t = np.r_[stay0, ride0, pause, ride1, stay1]
    x = np.r_[np.zeros(stay0.size), 8.0 * (ride0 - 600), np.full(pause.size, x_stop), x1,
              np.full(stay1.size, x1[-1])]
    y = np.r_[np.zeros(stay0.size + ride0.size + pause.size), y1, np.full(stay1.size, y1[-1])]
    pts = frame(t, x + rng.normal(0, 2, t.size), y + rng.normal(0, 2, t.size))
    return pts, ride0[-1], ride1[0], x_stop


def test_pause_between_two_bus_lines_is_a_transfer_on_foot():
    # the rider changes lines at a stop and waits 90 s there: one vehicle run by speed (the
    # pause is shorter than any vehicle stop); the two rides keep to two different routes
    from pipeline.segment import SegmentParams, segment_user
    pts, t_stop, t_ride1, x_stop = _bus_transfer_bus(turn=True)
    sec = segment_user(pts, transit=_TwoLinesStub(x_stop))["sections"]
    assert list(sec["sensed_mode"]) == ["CAR", "WALKING", "CAR"]
    b = _boundaries(sec)
    assert abs(b[0] - t_stop) <= 30 and abs(b[1] - t_ride1) <= 30
    off = SegmentParams(sections=SectionParams(transfer_pauses=False))
    assert list(segment_user(pts, transit=_TwoLinesStub(x_stop), params=off)["sections"]["sensed_mode"]) == ["CAR"]
    # the same bus dwelling 90 s at the stop and going on along its route: one ride
    pts, _, _, x_stop = _bus_transfer_bus(turn=False)
    assert list(segment_user(pts, transit=_TwoLinesStub(x_stop))["sections"]["sensed_mode"]) == ["CAR"]


def test_walking_reading_does_not_decide_at_a_crawling_bus_pace():
    # a bus crawls to its stop (eight 31 s steps at 3.8 m/s) while the phone already says
    # "walking": no walker keeps 3.8 m/s, so the walk starts where the bus stopped (a reading
    # decided up to 4.4 m/s, and the walk started four minutes early)
    v = np.r_[np.zeros(20), np.full(30, 9.0), np.full(8, 3.8), np.full(20, 1.2), np.zeros(20)]
    t, pts, trips, motion = _bus_ending_on_foot(v, slice(50, 75))
    for factor, ok in ((1.5, True), (2.0, False)):
        sections, _ = segment_sections(pts, trips, motion,
                                       params=SectionParams(walk_activity_max_factor=factor))
        assert list(sections["sensed_mode"]) == ["CAR", "WALKING"]
        assert (abs(_boundaries(sections)[0] - t[58]) <= 45) == ok



def test_ferry_approach_to_its_pier_belongs_to_the_crossing():
    # the boat leaves the drawn route 45 m to one side for its last minute and a half into
    # the pier: those fixes are neither on the water (off the line) nor at the quay (> 40 m);
    # the crossing lasts until the first fix at the pier, not until the first off the line
    from pipeline.segment import SegmentParams, segment_user
    rng = np.random.default_rng(4)
    stay0 = np.arange(0, 1800, 60.0)
    walk1 = 1800 + np.arange(30, 630, 30.0)
    wait = 1800 + np.arange(660, 780, 30.0)
    dep = 2580.0
    on_line = dep + np.arange(30, 210, 30.0)
    approach = dep + np.array([210.0, 240.0, 270.0])
    arr = dep + 300.0
    walk2 = arr + np.arange(30, 630, 30.0)
    stay1 = walk2[-1] + np.arange(60, 1800, 60.0)
    t = np.r_[stay0, walk1, wait, on_line, approach, arr, walk2, stay1]
    x = np.r_[np.full(stay0.size, -800.0), -800.0 + 1.3 * (walk1 - 1800), np.zeros(wait.size),
              0.77 * (on_line - dep), 0.77 * (approach - dep), 228.0, np.full(walk2.size, 230.0),
              np.full(stay1.size, 230.0)]
    y = np.r_[np.zeros(stay0.size + walk1.size + wait.size + on_line.size), np.full(3, 45.0), 5.0,
              5.0 + 1.3 * (walk2 - arr), np.full(stay1.size, 5.0 + 1.3 * (walk2[-1] - arr))]
    pts = frame(t, x + rng.normal(0, 2, t.size), y + rng.normal(0, 2, t.size))
    res = segment_user(pts, transit=_FerryStub())["sections"]
    assert list(res["sensed_mode"]) == ["WALKING", "CAR", "WALKING"]
    assert abs(_boundaries(res)[1] - arr) <= 30
    old = segment_user(pts, transit=_FerryStub(), params=SegmentParams(
        sections=SectionParams(ferry_dock_approach_s=0.0)))["sections"]
    assert list(old["sensed_mode"]) == ["WALKING", "CAR", "WALKING"]
    assert abs(_boundaries(old)[1] - arr) > 60


def test_long_in_vehicle_reading_at_a_walking_pace_is_a_slow_vehicle():
    # a walk to the stop, then a bus crawling in a jam at 1.8 m/s for 5 min, then running at
    # 8 m/s: the phone says "in vehicle" all through the crawl, longer than a reading lags
    # after alighting, so the crawl's fixes are the bus's. (The refinement then moves the
    # change by up to five fixes towards the fast steps: 150 s after the crawl's start
    # instead of 300 s; without it the change is at the crawl's start.)
    legs = [(400, 1.3), (540, 1.8), (4800, 8.0), (400, 1.3)]
    pts, truth = day(stays=(900, 900), moves=((0, 1.0),), mode_speeds=[legs], dt=30.0, noise=1.0)
    _, trips = segment_trips(pts)
    t_leg = _leg_times(truth[0][0], legs, 30.0)
    ts = np.arange(truth[0][0], truth[0][1], 20.0)
    act = np.where((ts >= t_leg[1]) & (ts < t_leg[3]), "IN_VEHICLE", "ON_FOOT")
    motion = pd.DataFrame({"user_id": "u1", "ts": pd.to_datetime(T0 + ts, unit="s", utc=True),
                           "activity": act, "confidence": 90.0})
    err = {}
    for run_s in (180.0, 0.0):
        for k in (5, 0):
            sections, _ = segment_sections(pts, trips, motion, SectionParams(
                vehicle_reading_run_s=run_s, refine_points=k))
            assert list(sections["sensed_mode"]) == ["WALKING", "CAR", "WALKING"]
            err[run_s, k] = abs(_boundaries(sections)[0] - t_leg[1])
    assert err[180.0, 0] <= 30 and err[180.0, 5] <= 160
    assert err[0.0, 0] >= 290 and err[0.0, 5] >= 290


def test_smoothed_speed_steps_over_points_outside_the_trip():
    from pipeline.sections import _smoothed_speed
    from pipeline.trips import make_track

    # 20 fixes 1 s apart going east 10 m a step; fixes 10 and 11 are a 1 km detour north
    t = np.arange(20.0)
    x = 10.0 * t
    y = np.where((t == 10) | (t == 11), 1000.0, 0.0)
    tr = make_track(frame(t, x, y))
    trip_of = np.full(20, -1)
    trip_of[5:10] = 0
    trip_of[12:16] = 0  # one trip whose run skips the detour: fix 9 to fix 12 is 30 m
    speed = _smoothed_speed(tr, trip_of, h=100.0)  # every window: the whole run
    assert np.allclose(speed[trip_of == 0], 10.0, rtol=1e-2)  # 100 m in 10 s, not via 1 km
    assert np.all(speed[trip_of < 0] == 0.0)
