"""``emission-ext evaluate segmentation``: trip/section segmentation against a reference.

Why: the acceptance figures of the segmentation (trip F1, start/end errors, section
boundaries) must come from a command anyone can re-run, not from a test. Two references:
the real e-mission phone days shipped with the product (e-mission's own output as ground
truth) and a synthetic world with exact truth (generated here, or a folder written by
``emission_ext.synth.write_world``).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import click
import pandas as pd

from ..errors import ConfigError


@click.group("evaluate")
def command():
    """Evaluate pipeline steps against reference data."""


def _fmt_score(s) -> str:
    return (f"trips pred {s.n_pred} ref {s.n_ref} matched {s.matched}  P {s.precision:.3f} "
            f"R {s.recall:.3f} F1 {s.f1:.3f}  median start err {s.median_start_err_s:.0f} s, "
            f"end err {s.median_end_err_s:.0f} s")


@command.command("segmentation")
@click.option("--reference", "reference", type=click.Path(file_okay=False),
              help="Folder of e-mission days with *.ground_truth.json.gz "
                   "(default: the real days shipped with the product).")
@click.option("--synthetic", "synthetic", is_flag=True,
              help="Also evaluate on a synthetic world (both platforms).")
@click.option("--world", type=click.Path(file_okay=False),
              help="A folder written by emission_ext.synth.write_world (implies --synthetic).")
@click.option("--testers", default=20, show_default=True, help="Synthetic testers.")
@click.option("--days", default=3, show_default=True, help="Synthetic days.")
@click.option("--seed", default=0, show_default=True, help="Synthetic seed.")
@click.option("--tolerance", default=60.0, show_default=True,
              help="Section boundary tolerance, seconds.")
def segmentation(reference, synthetic, world, testers, days, seed, tolerance):
    """Trip precision/recall/F1 and time errors per day and overall."""
    from ..evaluation import runs
    from ..reference import EMISSION_REAL_DIR

    ref = Path(reference) if reference else EMISSION_REAL_DIR
    per_day, overall = runs.real_days(ref)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        cols = ["day", "n_pred", "n_ref", "matched", "precision", "recall", "f1",
                "median_start_err_s", "median_end_err_s", "note"]
        click.echo(per_day[[c for c in cols if c in per_day]].round(3).to_string(index=False))
    click.echo(f"real days overall: {_fmt_score(overall)}")
    if not (synthetic or world):
        return
    if world is None:
        try:
            from ..synth import generate_world, write_world
        except ImportError as exc:
            raise ConfigError(f"synthetic world generator unavailable ({exc}); pass --world DIR") from None
        tmp = tempfile.TemporaryDirectory(prefix="eval-world-")
        world = tmp.name
        write_world(generate_world(testers=testers, days=days, seed=seed), world)
    res = runs.synthetic(world, tolerance)
    click.echo(f"synthetic overall: {_fmt_score(res['trips'])}")
    if res.get("unobservable_trips"):
        click.echo(f"  ({res['unobservable_trips']} truth trips made with the phone off are left out: "
                   "no data to find them in)")
    if "per_platform" in res:
        for _, r in res["per_platform"].iterrows():
            click.echo(f"  {r['platform']}: P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} "
                       f"(pred {r['n_pred']}, ref {r['n_ref']})")
    click.echo(f"section boundaries within {tolerance:.0f} s of a true mode change: "
               f"{res['boundary_hits']}/{res['boundary_total']} = {res['boundary_share']:.3f}; "
               f"counting our trip starts/ends as boundaries too: "
               f"{res['boundary_hits_with_edges']}/{res['boundary_total']} = "
               f"{res['boundary_share_with_edges']:.3f}")
    if "pred_boundaries" in res:
        click.echo(f"predicted section boundaries within {tolerance:.0f} s of a true mode change: "
                   f"{res['pred_boundaries_near']}/{res['pred_boundaries']} = "
                   f"{res['pred_boundary_share']:.3f}")


from ._evaluate_fusion import command as _fusion_eval; command.add_command(_fusion_eval)  # noqa: E402,E702 (issue 6)
