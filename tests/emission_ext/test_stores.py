"""Contract suite of the stores: one set of tests, run against every store.

Parquet always (tmp dir); MongoDB against a real server when EMISSION_EXT_TEST_MONGO_URL is set,
else against ``mongomock`` (test ids say ``mongomock-standin``: an in-memory stand-in, not MongoDB).
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import socket
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from emission_ext import schema
from emission_ext.errors import StoreError
from emission_ext.reference import emission_real_days
from emission_ext.stores import open_store
from emission_ext.stores.base import LockInfo
from emission_ext.stores.mongo import MongoStore, import_timeseries
from emission_ext.stores.parquet import ParquetStore, encode_user, decode_user

MONGO_URL = os.environ.get("EMISSION_EXT_TEST_MONGO_URL")
T0 = 1_700_000_000.0


# ------------------------------------------------------------------------------ fixtures


def _crash_parquet(store, monkeypatch):
    import emission_ext.stores.parquet as mod

    def boom(src, dst):
        raise OSError("simulated crash during os.replace")

    monkeypatch.setattr(mod.os, "replace", boom)


def _crash_mongo(store, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("simulated crash before publishing the generation")

    monkeypatch.setattr(store, "_publish", boom)


def _mongo_store():
    if MONGO_URL:
        return MongoStore(MONGO_URL, db=f"emission_ext_test_{uuid.uuid4().hex[:8]}")
    mongomock = pytest.importorskip("mongomock")
    return MongoStore(client=mongomock.MongoClient(), db="emission_ext_test")


@pytest.fixture(params=["parquet", "mongo-real" if MONGO_URL else "mongomock-standin"])
def store(request, tmp_path):
    if request.param == "parquet":
        st = ParquetStore(tmp_path / "data")
        st.crash = _crash_parquet
        yield st
    else:
        st = _mongo_store()
        st.crash = _crash_mongo
        yield st
        if MONGO_URL:
            st.client.drop_database(st.db_name)
        st.close()


def points(user="010", n=5, t0=T0, step=10.0, source="android"):
    return pd.DataFrame({
        "user_id": [user] * n,
        "ts": t0 + np.arange(n) * step,
        "lat": 46.15 + np.arange(n) * 1e-4,
        "lon": -1.15 - np.arange(n) * 1e-4,
        "accuracy_m": 5.0,
        "source": source,
    })


def trips(user="010", n=3, t0=T0):
    starts = t0 + np.arange(n) * 3600.0
    return pd.DataFrame({
        "user_id": user, "trip_id": [f"{user}-t{i}" for i in range(n)],
        "start_ts": starts, "end_ts": starts + 600.0,
        "start_lat": 46.1, "start_lon": -1.1, "end_lat": 46.2, "end_lon": -1.2,
        "start_place_id": None, "end_place_id": None,
        "distance_m": 1000.0, "duration_s": 600.0,
        "geometry": ([bytes.fromhex("0102000000020000000000000000000000000000000000000000000000000000000000f03f000000000000f03f"), None] + [None] * max(n - 2, 0))[:n],
        "tz": "Europe/Paris",
    })


# ---------------------------------------------------------------------------- contract


def test_append_is_idempotent_and_keeps_leading_zeros(store):
    r = store.append("points", pd.concat([points("010"), points("7", n=3)]))
    assert (r.added, r.present) == (8, 0)
    r = store.append("points", pd.concat([points("010"), points("7", n=3)]))
    assert (r.added, r.present) == (0, 8)
    # partial overlap: 5 known + 2 new; an in-frame duplicate counts once
    more = pd.concat([points("010", n=7), points("010", n=7).iloc[[6]]])
    r = store.append("points", more)
    assert (r.added, r.present) == (2, 6)
    assert store.users() == ["010", "7"]
    df = store.read("points", ["010"])
    assert len(df) == 7 and set(df["user_id"]) == {"010"}
    assert str(df["ts"].dtype) == schema.UTC_TS
    schema.validate(df, "points")


def test_same_time_other_source_is_a_new_row(store):
    store.append("points", points("u1"))
    r = store.append("points", points("u1", source="gpx"))
    assert r.added == 5
    assert len(store.read("points", ["u1"])) == 10


def test_read_filters_users_and_time(store):
    store.append("points", pd.concat([points("a", n=10), points("b", n=4)]))
    assert len(store.read("points")) == 14
    assert len(store.read("points", ["b"])) == 4
    assert len(store.read("points", "b")) == 4
    sub = store.read("points", ["a"], start=T0 + 20, end=T0 + 50)
    assert list(schema.to_unix(sub["ts"])) == [T0 + 20, T0 + 30, T0 + 40]
    assert len(store.read("points", ["nobody"])) == 0
    empty = store.read("trips")
    assert list(empty.columns) == schema.TABLES["trips"].names and len(empty) == 0


def test_timestamps_keep_sub_millisecond_precision(store):
    df = points("p", n=3, t0=T0 + 0.123456, step=0.000001)
    store.append("points", df)
    back = store.read("points", ["p"])
    want = schema.coerce(df, "points")["ts"]
    assert list(back["ts"]) == list(want)
    assert store.append("points", df).added == 0


def test_geometry_bytes_round_trip(store):
    t = trips("g", n=3)
    store.replace_user("trips", "g", t)
    back = store.read("trips", ["g"]).sort_values("trip_id").reset_index(drop=True)
    assert back["geometry"].iloc[0] == t["geometry"].iloc[0]
    assert back["geometry"].iloc[1] is None
    assert back["start_place_id"].isna().all()
    schema.validate(back, "trips")


def test_replace_user_whole_and_since(store):
    store.replace_user("trips", "u", trips("u", n=4))
    store.replace_user("trips", "v", trips("v", n=2))
    assert store.replace_user("trips", "u", trips("u", n=2)) == 2
    assert len(store.read("trips", ["u"])) == 2
    assert len(store.read("trips", ["v"])) == 2  # other users untouched
    # since: keep trips starting before T0+3600, replace the rest
    store.replace_user("trips", "u", trips("u", n=4))
    new = trips("u", n=4).iloc[2:].assign(trip_id=["u-new2", "u-new3"])
    store.replace_user("trips", "u", new, since=T0 + 3600)
    ids = sorted(store.read("trips", ["u"])["trip_id"])
    assert ids == ["u-new2", "u-new3", "u-t0"]
    with pytest.raises(StoreError, match="other users"):
        store.replace_user("trips", "u", trips("v", n=1))
    store.replace_user("trips", "u", schema.empty("trips"))
    assert store.users("trips") == ["v"]


def test_auxiliary_tables(store):
    aux = pd.DataFrame({"user_id": "u", "ts": pd.to_datetime([T0, T0 + 1], unit="s", utc=True),
                        "trip_id": ["t1", None], "x": [1.5, 2.5]})
    store.replace_user("labelled_points", "u", aux)
    back = store.read("labelled_points", ["u"])
    assert len(back) == 2 and str(back["ts"].dtype) == schema.UTC_TS
    assert back["x"].tolist() == [1.5, 2.5]
    assert store.users("labelled_points") == ["u"]
    with pytest.raises(StoreError, match="only be replaced"):
        store.append("labelled_points", aux)
    with pytest.raises(StoreError, match="invalid table"):
        store.read("../etc")


def test_version_changes_only_with_the_data(store):
    assert store.version("points", "u") == ""
    store.append("points", points("u"))
    v1 = store.version("points", "u")
    assert v1
    store.append("points", points("u"))  # nothing new
    assert store.version("points", "u") == v1
    store.append("points", points("u", n=6))
    v2 = store.version("points", "u")
    assert v2 != v1
    store.append("points", points("w"))
    assert store.version("points", "u") == v2  # another user's write


def test_state_round_trip(store):
    assert store.get_state("u", "segment") == {}
    store.set_state("u", "segment", {"fingerprint": {"version": "1", "inputs": {"points": "abc"}},
                                     "n": 3})
    store.set_state("u", "modes", {"n": 4})
    assert store.get_state("u", "segment")["fingerprint"]["inputs"]["points"] == "abc"
    assert store.get_state("u", "modes") == {"n": 4}
    assert store.get_state("other", "segment") == {}


def test_delete_user_removes_everything(store):
    store.append("points", pd.concat([points("u"), points("keep")]))
    store.replace_user("trips", "u", trips("u"))
    store.replace_user("labelled_points", "u", points("u"))
    store.set_state("u", "segment", {"a": 1})
    store.delete_user("u")
    assert store.users("points") == ["keep"]
    assert store.users("trips") == [] and store.users("labelled_points") == []
    assert store.get_state("u", "segment") == {}
    assert len(store.read("points")) == 5
    with store.lock("keep"):  # never while a run processes the user
        with pytest.raises(StoreError, match="being processed"):
            store.delete_user("keep")
    store.delete_user("keep")
    assert store.users("points") == []


def test_lock_contention_and_release(store):
    with store.lock("u"):
        with pytest.raises(StoreError, match="user u is being processed by another run"):
            with store.lock("u"):
                pass
        with store.lock("other"):  # per user
            pass
    with store.lock("u"):  # released
        pass


def test_only_one_of_many_simultaneous_takers_gets_the_lock(store):
    import threading

    n = 12
    start, attempted = threading.Barrier(n), threading.Barrier(n)
    outcome = []

    def taker():
        start.wait()
        try:
            with store.lock("u"):
                outcome.append("won")
                attempted.wait()  # hold it until everybody has tried
        except StoreError:
            outcome.append("busy")
            attempted.wait()

    threads = [threading.Thread(target=taker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcome) == ["busy"] * (n - 1) + ["won"]


def test_concurrent_appends_to_one_user_lose_nothing(store):
    from concurrent.futures import ThreadPoolExecutor

    parts = [points("u", n=20, t0=T0 + k * 1000.0) for k in range(8)]
    with ThreadPoolExecutor(4) as pool:
        added = sum(r.added for r in pool.map(lambda df: store.append("points", df), parts))
    assert added == 160 and len(store.read("points", ["u"])) == 160


def _plant_lock(store, user, info: LockInfo):
    if isinstance(store, ParquetStore):
        path = store._lock_file(user)
        path.write_text(json.dumps(info.to_dict()))
    else:
        store._coll("locks").insert_one({"_id": user, **info.to_dict()})


def _dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
            pid -= 1
        except ProcessLookupError:
            return pid
        except PermissionError:
            pid -= 1


def test_stale_lock_of_a_crashed_process_is_taken_over(store):
    _plant_lock(store, "u", LockInfo("dead", _dead_pid(), socket.gethostname(), time.time()))
    with store.lock("u"):
        pass


def test_lock_of_another_host(store):
    _plant_lock(store, "u", LockInfo("remote", 1, "some-other-host", time.time()))
    with pytest.raises(StoreError, match="pid 1 on some-other-host"):
        with store.lock("u"):
            pass
    # the same remote lock, once older than stale_after_s, is taken over
    with store.lock("u", stale_after_s=-1):
        pass


def test_killed_write_leaves_old_data_readable(store, monkeypatch):
    store.append("points", points("u", n=5))
    store.replace_user("trips", "u", trips("u", n=3))
    before_pts, before_trips = store.read("points"), store.read("trips")
    v = store.version("points", "u")
    store.crash(store, monkeypatch)
    with pytest.raises(Exception, match="simulated crash"):
        store.append("points", points("u", n=9))
    with pytest.raises(Exception, match="simulated crash"):
        store.replace_user("trips", "u", trips("u", n=1))
    monkeypatch.undo()
    pd.testing.assert_frame_equal(store.read("points"), before_pts)
    pd.testing.assert_frame_equal(store.read("trips"), before_trips)
    assert store.version("points", "u") == v
    if isinstance(store, ParquetStore):  # no temporary file left behind
        assert not [p for p in store.root.rglob(".tmp-*")]
    else:
        assert store.vacuum() == 4 + 1  # the unpublished rows of the two killed writes
    # the interrupted import is simply redone
    assert store.append("points", points("u", n=9)).added == 4


def test_store_pickles_for_workers(store):
    if isinstance(store, MongoStore) and store._injected:
        with pytest.raises(StoreError, match="cannot be sent to workers"):
            pickle.dumps(store)
        return
    clone = pickle.loads(pickle.dumps(store))
    store.append("points", points("u"))
    assert len(clone.read("points", ["u"])) == 5


def _extended_json(value):
    """e-mission export JSON ($uuid, $oid) to what e-mission's database holds."""
    if isinstance(value, dict):
        if "$uuid" in value:  # e-mission stores user ids as legacy (subtype 3) UUIDs
            from bson.binary import Binary, UuidRepresentation

            return Binary.from_uuid(uuid.UUID(hex=value["$uuid"]), UuidRepresentation.PYTHON_LEGACY)
        if "$oid" in value:
            return value["$oid"]
        return {k: _extended_json(v) for k, v in value.items() if k != "_id"}
    if isinstance(value, list):
        return [_extended_json(v) for v in value]
    return value


