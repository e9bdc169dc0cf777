"""``emission-ext synth`` end to end on a tiny world."""
from __future__ import annotations

import pytest

from emission_ext.cli import main


def test_synth_command_writes_a_world_and_prints_statistics(tmp_path, capsys):
    out = tmp_path / "w"
    main(["synth", "--testers", "3", "--days", "1", "--seed", "1", "--out", str(out), "--platform", "ios"])
    txt = capsys.readouterr().out
    assert "mode shares" in txt and "trips_per_tester_day" in txt and "ios_step_median_m" in txt
    assert (out / "operator" / "card_map.csv").exists()
    assert len(list((out / "emission").glob("*.json.gz"))) == 3


def test_synth_command_bad_input_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["synth", "--testers", "2", "--days", "1", "--out", str(tmp_path / "x"), "--start", "03/02/2026"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--start" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as e:
        main(["synth", "--testers", "0", "--out", str(tmp_path / "x")])
    assert e.value.code == 2
