"""``emission-ext bench segmentation``: our segmentation against trackintel, side by side.

Why: the speed bar (SPEC section 7: at least 25x trackintel end to end, under 0.5 GB) is a
measured figure. Both tools get the same CSV and each runs in its own child process: ours is
``emission-ext process CSV --out DIR`` (read, clean, trips, sections, places, write CSVs);
trackintel's is ``generate_staypoints`` (sliding, 100 m, 5 min) + ``generate_triplegs`` +
``generate_trips``, run by ``--trackintel-python`` (a separate venv, ``.venv-bench``, because
trackintel is a benchmark-only dependency that may need another pandas). Each tool runs
1 + ``--repeat`` times (:func:`emission_ext.bench.harness.measure`): its peak memory comes from
the first, sampled run, its times are the medians of the others, which no sampler disturbs.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import click

from ..errors import ConfigError

DEFAULT_BENCH_PY = Path(".venv-bench") / "bin" / "python"


@click.group("bench")
def command():
    """Benchmarks (SPEC section 7)."""


def _machine() -> str:
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
        load = ", load avg %.1f/%.1f/%.1f" % os.getloadavg()
    except Exception:  # noqa: BLE001 - informational only
        mem, load = "", ""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {mem}{load}"


def _figures(r, n: int) -> str:
    """One line of a run's figures: wall, points/s, CPU, memory of its process tree (and the
    wall time of each timed run, when there were several)."""
    runs = (f" (median of {len(r.wall_runs)} runs: {', '.join(f'{w:.2f}' for w in r.wall_runs)} s)"
            if len(r.wall_runs) > 1 else "")
    return (f"{r.wall_s:8.2f} s{runs}  {n / r.wall_s:12,.0f} points/s  CPU {r.cpu_s:6.2f} s  "
            f"{r.processes} process{'es' if r.processes > 1 else ''}, peak memory: "
            f"PSS {r.tree_pss_mb:5.0f} MiB (sum over processes), RSS {r.tree_rss_mb:5.0f} MiB "
            f"(sum; shared pages counted per process), largest process {r.peak_rss_mb:5.0f} MiB")


def _compile_package() -> None:
    """Byte-compile our modules once, as an installed package (and trackintel's) is.

    With ``PYTHONDONTWRITEBYTECODE`` set (or a read-only checkout) an editable install would
    otherwise recompile every module of ours at each start, which no installed tool pays.
    """
    import compileall

    root = Path(__file__).resolve().parent.parent.parent
    for pkg in ("emission_ext", "pipeline"):
        compileall.compile_dir(str(root / pkg), quiet=1)


def setup_trackintel_venv(path: Path) -> Path:
    """Create ``path`` (a venv) with trackintel installed; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    py = path / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "trackintel"], check=True)
    return py


@command.command("segmentation")
@click.option("--points", "n_points", default=1_000_000, show_default=True, help="Points to generate.")
@click.option("--users", "n_users", default=50, show_default=True, help="Users to spread them over.")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False),
              help="Use this points CSV instead of generating one.")
@click.option("--out", "out_dir", default="bench-out", show_default=True, type=click.Path(file_okay=False),
              help="Working folder (CSV, outputs).")
@click.option("--seed", default=0, show_default=True)
@click.option("--trackintel-python", "ti_python", type=click.Path(dir_okay=False),
              help=f"Interpreter with trackintel installed (default {DEFAULT_BENCH_PY}, created "
                   "with --setup-trackintel; else this one when it can import trackintel).")
@click.option("--setup-trackintel", is_flag=True, help="Create .venv-bench with trackintel first.")
@click.option("--skip-trackintel", is_flag=True, help="Only measure ours.")
@click.option("--generator", type=click.Choice(["simple", "synth"]), default="simple", show_default=True,
              help="simple: built-in Android-like generator (seconds for 1M points); synth: the "
                   "synthetic La Rochelle world (realistic, but ~1k points/s to generate).")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed runs of each tool (medians reported), after one run sampling its memory.")
