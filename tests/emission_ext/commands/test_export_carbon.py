"""``emission-ext export-carbon``: consent file, threshold, JSON output."""
from __future__ import annotations

import json

import pytest

from emission_ext.cli import main


def test_export_with_consent_and_threshold(carbon_store_dir, tmp_path, capsys):
    consent = tmp_path / "consent.txt"
    consent.write_text("# consenting testers\n010\n")
    out = tmp_path / "out.json"
    main(["--data-dir", str(carbon_store_dir), "export-carbon", "--month", "2026-03", "--consent-file", str(consent),
          "--threshold", "2", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert [r["user_id"] for r in payload["records"]] == ["010"]
    assert payload["records"][0]["record"]["measureName"] == "co2-emissions-monthly"
    assert payload["records"][0]["record"]["startDate"] == "2026-03-01"
    assert payload["group"] is None and "withheld" in capsys.readouterr().err
    consent.write_text('["010", "020"]')
    main(["--data-dir", str(carbon_store_dir), "export-carbon", "--month", "2026-03", "--consent-file", str(consent),
          "--threshold", "2"])
    payload = json.loads(capsys.readouterr().out)
    assert payload["contributors"] == 2
    assert payload["group"]["value"] == pytest.approx(sum(r["record"]["value"] for r in payload["records"]), abs=2e-3)


@pytest.mark.parametrize("content,month", [("010 020\n", "2026-03"), ("010\n", "03-2026")])
def test_bad_input_is_a_one_line_error(carbon_store_dir, tmp_path, capsys, content, month):
    consent = tmp_path / "c.txt"
    consent.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main(["--data-dir", str(carbon_store_dir), "export-carbon", "--month", month, "--consent-file", str(consent)])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
