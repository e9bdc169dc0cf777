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


def test_measure_times_an_unsampled_run_and_samples_a_second(tmp_path):
    from emission_ext.bench.harness import measure

    runs = tmp_path / "runs"
    script = (f"import numpy as np, time; open({str(runs)!r}, 'a').write('x'); "
              "a = np.ones(12_500_000); time.sleep(0.3)")  # 100 MB for 0.3 s
    cleared = []
    r = measure("alloc", [sys.executable, "-c", script], before=lambda: cleared.append(1),
                repeat=2)
    # one sampled run, then two timed ones: the median of their wall times
    assert r.returncode == 0 and runs.read_text() == "xxx" and cleared == [1, 1, 1]
    assert len(r.wall_runs) == 2 and r.wall_s == sum(r.wall_runs) / 2 >= 0.3
    assert r.tree_pss_mb > 90 and r.tree_rss_mb >= r.peak_rss_mb > 90
    unsampled = run_measured("alloc", [sys.executable, "-c", script], sample_memory=False)
    assert unsampled.tree_pss_mb != unsampled.tree_pss_mb  # NaN: nothing sampled
    assert unsampled.peak_rss_mb > 90  # ru_maxrss still known
