"""The MongoDB store: this project's tables next to a TRACES/e-mission deployment's data.

Why: in production the raw phone data already lives in the e-mission MongoDB
(``Stage_timeseries``). This store reads those raw entries incrementally (by
``metadata.write_ts``, remembering a high-water mark per user in the state collection),
converts them with :func:`emission_ext.io.emission.entries_to_raw`, and keeps the product's
own tables in its own collections (prefix ``emission_ext_``), so nothing of e-mission's is
ever modified. It implements the same :class:`~emission_ext.stores.base.Store` interface as
the Parquet store.

Atomicity without transactions (a standalone mongod has none): every write inserts its rows
under a fresh *generation* id and only then publishes it by one single-document update of the
``emission_ext_meta`` document of that (table, user); readers only see published generations.
A write killed half-way leaves unpublished rows that nobody reads (removed by :meth:`vacuum`).

Collections (``P`` = prefix)::

    P<table>   one document per row: the table's columns, ``_g`` (generation id).
               Timestamps are int64 nanoseconds since the epoch (BSON dates keep only ms).
    Pmeta      {_id: "<table>/<user>", table, user_id, gens: [...], version, dtypes}
    Pstate     {_id: "<user>/<stage>", user_id, stage, state}
    Plocks     {_id: <user>, token, pid, host, created}
"""
from __future__ import annotations

import random
import time
import uuid as uuidlib
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .. import schema
from ..errors import StoreError
from .base import (AppendResult, LockInfo, Store, TIME_COLUMN, busy_error, check_table,
                   check_user, empty_like, is_stale, merge_since, new_rows, prepare, time_filter,
                   to_utc)

DEFAULT_PREFIX = "emission_ext_"
DEFAULT_DB = "Stage_database"
TIMESERIES = "Stage_timeseries"
RAW_KEYS = ("background/location", "background/filtered_location",
            "background/motion_activity", "statemachine/transition")


def _pymongo():
    try:
        import pymongo
        import pymongo.errors
    except ImportError as exc:  # pragma: no cover - pymongo is a base dependency
        raise StoreError(f"the MongoDB store needs pymongo ({exc})") from None
    return pymongo


def user_key(value) -> str:
    """e-mission user ids (UUID, BSON binary, ``{"$uuid": hex}`` or a string) as the product's
    string user id: the 32-digit hex form used in e-mission's JSON exports (the readers'
    :func:`emission_ext.io.emission.normalise_user_id`, so files and database agree)."""
    from ..io.emission import normalise_user_id

    uid = normalise_user_id(value)
    if uid:
        return uid
    if isinstance(value, uuidlib.UUID):
        return value.hex
    if isinstance(value, dict) and "$uuid" in value:
        return str(value["$uuid"]).replace("-", "")
    if isinstance(value, (bytes, bytearray)) and len(value) == 16:
        return uuidlib.UUID(bytes=bytes(value)).hex
    return str(value)


#: Optimistic writes retried this many times when another writer published first.
MAX_ATTEMPTS = 30


def _backoff(attempt: int) -> None:
    """Random sleep growing with the attempt (at most ~0.5 s), so racing writers spread out."""
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2 ** min(attempt, 6))))


def short_error(exc: Exception) -> str:
    """The first, human part of a pymongo error message (drops the topology dump)."""
    return str(exc).split(" (configured")[0].split(", Timeout")[0]


def _is_ts(dtype) -> bool:
    return isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype)


def _frame_to_docs(df: pd.DataFrame, gen: str) -> list[dict]:
    """Rows as BSON-ready dicts (Python scalars, None for nulls, timestamps as int64 ns),
    each tagged with the generation id ``_g``. Columns are converted whole; only the final
    dict-per-row step (what the driver needs) is per row."""
    cols = {}
    for c in df.columns:
        s = df[c].reset_index(drop=True)
        if _is_ts(s.dtype):
            ns = pd.DatetimeIndex(s).as_unit("ns")
            v = pd.Series(ns.asi8).astype(object)
            v[np.asarray(ns.isna())] = None
        else:
            v = s.astype(object).where(s.notna().to_numpy(), None)
        cols[c] = v
    out = pd.DataFrame(cols, index=range(len(df)), dtype=object)
    out["_g"] = gen
    return out.to_dict("records")


