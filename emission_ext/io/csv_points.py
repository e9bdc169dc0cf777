"""CSV point files -> points table.

Why: the simplest way for an operator, a researcher or another tracking app to hand us GPS
fixes is a CSV with one fix per row (SPEC section 4). Column names vary between tools, so a
few common aliases are accepted. The file is read by pandas in one call and checked over
whole columns: no per-row Python.

Columns (case-insensitive, surrounding spaces ignored):

* ``user_id`` (or ``user``) -- required unless a ``user_id`` is given to the reader;
* ``ts`` (or ``time``, ``timestamp``, ``datetime``) -- unix seconds (milliseconds when above
  1e11) or ISO-8601 text (naive times are UTC);
* ``lat`` | ``latitude`` and ``lon`` | ``longitude`` | ``lng`` -- WGS84 degrees;
* optional ``accuracy`` | ``accuracy_m``, ``speed`` | ``speed_mps``, ``heading`` | ``bearing``.

Line numbers in messages are 1-based file lines (the header is line 1), assuming no quoted
field spans several lines.

A clean, comma-separated file with unix times is parsed by pyarrow on every core
(:mod:`.csv_arrow`); the checks below then run on its columns. At the first fault (or when
pyarrow cannot parse the file) the file is read again with pandas, which keeps each row's
line number, so messages and ``skip_bad`` results are the same either way.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError
from pipeline.clean import user_codes

from ._common import RawData, RowChecker, const_str, finish_table_coded, parse_times, to_float
from .csv_arrow import ALIASES, NA_VALUES, Prefetch, match_columns, read_arrow

__all__ = ["read_csv_points", "points_from_arrow", "ALIASES", "Prefetch"]


def _columns(header: list[str], path: str, need_user: bool) -> dict[str, str]:
    """Map each schema column to the file's column name; missing required ones raise."""
    found = match_columns(header)
    required = ["ts", "lat", "lon"] + (["user_id"] if need_user else [])
    for col in required:
        if col not in found:
            alts = "|".join(ALIASES[col][:3])
            raise InputError(path, f"missing column {col} ({alts}); columns found: "
                             f"{', '.join(header) or 'none'}", 1, col)
    return found


def read_csv_points(path: str | Path, skip_bad: bool = False, user_id: str | None = None,
                    prefetch: Prefetch | None = None, arrow: bool = True) -> RawData:
    """Read a CSV of GPS fixes into a :class:`RawData` (``source`` = ``"csv"``).

    Parameters
    ----------
    path : str or Path
        CSV file (``,`` or ``;`` separated -- with ``;``, decimal commas are accepted;
        ``.gz`` accepted).
    skip_bad : bool
        Drop malformed rows (listed in ``problems``) instead of raising at the first one.
    user_id : str, optional
        User id for every row; overrides a ``user_id`` column, and makes it optional.
    prefetch : Prefetch, optional
        The pyarrow parse of ``path``, started earlier (``process`` starts it before its
        imports); default: parsed here.
    arrow : bool
        Try the pyarrow fast path (default); ``False`` reads with pandas straight away.

    Raises
    ------
    InputError
        Missing columns (line 1), or the first bad row: unreadable timestamp, missing/NaN or
        out-of-range coordinates, non-numeric or negative accuracy.
    """
    path = str(path)
    parsed = None
    if arrow:
        parsed = prefetch.result() if prefetch is not None else read_arrow(path, user_id is not None)
    if parsed is not None:
        table, cols = parsed
        del parsed, prefetch
        try:  # any fault: read again below with pandas, which knows each row's line
            return points_from_arrow(path, table, cols, user_id)
        except InputError:
            pass
        del table
    sep = ";" if _semicolon(path) else ","
    try:
        # ids as text (leading zeros), everything else parsed natively: a clean file never
        # goes through Python strings; a column with junk comes back as text and is checked
        head = pd.read_csv(path, nrows=0, sep=sep, skipinitialspace=True)
        ids = {h: str for h in head.columns if str(h).strip().lower() in ALIASES["user_id"]}
        # ';' files come from French spreadsheets: decimal commas ("46,15"); decimal points
        # then arrive as text and are still read by the checks below
        df = pd.read_csv(path, dtype=ids, keep_default_na=False,
                         na_values=NA_VALUES,
                         skip_blank_lines=False, skipinitialspace=True, sep=sep,
                         decimal="," if sep == ";" else ".")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except pd.errors.EmptyDataError:
        raise InputError(path, "empty file: expected a header line with user_id, ts, lat, lon",
                         1) from None
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error, OSError, EOFError) as exc:
        raise InputError(path, f"cannot parse CSV: {str(exc).strip()}") from None
    cols = _columns([str(c) for c in df.columns], path, need_user=user_id is None)
    line = np.arange(len(df), dtype="int64") + 2
    # blank lines (kept so line numbers stay exact) are not faults
    maybe = np.flatnonzero(df[cols["ts"]].isna().to_numpy())  # only these can be blank
    if len(maybe):
        blank = np.zeros(len(df), dtype=bool)
        blank[maybe] = df.iloc[maybe].isna().all(axis=1).to_numpy()
        if blank.any():
            df, line = df[~blank].reset_index(drop=True), line[~blank]
    return _checked(path, df, cols, line, skip_bad, user_id, sep == ";")


