"""The benchmark harness measures the whole process tree (forked workers included)."""
import sys

import pytest

from emission_ext.bench.harness import run_measured

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc sampling")

FORKING = """
import os, time
import numpy as np
a = np.ones(20_000_000)          # 160 MB in the parent, shared with the child after fork
pid = os.fork()
if pid == 0:
    b = np.ones(12_500_000)      # 100 MB of the child's own
    t = time.time()
    while time.time() - t < 0.4: # busy: CPU time of the child
        pass
    os._exit(0)
time.sleep(0.5)
os.waitpid(pid, 0)
"""


def test_tree_memory_and_cpu_include_a_forked_child():
    r = run_measured("fork", [sys.executable, "-c", FORKING])
    assert r.returncode == 0
    assert r.processes == 2
    # the child's own 100 MB is in the tree's PSS, on top of the parent's 160 MB
    assert r.tree_pss_mb > 240
    # shared pages count once per process in the summed RSS: it exceeds the PSS
    assert r.tree_rss_mb > r.tree_pss_mb + 100
    assert r.tree_rss_mb >= r.peak_rss_mb
    # the child's busy loop is in the CPU time (reaped by the parent)
    assert r.cpu_s >= 0.35