def _docs_to_frame(table: str, docs: list[dict], dtypes: dict | None) -> pd.DataFrame:
    t = schema.TABLES.get(table)
    if not docs:
        if t is not None:
            return schema.empty(table)
        return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in (dtypes or {"user_id": "str"}).items()})
    df = pd.DataFrame(docs)
    df = df.drop(columns=[c for c in ("_id", "_g") if c in df.columns])
    ts_cols = [c.name for c in t.columns if c.dtype == schema.UTC_TS] if t is not None else \
        [c for c, d in (dtypes or {}).items() if "datetime64" in d]
    for c in ts_cols:
        if c in df.columns:
            s = pd.array(df[c].to_numpy(dtype=object), dtype="Int64")
            mask = np.asarray(s.isna())
            ns = np.asarray(s.fillna(0), dtype="int64")
            ts = pd.Series(pd.to_datetime(ns, unit="ns", utc=True), index=df.index)
            ts[mask] = pd.NaT
            df[c] = ts
    for c in df.columns:
        if df[c].dtype == object and len(df) and isinstance(df[c].iloc[0], (bytes, bytearray)):
            df[c] = df[c].map(lambda x: bytes(x) if x is not None else None)
    if t is not None:
        return schema.coerce(df, table)
    for c, d in (dtypes or {}).items():
        if c in df.columns and c not in ts_cols:
            try:
                df[c] = df[c].astype(d)
            except (TypeError, ValueError):
                pass
    return df


