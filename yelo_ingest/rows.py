"""Row-level reading and validation of operator files, shared by Yélo and parking ingest.

Why: every operator file (bus validations, bike-share rentals, car-share bookings, parking
sessions, the card map) goes through the same steps -- decode whatever bytes the operator
sent (UTF-8, UTF-8 with BOM, Latin-1; ``,`` or ``;`` separators; decimal commas), split it
into rows that keep their physical line number, then check every row against the file's
machine-readable format (``schemas/*.json``, Frictionless Table Schema with a few extension
keys). Doing this in one module keeps the rules, the wording of the problem report and the
quarantine format identical for every source. ``parking_ingest`` imports it from here.

Everything here is pure: bytes and DataFrames in, DataFrames out. Opening files, archiving
and writing the quarantine are the caller's job (the ``ingest`` command).

Problem report
--------------
A DataFrame with columns ``file, line, field, value, reason`` (one row per problem; ``line`` is
the 1-based physical line of the CSV row -- the header is line 1 -- or the 1-based index of the
entry in a JSON array; ``field`` is empty for file-level or row-level problems).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Mapping

import numpy as np
import pandas as pd

from emission_ext.errors import ConfigError

PROBLEM_COLUMNS = ("file", "line", "field", "value", "reason")
#: Column added to quarantined rows (the rest of the row is exactly as the operator sent it).
REASON_COLUMN = "reject_reason"
LINE_COLUMN = "_line"

_TS_OFFSET = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"


@dataclass(frozen=True)
class FieldSpec:
    """One field of an operator file.

    Parameters
    ----------
    name : str
        Column name in the file.
    type : str
        ``string``, ``datetime`` (ISO-8601; naive = local time), ``date`` (YYYY-MM-DD),
        ``number`` (``.`` or ``,`` decimal) or ``integer``.
    required : bool
        An empty value is a problem.
    minimum, maximum : float or None
        Inclusive range of numbers (units as documented per field: euros, metres, seconds).
    enum : tuple of str or None
        Allowed values.
    pattern : str or None
        Regular expression a non-empty value must match (whole value).
    reference : str or None
        Name of a reference id set (``gtfs_stop``, ``gtfs_route``, ``bike_station``,
        ``car_park``) the value must belong to.
    """

    name: str
    type: str = "string"
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class IntervalRule:
    """End-after-start and plausible-duration rule between two datetime/date fields.

    ``min_s``/``max_s`` bound ``end - start`` in seconds (``max_s`` None = unbounded). When
    ``duration_field`` is given, the duration the operator reports must agree with
    ``end - start`` within ``duration_tolerance_s`` seconds.
    """

    start: str
    end: str
    min_s: float = 0.0
    max_s: float | None = None
    allow_equal: bool = False
    duration_field: str | None = None
    duration_tolerance_s: float = 300.0


@dataclass(frozen=True)
class FormatSpec:
    """A file format: its fields, primary key and cross-field rules (from a schema JSON)."""

    name: str
    fields: tuple[FieldSpec, ...]
    primary_key: str | None = None
    operator: str | None = None
    kind: str = ""
    account_field: str | None = None
    time_field: str | None = None
    file_pattern: str = ""
    version: str = ""
    intervals: tuple[IntervalRule, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @classmethod
    def from_json(cls, doc: Mapping) -> "FormatSpec":
        """Build from a Frictionless Table Schema document with this project's extension keys
        (``primaryKey``, ``operator``, ``kind``, ``accountField``, ``timeField``,
        ``filePattern``, ``intervals`` and per-field ``reference``)."""
        fields = []
        for f in doc["fields"]:
            c = f.get("constraints", {})
            enum = c.get("enum")
            fields.append(FieldSpec(
                name=f["name"], type=f.get("type", "string"), required=bool(c.get("required", False)),
                minimum=c.get("minimum"), maximum=c.get("maximum"),
                enum=tuple(enum) if enum else None, pattern=c.get("pattern"),
                reference=f.get("reference")))
        rules = tuple(IntervalRule(
            start=r["start"], end=r["end"], min_s=float(r.get("minSeconds") or 0.0),
            max_s=r.get("maxSeconds"), allow_equal=bool(r.get("allowEqual", False)),
            duration_field=r.get("durationField"),
            duration_tolerance_s=float(r.get("durationToleranceSeconds", 300.0)))
            for r in doc.get("intervals", []))
        return cls(name=doc["name"], fields=tuple(fields), primary_key=doc.get("primaryKey"),
                   operator=doc.get("operator"), kind=doc.get("kind", ""),
                   account_field=doc.get("accountField"), time_field=doc.get("timeField"),
                   file_pattern=doc.get("filePattern", ""), version=str(doc.get("version", "")),
                   intervals=rules)


def load_format(package: str, name: str) -> FormatSpec:
    """Load the shipped format ``<package>/schemas/<name>.json``."""
    try:
        text = (resources.files(package) / "schemas" / f"{name}.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{package}/schemas/{name}.json: format file not found") from None
    return FormatSpec.from_json(json.loads(text))


# --------------------------------------------------------------------------- decoding

@dataclass
class ParsedFile:
    """A file split into rows of strings.

    Attributes
    ----------
    path : str
        Name used in reports.
    columns : list of str
        Header fields, stripped.
    frame : DataFrame
        One row per well-formed data row, every column a string (empty string = missing),
        plus ``_line`` (1-based physical line, or JSON entry index).
    problems : DataFrame
        File-level and structural problems (wrong field count, undecodable bytes...).
    malformed : DataFrame
        Rows that could not be split into the header's fields, as raw text (``raw``, ``_line``).
    encoding, separator : str
        What was detected (``separator`` is ``json`` for JSON input).
    """

    path: str
    columns: list[str]
    frame: pd.DataFrame
    problems: pd.DataFrame
    malformed: pd.DataFrame
    encoding: str
    separator: str


def problems_frame(rows=()) -> pd.DataFrame:
    """A problem report (``file, line, field, value, reason``) from an iterable of tuples."""
    df = pd.DataFrame(list(rows), columns=list(PROBLEM_COLUMNS))
    df["line"] = df["line"].astype("Int64")
    for c in ("file", "field", "value", "reason"):
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


def decode(raw: bytes) -> tuple[str, str]:
    """Decode operator bytes; return ``(text, encoding)``.

    UTF-8 with a BOM, then strict UTF-8, then Windows-1252/Latin-1 (what French spreadsheet
    exports produce). Latin-1 decodes any byte, so this never fails; a wrong guess shows up as
    unknown ids in validation rather than being silently accepted.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def sniff_separator(header_line: str) -> str:
    """``;``, tab or ``,``: whichever splits the header line into the most fields."""
    counts = {sep: header_line.count(sep) for sep in (";", "\t", ",")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] > 0 else ","


