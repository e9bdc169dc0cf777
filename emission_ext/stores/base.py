"""The store interface: what the runner, the CLI and the API may ask of any data store.

Why: the product runs on a laptop (Parquet files, no server) and on a TRACES/e-mission
deployment (MongoDB). Everything above the stores codes against this one small abstract class,
so a command or a pipeline stage never knows where the tables live. The helpers at the bottom
(key deduplication, time columns, the lock record and its staleness rule) are shared by every
implementation so that both stores behave identically; one contract test suite checks that.

Semantics every implementation honours
--------------------------------------
* Tables are those of :mod:`emission_ext.schema` (frames are coerced to the declared dtypes)
  plus *auxiliary* tables (any other ``[a-z_]+`` name, e.g. the segment stage's
  ``labelled_points``) that are stored as given and can only be replaced, never appended.
* Every row belongs to one user (``user_id`` column); the unit of atomicity is one
  (table, user): a reader sees a user's rows either before or after a write, never half of it.
* :meth:`Store.append` is idempotent: rows whose table key (``schema.Table.key``) is already
  present are not added again.
* :meth:`Store.version` changes whenever a user's rows of a table change; the runner uses it
  as the fingerprint of a stage's inputs.
"""
from __future__ import annotations

import os
import re
import socket
import time
import uuid
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from .. import schema
from ..errors import StoreError

#: Column used by ``read(start=, end=)`` for each schema table (rows with start <= col < end).
TIME_COLUMN: dict[str, str] = {
    "points": "ts", "motion": "ts", "transitions": "ts", "places": "enter_ts",
    "trips": "start_ts", "sections": "start_ts", "records": "start_ts",
    "labelled_points": "ts", "removed_points": "ts",
}

#: A lock older than this (seconds) is stale even when its owner cannot be checked (other host).
DEFAULT_STALE_AFTER_S = 6 * 3600.0

_AUX_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class AppendResult:
    """Rows added by :meth:`Store.append` and rows that were already present (duplicates)."""

    added: int
    present: int


def check_table(name: str) -> schema.Table | None:
    """Return the schema table called ``name``, ``None`` for a valid auxiliary table name, or
    raise :class:`StoreError`."""
    if name in schema.TABLES:
        return schema.TABLES[name]
    if not isinstance(name, str) or not _AUX_NAME.match(name):
        raise StoreError(f"invalid table name {name!r}")
    return None


def check_user(user_id) -> str:
    """User ids are non-empty strings; a leading zero is part of the id."""
    if not isinstance(user_id, str) or not user_id:
        raise StoreError(f"invalid user id {user_id!r}: user ids are non-empty strings")
    return user_id


