"""``emission-ext demo``: the whole product on a synthetic La Rochelle, in one command.

Why: the first thing a new operator, planner or developer runs. It builds a synthetic world
(testers, their phones, their Yélo and parking records, with ground truth), then drives the
same commands an operator would — ``import testers``, ``import emission --user-map``,
``ingest yelo``, ``ingest parking``, ``run`` — on the embedded store (``--data-dir``), prints
a summary scored against the truth, and writes an HTML report. ``--real-days`` runs the chain
on the real e-mission phone days shipped with the product instead. Everything is incremental:
a second ``demo`` with the same options adds 0 rows and processes 0 users.
"""
from __future__ import annotations

import html
import time
from pathlib import Path

import click
import pandas as pd

from ..runner import run
from ._common import data_dir, progress
from ._store import open_ctx_store, store_option


def _count(st, table: str) -> int:
    return int(sum(len(st.read(table, [u])) for u in st.users(table)))


def _invoke(ctx, group, name: str, **kwargs) -> None:
    """Run subcommand ``name`` of ``group`` as the operator would (defaults filled by click)."""
    ctx.invoke(group.commands[name], **kwargs)


@click.command("demo")
@click.option("--testers", type=click.IntRange(1, 2000), default=10, show_default=True,
              help="Synthetic testers.")
@click.option("--days", type=click.IntRange(1, 366), default=3, show_default=True,
              help="Days simulated per tester.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same world).")
@click.option("--real-days", is_flag=True,
              help="Use the real e-mission phone days shipped with the product instead of a synthetic world.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes for the pipeline [default: number of cores].")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="HTML report [default: DATA_DIR/demo-report.html].")
@store_option
@click.pass_context
def command(ctx, testers, days, seed, real_days, workers, report_path, store, store_db):
    """Build a synthetic La Rochelle, run the whole pipeline, print a summary, write a report."""
    t0 = time.perf_counter()
    st = open_ctx_store(ctx, store, store_db)
    click.echo(f"store: {st.describe()}")
    root = Path(data_dir(ctx))
    world = None
    if real_days:
        _load_real_days(st)
    else:
        world = _load_world(ctx, root, testers, days, seed, store, store_db)
    summary = run(st, workers=workers, progress=lambda n: progress(total=n, desc="pipeline", unit="user"))
    for line in summary.lines():
        click.echo(line)
    facts = _facts(st)
    click.echo("summary: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    scores = _scores(st, world) if world is not None else {}
    for k, v in scores.items():
        click.echo(f"  {k}: {v}")
    footprint = st.read("footprint")
    by_mode = _by_mode(footprint)
    if len(by_mode):
        click.echo("footprint by mode (all testers):")
        for mode, r in by_mode.iterrows():
            click.echo(f"  {mode:<10} {r['km']:8.1f} km  {_kg_text(r)}  EUR {r['eur']:8.2f}")
    out = Path(report_path) if report_path else root / "demo-report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(_html(facts, scores, by_mode, _per_tester(st, footprint),
                         {"testers": testers, "days": days, "seed": seed} if world is not None
                         else {"data": "real e-mission days"}), encoding="utf-8")
    tmp.replace(out)
    click.echo(f"report: {out}  ({time.perf_counter() - t0:.1f} s)")
    if summary.failed:
        ctx.exit(1)


def _load_real_days(st) -> None:
    from ..io.readers import RawData, read
    from ..reference import emission_real_days
    from ..stores.loading import load_raw

    days = emission_real_days()
    raws = [read(p, fmt="emission", skip_bad=True)
            for p in progress(days, desc="reading real e-mission days", unit="file")]
    for table, r in load_raw(st, RawData.concat(raws)).items():
        click.echo(f"{table}: {r.added} added ({r.present} already present) from {len(days)} files")


def _load_world(ctx, root: Path, testers: int, days: int, seed: int, store, store_db):
    from ..synth import generate_world, write_world
    from .import_ import command as import_group
    from .ingest import command as ingest_group

    with progress(total=2 * testers, desc="synthetic world", unit="step") as bar:
        world = generate_world(testers=testers, days=days, seed=seed, progress=bar.update)
    wdir = root / "demo-world"
    write_world(world, wdir)
    click.echo(f"synthetic world: {testers} testers x {days} days (seed {seed}): "
               f"{len(world.truth_trips)} true trips, {len(world.points)} points, "
               f"{len(world.records)} operator records -> {wdir}")
    common = {"store": store, "store_db": store_db}
    _invoke(ctx, import_group, "testers", file=str(wdir / "truth" / "testers.csv"), **common)
    _invoke(ctx, import_group, "emission", files=tuple(sorted(str(p) for p in (wdir / "emission").glob("*.json.gz"))),
            user_map=str(wdir / "truth" / "testers.csv"), skip_bad=True, **common)
    op = wdir / "operator"
    _invoke(ctx, ingest_group, "yelo", files=(str(op / "card_map.csv"), str(op / "yelo_validations.csv"),
                                             str(op / "yelo_bikeshare.csv"), str(op / "yelo_carshare.csv")),
            **common)
    _invoke(ctx, ingest_group, "parking", files=(str(op / "card_map.csv"), str(op / "parking_sessions.csv")),
            **common)
    return world