def points_from_arrow(path: str, table, cols: dict[str, str], user_id: str | None = None,
                      user_starts=None) -> RawData:
    """Check the rows of a pyarrow-parsed CSV (:func:`.csv_arrow.read_arrow`), or of a slice
    of its rows, and build the points table. ``user_starts``: the first row of each user's
    run in ``table``, when known sorted (:func:`.csv_arrow.user_starts` of the whole parse,
    shifted to the slice): the user codes are then taken from it.

    Raises
    ------
    InputError
        At the first fault; its line number assumes an unsliced file without blank lines, so
        callers read the file again with ``read_csv_points(..., arrow=False)`` for the exact
        message (or to skip the bad rows).
    """
    line = range(2, table.num_rows + 2)  # the first row is on line 2 (no array of them)
    return _checked(path, table, cols, line, False, user_id, False, arrow=True,
                    user_starts=None if user_id is not None else user_starts)


def _checked(path: str, df, cols: dict[str, str], line: np.ndarray, skip_bad: bool,
             user_id: str | None, comma: bool, arrow: bool = False, user_starts=None
             ) -> RawData:
    """Check the rows of ``df`` (a DataFrame, or a pyarrow Table when ``arrow``) over whole
    columns, raise the first fault or drop the bad rows, and build the points table."""
    n = df.num_rows if arrow else len(df)

    def col(name):  # one column as a Series (pyarrow: numbers zero-copy, ids as Arrow text)
        if not arrow:
            return df[name]
        c = df.column(name)  # ids already stripped by read_arrow
        if name == cols.get("user_id"):
            return pd.Series(pd.array(c, dtype=schema.STR))
        return pd.Series(c.to_numpy(), copy=False)

    chk = RowChecker(path, line)
    if user_id is None:
        uid = col(cols["user_id"])
        if not arrow:
            uid = uid.str.strip()
        chk.flag(uid.isna().to_numpy() | uid.eq("").to_numpy(), cols["user_id"], "missing user id")
    else:
        uid = pd.Series(const_str(str(user_id), n), dtype=schema.STR)
    raw_ts = col(cols["ts"])
    t, t_bad = parse_times(raw_ts)
    chk.flag(t_bad, cols["ts"], "bad timestamp {value!r} (expected unix seconds or ISO-8601)",
             raw_ts)
    chk.flag(np.isnan(t), cols["ts"], "missing timestamp")
    def number(name):  # (float64 values, not-a-number mask or None)
        if arrow:  # typed float64 by read_arrow: nothing to convert, no text to check; the
            # table's own (read-only) memory, not a copy: no fresh pages in a worker
            return df.column(name).to_numpy(), None
        return to_float(col(name), comma)

    (lat, lat_nn), (lon, lon_nn) = number(cols["lat"]), number(cols["lon"])
    chk.check_coords(lat, lon, None if arrow else col(cols["lat"]),
                     None if arrow else col(cols["lon"]), cols["lat"], cols["lon"], lat_nn, lon_nn)
    opt = {}
    for name in ("accuracy_m", "speed_mps", "heading"):
        if name in cols:
            v, nn = number(cols[name])
            if nn is not None:
                chk.flag(nn, cols[name], "not a number: {value!r}", col(cols[name]))
            opt[name] = v
        else:
            opt[name] = np.full(n, np.nan)
    chk.flag(opt["accuracy_m"] < 0, cols.get("accuracy_m", "accuracy"),
             "negative accuracy {value}", opt["accuracy_m"])
    for name in ("speed_mps", "heading"):  # devices write -1 for "unknown"
        neg = opt[name] < 0
        if neg.any():  # a new array: the values may be the parsed table's, read-only
            opt[name] = np.where(neg, np.nan, opt[name])
    keep, problems = chk.report(skip_bad)

    data = {"user_id": uid.astype(schema.STR).array, "ts": t, "lat": lat, "lon": lon, **opt}
    del df, uid, t, lat, lon, opt, raw_ts, chk  # from here on the values live in data only
    if not keep.all():
        data = {k: v[keep] for k, v in data.items()}
        user_starts = None  # rows dropped: the runs moved
    data["source"] = const_str("csv", int(keep.sum()))
    out = RawData(problems=problems, skipped=len(problems))
    out.points, out.duplicates, out.user_codes = finish_table_coded(data, "points",
                                                                    user_starts=user_starts)
    users = out.user_codes[1] if out.user_codes else user_codes(out.points["user_id"])[1]
    out.tz = {u: schema.DEFAULT_TZ for u in users}
    return out


def _semicolon(path: str) -> bool:
    """True when the header line uses ``;`` rather than ``,`` (French spreadsheets)."""
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            head = fh.readline()
    except (OSError, EOFError):
        return False
    return head.count(";") > head.count(",")
