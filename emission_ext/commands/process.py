"""``emission-ext process``: stateless segmentation of raw files into trips, sections, places.

Why: the quickest way to see what the pipeline makes of some raw data, with no store: read
every input (e-mission JSON, CSV, GPX, GeoLife), segment all users at once with
:func:`pipeline.segment.segment_user` and write ``trips.csv``, ``sections.csv`` and
``places.csv`` (SPEC section 3 columns, unix-second timestamps) into ``--out``.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import click

from ..errors import InputError

# pandas, numpy and the pipeline are imported inside the functions: the CSV parse starts in
# a background thread first and runs while they load (see emission_ext.io.csv_arrow)

FORMATS = ("auto", "emission", "csv", "gpx", "geolife")

#: Output tables, in the order they are written.
TABLES = ("trips", "sections", "places")

#: Fewer points than this per worker are segmented in one process (a fork costs more).
MIN_POINTS_PER_JOB = 100_000

#: A worker segments its users in runs of about this many points, one run after the other,
#: so only one run's work arrays are alive at a time (``--batch-points``).
BATCH_POINTS = 150_000


def keep_freed_memory() -> None:
    """Ask glibc's allocator to reuse freed memory instead of returning it to the system
    (and Arrow to allocate with jemalloc).

    Why: segmentation makes and drops hundreds of work arrays of a few MB each. By default
    glibc gives every array above its (adaptive) mmap threshold fresh pages from the kernel
    and unmaps them when freed, so each one is paid again in page faults (~0.2 s of system
    time per million points). Arrays up to 32 MiB now come from the heap and freed space is
    kept for the next ones; peak memory stays the same. No-op where glibc is absent.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)  # the program's own symbols: glibc's, no library search
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # glibc malloc.h
        libc.mallopt(m_mmap_threshold, 32 << 20)  # the largest glibc accepts on 64-bit
        libc.mallopt(m_trim_threshold, 1 << 30)
        libc.mallopt(m_top_pad, 64 << 20)
    except (OSError, AttributeError):
        pass
    try:  # Arrow's own allocations (the CSV parse): jemalloc where pyarrow has it; its
        # default, mimalloc, cost 0.04-0.2 s more system time per million points here
        import pyarrow as pa

        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)  # what a worker frees goes back at once (peak memory)
    except (ImportError, NotImplementedError, AttributeError):
        pass


