"""The incremental batch pipeline: runs the stages over every user whose inputs changed.

Why: ~50 testers today, a city tomorrow. The pipeline is per user (a user's trips depend only
on their own data), so the user is the unit of work, of locking and of atomic writes. For each
user and stage the runner keeps, in the store's state, the *fingerprint* of the stage's inputs
(the store's version token of each input table for that user, plus the stage's VERSION). A
stage whose fingerprint is unchanged is not re-run, so a second run with no new data does no
work ("0 users to process"). Outputs are replaced atomically per (table, user) and the state is
written only after them, so a run killed at any point is safely redone by the next one.

Executors: ``local`` (a process pool, one task per user; one worker runs inline) and ``dask``
(a dask.distributed scheduler; workers need this package installed and access to the store).
"""
from __future__ import annotations

import os
import pickle
import re
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

from . import schema
from .errors import ConfigError, EmissionExtError, StoreError
from .schema import DEFAULT_TZ
from .stages import STAGE_ORDER, StageContext, StageInfo, load_stages
from .stores.base import Store
from .stores.loading import PROFILE_STATE

EXECUTORS = ("local", "dask")


@dataclass
class UserResult:
    """What happened to one user in a run.

    ``ran``/``skipped``: stage names run / up to date; ``rows``: rows written per output table;
    ``error``: one line when the user failed (its later stages are not run); ``seconds``: wall
    time spent on the user.
    """

    user_id: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class RunSummary:
    """Result of :func:`run`."""

    stages: list[tuple[str, str | None]]  # (name, None if available else reason)
    users_total: int
    users_to_process: int
    results: list[UserResult]
    executor: str
    workers: int
    seconds: float

    @property
    def failed(self) -> list[UserResult]:
        return [r for r in self.results if r.error]

    @property
    def processed(self) -> int:
        return sum(1 for r in self.results if not r.error)

    def stage_runs(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            for s in r.ran:
                out[s] = out.get(s, 0) + 1
        return out

    def rows(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            for t, n in r.rows.items():
                out[t] = out.get(t, 0) + n
        return out

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        out = []
        for name, reason in self.stages:
            out.append(f"stage {name}: " + ("available" if reason is None else f"not available ({reason})"))
        if all(reason is not None for _, reason in self.stages):
            out.append("no stage is available: nothing can run")
        out.append(f"{self.users_total} users, {self.users_to_process} users to process")
        if self.users_to_process:
            runs = ", ".join(f"{s} x{n}" for s, n in self.stage_runs().items()) or "none"
            out.append(f"processed {self.processed} users, {len(self.failed)} failed, in "
                       f"{self.seconds:.1f} s ({self.executor}, {self.workers} workers); stage runs: {runs}")
            rows = {t: n for t, n in self.rows().items() if "__" not in t}  # final tables
            if rows:
                out.append("rows written: " + ", ".join(f"{t} {n}" for t, n in rows.items()))
            for r in self.failed:
                out.append(f"FAILED user {r.user_id}: {r.error}")
        return out


# --------------------------------------------------------------------------- per user


@dataclass(frozen=True)
class Plan:
    """Where each available stage reads and writes its tables.

    Several stages may write the same table (``segment`` -> ``modes`` -> ``fuse`` all write
    ``sections``). The last writer writes the table itself; an earlier writer writes an
    intermediate table ``<table>__<stage>``, and a stage reads each input from the latest
    writer before it (the table itself when none, e.g. raw ``points`` or ingested
    ``records``). So a downstream refinement never makes an upstream stage look stale, and
    re-running one stage always starts from its upstream stage's output.
    """

    stages: tuple[StageInfo, ...]
    sources: dict  # (stage, table) -> stored name read
    targets: dict  # (stage, table) -> stored name written

    @classmethod
    def build(cls, infos: Iterable[StageInfo]) -> "Plan":
        avail = tuple(s for s in infos if s.available)
        last: dict[str, str] = {}
        for st in avail:
            for t in st.module.OUTPUTS:
                last[t] = st.name
        targets = {(st.name, t): t if last[t] == st.name else intermediate_name(t, st.name)
                   for st in avail for t in st.module.OUTPUTS}
        sources = {}
        for i, st in enumerate(avail):
            for t in st.module.INPUTS:
                src = t
                for up in avail[:i]:
                    if t in up.module.OUTPUTS:
                        src = targets[(up.name, t)]
                sources[(st.name, t)] = src
        return cls(avail, sources, targets)

    def inputs(self, st: StageInfo) -> dict[str, str]:
        return {t: self.sources[(st.name, t)] for t in st.module.INPUTS}

    def outputs(self, st: StageInfo) -> dict[str, str]:
        return {t: self.targets[(st.name, t)] for t in st.module.OUTPUTS}


def intermediate_name(table: str, stage: str) -> str:
    """Stored name of ``table`` as written by ``stage`` when a later stage refines it."""
    return f"{table}__{re.sub(r'[^a-z0-9_]', '_', stage.lower())}"


def fingerprint(store: Store, user_id: str, plan: Plan, stage: StageInfo) -> dict:
    """The stage's version, where it writes, and the store's version token of each table it
    reads, for the user."""
    return {"version": stage.version,
            "inputs": {src: store.version(src, user_id) for src in plan.inputs(stage).values()},
            "outputs": sorted(plan.outputs(stage).values())}


def stale_stages(store: Store, user_id: str, plan: Plan) -> list[str]:
    """Names of the available stages whose recorded fingerprint differs from the current one.

    A stage reading what a stale stage writes is stale as well (its inputs will change).
    """
    out = []
    produced: set[str] = set()
    for st in plan.stages:
        stale = bool(produced & set(plan.inputs(st).values()))
        if not stale:
            saved = store.get_state(user_id, st.name).get("fingerprint")
            stale = saved != fingerprint(store, user_id, plan, st)
        if stale:
            out.append(st.name)
            produced.update(plan.outputs(st).values())
    return out


def user_tz(store: Store, user_id: str) -> str:
    """The user's time zone: tester profile, else the zone seen at import, else the default."""
    try:
        testers = store.read("testers", [user_id])
    except StoreError:
        testers = None
    if testers is not None and len(testers) and isinstance(testers["tz"].iloc[0], str) and testers["tz"].iloc[0]:
        return str(testers["tz"].iloc[0])
    return store.get_state(user_id, PROFILE_STATE).get("tz") or DEFAULT_TZ


def _read_input(store: Store, table: str, source: str, user_id: str) -> pd.DataFrame:
    df = store.read(source, [user_id])
    if table in schema.TABLES and source != table:  # an intermediate copy of a schema table
        df = schema.coerce(df, table) if len(df) else schema.empty(table)
    return df


def process_user(store: Store, user_id: str, stage_names: Iterable[str] = STAGE_ORDER,
                 params: Mapping[str, Any] | None = None, force: bool = False) -> UserResult:
    """Run the stale stages of one user under the user's lock; never raises for a user's
    failure (the error is in the result)."""
    t0 = time.perf_counter()
    res = UserResult(user_id)
    plan = Plan.build(load_stages(tuple(stage_names)))
    try:
        with store.lock(user_id):
            ctx = StageContext(user_id=user_id, tz=user_tz(store, user_id), params=dict(params or {}))
            fresh: dict[str, pd.DataFrame] = {}  # stored name -> frame written in this run
            for st in plan.stages:
                sources, targets = plan.inputs(st), plan.outputs(st)
                fp = fingerprint(store, user_id, plan, st)
                changed_inputs = bool(set(fresh) & set(sources.values()))
                if not force and not changed_inputs and \
                        store.get_state(user_id, st.name).get("fingerprint") == fp:
                    res.skipped.append(st.name)
                    continue
                inputs = {t: fresh[src] if src in fresh else _read_input(store, t, src, user_id)
                          for t, src in sources.items()}
                try:
                    outputs = st.module.run(inputs, ctx)
                except EmissionExtError as exc:
                    raise _StageFailed(f"{st.name}: {exc}") from None
                except Exception as exc:  # a bug in a stage: keep the user's failure, go on
                    where = traceback.extract_tb(exc.__traceback__)[-1]
                    raise _StageFailed(f"{st.name}: {type(exc).__name__}: {exc} "
                                       f"({os.path.basename(where.filename)}:{where.lineno})") from None
                missing = [t for t in targets if t not in outputs]
                if missing:
                    raise _StageFailed(f"{st.name}: did not return {', '.join(missing)}")
                for t, dst in targets.items():
                    df = outputs[t]
                    res.rows[dst] = res.rows.get(dst, 0) + store.replace_user(dst, user_id, df)
                    fresh[dst] = df
                # a table the stage reads and rewrites itself (e.g. fuse's records) is
                # recorded as written, else the stage would look stale forever
                written = set(targets.values())
                fp["inputs"] = {src: store.version(src, user_id) if src in written else v
                                for src, v in fp["inputs"].items()}
                # state last: a crash before this line only means the stage is redone
                store.set_state(user_id, st.name, {
                    "fingerprint": fp,
                    "rows": {dst: int(len(outputs[t])) for t, dst in targets.items()},
                    "last_input_ts": _last_ts(inputs),
                    "finished_at": time.time(),
                })
                res.ran.append(st.name)
    except _StageFailed as exc:
        res.error = str(exc)
    except EmissionExtError as exc:  # lock held elsewhere, store errors
        res.error = str(exc)
    res.seconds = time.perf_counter() - t0
    return res


class _StageFailed(Exception):
    pass


def _last_ts(inputs: Mapping[str, pd.DataFrame]) -> float | None:
    """Latest raw timestamp among the inputs (unix seconds), kept in the state for operators."""
    best = None
    for df in inputs.values():
        if "ts" in df.columns and len(df):
            m = df["ts"].max()
            if pd.notna(m):
                v = m.timestamp()
                best = v if best is None else max(best, v)
    return best


# ------------------------------------------------------------------------------ the run


def _users(store: Store, users: Iterable[str] | None) -> list[str]:
    known = sorted(set(store.users("points")) | set(store.users("records")))
    if users is None:
        return known
    users = list(dict.fromkeys(users))
    unknown = [u for u in users if u not in known]
    if unknown:
        raise ConfigError(f"unknown user(s): {', '.join(unknown)} (the store has {len(known)} users"
                          + (f", e.g. {', '.join(known[:5])})" if known else ")"))
    return users


def run(store: Store, users: Iterable[str] | None = None, *, executor: str = "local",
        workers: int | None = None, scheduler=None, stages: Iterable[str] = STAGE_ORDER,
        params: Mapping[str, Any] | None = None, force: bool = False,
        progress: Callable[[int], Any] | None = None) -> RunSummary:
    """Run the pipeline for ``users`` (all users of the store by default).

    Parameters
    ----------
    store : Store
        Where inputs are read and results written (must be picklable for more than one
        worker or for dask).
    users : iterable of str, optional
        Only these users; an unknown id raises :class:`ConfigError`.
    executor : {"local", "dask"}
        ``local``: a process pool of ``workers`` processes (default: the number of cores;
        ``1`` runs in this process). ``dask``: tasks on the dask.distributed scheduler at
        ``scheduler`` (an address such as ``tcp://host:8786``, or a ``distributed.Client``).
    stages : iterable of str
        Stage names, in order (default all of :data:`STAGE_ORDER`).
    params : mapping, optional
        Per-stage parameters handed to stages through their context.
    force : bool
        Redo every stage even when its inputs are unchanged.
    progress : callable, optional
        ``progress(total)`` returns a tqdm-like object (``update(n)``, ``close()``), advanced
        once per finished user.
    """
    t0 = time.perf_counter()
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if executor == "dask" and scheduler is None:
        raise ConfigError("the dask executor needs a scheduler address (--scheduler tcp://HOST:PORT)")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    infos = load_stages(tuple(stages))
    names = tuple(s.name for s in infos)
    plan = Plan.build(infos)
    all_users = _users(store, users)
    todo = all_users if force else [u for u in all_users if stale_stages(store, u, plan)]
    nworkers = workers or (os.cpu_count() or 1)
    results: list[UserResult] = []
    bar = progress(len(todo)) if (progress is not None and todo) else None
    try:
        if not todo:
            pass
        elif executor == "local":
            nworkers = 1 if not _picklable(store) else min(nworkers, len(todo))
            results = _run_local(store, todo, names, params, force, nworkers, bar)
        else:
            results, nworkers = _run_dask(store, todo, names, params, force, scheduler, bar)
    finally:
        if bar is not None:
            bar.close()
    results.sort(key=lambda r: r.user_id)
    return RunSummary(stages=[(s.name, s.reason) for s in infos], users_total=len(all_users),
                      users_to_process=len(todo), results=results, executor=executor,
                      workers=nworkers if todo else 0, seconds=time.perf_counter() - t0)


def _tick(bar) -> None:
    if bar is not None:
        bar.update(1)


def _picklable(store: Store) -> bool:
    try:
        pickle.dumps(store)
    except (StoreError, pickle.PicklingError, TypeError, AttributeError):
        return False
    return True


def _run_local(store, todo, names, params, force, workers, bar) -> list[UserResult]:
    if workers == 1 or len(todo) == 1 or not _picklable(store):  # e.g. an in-memory test client
        out = []
        for u in todo:
            out.append(process_user(store, u, names, params, force))
            _tick(bar)
        return out
    out = []
    with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        futs = {pool.submit(process_user, store, u, names, params, force): u for u in todo}
        for f in as_completed(futs):
            try:
                out.append(f.result())
            except Exception as exc:  # worker died (killed, out of memory...)
                out.append(UserResult(futs[f], error=f"worker failed: {type(exc).__name__}: {exc}"))
            _tick(bar)
    return out


def _run_dask(store, todo, names, params, force, scheduler, bar) -> tuple[list[UserResult], int]:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError as exc:
        raise ConfigError(f"the dask executor needs dask[distributed] installed ({exc})") from None
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout=10) if own else scheduler
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the dask scheduler {scheduler}: {exc}") from None
    try:
        nworkers = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
        stamp = time.time_ns()
        futs = [client.submit(process_user, store, u, names, params, force, pure=False,
                              key=f"emission-ext-user-{u}-{stamp}")
                for u in todo]
        owner = {f.key: u for f, u in zip(futs, todo)}
        out = []
        for f in dask_completed(futs):
            try:
                out.append(f.result())
            except Exception as exc:  # worker lost
                out.append(UserResult(owner[f.key], error=f"dask task failed: {type(exc).__name__}: {exc}"))
            _tick(bar)
        return out, nworkers
    finally:
        if own:
            client.close()
