"""Stage ``footprint`` under the real runner and Parquet store."""
from __future__ import annotations

import pandas as pd
import pytest

from carbon.factors import load_factors
from carbon.tariffs import load_tariffs
from emission_ext.runner import process_user
from emission_ext.stages import StageContext, load_stage
from emission_ext.stages import footprint as stage

from ..commands.carbon_store import build_store


def test_stage_is_available_and_declares_its_tables():
    info = load_stage("footprint")
    assert info.available, info.reason
    assert stage.INPUTS == ("sections", "records", "testers") and stage.OUTPUTS == ("footprint",)
    assert load_factors().version in stage.VERSION and load_tariffs().version in stage.VERSION


def test_runner_writes_the_footprint_once(tmp_path):
    st = build_store(tmp_path)
    res = process_user(st, "010", ("footprint",))
    assert res.error is None and res.ran == ["footprint"]
    fp = st.read("footprint", ["010"])
    secs = st.read("sections", ["010"])
    assert len(fp) == len(secs) == 5
    assert (fp["factor_version"] == load_factors().version).all()
    assert (fp["tariff_version"] == load_tariffs().version).all()
    assert fp["co2e_kg"].gt(0).all() and fp["cost_eur"].gt(0).all()
    again = process_user(st, "010", ("footprint",))
    assert again.ran == [] and again.skipped == ["footprint"]


def test_stage_parameters_and_missing_profile():
    sec = pd.DataFrame([dict(user_id="7", trip_id="t", section_id="s", start_ts=pd.Timestamp("2026-03-02T08:00Z"),
                             end_ts=pd.Timestamp("2026-03-02T08:10Z"), distance_m=2000.0, duration_s=600.0,
                             mode="CAR")])
    empty = pd.DataFrame()
    ctx = StageContext(user_id="7", params={"footprint": {"include_construction": True}})
    out = stage.run({"sections": sec, "records": empty, "testers": empty}, ctx)["footprint"]
    f = load_factors().table.loc["car_generic"]
    assert out["co2e_kg"].iloc[0] == pytest.approx(2 * (f.usage_kg_per_km + f.construction_kg_per_km), abs=1e-12)
    assert pd.isna(out["cost_eur"].iloc[0])  # no car profile: cost unknown, not invented
