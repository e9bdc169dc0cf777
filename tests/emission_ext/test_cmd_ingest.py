"""``emission-ext ingest``: archive, quarantine, --strict, idempotent re-ingest, card map in
the store, and the ``fuse`` stage over the stored records."""
from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from emission_ext.cli import main
from emission_ext.stores import open_store
from tests.yelo_ingest.helpers import CARD_MAP, bikeshare_csv, carshare_csv, ids, parking_csv, validations_csv


def cli(capsys, *args):
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def files(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    i = ids()
    bad = validations_csv(sep=";", dec=",") + (
        f"V5;C999;2026-03-02T08:00:00Z;{i['bus_stop']};;;\n"     # unknown tester
        f"V6;C001;2026-02-31T25:61:00;{i['bus_stop']};;;\n")     # malformed date
    (d / "card_map.csv").write_text(CARD_MAP)
    (d / "yelo_validations.csv").write_bytes(bad.encode("latin-1"))
    (d / "yelo_bikeshare.csv").write_bytes(b"\xef\xbb\xbf" + bikeshare_csv().encode())
    (d / "yelo_carshare.csv").write_text(carshare_csv())
    (d / "parking_sessions.csv").write_text(parking_csv())
    return d


def test_ingest_archive_quarantine_and_reingest(tmp_path, files, capsys):
    data = tmp_path / "data"
    yelo = [str(files / n) for n in ("yelo_validations.csv", "card_map.csv", "yelo_bikeshare.csv", "yelo_carshare.csv")]
    code, out, err = cli(capsys, "--data-dir", str(data), "ingest", "yelo", *yelo)
    assert code == 0, err
    assert "total: 7 records added, 0 already present, 2 rows quarantined, 0 files rejected" in out
    assert "line 6, field 'card_id': unknown yelo account" in err
    assert "line 7, field 'validated_at': malformed timestamp" in err
    # archived as received, with the checksum
    raw = (files / "yelo_validations.csv").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    archived = data / "operator" / "archive" / f"{digest[:16]}_yelo_validations.csv"
    assert archived.read_bytes() == raw
    manifest = [json.loads(x) for x in (data / "operator" / "archive" / "manifest.jsonl").read_text().splitlines()]
    assert {m["sha256"] for m in manifest} >= {digest}
    # quarantine: same columns + reason, re-ingestable once fixed
    q = pd.read_csv(data / "operator" / "quarantine" / "yelo_validations.quarantine.csv", dtype=str)
    assert list(q.columns)[-1] == "reject_reason" and list(q["validation_id"]) == ["V5", "V6"]
    assert q.loc[0, "reject_reason"].startswith("line 6: card_id")
    # same files again, plus parking: nothing twice
    code, out, err = cli(capsys, "--data-dir", str(data), "ingest", "yelo", *yelo)
    assert code == 0 and "total: 0 records added, 7 already present" in out
    code, out, err = cli(capsys, "--data-dir", str(data), "ingest", "parking", str(files / "parking_sessions.csv"))
    assert code == 0 and "total: 2 records added" in out
    st = open_store(str(data))
    rec = st.read("records")
    assert len(rec) == 9 and not rec.duplicated(["source", "record_id"]).any()
    assert sorted(rec["user_id"].unique()) == ["010", "011"]
    # fix the quarantined rows and re-ingest the quarantine file
    q.loc[0, "card_id"] = "C001"
    q.loc[1, "validated_at"] = "2026-03-02T09:00:00+01:00"
    fixed = tmp_path / "fixed.csv"
    q.to_csv(fixed, index=False)
    code, out, err = cli(capsys, "--data-dir", str(data), "ingest", "yelo", str(fixed))
    assert code == 0 and "total: 2 records added" in out, out + err
    assert len(open_store(str(data)).read("records")) == 11


def test_strict_rejects_the_whole_file(tmp_path, files, capsys):
    data = tmp_path / "data"
    code, out, err = cli(capsys, "--data-dir", str(data), "ingest", "yelo", "--strict",
                         str(files / "card_map.csv"), str(files / "yelo_validations.csv"))
    assert code == 2
    assert "REJECTED (--strict)" in out and "Error: yelo_validations.csv: not loaded" in err
    assert len(open_store(str(data)).read("records")) == 0
    assert "Traceback" not in err


def test_empty_and_unknown_files(tmp_path, files, capsys):
    data = tmp_path / "data"
    empty = tmp_path / "yelo_validations_empty.csv"
    empty.write_bytes(b"")
    code, out, err = cli(capsys, "--data-dir", str(data), "ingest", "yelo", str(files / "card_map.csv"), str(empty))
    assert code == 0 and "empty file" in err
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, out, err = cli(capsys, "--data-dir", str(data), "ingest", "yelo", str(other), str(files / "yelo_carshare.csv"))
    assert code == 2 and "cannot tell which operator file" in err and "Traceback" not in err
    assert "total: 1 records added" in out  # the other file of the call is still loaded


def test_fuse_stage_on_stored_records(tmp_path, files, capsys):
    from emission_ext.stages import StageContext, load_stage

    data = tmp_path / "data"
    cli(capsys, "--data-dir", str(data), "ingest", "parking", str(files / "card_map.csv"),
        str(files / "parking_sessions.csv"))
    st = open_store(str(data))
    cp = st.read("records").iloc[0]
    t0 = cp["start_ts"] - pd.Timedelta(minutes=20)
    trips = pd.DataFrame([dict(user_id="010", trip_id="t1", start_ts=t0, end_ts=cp["start_ts"], start_lat=46.2,
                               start_lon=-1.1, end_lat=cp["start_lat"], end_lon=cp["start_lon"], distance_m=5000.0,
                               duration_s=1200.0)])
    secs = pd.DataFrame([dict(user_id="010", trip_id="t1", section_id="s1", start_ts=t0, end_ts=cp["start_ts"],
                              distance_m=5000.0, duration_s=1200.0, mode="UNKNOWN")])
    stage = load_stage("fuse")
    assert stage.available, stage.reason
    out = stage.module.run({"trips": trips, "sections": secs, "records": st.read("records", ["010"])},
                           StageContext(user_id="010"))
    assert set(out) == set(stage.module.OUTPUTS)
    assert out["sections"].loc[0, "mode"] == "CAR" and out["sections"].loc[0, "mode_source"] == "parking"
    assert out["records"].set_index("record_id").loc[cp["record_id"], "section_id"] == "s1"
    # the second session (no GPS at all) became a record-only trip
    assert (out["trips"]["origin"] == "record").sum() == 1
    for t in ("trips", "sections", "records", "conflicts"):
        st.replace_user(t, "010", out[t])
    assert st.read("records", ["010"])["section_id"].notna().all()
    code, out, err = cli(capsys, "--data-dir", str(data), "ingest", "status")
    assert code == 0, err
    assert "records: 2 (1 testers)" in out
    assert "parking         2: 1 on GPS sections, 1 in record-only trips, 0 not fused yet or unmatched" in out
    assert "record-only trips: 1" in out and "conflicts to review: 0" in out
