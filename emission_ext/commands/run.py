"""``emission-ext run``: the incremental batch pipeline over all or some users.

Why: the operator's daily job. It hands the store to :func:`emission_ext.runner.run`, shows one
progress step per user and prints the summary (stages available or not, users processed,
rows written, failures). Users whose inputs did not change are not reprocessed.
"""
from __future__ import annotations

import click

from ..errors import ConfigError
from ..runner import EXECUTORS, run
from ..stages import STAGE_ORDER
from ._common import progress
from ._store import open_ctx_store, store_option


@click.command("run")
@click.option("--users", "users", multiple=True, metavar="U",
              help="Only these users (repeat or comma-separate) [default: all].")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="local: a process pool on this machine; dask: a dask.distributed cluster.")
@click.option("--scheduler", default=None, metavar="ADDR",
              help="dask scheduler address, e.g. tcp://10.0.0.5:8786 (with --executor dask).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of the local executor [default: number of cores].")
@click.option("--force", is_flag=True, help="Redo every stage even for users with no new data.")
@click.option("--stages", "stages", default=",".join(STAGE_ORDER), show_default=True,
              metavar="S1,S2", help="Stages to run, in order (a dotted module path adds a "
                                    "plug-in stage).")
@store_option
@click.pass_context
def command(ctx, users, executor, scheduler, workers, force, stages, store, store_db):
    """Run the pipeline stages (segment, modes, fuse, footprint) on users with new data."""
    st = open_ctx_store(ctx, store, store_db)
    wanted = [u for arg in users for u in arg.split(",") if u] or None
    names = tuple(s.strip() for s in stages.split(",") if s.strip())
    if not names:
        raise ConfigError("--stages: give at least one stage")
    summary = run(st, wanted, executor=executor, scheduler=scheduler, workers=workers,
                  force=force, stages=names,
                  progress=lambda n: progress(total=n, desc="users", unit="user"))
    for line in summary.lines():
        click.echo(line)
    if summary.failed:
        ctx.exit(1)
