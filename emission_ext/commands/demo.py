"""``emission-ext demo``: the whole chain on real data, in one command.

Why: the first thing a new operator or developer runs. For now it imports the real e-mission
phone days shipped in ``emission_ext/data/emission_real`` into the store (``--data-dir``),
runs the pipeline on them and prints a summary (users, points, trips, sections). It is
incremental like the commands it chains: a second ``demo`` adds 0 rows and processes 0 users.
"""
from __future__ import annotations

import click

from ..reference import emission_real_days
from ..runner import run
from ..stores.loading import load_raw
from ._common import progress
from ._store import open_ctx_store, store_option


def _count(st, table: str) -> int:
    return int(sum(len(st.read(table, [u])) for u in st.users(table)))


@click.command("demo")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes for the pipeline [default: number of cores].")
@store_option
@click.pass_context
def command(ctx, workers, store, store_db):
    """Import the shipped real e-mission days, run the pipeline, print a summary."""
    from ..io.readers import RawData, read

    st = open_ctx_store(ctx, store, store_db)
    click.echo(f"store: {st.describe()}")
    days = emission_real_days()
    raws = [read(path, fmt="emission", skip_bad=True)
            for path in progress(days, desc="reading real e-mission days", unit="file")]
    totals = load_raw(st, RawData.concat(raws))
    for table, r in totals.items():
        click.echo(f"{table}: {r.added} added ({r.present} already present) from {len(days)} files")
    summary = run(st, workers=workers,
                  progress=lambda n: progress(total=n, desc="pipeline", unit="user"))
    for line in summary.lines():
        click.echo(line)
    click.echo("summary: " + ", ".join(f"{t} {_count(st, t)}" for t in ("points", "trips", "sections"))
               + f", users {len(st.users('points'))}")
    if summary.failed:
        ctx.exit(1)
