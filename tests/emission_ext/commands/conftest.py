"""Fixtures of the command tests: one small Parquet store shared by the carbon commands."""
from __future__ import annotations

import pytest

from .carbon_store import build_store


@pytest.fixture(scope="session")
def carbon_store_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("carbon_store")
    build_store(d)
    return d
