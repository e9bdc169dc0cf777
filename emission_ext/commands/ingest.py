"""``emission-ext ingest yelo|parking FILE...``: validate and load operator records.

Why: operators send files; testers' records must reach the store exactly once, and every bad
row must come back to the operator with its line and reason. This shell does the I/O around
the pure ingest functions (:mod:`yelo_ingest.ingest`, :mod:`parking_ingest.ingest`):

* each raw file is archived as received under ``<data-dir>/operator/archive/`` with its
  sha256 (a manifest line per file in ``archive/manifest.jsonl``);
* card-map files in the call are processed first, merged into the stored card map (auxiliary
  table ``card_map``), then used to resolve the testers of the records;
* good rows are appended to the store's ``records`` table (key ``(source, record_id)``:
  re-ingesting the same or an overlapping file adds nothing twice);
* bad rows go to ``<data-dir>/operator/quarantine/<file>.quarantine.csv`` in the file's own
  columns plus ``reject_reason``: fix them there and ingest that file again;
* ``--strict`` rejects a whole file at its first problem (nothing of it is loaded) and the
  command exits with code 2.
"""
from __future__ import annotations

import functools
import hashlib
import json
import time
from pathlib import Path

import click
import pandas as pd

from ..errors import InputError, StoreError
from ._common import data_dir, progress
from ._store import open_ctx_store, store_option

MAX_PROBLEMS_SHOWN = 20
LOCK_WAIT_S = 120.0
CARD_MAP_TABLE = "card_map"


@functools.lru_cache(maxsize=1)
def _reference():
    """The reference index (GTFS stops/routes, bike stations, car parks), built once per process."""
    from emission_ext import reference
    from yelo_ingest.refs import build_reference_index

    gtfs = reference.load_gtfs(tables=("routes", "stops", "trips", "stop_times"))
    return build_reference_index(gtfs, reference.load_bike_stations(), reference.load_car_parks())


def archive(raw: bytes, path: Path, root: Path, received_at: float) -> tuple[str, Path]:
    """Copy ``raw`` to ``root/archive/<sha256[:16]>_<name>`` (once) and log it in the manifest.

    Returns (sha256 hex digest, archived path)."""
    digest = hashlib.sha256(raw).hexdigest()
    adir = root / "archive"
    adir.mkdir(parents=True, exist_ok=True)
    dest = adir / f"{digest[:16]}_{path.name}"
    if not dest.exists():
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(raw)
        tmp.replace(dest)
    with open(adir / "manifest.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"file": str(path), "sha256": digest, "bytes": len(raw),
                             "received_at": received_at, "archived_as": dest.name}) + "\n")
    return digest, dest


def write_quarantine(q: pd.DataFrame, path: Path, root: Path) -> Path | None:
    """Write the quarantined rows as ``root/quarantine/<name>.quarantine.csv`` (UTF-8, ``,``),
    the file's own columns plus ``reject_reason`` (prefixed with the original line)."""
    qdir = root / "quarantine"
    dest = qdir / f"{path.stem}.quarantine.csv"
    if not len(q):
        return None
    qdir.mkdir(parents=True, exist_ok=True)
    out = q.copy()
    out["reject_reason"] = "line " + out["_line"].astype(str) + ": " + out["reject_reason"].astype(str)
    out = out.drop(columns=["_line"])
    out.to_csv(dest, index=False, encoding="utf-8")
    return dest


def _stored_card_map(st) -> pd.DataFrame:
    from yelo_ingest.cardmap import empty_card_map, normalise_card_map

    try:
        cm = st.read(CARD_MAP_TABLE)
    except StoreError:
        return empty_card_map()
    return normalise_card_map(cm) if len(cm) else empty_card_map()


def _save_card_map(st, old: pd.DataFrame, new: pd.DataFrame) -> int:
    """Merge new mappings into the stored card map (per tester: union, newest wins on the same
    operator/account/valid_from) and store each changed tester's rows; return rows added."""
    from yelo_ingest.cardmap import normalise_card_map

    both = pd.concat([old, new], ignore_index=True)
    key = ["operator", "account_id", "user_id", "valid_from"]
    merged = normalise_card_map(both.drop_duplicates(key, keep="last"))
    added = len(merged) - len(old)
    for uid in sorted(set(new["user_id"])):
        rows = merged[merged["user_id"] == uid]
        # dates stored as YYYY-MM-DD text: a calendar day, not an instant
        st.replace_user(CARD_MAP_TABLE, str(uid), rows.assign(
            valid_from=rows["valid_from"].dt.strftime("%Y-%m-%d"),
            valid_to=rows["valid_to"].dt.strftime("%Y-%m-%d")))
    return added


