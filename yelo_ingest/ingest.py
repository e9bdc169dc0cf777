"""From one operator file's bytes to records, a problem report and a quarantine (pure).

Why: the Yélo and parking ingest differ only in their formats and row converters; the steps
(parse, recognise the format, check rows, resolve testers through the card map, convert,
collect the bad rows) are the same and live here once. The ``ingest`` command adds the I/O:
reading files, archiving them, writing the quarantine and the store.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from emission_ext import schema
from emission_ext.errors import InputError

from . import cardmap
from .records import CONVERTERS as YELO_CONVERTERS
from .refs import ReferenceIndex
from .rows import (LINE_COLUMN, FormatSpec, ParsedFile, RowCheck, check_rows, load_format,
                   move_to_bad, parse, quarantine_frame)

Converter = Callable[[pd.DataFrame, np.ndarray, ReferenceIndex], pd.DataFrame]


def yelo_formats() -> list[FormatSpec]:
    """The Yélo file formats and the card map, from ``yelo_ingest/schemas``."""
    return [load_format("yelo_ingest", n) for n in ("yelo_validations", "yelo_bikeshare",
                                                     "yelo_carshare", "card_map")]


@dataclass
class IngestResult:
    """What one file gave.

    Attributes
    ----------
    path : str
    format : str
        Name of the recognised format (``yelo_validations``, ``card_map``...).
    records : DataFrame
        Schema ``records`` rows (empty for a card map).
    card_map : DataFrame or None
        The valid card map rows (for a card map file).
    problems : DataFrame
        ``file, line, field, value, reason``.
    quarantine : DataFrame
        Bad rows in the file's own columns plus ``reject_reason`` and ``_line``.
    stats : dict
        ``rows`` (data rows read), ``good``, ``bad``, ``duplicates`` (identical repeated rows
        dropped), ``encoding``, ``separator``.
    """

    path: str
    format: str
    records: pd.DataFrame
    card_map: pd.DataFrame | None
    problems: pd.DataFrame
    quarantine: pd.DataFrame
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the file had no problem at all."""
        return len(self.problems) == 0


def detect_format(parsed: ParsedFile, formats: Sequence[FormatSpec]) -> FormatSpec:
    """The format whose required fields the header has (file name pattern breaks ties, and
    decides alone when the header matches nothing, e.g. a header-less or mangled file).

    Raises
    ------
    InputError
        When neither the header nor the file name tells.
    """
    cols = set(parsed.columns)
    name = PurePath(parsed.path).name
    full = [f for f in formats if f.required and set(f.required) <= cols]
    by_name = [f for f in formats if f.file_pattern and fnmatch.fnmatch(name, f.file_pattern + "*")]
    if len(full) == 1:
        return full[0]
    if len(full) > 1:
        both = [f for f in full if f in by_name]
        if both:
            return both[0]
        return max(full, key=lambda f: len(cols & set(f.names)))
    if by_name:
        return by_name[0]
    known = ", ".join(f"{f.name} ({f.file_pattern}.csv)" for f in formats)
    raise InputError(parsed.path, f"cannot tell which operator file this is from its header or name; expected one of: {known}",
                     line=1 if parsed.columns else None)