def _facts(st) -> dict:
    return {"users": len(st.users("points")), "points": _count(st, "points"),
            "trips": _count(st, "trips"), "sections": _count(st, "sections"),
            "records": _count(st, "records"), "footprint rows": _count(st, "footprint")}


def _scores(st, world) -> dict:
    from ..evaluation.pipeline import mode_score, record_attachment
    from ..evaluation.segmentation import score_trips

    trips, sections, records = st.read("trips"), st.read("sections"), st.read("records")
    gps_trips = trips[trips["origin"].fillna("gps") != "record"] if "origin" in trips else trips
    truth_trips = world.truth_trips
    if "phone_off" in truth_trips:
        truth_trips = truth_trips[~truth_trips["phone_off"].astype(bool)]
    ts = score_trips(gps_trips, truth_trips)
    ms = mode_score(sections, world.truth_sections)
    right, scored = record_attachment(records, world.record_truth, sections, world.truth_sections)
    out = {
        "trips vs truth": f"F1 {ts.f1:.3f} (precision {ts.precision:.3f}, recall {ts.recall:.3f}; "
                          f"median start/end error {ts.median_start_err_s:.0f}/{ts.median_end_err_s:.0f} s)",
        "section modes vs truth": f"{ms.accuracy:.1%} of {ms.n} true sections "
                                  f"({ms.duration_accuracy:.1%} of their time)",
        "operator records on the right section": f"{right}/{scored}"
                                                 + (f" = {right / scored:.1%}" if scored else ""),
    }
    fp = st.read("footprint")
    if len(fp):
        from carbon.footprint import compute_footprint
        from carbon.factors import load_factors
        from carbon.tariffs import load_tariffs

        true_fp = compute_footprint(world.truth_sections, world.testers, load_factors(), load_tariffs())
        est, true = float(fp["co2e_kg"].sum()), float(true_fp["co2e_kg"].sum())
        out["panel CO2e vs truth"] = f"{est:.1f} kg estimated, {true:.1f} kg on the true sections" + (
            f" ({(est - true) / true:+.1%})" if true else "")
    return out


def _by_mode(fp: pd.DataFrame) -> pd.DataFrame:
    if fp.empty:
        return pd.DataFrame(columns=["km", "kg_co2e", "kg_co2e_low", "kg_co2e_high", "eur"])
    g = fp.groupby("mode")
    # kg_co2e stays empty (NaN) for a mode whose every section has only a range (FERRY,
    # UNKNOWN: no sourced central factor) instead of summing to a misleading 0
    return pd.DataFrame({"km": g["distance_m"].sum() / 1000, "kg_co2e": g["co2e_kg"].sum(min_count=1),
                         "kg_co2e_low": g["co2e_kg_low"].sum(), "kg_co2e_high": g["co2e_kg_high"].sum(),
                         "eur": g["cost_eur"].sum()}).sort_values("km", ascending=False)


def _kg_text(r) -> str:
    """Central kg CO2e, or the range when the mode has no central factor."""
    if pd.notna(r["kg_co2e"]):
        return f"{r['kg_co2e']:8.2f} kg CO2e"
    return f"{r['kg_co2e_low']:.3f}-{r['kg_co2e_high']:.3f} kg CO2e (range; no sourced central factor)"


def _per_tester(st, fp: pd.DataFrame) -> pd.DataFrame:
    trips = st.read("trips")
    if trips.empty:
        return pd.DataFrame()
    t = trips.groupby("user_id").agg(trips=("trip_id", "size"), km=("distance_m", lambda s: s.sum() / 1000))
    if len(fp):
        f = fp.groupby("user_id").agg(kg_co2e=("co2e_kg", "sum"), eur=("cost_eur", "sum"))
        t = t.join(f, how="left")
    return t.round(2)


def _html(facts: dict, scores: dict, by_mode: pd.DataFrame, per_tester: pd.DataFrame, run_params: dict) -> str:
    esc = html.escape

    def kv(d: dict) -> str:
        return "<table>" + "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>"
                                   for k, v in d.items()) + "</table>"

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>emission-ext demo report</title><style>body{font-family:sans-serif;max-width:60em;"
        "margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;"
        "padding:.3em .6em;text-align:left}th{background:#f3f3f3}</style></head><body>",
        "<h1>emission-ext demo report</h1>",
        f"<h2>Run</h2>{kv(run_params)}",
        f"<h2>What the pipeline produced</h2>{kv(facts)}",
    ]
    if scores:
        parts.append(f"<h2>Scored against the synthetic ground truth</h2>{kv(scores)}")
    if len(by_mode):
        parts.append("<h2>Distance, carbon and cost by mode</h2>" + by_mode.round(2).to_html(border=0))
    if len(per_tester):
        parts.append("<h2>Per tester</h2>" + per_tester.to_html(border=0))
    parts.append("</body></html>")
    return "\n".join(parts)
