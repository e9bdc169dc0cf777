"""Run a command in a child process and measure it from outside: wall time, CPU, peak memory.

Why: speed and memory figures must include everything a user pays for (interpreter start,
imports, reading the CSV, writing results) and must not be disturbed by the harness itself.
A tool may fork workers (``emission-ext process`` segments users on every core), so one
process's figures are not enough:

* CPU time comes from ``os.wait4``: the child's own usage plus that of every descendant it
  waited for (the whole tree's user + system seconds);
* memory is sampled every ~20 ms over the whole process tree (the child and all its
  descendants, found through ``/proc``): the peak of the summed resident set (RSS; pages
  shared between a parent and its forked children count once per process, so this
  overstates) and the peak of the summed proportional set (PSS; each shared page split
  between its sharers, so the sum is the memory the tree really occupies). ``ru_maxrss``
  (the largest single process) is kept too; sampling can miss a peak shorter than 20 ms,
  which ``ru_maxrss`` cannot, so the reported summed RSS is never below it.

Sampling is not free: reading ``smaps_rollup`` walks the page tables under the process's
memory lock, and the sampler thread takes CPU from a 2-core machine (~60 ms of CPU and ~45 ms
of wall time on a 0.65 s run of ``emission-ext process``). :func:`measure` therefore takes the
memory from one sampled run and the times from further runs with no sampler (their medians).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, replace

#: Memory sampling interval, seconds (RSS); PSS at most this often unless RSS grew 10 %.
SAMPLE_S = 0.02
PSS_EVERY_S = 0.2


@dataclass(frozen=True)
class RunResult:
    """What one benchmark run measured.

    ``wall_s`` and ``cpu_s`` (user + system of the whole tree) in seconds; ``peak_rss_mb``
    (largest single process, ``ru_maxrss``), ``tree_rss_mb`` and ``tree_pss_mb`` (peaks of the
    tree's summed RSS and PSS) in MiB; ``processes`` is the most processes seen at once;
    ``wall_runs``: each timed run's wall time when :func:`measure` took the median of several.
    """

    name: str
    returncode: int
    wall_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    cpu_s: float = float("nan")
    tree_rss_mb: float = float("nan")
    tree_pss_mb: float = float("nan")
    processes: int = 1
    wall_runs: tuple = ()


def _descendants(pid: int) -> list[int]:
    """``pid`` and its descendants, from ``/proc/<pid>/task/<tid>/children`` (Linux)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue  # gone meanwhile
    return out


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


def _rss_kb(pid: int) -> int:
    """Resident set size of one process, KiB, from ``/proc/<pid>/statm`` (cheap); 0 if gone."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


def _pss_kb(pid: int) -> int:
    """Proportional set size of one process, KiB, from ``smaps_rollup`` (walks its page
    tables: ~0.5 ms for a GB); 0 if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class _TreeSampler(threading.Thread):
    """Samples the summed RSS/PSS of a process tree until stopped; keeps the peaks (KiB).

    The RSS sum is read every :data:`SAMPLE_S` from ``statm`` (a counter); the costlier PSS
    once the RSS sum has grown 10 % since the last PSS read, and every :data:`PSS_EVERY_S`
    otherwise: a PSS peak can be under-read by up to ~10 % while memory grows fast, and the
    sampler neither uses much CPU nor holds up the measured process's allocations.
    """

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.rss, self.pss, self.procs = pid, 0, 0, 1
        self.ok = os.path.exists(f"/proc/{pid}/smaps_rollup")
        self._halt = threading.Event()

    def run(self) -> None:
        last_t, last_rss = -1.0, 0
        while self.ok and not self._halt.is_set():
            pids = _descendants(self.pid)
            rss = [_rss_kb(p) for p in pids]
            total = sum(rss)
            now = time.perf_counter()
            # smaps_rollup walks the page tables under the process's memory lock and slows
            # a process that is allocating: read it only after 10 % more RSS or 0.2 s
            if total > 1.1 * last_rss or now - last_t >= PSS_EVERY_S:
                self.pss = max(self.pss, sum(_pss_kb(p) for p in pids))
                last_t, last_rss = now, total
            self.rss = max(self.rss, total)
            self.procs = max(self.procs, sum(1 for r in rss if r))
            self._halt.wait(SAMPLE_S)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_measured(name: str, argv: list[str], env: dict | None = None,
                 sample_memory: bool = True) -> RunResult:
    """Run ``argv``; return its wall time, CPU time, peak memory and output.

    ``sample_memory=False``: no sampler thread (the tree's summed RSS and PSS are NaN, the
    number of processes unknown: 1); wall and CPU time undisturbed by it."""
    # output goes to temporary files, not pipes: the child can never block on a full pipe
    # while we wait for it, and ``wait4`` gives its own rusage
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        sampler = _TreeSampler(proc.pid)
        sampler.ok = sampler.ok and sample_memory
        if sampler.ok:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if sampler.ok:
            sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        peak = usage.ru_maxrss / 1024.0
        nan = float("nan")
        return RunResult(name, proc.returncode, wall, peak,
                         out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                         cpu_s=usage.ru_utime + usage.ru_stime,
                         tree_rss_mb=max(sampler.rss / 1024.0, peak) if sampler.ok else nan,
                         tree_pss_mb=sampler.pss / 1024.0 if sampler.ok else nan,
                         processes=sampler.procs)


def measure(name: str, argv: list[str], env: dict | None = None, before=None,
            repeat: int = 1) -> RunResult:
    """Run ``argv`` once with the memory sampler, for its peak memory (and as a warm-up: the
    first run of a command pays for a cold page cache), then ``repeat`` times unobserved, for
    its wall and CPU time: the medians of those runs, all of them in ``wall_runs``.

    ``before``: called before each run (e.g. to remove the previous run's outputs, so every
    run starts from the same state). A failed run is returned as it is."""
    import statistics

    if before is not None:
        before()
    mem = run_measured(name, argv, env)
    if mem.returncode != 0:
        return mem
    timed = []
    for _ in range(max(1, repeat)):
        if before is not None:
            before()
        r = run_measured(name, argv, env, sample_memory=False)
        if r.returncode != 0:
            return r
        timed.append(r)
    walls = tuple(r.wall_s for r in timed)
    mid = sorted(timed, key=lambda r: r.wall_s)[(len(timed) - 1) // 2]  # its output is shown
    peak = max(r.peak_rss_mb for r in (mem, *timed))  # the largest process of any run
    return replace(mid, wall_s=statistics.median(walls),
                   cpu_s=statistics.median(r.cpu_s for r in timed), peak_rss_mb=peak,
                   tree_rss_mb=max(mem.tree_rss_mb, peak), tree_pss_mb=mem.tree_pss_mb,
                   processes=mem.processes, wall_runs=walls)