def prepare(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Coerce a frame to its schema table (auxiliary tables: only ``user_id`` is required and
    made a string). Raises :class:`~emission_ext.errors.SchemaError` on a bad frame."""
    t = check_table(table)
    if t is not None:
        return schema.coerce(df, table)
    if "user_id" not in df.columns:
        raise StoreError(f"{table}: frames written to a store need a user_id column")
    out = df.copy()
    out["user_id"] = out["user_id"].astype(schema.STR)
    for c in out.columns:  # one timestamp type everywhere: ns, UTC
        if isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].dt.tz_convert("UTC").astype(schema.UTC_TS)
        elif pd.api.types.is_datetime64_dtype(out[c].dtype):
            out[c] = out[c].dt.tz_localize("UTC").astype(schema.UTC_TS)
    return out.reset_index(drop=True)


def empty_like(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """A typed empty frame for ``table`` (auxiliary tables: ``df``'s columns, no rows)."""
    if check_table(table) is not None:
        return schema.empty(table)
    out = df.iloc[0:0].copy()
    if "user_id" not in out.columns:
        out["user_id"] = pd.Series([], dtype=schema.STR)
    return out


def key_index(df: pd.DataFrame, key: Iterable[str]) -> pd.MultiIndex:
    """The rows' keys as a MultiIndex (vectorised membership tests with ``isin``)."""
    key = list(key)
    return pd.MultiIndex.from_frame(df[key].reset_index(drop=True))


def new_rows(table: str, df: pd.DataFrame, existing_keys: pd.MultiIndex | None) -> pd.DataFrame:
    """Rows of ``df`` (already prepared) whose key is neither duplicated within ``df`` nor in
    ``existing_keys``."""
    key = list(schema.table(table).key)
    df = df.drop_duplicates(subset=key, keep="first")
    if existing_keys is None or len(existing_keys) == 0 or len(df) == 0:
        return df.reset_index(drop=True)
    mine = key_index(df, key)
    keep = ~np.asarray(mine.isin(existing_keys))
    return df.loc[keep].reset_index(drop=True)


def time_filter(table: str, df: pd.DataFrame, start, end) -> pd.DataFrame:
    """Rows with ``start <= time column < end`` (either bound may be ``None``)."""
    if start is None and end is None:
        return df
    col = TIME_COLUMN.get(table)
    if col is None or col not in df.columns:
        raise StoreError(f"table {table} has no time column to filter on")
    s = df[col]
    mask = np.ones(len(df), dtype=bool)
    if start is not None:
        mask &= (s >= to_utc(start)).to_numpy(dtype=bool, na_value=False)
    if end is not None:
        mask &= (s < to_utc(end)).to_numpy(dtype=bool, na_value=False)
    return df.loc[mask].reset_index(drop=True)


def merge_since(table: str, old: pd.DataFrame, new: pd.DataFrame, since) -> pd.DataFrame:
    """The rows a ``replace_user(..., since=)`` leaves: ``old`` rows before ``since`` (rows with
    a null time count as before) whose key is not in ``new``, followed by ``new``."""
    if len(old) == 0:
        return new
    col = TIME_COLUMN.get(table)
    if col is None or col not in old.columns:
        raise StoreError(f"table {table} has no time column: replace it whole (since=None)")
    before = ~(old[col] >= to_utc(since)).to_numpy(dtype=bool, na_value=False)
    keep = old.loc[before].reset_index(drop=True)
    t = schema.TABLES.get(table)
    if t is not None and len(new) and len(keep):
        key = list(t.key)
        keep = keep.loc[~np.asarray(key_index(keep, key).isin(key_index(new, key)))]
    if len(new) == 0:
        return keep.reset_index(drop=True)
    return pd.concat([keep, new], ignore_index=True)


def to_utc(value) -> pd.Timestamp:
    """A bound given as a Timestamp, datetime, ISO string or unix seconds, as a UTC Timestamp."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return pd.Timestamp(float(value), unit="s", tz="UTC")
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# --------------------------------------------------------------------------------- locks


@dataclass(frozen=True)
class LockInfo:
    """Who holds a user lock: a random token, the process id and host, and when (unix s)."""

    token: str
    pid: int
    host: str
    created: float

    @classmethod
    def mine(cls) -> "LockInfo":
        return cls(uuid.uuid4().hex, os.getpid(), socket.gethostname(), time.time())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LockInfo":
        return cls(str(d["token"]), int(d["pid"]), str(d["host"]), float(d["created"]))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(info: LockInfo, stale_after_s: float, now: float | None = None) -> bool:
    """A lock is stale when its process is gone (same host) or it is older than
    ``stale_after_s`` (any host: a crashed machine never comes back to release it)."""
    now = time.time() if now is None else now
    if info.host == socket.gethostname() and not pid_alive(info.pid):
        return True
    return now - info.created > stale_after_s


def busy_error(user_id: str, info: LockInfo | None) -> StoreError:
    who = f" (pid {info.pid} on {info.host})" if info is not None else ""
    return StoreError(f"user {user_id} is being processed by another run{who}")


# ----------------------------------------------------------------------------- the store


class Store(ABC):
    """Abstract store of the product's tables, partitioned by user.

    Implementations: :class:`emission_ext.stores.parquet.ParquetStore` (embedded default) and
    :class:`emission_ext.stores.mongo.MongoStore` (e-mission deployment). Instances are
    picklable (they reconnect after unpickling) so executors can ship them to workers.
    """

    #: a short name shown in messages ("parquet", "mongo")
    kind: str = ""

    # -- tables ------------------------------------------------------------------------
    def append(self, table: str, df: pd.DataFrame) -> AppendResult:
        """Add the rows of ``df`` whose key is not yet stored; return counts.

        Only schema tables can be appended to (their key deduplicates). Rows may belong to
        several users; each user's part is written atomically by :meth:`_append_user`.
        """
        if check_table(table) is None:
            raise StoreError(f"{table}: auxiliary tables can only be replaced, not appended to")
        if len(df) == 0:
            return AppendResult(0, 0)
        df = prepare(table, df)
        added = sum(self._append_user(table, check_user(user_id), part)
                    for user_id, part in df.groupby("user_id", sort=True))
        return AppendResult(added, len(df) - added)

    @abstractmethod
    def _append_user(self, table: str, user_id: str, part: pd.DataFrame) -> int:
        """Atomically add the rows of one user's prepared ``part`` whose key is new; return
        how many were added."""

    @abstractmethod
    def read(self, table: str, user_ids: Iterable[str] | None = None, start=None,
             end=None) -> pd.DataFrame:
        """Rows of ``table`` for ``user_ids`` (all users when ``None``), optionally limited to
        ``start <= time < end`` on the table's time column (:data:`TIME_COLUMN`). A missing
        table gives the typed empty frame."""

    @abstractmethod
    def replace_user(self, table: str, user_id: str, df: pd.DataFrame, since=None) -> int:
        """Atomically replace ``user_id``'s rows of ``table`` by ``df``; return rows stored.

        With ``since``, only the rows whose time column is ``>= since`` are replaced; earlier
        rows are kept (unless ``df`` holds a row with the same key). Rows of ``df`` that belong
        to another user raise :class:`StoreError`.
        """

    @abstractmethod
    def users(self, table: str = "points") -> list[str]:
        """Sorted ids of the users with rows in ``table``."""

    def delete_user(self, user_id: str) -> None:
        """Remove a user's rows from every table and their state.

        Takes the user's lock first: deleting a user while a run processes them raises
        :class:`StoreError` ("being processed by another run") instead of racing the run.
        """
        with self.lock(check_user(user_id)):
            self._delete_user(user_id)

    @abstractmethod
    def _delete_user(self, user_id: str) -> None:
        """Remove the user's rows and state (the caller holds the user's lock)."""

    @abstractmethod
    def version(self, table: str, user_id: str) -> str:
        """An opaque token that changes whenever ``user_id``'s rows of ``table`` change
        (``""`` when the user has no rows)."""

    # -- per-user, per-stage state -------------------------------------------------------
    @abstractmethod
    def get_state(self, user_id: str, stage: str) -> dict:
        """The JSON-able dict last saved by :meth:`set_state` (``{}`` when none)."""

    @abstractmethod
    def set_state(self, user_id: str, stage: str, state: dict) -> None:
        """Save a stage's state for a user (atomically)."""

    # -- per-user lock ---------------------------------------------------------------------
    @abstractmethod
    def _acquire(self, user_id: str, info: LockInfo, stale_after_s: float) -> None:
        """Take the lock or raise :class:`StoreError` (taking over a stale lock)."""

    @abstractmethod
    def _release(self, user_id: str, info: LockInfo) -> None:
        """Release the lock if ``info`` still holds it."""

    @contextmanager
    def lock(self, user_id: str, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> Iterator[LockInfo]:
        """Hold ``user_id``'s processing lock for the ``with`` block.

        A second holder gets :class:`StoreError` "user X is being processed by another run".
        A lock left by a crashed process (same host, process gone) or older than
        ``stale_after_s`` seconds is taken over.
        """
        check_user(user_id)
        info = LockInfo.mine()
        self._acquire(user_id, info, stale_after_s)
        try:
            yield info
        finally:
            self._release(user_id, info)

    def close(self) -> None:  # pragma: no cover - trivial default
        """Release connections (no-op for file stores)."""

    def describe(self) -> str:
        """Where the data lives, for messages."""
        return self.kind