def parse(raw: bytes, path: str) -> ParsedFile:
    """Split operator bytes (CSV or a JSON array of objects) into string rows.

    Never raises for bad content: an empty file, a header-only file or a truncated last row
    come back as problems (an empty file has no columns and one problem).
    """
    text, enc = decode(raw)
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _parse_json(stripped, path, enc)
    return _parse_csv(text, path, enc)


def _empty_parsed(path, enc, sep, reason) -> ParsedFile:
    return ParsedFile(path, [], pd.DataFrame({LINE_COLUMN: pd.Series([], dtype="int64")}),
                      problems_frame([(path, None, None, None, reason)]),
                      pd.DataFrame({"raw": [], LINE_COLUMN: []}), enc, sep)


def _parse_csv(text: str, path: str, enc: str) -> ParsedFile:
    if not text.strip():
        return _empty_parsed(path, enc, ",", "empty file (no header, no rows)")
    first = text.split("\n", 1)[0]
    sep = sniff_separator(first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    # csv.reader is C code; the comprehension only pairs each row with its line number.
    rows = [(r, reader.line_num) for r in reader]
    header = [h.strip() for h in rows[0][0]]
    body = [(r, n) for r, n in rows[1:] if any(x.strip() for x in r)]  # skip blank lines
    ncol = len(header)
    lens = np.fromiter((len(r) for r, _ in body), dtype=np.int64, count=len(body))
    lines = np.fromiter((n for _, n in body), dtype=np.int64, count=len(body))
    ok = lens == ncol
    good = [r for (r, _), k in zip(body, ok) if k]
    frame = pd.DataFrame(good, columns=header, dtype=object) if good else pd.DataFrame(
        {h: pd.Series([], dtype=object) for h in header})
    frame = frame.fillna("").astype(object)
    frame[LINE_COLUMN] = lines[ok]
    bad_idx = np.flatnonzero(~ok)
    probs = []
    malformed_raw = []
    text_lines = text.splitlines()
    for i in bad_idx:  # only the malformed rows (usually none, one for a truncated file)
        r, n = body[i]
        last = i == len(body) - 1
        what = "truncated row" if (len(r) < ncol and last) else "wrong number of fields"
        probs.append((path, int(n), None, None,
                      f"{what}: {len(r)} fields, header has {ncol}"))
        malformed_raw.append((text_lines[n - 1] if 0 < n <= len(text_lines) else sep.join(r), int(n)))
    if not body:
        probs.append((path, None, None, None, "no data rows (header only)"))
    return ParsedFile(path, header, frame.reset_index(drop=True), problems_frame(probs),
                      pd.DataFrame(malformed_raw, columns=["raw", LINE_COLUMN]), enc, sep)


def _parse_json(text: str, path: str, enc: str) -> ParsedFile:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return _empty_parsed(path, enc, "json", f"invalid JSON (truncated file?): {exc.msg} at line {exc.lineno}")
    if not isinstance(doc, list):
        return _empty_parsed(path, enc, "json", "JSON input must be an array of objects")
    objs = [o if isinstance(o, dict) else None for o in doc]
    bad = [i + 1 for i, o in enumerate(objs) if o is None]
    good = [o for o in objs if o is not None]
    frame = pd.DataFrame(good, dtype=object)
    frame = frame.map(lambda v: "" if v is None else str(v)) if len(frame) else frame
    frame[LINE_COLUMN] = np.array([i + 1 for i, o in enumerate(objs) if o is not None], dtype=np.int64)
    probs = [(path, i, None, None, "entry is not an object") for i in bad]
    if not doc:
        probs.append((path, None, None, None, "no data rows (empty array)"))
    cols = [c for c in frame.columns if c != LINE_COLUMN]
    return ParsedFile(path, cols, frame.reset_index(drop=True), problems_frame(probs),
                      pd.DataFrame({"raw": [json.dumps(doc[i - 1]) for i in bad], LINE_COLUMN: bad}),
                      enc, "json")


# --------------------------------------------------------------------------- typing

def parse_number(s: pd.Series) -> pd.Series:
    """Strings to float64: ``.`` or ``,`` decimal separator, spaces as thousands separators.

    ``"1 234,50"`` -> 1234.5, ``"1.234,50"`` -> 1234.5, ``"2.5"`` -> 2.5. Unparseable -> NaN.
    """
    t = s.astype(str).str.replace(r"[\s\u00a0\u202f]", "", regex=True)
    both = t.str.contains(",", regex=False) & t.str.contains(".", regex=False)
    t = t.where(~both, t.str.replace(".", "", regex=False))
    t = t.str.replace(",", ".", regex=False)
    return pd.to_numeric(t, errors="coerce").astype("float64")


def parse_datetime(s: pd.Series, tz: str) -> tuple[pd.Series, pd.Series]:
    """ISO-8601 strings to UTC timestamps; naive values are local time in ``tz``.

    Returns ``(timestamps, reason)`` where ``reason`` is a string per row explaining a failure
    (empty when parsed or when the input was empty). A local time that does not exist or is
    ambiguous (DST change) is a failure: the operator must give an offset.
    """
    t = s.astype(str).str.strip()
    has_off = t.str.contains(_TS_OFFSET, regex=True)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    reason = pd.Series("", index=s.index, dtype=object)
    nonempty = t != ""
    aware = nonempty & has_off
    if aware.any():
        v = pd.to_datetime(t[aware], utc=True, format="ISO8601", errors="coerce")
        out[aware] = v.astype("datetime64[ns, UTC]")
        reason[aware & out.isna()] = "malformed timestamp (expected ISO-8601)"
    naive = nonempty & ~has_off
    if naive.any():
        v = pd.to_datetime(t[naive], format="ISO8601", errors="coerce")
        bad = v.isna()
        reason[bad[bad].index] = "malformed timestamp (expected ISO-8601)"
        loc = v.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        amb = loc.isna() & ~bad
        reason[amb[amb].index] = f"local time ambiguous or nonexistent in {tz} (DST change): give an offset"
        out[naive] = loc.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    return out, reason


# --------------------------------------------------------------------------- validation

@dataclass
class RowCheck:
    """Result of :func:`check_rows`.

    Attributes
    ----------
    good : DataFrame
        Rows without problems, typed (datetime -> UTC timestamps, number -> float64,
        integer -> Int64, string -> str or None), with ``_line``.
    bad : DataFrame
        Rows with problems exactly as received (strings), with ``_line`` and
        ``reject_reason`` (all reasons of the row, ``field: reason; ...``).
    problems : DataFrame
        ``file, line, field, value, reason``, one per problem (structural ones included).
    duplicates : int
        Rows dropped because an identical row (every field equal) appeared earlier in the file.
    """

    good: pd.DataFrame
    bad: pd.DataFrame
    problems: pd.DataFrame
    duplicates: int = 0


def check_rows(parsed: ParsedFile, spec: FormatSpec, refs: Mapping[str, object] | None = None,
               tz: str = "Europe/Paris") -> RowCheck:
    """Check every row of ``parsed`` against ``spec``.

    Parameters
    ----------
    parsed : ParsedFile
        From :func:`parse`.
    spec : FormatSpec
        The file's format.
    refs : mapping of str to array-like of str
        Known ids per reference name (``gtfs_stop``, ``gtfs_route``, ``bike_station``,
        ``car_park``). A field whose reference is missing from ``refs`` raises
        :class:`~emission_ext.errors.ConfigError` (a check is never skipped silently).
    tz : str
        Time zone of naive timestamps (IANA name).

    Returns
    -------
    RowCheck
        Checks: missing columns (every row bad), required values, types, ranges, enums,
        patterns, known reference ids, end after start and plausible durations, duplicate
        primary keys (an identical repeated row is dropped and counted; the same id with
        different content is a problem on the later rows).
    """
    refs = refs or {}
    path = parsed.path
    df = parsed.frame
    n = len(df)
    lines = df[LINE_COLUMN].to_numpy() if n else np.array([], dtype=np.int64)
    problems = [parsed.problems]
    # (row positions, field, values, reason) accumulated as arrays -- vectorised per field
    hits: list[tuple[np.ndarray, str | None, np.ndarray, str | np.ndarray]] = []

    missing_cols = [f.name for f in spec.fields if f.required and f.name not in parsed.columns]
    if parsed.columns and missing_cols:
        problems.append(problems_frame([
            (path, 1, c, None, f"required column missing from the header (found: {', '.join(parsed.columns)})")
            for c in missing_cols]))
    typed: dict[str, pd.Series] = {}
    for f in spec.fields:
        if f.name not in df.columns:
            raw = pd.Series([""] * n, index=df.index, dtype=object)
        else:
            raw = df[f.name].astype(str).str.strip()
        empty = (raw == "").to_numpy()
        if f.required and empty.any():
            pos = np.flatnonzero(empty)
            why = "required value is empty" if f.name in df.columns else "required column missing"
            hits.append((pos, f.name, np.full(len(pos), ""), why))
        if f.type == "datetime":
            val, why = parse_datetime(raw, tz)
            bad = (why != "").to_numpy()
            if bad.any():
                pos = np.flatnonzero(bad)
                hits.append((pos, f.name, raw.to_numpy()[pos], why.to_numpy()[pos]))
        elif f.type == "date":
            ok_fmt = raw.str.match(_DATE)
            val = pd.to_datetime(raw.where(ok_fmt, None), format="%Y-%m-%d", errors="coerce")
            bad = (~empty) & val.isna().to_numpy()
            if bad.any():
                pos = np.flatnonzero(bad)
                hits.append((pos, f.name, raw.to_numpy()[pos], "malformed date (expected YYYY-MM-DD)"))
        elif f.type in ("number", "integer"):
            val = parse_number(raw)
            bad = (~empty) & val.isna().to_numpy()
            if bad.any():
                pos = np.flatnonzero(bad)
                hits.append((pos, f.name, raw.to_numpy()[pos], f"not a {f.type}"))
            if f.type == "integer":
                frac = (~empty) & ~bad & (np.abs(val.to_numpy() - np.round(val.to_numpy())) > 1e-9)
                if frac.any():
                    pos = np.flatnonzero(frac)
                    hits.append((pos, f.name, raw.to_numpy()[pos], "not an integer"))
                val = val.round().astype("Int64").where(~frac, pd.NA)
            v = val.to_numpy(dtype="float64", na_value=np.nan)
            if f.minimum is not None:
                lo = v < f.minimum
                if lo.any():
                    pos = np.flatnonzero(lo)
                    hits.append((pos, f.name, raw.to_numpy()[pos], f"below minimum {f.minimum}"))
            if f.maximum is not None:
                hi = v > f.maximum
                if hi.any():
                    pos = np.flatnonzero(hi)
                    hits.append((pos, f.name, raw.to_numpy()[pos], f"above maximum {f.maximum}"))
        else:
            val = raw.where(~empty, None).astype(object)
        if f.enum is not None:
            bad = (~empty) & ~raw.isin(f.enum).to_numpy()
            if bad.any():
                pos = np.flatnonzero(bad)
                hits.append((pos, f.name, raw.to_numpy()[pos], f"not one of {', '.join(f.enum)}"))
        if f.pattern is not None:
            bad = (~empty) & ~raw.str.fullmatch(f.pattern).fillna(False).to_numpy(dtype=bool)
            if bad.any():
                pos = np.flatnonzero(bad)
                hits.append((pos, f.name, raw.to_numpy()[pos], f"does not match {f.pattern}"))
        if f.reference is not None:
            if f.reference not in refs:
                raise ConfigError(f"format {spec.name}: reference id set '{f.reference}' not provided")
            known = pd.Index(np.asarray(refs[f.reference], dtype=object))
            bad = (~empty) & ~raw.isin(known).to_numpy()
            if bad.any():
                pos = np.flatnonzero(bad)
                hits.append((pos, f.name, raw.to_numpy()[pos], f"unknown {f.reference.replace('_', ' ')} id"))
        typed[f.name] = val

    for rule in spec.intervals:
        a, b = typed[rule.start], typed[rule.end]
        a_ns = _as_seconds(a)
        b_ns = _as_seconds(b)
        both = ~np.isnan(a_ns) & ~np.isnan(b_ns)
        d = b_ns - a_ns
        order_bad = both & ((d < 0) if rule.allow_equal else (d <= 0))
        if order_bad.any():
            pos = np.flatnonzero(order_bad)
            hits.append((pos, rule.end, df[rule.end].to_numpy()[pos] if rule.end in df else np.full(len(pos), ""),
                         f"{rule.end} is not after {rule.start}"))
        short = both & ~order_bad & (d < rule.min_s)
        if short.any():
            pos = np.flatnonzero(short)
            hits.append((pos, rule.end, d[pos].astype(str), f"implausible duration: under {rule.min_s:g} s"))
        if rule.max_s is not None:
            long_ = both & (d > float(rule.max_s))
            if long_.any():
                pos = np.flatnonzero(long_)
                hits.append((pos, rule.end, d[pos].astype(str), f"implausible duration: over {float(rule.max_s):g} s"))
        if rule.duration_field and rule.duration_field in typed:
            rep = typed[rule.duration_field].to_numpy(dtype="float64", na_value=np.nan)
            off = both & ~np.isnan(rep) & (np.abs(rep - d) > rule.duration_tolerance_s)
            if off.any():
                pos = np.flatnonzero(off)
                hits.append((pos, rule.duration_field, rep[pos].astype(str),
                             f"disagrees with {rule.end} - {rule.start} by more than {rule.duration_tolerance_s:g} s"))

    # duplicates: identical rows are dropped; same key with other content is a problem
    dup_identical = np.zeros(n, dtype=bool)
    if n and spec.names:
        cols = [c for c in spec.names if c in df.columns]
        if cols:
            dup_identical = df.duplicated(subset=cols, keep="first").to_numpy()
        pk = spec.primary_key
        if pk and pk in df.columns:
            keyed = df[pk].astype(str).str.strip()
            first_line = pd.Series(lines).groupby(keyed.to_numpy()).transform("first").to_numpy()
            kdup = keyed.duplicated(keep="first").to_numpy() & ~dup_identical & (keyed != "").to_numpy()
            if kdup.any():
                pos = np.flatnonzero(kdup)
                hits.append((pos, pk, keyed.to_numpy()[pos],
                             np.array([f"duplicate {pk} with different content (first at line {k})"
                                       for k in first_line[pos]], dtype=object)))

    bad_mask = np.zeros(n, dtype=bool)
    rows = []
    for pos, fname, vals, reason in hits:
        bad_mask[pos] = True
        rs = np.broadcast_to(np.asarray(reason, dtype=object), pos.shape)
        rows.append(pd.DataFrame({"file": path, "line": lines[pos], "field": fname,
                                  "value": np.asarray(vals, dtype=object), "reason": rs, "_pos": pos}))
    bad_mask &= ~dup_identical
    if rows:
        hp = pd.concat(rows, ignore_index=True)
        hp = hp[~dup_identical[hp["_pos"].to_numpy()]]
        hp = hp.sort_values(["line", "field"], kind="stable", na_position="first")
        reasons = (hp["field"].fillna("row") + ": " + hp["reason"].astype(str)).groupby(hp["_pos"]).agg("; ".join)
        problems.append(problems_frame(hp[list(PROBLEM_COLUMNS)].itertuples(index=False, name=None)))
    else:
        reasons = pd.Series(dtype=object)

    keep = ~bad_mask & ~dup_identical
    good = pd.DataFrame({k: v for k, v in typed.items()}, index=df.index)
    extra = [c for c in df.columns if c not in typed and c != LINE_COLUMN]
    for c in extra:  # keep unknown columns as text
        good[c] = df[c]
    good[LINE_COLUMN] = lines
    good = good[keep].reset_index(drop=True)
    bad = df[bad_mask].copy()
    bad[REASON_COLUMN] = reasons.reindex(np.flatnonzero(bad_mask)).to_numpy() if bad_mask.any() else []
    # structural failures (wrong field count) are bad rows too, kept as raw text
    all_problems = pd.concat([p for p in problems if len(p)], ignore_index=True) if any(
        len(p) for p in problems) else problems_frame()
    all_problems = all_problems.sort_values("line", kind="stable", na_position="first").reset_index(drop=True)
    return RowCheck(good=good, bad=bad.reset_index(drop=True), problems=all_problems,
                    duplicates=int(dup_identical.sum()))


def _as_seconds(s: pd.Series) -> np.ndarray:
    """Datetime (aware or naive) series to float seconds; NaT -> NaN."""
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        v = pd.DatetimeIndex(s).as_unit("ns")
        out = v.asi8.astype("float64") / 1e9
        out[v.isna()] = np.nan
        return out
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")


def move_to_bad(check: RowCheck, parsed: ParsedFile, mask: np.ndarray, field_name: str | None,
                reasons: np.ndarray | str, values: np.ndarray | None = None) -> RowCheck:
    """Return ``check`` with the good rows selected by ``mask`` moved to the bad rows.

    Used for checks that need other tables (e.g. the card map: unknown account). The raw
    strings of those rows are taken from ``parsed`` by line number.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return check
    lines = check.good[LINE_COLUMN].to_numpy()[mask]
    rs = np.broadcast_to(np.asarray(reasons, dtype=object), (int(mask.sum()),))
    vals = (np.asarray(values, dtype=object) if values is not None else np.full(len(lines), None, dtype=object))
    prob = problems_frame(zip([parsed.path] * len(lines), lines.tolist(), [field_name] * len(lines),
                              vals.tolist(), rs.tolist()))
    raw = parsed.frame.set_index(LINE_COLUMN).loc[lines].reset_index()
    raw = raw[[c for c in parsed.frame.columns]]
    raw[REASON_COLUMN] = [f"{field_name or 'row'}: {r}" for r in rs]
    bad = pd.concat([check.bad, raw], ignore_index=True).sort_values(LINE_COLUMN, kind="stable")
    problems = pd.concat([check.problems, prob], ignore_index=True).sort_values(
        "line", kind="stable", na_position="first")
    return RowCheck(good=check.good[~mask].reset_index(drop=True), bad=bad.reset_index(drop=True),
                    problems=problems.reset_index(drop=True), duplicates=check.duplicates)


def quarantine_frame(check: RowCheck, parsed: ParsedFile) -> pd.DataFrame:
    """Rows to quarantine, in the file's own columns plus ``reject_reason`` (and ``_line``).

    Malformed rows (wrong field count) cannot be split into columns: their raw text goes in
    the first column so the operator sees and fixes the whole line.
    """
    cols = list(parsed.columns)
    bad = check.bad.reindex(columns=cols + [LINE_COLUMN, REASON_COLUMN])
    if len(parsed.malformed):
        m = pd.DataFrame({c: "" for c in cols}, index=range(len(parsed.malformed)))
        if cols:
            m[cols[0]] = parsed.malformed["raw"].to_numpy()
        m[LINE_COLUMN] = parsed.malformed[LINE_COLUMN].to_numpy()
        probs = parsed.problems.dropna(subset=["line"]).set_index("line")["reason"]
        m[REASON_COLUMN] = ["row: " + str(probs.get(int(ln), "malformed row")) for ln in m[LINE_COLUMN]]
        bad = pd.concat([bad, m], ignore_index=True)
    return bad.sort_values(LINE_COLUMN, kind="stable").reset_index(drop=True)
