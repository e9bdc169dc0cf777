"""``emission-ext bench fusion``: time :func:`pipeline.fusion.fuse` on 100k records against the
sections of 1M points.

Why: the issue asks for fusion to be vectorised (interval joins, no nested loops) and for the
figure: 100k records against the sections of 1M points "in seconds". The points come from the
benchmark generator (:mod:`emission_ext.bench.points`, or the synthetic world) and are
segmented by our own pipeline; records are then drawn from those sections -- a validation at
a section's start, a rental or booking over a section, a car-park entry at a section's end --
at the stop/station/car park the section starts or ends at, with a uniform clock skew of up
to +-3 minutes. Only the ``fuse`` call is timed, twice: without the phone's points, and
with them and the GTFS lines' stops (as the ``fuse`` stage runs it: rides found in the
points' speed, alighting stops, phone-off checks). The share of records attached to the section
they were drawn from is printed as a sanity check (not an acceptance figure: the synthetic
world evaluation gives those).
"""
from __future__ import annotations

import time

import click
import numpy as np
import pandas as pd

from .. import schema

SOURCES = np.array(["yelo_bus", "yelo_bike", "yelo_car", "parking"], dtype=object)
KINDS = {"yelo_bus": "validation", "yelo_bike": "rental", "yelo_car": "booking", "parking": "parking_session"}


def records_from_sections(sections: pd.DataFrame, n: int, seed: int = 0, skew_s: float = 180.0,
                          shares=(0.6, 0.2, 0.1, 0.1)) -> tuple[pd.DataFrame, np.ndarray]:
    """Draw ``n`` records from ``sections`` (schema sections with WKB geometry).

    Returns (records, index of the section each record was drawn from). Sections are drawn
    without replacement while there are enough, then with replacement.
    """
    import shapely

    rng = np.random.default_rng(seed)
    ok = sections["geometry"].map(lambda g: isinstance(g, (bytes, bytearray)) and len(g) > 0).to_numpy()
    cand = np.flatnonzero(ok & (sections["duration_s"].to_numpy(dtype="float64") > 60))
    pick = rng.choice(cand, n, replace=n > len(cand))
    s = sections.iloc[pick]
    g = shapely.from_wkb(s["geometry"].to_numpy(dtype=object))
    p0, p1 = shapely.get_point(g, 0), shapely.get_point(g, -1)
    src = rng.choice(SOURCES, n, p=np.asarray(shares) / np.sum(shares))
    t0 = schema.to_unix(s["start_ts"]) + rng.uniform(-skew_s, skew_s, n)
    t1 = schema.to_unix(s["end_ts"]) + rng.uniform(-skew_s, skew_s, n)
    parking = src == "parking"
    start = np.where(parking, t1, t0)
    end = np.where(src == "yelo_bus", np.nan, np.where(parking, t1 + 8 * 3600.0, t1))
    lat0 = np.where(parking, shapely.get_y(p1), shapely.get_y(p0))
    lon0 = np.where(parking, shapely.get_x(p1), shapely.get_x(p0))
    lat1 = np.where(src == "yelo_bus", np.nan, np.where(parking, lat0, shapely.get_y(p1)))
    lon1 = np.where(src == "yelo_bus", np.nan, np.where(parking, lon0, shapely.get_x(p1)))
    rec = pd.DataFrame({
        "user_id": s["user_id"].to_numpy(dtype=object), "record_id": np.char.mod("R%07d", np.arange(n)).astype(object),
        "source": src, "kind": pd.Series(src).map(KINDS).to_numpy(dtype=object),
        "start_ts": schema.from_unix(start).to_numpy(), "end_ts": schema.from_unix(end).to_numpy(),
        "start_lat": lat0, "start_lon": lon0, "end_lat": lat1, "end_lon": lon1,
    })
    return schema.coerce(rec, "records"), pick