def append_records(st, records: pd.DataFrame, wait_s: float = LOCK_WAIT_S) -> tuple[int, int]:
    """Append records user by user, each under the user's processing lock (the lock the
    runner holds while it fuses that user, so a run never overwrites a record being added).

    Waits up to ``wait_s`` seconds for a busy user; returns (added, already present)."""
    added = present = 0
    for uid, part in records.groupby("user_id", sort=True):
        deadline = time.monotonic() + wait_s
        while True:
            try:
                with st.lock(str(uid)):
                    r = st.append("records", part)
                break
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        added += r.added
        present += r.present
    return added, present


def _echo_problems(problems: pd.DataFrame) -> None:
    for row in problems.head(MAX_PROBLEMS_SHOWN).itertuples(index=False):
        where = f"{row.file}"
        if pd.notna(row.line):
            where += f", line {int(row.line)}"
        if row.field:
            where += f", field '{row.field}'"
        val = f" (value {row.value!r})" if row.value not in (None, "") and pd.notna(row.value) else ""
        click.echo(f"  {where}: {row.reason}{val}", err=True)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        click.echo(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more (all in the quarantine "
                   f"file / --report)", err=True)


def _run(ctx, operator: str, files, strict: bool, store, store_db, report) -> None:
    from yelo_ingest.ingest import ingest_bytes as yelo_ingest_bytes

    if operator == "parking":
        from parking_ingest.ingest import ingest_bytes
    else:
        ingest_bytes = yelo_ingest_bytes
    st = open_ctx_store(ctx, store, store_db)
    root = Path(data_dir(ctx)) / "operator"
    ref = _reference()
    testers = st.read("testers")
    known_users = testers["user_id"].astype(str).to_numpy() if len(testers) else None
    if known_users is None:
        click.echo("note: no testers in the store; card-map tester ids are not checked against "
                   "a testers table", err=True)
    received = time.time()
    raws = []
    for f in files:
        p = Path(f)
        raw = p.read_bytes()
        digest, _ = archive(raw, p, root, received)
        raws.append((p, raw, digest))
    card_map = _stored_card_map(st)
    results = []
    # card maps first, so the records of this call can use them
    from yelo_ingest.rows import parse

    def is_card_map(raw: bytes, p: Path) -> bool:
        cols = set(parse(raw[:4096].rsplit(b"\n", 1)[0] + b"\n", str(p)).columns)
        return {"operator", "account_id", "user_id"} <= cols

    ordered = sorted(raws, key=lambda r: 0 if is_card_map(r[1], r[0]) else 1)
    total_added = total_present = 0
    rejected_files = []
    all_problems = []
    for p, raw, digest in progress(ordered, desc=f"ingest {operator}", unit="file"):
        try:
            res = ingest_bytes(raw, str(p), ref=ref, card_map=card_map, known_users=known_users)
        except InputError as exc:  # not an operator file of this kind: report, go on with the others
            click.echo(f"{p.name}: NOT INGESTED: {exc}", err=True)
            rejected_files.append(p.name)
            continue
        results.append(res)
        all_problems.append(res.problems)
        s = res.stats
        head = (f"{p.name} [{res.format}, {s['encoding']}, sep {s['separator']!r}, sha256 {digest[:12]}]: "
                f"{s['rows']} rows, {s['good']} good, {s['bad']} bad, {s['duplicates']} repeated")
        if strict and not res.ok:
            click.echo(head + " -> REJECTED (--strict)")
            _echo_problems(res.problems)
            rejected_files.append(p.name)
            continue
        if res.card_map is not None:
            if res.format == "card_map" and len(res.card_map):
                added = _save_card_map(st, card_map, res.card_map)
                card_map = _stored_card_map(st)
                head += f"; card map: {added} new mappings"
        elif len(res.records):
            r = append_records(st, res.records)
            total_added += r[0]
            total_present += r[1]
            head += f"; records: {r[0]} added, {r[1]} already present"
        q = write_quarantine(res.quarantine, p, root)
        if q is not None:
            head += f"; quarantined -> {q}"
        click.echo(head)
        if not res.ok:
            _echo_problems(res.problems)
    probs = pd.concat(all_problems, ignore_index=True) if all_problems else pd.DataFrame()
    if report:
        probs.to_csv(report, index=False)
        click.echo(f"problem report: {report} ({len(probs)} problems)")
    click.echo(f"total: {total_added} records added, {total_present} already present, "
               f"{sum(len(r.quarantine) for r in results if r.path and Path(r.path).name not in rejected_files)} rows quarantined, "
               f"{len(rejected_files)} files rejected")
    if rejected_files:
        raise InputError(rejected_files[0] if len(rejected_files) == 1 else f"{len(rejected_files)} files",
                         "not loaded (see the problems above)")


@click.group("ingest")
def command() -> None:
    """Validate and load operator records (Yélo, parking) into the store."""


def _make(operator: str, what: str):
    @command.command(operator, help=f"Ingest {what} files (CSV or JSON, see docs/operator_formats.md). "
                                    "Card-map files given in the same call are applied first.")
    @click.argument("files", nargs=-1, required=True,
                    type=click.Path(exists=True, dir_okay=False, readable=True))
    @click.option("--strict", is_flag=True,
                  help="Reject a whole file when any row is bad (default: load the good rows, "
                       "quarantine the bad ones).")
    @click.option("--report", type=click.Path(dir_okay=False, writable=True), default=None,
                  help="Also write every problem (file, line, field, value, reason) to this CSV.")
    @store_option
    @click.pass_context
    def _cmd(ctx, files, strict, report, store, store_db):
        _run(ctx, operator, files, strict, store, store_db, report)

    _cmd.__name__ = f"ingest_{operator}"
    return _cmd


_make("yelo", "Yélo validation, bike-share, car-share and card-map")
_make("parking", "parking session and card-map")


@command.command("status")
@store_option
@click.pass_context
def status(ctx, store, store_db):
    """Summary of the operator records in the store: per source, matched to a GPS section,
    in record-only trips, unmatched; conflicts to review; rows waiting in quarantine."""
    st = open_ctx_store(ctx, store, store_db)
    rec = st.read("records")
    trips = st.read("trips")
    try:
        conflicts = st.read("conflicts")
    except StoreError:
        conflicts = pd.DataFrame()
    rec_only = set(zip(trips.loc[trips.get("origin", pd.Series(dtype=object)) == "record", "user_id"],
                       trips.loc[trips.get("origin", pd.Series(dtype=object)) == "record", "trip_id"]))
    in_rec_only = pd.Series([(u, t) in rec_only for u, t in zip(rec["user_id"], rec["trip_id"])], dtype=bool,
                            index=rec.index)
    matched = rec["section_id"].notna() & ~in_rec_only
    click.echo(f"records: {len(rec)} ({rec['user_id'].nunique()} testers)")
    for src, g in rec.groupby("source"):
        m = int(matched[g.index].sum())
        r = int(in_rec_only[g.index].sum())
        click.echo(f"  {src:10s} {len(g):6d}: {m} on GPS sections, {r} in record-only trips, "
                   f"{len(g) - m - r} not fused yet or unmatched")
    click.echo(f"record-only trips: {len(rec_only)}")
    if len(conflicts) and "kind" in conflicts:
        kinds = ", ".join(f"{k} {n}" for k, n in conflicts["kind"].value_counts().items())
        click.echo(f"conflicts to review: {len(conflicts)} ({kinds})")
    else:
        click.echo("conflicts to review: 0")
    qdir = Path(data_dir(ctx)) / "operator" / "quarantine"
    qfiles = sorted(qdir.glob("*.quarantine.csv")) if qdir.exists() else []
    n_q = sum(len(pd.read_csv(f, dtype=str, keep_default_na=False)) for f in qfiles)
    click.echo(f"quarantined rows: {n_q} in {len(qfiles)} file(s){' under ' + str(qdir) if qfiles else ''}")
