"""Row reading and validation (yelo_ingest.rows), shared by both ingest packages."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emission_ext.errors import ConfigError
from yelo_ingest import rows
from yelo_ingest.rows import FieldSpec, FormatSpec, IntervalRule, check_rows, parse


def spec():
    return FormatSpec(
        name="t", primary_key="id",
        fields=(FieldSpec("id", required=True), FieldSpec("when", "datetime", required=True),
                FieldSpec("until", "datetime"), FieldSpec("n", "integer", minimum=0, maximum=10),
                FieldSpec("x", "number", minimum=0.0), FieldSpec("k", enum=("a", "b")),
                FieldSpec("ref", reference="things"), FieldSpec("code", pattern=r"[0-9]{3}")),
        intervals=(IntervalRule("when", "until", min_s=60, max_s=3600, duration_field=None),))


REFS = {"things": np.array(["T1", "T2"], dtype=object)}
HEADER = "id,when,until,n,x,k,ref,code\n"


def run(text: str, enc="utf-8"):
    p = parse(text.encode(enc), "f.csv")
    return p, check_rows(p, spec(), REFS)


def test_decode_variants():
    assert rows.decode("é".encode("utf-8")) == ("é", "utf-8")
    assert rows.decode(b"\xef\xbb\xbfa") == ("a", "utf-8-sig")
    assert rows.decode("é".encode("latin-1")) == ("é", "cp1252")


def test_separator_sniff():
    assert rows.sniff_separator("a;b;c") == ";"
    assert rows.sniff_separator("a,b,c") == ","
    assert rows.sniff_separator("a") == ","


def test_numbers_with_decimal_comma():
    s = pd.Series(["1,50", "2.5", "1 234,50", "1.234,50", "x", ""])
    out = rows.parse_number(s).to_numpy()
    assert out[:4].tolist() == [1.5, 2.5, 1234.5, 1234.5]
    assert np.isnan(out[4]) and np.isnan(out[5])


def test_datetimes_offsets_naive_local_and_dst():
    s = pd.Series(["2026-03-02T08:14:05+01:00", "2026-03-02T07:14:05Z", "2026-03-02 08:14:05",
                   "2026-10-25 02:30:00", "2026-03-29 02:30:00", "2026-13-02", ""])
    ts, why = rows.parse_datetime(s, "Europe/Paris")
    assert ts[0] == ts[1] == ts[2] == pd.Timestamp("2026-03-02 07:14:05", tz="UTC")
    assert "ambiguous or nonexistent" in why[3] and "ambiguous or nonexistent" in why[4]
    assert "malformed" in why[5]
    assert why[6] == "" and pd.isna(ts[6])


def test_every_rule_reports_file_line_field_reason():
    text = HEADER + "\n".join([
        "A,2026-03-02T08:00:00Z,2026-03-02T08:10:00Z,3,1.5,a,T1,123",   # line 2: good
        ",2026-03-02T08:00:00Z,,,,,,",                                   # 3: id empty
        "B,not a date,,,,,,",                                            # 4: malformed date
        "C,2026-03-02T08:00:00Z,2026-03-02T07:00:00Z,,,,,",              # 5: end before start
        "D,2026-03-02T08:00:00Z,2026-03-02T08:00:30Z,,,,,",              # 6: too short
        "E,2026-03-02T08:00:00Z,2026-03-02T10:00:00Z,,,,,",              # 7: too long
        "F,2026-03-02T08:00:00Z,,11,-1,c,T9,12a",                        # 8: range, enum, ref, pattern
        "G,2026-03-02T08:00:00Z,,2.5,,,,",                               # 9: not an integer
    ]) + "\n"
    p, c = run(text)
    assert len(c.good) == 1 and c.good.loc[0, "id"] == "A"
    got = {(int(r.line), r.field, r.reason.split(" (")[0]) for r in c.problems.itertuples()}
    assert (3, "id", "required value is empty") in got
    assert (4, "when", "malformed timestamp") in got
    assert (5, "until", "until is not after when") in got
    assert (6, "until", "implausible duration: under 60 s") in got
    assert (7, "until", "implausible duration: over 3600 s") in got
    assert (8, "n", "above maximum 10") in got
    assert (8, "x", "below minimum 0.0") in got
    assert (8, "k", "not one of a, b") in got
    assert (8, "ref", "unknown things id") in got
    assert (8, "code", "does not match [0-9]{3}") in got
    assert (9, "n", "not an integer") in got
    assert set(c.problems["file"]) == {"f.csv"}
    # every bad row is quarantined once, with all its reasons, in the file's own columns
    assert sorted(c.bad["_line"]) == [3, 4, 5, 6, 7, 8, 9]
    line8 = c.bad.set_index("_line").loc[8, "reject_reason"]
    for f in ("n:", "x:", "k:", "ref:", "code:"):
        assert f in line8


def test_typed_good_rows():
    p, c = run(HEADER + "A,2026-03-02T08:00:00Z,2026-03-02T08:10:00Z,3,\"1,5\",a,T1,123\n")
    g = c.good.iloc[0]
    assert g["when"] == pd.Timestamp("2026-03-02 08:00", tz="UTC")
    assert g["n"] == 3 and g["x"] == 1.5 and g["ref"] == "T1"
    assert str(c.good["when"].dtype) == "datetime64[ns, UTC]"


def test_duplicates_identical_dropped_conflicting_rejected():
    line = "A,2026-03-02T08:00:00Z,,,,,,"
    p, c = run(HEADER + line + "\n" + line + "\n" + "A,2026-03-02T09:00:00Z,,,,,,\n")
    assert len(c.good) == 1 and c.duplicates == 1
    assert list(c.bad["_line"]) == [4]
    assert "duplicate id with different content (first at line 2)" in c.bad.loc[0, "reject_reason"]


def test_truncated_and_wrong_field_count():
    p, c = run(HEADER + "A,2026-03-02T08:00:00Z,,,,,,\nB,2026-03-02T08:00:00Z,,,,,,,extra\nC,2026-03")
    assert list(c.good["id"]) == ["A"]
    reasons = c.problems.set_index("line")["reason"]
    assert reasons[3].startswith("wrong number of fields")
    assert reasons[4].startswith("truncated row")
    q = rows.quarantine_frame(c, p)
    assert list(q["_line"]) == [3, 4] and q.loc[1, "id"] == "C,2026-03"


def test_empty_and_header_only():
    p, c = run("")
    assert len(c.good) == 0 and c.problems.loc[0, "reason"].startswith("empty file")
    p, c = run(HEADER)
    assert len(c.good) == 0 and "header only" in c.problems.loc[0, "reason"]


def test_missing_required_column_rejects_every_row():
    p, c = run("id,until\nA,\n")
    assert len(c.good) == 0
    assert ((c.problems["field"] == "when") & c.problems["reason"].str.contains("missing from the header")).any()


def test_json_input_and_truncated_json():
    p, c = run('[{"id": "A", "when": "2026-03-02T08:00:00Z"}, {"id": "B", "when": "bad"}, 3]')
    assert list(c.good["id"]) == ["A"]
    assert set(c.problems["line"].dropna().astype(int)) == {2, 3}
    p, c = run('[{"id": "A", "when": "2026-03-02T08:00:00Z"}, {"id": "B", "wh')
    assert len(c.good) == 0 and "invalid JSON" in c.problems.loc[0, "reason"]


def test_missing_reference_set_is_a_config_error():
    p = parse((HEADER + "A,2026-03-02T08:00:00Z,,,,,T1,\n").encode(), "f.csv")
    with pytest.raises(ConfigError):
        check_rows(p, spec(), {})


def test_shipped_formats_load():
    for pkg, name in [("yelo_ingest", "yelo_validations"), ("yelo_ingest", "yelo_bikeshare"),
                      ("yelo_ingest", "yelo_carshare"), ("yelo_ingest", "card_map"),
                      ("parking_ingest", "parking_sessions")]:
        f = rows.load_format(pkg, name)
        assert f.name == name and f.fields and f.version
    with pytest.raises(ConfigError):
        rows.load_format("yelo_ingest", "nope")
