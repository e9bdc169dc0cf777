"""``emission-ext advice``: suggestions from a real Parquet store and the real Yélo GTFS."""
from __future__ import annotations

import json

from emission_ext.cli import main


def test_advice_for_car_commuter(carbon_store_dir, capsys):
    main(["--data-dir", str(carbon_store_dir), "advice", "--user", "010", "--format", "json"])
    adv = json.loads(capsys.readouterr().out)
    assert adv and adv[0]["rank"] == 1 and adv[0]["n_trips"] == 5
    assert adv[0]["kind"] in ("bus", "bikeshare")
    assert adv[0]["co2e_kg_saved_per_month"] > 0


def test_no_advice_for_bus_rider(carbon_store_dir, capsys):
    main(["--data-dir", str(carbon_store_dir), "advice", "--user", "020"])
    assert "No suggestion for tester 020: no car trip" in capsys.readouterr().out