def test_import_timeseries_is_incremental(store):
    mongomock = pytest.importorskip("mongomock")
    path = [p for p in emission_real_days() if p.name.startswith("shankari_2016-08-10")][0]
    entries = [_extended_json(e) for e in json.load(gzip.open(path))]
    entries.sort(key=lambda e: e["metadata"]["write_ts"])
    half = len(entries) // 2
    source = mongomock.MongoClient(uuidRepresentation="pythonLegacy")["Stage_database"]
    source["Stage_timeseries"].insert_many([dict(e) for e in entries[:half]])
    first = import_timeseries(source, store)
    assert first["points"].added > 0 and first["points"].present == 0
    (user,) = store.users("points")
    assert len(user) == 32  # the e-mission UUID as 32 hex digits
    mark = store.get_state(user, "import:mongo:Stage_database")["write_ts"]
    assert mark == max(e["metadata"]["write_ts"] for e in entries[:half])
    again = import_timeseries(source, store)
    assert sum(r.added for r in again.values()) == 0
    source["Stage_timeseries"].insert_many([dict(e) for e in entries[half:]])
    second = import_timeseries(source, store)
    assert second["points"].added > 0
    # the same as importing the whole day at once
    from emission_ext.io.emission import entries_to_raw

    whole = entries_to_raw(entries, "test", skip_bad=True)
    assert len(store.read("points", [user])) == len(whole.points)