def ingest_bytes(raw: bytes, path: str, *, ref: ReferenceIndex, card_map: pd.DataFrame,
                 formats: Sequence[FormatSpec] | None = None,
                 converters: Mapping[str, Converter] | None = None,
                 known_users=None, tz: str = schema.DEFAULT_TZ) -> IngestResult:
    """Validate one operator file and convert its good rows.

    Parameters
    ----------
    raw : bytes
        The file exactly as received.
    path : str
        Name used in the problem report.
    ref : ReferenceIndex
        Known stops/routes/stations/car parks (:func:`yelo_ingest.refs.build_reference_index`).
    card_map : DataFrame
        Current card map (:func:`yelo_ingest.cardmap.normalise_card_map`); records whose
        account it does not map to a tester on the record's day are bad rows.
    formats, converters
        Default: the Yélo formats and converters. ``parking_ingest`` passes its own.
    known_users : array-like of str or None
        Tester ids, to check the card map's ``user_id`` (None: not checked).
    tz : str
        Time zone of naive timestamps.
    """
    formats = list(formats) if formats is not None else yelo_formats()
    converters = dict(converters) if converters is not None else dict(YELO_CONVERTERS)
    parsed = parse(raw, path)
    if not parsed.columns:  # empty file: nothing to recognise, nothing lost
        return IngestResult(path, "unknown", schema.empty("records"), None, parsed.problems,
                            quarantine_frame(RowCheck(parsed.frame, parsed.frame, parsed.problems), parsed),
                            _stats(parsed, None))
    spec = detect_format(parsed, formats)
    check = check_rows(parsed, spec, ref.id_sets(), tz=tz)
    if spec.kind == "card_map":
        check = cardmap.check_card_map(check, parsed, known_users)
        cm = cardmap.normalise_card_map(check.good)
        return IngestResult(path, spec.name, schema.empty("records"), cm, check.problems,
                            quarantine_frame(check, parsed), _stats(parsed, check))
    good = check.good
    users, why = cardmap.map_accounts(good[spec.account_field], good[spec.time_field], spec.operator,
                                      card_map, tz=tz)
    unmapped = why != ""
    check = move_to_bad(check, parsed, unmapped, spec.account_field, why[unmapped],
                        good[spec.account_field].to_numpy()[unmapped])
    users = users[~unmapped]
    if spec.name not in converters:
        raise InputError(path, f"format {spec.name} is not a {'/'.join(sorted({f.operator or '' for f in formats}))} file")
    records = converters[spec.name](check.good, users, ref)
    return IngestResult(path, spec.name, records, None, check.problems, quarantine_frame(check, parsed),
                        _stats(parsed, check))


def _stats(parsed: ParsedFile, check: RowCheck | None) -> dict:
    n_rows = len(parsed.frame) + len(parsed.malformed)
    good = 0 if check is None else len(check.good)
    dups = 0 if check is None else check.duplicates
    return {"rows": n_rows, "good": good, "bad": n_rows - good - dups, "duplicates": dups,
            "encoding": parsed.encoding, "separator": parsed.separator}


def merge_records(existing: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Upsert ``new`` records into ``existing`` on the stable key ``(source, record_id)``.

    A record already present is replaced by the newer row (so a corrected, re-ingested row
    wins) but keeps its fusion result (``trip_id``, ``section_id``) when the new row has none.

    Returns
    -------
    (merged, added, updated)
    """
    key = list(schema.RECORDS.key)
    new = new.drop_duplicates(key, keep="last")
    if existing is None or not len(existing):
        return schema.coerce(new.reset_index(drop=True), "records"), len(new), 0
    ex = schema.coerce(existing, "records")
    old_idx = pd.MultiIndex.from_frame(ex[key])
    new_idx = pd.MultiIndex.from_frame(new[key])
    present = new_idx.isin(old_idx)
    new = new.copy()
    if present.any():
        kept = ex.set_index(key).reindex(new_idx[present])
        for c in ("trip_id", "section_id"):
            cur = new.loc[present, c]
            new.loc[present, c] = cur.where(cur.notna(), kept[c].to_numpy())
    remaining = ex[~old_idx.isin(new_idx)]
    merged = pd.concat([remaining, new], ignore_index=True)
    merged = merged.sort_values(["user_id", "start_ts", "source", "record_id"], kind="stable").reset_index(drop=True)
    return schema.coerce(merged, "records"), int((~present).sum()), int(present.sum())


__all__ = ["IngestResult", "detect_format", "ingest_bytes", "merge_records", "yelo_formats", "LINE_COLUMN"]
