"""``emission-ext footprint``: the budget printed from a real Parquet store."""
from __future__ import annotations

import json

import pytest

from emission_ext.cli import main


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def ok(capsys, *args):
    main(list(args))
    return capsys.readouterr().out


def test_text_budget(carbon_store_dir, capsys):
    out = ok(capsys, "--data-dir", str(carbon_store_dir), "footprint", "--user", "010", "--period", "week")
    assert "Footprint of tester 010, per week (Europe/Paris)" in out
    assert "week of 2026-03-02 (5 day(s) observed)" in out
    assert "CAR" in out and "French average" in out and "SDES" in out


def test_json_budget_matches_sections(carbon_store_dir, capsys):
    out = json.loads(ok(capsys, "--data-dir", str(carbon_store_dir), "footprint", "--user", "020", "--period", "month",
                        "--format", "json"))
    s = out["summary"][0]
    assert out["period"] == "month" and s["period_start"] == "2026-03-01"
    modes = {r["mode"]: r for r in out["by_mode"]}
    assert set(modes) == {"BUS", "BICYCLING", "UNKNOWN"}
    assert modes["BUS"]["cost_eur"] == pytest.approx(30.0)  # the monthly pass, amortised over 5 rides
    assert modes["UNKNOWN"]["co2e_kg"] == 0 and modes["UNKNOWN"]["co2e_kg_high"] > 0
    assert out["factor_version"].startswith("2026.11-1+")


def test_construction_option_changes_the_figures(carbon_store_dir, capsys):
    args = ["--data-dir", str(carbon_store_dir), "footprint", "--user", "010", "--format", "json"]
    a = json.loads(ok(capsys, *args))["summary"][0]["co2e_kg"]
    b = json.loads(ok(capsys, *args, "--with-construction"))["summary"][0]["co2e_kg"]
    assert b > a > 0


def test_unknown_user_is_a_one_line_error(carbon_store_dir, capsys):
    code, out, err = run_cli(capsys, "--data-dir", str(carbon_store_dir), "footprint", "--user", "999")
    assert code == 2 and "unknown user '999'" in err and "Traceback" not in err


def test_bad_tariff_file_is_a_one_line_error(carbon_store_dir, tmp_path, capsys):
    bad = tmp_path / "tariffs.csv"
    bad.write_text("tariff_id,value,unit,source,date\nbus_ticket_1h,abc,EUR,x,2026-01-01\n")
    code, _, err = run_cli(capsys, "--data-dir", str(carbon_store_dir), "footprint", "--user", "010", "--tariffs", str(bad))
    assert code == 2 and "Error:" in err and len(err.strip().splitlines()) == 1


def test_per_section_table_to_parquet(carbon_store_dir, tmp_path, capsys):
    import pandas as pd

    from emission_ext import schema

    out = tmp_path / "fp.parquet"
    main(["--data-dir", str(carbon_store_dir), "footprint", "--user", "010", "--sections", "--out", str(out)])
    df = pd.read_parquet(out)
    assert len(df) == 5 and (df["user_id"] == "010").all()
    schema.validate(schema.coerce(df, "footprint"), "footprint")
    main(["--data-dir", str(carbon_store_dir), "footprint", "--user", "010", "--sections"])
    assert capsys.readouterr().out.splitlines()[0].startswith("user_id,trip_id,section_id,mode")
