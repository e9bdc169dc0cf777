"""``emission-ext import``: load raw phone/GPS data into the store (incremental, idempotent).

Why: the batch pipeline works from the store; this is how raw data gets there, from files
(e-mission JSON exports, CSV, GPX, GeoLife) or straight from a TRACES/e-mission MongoDB. Rows
already present (same table key) are not added again, so importing the same file twice adds 0.
"""
from __future__ import annotations

import click

from ..errors import ConfigError
from ..stores.base import AppendResult
from ..stores.loading import load_raw
from ._common import progress
from ._store import open_ctx_store, store_option

MAX_PROBLEMS_SHOWN = 5


def _report(counts: dict[str, AppendResult]) -> None:
    for table in ("points", "motion", "transitions"):
        r = counts.get(table)
        if r is not None:
            click.echo(f"{table}: {r.added} added ({r.present} already present)")


@click.group("import")
def command() -> None:
    """Load raw data into the store: files of one format, or a TRACES/e-mission MongoDB."""


def read_user_map(path: str) -> dict[str, str]:
    """Read a uuid -> tester id map (CSV: ``emission_uuid,user_id``; ``uuid`` also accepted).

    Raises
    ------
    InputError
        When a column is missing, an id is empty or a uuid maps to two testers.
    """
    import pandas as pd

    from ..errors import InputError
    from ..io.emission import normalise_user_id

    df = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    src = "emission_uuid" if "emission_uuid" in df.columns else "uuid"
    for col in (src, "user_id"):
        if col not in df.columns:
            raise InputError(path, "missing column (need emission_uuid and user_id)", field=col)
    out: dict[str, str] = {}
    for i, (u, t) in enumerate(zip(df[src], df["user_id"]), start=2):
        if not u or not t:
            raise InputError(path, "empty id", line=i, field=src if not u else "user_id")
        key = normalise_user_id(u)
        if out.get(key, t) != t:
            raise InputError(path, f"uuid {u} mapped to both {out[key]!r} and {t!r}", line=i,
                             field="user_id")
        out[key] = t
    return out


def _file_command(fmt: str, what: str) -> None:
    @command.command(fmt, help=f"Import {what} files.")
    @click.argument("files", nargs=-1, required=True,
                    type=click.Path(exists=True, dir_okay=False, readable=True))
    @click.option("--skip-bad", is_flag=True,
                  help="Skip malformed rows/entries (reported) instead of stopping at the first.")
    @click.option("--user-id", default=None, metavar="U",
                  help="Give every row this user id (default: from the data or the file name).")
    @click.option("--user-map", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="CSV with columns emission_uuid,user_id: rename e-mission uuids to "
                       "tester ids (the ids of the operators' card maps).")
    @store_option
    @click.pass_context
    def _cmd(ctx, files, skip_bad, user_id, user_map, store, store_db):
        from ..io.readers import RawData, read

        st = open_ctx_store(ctx, store, store_db)
        mapping = read_user_map(user_map) if user_map else {}
        raws = []
        # read and check every file first: a bad file stops the import before anything is written
        for path in progress(files, desc=f"reading {fmt}", unit="file"):
            r = read(path, fmt=fmt, skip_bad=skip_bad, user_id=user_id)
            if not (len(r.points) or len(r.motion) or len(r.transitions)):
                click.echo(f"note: {path} holds no location, motion or transition entries",
                           err=True)
            raws.append(r)
        raw = RawData.concat(raws) if len(raws) > 1 else raws[0]
        raw = raw.with_user_ids(mapping)
        counts = load_raw(st, raw)
        _report(counts)
        users = sorted(set(raw.points["user_id"]) | set(raw.motion["user_id"]))
        click.echo(f"users: {len(users)} ({', '.join(users[:5])}{', ...' if len(users) > 5 else ''})")
        if getattr(raw, "duplicates", 0):
            click.echo(f"{raw.duplicates} duplicate rows/entries within the input ignored")
        if raw.skipped:
            click.echo(f"skipped {raw.skipped} bad rows/entries:", err=True)
            for p in raw.problems[:MAX_PROBLEMS_SHOWN]:
                click.echo(f"  {p}", err=True)
            if len(raw.problems) > MAX_PROBLEMS_SHOWN:
                click.echo(f"  ... and {len(raw.problems) - MAX_PROBLEMS_SHOWN} more", err=True)

    _cmd.__name__ = f"import_{fmt}"


_file_command("emission", "e-mission timeseries JSON (.json / .json.gz)")
_file_command("csv", "CSV point")
_file_command("gpx", "GPX track")
_file_command("geolife", "GeoLife .plt")


@command.command("mongo")
@click.option("--url", required=True, metavar="URL",
              help="The TRACES/e-mission MongoDB, e.g. mongodb://localhost:27017/.")
@click.option("--db", "db_name", default="Stage_database", show_default=True,
              help="e-mission database holding Stage_timeseries.")
@click.option("--users", "users", multiple=True, metavar="U",
              help="Only these users (32-hex e-mission ids; repeat or comma-separate).")
@click.option("--timeout", type=click.FloatRange(min=0.05), default=5.0, show_default=True,
              help="Seconds to wait for the server.")
@store_option
@click.pass_context
def mongo(ctx, url, db_name, users, timeout, store, store_db):
    """Import new raw entries from an e-mission MongoDB (incremental by metadata.write_ts)."""
    import pymongo
    import pymongo.errors

    from ..stores.mongo import import_timeseries, short_error

    if not url.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(f"--url must be a mongodb:// URL, got {url!r}")
    st = open_ctx_store(ctx, store, store_db)
    wanted = [u for arg in users for u in arg.split(",") if u] or None
    try:
        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=int(timeout * 1000),
                                     uuidRepresentation="pythonLegacy")
        client.admin.command("ping")
    except (pymongo.errors.PyMongoError, ValueError) as exc:
        raise ConfigError(f"cannot reach MongoDB at {url}: {short_error(exc)}") from None
    try:
        counts = import_timeseries(client[db_name], st, users=wanted,
                                   progress=lambda it: progress(it, desc="users", unit="user"))
    finally:
        client.close()
    if not counts:
        click.echo("no new entries")
    _report(counts)


@command.command("testers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@store_option
@click.pass_context
def testers(ctx, file, store, store_db):
    """Import tester profiles (CSV with the `testers` table's columns: car, Yélo pass, parking).

    A tester already in the store gets the new profile (the carbon and cost stages use it);
    unknown extra columns are ignored.
    """
    import pandas as pd

    from .. import schema
    from ..errors import InputError, SchemaError

    df = pd.read_csv(file, dtype=str, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    for col in ("car_fiscal_hp", "home_lat", "home_lon", "work_lat", "work_lon"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    try:
        prof = schema.validate(schema.coerce(df, "testers")[schema.TESTERS.names], "testers")
    except SchemaError as exc:
        line = exc.row + 2 if exc.row is not None else None
        raise InputError(file, exc.reason, line=line, field=exc.column) from None
    st = open_ctx_store(ctx, store, store_db)
    changed = 0
    for uid, rows in prof.groupby("user_id", sort=True):
        before = st.read("testers", [uid])
        if len(before) != 1 or not before[schema.TESTERS.names].reset_index(drop=True).equals(
                rows.reset_index(drop=True)):
            st.replace_user("testers", uid, rows)
            changed += 1
    click.echo(f"testers: {changed} added or updated ({len(prof) - changed} unchanged)")
