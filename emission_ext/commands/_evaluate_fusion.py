"""``emission-ext evaluate fusion``: fusion acceptance figures on a synthetic world.

Why: the issue's bars (>= 95% of records on the right section, >= 98% of fused sections with the
right mode, record-only trips for >= 95% of the records whose trip the phone missed) are
measured here, by re-runnable code: the world's operator files go through the real ingest,
then fusion runs against the true sections and against our segmentation's sections
(:mod:`emission_ext.evaluation.fusion`). Registered in the ``evaluate`` group.
"""
from __future__ import annotations

import click


@click.command("fusion")
@click.option("--testers", default=50, show_default=True, help="Synthetic testers.")
@click.option("--days", default=7, show_default=True, help="Synthetic days.")
@click.option("--seed", "seeds", default="0", show_default=True, metavar="S1,S2",
              help="World seeds (comma-separated: one world each, figures summed).")
@click.option("--no-segmented", is_flag=True, help="Only fuse against the true sections.")
def command(testers, days, seeds, no_segmented):
    """Records attached right, fused modes right, record-only trips, on synthetic worlds."""
    from ..errors import ConfigError
    from ..evaluation.fusion import FusionScore, evaluate_world

    try:
        from ..synth import generate_world
    except ImportError as exc:
        raise ConfigError(f"synthetic world generator unavailable ({exc})") from None
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seed: comma-separated integers, not {seeds!r}") from None
    totals: dict[str, FusionScore] = {}
    for seed in seed_list:
        world = generate_world(testers=testers, days=days, seed=seed)
        scores, stats = evaluate_world(world, segmented=not no_segmented)
        bad = {k: v["bad"] for k, v in stats.items() if v["bad"]}
        dup = {k: v["duplicates"] for k, v in stats.items() if v["duplicates"]}
        click.echo(f"seed {seed}: {len(world.points):,} points, {len(world.records)} true records; "
                   f"ingest quarantined {bad or 'none'}, repeated rows dropped {dup or 'none'}")
        for s in scores:
            click.echo(f"  {s.line()}")
            acc = totals.get(s.against)
            if acc is None:
                totals[s.against] = s
            else:
                for f in ("records", "attach_total", "attach_right", "attach_cover", "attach_best_ours", "fused_sections",
                          "fused_mode_right", "missed_total", "missed_record_only", "conflicts"):
                    setattr(acc, f, getattr(acc, f) + getattr(s, f))
                acc.seconds += s.seconds
    if len(seed_list) > 1:
        click.echo("all seeds:")
        for s in totals.values():
            click.echo(f"  {s.line()}")
