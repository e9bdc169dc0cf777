"""The core commands: import, run, trips, demo (click's CliRunner, plus one real subprocess)."""
from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from emission_ext.cli import cli, main
from emission_ext.errors import EmissionExtError
from emission_ext.reference import emission_real_days
from emission_ext.stores.parquet import ParquetStore

from . import standin_stages as S

STANDIN = f"{S.SEGMENT},{S.COUNT}"
DAY = "shankari_2016-08-10"


def invoke(args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, **kw)


def run_main(args, capsys):
    """Through the console-script entry point (which maps user errors to exit code 2)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def data(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def csv_file(tmp_path) -> Path:
    rows = ["user_id,ts,lat,lon,accuracy"]
    for u in ("010", "011"):
        for i in range(60):
            gap = 1200 if i >= 30 else 0
            rows.append(f"{u},{1_700_000_000 + i * 10 + gap},{46.15 + i * 1e-4},{-1.15},8")
    p = tmp_path / "pts.csv"
    p.write_text("\n".join(rows) + "\n")
    return p


def _day() -> Path:
    return [p for p in emission_real_days() if p.name.startswith(DAY)][0]


@pytest.mark.parametrize("args", [[], ["import"], ["import", "emission"], ["import", "mongo"],
                                  ["run"], ["trips"], ["demo"]])
def test_help(args):
    res = invoke([*args, "--help"])
    assert res.exit_code == 0 and "Usage:" in res.output


def test_import_real_emission_days_twice_adds_nothing_the_second_time(data):
    days = emission_real_days()
    first = invoke(["--data-dir", data, "import", "emission", *days])
    assert first.exit_code == 0, first.output
    n_points = len(ParquetStore(data).read("points"))
    assert n_points > 1000
    assert f"points: {n_points} added (0 already present)" in first.output
    second = invoke(["--data-dir", data, "import", "emission", *days])
    assert second.exit_code == 0
    assert f"points: 0 added ({n_points} already present)" in second.output
    for table in ("motion", "transitions"):
        line = [ln for ln in second.output.splitlines() if ln.startswith(f"{table}:")][0]
        assert line.startswith(f"{table}: 0 added (")
    assert len(ParquetStore(data).read("points")) == n_points


def test_import_csv_with_user_id_and_skip_bad(data, csv_file, tmp_path):
    res = invoke(["--data-dir", data, "import", "csv", csv_file])
    assert res.exit_code == 0 and "points: 120 added (0 already present)" in res.output
    assert ParquetStore(data).users() == ["010", "011"]
    res = invoke(["--data-dir", data, "import", "csv", "--user-id", "042", csv_file])
    # both users' rows become one user's: the second copy of each fix is a duplicate
    assert "points: 60 added (0 already present)" in res.output
    assert "60 duplicate rows/entries within the input ignored" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,lat,lon\n7,1700000000,46.1,-1.1\n7,1700000010,not-a-lat,-1.1\n")
    res = invoke(["--data-dir", data, "import", "csv", "--skip-bad", bad])
    assert res.exit_code == 0 and "points: 1 added" in res.output
    assert "skipped 1 bad rows/entries" in res.output and "line 3" in res.output


def test_user_mistakes_exit_2_with_one_line(data, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,lat,lon\n7,1700000000,46.1,-1.1\n7,1700000010,not-a-lat,-1.1\n")
    code, out, err = run_main(["--data-dir", data, "import", "csv", bad], capsys)
    assert code == 2 and err.startswith("Error: ") and len(err.strip().splitlines()) == 1
    assert "line 3" in err
    assert ParquetStore(data).users() == []  # nothing written
    code, _, err = run_main(["--data-dir", data, "import", "gpx", tmp_path / "missing.gpx"], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = run_main(["--data-dir", data, "run", "--users", "nobody"], capsys)
    assert code == 2 and "unknown user(s): nobody" in err
    code, _, err = run_main(["--data-dir", data, "run", "--executor", "dask"], capsys)
    assert code == 2 and "scheduler" in err
    code, _, err = run_main(["--data-dir", data, "trips", "--user", "nobody"], capsys)
    assert code == 2 and "unknown user 'nobody'" in err
    code, _, err = run_main(["import", "mongo", "--url", "mongodb://127.0.0.1:1/", "--timeout",
                             "0.2"], capsys)
    assert code == 2 and err.startswith("Error: cannot reach MongoDB") and "Traceback" not in err
    code, _, err = run_main(["import", "mongo", "--url", "http://x"], capsys)
    assert code == 2 and "mongodb://" in err
    code, _, err = run_main(["--data-dir", data, "run", "--store", "postgresql://x"], capsys)
    assert code == 2 and "unsupported store URL" in err


def test_run_prints_summary_and_then_zero_users(data, csv_file):
    invoke(["--data-dir", data, "import", "csv", csv_file])
    res = invoke(["--data-dir", data, "run", "--workers", "1", "--stages", STANDIN])
    assert res.exit_code == 0, res.output
    assert "2 users, 2 users to process" in res.output
    assert f"stage runs: {S.SEGMENT} x2, {S.COUNT} x2" in res.output
    assert "rows written: trips 4, trip_counts 2" in res.output
    res = invoke(["--data-dir", data, "run", "--workers", "1", "--stages", STANDIN])
    assert res.exit_code == 0 and "2 users, 0 users to process" in res.output
    res = invoke(["--data-dir", data, "run", "--users", "010", "--force", "--stages", STANDIN])
    assert "1 users, 1 users to process" in res.output


def test_run_reports_failures_with_exit_1(data, tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("user_id,ts,lat,lon\nbad7,1700000000,46.1,-1.1\nok,1700000000,46.1,-1.1\n")
    invoke(["--data-dir", data, "import", "csv", p])
    res = invoke(["--data-dir", data, "run", "--workers", "1", "--stages", S.FAIL])
    assert res.exit_code == 1
    assert "FAILED user bad7: " in res.output and "1 failed" in res.output


def test_trips_formats_and_dates(data, csv_file, tmp_path):
    invoke(["--data-dir", data, "import", "csv", csv_file])
    invoke(["--data-dir", data, "run", "--workers", "1", "--stages", STANDIN])
    res = invoke(["--data-dir", data, "trips", "--user", "010"])
    assert res.exit_code == 0
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("user_id,trip_id,start_ts") and len(lines) == 3
    first = next(csv.reader([lines[1]]))
    assert first[:3] == ["010", "010-t0", "1700000000"]  # unix seconds, leading zero kept
    res = invoke(["--data-dir", data, "trips", "--user", "010", "--format", "geojson"])
    gj = json.loads(res.output)
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == 2
    out = tmp_path / "t.parquet"
    res = invoke(["--data-dir", data, "trips", "--user", "011", "--out", out])
    assert res.exit_code == 0 and len(pd.read_parquet(out)) == 2
    res = CliRunner().invoke(cli, ["--data-dir", str(data), "trips", "--user", "010",
                                   "--format", "parquet"])
    assert isinstance(res.exception, EmissionExtError) and "needs --out" in str(res.exception)
    # 1700000000 is 2023-11-14 23:13:20 in Paris: --to that day keeps it, --from the next drops it
    res = invoke(["--data-dir", data, "trips", "--user", "010", "--to", "2023-11-14"])
    assert len(res.output.strip().splitlines()) == 3
    res = invoke(["--data-dir", data, "trips", "--user", "010", "--from", "2023-11-15"])
    assert len(res.output.strip().splitlines()) == 1  # header only
    res = invoke(["--data-dir", data, "trips", "--user", "010",
                  "--from", "2023-11-14T22:13:30+00:00"])
    assert len(res.output.strip().splitlines()) == 2
    res = CliRunner().invoke(cli, ["--data-dir", str(data), "trips", "--user", "010",
                                   "--from", "yesterday-ish"])
    assert isinstance(res.exception, EmissionExtError) and "--from" in str(res.exception)


def test_import_mongo_into_the_embedded_store(data, monkeypatch):
    mongomock = pytest.importorskip("mongomock")
    import pymongo
    from bson.binary import Binary, UuidRepresentation

    client = mongomock.MongoClient(uuidRepresentation="pythonLegacy")

    def to_db(v):
        if isinstance(v, dict):
            if "$uuid" in v:
                return Binary.from_uuid(uuid.UUID(hex=v["$uuid"]), UuidRepresentation.PYTHON_LEGACY)
            return {k: to_db(x) for k, x in v.items() if k != "_id"}
        return [to_db(x) for x in v] if isinstance(v, list) else v

    client["Stage_database"]["Stage_timeseries"].insert_many(
        [to_db(e) for e in json.load(gzip.open(_day()))])
    monkeypatch.setattr(pymongo, "MongoClient", lambda *a, **k: client)  # stand-in server
    monkeypatch.setattr(client, "close", lambda: None)
    res = invoke(["--data-dir", data, "import", "mongo", "--url", "mongodb://standin/"])
    assert res.exit_code == 0, res.output
    n = len(ParquetStore(data).read("points"))
    assert n > 100 and f"points: {n} added (0 already present)" in res.output
    res = invoke(["--data-dir", data, "import", "mongo", "--url", "mongodb://standin/"])
    assert "points: 0 added (" in res.output


def test_demo_twice_on_the_real_days(data):
    res = invoke(["--data-dir", data, "demo", "--real-days", "--workers", "1"])
    assert res.exit_code == 0, res.output
    n_days = len(emission_real_days())
    assert f"from {n_days} files" in res.output and "points: 0 added" not in res.output
    st = ParquetStore(data)
    users, points = len(st.users("points")), len(st.read("points"))
    summary = [ln for ln in res.output.splitlines() if ln.startswith("summary:")][0]
    assert f"users {users}, points {points}, " in summary
    assert f"trips {len(st.read('trips'))}" in summary and len(st.read("trips")) > 0
    again = invoke(["--data-dir", data, "demo", "--real-days", "--workers", "1"])
    assert again.exit_code == 0
    assert f"points: 0 added ({points} already present)" in again.output
    assert f"{users} users, 0 users to process" in again.output


def test_demo_on_a_synthetic_world_scores_itself_and_writes_a_report(data):
    res = invoke(["--data-dir", data, "demo", "--testers", "3", "--days", "1", "--seed", "3",
                  "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "synthetic world: 3 testers x 1 days (seed 3)" in res.output
    assert "trips vs truth: F1 " in res.output and "section modes vs truth" in res.output
    report = Path(data) / "demo-report.html"
    text = report.read_text(encoding="utf-8")
    assert "Scored against the synthetic ground truth" in text and "<table" in text
    again = invoke(["--data-dir", data, "demo", "--testers", "3", "--days", "1", "--seed", "3",
                    "--workers", "1"])
    assert again.exit_code == 0 and "3 users, 0 users to process" in again.output


def test_console_script_exit_code_2_on_a_missing_file(tmp_path):
    exe = Path(sys.executable).with_name("emission-ext")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "emission_ext.cli"]
    proc = subprocess.run([*cmd, "--data-dir", str(tmp_path / "d"), "import", "emission",
                           str(tmp_path / "nope.json")], capture_output=True, text=True,
                          env={**os.environ, "EMISSION_EXT_STORE": ""}, timeout=120)
    assert proc.returncode == 2
    assert "nope.json" in proc.stderr and "Traceback" not in proc.stderr
