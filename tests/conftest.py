"""Shared fixtures.

PostgreSQL: tests marked ``postgres`` use ``postgres_url``. When the server is unreachable they
skip, unless ``EMISSION_EXT_REQUIRE_POSTGRES`` is set (CI sets it), in which case they fail.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent
TEST_DATA = TESTS_DIR / "data"


@pytest.fixture(scope="session")
def test_data() -> Path:
    return TEST_DATA


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("EMISSION_EXT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import sqlalchemy as sa

        eng = sa.create_engine(url)
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        eng.dispose()
    except Exception as exc:  # noqa: BLE001 - any connection failure
        if os.environ.get("EMISSION_EXT_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL required (EMISSION_EXT_REQUIRE_POSTGRES) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    return url
