"""`emission-ext model train / evaluate` on small labelled tables, and their errors."""
from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from emission_ext.cli import cli, main
from emission_ext.models import read_model
from tests.pipeline.test_modes import toy_features


def _table(path, n, seed):
    X, y = toy_features(n, seed)
    X["label"] = y
    X["group"] = [f"g{i % 4}" for i in range(len(X))]
    X["purity"] = 1.0
    X.to_csv(path, index=False)
    return path


def test_train_then_evaluate(tmp_path):
    train = _table(tmp_path / "train.csv", 40, 21)
    test = _table(tmp_path / "test.csv", 20, 22)
    out = tmp_path / "m.skops"
    r = CliRunner().invoke(cli, ["model", "train", "--data", str(train), "--out", str(out), "--max-iter", "30"])
    assert r.exit_code == 0, r.output
    model, info = read_model(out)
    assert info["rows"] == 240 and info["labels"]["FERRY"] == 40
    r = CliRunner().invoke(cli, ["model", "evaluate", "--model", str(out), "--data", str(test),
                                 "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    acc = float(re.search(r"m: accuracy ([0-9.]+)", r.output).group(1))
    assert acc > 0.8
    for word in ("speed_bins", "emission_rules", "precision", "confusion matrix", "FERRY"):
        assert word in r.output
    assert (tmp_path / "e.json").exists()


def test_no_transit_feature_set(tmp_path):
    train = _table(tmp_path / "train.csv", 20, 23)
    out = tmp_path / "nt.skops"
    r = CliRunner().invoke(cli, ["model", "train", "--data", str(train), "--out", str(out),
                                 "--features", "no-transit", "--max-iter", "10"])
    assert r.exit_code == 0, r.output
    model, _ = read_model(out)
    assert "route_share" not in model.features and "speed_p50" in model.features


def test_missing_dataset_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["model", "train", "--data", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "m.skops")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.parquet" in err[0]


def test_bad_model_file_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.skops"
    bad.write_bytes(b"junk")
    test = _table(tmp_path / "t.csv", 5, 24)
    with pytest.raises(SystemExit) as exc:
        main(["model", "evaluate", "--model", str(bad), "--data", str(test)])
    assert exc.value.code == 2


def test_warm_builds_both_caches_once(tmp_path, monkeypatch):
    from emission_ext import models
    from emission_ext.models import apply

    monkeypatch.setenv("EMISSION_EXT_CACHE", str(tmp_path))
    models._cached.cache_clear()
    apply.transit_index.cache_clear()
    try:
        r = CliRunner().invoke(cli, ["model", "warm"])
        assert r.exit_code == 0, r.output
        names = sorted(p.name for p in tmp_path.iterdir())
        assert any(n.startswith("model-") and n.endswith(".npz") for n in names), names
        assert any(n.startswith("transit-") and (tmp_path / n).is_dir() for n in names), names
    finally:
        models._cached.cache_clear()
        apply.transit_index.cache_clear()


def test_dataset_ferry_outing_tags_the_groups(tmp_path):
    """`model dataset --ferry-outing P` builds worlds with that probability; their groups say so."""
    import pandas as pd

    out = tmp_path / "f.parquet"
    r = CliRunner().invoke(cli, ["model", "dataset", "--data", "synth", "--seeds", "3", "--testers", "2",
                                 "--days", "1", "--ferry-outing", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert len(df) and df["group"].str.endswith(":ferry1").all()
    r = CliRunner().invoke(cli, ["model", "dataset", "--data", "synth", "--ferry-outing", "2",
                                 "--out", str(out)])
    assert r.exit_code == 2  # outside 0-1
