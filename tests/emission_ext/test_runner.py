"""The incremental runner: stage framework, per-user state, locks, executors (pool, dask).

Most tests use stand-in stages (tests/emission_ext/standin_stages.py) so they exercise the
runner, not the segmentation; one test runs the real ``segment`` stage on a real e-mission day.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emission_ext import runner
from emission_ext.errors import ConfigError, StoreError
from emission_ext.stages import STAGE_ORDER, StageContext, load_stage
from emission_ext.stores.parquet import ParquetStore

from . import standin_stages as S

T0 = 1_700_000_000.0
STAGES = (S.SEGMENT, S.COUNT)


def synthetic_points(user: str, n: int = 300, seed: int = 0) -> pd.DataFrame:
    """``n`` fixes every 10 s with two 20-minute gaps: three trips per user."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(n) * 10.0
    t[n // 3:] += 1200.0
    t[2 * n // 3:] += 1200.0
    return pd.DataFrame({
        "user_id": user, "ts": t,
        "lat": 46.15 + np.cumsum(rng.normal(0, 1e-4, n)),
        "lon": -1.15 + np.cumsum(rng.normal(0, 1e-4, n)),
        "accuracy_m": 10.0, "source": "android",
    })


@pytest.fixture
def store(tmp_path):
    return ParquetStore(tmp_path / "data")


def test_fifty_users_with_the_process_pool_then_nothing_to_do(store):
    users = [f"{i:03d}" for i in range(50)]
    store.append("points", pd.concat([synthetic_points(u, seed=i) for i, u in enumerate(users)]))
    first = runner.run(store, workers=2, stages=STAGES)
    assert first.users_total == 50 and first.users_to_process == 50
    assert first.processed == 50 and not first.failed
    assert first.stage_runs() == {S.SEGMENT: 50, S.COUNT: 50}
    assert first.rows() == {"trips": 150, "trip_counts": 50}
    assert store.users("trips") == users  # leading zeros kept
    counts = store.read("trip_counts")
    assert (counts["n_trips"] == 3).all()
    assert any("50 users, 50 users to process" in line for line in first.lines())

    second = runner.run(store, workers=2, stages=STAGES)
    assert second.users_to_process == 0 and second.results == []
    assert "50 users, 0 users to process" in second.lines()

    # new data for one user: only that user is processed again, both stages
    extra = synthetic_points("007", n=30)
    extra["ts"] = extra["ts"] + 10 * 86400.0
    assert store.append("points", extra).added == 30
    third = runner.run(store, workers=2, stages=STAGES)
    assert third.users_to_process == 1 and [r.user_id for r in third.results] == ["007"]
    assert third.results[0].ran == [S.SEGMENT, S.COUNT]
    assert int(store.read("trip_counts", ["007"])["n_trips"].iloc[0]) == 6  # 3 + 3 new trips


def test_changed_input_of_a_later_stage_redoes_only_that_stage(store):
    store.append("points", synthetic_points("u"))
    runner.run(store, workers=1, stages=STAGES)
    # someone rewrites the user's trips (e.g. a fusion step): only standin_count is stale
    trips = store.read("trips", ["u"]).iloc[:2]
    store.replace_user("trips", "u", trips)
    plan = runner.Plan.build([load_stage(s) for s in STAGES])
    assert runner.stale_stages(store, "u", plan) == [S.COUNT]
    res = runner.run(store, workers=1, stages=STAGES)
    assert res.results[0].ran == [S.COUNT] and res.results[0].skipped == [S.SEGMENT]
    assert int(store.read("trip_counts", ["u"])["n_trips"].iloc[0]) == 2


def test_stages_refining_the_same_tables_settle(store):
    """segment -> refine -> fuse all write trips; fuse also rewrites a table it reads."""
    stages = (S.SEGMENT, S.REFINE, S.FUSE, S.COUNT)
    store.append("points", pd.concat([synthetic_points("a"), synthetic_points("b")]))
    store.append("motion", pd.DataFrame({"user_id": "a", "ts": [T0, T0 + 5], "activity": "WALKING",
                                         "confidence": 50.0}))
    first = runner.run(store, workers=1, stages=stages)
    assert first.users_to_process == 2 and not first.failed
    plan = runner.Plan.build([load_stage(s) for s in stages])
    assert plan.outputs(load_stage(S.SEGMENT)) == {"trips": "trips__" + S.SEGMENT.replace(".", "_")}
    assert plan.inputs(load_stage(S.FUSE)) == {"trips": "trips__" + S.REFINE.replace(".", "_"),
                                               "motion": "motion"}
    trips = store.read("trips", ["a"])  # the last writer's table: refined then fused
    assert list(trips["distance_m"]) == [2000.0 + 2, 2000.0 + 2, 2000.0 + 2]
    assert set(trips["origin"]) == {"gps"} and (store.read("motion", ["a"])["confidence"] == 100).all()
    assert "rows written: trips 6, motion 2, trip_counts 2" in first.lines()
    # nothing new: nothing to do (no stage made stale by a later stage's rewrite)
    assert runner.run(store, workers=1, stages=stages).users_to_process == 0
    # a new externally appended row: only the stages from fuse on run again
    store.append("motion", pd.DataFrame({"user_id": "a", "ts": [T0 + 9], "activity": "STILL"}))
    again = runner.run(store, workers=1, stages=stages)
    assert [r.user_id for r in again.results] == ["a"]
    assert again.results[0].ran == [S.FUSE, S.COUNT]
    assert again.results[0].skipped == [S.SEGMENT, S.REFINE]
    assert list(store.read("trips", ["a"])["distance_m"]) == [2003.0] * 3  # from refine's output
    assert runner.run(store, workers=1, stages=stages).users_to_process == 0


def test_stage_version_bump_redoes_every_user(store, monkeypatch):
    store.append("points", pd.concat([synthetic_points("a"), synthetic_points("b")]))
    runner.run(store, workers=1, stages=STAGES)
    monkeypatch.setattr(S.segment, "VERSION", "2")
    res = runner.run(store, workers=1, stages=STAGES)
    assert res.users_to_process == 2


def test_force(store):
    store.append("points", synthetic_points("a"))
    runner.run(store, workers=1, stages=STAGES)
    assert runner.run(store, workers=1, stages=STAGES, force=True).users_to_process == 1


def test_a_failing_user_does_not_stop_the_others_and_is_retried(store):
    store.append("points", pd.concat([synthetic_points("bad1"), synthetic_points("good")]))
    res = runner.run(store, workers=1, stages=(S.SEGMENT, S.FAIL))
    assert [r.user_id for r in res.failed] == ["bad1"]
    assert "stand-in failure" in res.failed[0].error and "ValueError" in res.failed[0].error
    assert any(line.startswith("FAILED user bad1") for line in res.lines())
    assert store.users("fail_out") == ["good"]
    # its segment stage succeeded and is kept; only the failed stage is due again
    again = runner.run(store, workers=1, stages=(S.SEGMENT, S.FAIL))
    assert again.users_to_process == 1
    assert again.results[0].skipped == [S.SEGMENT] and again.results[0].error


def test_crash_before_the_state_is_written_is_redone(store, monkeypatch):
    store.append("points", synthetic_points("u"))

    def crash(*a, **k):
        raise StoreError("simulated crash before saving the state")

    monkeypatch.setattr(store, "set_state", crash)
    res = runner.run(store, workers=1, stages=STAGES)
    assert res.failed and "simulated crash" in res.failed[0].error
    assert len(store.read("trips", ["u"])) == 3  # outputs were written, atomically
    monkeypatch.undo()
    res = runner.run(store, workers=1, stages=STAGES)
    assert res.users_to_process == 1 and not res.failed
    assert runner.run(store, workers=1, stages=STAGES).users_to_process == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_locked_user_is_reported_and_left_alone(store, workers):
    store.append("points", pd.concat([synthetic_points("a"), synthetic_points("b"),
                                      synthetic_points("c")]))
    with store.lock("b"):
        res = runner.run(store, workers=workers, stages=STAGES)
    assert [r.user_id for r in res.failed] == ["b"]
    assert "user b is being processed by another run" in res.failed[0].error
    assert store.users("trips") == ["a", "c"]
    res = runner.run(store, workers=workers, stages=STAGES)  # lock released: b is done now
    assert [r.user_id for r in res.results] == ["b"] and not res.failed


def test_unavailable_stages_are_reported_not_skipped_silently(store):
    store.append("points", synthetic_points("a"))
    res = runner.run(store, workers=1, stages=(S.SEGMENT, "no_such_stage"))
    assert ("no_such_stage", "no stage module emission_ext.stages.no_such_stage") in res.stages
    assert "stage no_such_stage: not available (no stage module emission_ext.stages.no_such_stage)" \
        in res.lines()
    assert res.results[0].ran == [S.SEGMENT]
    nothing = runner.run(store, workers=1, stages=("no_such_stage",))
    assert "no stage is available: nothing can run" in nothing.lines()
    assert nothing.users_to_process == 0


def test_default_stage_order_is_reported():
    assert STAGE_ORDER == ("segment", "modes", "fuse", "footprint")
    for name in STAGE_ORDER:
        info = load_stage(name)
        assert info.available or info.reason  # every stage either runs or says why not


def test_bad_arguments(store):
    store.append("points", synthetic_points("a"))
    with pytest.raises(ConfigError, match="unknown user"):
        runner.run(store, ["zz"], stages=STAGES)
    with pytest.raises(ConfigError, match="needs a scheduler"):
        runner.run(store, executor="dask", stages=STAGES)
    with pytest.raises(ConfigError, match="unknown executor"):
        runner.run(store, executor="spark", stages=STAGES)
    with pytest.raises(ConfigError, match="at least 1"):
        runner.run(store, workers=0, stages=STAGES)


def test_users_subset_and_progress(store):
    store.append("points", pd.concat([synthetic_points(u) for u in "abc"]))
    ticks = []

    class Bar:
        def update(self, n):
            ticks.append(n)

        def close(self):
            ticks.append("closed")

    res = runner.run(store, ["a", "c"], workers=1, stages=STAGES, progress=lambda total: Bar())
    assert [r.user_id for r in res.results] == ["a", "c"] and res.users_total == 2
    assert ticks == [1, 1, "closed"]


def test_time_zone_comes_from_the_import_profile(store):
    store.append("points", synthetic_points("a"))
    store.set_state("a", "profile", {"tz": "America/Los_Angeles"})
    runner.run(store, workers=1, stages=STAGES)
    assert set(store.read("trips", ["a"])["tz"]) == {"America/Los_Angeles"}
    assert runner.user_tz(store, "zz") == "Europe/Paris"


def test_dask_executor_on_a_local_cluster(store):
    distributed = pytest.importorskip("distributed")
    store.append("points", pd.concat([synthetic_points(f"u{i}") for i in range(6)]))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        res = runner.run(store, executor="dask", scheduler=cluster.scheduler_address, stages=STAGES)
        assert res.users_to_process == 6 and res.processed == 6 and not res.failed
        assert res.executor == "dask" and res.workers == 2
        again = runner.run(store, executor="dask", scheduler=cluster.scheduler_address, stages=STAGES)
        assert again.users_to_process == 0
    assert len(store.read("trips")) == 18


def test_stage_context_resources_are_loaded_once():
    calls = []
    ctx = StageContext("u")
    for _ in range(3):
        assert ctx.resource("test-resource-once", lambda: calls.append(1) or "R") == "R"
    assert calls == [1]


def test_real_segment_stage_on_a_real_emission_day(store):
    info = load_stage("segment")
    if not info.available:
        pytest.skip(f"segment stage not available: {info.reason}")
    from emission_ext.io.readers import read
    from emission_ext.reference import emission_real_days
    from emission_ext.stores.loading import load_raw

    path = [p for p in emission_real_days() if p.name.startswith("shankari_2016-08-10")][0]
    load_raw(store, read(path, fmt="emission"))
    res = runner.run(store, workers=1, stages=("segment",))
    assert not res.failed, res.lines()
    (user,) = store.users("points")
    trips = store.read("trips", [user])
    assert len(trips) > 0 and set(trips["tz"]) == {"America/Los_Angeles"}
    sections = store.read("sections", [user])
    assert set(sections["trip_id"]) <= set(trips["trip_id"])
    labelled = store.read("labelled_points", [user])
    assert len(labelled) + len(store.read("removed_points", [user])) == len(store.read("points", [user]))
    assert runner.run(store, workers=1, stages=("segment",)).users_to_process == 0


def test_runner_on_the_mongo_store_standin():
    mongomock = pytest.importorskip("mongomock")
    from emission_ext.stores.mongo import MongoStore

    store = MongoStore(client=mongomock.MongoClient(), db="runner_test")  # mongomock-standin
    store.append("points", pd.concat([synthetic_points(u) for u in ("010", "011")]))
    res = runner.run(store, workers=2, stages=STAGES)  # in-memory client: runs in-process
    assert res.processed == 2 and not res.failed and res.workers == 1
    assert store.users("trips") == ["010", "011"] and len(store.read("trips")) == 6
    assert runner.run(store, workers=2, stages=STAGES).users_to_process == 0
