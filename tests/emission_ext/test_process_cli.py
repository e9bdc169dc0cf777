from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emission_ext import schema
from emission_ext.cli import cli
from emission_ext.reference import EMISSION_REAL_DIR
from tests.pipeline._frames import day


def test_process_emission_day_writes_three_tables(tmp_path):
    res = CliRunner().invoke(cli, ["process", str(EMISSION_REAL_DIR / "shankari_2016-08-10.json.gz"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    trips = pd.read_csv(tmp_path / "out" / "trips.csv", dtype={"user_id": str})
    secs = pd.read_csv(tmp_path / "out" / "sections.csv", dtype={"user_id": str})
    places = pd.read_csv(tmp_path / "out" / "places.csv", dtype={"user_id": str})
    assert len(trips) == 5 and len(places) == 6 and len(secs) >= 5
    assert trips["start_ts"].dtype == float and trips["start_ts"].between(1.4e9, 1.5e9).all()
    assert (trips["tz"] == "America/Los_Angeles").all()
    assert {"mode", "sensed_mode", "mode_source", "geometry"} <= set(secs.columns)


def test_process_csv_two_users_keeps_leading_zeros(tmp_path):
    a, _ = day(user="007")
    b, _ = day(user="010", seed=3)
    pts = pd.concat([a, b])
    csv = tmp_path / "p.csv"
    pd.DataFrame({"user_id": pts["user_id"], "ts": schema.to_unix(pts["ts"]),
                  "lat": pts["lat"], "lon": pts["lon"]}).to_csv(csv, index=False)
    res = CliRunner().invoke(cli, ["process", str(csv), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    trips = pd.read_csv(tmp_path / "o" / "trips.csv", dtype={"user_id": str})
    assert sorted(trips["user_id"].unique()) == ["007", "010"]


def test_process_in_two_forked_jobs_equals_one_job(tmp_path):
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    frames = [day(user=u, seed=k)[0] for k, u in enumerate(["007", "010", "011", "2"])]
    pts = pd.concat(frames)
    csv = tmp_path / "p.csv"
    pd.DataFrame({"user_id": pts["user_id"], "ts": schema.to_unix(pts["ts"]),
                  "lat": pts["lat"], "lon": pts["lon"]}).to_csv(csv, index=False)
    outs = {}
    for jobs in ("1", "2"):
        res = CliRunner().invoke(cli, ["process", str(csv), "--no-modes", "--jobs", jobs,
                                       "--out", str(tmp_path / jobs)])
        assert res.exit_code == 0, res.output
        assert ("2 processes" in res.output) == (jobs == "2")
        outs[jobs] = {t: pd.read_csv(tmp_path / jobs / f"{t}.csv", dtype={"user_id": str})
                      for t in ("trips", "sections", "places")}
    assert not [p for p in (tmp_path / "2").iterdir() if p.name.startswith(".")]  # no leftovers
    for t in ("trips", "sections", "places"):
        one, two = outs["1"][t], outs["2"][t]
        assert len(one) > 0 and list(one.columns) == list(two.columns)
        # running sums start at another user: float columns agree to ~1e-12, not bit for bit
        pd.testing.assert_frame_equal(one, two, check_exact=False, rtol=1e-9)
    assert outs["2"]["trips"]["user_id"].nunique() == 4


@pytest.mark.parametrize("shuffle", [False, True])
def test_process_in_batches_equals_one_batch(tmp_path, shuffle, monkeypatch):
    """Workers segmenting their users in batches (``--batch-points``) write the same tables
    as in one batch per worker, for a sorted CSV (parsed once, batches sliced from it) and an
    unsorted one (read with pandas, sorted, then cut)."""
    import os

    import pipeline.segment

    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    csv = tmp_path / "p.csv"
    _four_users_csv(tmp_path, shuffle=shuffle).to_csv(csv, index=False)
    real = pipeline.segment.segment_user

    def logged(points, *a, **k):  # each call (in either process) logs its users, one line
        with open(log, "a") as fh:
            fh.write(",".join(sorted(points["user_id"].unique())) + "\n")
        return real(points, *a, **k)

    monkeypatch.setattr(pipeline.segment, "segment_user", logged)
    outs = {}
    for batch, calls in (("1", 4), ("1000000", 2)):  # one user per batch; one batch per worker
        log = tmp_path / f"calls-{batch}.txt"
        res = CliRunner().invoke(cli, ["process", str(csv), "--no-modes", "--jobs", "2",
                                       "--batch-points", batch, "--out", str(tmp_path / batch)])
        assert res.exit_code == 0 and "2 processes" in res.output, res.output
        batches = log.read_text().split()
        assert len(batches) == calls and sorted(",".join(batches).split(",")) == [
            "007", "010", "011", "2"]  # every user in exactly one batch
        assert not [p for p in (tmp_path / batch).iterdir() if p.name.startswith(".")]
        outs[batch] = {t: pd.read_csv(tmp_path / batch / f"{t}.csv", dtype={"user_id": str})
                       for t in ("trips", "sections", "places")}
    for t in ("trips", "sections", "places"):
        one, many = outs["1000000"][t], outs["1"][t]
        assert len(one) > 0 and list(one.columns) == list(many.columns)
        assert many["user_id"].nunique() == 4
        pd.testing.assert_frame_equal(one, many, check_exact=False, rtol=1e-9)


def _four_users_csv(tmp_path, shuffle=False):
    frames = [day(user=u, seed=k)[0] for k, u in enumerate(["007", "010", "011", "2"])]
    pts = pd.concat(frames)
    df = pd.DataFrame({"user_id": pts["user_id"], "ts": schema.to_unix(pts["ts"]),
                       "lat": pts["lat"], "lon": pts["lon"]})
    if shuffle:
        df = df.sample(frac=1.0, random_state=0)
    return df


def test_process_jobs_unsorted_csv_and_bad_row_in_a_worker(tmp_path):
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    ref = tmp_path / "ref.csv"
    _four_users_csv(tmp_path).to_csv(ref, index=False)
    assert CliRunner().invoke(cli, ["process", str(ref), "--no-modes", "--jobs", "1",
                                    "--out", str(tmp_path / "r")]).exit_code == 0
    expected = pd.read_csv(tmp_path / "r" / "trips.csv", dtype={"user_id": str})
    # rows in any order: split after the read (whole users), same trips
    shuf = tmp_path / "shuffled.csv"
    _four_users_csv(tmp_path, shuffle=True).to_csv(shuf, index=False)
    res = CliRunner().invoke(cli, ["process", str(shuf), "--no-modes", "--jobs", "2",
                                   "--out", str(tmp_path / "s")])
    assert res.exit_code == 0 and "2 processes" in res.output, res.output
    got = pd.read_csv(tmp_path / "s" / "trips.csv", dtype={"user_id": str})
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)
    # a bad row in the second worker's users: the message names the file's own line
    lines = ref.read_text().splitlines()
    k = len(lines) - 5
    lines[k] = lines[k].rsplit(",", 1)[0] + ",200"  # lon out of range
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:3] + [""] + lines[3:]) + "\n")  # a blank line 4
    res = CliRunner().invoke(cli, ["process", str(bad), "--no-modes", "--jobs", "2",
                                   "--out", str(tmp_path / "b")])
    from emission_ext.errors import InputError

    assert isinstance(res.exception, InputError), res.output
    assert (res.exception.line, res.exception.field) == (k + 2, "lon")
    res = CliRunner().invoke(cli, ["process", str(bad), "--no-modes", "--jobs", "2", "--skip-bad",
                                   "--out", str(tmp_path / "b")])
    assert res.exit_code == 0 and "1 bad entries skipped" in res.output, res.output


@pytest.mark.parametrize("user", ["010", "2"])  # the child's second batch; the parent's second
def test_bad_row_in_a_later_batch_is_reported_with_its_line(tmp_path, user):
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    df = _four_users_csv(tmp_path)
    lines = df.to_csv(index=False).splitlines()
    k = 1 + int(np.flatnonzero(df["user_id"].to_numpy() == user)[3])  # a row of that user
    lines[k] = lines[k].rsplit(",", 1)[0] + ",200"  # lon out of range
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "b"
    res = CliRunner().invoke(cli, ["process", str(bad), "--no-modes", "--jobs", "2",
                                   "--batch-points", "1", "--out", str(out)])
    from emission_ext.errors import InputError

    assert isinstance(res.exception, InputError), res.output
    assert (res.exception.line, res.exception.field) == (k + 1, "lon")
    assert not out.exists() or not list(out.iterdir())  # no tables, no scratch left behind


def test_bad_input_is_one_line_exit_2(tmp_path):
    from emission_ext.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text("[{ not json")
    with pytest.raises(SystemExit) as exc:
        main(["process", str(bad), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2


def test_bench_segmentation_runs_ours_on_a_small_csv(tmp_path):
    # functional only: the speed figures come from the full benchmark, not from a test
    res = CliRunner().invoke(cli, ["bench", "segmentation", "--points", "3000", "--users", "3",
                                   "--out", str(tmp_path), "--skip-trackintel"])
    assert res.exit_code == 0, res.output
    assert "ours" in res.output and "points/s" in res.output and "PSS" in res.output
    assert "CPU" in res.output and "largest process" in res.output
    trips = pd.read_csv(tmp_path / "ours" / "trips.csv", dtype={"user_id": str})
    assert trips["user_id"].nunique() == 3


def test_single_blas_thread_defaults_to_one_and_keeps_a_users_choice(monkeypatch):
    from emission_ext.commands.process import single_blas_thread

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    single_blas_thread()
    import os

    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    single_blas_thread()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"


def test_process_as_the_program_ends_at_once_with_its_output_flushed(tmp_path):
    """Run as the program (not from Python), ``process`` leaves through ``os._exit``: the
    summary still reaches a pipe and the three tables are complete."""
    import subprocess
    import sys

    a, _ = day(user="007")
    csv = tmp_path / "p.csv"
    pd.DataFrame({"user_id": a["user_id"], "ts": schema.to_unix(a["ts"]),
                  "lat": a["lat"], "lon": a["lon"]}).to_csv(csv, index=False)
    run = subprocess.run([sys.executable, "-m", "emission_ext.cli", "process", str(csv),
                          "--no-modes", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "points" in run.stdout and "trips" in run.stdout
    ref = CliRunner().invoke(cli, ["process", str(csv), "--no-modes", "--out", str(tmp_path / "r")])
    assert ref.exit_code == 0, ref.output
    for t in ("trips", "sections", "places"):
        assert (tmp_path / "o" / f"{t}.csv").read_bytes() == (tmp_path / "r" / f"{t}.csv").read_bytes()


def test_huge_page_heap_marks_the_heap_in_a_child(tmp_path):
    """In a forked child (the test process keeps its heap): the heap grows and, where the
    kernel has transparent huge pages, is marked for them (VmFlags ``hg``)."""
    import os
    import sys

    if not (sys.platform.startswith("linux") and hasattr(os, "fork")):
        pytest.skip("Linux only")
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not thp.exists() or "[never]" in thp.read_text():
        pytest.skip("the kernel gives no transparent huge pages")
    from emission_ext.commands.process import huge_page_heap

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            done = huge_page_heap(64 << 20)
            flags = ""
            with open("/proc/self/smaps") as fh:
                in_heap = False
                for line in fh:
                    if "-" in line.split()[0] and len(line.split()) >= 5:
                        in_heap = line.rstrip().endswith("[heap]")
                    elif in_heap and line.startswith("VmFlags:"):
                        flags += line
            ok = done and " hg" in flags  # THP available: the heap must be marked
        finally:
            os.write(w, b"1" if ok else b"0")
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        got = fh.read()
    os.waitpid(pid, 0)
    assert got == b"1"


def test_user_starts_and_the_cut_between_workers(tmp_path):
    from emission_ext.commands.process import job_batches, split_starts, split_table, user_firsts
    from emission_ext.io.csv_arrow import Prefetch, read_arrow, user_starts

    csv = tmp_path / "p.csv"
    csv.write_text("user_id,ts,lat,lon\n" + "".join(
        f"{u},{1.7e9 + i},46.1,-1.1\n" for u, n in (("007", 5), ("010", 2), ("011", 3))
        for i in range(n)))
    table, cols = read_arrow(str(csv))
    assert user_starts(table, cols).tolist() == [0, 5, 7]
    pre = Prefetch(str(csv))
    assert pre.user_starts().tolist() == [0, 5, 7]
    assert split_table(table, cols, 2, pre.user_starts()) == ([0, 5, 10], 3)
    assert split_table(table, cols, 2) == ([0, 5, 10], 3)
    assert split_starts([0, 5, 7], 10, 3) == [0, 5, 7, 10]
    assert split_starts([0], 10, 2) is None  # one user: nothing to cut
    import numpy as np

    first = user_firsts(np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2]))
    assert first.tolist() == [0, 5, 7] and split_starts(first, 10, 2) == [0, 5, 10]
    assert user_firsts(np.array([1, 0])) is None  # not sorted by user
    assert user_firsts(np.array([], dtype=np.int64)) is None
    # each job's rows cut again into batches of whole users, about batch_points each
    first = np.array([0, 5, 7, 10, 14, 15])
    assert job_batches(first, [0, 10, 20], 100) == [[(0, 10)], [(10, 20)]]
    assert job_batches(first, [0, 10, 20], 5) == [[(0, 5), (5, 10)], [(10, 15), (15, 20)]]
    assert job_batches(first, [0, 20], 1) == [[(0, 5), (5, 7), (7, 10), (10, 14), (14, 15),
                                               (15, 20)]]  # a user is never cut
    assert job_batches(np.array([0]), [0, 9], 2) == [[(0, 9)]]  # one user: one batch
    bad = tmp_path / "u.csv"
    bad.write_text("user_id,ts,lat,lon\nb,1.7e9,46.1,-1.1\na,1.7e9,46.1,-1.1\n")
    assert user_starts(*read_arrow(str(bad))) is None
    assert split_table(*read_arrow(str(bad)), 2) is None


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_append_part_files(tmp_path, monkeypatch, kernel_copy):
    import os

    from emission_ext.commands.process import _append

    if not kernel_copy:  # a file system without copy_file_range: copied through a buffer
        def refuse(*a, **k):
            raise OSError(18, "cross-device")

        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    parts = [b"h\n1\n", b"2,x\n" * 5000, b"", b"3\n"]
    for k, data in enumerate(parts):
        (tmp_path / str(k)).write_bytes(data)
    with open(tmp_path / "0", "r+b") as fh:
        fh.seek(0, os.SEEK_END)
        for k in range(1, len(parts)):
            _append(tmp_path / str(k), fh)
    assert (tmp_path / "0").read_bytes() == b"".join(parts)


def test_arrow_on_heap_makes_the_system_pool_the_default():
    pa = pytest.importorskip("pyarrow")
    from emission_ext.commands.process import arrow_on_heap

    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool() if before.backend_name != "jemalloc"
                           else pa.mimalloc_memory_pool())
        arrow_on_heap()
        assert pa.default_memory_pool().backend_name == "system"
    except NotImplementedError:
        pytest.skip("pyarrow built without a second allocator")
    finally:
        pa.set_memory_pool(before)


def test_background_parse_uses_one_thread_on_two_cores(monkeypatch):
    import os

    from emission_ext.io import csv_arrow

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no sched_getaffinity")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert csv_arrow.parse_threads() is False
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert csv_arrow.parse_threads() is True


def test_background_parse_one_thread_gives_the_same_table(tmp_path):
    from emission_ext.io.csv_arrow import read_arrow

    rows = "".join(f"u{i // 700:02d},{1.7e9 + i},{46 + i * 1e-5},{-1 - i * 1e-5}\n"
                   for i in range(5000))
    path = tmp_path / "p.csv"
    path.write_text("user_id,ts,lat,lon\n" + rows)
    one, cols = read_arrow(str(path), use_threads=False)
    many, _ = read_arrow(str(path), use_threads=True)
    assert one.equals(many) and cols["lat"] == "lat"


def test_background_parse_calls_then_in_its_thread_after_the_parse(tmp_path, monkeypatch):
    import threading

    from emission_ext.commands.process import prefetch_csv, trim_heap
    from emission_ext.io import csv_arrow
    from emission_ext.io.csv_arrow import Prefetch

    path = tmp_path / "p.csv"
    path.write_text("user_id,ts,lat,lon\na,1700000000,46.1,-1.1\nb,1700000030,46.1,-1.1\n")
    seen = []
    real = csv_arrow.read_arrow
    monkeypatch.setattr(csv_arrow, "read_arrow",
                        lambda *a, **k: seen.append("parse") or real(*a, **k))
    pre = Prefetch(str(path), then=lambda: seen.append(threading.current_thread()))
    table, cols = pre.result()
    assert seen[0] == "parse" and len(seen) == 2  # then: once, after the parse
    assert seen[1] is not threading.main_thread()
    assert table.num_rows == 2 and list(pre.user_starts()) == [0, 1]
    monkeypatch.undo()
    boom = Prefetch(str(path), then=lambda: 1 / 0)  # a failing extra never loses the parse
    assert boom.result()[0].num_rows == 2
    assert prefetch_csv([path], "csv")._then is trim_heap
    trim_heap()  # harmless anywhere


def test_user_starts_does_not_import_pandas(tmp_path):
    """The background parse finds the users' runs without pandas (which the main thread is
    importing meanwhile: asking for it made the parse wait for that import)."""
    import subprocess
    import sys

    path = tmp_path / "p.csv"
    path.write_text("user_id,ts,lat,lon\na,1,46.1,-1.1\na,2,46.1,-1.1\nb,3,46.1,-1.1\n")
    code = ("import sys\nfrom emission_ext.io.csv_arrow import read_arrow, user_starts\n"
            f"t = read_arrow({str(path)!r})\nprint(user_starts(*t).tolist(), 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[0,", "2]", "False"]