# ------------------------------------------------------------------------ store-specific


def test_user_ids_are_encoded_for_the_file_system(tmp_path):
    for u in ["010", "a/b", "..", "é", "x y", "%41"]:
        assert decode_user(encode_user(u)) == u
        assert "/" not in encode_user(u) and encode_user(u) not in (".", "..")
    st = ParquetStore(tmp_path)
    st.append("points", pd.concat([points("a/b"), points("..")]))
    assert st.users() == ["..", "a/b"]
    assert not (tmp_path.parent / "points").exists()


def test_parquet_layout(tmp_path):
    st = ParquetStore(tmp_path)
    st.append("points", points("010"))
    assert (tmp_path / "points" / "user_id=010" / "data.parquet").is_file()
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "points" / "user_id=010" / "data.parquet").num_rows == 5


def test_open_store(tmp_path):
    assert isinstance(open_store(tmp_path / "d"), ParquetStore)
    m = open_store("mongodb://127.0.0.1:1/", db="x")
    assert isinstance(m, MongoStore) and m.db_name == "x"  # lazy: no connection yet
    with pytest.raises(StoreError, match="unsupported store URL"):
        open_store("postgresql://x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        open_store(tmp_path / "file")


def test_unreachable_mongo_is_a_store_error():
    st = MongoStore("mongodb://127.0.0.1:1/", timeout_ms=200)
    with pytest.raises(StoreError, match="unreachable"):
        st.users()


def test_mongo_store_syncs_its_own_timeseries():
    mongomock = pytest.importorskip("mongomock")
    st = MongoStore(client=mongomock.MongoClient(), db="Stage_database")  # mongomock-standin
    path = [p for p in emission_real_days() if p.name.startswith("shankari_2016-08-10")][0]
    st.db["Stage_timeseries"].insert_many([_extended_json(e) for e in json.load(gzip.open(path))])
    first = st.sync_raw()
    assert first["points"].added > 0
    assert sum(r.added for r in st.sync_raw().values()) == 0
    # e-mission's own collection is left as it was; ours are prefixed
    names = set(st.db.list_collection_names())
    assert "Stage_timeseries" in names and "emission_ext_points" in names
    assert all(n == "Stage_timeseries" or n.startswith("emission_ext_") for n in names)