class MongoStore(Store):
    """The product's tables in MongoDB collections, raw data from e-mission's timeseries.

    Parameters
    ----------
    url : str or None
        ``mongodb://...`` connection string. ``None`` only with ``client``.
    db : str
        Database name (the e-mission deployment's, ``Stage_database`` by default).
    prefix : str
        Prefix of this project's collections.
    client : pymongo.MongoClient-like, optional
        An existing client (tests inject ``mongomock``); such a store cannot be pickled.
    """

    kind = "mongo"

    def __init__(self, url: str | None = None, db: str = DEFAULT_DB, prefix: str = DEFAULT_PREFIX,
                 client=None, timeout_ms: int = 5000):
        if url is None and client is None:
            raise StoreError("MongoStore needs a url or a client")
        self.url, self.db_name, self.prefix, self.timeout_ms = url, db, prefix, timeout_ms
        self._client = client
        self._injected = client is not None
        self._indexed: set[str] = set()

    # -- connection / pickling -----------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            pymongo = _pymongo()
            try:
                self._client = pymongo.MongoClient(self.url, serverSelectionTimeoutMS=self.timeout_ms,
                                                   uuidRepresentation="pythonLegacy", tz_aware=True)
            except (pymongo.errors.PyMongoError, ValueError) as exc:
                raise StoreError(f"cannot connect to MongoDB {self.url}: {exc}") from None
        return self._client

    @property
    def db(self):
        return self.client[self.db_name]

    def __getstate__(self):
        if self._injected:
            raise StoreError("a MongoStore built on an injected client cannot be sent to workers; "
                             "give it a url or use one worker")
        return {"url": self.url, "db_name": self.db_name, "prefix": self.prefix,
                "timeout_ms": self.timeout_ms}

    def __setstate__(self, state):
        self.__init__(state["url"], state["db_name"], state["prefix"], None, state["timeout_ms"])

    def __repr__(self) -> str:
        return f"MongoStore({self.url or 'injected client'!r}, db={self.db_name!r})"

    def describe(self) -> str:
        return f"mongo store {self.url or '(injected client)'} db {self.db_name}"

    def close(self) -> None:
        if self._client is not None and not self._injected:
            self._client.close()
            self._client = None

    def _coll(self, name: str):
        coll = self.db[f"{self.prefix}{name}"]
        if name not in self._indexed and name not in ("meta", "state", "locks"):
            self._wrap(lambda: coll.create_index([("_g", 1)]))
            self._indexed.add(name)
        return coll

    def _wrap(self, fn: Callable):
        pymongo = _pymongo()
        try:
            return fn()
        except (pymongo.errors.ServerSelectionTimeoutError, pymongo.errors.ConnectionFailure) as exc:
            raise StoreError(f"MongoDB {self.url} unreachable: {short_error(exc)}") from None

    @staticmethod
    def _meta_id(table: str, user_id: str) -> str:
        return f"{table}/{user_id}"

    def _meta(self, table: str, user_id: str) -> dict | None:
        return self._wrap(lambda: self._coll("meta").find_one({"_id": self._meta_id(table, user_id)}))

    def _publish(self, table: str, user_id: str, old: dict | None, gens: list[str],
                 dtypes: dict | None) -> bool:
        """Atomically swap the meta document from ``old`` to ``gens``; False if it moved."""
        pymongo = _pymongo()
        meta = self._coll("meta")
        body = {"table": table, "user_id": user_id, "gens": gens, "version": uuidlib.uuid4().hex}
        if dtypes is not None:
            body["dtypes"] = dtypes
        if old is None:
            try:
                meta.insert_one({"_id": self._meta_id(table, user_id), **body})
                return True
            except pymongo.errors.DuplicateKeyError:
                return False
        res = meta.update_one({"_id": old["_id"], "version": old["version"]}, {"$set": body})
        return res.matched_count == 1

    def _read_user_gens(self, table: str, metas: list[dict], start=None, end=None) -> list[dict]:
        gens = [g for m in metas for g in m.get("gens", [])]
        if not gens:
            return []
        q: dict = {"_g": {"$in": gens}}
        col = TIME_COLUMN.get(table)
        if (start is not None or end is not None) and col is not None:
            rng = {}
            if start is not None:
                rng["$gte"] = int(to_utc(start).as_unit("ns").value)
            if end is not None:
                rng["$lt"] = int(to_utc(end).as_unit("ns").value)
            q[col] = rng
        return list(self._wrap(lambda: self._coll(table).find(q, {"_id": 0, "_g": 0})))

    # -- Store API -----------------------------------------------------------------------
    def _append_user(self, table: str, user_id: str, part: pd.DataFrame) -> int:
        key = list(schema.table(table).key)
        for attempt in range(MAX_ATTEMPTS):
            meta = self._meta(table, user_id)
            old = _docs_to_frame(table, self._read_user_gens(table, [meta] if meta else []), None)
            keys = pd.MultiIndex.from_frame(old[key]) if len(old) else None
            fresh = new_rows(table, part, keys)
            if len(fresh) == 0:
                return 0
            gen = uuidlib.uuid4().hex
            docs = _frame_to_docs(fresh, gen)
            self._wrap(lambda: self._coll(table).insert_many(docs, ordered=False))
            gens = (meta or {}).get("gens", []) + [gen]
            if self._publish(table, user_id, meta, gens, None):
                return len(fresh)
            self._coll(table).delete_many({"_g": gen})  # lost a race: retry on fresh state
            _backoff(attempt)
        raise StoreError(f"{table}: user {user_id} is being written concurrently; retry")

    def read(self, table: str, user_ids: Iterable[str] | None = None, start=None,
             end=None) -> pd.DataFrame:
        check_table(table)
        q: dict = {"table": table}
        if user_ids is not None:
            users = [check_user(u) for u in ([user_ids] if isinstance(user_ids, str) else user_ids)]
            q["user_id"] = {"$in": users}
        metas = self._wrap(lambda: list(self._coll("meta").find(q)))
        dtypes = next((m.get("dtypes") for m in metas if m.get("dtypes")), None)
        df = _docs_to_frame(table, self._read_user_gens(table, metas, start, end), dtypes)
        t = schema.TABLES.get(table)
        if t is not None and len(df):
            df = df.drop_duplicates(subset=list(t.key)).reset_index(drop=True)
        if (start is not None or end is not None) and len(df):
            df = time_filter(table, df, start, end)
        return df

    def replace_user(self, table: str, user_id: str, df: pd.DataFrame, since=None) -> int:
        check_user(user_id)
        df = prepare(table, df) if len(df) else empty_like(table, df)
        if len(df) and not (df["user_id"] == user_id).all():
            raise StoreError(f"{table}: replace_user({user_id!r}) given rows of other users")
        dtypes = None if table in schema.TABLES else {c: str(d) for c, d in df.dtypes.items()}
        for attempt in range(MAX_ATTEMPTS):
            meta = self._meta(table, user_id)
            out = df
            if since is not None and meta:
                old = _docs_to_frame(table, self._read_user_gens(table, [meta]),
                                     meta.get("dtypes"))
                out = merge_since(table, old, df, since)
            gen = uuidlib.uuid4().hex
            if len(out):
                docs = _frame_to_docs(out, gen)
                self._wrap(lambda: self._coll(table).insert_many(docs, ordered=False))
            if self._publish(table, user_id, meta, [gen] if len(out) else [], dtypes):
                old_gens = (meta or {}).get("gens", [])
                if old_gens:
                    self._coll(table).delete_many({"_g": {"$in": old_gens}})
                return len(out)
            self._coll(table).delete_many({"_g": gen})
            _backoff(attempt)
        raise StoreError(f"{table}: user {user_id} is being written concurrently; retry")

    def users(self, table: str = "points") -> list[str]:
        check_table(table)
        metas = self._wrap(lambda: list(self._coll("meta").find(
            {"table": table, "gens.0": {"$exists": True}}, {"user_id": 1})))
        return sorted({m["user_id"] for m in metas})

    def _delete_user(self, user_id: str) -> None:
        metas = self._wrap(lambda: list(self._coll("meta").find({"user_id": user_id})))
        self._coll("meta").delete_many({"user_id": user_id})  # unpublish first
        for m in metas:
            self._coll(m["table"]).delete_many({"user_id": user_id})
        self._coll("state").delete_many({"user_id": user_id})

    def version(self, table: str, user_id: str) -> str:
        check_table(table)
        meta = self._meta(table, user_id)
        if not meta or not meta.get("gens"):
            return ""
        return str(meta["version"])

    def vacuum(self) -> int:
        """Delete rows of unpublished generations (left by killed writes); return how many.

        Only call when no write is running (e.g. under maintenance): an in-flight write's rows
        are unpublished until its last step."""
        live = {g for m in self._coll("meta").find({}, {"gens": 1}) for g in m.get("gens", [])}
        removed = 0
        for name in {m["table"] for m in self._coll("meta").find({}, {"table": 1})}:
            res = self._coll(name).delete_many({"_g": {"$nin": sorted(live)}})
            removed += res.deleted_count
        return removed

    # -- state ---------------------------------------------------------------------------
    def get_state(self, user_id: str, stage: str) -> dict:
        check_user(user_id)
        doc = self._wrap(lambda: self._coll("state").find_one({"_id": f"{user_id}/{stage}"}))
        return dict(doc["state"]) if doc else {}

    def set_state(self, user_id: str, stage: str, state: dict) -> None:
        check_user(user_id)
        self._wrap(lambda: self._coll("state").replace_one(
            {"_id": f"{user_id}/{stage}"},
            {"_id": f"{user_id}/{stage}", "user_id": user_id, "stage": stage, "state": state},
            upsert=True))

    # -- lock ----------------------------------------------------------------------------
    def _acquire(self, user_id: str, info: LockInfo, stale_after_s: float) -> None:
        pymongo = _pymongo()
        locks = self._coll("locks")
        for _ in range(3):
            try:
                self._wrap(lambda: locks.insert_one({"_id": user_id, **info.to_dict()}))
                return
            except pymongo.errors.DuplicateKeyError:
                doc = locks.find_one({"_id": user_id})
                if doc is None:
                    continue
                held = LockInfo.from_dict(doc)
                if not is_stale(held, stale_after_s):
                    raise busy_error(user_id, held) from None
                # take over atomically: only the process deleting this exact token wins
                locks.delete_one({"_id": user_id, "token": held.token})
        raise busy_error(user_id, None)

    def _release(self, user_id: str, info: LockInfo) -> None:
        self._coll("locks").delete_one({"_id": user_id, "token": info.token})

    # -- raw entries from e-mission ---------------------------------------------------------
    def sync_raw(self, users: Iterable[str] | None = None, target: Store | None = None,
                 progress: Callable | None = None) -> dict[str, AppendResult]:
        """Import new raw entries of this database's ``Stage_timeseries`` into ``target``
        (this store by default); see :func:`import_timeseries`."""
        return import_timeseries(self.db, target or self, users=users, progress=progress)