@click.command("fusion")
@click.option("--points", "n_points", default=1_000_000, show_default=True, help="Points to segment.")
@click.option("--records", "n_records", default=100_000, show_default=True, help="Records to fuse.")
@click.option("--users", "n_users", default=50, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--synth", "use_synth", is_flag=True,
              help="Points from the synthetic La Rochelle world (slower to generate) instead of the "
                   "simple benchmark generator.")
def command(n_points, n_records, n_users, seed, use_synth):
    """Time fuse() on N records against the sections of M points."""
    import psutil

    from pipeline.fusion import fuse
    from pipeline.segment import segment_user

    from .points import simple_points, synth_points

    t = time.perf_counter()
    pts = synth_points(n_points, n_users, seed) if use_synth else None
    gen = "synthetic world" if pts is not None else "simple generator"
    if pts is None:
        pts = simple_points(n_points, n_users, seed)
    if "source" not in pts:  # the CSV-shaped benchmark points -> schema points
        pts = pts.rename(columns={"accuracy": "accuracy_m"}).assign(source="csv")
        pts["ts"] = schema.from_unix(pts["ts"].to_numpy()).to_numpy()
    click.echo(f"{len(pts):,} points for {pts['user_id'].nunique()} users ({gen}, {time.perf_counter() - t:.1f} s)")
    t = time.perf_counter()
    seg = segment_user(pts)
    trips, sections = seg["trips"], seg["sections"]
    click.echo(f"segmented: {len(trips):,} trips, {len(sections):,} sections ({time.perf_counter() - t:.1f} s)")
    recs, pick = records_from_sections(sections, n_records, seed)
    click.echo(f"{len(recs):,} records drawn from the sections (skew up to +-3 min): "
               f"{pd.Series(recs['source']).value_counts().to_dict()}")
    rss0 = psutil.Process().memory_info().rss
    t = time.perf_counter()
    res = fuse(trips, sections, recs)
    dt = time.perf_counter() - t
    rss1 = psutil.Process().memory_info().rss
    want = sections["section_id"].to_numpy(dtype=object)[pick]
    got = res.records.set_index("record_id").reindex(recs["record_id"])["section_id"].to_numpy(dtype=object)
    s = res.summary()
    click.echo(f"fuse: {dt:.2f} s for {len(recs):,} records x {len(sections):,} sections "
               f"({len(recs) / dt:,.0f} records/s); RSS {rss0 / 2**20:.0f} -> {rss1 / 2**20:.0f} MiB")
    click.echo(f"attached to the section drawn from: {(got == want).mean():.3f} "
               f"(split sections count as misses); matched {s['matched_gps']:,}, record-only trips "
               f"{s['record_only_trips']:,}, conflicts {s['conflicts']:,}, sections split {s['sections_split']:,}")
    # as the ``fuse`` stage runs it: with the phone's points (rides seen in the speed, phone off)
    from pipeline.fusion import route_stops

    from ..reference import load_gtfs

    lp = seg["labelled_points"]
    stops = route_stops(load_gtfs(tables=("trips", "stops", "stop_times")))
    # the drawn validations get a random Yelo line, so that the alighting-stop lookup is timed too
    bus = (recs["source"] == "yelo_bus").to_numpy()
    lines = stops["route_id"].unique()
    recs = recs.copy()
    recs.loc[bus, "route_id"] = np.random.default_rng(seed).choice(lines, int(bus.sum()))
    t = time.perf_counter()
    res = fuse(trips, sections, recs, points=lp, stops=stops)
    dt = time.perf_counter() - t
    rss2 = psutil.Process().memory_info().rss
    s = res.summary()
    click.echo(f"fuse with the {len(lp):,} points and the GTFS lines' stops: {dt:.2f} s ({len(recs) / dt:,.0f} records/s); RSS -> "
               f"{rss2 / 2**20:.0f} MiB; record-only trips {s['record_only_trips']:,}, sections split "
               f"{s['sections_split']:,}")
