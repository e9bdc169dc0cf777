"""``emission-ext footprint``: a tester's CO2e and mobility budget per week or month.

Why: the tester's (and operator's) view of carbon and cost: per period, kg CO2e, euros and
kilometres by mode, the trend, and comparisons with the panel and the French average. The
footprint is computed from the stored sections with the shipped (or given) factor and tariff
files, so the versions printed are those of the figures shown.
"""
from __future__ import annotations

import json
import sys

import click
import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..runner import user_tz
from ._carbon import carbon_options, footprint_of, read_inputs, require_user
from ._store import open_ctx_store, store_option


def _pct(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:+.0f}%"


def render_text(user_id: str, tz: str, period: str, summary: pd.DataFrame, by_mode: pd.DataFrame,
                refs: pd.DataFrame, fp: pd.DataFrame, construction: bool) -> str:
    """Human-readable budget of one tester (periods oldest first)."""
    from carbon.budget import FR_DAILY_ID

    lines = [f"Footprint of tester {user_id}, per {period} ({tz}); CO2e "
             f"{'with' if construction else 'without'} vehicle construction",
             f"factors {fp['factor_version'].iloc[0]}, tariffs {fp['tariff_version'].iloc[0]}"]
    for r in summary.itertuples():
        start = r.period_start.strftime("%Y-%m-%d")
        rng = "" if r.co2e_kg_high - r.co2e_kg_low < 1e-9 and abs(r.co2e_kg_high - r.co2e_kg) < 1e-9 \
            else f" (plausible total {r.co2e_kg_low:.2f} to {r.co2e_kg_high:.2f} kg)"
        unknown_cost = f" + {int(r.n_cost_unknown)} section(s) of unknown cost" if r.n_cost_unknown else ""
        lines.append("")
        lines.append(f"{period} of {start} ({int(r.days_observed)} day(s) observed): {r.co2e_kg:.2f} kg CO2e{rng}, "
                     f"EUR {r.cost_eur:.2f}{unknown_cost}, {r.distance_km:.1f} km")
        m = by_mode[by_mode["period_start"] == r.period_start].sort_values("co2e_kg", ascending=False)
        for x in m.itertuples():
            unknown = f" ({x.n_cost_unknown} without a known cost)" if x.n_cost_unknown else ""
            if x.mode in ("UNKNOWN", "FERRY"):  # no sourced central factor: only a range
                co2 = f"{x.co2e_kg_low:.2f}-{x.co2e_kg_high:.2f} kg (range only)"
            elif x.co2e_kg_high - x.co2e_kg_low > 1e-9:
                co2 = f"{x.co2e_kg:7.2f} kg (range {x.co2e_kg_low:.2f}-{x.co2e_kg_high:.2f}: car unknown)"
            else:
                co2 = f"{x.co2e_kg:7.2f} kg"
            lines.append(f"  {x.mode:<10} {co2}  EUR {x.cost_eur:7.2f}  {x.distance_km:7.1f} km  "
                         f"{x.n_sections} section(s){unknown}")
        lines.append(f"  per day {r.co2e_kg_per_day:.2f} kg; vs previous {period} {_pct(r.trend_pct)}; "
                     f"panel average {r.panel_co2e_kg_per_day:.2f} kg/day (you {_pct(r.vs_panel_pct)}); "
                     f"French average {r.fr_co2e_kg_per_day:.2f} kg/day (you {_pct(r.vs_fr_pct)})")
    lines.append("")
    lines.append("kg CO2e totals count the modes with a sourced factor; UNKNOWN and FERRY are known only "
                 "as a range, included in the plausible total.")
    if FR_DAILY_ID in refs.index:
        lines.append(f"French average: {refs.at[FR_DAILY_ID, 'source']} <{refs.at[FR_DAILY_ID, 'url']}>")
    return "\n".join(lines)


@click.command("footprint")
@click.option("--user", "user_id", required=True, metavar="U", help="The tester's user id.")
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="week", show_default=True)
@click.option("--from", "date_from", default=None, metavar="DATE", help="First period to show (local date).")
@click.option("--to", "date_to", default=None, metavar="DATE", help="Last day to show (local date, included).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True,
              help="text: a readable budget; json: summary and by-mode tables; csv: the by-mode table.")
@click.option("--sections", "per_section", is_flag=True,
              help="Output the per-section footprint table instead of the budget (CSV on stdout, "
                   "or --out FILE.csv|.parquet).")
@click.option("--out", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="With --sections: write the table here (format from the extension).")
@carbon_options
@store_option
@click.pass_context
def command(ctx, user_id, period, date_from, date_to, fmt, per_section, out, construction, car_cost, occupancy,
            factors_path, tariffs_path, store, store_db):
    """CO2e (kg), cost (EUR) and distance by mode per day/week/month for one tester, with the
    trend and the panel and French averages."""
    from carbon.budget import budget_by_mode, budget_summary, load_reference_averages, observed_span

    from .trips import parse_bound

    st = open_ctx_store(ctx, store, store_db)
    require_user(st, user_id)
    data = read_inputs(st, None)  # the whole panel: the panel average needs it
    fp, _, _ = footprint_of(data, construction, occupancy, car_cost, factors_path, tariffs_path)
    tz = user_tz(st, user_id)
    if out is not None and not per_section:
        raise ConfigError("--out goes with --sections (the budget prints to stdout)")
    if per_section:
        mine = fp[fp["user_id"] == user_id].reset_index(drop=True)
        if out is None:
            mine.to_csv(sys.stdout, index=False)
            return
        from ..io.writers import format_from_path

        from .trips import write_out
        write_out(mine, "footprint", format_from_path(out), out)
        return
    by_mode = budget_by_mode(fp, data.sections, data.testers, period)
    summary = budget_summary(by_mode, observed_span(data.sections, data.testers), period,
                             load_reference_averages())
    summary = summary[summary["user_id"] == user_id]
    by_mode = by_mode[by_mode["user_id"] == user_id]
    lo = parse_bound(date_from, tz, False, "--from")
    hi = parse_bound(date_to, tz, True, "--to")
    if lo is not None and hi is not None and hi <= lo:
        raise ConfigError("--to is before --from")
    local = lambda b: b.tz_convert(tz).tz_localize(None)  # noqa: E731
    if lo is not None:
        keep = summary["period_start"] >= local(lo).normalize()
        summary = summary[keep]
    if hi is not None:
        summary = summary[summary["period_start"] < local(hi)]
    by_mode = by_mode[by_mode["period_start"].isin(summary["period_start"])]
    if fmt == "csv":
        by_mode.assign(period_start=by_mode["period_start"].dt.strftime("%Y-%m-%d")).to_csv(sys.stdout, index=False)
    elif fmt == "json":
        def rows(df):
            d = df.assign(period_start=df["period_start"].dt.strftime("%Y-%m-%d"))
            return json.loads(d.to_json(orient="records"))
        click.echo(json.dumps({"user_id": user_id, "period": period, "tz": tz,
                               "factor_version": fp["factor_version"].iloc[0],
                               "tariff_version": fp["tariff_version"].iloc[0],
                               "summary": rows(summary), "by_mode": rows(by_mode)}, indent=1))
    else:
        if summary.empty:
            click.echo(f"no sections for tester {user_id} in that window")
            return
        click.echo(render_text(user_id, tz, period, summary, by_mode, load_reference_averages(),
                               fp[fp["user_id"] == user_id], construction))