def import_timeseries(db, store: Store, users: Iterable[str] | None = None,
                      progress: Callable | None = None, batch: int = 100_000
                      ) -> dict[str, AppendResult]:
    """Load e-mission raw entries written since the last import into ``store``.

    For each user of ``db.Stage_timeseries`` (or only ``users``, product ids), the entries of
    :data:`RAW_KEYS` with ``metadata.write_ts >=`` the user's high-water mark (kept in the
    store's state, stage ``import:mongo:<db>``) are converted with
    :func:`emission_ext.io.emission.entries_to_raw` and appended (idempotently, so the entries
    at the mark itself are re-read harmlessly). The mark is saved after the rows are stored.

    Returns rows added/already present per table. ``progress`` wraps the user iterable.
    Note: entries a phone uploads late with a ``write_ts`` older than the mark are not seen;
    reset the mark (``set_state(user, stage, {})``) to re-scan a user.
    """
    from ..io.emission import entries_to_raw
    from .loading import load_raw, merge_counts

    pymongo = _pymongo()
    stage = f"import:mongo:{db.name}"
    coll = db[TIMESERIES]
    try:
        raw_ids = coll.distinct("user_id")
    except pymongo.errors.PyMongoError as exc:
        raise StoreError(f"cannot read {db.name}.{TIMESERIES}: {exc}") from None
    wanted = None if users is None else set(users)
    pairs = sorted(((user_key(r), r) for r in raw_ids), key=lambda p: p[0])
    if wanted is not None:
        pairs = [p for p in pairs if p[0] in wanted]
    totals: dict[str, AppendResult] = {}
    it = progress(pairs) if progress is not None else pairs
    for uid, raw_id in it:
        mark = store.get_state(uid, stage).get("write_ts")
        q: dict = {"user_id": raw_id, "metadata.key": {"$in": list(RAW_KEYS)}}
        if mark is not None:
            q["metadata.write_ts"] = {"$gte": float(mark)}
        cursor = coll.find(q).sort("metadata.write_ts", 1)
        hi = mark
        chunk: list[dict] = []

        def flush(chunk):
            raw = entries_to_raw(chunk, origin=f"mongodb:{db.name}.{TIMESERIES}", user_id=uid,
                                 skip_bad=True)
            merge_counts(totals, load_raw(store, raw))

        for doc in cursor:
            chunk.append(doc)
            wts = (doc.get("metadata") or {}).get("write_ts")
            if wts is not None:
                hi = wts if hi is None else max(hi, float(wts))
            if len(chunk) >= batch:
                flush(chunk)
                chunk = []
        if chunk:
            flush(chunk)
        if hi is not None and hi != mark:
            store.set_state(uid, stage, {"write_ts": float(hi)})
    return totals
