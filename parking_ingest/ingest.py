"""Parking files -> records: the shared ingest steps with the parking format and converter.

Why: ``parking_ingest`` owns its format (``schemas/parking_sessions.json``) and converter;
the reading, row checks, card-map lookup and quarantine are the shared ones of
:mod:`yelo_ingest.rows` / :mod:`yelo_ingest.ingest` (one implementation for both operators).
"""
from __future__ import annotations

import pandas as pd

from emission_ext import schema
from yelo_ingest.ingest import IngestResult, ingest_bytes as _ingest_bytes
from yelo_ingest.refs import ReferenceIndex
from yelo_ingest.rows import FormatSpec, load_format

from .records import CONVERTERS


def parking_formats() -> list[FormatSpec]:
    """The parking sessions format and the (shared) card map format."""
    return [load_format("parking_ingest", "parking_sessions"), load_format("yelo_ingest", "card_map")]


def ingest_bytes(raw: bytes, path: str, *, ref: ReferenceIndex, card_map: pd.DataFrame,
                 known_users=None, tz: str = schema.DEFAULT_TZ) -> IngestResult:
    """Validate one parking file (sessions or card map) and convert its good rows; see
    :func:`yelo_ingest.ingest.ingest_bytes` for the parameters."""
    return _ingest_bytes(raw, path, ref=ref, card_map=card_map, formats=parking_formats(),
                         converters=CONVERTERS, known_users=known_users, tz=tz)
