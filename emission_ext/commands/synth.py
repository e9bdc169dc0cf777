"""``emission-ext synth``: generate a synthetic La Rochelle world and write it to a folder.

Why: demos, benchmarks, evaluations and manual tests need realistic data with known truth;
this is the one command that produces it (e-mission JSON exports, CSV points, operator files
with faults, ground truth) and prints the statistics that show it is plausible.
"""
from __future__ import annotations

import time
from datetime import date

import click

from ..errors import ConfigError
from ._common import progress


def _print_stats(stats: dict, checks) -> None:
    click.echo(f"testers {stats['testers']}  days {stats['days']}  trips {stats['trips']}  "
               f"sections {stats['sections']}  points {stats['points']}  motion {stats['motion']}  "
               f"records {stats['records']}  phone-off trips {stats['phone_off_trips']}")
    click.echo("mode shares (main mode of trips): " + ", ".join(
        f"{k} {v:.1%}" for k, v in sorted(stats["mode_shares"].items(), key=lambda kv: -kv[1])))
    click.echo("records by source: " + ", ".join(f"{k} {v}" for k, v in stats["records_by_source"].items()))
    click.echo(f"bus/ferry timetable deviation at stops: p95 {stats['bus_delay_p95_s']:.0f} s, "
               f"max {stats['bus_delay_max_s']:.0f} s")
    click.echo("check                          value      plausible range")
    for name, v, lo, hi, ok in checks:
        click.echo(f"  {name:<28} {v:>9.3f}  [{lo:g}, {hi:g}]  {'ok' if ok else 'OUT OF RANGE'}")


@click.command("synth")
@click.option("--testers", default=50, show_default=True, type=click.IntRange(1, 100000), help="Number of testers.")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 3660), help="Number of days.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same world).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--platform", type=click.Choice(["mixed", "android", "ios"]), default="mixed", show_default=True,
              help="Phone platform of the testers.")
@click.option("--start", default=None, help="First day, YYYY-MM-DD (default 2026-02-02; 2026-03-28 spans the DST "
                                            "change).")
@click.option("--no-faults", is_flag=True, help="Switch off every fault (phone off, gaps, outliers, duplicates, "
                                                "clock skew, malformed operator rows...). GPS noise stays.")
@click.option("--sorted", "sorted_points", is_flag=True, help="Keep points sorted by user and time.")
@click.option("--points", "target_points", type=click.IntRange(1000, None), default=None,
              help="Choose the number of days to get about this many points (e.g. 1000000).")
@click.option("--no-json", is_flag=True, help="Skip the e-mission JSON exports (the slowest output).")
def command(testers, days, seed, out, platform, start, no_faults, sorted_points, target_points, no_json):
    """Generate a synthetic La Rochelle world (testers, phones, operator records, ground truth)."""
    from ..synth import check_stats, generate_world, world_stats, write_world

    if start is not None:
        try:
            start = date.fromisoformat(start)
        except ValueError:
            raise ConfigError(f"--start must be YYYY-MM-DD, not {start!r}") from None
    t0 = time.perf_counter()
    with progress(total=2 * testers, desc="synth", unit="tester") as bar:
        world = generate_world(testers=testers, days=days, seed=seed, start=start, platform=platform,
                               faults=not no_faults, sorted_points=sorted_points, target_points=target_points,
                               progress=bar.update)
    t1 = time.perf_counter()
    write_world(world, out, emission=not no_json)
    t2 = time.perf_counter()
    stats = world_stats(world)
    _print_stats(stats, check_stats(stats))
    click.echo(f"generated in {t1 - t0:.1f} s, written in {t2 - t1:.1f} s to {out}")
