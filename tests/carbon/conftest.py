"""Shared fixtures of the carbon tests: the shipped data files and a tiny section builder."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from carbon.factors import FACTORS_META_PATH, FACTORS_PATH, load_factors
from carbon.tariffs import BAREME_PATH, TARIFFS_META_PATH, TARIFFS_PATH, load_tariffs

T0 = pd.Timestamp("2026-03-02T07:00:00Z")  # Monday 08:00 in Paris


@pytest.fixture(scope="session")
def factors():
    return load_factors()


@pytest.fixture(scope="session")
def tariffs():
    return load_tariffs()


@pytest.fixture
def data_copy(tmp_path):
    """A writable copy of the shipped factor and tariff files."""
    for p in (FACTORS_PATH, FACTORS_META_PATH, TARIFFS_PATH, BAREME_PATH, TARIFFS_META_PATH):
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


def make_sections(rows, user="010"):
    """Sections from ``(mode, distance_m, duration_s[, start offset minutes[, trip_id]])`` rows."""
    out = []
    for i, r in enumerate(rows):
        mode, dist, dur = r[0], r[1], r[2]
        off = r[3] if len(r) > 3 else 30 * i
        trip = r[4] if len(r) > 4 else f"t{i}"
        start = T0 + pd.Timedelta(minutes=off)
        out.append(dict(user_id=user, trip_id=trip, section_id=f"{user}-s{i}", start_ts=start,
                        end_ts=start + pd.Timedelta(seconds=dur), distance_m=float(dist),
                        duration_s=float(dur), mode=mode))
    return pd.DataFrame(out)


def a_tester(user="010", **kw):
    base = dict(user_id=user, tz="Europe/Paris", car_fuel=None, car_size=None, car_fiscal_hp=None,
                yelo_pass="none", parking_subscription=None)
    base.update(kw)
    return pd.DataFrame([base])
