import numpy as np
import pandas as pd

from emission_ext import schema
from pipeline.sections import SectionParams, segment_sections
from pipeline.trips import segment_trips
from tests.pipeline._frames import T0, day


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


def test_no_trips_gives_empty_sections_and_null_labels():
    pts, _ = day(stays=(1800,), moves=())
    sections, labelled = segment_sections(pts, schema.empty("trips"))
    assert len(sections) == 0 and labelled["trip_id"].isna().all() and len(labelled) == len(pts)
