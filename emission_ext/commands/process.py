"""``emission-ext process``: stateless segmentation of raw files into trips, sections, places.

Why: the quickest way to see what the pipeline makes of some raw data, with no store: read
every input (e-mission JSON, CSV, GPX, GeoLife), segment all users at once with
:func:`pipeline.segment.segment_user` and write ``trips.csv``, ``sections.csv`` and
``places.csv`` (SPEC section 3 columns, unix-second timestamps) into ``--out``.
"""
from __future__ import annotations

import time
from pathlib import Path

import click
import pandas as pd

from .. import schema
from ..errors import InputError

FORMATS = ("auto", "emission", "csv", "gpx", "geolife")


def read_inputs(paths, fmt: str, skip_bad: bool):
    """Read and concatenate every input file; returns (points, motion, transitions, skipped)."""
    from ..io.readers import read

    pts, mot, trn, skipped = [], [], [], 0
    if len(paths) > 1:  # a bar for one file says nothing (and tqdm costs ~50 ms to import)
        from ._common import progress

        paths = progress(paths, desc="reading", unit="file")
    for path in paths:
        raw = read(path, fmt=fmt, skip_bad=skip_bad)
        p = raw.points
        if any(z != schema.DEFAULT_TZ for z in raw.tz.values()):  # default zone: no column needed
            p = p.assign(tz=p["user_id"].map(raw.tz))
        pts.append(p)
        mot.append(raw.motion)
        trn.append(raw.transitions)
        skipped += raw.skipped
    def cat(frames):
        frames = [f for f in frames if len(f)]
        if not frames:
            return None
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    points = cat(pts)
    if points is None:
        points = pts[0] if pts else None
    return points, cat(mot), cat(trn), skipped


@click.command("process")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Input format (auto: from the extension and content).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder for trips.csv, sections.csv, places.csv.")
@click.option("--skip-bad", is_flag=True, help="Skip malformed entries instead of stopping.")
@click.option("--quiet", is_flag=True, help="Do not print the summary.")
@click.option("--no-modes", is_flag=True,
              help="Skip the travel-mode classifier (sections keep the segmentation's speed-regime mode).")
def command(inputs, fmt, out_dir, skip_bad, quiet, no_modes):
    """Segment raw INPUT files into trips, sections and places (no store)."""
    from pipeline.segment import segment_user

    from ..io.writers import write_table

    t0 = time.perf_counter()
    points, motion, transitions, skipped = read_inputs(inputs, fmt, skip_bad)
    if points is None:
        raise InputError(inputs[0], "no input")
    t1 = time.perf_counter()
    res = segment_user(points, motion, transitions, labelled=False if no_modes else "arrays")
    n_points, n_users = len(points), points["user_id"].nunique()
    del points, transitions  # the raw frames are not needed to write the results
    t2 = time.perf_counter()
    if not no_modes:  # the shipped mode classifier (rules when none is shipped)
        from ..models.apply import apply_modes

        res["sections"] = apply_modes(res["sections"], res.pop("section_points"), motion)
    del motion
    t2m = time.perf_counter()
    out = Path(out_dir)
    for name in ("trips", "sections", "places"):
        write_table(res[name], out / f"{name}.csv", table=name)
    t3 = time.perf_counter()
    if not quiet:
        click.echo(
            f"{n_points} points ({len(res['removed'])} removed by cleaning, {skipped} bad entries "
            f"skipped), {n_users} users -> {len(res['trips'])} trips, "
            f"{len(res['sections'])} sections, {len(res['places'])} places in {out}/ "
            f"(read {t1 - t0:.2f} s, segment {t2 - t1:.2f} s, modes {t2m - t2:.2f} s, "
            f"write {t3 - t2m:.2f} s)")
