"""``emission-ext trips``: one user's trips from the store, as CSV, GeoJSON or Parquet.

Why: the simplest way for an operator or a tester to get their trips out. Dates are read in
the tester's own time zone; ``--to`` given as a date includes that whole day.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click
import pandas as pd

from ..errors import ConfigError
from ..runner import user_tz
from ._store import open_ctx_store, store_option

FORMATS = ("csv", "geojson", "parquet")


def parse_bound(value: str | None, tz: str, end: bool, option: str) -> pd.Timestamp | None:
    """A ``--from``/``--to`` value (date or date-time, ISO-8601) as a UTC timestamp.

    Naive values are in ``tz``. A date-only ``--to`` means the end of that day.
    """
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{option}: cannot read {value!r} as a date (use YYYY-MM-DD or ISO-8601)") from None
    if ts is pd.NaT:
        raise ConfigError(f"{option}: cannot read {value!r} as a date")
    date_only = len(value.strip()) <= 10
    if ts.tzinfo is None:
        ts = ts.tz_localize(tz)
    if end and date_only:
        ts = ts + pd.Timedelta(days=1)
    return ts.tz_convert("UTC")


def write_out(df: pd.DataFrame, table: str, fmt: str, out: str | None) -> None:
    """Write ``df`` to ``out`` (or to stdout for csv/geojson when ``out`` is None)."""
    from ..io.writers import write_table

    if out is not None:
        write_table(df, out, fmt=fmt, table=table)
        click.echo(f"{len(df)} {table} written to {out}", err=True)
        return
    if fmt == "parquet":
        raise ConfigError("--format parquet needs --out FILE (binary output)")
    with tempfile.TemporaryDirectory(prefix="emission-ext-") as tmp:
        path = Path(tmp) / f"{table}.{fmt}"
        write_table(df, path, fmt=fmt, table=table)
        with open(path, "rb") as fh:
            shutil.copyfileobj(fh, sys.stdout.buffer)
        sys.stdout.flush()


@click.command("trips")
@click.option("--user", "user_id", required=True, metavar="U", help="The tester's user id.")
@click.option("--from", "date_from", default=None, metavar="DATE",
              help="First day/time (tester's time zone unless an offset is given).")
@click.option("--to", "date_to", default=None, metavar="DATE",
              help="Last day (included) or end time (excluded).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format [default: from --out's extension, else csv].")
@click.option("--out", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Output file [default: stdout for csv/geojson].")
@store_option
@click.pass_context
def command(ctx, user_id, date_from, date_to, fmt, out, store, store_db):
    """Print or save a user's trips (CSV timestamps are unix seconds)."""
    st = open_ctx_store(ctx, store, store_db)
    known = set(st.users("trips")) | set(st.users("points"))
    if user_id not in known:
        raise ConfigError(f"unknown user {user_id!r} (no points or trips in {st.describe()})")
    tz = user_tz(st, user_id)
    start = parse_bound(date_from, tz, False, "--from")
    end = parse_bound(date_to, tz, True, "--to")
    if start is not None and end is not None and end <= start:
        raise ConfigError("--to is before --from")
    if fmt is None:
        fmt = "csv"
        if out is not None:
            from ..io.writers import format_from_path

            fmt = format_from_path(out)
    trips = st.read("trips", [user_id], start=start, end=end).sort_values("start_ts", kind="stable")
    if not len(trips) and not st.users("trips").count(user_id):
        click.echo(f"note: no trips for user {user_id} yet (run `emission-ext run` first)", err=True)
    write_out(trips.reset_index(drop=True), "trips", fmt, out)
