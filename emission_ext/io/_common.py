"""What every reader shares: the :class:`RawData` result and the vectorised row checks.

Why: the four input formats (e-mission JSON, CSV, GPX, GeoLife PLT) differ only in how their
fields are pulled out of the file. Once a reader has its candidate rows as plain columns plus
the line (or JSON entry) each row came from, the checks are the same: bad timestamps, missing or
NaN coordinates, out-of-range latitude/longitude, negative accuracy. They run here, over whole
numpy arrays, and turn the first bad row into one :class:`~emission_ext.errors.InputError`
naming the file, the line/entry and the field -- or, with ``skip_bad``, drop every bad row and
list them. Nothing in this module opens a file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.clean import codes_from_starts, user_codes

from .. import schema
from ..errors import InputError

#: Values above this are taken as milliseconds, not seconds (1e11 s is the year 5138).
MS_THRESHOLD = 1e11


@dataclass
class RawData:
    """Raw tables read from one or more input files.

    Attributes
    ----------
    points, motion, transitions : pandas.DataFrame
        Schema tables (:data:`emission_ext.schema.POINTS`, ``MOTION``, ``TRANSITIONS``),
        coerced and validated, sorted by ``user_id`` then ``ts``, with a fresh index.
    tz : dict of str to str
        Time zone (IANA name) of each user found; e-mission ``metadata.time_zone`` when
        known, else :data:`emission_ext.schema.DEFAULT_TZ`.
    skipped : int
        Rows/entries dropped because they were malformed (only with ``skip_bad=True``).
    problems : list of InputError
        One error per skipped row/entry, naming file, line/entry and field.
    duplicates : int
        Exact duplicates dropped (same user, same kind of entry, same timestamp and key), which
        are normal in e-mission exports (re-uploads) and overlapping files.
    user_codes : (numpy.ndarray, pandas.Index) or None
        :func:`pipeline.clean.user_codes` of ``points["user_id"]`` (each row's user number and
        the sorted ids), when the reader computed them while finishing the table: hand them to
        :func:`pipeline.segment.segment_user` (``codes=``) with these same, unchanged
        ``points``. None when unknown; every operation that changes ``points`` drops them.
    """

    points: pd.DataFrame = field(default_factory=lambda: schema.empty("points"))
    motion: pd.DataFrame = field(default_factory=lambda: schema.empty("motion"))
    transitions: pd.DataFrame = field(default_factory=lambda: schema.empty("transitions"))
    tz: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    problems: list[InputError] = field(default_factory=list)
    duplicates: int = 0
    user_codes: tuple | None = None

    @property
    def users(self) -> list[str]:
        """Sorted user ids present in any table."""
        ids = set(self.points["user_id"]) | set(self.motion["user_id"]) | set(
            self.transitions["user_id"])
        return sorted(ids)

    def with_user_ids(self, mapping: dict[str, str]) -> "RawData":
        """A copy whose user ids are renamed by ``mapping`` (ids not in it are kept).

        Used to turn e-mission uuids into the experiment's tester ids (the ids the operators'
        card maps use).
        """
        if not mapping:
            return self

        def ren(df: pd.DataFrame) -> pd.DataFrame:
            out = df.copy()
            out["user_id"] = out["user_id"].map(lambda u: mapping.get(u, u)).astype(schema.STR)
            return out

        return RawData(points=ren(self.points), motion=ren(self.motion),
                       transitions=ren(self.transitions),
                       tz={mapping.get(u, u): z for u, z in self.tz.items()},
                       skipped=self.skipped, problems=list(self.problems),
                       duplicates=self.duplicates)

    @classmethod
    def concat(cls, parts: list["RawData"]) -> "RawData":
        """Concatenate several results, dropping rows repeated across them (same table key)."""
        if not parts:
            return cls()
        out = cls(tz={}, problems=[])
        dup = 0
        for name in ("points", "motion", "transitions"):
            frames = [getattr(p, name) for p in parts if len(getattr(p, name))]
            if not frames:
                continue
            df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
            df, n = finish_table(df, name)
            dup += n
            setattr(out, name, df)
        for p in parts:
            for uid, zone in p.tz.items():
                out.tz.setdefault(uid, zone)
            out.problems.extend(p.problems)
        out.skipped = sum(p.skipped for p in parts)
        out.duplicates = sum(p.duplicates for p in parts) + dup
        return out


def finish_table(df: pd.DataFrame | dict, name: str) -> tuple[pd.DataFrame, int]:
    """Coerce to table ``name``, drop repeated keys (keep first), sort by user and time.

    ``df`` may be a dict of equal-length columns: it is emptied once the frame is built, so a
    reader that hands over its only references keeps one copy of the data in memory.
    Returns the validated table and the number of duplicate rows dropped. Vectorised: the
    key columns are factorised to integer codes, sorted only when not already in order, and
    duplicates found by comparing neighbours.
    """
    table, dropped, _ = finish_table_coded(df, name)
    return table, dropped


def finish_table_coded(df: pd.DataFrame | dict, name: str, user_starts=None
                       ) -> tuple[pd.DataFrame, int, tuple[np.ndarray, pd.Index] | None]:
    """:func:`finish_table`, plus the user codes it computed on the way (see
    :attr:`RawData.user_codes`): ``(codes, users)`` of the returned table's ``user_id``, or
    None for a table of fewer than two rows.

    ``user_starts``: the first row of each run of equal user ids, when the caller knows
    the ids are sorted (rising at every run's start, as
    :func:`~emission_ext.io.csv_arrow.user_starts` checked on the parse): the user codes
    are then spelled out from it (:func:`codes_from_starts`) instead of comparing a
    million ids again (~5 ms per 500,000 rows).
    """
    t = schema.table(name)
    own = isinstance(df, dict)  # then the columns are ours alone: no copy of them
    if own:
        cols = df
        df = pd.DataFrame({k: v for k, v in cols.items() if k in t.names}, copy=False)
        cols.clear()
    df = schema.coerce(df[[c for c in df.columns if c in t.names]], name, copy=not own)
    n0 = len(df)
    coded = None
    if n0 > 1:
        keys = ["user_id", "ts"] + [k for k in t.key if k not in ("user_id", "ts")]
        arrs = []
        for k in keys:
            if k == "ts":
                arrs.append(pd.DatetimeIndex(df[k]).as_unit("ns").asi8)
            else:  # = pd.factorize(sort=True), in one pass over ids already in order
                if k == "user_id" and user_starts is not None:  # known runs: no comparisons
                    codes, uniques = codes_from_starts(df[k], user_starts)
                else:
                    codes, uniques = user_codes(df[k])
                if k == "user_id":
                    users = uniques
                arrs.append(codes)
        # lexicographic order of (user, ts, other keys): is it sorted already?
        after = np.zeros(n0 - 1, dtype=bool)  # row i+1 sorts after row i
        tie = np.ones(n0 - 1, dtype=bool)
        for a in arrs:
            after |= tie & (a[1:] > a[:-1])
            tie &= a[1:] == a[:-1]
        same = tie  # rows equal to the previous one on every key (when no sort is needed)
        if not (after | tie).all():
            order = np.lexsort(arrs[::-1])
            arrs = [a[order] for a in arrs]
            df = df.iloc[order]
            same = np.ones(n0 - 1, dtype=bool)
            for a in arrs:
                same &= a[1:] == a[:-1]
        first = arrs[0]  # user codes, in the table's (new) order
        if same.any():
            keep = np.concatenate([[True], ~same])
            df, first = df[keep], first[keep]  # every user keeps a row: the ids stay the same
        coded = (first, users)
    df = df.reset_index(drop=True)
    # the neighbour comparison above just removed every repeated key: when it compared
    # exactly the table's key, validate need not sort the million rows again to look for one
    unique = n0 <= 1 or set(keys) == set(t.key)
    return schema.validate(df, name, check_key=not unique), n0 - len(df), coded


def const_str(value: str, n: int) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """``n`` copies of ``value`` as a :data:`schema.STR` array, built from two buffers.

    Why: a per-point column holding one word (``source`` = ``"csv"``) costs ~0.2 s per million
    rows when made from Python objects; Arrow buffers take a few milliseconds. Falls back to
    an object array (coerced later) when Arrow is unavailable or the data would not fit.
    """
    raw = value.encode("utf-8")
    if n and len(raw) * (n + 1) < 2 ** 31 - 1:
        try:
            import pyarrow as pa

            offsets = np.arange(0, len(raw) * (n + 1), len(raw), dtype=np.int32)
            arr = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(raw * n))
            out = pd.array(arr, dtype=schema.STR)
            if out.dtype == schema.STR:
                return out
        except (ImportError, TypeError, ValueError):
            pass
    return np.full(n, value, dtype=object)


def ms_to_s(v: np.ndarray) -> np.ndarray:
    """Unix times that look like milliseconds (> :data:`MS_THRESHOLD`) divided by 1000."""
    v = np.asarray(v, dtype="float64")
    ms = v > MS_THRESHOLD
    if ms.all():
        return v / 1000.0
    out = v.copy()  # a new array, as np.where made, without a divided copy of every value
    if ms.any():
        out[ms] = v[ms] / 1000.0
    return out


def to_float(values, decimal_comma: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Convert raw values (numbers, numeric strings, None) to float64, vectorised.

    Returns ``(floats, bad)`` where ``bad`` marks values that were present but not numbers
    (``None``/empty become NaN without being marked). With ``decimal_comma``, text such as
    ``"46,15"`` is read as 46.15.
    """
    if not isinstance(values, pd.Series):
        try:  # fast path: numbers, numeric strings and None convert in one C call
            return np.array(values, dtype="float64"), np.zeros(len(values), dtype=bool)
        except (ValueError, TypeError):
            pass
    s = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return np.array(s.to_numpy(dtype="float64", na_value=np.nan), copy=True), \
            np.zeros(len(s), dtype=bool)
    num = pd.to_numeric(s, errors="coerce")
    if decimal_comma and (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
        num = num.where(num.notna(), pd.to_numeric(
            s.astype(str).str.replace(",", ".", regex=False), errors="coerce"))
    v = np.array(num.to_numpy(dtype="float64", na_value=np.nan), dtype="float64", copy=True)
    present = s.notna().to_numpy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        txt = s.astype(str).str.strip().str.lower()
        present = present & ~txt.isin(("", "nan", "null", "none")).to_numpy()
    return v, present & np.isnan(v)


class RowChecker:
    """Collects per-row faults over whole columns, then raises or reports them.

    Parameters
    ----------
    path : str
        File (or origin) named in the messages.
    where : numpy.ndarray or range
        Line number or entry index of each candidate row (a ``range`` for rows numbered in
        steps: no per-row array is made unless a fault is reported).
    unit : str
        ``"line"`` or ``"entry"``, as written in the messages.
    line_of : callable, optional
        Maps an array of ``where`` values to the numbers shown in messages, called only for
        the rows reported (for formats where line numbers are costly to keep for every row).
    """

    def __init__(self, path: str, where: np.ndarray, unit: str = "line", line_of=None):
        self.path, self.unit, self.line_of = str(path), unit, line_of
        self.where = where if isinstance(where, range) else np.asarray(where, dtype="int64")
        self.bad = np.zeros(len(self.where), dtype=bool)
        # per-row texts, allocated at the first fault (a clean million-row file needs none)
        self.field: np.ndarray | None = None
        self.reason: np.ndarray | None = None

    def flag(self, mask: np.ndarray, field_name: str, reason, values=None) -> None:
        """Mark rows in ``mask`` bad with ``field_name``/``reason`` (first fault of a row wins).

        ``reason`` may contain ``{value}``, filled from ``values`` (a Series, array or list
        aligned with the rows) for the flagged rows only.
        """
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        if not mask.any():
            return
        self.bad |= mask
        if self.field is None:
            self.field = np.full(len(self.where), None, dtype=object)
            self.reason = np.full(len(self.where), None, dtype=object)
        self.field[mask] = field_name
        if values is not None and "{value" in reason:
            idx = np.flatnonzero(mask)  # only the faulty rows are turned into Python objects
            vals = values.iloc[idx].tolist() if isinstance(values, pd.Series) else \
                [values[i] for i in idx]
            self.reason[mask] = [reason.format(value=v) for v in vals]
        else:
            self.reason[mask] = reason

    def check_coords(self, lat: np.ndarray, lon: np.ndarray, lat_raw=None, lon_raw=None,
                     lat_field: str = "lat", lon_field: str = "lon",
                     lat_bad: np.ndarray | None = None, lon_bad: np.ndarray | None = None) -> None:
        """Missing, non-numeric, NaN and out-of-range latitude/longitude."""
        for v, raw, fname, lim, notnum in ((lat, lat_raw, lat_field, 90.0, lat_bad),
                                           (lon, lon_raw, lon_field, 180.0, lon_bad)):
            if notnum is not None:
                self.flag(notnum, fname, "not a number: {value!r}", raw)
            self.flag(np.isnan(v), fname, "missing or NaN coordinate")
            self.flag(~np.isfinite(v) | (np.abs(v) > lim), fname,
                      f"coordinate {{value}} outside [-{lim:g}, {lim:g}]", v)

    def report(self, skip_bad: bool) -> tuple[np.ndarray, list[InputError]]:
        """Raise the first fault, or (``skip_bad``) return the keep-mask and one error per row."""
        if not self.bad.any():
            return np.ones(len(self.bad), dtype=bool), []
        idx = np.flatnonzero(self.bad)
        w = self.where
        where = (w.start + idx * w.step) if isinstance(w, range) else w[idx]
        order = np.argsort(where, kind="stable")
        idx, where = idx[order], where[order]
        if not skip_bad:
            idx, where = idx[:1], where[:1]
        shown = where if self.line_of is None else self.line_of(where)
        errs = [InputError(self.path, str(self.reason[i]), None if n is None else int(n),
                           self.field[i], unit=self.unit) for i, n in zip(idx, shown)]
        if not skip_bad:
            raise errs[0]
        return ~self.bad, errs


def parse_times(values, *, iso_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps as unix seconds (float64) from unix seconds/milliseconds or ISO-8601 text.

    Returns ``(seconds, bad)``: ``bad`` marks values present but unreadable. Naive ISO times
    are taken as UTC. Vectorised: numbers first, the rest parsed as ISO-8601 in one call.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    s = s.reset_index(drop=True)
    if not iso_only and pd.api.types.is_numeric_dtype(s.dtype) \
            and not pd.api.types.is_bool_dtype(s.dtype):
        out = ms_to_s(s.to_numpy(dtype="float64", na_value=np.nan))  # a new array
        bad = np.isinf(out)
        if bad.any():
            out[bad] = np.nan
        return out, bad
    present = s.notna().to_numpy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        present = present & s.astype(str).str.strip().ne("").to_numpy()
    out = np.full(len(s), np.nan)
    if not iso_only:
        num = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        out = np.array(ms_to_s(num), copy=True)
    rest = present & np.isnan(out)
    if rest.any():
        sub = s[rest].astype(str).str.strip()
        dt = pd.to_datetime(sub, utc=True, errors="coerce", format="ISO8601")
        out[rest] = schema.to_unix(dt)
    bad = present & ~np.isfinite(out)
    out[~np.isfinite(out)] = np.nan
    return out, bad
