"""Run a command in a child process and measure it from outside: wall time and peak RSS.

Why: speed and memory figures must include everything a user pays for (interpreter start,
imports, reading the CSV, writing results) and must not be disturbed by the harness itself.
``os.wait4`` returns the child's own resource usage, so the peak RSS is the child's
(including its own children's is not needed: both tools run in one process).
"""
from __future__ import annotations

import os
import subprocess
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
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = b"", b""
    # read pipes fully before reaping so the child never blocks on a full pipe
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return RunResult(name, proc.returncode, wall, usage.ru_maxrss / 1024.0,
                     out.decode(errors="replace"), err.decode(errors="replace"))
