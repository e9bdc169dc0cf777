"""Shared small synthetic worlds (generated once per test session; a few seconds each)."""
from __future__ import annotations

import pytest

from emission_ext.synth import generate_world
from emission_ext.synth.population import PopulationParams


@pytest.fixture(scope="session")
def world():
    """10 testers x 3 days (Fri-Sun), faults on, most testers with a Yélo card, car-share
    account or parking subscription so that every record kind occurs."""
    return generate_world(testers=10, days=3, seed=5, start="2026-02-06", population=PopulationParams(
        p_yelo_card=0.9, p_carshare=0.9, p_parking_sub=1.0, p_car=0.6))


@pytest.fixture(scope="session")
def week():
    """A week of 20 testers with the default behaviour: for the statistics."""
    return generate_world(testers=20, days=7, seed=11)


@pytest.fixture(scope="session")
def clean_world():
    """Faults off, sorted points."""
    return generate_world(testers=4, days=2, seed=2, faults=False)
