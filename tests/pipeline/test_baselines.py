"""Baselines: trackintel-style speed bins and e-mission-style rules on hand-made features."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.baselines import SpeedBinParams, emission_rules, speed_bins
from pipeline.features import FEATURES


def feats(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    f = pd.DataFrame(np.nan, index=range(n), columns=list(FEATURES))
    for k, v in cols.items():
        f[k] = v
    return f


def test_speed_bins_thresholds():
    kmh = np.array([5.0, 14.99, 15.0, 60.0, 99.9, 100.0, np.nan])
    got = speed_bins(feats(speed_mean=kmh / 3.6))
    assert list(got) == ["WALKING", "WALKING", "CAR", "CAR", "CAR", "TRAIN", "UNKNOWN"]
    assert list(speed_bins(feats(speed_mean=[20 / 3.6]), SpeedBinParams(slow_kmh=25.0))) == ["WALKING"]


def test_emission_rules_by_speed_and_stops():
    f = feats(speed_p50=[1.2, 4.0, 12.0, 12.0, 25.0, 12.0],
              endpoints_at_stops=[0, 0, 0, 2, 2, 1],
              endpoints_at_rail=[0, 0, 0, 0, 2, 0])
    assert list(emission_rules(f)) == ["WALKING", "BICYCLING", "CAR", "BUS", "TRAIN", "CAR"]


def test_emission_rules_prefer_motion_activity():
    f = feats(speed_p50=[12.0, 1.0, 3.0], motion_foot=[0.8, 0.0, 0.2], motion_bike=[0.1, 0.0, 0.1],
              motion_vehicle=[0.1, 1.0, 0.0], endpoints_at_stops=[0, 2, 0])
    assert list(emission_rules(f)) == ["WALKING", "BUS", "WALKING"]
    # no reading at all (all shares zero) falls back on speed
    f2 = feats(speed_p50=[5.0], motion_foot=[0.0], motion_bike=[0.0], motion_vehicle=[0.0])
    assert list(emission_rules(f2)) == ["BICYCLING"]
