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
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError
from ._common import RawData, RowChecker, const_str, finish_table, parse_times, to_float

ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "user", "userid", "uid"),
    "ts": ("ts", "time", "timestamp", "datetime", "date_time"),
    "lat": ("lat", "latitude"),
    "lon": ("lon", "longitude", "lng", "long"),
    "accuracy_m": ("accuracy_m", "accuracy", "acc"),
    "speed_mps": ("speed_mps", "speed"),
    "heading": ("heading", "bearing", "course"),
}


def _columns(header: list[str], path: str, need_user: bool) -> dict[str, str]:
    """Map each schema column to the file's column name; missing required ones raise."""
    norm = {h.strip().lower(): h for h in header}
    found: dict[str, str] = {}
    for col, names in ALIASES.items():
        for n in names:
            if n in norm:
                found[col] = norm[n]
                break
    required = ["ts", "lat", "lon"] + (["user_id"] if need_user else [])
    for col in required:
        if col not in found:
            alts = "|".join(ALIASES[col][:3])
            raise InputError(path, f"missing column {col} ({alts}); columns found: "
                             f"{', '.join(header) or 'none'}", 1, col)
    return found


def read_csv_points(path: str | Path, skip_bad: bool = False, user_id: str | None = None
                    ) -> RawData:
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

    Raises
    ------
    InputError
        Missing columns (line 1), or the first bad row: unreadable timestamp, missing/NaN or
        out-of-range coordinates, non-numeric or negative accuracy.
    """
    path = str(path)
    sep = ";" if _semicolon(path) else ","
    try:
        # ids as text (leading zeros), everything else parsed natively: a clean file never
        # goes through Python strings; a column with junk comes back as text and is checked
        head = pd.read_csv(path, nrows=0, sep=sep, skipinitialspace=True)
        ids = {h: str for h in head.columns if str(h).strip().lower() in ALIASES["user_id"]}
        # ';' files come from French spreadsheets: decimal commas ("46,15"); decimal points
        # then arrive as text and are still read by the checks below
        df = pd.read_csv(path, dtype=ids, keep_default_na=False,
                         na_values=["", "nan", "NaN", "NAN", "null", "NULL", "None"],
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

    chk = RowChecker(path, line)
    if user_id is None:
        uid = df[cols["user_id"]].str.strip()
        chk.flag(uid.isna().to_numpy() | uid.eq("").to_numpy(), cols["user_id"], "missing user id")
    else:
        uid = pd.Series(str(user_id), index=df.index, dtype=schema.STR)
    raw_ts = df[cols["ts"]]
    t, t_bad = parse_times(raw_ts)
    chk.flag(t_bad, cols["ts"], "bad timestamp {value!r} (expected unix seconds or ISO-8601)",
             raw_ts)
    chk.flag(np.isnan(t), cols["ts"], "missing timestamp")
    comma = sep == ";"
    lat, lat_nn = to_float(df[cols["lat"]], comma)
    lon, lon_nn = to_float(df[cols["lon"]], comma)
    chk.check_coords(lat, lon, df[cols["lat"]],
                     df[cols["lon"]], cols["lat"], cols["lon"],
                     lat_nn, lon_nn)
    opt = {}
    for col in ("accuracy_m", "speed_mps", "heading"):
        if col in cols:
            v, nn = to_float(df[cols[col]], comma)
            chk.flag(nn, cols[col], "not a number: {value!r}", df[cols[col]])
            opt[col] = v
        else:
            opt[col] = np.full(len(df), np.nan)
    chk.flag(opt["accuracy_m"] < 0, cols.get("accuracy_m", "accuracy"),
             "negative accuracy {value}", opt["accuracy_m"])
    opt["speed_mps"][opt["speed_mps"] < 0] = np.nan  # devices write -1 for "unknown"
    opt["heading"][opt["heading"] < 0] = np.nan
    keep, problems = chk.report(skip_bad)

    data = {"user_id": uid.astype(schema.STR).array, "ts": t, "lat": lat, "lon": lon, **opt}
    del df, uid, t, lat, lon, opt, raw_ts, chk  # from here on the values live in data only
    if not keep.all():
        data = {k: v[keep] for k, v in data.items()}
    data["source"] = const_str("csv", int(keep.sum()))
    out = RawData(problems=problems, skipped=len(problems))
    out.points, out.duplicates = finish_table(data, "points")
    out.tz = {u: schema.DEFAULT_TZ for u in out.points["user_id"].unique()}
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
