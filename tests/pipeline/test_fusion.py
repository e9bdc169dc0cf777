"""Fusion of operator records with GPS sections (pipeline.fusion): one small case per rule,
fault injection (clock skew, GPS gaps) and a randomised many-user check."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from emission_ext import schema
from pipeline.fusion import FusionParams, fuse, haversine_m

T0 = pd.Timestamp("2026-03-02 07:00", tz="UTC")
# places along a north-going street in La Rochelle, ~550 m apart
P = [(46.150 + 0.005 * k, -1.150) for k in range(12)]


def ts(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=minutes * 60)


def wkb(*pts):
    return shapely.to_wkb(shapely.linestrings([(lon, lat) for lat, lon in pts]))


def make(legs, user="u1", trip="t1", geometry=True):
    """legs: (mode, t0 min, t1 min, [place indexes], confidence) -> (trips, sections)."""
    secs = []
    for k, (mode, a, b, pl, conf) in enumerate(legs):
        pts = [P[i] for i in pl]
        d = float(sum(haversine_m(p[0], p[1], q[0], q[1]) for p, q in zip(pts[:-1], pts[1:])))
        secs.append(dict(user_id=user, trip_id=trip, section_id=f"{trip}-s{k}", start_ts=ts(a), end_ts=ts(b),
                         distance_m=d, duration_s=(b - a) * 60.0, mode=mode, mode_confidence=conf,
                         mode_source="classifier", geometry=wkb(*pts) if geometry else None))
    s = pd.DataFrame(secs)
    first, last = legs[0][3][0], legs[-1][3][-1]
    t = pd.DataFrame([dict(user_id=user, trip_id=trip, start_ts=s["start_ts"].min(), end_ts=s["end_ts"].max(),
                           start_lat=P[first][0], start_lon=P[first][1], end_lat=P[last][0], end_lon=P[last][1],
                           start_place_id=None, end_place_id=None, distance_m=s["distance_m"].sum(),
                           duration_s=(s["end_ts"].max() - s["start_ts"].min()).total_seconds())])
    return t, s


def rec(rid, source, t0, place, t1=None, end_place=None, user="u1"):
    kind = {"yelo_bus": "validation", "yelo_boat": "validation", "yelo_bike": "rental",
            "yelo_car": "booking", "parking": "parking_session"}[source]
    ep = end_place if end_place is not None else (place if t1 is not None else None)
    return dict(user_id=user, record_id=rid, source=source, kind=kind, start_ts=ts(t0),
                end_ts=ts(t1) if t1 is not None else pd.NaT, start_lat=P[place][0], start_lon=P[place][1],
                end_lat=P[ep][0] if ep is not None else np.nan, end_lon=P[ep][1] if ep is not None else np.nan)


def recs(*rows):
    return schema.coerce(pd.DataFrame(list(rows)), "records")


WALK_BUS_WALK = [("WALKING", 0, 8, [0, 1], 0.9), ("CAR", 8, 30, [1, 3, 6], 0.6), ("WALKING", 30, 36, [6, 7], 0.9)]


def matched(res, rid):
    r = res.records.set_index("record_id").loc[rid]
    return r["trip_id"], r["section_id"]


def mode_of(res, sid):
    return res.sections.set_index("section_id").loc[sid, ["mode", "mode_source", "mode_confidence"]].tolist()


def test_bus_validation_sets_mode():
    t, s = make(WALK_BUS_WALK)
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 8.5, 1)))
    assert matched(res, "V1") == ("t1", "t1-s1")
    assert mode_of(res, "t1-s1") == ["BUS", "yelo", 1.0]
    assert mode_of(res, "t1-s0")[0] == "WALKING" and len(res.conflicts) == 0
    schema.validate(res.sections, "sections")
    schema.validate(res.trips, "trips")
    schema.validate(res.records, "records")


@pytest.mark.parametrize("skew_s", [-180, -120, -60, 60, 120, 180])
def test_clock_skew_up_to_three_minutes(skew_s):
    t, s = make(WALK_BUS_WALK)
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 8.2 + skew_s / 60.0, 1)))
    assert matched(res, "V1") == ("t1", "t1-s1")
    assert res.summary()["sections_split"] == 0


def test_skew_with_very_short_walk_still_prefers_the_bus():
    legs = [("WALKING", 0, 1.5, [0, 0], 0.9), ("BUS", 1.5, 20, [0, 4], 0.7)]
    t, s = make(legs)
    for skew in (-3, 3):
        res = fuse(t, s, recs(rec("V1", "yelo_bus", 1.7 + skew, 0)))
        assert matched(res, "V1")[1] == "t1-s1"


def test_gps_gap_late_section_start():
    # the phone got its first fix 6 min into the bus ride, 2 stops later
    legs = [("WALKING", 0, 8, [0, 1], 0.9), ("BUS", 14, 30, [3, 6], 0.6)]
    t, s = make(legs)
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 8.0, 1)))
    assert matched(res, "V1")[1] == "t1-s1"


def test_without_geometry_trip_ends_are_used():
    t, s = make([("CAR", 0, 20, [0, 5], 0.7)], geometry=False)
    res = fuse(t, s, recs(rec("S1", "parking", 20.5, 5, t1=300)))
    assert matched(res, "S1")[1] == "t1-s0"
    assert mode_of(res, "t1-s0") == ["CAR", "parking", 1.0]


def test_missed_mode_change_splits_the_section():
    # the GPS saw one walking section: 8 min on foot to the stop, then 22 min of bus
    t, s = make([("WALKING", 0, 30, [0, 1, 3, 6], 0.5)])
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 8.0, 1)))
    sec = res.sections.set_index("section_id")
    assert list(sec.index) == ["t1-s0.1", "t1-s0.2"]
    assert sec.loc["t1-s0.1", "mode"] == "WALKING" and sec.loc["t1-s0.2", "mode"] == "BUS"
    assert sec.loc["t1-s0.1", "end_ts"] == sec.loc["t1-s0.2", "start_ts"] == ts(8)
    assert matched(res, "V1")[1] == "t1-s0.2"
    # distances follow the geometry, cut at the stop
    total = s["distance_m"].iloc[0]
    assert sec["distance_m"].sum() == pytest.approx(total)
    assert sec.loc["t1-s0.1", "distance_m"] == pytest.approx(haversine_m(*P[0], *P[1]), rel=1e-6)
    g = shapely.from_wkb(sec.loc["t1-s0.2", "geometry"])
    assert shapely.get_coordinates(g)[0].tolist() == [P[1][1], P[1][0]]
    schema.validate(res.sections, "sections")


def test_bike_rental_inside_a_walk_splits_three_ways():
    t, s = make([("WALKING", 0, 40, [0, 1, 5, 6], 0.5)])
    res = fuse(t, s, recs(rec("B1", "yelo_bike", 6.0, 1, t1=34.0, end_place=5)))
    modes = res.sections.set_index("section_id")["mode"].to_dict()
    assert modes == {"t1-s0.1": "WALKING", "t1-s0.2": "BIKESHARE", "t1-s0.3": "WALKING"}
    assert matched(res, "B1")[1] == "t1-s0.2"


def test_confident_incompatible_mode_is_a_conflict_not_an_override():
    t, s = make([("BICYCLING", 0, 20, [0, 4], 0.95)])
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 0.5, 0)))
    assert mode_of(res, "t1-s0")[:2] == ["BICYCLING", "classifier"]
    c = res.conflicts.iloc[0]
    assert (c["record_id"], c["kind"], c["section_mode"], c["record_mode"]) == ("V1", "mode_conflict", "BICYCLING", "BUS")
    # an unsure classifier is overridden by the operator's record
    t, s = make([("BICYCLING", 0, 20, [0, 4], 0.55)])
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 0.5, 0)))
    assert mode_of(res, "t1-s0")[0] == "BUS" and len(res.conflicts) == 0


def test_user_confirmed_mode_is_never_overridden():
    t, s = make([("WALKING", 0, 20, [0, 4], None)])
    s["mode_source"] = "user"
    res = fuse(t, s, recs(rec("B1", "yelo_bike", 0.2, 0, t1=20, end_place=4)))
    assert mode_of(res, "t1-s0")[0] == "WALKING" and res.conflicts["kind"].tolist() == ["mode_conflict"]


def test_parking_entry_and_exit_confirm_car():
    t1, s1 = make([("CAR", 0, 20, [0, 5], 0.7), ("WALKING", 20, 25, [5, 6], 0.9)], trip="t1")
    t2, s2 = make([("WALKING", 540, 545, [6, 5], 0.9), ("BUS", 545, 565, [5, 0], 0.6)], trip="t2")
    res = fuse(pd.concat([t1, t2]), pd.concat([s1, s2]), recs(rec("S1", "parking", 21, 5, t1=546)))
    assert matched(res, "S1")[1] == "t1-s0"
    assert mode_of(res, "t1-s0")[:2] == ["CAR", "parking"]
    assert mode_of(res, "t2-s1")[:2] == ["CAR", "parking"]  # the departure, confirmed CAR too


def test_departure_prefers_the_drive_over_a_walk_the_rules_called_car():
    # the walk to the car (2 min, 60 m) was classified CAR, but the phone sensed walking:
    # the car-park exit (at 0.5 min, skew) confirms the drive, not the walk
    t, s = make([("CAR", 0, 2, [5, 5], 0.6), ("CAR", 2, 20, [5, 0], 0.6)])
    s["sensed_mode"] = ["WALKING", "CAR"]
    r = recs(rec("S1", "parking", -600, 5, t1=0.5))
    res = fuse(t, s, r)
    assert mode_of(res, "t1-s1")[:2] == ["CAR", "parking"]
    assert mode_of(res, "t1-s0")[1] != "parking"
    # without the phone's hint the nearer start in time wins
    res = fuse(t, s.drop(columns="sensed_mode"), r)
    assert mode_of(res, "t1-s0")[:2] == ["CAR", "parking"]


def test_bike_rental_over_a_gps_cut_claims_both_parts():
    legs = [("BICYCLING", 0, 7, [0, 2], 0.7), ("UNKNOWN", 7, 9, [2, 3], None), ("BICYCLING", 9, 16, [3, 5], 0.7)]
    t, s = make(legs)
    res = fuse(t, s, recs(rec("B1", "yelo_bike", 0.3, 0, t1=16.2, end_place=5)))
    assert matched(res, "B1")[1] == "t1-s0"
    assert res.sections["mode"].tolist() == ["BIKESHARE"] * 3


def test_carshare_booking_over_two_trips():
    ta, sa = make([("WALKING", 0, 5, [0, 1], 0.9), ("CAR", 8, 25, [1, 8], 0.8)], trip="ta")
    tb, sb = make([("CAR", 200, 218, [8, 1], 0.8), ("WALKING", 219, 224, [1, 0], 0.9)], trip="tb")
    res = fuse(pd.concat([ta, tb]), pd.concat([sa, sb]), recs(rec("K1", "yelo_car", 5.5, 1, t1=219)))
    assert matched(res, "K1")[1] == "ta-s1"
    m = res.sections.set_index("section_id")["mode"]
    assert m["ta-s1"] == m["tb-s0"] == "CARSHARE" and m["ta-s0"] == m["tb-s1"] == "WALKING"


def test_record_only_trips_and_transfers():
    t, s = make(WALK_BUS_WALK)
    r = recs(rec("V1", "yelo_bus", 300, 2), rec("V2", "yelo_bus", 320, 5),     # one trip, one transfer
             rec("B1", "yelo_bike", 600, 1, t1=615, end_place=4),              # a lone rental
             rec("V3", "yelo_bus", 300, 2, user="u2"))                         # another tester
    res = fuse(t, s, r)
    rt = res.trips[res.trips["origin"] == "record"].set_index("trip_id")
    assert sorted(rt.index) == ["rec-yelo_bike:B1", "rec-yelo_bus:V1", "rec-yelo_bus:V3"]
    assert matched(res, "V2")[0] == "rec-yelo_bus:V1" and matched(res, "V1")[0] == "rec-yelo_bus:V1"
    assert rt.loc["rec-yelo_bus:V1", "user_id"] == "u1" and rt.loc["rec-yelo_bus:V3", "user_id"] == "u2"
    sec = res.sections.set_index("section_id")
    assert sec.loc["rec-yelo_bus:V1", "end_ts"] == ts(320)  # rides until the transfer
    assert sec.loc["rec-yelo_bike:B1", "mode"] == "BIKESHARE"
    assert sec.loc["rec-yelo_bike:B1", "distance_m"] == pytest.approx(1.3 * haversine_m(*P[1], *P[4]))
    assert (res.trips.loc[res.trips["trip_id"] == "t1", "origin"] == "gps").all()
    assert res.summary()["record_only_trips"] == 3
    schema.validate(res.trips, "trips")


def test_record_during_a_trip_but_far_from_it_is_reviewed():
    t, s = make(WALK_BUS_WALK)
    far = dict(rec("V1", "yelo_bus", 15, 0), start_lat=46.30, start_lon=-1.40)
    res = fuse(t, s, recs(far))
    assert pd.isna(res.records.loc[0, "section_id"])
    assert res.conflicts["kind"].tolist() == ["no_section"]


def test_record_on_a_section_without_movement_makes_a_record_only_trip():
    # the segmentation bridged a 25 min GPS gap (phone off during a bike ride) into one trip:
    # the middle section moved 0 m in 25 min, so the rental the phone missed is its own trip
    t, s = make([("WALKING", 0, 5, [0, 1], 0.5), ("WALKING", 5, 30, [1, 1], 0.5),
                 ("WALKING", 30, 35, [1, 2], 0.5)])
    res = fuse(t, s, recs(rec("B1", "yelo_bike", 6, 1, t1=18, end_place=5)))
    assert matched(res, "B1") == ("rec-yelo_bike:B1", "rec-yelo_bike:B1")
    assert res.conflicts.empty
    gps = res.sections[res.sections["trip_id"] == "t1"]
    assert (gps["mode_source"] == "classifier").all()
    # the same rental on a section that moved is attached to it
    t, s = make([("WALKING", 0, 5, [0, 1], 0.5), ("BICYCLING", 5, 30, [1, 3, 5], 0.5),
                 ("WALKING", 30, 35, [5, 6], 0.5)])
    res = fuse(t, s, recs(rec("B1", "yelo_bike", 5, 1, t1=30, end_place=5)))
    assert matched(res, "B1") == ("t1", "t1-s1") and mode_of(res, "t1-s1")[0] == "BIKESHARE"


def test_fusion_is_idempotent():
    t, s = make(WALK_BUS_WALK)
    r = recs(rec("V1", "yelo_bus", 8.5, 1), rec("V2", "yelo_bus", 300, 2))
    a = fuse(t, s, r)
    b = fuse(a.trips, a.sections, a.records)
    pd.testing.assert_frame_equal(a.trips, b.trips)
    pd.testing.assert_frame_equal(a.sections, b.sections)
    pd.testing.assert_frame_equal(a.records, b.records)


def test_empty_inputs():
    t, s = make(WALK_BUS_WALK)
    res = fuse(t, s, schema.empty("records"))
    assert len(res.records) == 0 and len(res.sections) == 3
    res = fuse(schema.empty("trips"), schema.empty("sections"), recs(rec("V1", "yelo_bus", 8.5, 1)))
    assert res.trips["origin"].tolist() == ["record"]


def test_many_users_random_skew():
    """300 users x 10 trips (walk 5 min to the stop, bus 20 min), one validation each with up
    to +-3 min clock skew: every validation lands on its bus section (built with arrays)."""
    rng = np.random.default_rng(7)
    nu, nk = 300, 10
    u = np.repeat(np.arange(nu), nk)
    k = np.tile(np.arange(nk), nu)
    start = 3600.0 * k + rng.uniform(0, 1200, nu * nk)
    users = np.char.mod("%03d", u).astype(object)
    tid = np.char.add("t", k.astype(str)).astype(object)
    p0, p1, p6 = P[0], P[1], P[6]
    walk = shapely.linestrings([[(p0[1], p0[0]), (p1[1], p1[0])]] * (nu * nk))
    bus = shapely.linestrings([[(p1[1], p1[0]), (p6[1], p6[0])]] * (nu * nk))
    def frame(suffix, a, b, mode, conf, geoms):
        return pd.DataFrame({"user_id": users, "trip_id": tid, "section_id": tid + suffix,
                             "start_ts": T0 + pd.to_timedelta(a, unit="s"), "end_ts": T0 + pd.to_timedelta(b, unit="s"),
                             "distance_m": 500.0, "duration_s": b - a, "mode": mode, "mode_confidence": conf,
                             "mode_source": "classifier", "geometry": shapely.to_wkb(geoms)})
    secs = pd.concat([frame("-s0", start, start + 300, "WALKING", 0.9, walk),
                      frame("-s1", start + 300, start + 1500, "BUS", 0.6, bus)], ignore_index=True)
    trips = pd.DataFrame({"user_id": users, "trip_id": tid, "start_ts": T0 + pd.to_timedelta(start, unit="s"),
                          "end_ts": T0 + pd.to_timedelta(start + 1500, unit="s"), "start_lat": p0[0],
                          "start_lon": p0[1], "end_lat": p6[0], "end_lon": p6[1], "start_place_id": None,
                          "end_place_id": None, "distance_m": 3000.0, "duration_s": 1500.0})
    rid = np.char.add(np.char.add(np.char.add("V", users.astype(str)), "-"), k.astype(str)).astype(object)
    r = schema.coerce(pd.DataFrame({
        "user_id": users, "record_id": rid, "source": "yelo_bus", "kind": "validation",
        "start_ts": T0 + pd.to_timedelta(start + 300 + rng.uniform(-180, 180, nu * nk), unit="s"),
        "start_lat": p1[0], "start_lon": p1[1]}), "records")
    res = fuse(trips, secs, r)
    got = res.records.set_index("record_id")["section_id"].reindex(rid).to_numpy()
    assert (got == (tid + "-s1")).all()
    assert (res.sections.loc[res.sections["section_id"].str.endswith("-s1"), "mode_source"] == "yelo").all()


def test_operator_clock_offset_is_estimated_and_corrected():
    trips, secs, rows = [], [], []
    for k in range(8):
        t, s = make([("WALKING", 60 * k, 60 * k + 8, [0, 1], 0.9), ("CAR", 60 * k + 8, 60 * k + 30, [1, 3, 6], 0.6)],
                     trip=f"t{k}")
        trips.append(t)
        secs.append(s)
        rows.append(rec(f"V{k}", "yelo_bus", 60 * k + 8 + 2.5, 1))  # the operator's clock is 150 s fast
    res = fuse(pd.concat(trips), pd.concat(secs), recs(*rows))
    assert res.clock_offsets["yelo_bus"] == pytest.approx(150.0, abs=1.0)
    assert (res.records["section_id"] == [f"t{k}-s1" for k in range(8)]).all()
    few = fuse(trips[0], secs[0], recs(rows[0]))
    assert few.clock_offsets == {}  # too few clear matches to estimate


def test_a_ride_cut_in_pieces_is_merged_up_to_the_walk():
    legs = [("WALKING", 0, 8, [0, 1], 0.9), ("CAR", 8, 14, [1, 3], 0.6), ("CAR", 14, 25, [3, 6], 0.6),
            ("WALKING", 25, 30, [6, 7], 0.9), ("CAR", 30, 40, [7, 9], 0.6)]
    t, s = make(legs)
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 8.2, 1)))
    sec = res.sections.set_index("section_id")
    assert list(sec.index) == ["t1-s0", "t1-s1", "t1-s3", "t1-s4"]
    assert sec.loc["t1-s1", "mode"] == "BUS" and sec.loc["t1-s1", "end_ts"] == ts(25)
    assert sec.loc["t1-s1", "distance_m"] == pytest.approx(s["distance_m"].iloc[1] + s["distance_m"].iloc[2])
    g = shapely.get_coordinates(shapely.from_wkb(sec.loc["t1-s1", "geometry"]))
    assert g[0].tolist() == [P[1][1], P[1][0]] and g[-1].tolist() == [P[6][1], P[6][0]]
    assert sec.loc["t1-s4", "mode"] == "CAR"  # after the walk: another ride, not this one
    assert matched(res, "V1")[1] == "t1-s1"
    off = fuse(t, s, recs(rec("V1", "yelo_bus", 8.2, 1)), FusionParams(merge_ride_pieces=False))
    assert len(off.sections) == 5


def test_ride_merge_stops_where_the_phone_sensed_walking():
    legs = [("CAR", 8, 14, [1, 3], 0.6), ("CAR", 14, 20, [3, 5], 0.6), ("CAR", 20, 25, [5, 6], 0.6)]
    t, s = make(legs)
    s["sensed_mode"] = ["CAR", "BICYCLING", "WALKING"]  # slow traffic, then the walk after alighting
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 8.2, 1)))
    sec = res.sections.set_index("section_id")
    assert list(sec.index) == ["t1-s0", "t1-s2"]
    assert sec.loc["t1-s0", "end_ts"] == ts(20) and sec.loc["t1-s0", "mode"] == "BUS"
    assert sec.loc["t1-s2", "mode"] == "CAR" and sec.loc["t1-s2", "mode_source"] == "classifier"


def crossing(minute: float, place: int) -> pd.DataFrame:
    """One sea-shuttle ticket "F1" validated at ``minute`` at ``P[place]``, landing at P3 after
    its scheduled 5-minute crossing."""
    r = recs(dict(rec("F1", "yelo_boat", minute, place), end_lat=P[3][0], end_lon=P[3][1]))
    r["expected_ride_s"] = 300.0
    return r


def test_shuttle_landing_cuts_the_walk_after_the_crossing():
    # one GPS section: 5 min crossing from P1 to P3, then 20 min walking on to P5
    t, s = make([("WALKING", 0, 25, [1, 3, 4, 5], 0.5)])
    r = crossing(0.2, 1)
    res = fuse(t, s, r)
    sec = res.sections.set_index("section_id")
    assert list(sec.index) == ["t1-s0.1", "t1-s0.2"]
    assert sec.loc["t1-s0.1", "mode"] == "FERRY" and sec.loc["t1-s0.1", "end_ts"] == ts(5.2)
    assert sec.loc["t1-s0.2", "mode"] == "WALKING"
    assert matched(res, "F1")[1] == "t1-s0.1"


def test_two_records_giving_one_section_two_modes_are_reviewed():
    t, s = make([("UNKNOWN", 0, 20, [0, 4], None)])
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 0.1, 0), rec("B1", "yelo_bike", 0.5, 0, t1=19.5, end_place=4)))
    c = res.conflicts
    assert len(c) == 1 and c.loc[0, "kind"] == "records_disagree"
    winner = mode_of(res, "t1-s0")[0]
    assert {winner, c.loc[0, "record_mode"]} == {"BUS", "BIKESHARE"}


def test_shuttle_landing_shortly_before_the_section_end_still_cuts():
    # 5 min crossing P1 -> P3, then only 3 min on foot: the landing is 3 min (not 5) inside
    t, s = make([("WALKING", 0, 8, [1, 3, 4], 0.5)])
    r = crossing(0.0, 1)
    res = fuse(t, s, r)
    sec = res.sections.set_index("section_id")
    assert list(sec.index) == ["t1-s0.1", "t1-s0.2"]
    assert sec.loc["t1-s0.1", "mode"] == "FERRY" and sec.loc["t1-s0.1", "end_ts"] == ts(5)
    assert sec.loc["t1-s0.2", "mode"] == "WALKING"
    # without the landing (no scheduled crossing time) nothing is cut 3 min from the end
    r2 = recs(rec("F1", "yelo_boat", 0.0, 1))
    assert list(fuse(t, s, r2).sections["section_id"]) == ["t1-s0"]
    # a crossing late by 3 min: the section ends at the landing stop, nothing to cut off
    t3, s3 = make([("WALKING", 0, 8, [1, 2, 3], 0.5)])
    res = fuse(t3, s3, r)
    assert list(res.sections["section_id"]) == ["t1-s0"] and mode_of(res, "t1-s0")[0] == "FERRY"


def test_landing_stays_on_the_section_of_its_boarding():
    # a short spurious "car" piece ends 7 min before the landing; the crossing (boarding 2 min
    # into the walk section, late clock) and its landing both lie in the long walk section
    t, s = make([("CAR", 0, 5, [0, 1], 0.5), ("WALKING", 5, 40, [1, 3, 4, 6], 0.5)])
    r = crossing(7.0, 1)
    res = fuse(t, s, r)
    sec = res.sections.set_index("section_id")
    assert sec.loc["t1-s0", "mode_source"] == "classifier"
    ferry = sec[sec["mode"] == "FERRY"]
    assert len(ferry) == 1 and ferry["end_ts"].iloc[0] == ts(12)
    assert matched(res, "F1")[1] == ferry.index[0]


def test_long_wait_at_the_stop_before_boarding_is_cut_off():
    # the section starts 50 m from the stop, 20 min before the boarding: a wait, then the ride
    t, s = make([("WALKING", 0, 40, [1, 1, 3, 6], 0.5)])
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 20.0, 1)))
    sec = res.sections.set_index("section_id")
    assert list(sec.index) == ["t1-s0.1", "t1-s0.2"]
    assert sec.loc["t1-s0.2", "mode"] == "BUS" and sec.loc["t1-s0.2", "start_ts"] == ts(20)
    assert matched(res, "V1")[1] == "t1-s0.2"
    # a boarding 4 min in, near the section start, is the start itself (clock skew): no cut
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 4.0, 1)))
    assert list(res.sections["section_id"]) == ["t1-s0"]


# --------------------------------------------------------------------------- with the phone's points

def points_along(*moves, user="u1", every_s=30.0):
    """The phone's points every ``every_s`` along moves ``(t0 min, t1 min, (lat, lon), (lat, lon))``
    (straight lines at constant speed); no points between moves that do not touch."""
    rows = []
    for a, b, p, q in moves:
        n = max(int(round((b - a) * 60 / every_s)), 1)
        for k in range(n):
            f = k / n
            rows.append(dict(user_id=user, ts=ts(a + f * (b - a)), lat=p[0] + f * (q[0] - p[0]),
                             lon=p[1] + f * (q[1] - p[1])))
    return pd.DataFrame(rows)


MID23 = (46.1575, -1.150)  # between P[2] and P[3], ~280 m north of P[2]


def test_short_bus_ride_merged_with_the_walk_after_it_is_cut_where_the_speed_drops():
    # walk 10 min to the stop, wait 2 min, a 1-minute bus ride (550 m), then 7 min on foot: the
    # segmentation made one walking section of it all
    t, s = make([("WALKING", 0, 20, [0, 1, 2], 0.6)])
    s["geometry"] = wkb(P[0], P[1], P[2], MID23)
    pts = points_along((0, 10, P[0], P[1]), (10, 12, P[1], P[1]), (12, 13, P[1], P[2]), (13, 20.01, P[2], MID23))
    r = recs(rec("V1", "yelo_bus", 12.2, 1))
    without = fuse(t, s, r)
    assert matched(without, "V1")[1] == "t1-s0.2"  # the walk after the ride is taken for the ride
    res = fuse(t, s, r, points=pts)
    sec = res.sections.set_index("section_id")
    assert list(sec.index) == ["t1-s0.1", "t1-s0.2", "t1-s0.3"]
    assert matched(res, "V1") == ("t1", "t1-s0.2")
    ride = sec.loc["t1-s0.2"]
    assert ride["mode"] == "BUS" and abs((ride["start_ts"] - ts(12)).total_seconds()) <= 30
    assert abs((ride["end_ts"] - ts(13)).total_seconds()) <= 30
    assert sec.loc["t1-s0.3", "mode"] == "WALKING" and sec.loc["t1-s0.1", "mode"] == "WALKING"
    schema.validate(res.sections, "sections")


def test_a_stop_during_the_ride_does_not_end_it():
    # the bus stands 1.5 min at a stop half-way: the ride goes on, nothing is cut
    t, s = make([("WALKING", 0, 5, [0, 1], 0.9), ("CAR", 5, 16.5, [1, 3, 5], 0.6), ("WALKING", 16.5, 22, [5, 6], 0.9)])
    pts = points_along((0, 5, P[0], P[1]), (5, 10, P[1], P[3]), (10, 11.5, P[3], P[3]), (11.5, 16.5, P[3], P[5]),
                       (16.5, 22, P[5], P[6]))
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 5.1, 1)), points=pts)
    assert not res.sections["section_id"].str.contains(".", regex=False).any()
    assert matched(res, "V1") == ("t1", "t1-s1") and mode_of(res, "t1-s1")[0] == "BUS"


def test_the_walk_after_a_ride_is_not_merged_into_it():
    # the classifier called the whole ride + walk CAR and the phone's hint too: without the
    # points the walk stays on the ride; with them it is cut off, kept out of the merge, and
    # walking (it is slower than walk_mps)
    t, s = make([("WALKING", 0, 5, [0, 1], 0.9), ("CAR", 5, 15, [1, 3, 4], 0.6)])
    s["sensed_mode"] = ["WALKING", "CAR"]
    s["geometry"] = [wkb(P[0], P[1]), wkb(P[1], P[3], P[4])]
    pts = points_along((0, 5, P[0], P[1]), (5, 9, P[1], P[3]), (9, 15.01, P[3], P[4]))
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 5.1, 1)), points=pts)
    sec = res.sections.set_index("section_id")
    assert matched(res, "V1") == ("t1", "t1-s1.1") and sec.loc["t1-s1.1", "mode"] == "BUS"
    assert sec.loc["t1-s1.2", ["mode", "mode_source", "mode_confidence"]].tolist() == ["WALKING", "rule", 0.6]
    assert abs((sec.loc["t1-s1.1", "end_ts"] - ts(9)).total_seconds()) <= 30


def test_phone_off_after_the_validation_makes_a_record_only_trip():
    # the phone stopped recording after 5 min and came back 20 min later: the segmentation
    # bridged the gap into one walking section (moving on average, so not "still")
    t, s = make([("WALKING", 0, 30, [0, 2, 6], 0.6)])
    pts = points_along((0, 5, P[0], P[1]), (25, 30, P[5], P[6]))
    r = recs(rec("V1", "yelo_bus", 6, 1))
    assert matched(fuse(t, s, r), "V1")[0] == "t1"
    res = fuse(t, s, r, points=pts)
    trip_id, sid = matched(res, "V1")
    assert trip_id == "rec-yelo_bus:V1" and sid == "rec-yelo_bus:V1"
    assert res.trips.set_index("trip_id").loc[trip_id, "origin"] == "record"


def test_second_boarding_inside_one_bus_section_is_a_transfer():
    # two bus rides the segmentation merged (a transfer without walking): cut at the second boarding
    t, s = make([("WALKING", 0, 5, [0, 1], 0.9), ("BUS", 5, 25, [1, 3, 6], 0.6), ("WALKING", 25, 30, [6, 7], 0.9)])
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 5.2, 1), rec("V2", "yelo_bus", 14, 3)))
    assert matched(res, "V1") == ("t1", "t1-s1.1") and matched(res, "V2") == ("t1", "t1-s1.2")
    assert mode_of(res, "t1-s1.1")[0] == mode_of(res, "t1-s1.2")[0] == "BUS"


@pytest.mark.parametrize("skew_s", [-180, -90, 90, 180])
def test_parking_and_rental_clock_skew_up_to_three_minutes(skew_s):
    # the parking operator's and the bike-share's clocks are off by up to 3 min
    sk = skew_s / 60.0
    t1, s1 = make([("CAR", 0, 20, [0, 5], 0.7), ("WALKING", 20, 25, [5, 6], 0.9)], trip="t1")
    t2, s2 = make([("WALKING", 60, 63, [6, 7], 0.9), ("BICYCLING", 63, 80, [7, 11], 0.6),
                   ("WALKING", 80, 84, [11, 10], 0.9)], trip="t2")
    r = recs(rec("S1", "parking", 20 + sk, 5, t1=300 + sk), rec("B1", "yelo_bike", 63 + sk, 7, t1=80 + sk, end_place=11))
    res = fuse(pd.concat([t1, t2]), pd.concat([s1, s2]), r)
    assert matched(res, "S1") == ("t1", "t1-s0") and mode_of(res, "t1-s0")[:2] == ["CAR", "parking"]
    assert matched(res, "B1") == ("t2", "t2-s1") and mode_of(res, "t2-s1")[:2] == ["BIKESHARE", "yelo"]
    assert mode_of(res, "t2-s0")[0] == mode_of(res, "t2-s2")[0] == "WALKING"
    assert res.summary()["sections_split"] == 0


def test_merged_pieces_after_a_section_without_geometry():
    # regression: a section without geometry before a merged ride made shapely reject the
    # (non-dense) line indices
    from pipeline.fusion import _concat_lines

    wkbs = np.array([None, wkb(P[0], P[1]), wkb(P[1], P[2]), wkb(P[3], P[4])], dtype=object)
    out = _concat_lines(wkbs, np.array([0, 1, 1, 3]), np.array([0, 1, 3]))
    assert out[0] is None
    assert shapely.get_num_coordinates(shapely.from_wkb(out[1])) == 4
    assert shapely.get_num_coordinates(shapely.from_wkb(out[2])) == 2


def test_departure_from_the_car_park_is_where_the_drive_starts():
    # 75 s on foot inside the car park to the car, then the drive: the segmentation made one
    # CAR section of both. The exit (gate clock 70 s late) is matched where the phone saw the
    # drive start, not at the section start that lies nearer the car park's reference point
    car = (P[1][0] + 0.00055, P[1][1])  # the car, 60 m from the car park's point
    t, s = make([("CAR", 0, 6, [1, 5], 0.6)])
    s["geometry"] = wkb(P[1], car, P[5])
    pts = points_along((0, 1.25, P[1], car), (1.25, 6, car, P[5]), (6, 6.2, P[5], P[5]))
    r = recs(rec("S1", "parking", -600, 1, t1=1.25 + 70 / 60))  # parked the day before
    res = fuse(t, s, r, points=pts)
    sec = res.sections[res.sections["trip_id"] == "t1"].set_index("section_id")
    assert list(sec.index) == ["t1-s0.1", "t1-s0.2"]
    assert abs((sec.loc["t1-s0.2", "start_ts"] - ts(1.25)).total_seconds()) <= 30
    assert sec.loc["t1-s0.2", "mode_source"] == "parking" and sec.loc["t1-s0.1", "mode_source"] == "classifier"


def _line(route_id, *places):
    """A ``route_stops`` table: one stop of ``route_id`` at each (lat, lon)."""
    return pd.DataFrame({"route_id": route_id, "stop_id": [f"{route_id}-{k}" for k in range(len(places))],
                         "lat": [p[0] for p in places], "lon": [p[1] for p in places]})


def test_route_stops_from_a_gtfs_feed():
    from pipeline.fusion import route_stops

    gtfs = {"trips": pd.DataFrame({"trip_id": ["a", "b", "c"], "route_id": ["L1", "L1", "L2"]}),
            "stop_times": pd.DataFrame({"trip_id": ["a", "a", "b", "c"], "stop_id": ["S1", "S2", "S2", "S3"]}),
            "stops": pd.DataFrame({"stop_id": ["S1", "S2", "S3"], "stop_lat": ["46.15", "46.16", "46.17"],
                                   "stop_lon": ["-1.15", "-1.15", "-1.15"]})}
    rs = route_stops(gtfs).sort_values(["route_id", "stop_id"])
    assert rs[["route_id", "stop_id"]].values.tolist() == [["L1", "S1"], ["L1", "S2"], ["L2", "S3"]]
    assert rs["lat"].tolist() == [46.15, 46.16, 46.17]


def _short_ride():
    t, s = make([("WALKING", 0, 20, [0, 1, 2], 0.6)])
    s["geometry"] = wkb(P[0], P[1], P[2], MID23)
    pts = points_along((0, 10, P[0], P[1]), (10, 12, P[1], P[1]), (12, 13, P[1], P[2]), (13, 20.01, P[2], MID23))
    r = rec("V1", "yelo_bus", 12.2, 1)
    r["route_id"] = "L1"
    return t, s, pts, recs(r)


def test_ride_end_is_placed_at_the_stop_of_the_validated_line():
    t, s, pts, r = _short_ride()
    stop = (P[2][0] + 0.0004, P[2][1])  # the line's stop, 45 m past where the speed dropped
    res = fuse(t, s, r, points=pts, stops=pd.concat([_line("L1", P[1], stop), _line("L2", P[2])]))
    ride = res.sections.set_index("section_id").loc["t1-s0.2"]
    end = shapely.get_coordinates(shapely.from_wkb(ride["geometry"]))[-1]
    assert ride["mode"] == "BUS" and abs((ride["end_ts"] - ts(13)).total_seconds()) <= 30
    assert haversine_m(end[1], end[0], P[2][0], P[2][1]) < 1.0  # cut at the vertex nearest the stop


def test_speed_drop_far_from_every_stop_of_the_line_does_not_end_the_ride():
    # the line stops neither where the phone slowed down nor nearby: a traffic jam, not the
    # alighting -- the ride's start is still cut, its end is not
    t, s, pts, r = _short_ride()
    res = fuse(t, s, r, points=pts, stops=_line("L1", P[1], P[5]))
    assert list(res.sections["section_id"]) == ["t1-s0.1", "t1-s0.2"]
    assert matched(res, "V1") == ("t1", "t1-s0.2")
    # a line the stops table does not know keeps the phone's own cut
    r2 = r.assign(route_id="L9")
    assert len(fuse(t, s, r2, points=pts, stops=_line("L1", P[1], P[5])).sections) == 3


def test_a_bus_crawling_in_traffic_has_not_ended_its_ride():
    # 2 min at bus speed, then 3 min at walking pace in a jam, then bus speed again: one ride
    jam = (P[2][0] + 0.003, P[2][1])  # 330 m in 3 min: 1.8 m/s
    t, s = make([("WALKING", 0, 5, [0, 1], 0.9), ("CAR", 5, 16, [1, 2, 6], 0.6)])
    s["geometry"] = [wkb(P[0], P[1]), wkb(P[1], P[2], jam, P[6])]
    pts = points_along((0, 5, P[0], P[1]), (5, 7, P[1], P[2]), (7, 10, P[2], jam), (10, 16, jam, P[6]),
                       (16, 16.2, P[6], P[6]))
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 5.1, 1)), points=pts)
    assert list(res.sections["section_id"]) == ["t1-s0", "t1-s1"]
    assert matched(res, "V1") == ("t1", "t1-s1") and mode_of(res, "t1-s1")[0] == "BUS"


def test_a_wait_at_the_stop_ends_the_ride_even_when_another_bus_follows():
    # ride 1, then 4 min standing at the stop, then a second bus whose validation is missing:
    # the first ride ends where the tester stood still
    t, s = make([("WALKING", 0, 5, [0, 1], 0.9), ("BUS", 5, 20, [1, 3, 6], 0.6)])
    pts = points_along((0, 5, P[0], P[1]), (5, 8, P[1], P[3]), (8, 12, P[3], P[3]), (12, 20, P[3], P[6]),
                       (20, 20.2, P[6], P[6]))
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 5.1, 1)), points=pts)
    sec = res.sections.set_index("section_id")
    assert matched(res, "V1") == ("t1", "t1-s1.1")
    assert abs((sec.loc["t1-s1.1", "end_ts"] - ts(8)).total_seconds()) <= 30
    assert sec.loc["t1-s1.2", "mode"] == "BUS"  # wait + second ride: faster than a walk, kept


def test_pieces_within_a_ride_seen_in_the_points_are_merged_whatever_their_hint():
    # the segmentation cut a bus ride at a 1-minute stop the phone's hint called walking
    legs = [("WALKING", 0, 5, [0, 1], 0.9), ("CAR", 5, 9, [1, 3], 0.6), ("WALKING", 9, 10, [3, 3], 0.6),
            ("CAR", 10, 14, [3, 5], 0.6), ("WALKING", 14, 20, [5, 6], 0.9)]
    t, s = make(legs)
    s["sensed_mode"] = ["WALKING", "CAR", "WALKING", "CAR", "WALKING"]
    pts = points_along((0, 5, P[0], P[1]), (5, 9, P[1], P[3]), (9, 10, P[3], P[3]), (10, 14, P[3], P[5]),
                       (14, 20.01, P[5], P[6]))
    r = recs(rec("V1", "yelo_bus", 5.1, 1))
    assert len(fuse(t, s, r).sections) == 5  # without the points the stop ends the merge
    res = fuse(t, s, r, points=pts)
    sec = res.sections.set_index("section_id")
    assert list(sec.index) == ["t1-s0", "t1-s1", "t1-s4"]
    assert sec.loc["t1-s1", "mode"] == "BUS" and sec.loc["t1-s1", "end_ts"] == ts(14)


# ----------------------------------------------------- a confident classifier on a section hiding a ride

def test_ferry_inside_a_long_confident_walk_splits_instead_of_conflicting():
    # 60 min the classifier is sure were a walk; a 5-min crossing (scheduled) 30 min in: the
    # record covers a twelfth of the section, so it is a mode change the GPS missed
    t, s = make([("WALKING", 0, 60, [0, 1, 2, 3, 4, 5], 1.0)])
    r = crossing(30.0, 2)
    res = fuse(t, s, r)
    assert res.conflicts.empty
    sec = res.sections.set_index("section_id")
    assert sec["mode"].tolist() == ["WALKING", "FERRY", "WALKING"]
    ferry = sec[sec["mode"] == "FERRY"].iloc[0]
    assert ferry["start_ts"] == ts(30.0) and ferry["end_ts"] == ts(35.0)
    assert matched(res, "F1")[1] == ferry.name
    # the walks keep the classifier's mode and confidence
    assert (sec.loc[sec["mode"] == "WALKING", "mode_source"] == "classifier").all()
    assert (sec.loc[sec["mode"] == "WALKING", "mode_confidence"] == 1.0).all()


def test_bike_rental_over_part_of_a_confident_walk_splits_but_over_most_of_it_conflicts():
    t, s = make([("WALKING", 0, 40, [0, 1, 5, 6], 0.95)])
    res = fuse(t, s, recs(rec("B1", "yelo_bike", 10.0, 1, t1=24.0, end_place=5)))  # 14 of 40 min
    assert res.conflicts.empty
    assert res.sections["mode"].tolist() == ["WALKING", "BIKESHARE", "WALKING"]
    # the rental covers 36 of the 40 minutes: a real contradiction, reviewed, not overridden
    res = fuse(t, s, recs(rec("B1", "yelo_bike", 2.0, 0, t1=38.0, end_place=6)))
    assert res.conflicts["kind"].tolist() == ["mode_conflict"]
    assert mode_of(res, "t1-s0")[:2] == ["WALKING", "classifier"]


def test_a_very_short_section_is_not_confident_enough_to_lock():
    # a 45-s hop the classifier called a walk at 0.99: too little evidence against the validation
    t, s = make([("WALKING", 0, 8, [0, 1], 0.9), ("WALKING", 8, 8.75, [1, 2], 0.99),
                 ("WALKING", 8.75, 15, [2, 3], 0.9)])
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 8.1, 1)))
    assert res.conflicts.empty and matched(res, "V1")[1] == "t1-s1"
    assert mode_of(res, "t1-s1")[:2] == ["BUS", "yelo"]
    # same with a longer section on which the phone recorded only two fixes
    t, s = make([("WALKING", 0, 8, [0, 1], 0.9), ("WALKING", 8, 11, [1, 2], 0.99),
                 ("WALKING", 11, 15, [2, 3], 0.9)])
    pts = points_along((0, 8, P[0], P[1]), (8, 11, P[1], P[2]), (11, 15, P[2], P[3]), every_s=30.0)
    few = pts[(pts["ts"] <= ts(8)) | (pts["ts"] >= ts(11))]  # two fixes: 8 and 11 min
    assert len(fuse(t, s, recs(rec("V1", "yelo_bus", 8.1, 1)), points=pts).conflicts) == 1
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 8.1, 1)), points=few)
    assert res.conflicts.empty and mode_of(res, "t1-s1")[0] == "BUS"


def test_bus_ride_seen_in_the_points_inside_a_confident_walk_is_cut_out():
    # as the short-ride test, but the classifier is sure of the walk: the ride the points show
    # (1 of 20 min) is the record's interval; it splits the section instead of a conflict
    t, s = make([("WALKING", 0, 20, [0, 1, 2], 1.0)])
    s["geometry"] = wkb(P[0], P[1], P[2], MID23)
    pts = points_along((0, 10, P[0], P[1]), (10, 12, P[1], P[1]), (12, 13, P[1], P[2]), (13, 20.01, P[2], MID23))
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 12.2, 1)), points=pts)
    assert res.conflicts.empty
    assert mode_of(res, matched(res, "V1")[1])[:2] == ["BUS", "yelo"]
    # without the points nothing shows the ride is short: the confident walk stays, reviewed
    res = fuse(t, s, recs(rec("V1", "yelo_bus", 12.2, 1)))
    assert res.conflicts["kind"].tolist() == ["mode_conflict"]
