"""Run a command in a child process and measure it from outside: wall time and peak RSS.

Why: speed and memory figures must include everything a user pays for (interpreter start,
imports, reading the CSV, writing results) and must not be disturbed by the harness itself.
``os.wait4`` returns the child's own resource usage, so the peak RSS is the child's (each
tool runs in one process).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RunResult:
    """What one benchmark run measured. ``peak_rss_mb`` in MiB, ``wall_s`` in seconds."""

    name: str
    returncode: int
    wall_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str


def run_measured(name: str, argv: list[str], env: dict | None = None) -> RunResult:
    """Run ``argv``; return its wall time, peak resident memory and output."""
    # output goes to temporary files, not pipes: the child can never block on a full pipe
    # while we wait for it, and ``wait4`` gives its own rusage
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        return RunResult(name, proc.returncode, wall, usage.ru_maxrss / 1024.0,
                         out.read().decode(errors="replace"), err.read().decode(errors="replace"))
