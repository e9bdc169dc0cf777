"""The embedded store: Parquet files under a data directory, one file per table and user.

Why: a tester's laptop or a small server must run the product with no database server. One
Parquet file per (table, user) makes the user the unit of work and of atomicity: a write builds
the user's whole new file under a temporary name and publishes it with ``os.replace``, so a
reader (or a crashed writer) never sees half a file, and a re-import only rewrites the users it
touches. Layout (user ids percent-encoded for the file system; leading zeros kept)::

    <data-dir>/<table>/user_id=<id>/data.parquet   rows of one user (pyarrow, zstd)
    <data-dir>/_state/<id>.json                     per-stage state of one user
    <data-dir>/_locks/<id>.lock                      processing lock (pid, host, time)
    <data-dir>/_locks/<id>.write                     short write lock (flock) serialising writers

Each data file carries a random version token in its key-value metadata; :meth:`version`
reads only the footer, so the runner can tell cheaply whether a user's inputs changed.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import schema
from ..errors import StoreError
from .base import (LockInfo, Store, busy_error, check_table, check_user,
                   is_stale, empty_like, merge_since, new_rows, prepare, time_filter)

try:  # POSIX advisory locks; released by the kernel if the process dies
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

DATA_FILE = "data.parquet"
VERSION_KEY = b"emission_ext.version"
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

_ARROW = {schema.UTC_TS: pa.timestamp("ns", tz="UTC"), schema.STR: pa.string(),
          schema.F64: pa.float64(), schema.I64: pa.int64(), schema.BYTES: pa.binary()}


def encode_user(user_id: str) -> str:
    """File-system-safe, reversible form of a user id (``%XX`` for anything but
    ``[A-Za-z0-9_-]``)."""
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in user_id)


def decode_user(name: str) -> str:
    from urllib.parse import unquote

    return unquote(name)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Publish a file atomically: ``write(tmp_path)`` fills a temporary file beside ``path``,
    which is flushed to disk and renamed onto ``path``; on any error the temporary file goes."""
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}-{path.name}"
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