def segmentation(n_points, n_users, csv_path, out_dir, seed, ti_python, setup_trackintel,
                 skip_trackintel, generator, repeat):
    """Time ours vs trackintel on the same CSV; print time, points/s, peak RSS and the ratio.

    Each tool runs once with its memory sampled (which also warms the page cache), then
    ``--repeat`` times unobserved: the times printed are the medians of those runs."""
    from ..bench.harness import measure
    from ..bench.points import write_bench_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if csv_path is None:
        csv_path, gen = write_bench_csv(out / f"points_{n_points}.csv", n_points, n_users, seed,
                                        use_synth=generator == "synth")
        click.echo(f"generated {n_points} points for {n_users} users with {gen} -> {csv_path}")
    csv_path = Path(csv_path)
    with open(csv_path, "rb") as fh:
        n = sum(1 for _ in fh) - 1
    click.echo(f"machine: {_machine()}")

    # this installation's command (not another one found first on PATH)
    exe = Path(sys.executable).with_name("emission-ext")
    exe = str(exe) if exe.exists() else shutil.which("emission-ext") or "emission-ext"
    _compile_package()

    def fresh_outputs():  # every run writes into an empty folder (no files to replace)
        shutil.rmtree(out / "ours", ignore_errors=True)

    ours = measure("emission-ext process",
                   [exe, "process", str(csv_path), "--format", "csv", "--no-modes",
                    "--out", str(out / "ours")], before=fresh_outputs, repeat=repeat)
    if ours.returncode != 0:
        raise ConfigError(f"emission-ext process failed: {ours.stderr.strip()[-500:]}")
    click.echo(ours.stdout.strip())
    click.echo(f"ours       : {_figures(ours, n)}")
    if skip_trackintel:
        return
    py = Path(ti_python) if ti_python else DEFAULT_BENCH_PY
    if ti_python is None and not py.exists() and not setup_trackintel:
        # `make bench` installs the [bench] extra next to the product: use this interpreter
        probe = subprocess.run([sys.executable, "-c", "import trackintel"], capture_output=True)
        if probe.returncode == 0:
            py = Path(sys.executable)
    if setup_trackintel and not py.exists():
        click.echo(f"creating {DEFAULT_BENCH_PY.parent.parent} with trackintel ...", err=True)
        py = setup_trackintel_venv(DEFAULT_BENCH_PY.parent.parent)
    if not py.exists():
        raise ConfigError(f"{py}: no trackintel interpreter; pass --trackintel-python or "
                          "--setup-trackintel (or --skip-trackintel)")
    job = Path(__file__).resolve().parent.parent / "bench" / "trackintel_job.py"
    ti = measure("trackintel", [str(py), str(job), str(csv_path)], repeat=repeat)
    if ti.returncode != 0:
        raise ConfigError(f"trackintel run failed: {ti.stderr.strip()[-800:]}")
    info = json.loads(ti.stdout.strip().splitlines()[-1])
    click.echo(f"trackintel {info.get('trackintel')} (pandas {info.get('pandas')}): "
               f"{info['staypoints']} staypoints, {info['triplegs']} triplegs, {info['trips']} trips")
    click.echo(f"trackintel : {_figures(ti, n)}")
    click.echo(f"ratio      : ours is {ti.wall_s / ours.wall_s:.1f}x faster end to end "
               f"(target >= 25x), {ti.cpu_s / ours.cpu_s:.1f}x less CPU; memory of all our "
               f"processes {ours.tree_pss_mb:.0f} MiB PSS, {ours.tree_rss_mb:.0f} MiB summed RSS "
               f"(target < 512 MiB)")


from ..bench.fusion import command as _fusion_bench; command.add_command(_fusion_bench)  # noqa: E402,E702 (issue 6)
