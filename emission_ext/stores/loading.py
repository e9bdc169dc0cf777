"""Putting what a reader returned (``RawData``) into a store.

Why: the ``import`` command, the MongoDB sync and the demo all load raw points, motion and
transitions the same way; this one function does it, so counts and the remembered time zone
are identical whichever way the data came in.
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from .base import AppendResult, Store

#: Raw tables a reader produces, in the order they are loaded.
RAW_TABLES = ("points", "motion", "transitions")

#: State "stage" under which a user's time zone seen at import is kept.
PROFILE_STATE = "profile"


def merge_counts(totals: dict[str, AppendResult], more: Mapping[str, AppendResult]) -> dict:
    """Add ``more`` into ``totals`` (in place) and return it."""
    for t, r in more.items():
        prev = totals.get(t, AppendResult(0, 0))
        totals[t] = AppendResult(prev.added + r.added, prev.present + r.present)
    return totals


def _tz_by_user(raw, users: list[str]) -> dict[str, str]:
    tz = getattr(raw, "tz", None)
    if not tz:
        return {}
    if isinstance(tz, str):
        return {u: tz for u in users}
    if isinstance(tz, Mapping):
        return {str(u): str(z) for u, z in tz.items() if z}
    return {}


def load_raw(store: Store, raw) -> dict[str, AppendResult]:
    """Append a reader's ``points``, ``motion`` and ``transitions`` to ``store``.

    Returns rows added / already present per table. The time zone the reader found (``raw.tz``,
    a zone name or a ``{user_id: zone}`` mapping) is remembered in each user's state
    (``profile``) unless one is already known; the runner uses it when no tester profile gives
    one.
    """
    out: dict[str, AppendResult] = {}
    users: set[str] = set()
    for table in RAW_TABLES:
        df = getattr(raw, table, None)
        if df is None or not isinstance(df, pd.DataFrame):
            continue
        out[table] = store.append(table, df)
        if len(df) and "user_id" in df.columns:
            users.update(df["user_id"].astype(str).unique().tolist())
    for user, tz in _tz_by_user(raw, sorted(users)).items():
        if not store.get_state(user, PROFILE_STATE).get("tz"):
            store.set_state(user, PROFILE_STATE, {"tz": tz})
    return out