def single_blas_thread() -> None:
    """Run numpy's OpenBLAS with one thread, unless the user chose otherwise; call before
    numpy is imported.

    Why: at import OpenBLAS starts one thread per extra core, which busy-waits for work
    (~0.1 s of CPU here, measured with ``perf``) while the modules load and the CSV parses,
    taking a core from them. ``process`` makes no BLAS call (no matrix products in the
    pipeline or the mode classifier), so the threads only cost.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


#: Heap grown (not touched) before the workers fork and marked for transparent huge pages:
#: about what a worker of a million-point input allocates.
HUGE_HEAP_BYTES = 256 << 20


def huge_page_heap(nbytes: int = HUGE_HEAP_BYTES) -> bool:
    """Grow glibc's heap by ``nbytes`` without touching it and ask the kernel to back it with
    transparent huge pages (``madvise(MADV_HUGEPAGE)``); True if it did.

    Why: a worker's arrays come from the heap (:func:`keep_freed_memory`), and each 4 KiB page
    of it costs a page fault the first time it is written (~33,000 per worker of a million
    points, ~0.1 s of system time in a VM). Huge pages come 2 MiB at a time: ~15,000 faults,
    ~0.03 s less system time per worker (5 pairs of forked workers). This is what glibc's
    ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` does, which must be set before the program
    starts. Pages stay untouched (no memory used) until allocated; the heap keeps the
    reservation (address space only). Where the kernel's THP mode is ``never``, nothing
    changes. Linux and glibc only; elsewhere a no-op. Call after :func:`keep_freed_memory`
    (with glibc's default mmap threshold the blocks would not come from the heap).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux") or nbytes <= 0:
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        # blocks below the mmap threshold (32 MiB, keep_freed_memory) come from the heap, and
        # freed they stay there (trim threshold 1 GiB): the heap's end moves up by nbytes
        block = 16 << 20
        blocks = [libc.malloc(block) for _ in range(max(1, nbytes // block))]
        for b in blocks:
            if b:
                libc.free(b)
        heap = None
        with open("/proc/self/maps") as fh:
            for line in fh:
                if line.rstrip().endswith("[heap]"):
                    heap = [int(x, 16) for x in line.split()[0].split("-")]
        if heap is None:
            return False
        huge = 2 << 20
        start = (heap[0] + huge - 1) & ~(huge - 1)
        madv_hugepage = 14  # linux/mman.h
        return start < heap[1] and libc.madvise(start, heap[1] - start, madv_hugepage) == 0
    except (OSError, AttributeError, ValueError):
        return False


def arrow_on_heap() -> None:
    """From here on, Arrow allocates from the C allocator (its system pool) instead of
    jemalloc; call once the CSV parse is done (its table stays where it is).

    Why: segmentation and writing make and drop Arrow buffers (user ids, compute results,
    the WKT text, the CSV writer's output), a few MB each. jemalloc, set to hand freed pages
    back at once (:func:`keep_freed_memory`), made each of them fresh pages again; glibc keeps
    what is freed (:func:`keep_freed_memory`) and the next buffer reuses it, in the workers'
    huge pages (:func:`huge_page_heap`). On 1M points: ~18,000 fewer page faults per run
    (76,000 -> 58,000), CPU 1.187 -> 1.153 s, wall 0.684 -> 0.659 s (10 interleaved runs).
    """
    try:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    except (ImportError, AttributeError):
        pass


def _before_fork() -> None:
    """Make the pages parent and children share cheap to keep apart: free heap pages go back
    to the system (reused ones would be copied on write in each process) and Python objects
    alive now leave the garbage collector's scans (which would write to them). No collection
    first (~16 ms): a worker's little frozen garbage ends with it. Then the heap the workers
    will fill is reserved in huge pages (:func:`huge_page_heap`)."""
    import gc

    gc.freeze()
    trim_heap()
    huge_page_heap()


def prefetch_csv(paths, fmt: str):
    """Start parsing a single CSV input in the background (:class:`~emission_ext.io.csv_arrow.
    Prefetch`), before the heavy imports; None for anything else."""
    if len(paths) != 1 or fmt not in ("auto", "csv"):
        return None
    name = str(paths[0]).lower()
    if fmt == "auto" and not name.endswith(".csv"):
        return None  # let format detection look at the content
    from ..io.csv_arrow import Prefetch

    return Prefetch(paths[0], then=trim_heap)


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (``malloc_trim``); no-op without glibc.

    Why: the CSV parse frees its read blocks (tens of MB) when it ends; kept, the forked
    workers would share them and copy each page they reuse. The background parse trims
    right after it ends (:func:`prefetch_csv`), on the core the imports leave free, so the
    trim before the fork (:func:`_before_fork`) finds little left: ~4 ms less before the
    workers start on 1M points.
    """
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)  # ctypes releases the GIL during the call
    except (OSError, AttributeError):
        pass


def read_inputs(paths, fmt: str, skip_bad: bool, prefetch=None, arrow: bool = True):
    """Read and concatenate every input file; returns (points, motion, transitions, skipped).

    ``prefetch``: the background parse of the single CSV input (:func:`prefetch_csv`);
    ``arrow=False`` reads CSV files with pandas only (exact line numbers in messages)."""
    import pandas as pd

    from .. import schema
    from ..io.readers import read

    if prefetch is not None:
        from ..io.csv_points import read_csv_points

        raw = read_csv_points(paths[0], skip_bad=skip_bad, prefetch=prefetch, arrow=arrow)
        return raw.points, None, None, raw.skipped
    pts, mot, trn, skipped = [], [], [], 0
    if len(paths) > 1:  # a bar for one file says nothing (and tqdm costs ~50 ms to import)
        from ._common import progress

        paths = progress(paths, desc="reading", unit="file")
    for path in paths:
        raw = read(path, fmt=fmt, skip_bad=skip_bad)
        p = raw.points
        if any(z != schema.DEFAULT_TZ for z in raw.tz.values()):  # default zone: no column needed
            p = p.assign(tz=p["user_id"].map(raw.tz))
        pts.append(p)
        mot.append(raw.motion)
        trn.append(raw.transitions)
        skipped += raw.skipped
    def cat(frames):
        frames = [f for f in frames if len(f)]
        if not frames:
            return None
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    points = cat(pts)
    if points is None:
        points = pts[0] if pts else None
    return points, cat(mot), cat(trn), skipped


def auto_jobs(n_points: int, n_users: int) -> int:
    """Worker processes worth forking: one per usable core, at least
    :data:`MIN_POINTS_PER_JOB` points and one user each; 1 where ``os.fork`` is missing."""
    if not hasattr(os, "fork"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, n_users, n_points // MIN_POINTS_PER_JOB))


def split_starts(first, n: int, jobs: int) -> list[int] | None:
    """Row bounds cutting ``n`` points sorted by user into ``jobs`` runs of whole users with
    about equal numbers of points, from the first row of each user (``first``, rising); None
    when there is nothing to cut (one user, or ``jobs`` < 2)."""
    import numpy as np

    if jobs < 2 or n == 0 or len(first) < 2:
        return None
    cuts = np.searchsorted(first, np.arange(1, jobs) * n / jobs)  # nearest user start above
    cuts = np.unique(np.clip(cuts, 1, len(first) - 1))
    return [0, *np.asarray(first)[cuts].tolist(), n]


def user_firsts(codes):
    """First row of each user (int64 array) from the user code of each point
    (:func:`pipeline.clean.user_codes`), or None when there are no points or they are not
    sorted by user (then one process does all)."""
    import numpy as np

    if codes.size == 0 or not (codes[1:] >= codes[:-1]).all():
        return None
    return np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])


def job_batches(first, parts: list[int], batch_points: int) -> list[list[tuple[int, int]]]:
    """Each job's rows (``parts``: bounds from :func:`split_starts`) cut again at user starts
    (``first``, rising) into batches of about ``batch_points`` points or fewer: per job, its
    ``[lo, hi)`` row ranges in order. A user is never cut; one bigger than ``batch_points``
    is a batch of its own.

    Why: a worker's peak memory is its work arrays, which grow with the points segmented at
    once. On 1M points (two workers of 500,000), four batches of 125,000 each instead of one
    took the tree's summed RSS from ~540 to ~450 MiB (PSS ~400 -> ~300 MiB) at no cost in
    time: each batch's fixed costs (~10-15 ms: its points table, its trips, places and
    sections frames) are paid back by smaller arrays reused from the heap (fewer fresh
    pages, which are dear on a VM). See docs/segmentation.md, Benchmark.
    """
    import numpy as np

    first = np.asarray(first)
    out = []
    for lo, hi in zip(parts[:-1], parts[1:]):
        n_batches = -(-(hi - lo) // max(1, batch_points))
        inner = first[(first >= lo) & (first < hi)] - lo  # this job's user starts, from 0
        cut = split_starts(inner, hi - lo, n_batches)
        out.append([(lo, hi)] if cut is None
                   else [(lo + a, lo + b) for a, b in zip(cut[:-1], cut[1:])])
    return out


def split_table(table, cols: dict[str, str], jobs: int, starts=None):
    """``(row bounds, number of users)`` cutting a pyarrow-parsed CSV into runs of whole users
    (see :func:`split_starts`), or None when its rows are not sorted by user id (or have none).
    ``starts``: :func:`~emission_ext.io.csv_arrow.user_starts` of the table, when known."""
    from ..io.csv_arrow import user_starts

    if starts is None:
        starts = user_starts(table, cols)
    if starts is None:
        return None
    n, n_users = table.num_rows, len(starts)
    parts = split_starts(starts, n, min(jobs, n_users) if jobs else auto_jobs(n, n_users))
    return None if parts is None else (parts, n_users)


def shared_wkt(trips, sections) -> dict:
    """WKT text of the trips' and sections' geometries, each shape formatted once.

    Why: formatting coordinates as text is most of writing the CSVs, and most trips are one
    section whose geometry is the trip's own: those sections reuse their trip's text.
    """
    import numpy as np
    import pandas as pd

    from ..io.writers import geometry_wkt

    if "geometry" not in trips.columns or "geometry" not in sections.columns:
        return {}
    trip_wkt = geometry_wkt(trips["geometry"])
    sec_wkb = sections["geometry"].to_numpy(dtype=object)
    # each section's trip (the first of that id: the bytes are compared below anyway)
    ids = trips["trip_id"]
    first = np.flatnonzero(~ids.duplicated().to_numpy())
    at = pd.Index(ids.iloc[first]).get_indexer(sections["trip_id"])
    at = np.where(at >= 0, first[np.maximum(at, 0)], -1)
    trip_wkb = trips["geometry"].to_numpy(dtype=object)
    same = np.zeros(len(sections), dtype=bool)
    found = np.flatnonzero(at >= 0)
    if found.size:  # bytes compared by value; None (a one-point shape) equals None only
        same[found] = [a is not None and a == b for a, b in zip(sec_wkb[found], trip_wkb[at[found]])]
    sec_wkt = np.empty(len(sections), dtype=object)
    sec_wkt[same] = trip_wkt[at[same]]
    rest = np.flatnonzero(~same)
    if rest.size:
        sec_wkt[rest] = geometry_wkt(sec_wkb[rest])
    return {"trips": trip_wkt, "sections": sec_wkt}


def segment_and_write(batches, motion, transitions, no_modes: bool, out: Path,
                      header: bool = True) -> dict:
    """Segment batches of whole users one after the other (and classify modes unless
    ``no_modes``), then write the three CSVs of all of them into the folder ``out``
    (created if missing); returns the summary counts and step times (seconds).

    ``batches``: functions each returning ``(points, codes)`` of one batch: its points and
    their user codes when known (:attr:`~emission_ext.io._common.RawData.user_codes`), else
    None (see :func:`job_batches`; a worker's batches check their own rows of the input).
    ``header``: write the header lines (the first run of users of a file).

    The tables are written once, after the last batch: a batch leaves only its trips,
    sections and places (a few thousand rows), and each write has fixed costs (checks
    against the schema, Arrow conversion, the file) that a batch need not pay again.
    """
    from pipeline.segment import segment_user

    from ..io.writers import write_table
    from ..models.apply import transit_index

    parts = {name: [] for name in TABLES}
    info = {"removed": 0, "points": 0, "check": 0.0, "segment": 0.0, "modes": 0.0}
    for batch in batches:
        t0 = time.perf_counter()
        points, codes = batch()
        info["points"] += len(points)
        t1 = time.perf_counter()
        res = segment_user(points, motion, transitions,
                           labelled=False if no_modes else "arrays",
                           transit=transit_index(), codes=codes)  # transit: ferry crossings
        del points, codes
        t2 = time.perf_counter()
        if not no_modes:  # the shipped mode classifier (rules when none is shipped)
            from ..models.apply import apply_modes

            res["sections"] = apply_modes(res["sections"], res.pop("section_points"), motion)
        t3 = time.perf_counter()
        for name in TABLES:
            parts[name].append(res[name])
        info["removed"] += len(res["removed"])
        del res
        info["check"] += t1 - t0
        info["segment"] += t2 - t1
        info["modes"] += t3 - t2
    t3 = time.perf_counter()
    tables = {name: _concat(frames) for name, frames in parts.items()}
    del parts
    wkt = shared_wkt(tables["trips"], tables["sections"])
    for name in TABLES:
        write_table(tables[name], out / f"{name}.csv", table=name, header=header,
                    wkt=wkt.get(name))
    info["write"] = time.perf_counter() - t3
    return {**{name: len(tables[name]) for name in TABLES}, **info}


def _concat(frames):
    """One table from the batches' tables (the first one itself when alone)."""
    import pandas as pd

    frames = [f for f in frames if len(f)] or frames[:1]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _forked(jobs, motion, transitions, no_modes, tmp: Path
            ) -> tuple[list[dict], dict, list[int]]:
    """Segment runs of users in parallel: ``jobs[k]`` is a list of functions each giving the
    points of one batch of run ``k`` and their user codes (or None), segmented one after the
    other (:func:`segment_and_write`); runs ``0 .. len(jobs) - 2`` are each done in a forked
    child writing into ``tmp/<k>/`` (run 0 with the header lines), the last one here, into
    ``tmp/last/``. A child that fails is redone here, so errors surface exactly as in one
    process. Returns each run's summary (in order), the last run's CSV file per table and the
    children still to reap: a child that sent its summary has written its files, and the
    caller reaps it once the tables are assembled (meanwhile the system tears it down)."""
    last = len(jobs) - 1
    kids = {}
    _before_fork()
    for k in range(last):
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to spare: this run is done here below
            os.close(r), os.close(w)
            kids[k] = (None, None)
            continue
        if pid == 0:  # child: its users only, then leave without running any parent code
            code = 1
            try:
                os.close(r)
                info = segment_and_write(jobs[k], motion, transitions, no_modes, tmp / str(k),
                                         header=k == 0)
                os.write(w, json.dumps(info).encode())  # one write (< PIPE_BUF): whole
                os.close(w)  # the parent reads its end now, not after this process is gone
                code = 0
            except BaseException:  # noqa: BLE001 - the parent redoes this run
                pass
            finally:
                os._exit(code)
        os.close(w)
        kids[k] = (pid, r)
    import gc

    gc.unfreeze()  # the children keep theirs frozen; here the collector goes on as usual
    # into files, not memory: a growing in-memory buffer was copied at every doubling (a
    # profile put ~8,000 page faults there); the files are appended to run 0's in the kernel
    try:
        mine_info = segment_and_write(jobs[last], motion, transitions, no_modes, tmp / "last",
                                      header=last == 0)
    except BaseException:
        for pid, r in kids.values():  # reap the children before giving up
            if pid is not None:
                os.close(r)
                os.waitpid(pid, 0)
        raise
    infos, pending = [], []
    for k, (pid, r) in kids.items():
        info = None
        if pid is not None:
            with os.fdopen(r, "rb") as fh:
                msg = fh.read()
            try:
                info = json.loads(msg) if msg else None
            except ValueError:
                info = None
            if info is None:  # failed: gone (or going) without its summary
                os.waitpid(pid, 0)
            else:
                pending.append(pid)
        if info is None:
            shutil.rmtree(tmp / str(k), ignore_errors=True)
            info = segment_and_write(jobs[k], motion, transitions, no_modes, tmp / str(k),
                                     header=k == 0)
        infos.append(info)
    infos.append(mine_info)
    return infos, {name: tmp / "last" / f"{name}.csv" for name in TABLES}, pending


def _append(src: Path, fh) -> None:
    """Append the file ``src`` to the open binary file ``fh`` (positioned at its end): copied
    by the kernel (``os.copy_file_range``) where it can, else through a buffer."""
    with open(src, "rb") as inp:
        if hasattr(os, "copy_file_range"):
            fh.flush()
            try:
                while os.copy_file_range(inp.fileno(), fh.fileno(), 1 << 30):
                    pass
                return
            except OSError:  # not on this file system: the rest through a buffer
                pass
        fh.seek(0, os.SEEK_END)  # where the kernel's copies left the file
        shutil.copyfileobj(inp, fh, 1 << 20)


class _Retry(Exception):
    """A part must be redone from the file (its worker failed after the parse was dropped)."""


def _in_parts(jobs, motion, transitions, no_modes, out: Path) -> list[dict]:
    """:func:`_forked` into a scratch folder inside ``out``, then each table assembled there:
    the first child's file, the other children's appended, then this process's rows (no copy
    of the first child's rows)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".process-", dir=out))
    pending: list[int] = []
    n_parts = len(jobs)
    try:
        infos, mine, pending = _forked(jobs, motion, transitions, no_modes, tmp)
        for name in TABLES:
            dst = tmp / "0" / f"{name}.csv" if n_parts > 1 else mine[name]
            if n_parts > 1:
                with open(dst, "r+b") as fh:  # not "ab": copy_file_range refuses O_APPEND
                    fh.seek(0, os.SEEK_END)
                    for k in range(1, n_parts - 1):
                        _append(tmp / str(k) / f"{name}.csv", fh)
                    _append(mine[name], fh)
            os.replace(dst, out / f"{name}.csv")
        return infos
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for pid in pending:  # done by now: their time counts in this process's children
            os.waitpid(pid, 0)


@click.command("process")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Input format (auto: from the extension and content).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder for trips.csv, sections.csv, places.csv.")
@click.option("--skip-bad", is_flag=True, help="Skip malformed entries instead of stopping.")
@click.option("--quiet", is_flag=True, help="Do not print the summary.")
@click.option("--no-modes", is_flag=True,
              help="Skip the travel-mode classifier (sections keep the segmentation's speed-regime mode).")
@click.option("--jobs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes (users are split between them); 0: one per core for "
                   f"inputs of {MIN_POINTS_PER_JOB:,}+ points per core.")
@click.option("--batch-points", type=click.IntRange(min=1), default=BATCH_POINTS,
              show_default=True,
              help="With several workers, each segments its users in batches of about this "
                   "many points, one after the other (less memory; a user is never cut).")
def command(inputs, fmt, out_dir, skip_bad, quiet, no_modes, jobs, batch_points):
    """Segment raw INPUT files into trips, sections and places (no store)."""
    import gc

    t0 = time.perf_counter()
    single_blas_thread()  # first: numpy is loaded by keep_freed_memory (pyarrow) below
    keep_freed_memory()
    prefetch = prefetch_csv(inputs, fmt)  # first: it parses while the imports below run
    # module imports make hundreds of thousands of objects and no garbage: without a pause,
    # the cyclic collector would walk them all a few times (~0.03 s); after it they are
    # frozen (below), or the first collection would walk them all at once
    collecting = gc.isenabled()
    gc.disable()
    try:
        from ..io import csv_points, writers  # noqa: F401 - pandas; the workers' reader, writer

        if not no_modes:  # model and transit index load during the parse; workers inherit them
            from ..models.apply import preload

            preload()
        else:  # segmentation reads the ferry routes
            from ..models.apply import transit_index

            transit_index()
        import pipeline.segment  # noqa: F401 - loaded once, before the workers fork
        import shapely  # noqa: F401 - every worker builds and writes geometries: one import
        # here (~15 ms, while the CSV still parses) instead of one in each process
    finally:
        if collecting:
            # out of the collector's sight: the first collection after the pause walked every
            # object the imports made (30-100 ms before the fork, on the critical path)
            gc.freeze()
            gc.enable()

    out = Path(out_dir)
    infos = None
    # a parsed CSV sorted by user: each worker checks its own rows (no fault: the same
    # points table as one process; a fault: read again below with pandas, for the message)
    parsed = prefetch.result() if prefetch is not None and jobs != 1 else None
    arrow_on_heap()  # the parse is over (or never started)
    starts = prefetch.user_starts() if parsed is not None else None
    split = split_table(*parsed, jobs, starts) if parsed is not None else None
    if split is not None:
        import numpy as np

        from ..io.csv_points import points_from_arrow

        (parts, n_users), (table, cols), skipped, motion = split, parsed, 0, None
        box = [table]  # the only reference: each process drops the parsed file once it has
        del parsed, table  # its own points (parent and children each hold ~40 MB of it)
        prefetch.release()

        def part(a, b, last):
            if not box:  # a worker failed after the parent let the file go: start again
                raise _Retry
            rows = box[0].slice(a, b - a)
            # this batch's users start where the whole parse's do (cut between users)
            mine = starts[np.searchsorted(starts, a):np.searchsorted(starts, b)] - a
            raw = points_from_arrow(str(inputs[0]), rows, cols, user_starts=mine)
            if last:  # the run's last batch
                box.clear()
            return raw.points, raw.user_codes

        runs = [[functools.partial(part, a, b, i == len(r) - 1) for i, (a, b) in enumerate(r)]
                for r in job_batches(starts, parts, batch_points)]
        t1 = time.perf_counter()
        try:
            infos = _in_parts(runs, None, None, no_modes, out)
        except (InputError, _Retry):
            infos = None
        box.clear()
    if infos is None:
        points, motion, transitions, skipped = read_inputs(inputs, fmt, skip_bad, prefetch,
                                                           arrow=split is None)
        if points is None:
            raise InputError(inputs[0], "no input")
        t1 = time.perf_counter()
        from pipeline.clean import user_codes

        coded = user_codes(points["user_id"])
        n_users = len(coded[1])
        first = user_firsts(coded[0])
        parts = None if first is None else split_starts(
            first, len(points), jobs or auto_jobs(len(points), n_users))
        if parts is None:
            infos = [segment_and_write([lambda: (points, coded)], motion, transitions, no_modes,
                                       out)]
        else:
            del coded

            def rows(a, b):
                return points.iloc[a:b], None

            runs = [[functools.partial(rows, a, b) for a, b in r]
                    for r in job_batches(first, parts, batch_points)]
            infos = _in_parts(runs, motion, transitions, no_modes, out)
        del points
    gc.unfreeze()  # as the collector was (a forked run's parent did this already)
    t3 = time.perf_counter()
    if not quiet:
        tot = {k: sum(i[k] for i in infos) for k in (*TABLES, "removed", "points")}
        step = {k: max(i[k] for i in infos) for k in ("check", "segment", "modes", "write")}
        n_points = tot["points"]
        click.echo(
            f"{n_points} points ({tot['removed']} removed by cleaning, {skipped} bad entries "
            f"skipped), {n_users} users -> {tot['trips']} trips, "
            f"{tot['sections']} sections, {tot['places']} places in {out}/ "
            f"(read {t1 - t0 + step['check']:.2f} s, segment {step['segment']:.2f} s, "
            f"modes {step['modes']:.2f} s, "
            f"write {step['write']:.2f} s"
            + (f"; {len(infos)} processes, total {t3 - t0:.2f} s)" if len(infos) > 1 else ")"))
    from ..cli import EXIT_NOW

    return EXIT_NOW  # every output file is written and closed