class ParquetStore(Store):
    """Tables as Parquet files under ``root`` (created when missing).

    Parameters
    ----------
    root : str or Path
        The data directory (``--data-dir``).
    """

    kind = "parquet"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root}: data directory is a file")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot create the data directory ({exc.strerror})") from None

    def __repr__(self) -> str:
        return f"ParquetStore({str(self.root)!r})"

    def describe(self) -> str:
        return f"parquet store {self.root}"

    # -- paths ---------------------------------------------------------------------------
    def _user_dir(self, table: str, user_id: str) -> Path:
        return self.root / table / f"user_id={encode_user(user_id)}"

    def _file(self, table: str, user_id: str) -> Path:
        return self._user_dir(table, user_id) / DATA_FILE

    def _lock_dir(self) -> Path:
        d = self.root / "_locks"
        d.mkdir(exist_ok=True)
        return d

    @contextmanager
    def _write_lock(self, user_id: str) -> Iterator[None]:
        """Serialise writers of one user (read-modify-write of files and state)."""
        path = self._lock_dir() / f"{encode_user(user_id)}.write"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    # -- file I/O ------------------------------------------------------------------------
    @staticmethod
    def _to_arrow(table: str, df: pd.DataFrame, token: str) -> pa.Table:
        tab = pa.Table.from_pandas(df, preserve_index=False)
        t = schema.TABLES.get(table)
        if t is not None:
            fields = []
            for f in tab.schema:
                want = None
                if f.name in t.names:
                    want = _ARROW.get(t.column(f.name).dtype)
                fields.append(pa.field(f.name, want) if want is not None and want != f.type else f)
            target = pa.schema(fields, metadata=tab.schema.metadata)
            if target != tab.schema:
                tab = tab.cast(target)
        meta = dict(tab.schema.metadata or {})
        meta[VERSION_KEY] = token.encode()
        return tab.replace_schema_metadata(meta)

    def _write_file(self, table: str, user_id: str, df: pd.DataFrame) -> None:
        """Publish ``df`` as the user's whole file (or remove the file when ``df`` is empty)."""
        path = self._file(table, user_id)
        if len(df) == 0:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tab = self._to_arrow(table, df, uuid.uuid4().hex)
        atomic_write(path, lambda tmp: pq.write_table(tab, tmp, compression="zstd"))

    def _read_file(self, path: Path, columns: list[str] | None = None) -> pa.Table | None:
        try:
            return pq.read_table(path, columns=columns)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid) as exc:
            if isinstance(exc, OSError) and exc.errno == errno.ENOENT:
                return None
            raise StoreError(f"{path}: unreadable Parquet file ({exc})") from None

    @staticmethod
    def _to_frame(table: str, tabs: list[pa.Table]) -> pd.DataFrame:
        tabs = [t for t in tabs if t is not None]
        if not tabs:
            return schema.empty(table) if table in schema.TABLES else pd.DataFrame({"user_id": pd.Series([], dtype=schema.STR)})
        tab = tabs[0] if len(tabs) == 1 else pa.concat_tables(tabs, promote_options="permissive")
        tab = tab.replace_schema_metadata(None)
        df = tab.to_pandas()
        if table in schema.TABLES:
            df = schema.coerce(df, table)
        return df

    # -- Store API -----------------------------------------------------------------------
    def _append_user(self, table: str, user_id: str, part: pd.DataFrame) -> int:
        with self._write_lock(user_id):
            existing = self._read_file(self._file(table, user_id))
            old = self._to_frame(table, [existing]) if existing is not None else None
            key = list(schema.table(table).key)
            keys = pd.MultiIndex.from_frame(old[key]) if old is not None and len(old) else None
            fresh = new_rows(table, part, keys)
            if len(fresh) == 0:
                return 0
            out = fresh if old is None or len(old) == 0 else pd.concat([old, fresh], ignore_index=True)
            self._write_file(table, user_id, out)
            return len(fresh)

    def read(self, table: str, user_ids: Iterable[str] | None = None, start=None,
             end=None) -> pd.DataFrame:
        check_table(table)
        if user_ids is None:
            users = self.users(table)
        else:
            users = [check_user(u) for u in ([user_ids] if isinstance(user_ids, str) else user_ids)]
        tabs = [self._read_file(self._file(table, u)) for u in users]
        return time_filter(table, self._to_frame(table, tabs), start, end)

    def replace_user(self, table: str, user_id: str, df: pd.DataFrame, since=None) -> int:
        check_user(user_id)
        df = prepare(table, df) if len(df) else empty_like(table, df)
        if len(df) and not (df["user_id"] == user_id).all():
            raise StoreError(f"{table}: replace_user({user_id!r}) given rows of other users")
        with self._write_lock(user_id):
            if since is not None:
                old = self._to_frame(table, [self._read_file(self._file(table, user_id))])
                df = merge_since(table, old, df, since)
            self._write_file(table, user_id, df)
        return len(df)

    def users(self, table: str = "points") -> list[str]:
        check_table(table)
        d = self.root / table
        if not d.is_dir():
            return []
        out = []
        for sub in d.iterdir():
            if sub.name.startswith("user_id=") and (sub / DATA_FILE).exists():
                out.append(decode_user(sub.name[len("user_id="):]))
        return sorted(out)

    def tables(self) -> list[str]:
        """Names of the tables present in the data directory."""
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(("_", ".")))

    def _delete_user(self, user_id: str) -> None:
        with self._write_lock(user_id):
            for table in self.tables():
                d = self._user_dir(table, user_id)
                if d.exists():
                    # unpublish the data file first (atomic), then clean the directory
                    try:
                        (d / DATA_FILE).unlink()
                    except FileNotFoundError:
                        pass
                    shutil.rmtree(d, ignore_errors=True)
            state = self._state_file(user_id)
            if state.exists():
                state.unlink()

    def version(self, table: str, user_id: str) -> str:
        check_table(table)
        path = self._file(table, user_id)
        try:
            meta = pq.read_metadata(path).metadata or {}
        except FileNotFoundError:
            return ""
        except (OSError, pa.ArrowInvalid) as exc:
            raise StoreError(f"{path}: unreadable Parquet file ({exc})") from None
        return meta.get(VERSION_KEY, b"?").decode()

    # -- state ---------------------------------------------------------------------------
    def _state_file(self, user_id: str) -> Path:
        return self.root / "_state" / f"{encode_user(user_id)}.json"

    def _load_state(self, user_id: str) -> dict:
        path = self._state_file(user_id)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise StoreError(f"{path}: corrupt state file ({exc})") from None

    def get_state(self, user_id: str, stage: str) -> dict:
        check_user(user_id)
        return dict(self._load_state(user_id).get(stage, {}))

    def set_state(self, user_id: str, stage: str, state: dict) -> None:
        check_user(user_id)
        with self._write_lock(user_id):
            all_state = self._load_state(user_id)
            all_state[stage] = state
            path = self._state_file(user_id)
            path.parent.mkdir(exist_ok=True)
            atomic_write_bytes(path, json.dumps(all_state, sort_keys=True, default=str).encode())

    # -- lock ----------------------------------------------------------------------------
    def _lock_file(self, user_id: str) -> Path:
        return self._lock_dir() / f"{encode_user(user_id)}.lock"

    @staticmethod
    def _read_lock(path: Path) -> LockInfo | None:
        try:
            return LockInfo.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            # unreadable lock (damaged by hand or by the file system): treat as ancient
            return LockInfo("corrupt", -1, "?", 0.0)

    def _acquire(self, user_id: str, info: LockInfo, stale_after_s: float) -> None:
        path = self._lock_file(user_id)
        # the lock file appears complete or not at all: write a private file, then hard-link
        # it to the lock name (atomic, fails when the name exists)
        mine = path.parent / f".new-{info.token}"
        mine.write_bytes(json.dumps(info.to_dict()).encode())
        try:
            self._take(user_id, path, mine, stale_after_s)
        finally:
            mine.unlink()

    def _take(self, user_id: str, path: Path, mine: Path, stale_after_s: float) -> None:
        for _ in range(3):
            try:
                os.link(mine, path)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise StoreError(f"{path}: cannot create the lock file ({exc.strerror}); "
                                     "the data directory needs a file system with hard links") from None
                held = self._read_lock(path)
                if held is None:
                    continue  # released meanwhile: retry
                if not is_stale(held, stale_after_s):
                    raise busy_error(user_id, held) from None
                # take over: move the stale lock aside (atomic, only one taker succeeds)
                aside = path.parent / f".stale-{uuid.uuid4().hex}"
                try:
                    os.rename(path, aside)
                except FileNotFoundError:
                    continue
                moved = self._read_lock(aside)
                if moved is not None and moved.token != held.token:
                    # someone else took it over meanwhile: put their lock back, we lose
                    try:
                        os.link(aside, path)
                    except FileExistsError:
                        pass
                    aside.unlink()
                    raise busy_error(user_id, moved) from None
                aside.unlink()
                continue
            return
        raise busy_error(user_id, self._read_lock(path))

    def _release(self, user_id: str, info: LockInfo) -> None:
        path = self._lock_file(user_id)
        held = self._read_lock(path)
        if held is not None and held.token == info.token:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
