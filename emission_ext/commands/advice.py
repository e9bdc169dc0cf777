"""``emission-ext advice``: the coach's suggestions for one tester, ranked by CO2e saved.

Why: turns a tester's own car trips into a few concrete alternatives that fit (a bike, a Yélo
bike between two stations, a Yélo bus line that runs at that time) with the CO2e and euros
each would save per month. The Yélo GTFS and bike stations are the shipped reference data
unless other files are given.
"""
from __future__ import annotations


import click

from ._carbon import carbon_options, footprint_of, read_inputs, require_user
from ._store import open_ctx_store, store_option


@click.command("advice")
@click.option("--user", "user_id", required=True, metavar="U", help="The tester's user id.")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True, help="How many suggestions.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--gtfs", "gtfs_path", type=click.Path(dir_okay=False, exists=True), default=None,
              metavar="ZIP", help="GTFS feed [default: the shipped Yélo feed].")
@click.option("--bike-stations", "stations_path", type=click.Path(dir_okay=False, exists=True), default=None,
              metavar="CSV", help="Bike-share stations [default: the shipped Yélo snapshot].")
@carbon_options
@store_option
@click.pass_context
def command(ctx, user_id, top, fmt, gtfs_path, stations_path, construction, car_cost, occupancy,
            factors_path, tariffs_path, store, store_db):
    """Suggest bike, bike-share or bus alternatives to a tester's short car trips."""
    from carbon.advice import AdviceContext, advise, car_trips
    from carbon.factors import FactorParams

    from ..reference import BIKE_STATIONS_PATH, GTFS_PATH, load_bike_stations, load_gtfs

    st = open_ctx_store(ctx, store, store_db)
    require_user(st, user_id)
    data = read_inputs(st, [user_id], with_trips=True)
    fp, factors, tariffs = footprint_of(data, construction, occupancy, car_cost, factors_path, tariffs_path)
    if car_trips(data.trips, fp[fp["user_id"] == user_id]).empty:
        click.echo("[]" if fmt == "json" else
                   f"No suggestion for tester {user_id}: no car trip to replace in the data.")
        return
    context = AdviceContext.build(load_gtfs(gtfs_path or GTFS_PATH),
                                  load_bike_stations(stations_path or BIKE_STATIONS_PATH))
    adv = advise(data.trips, fp, data.sections, data.testers, context, factors, tariffs,
                 factor_params=FactorParams(include_construction=construction, car_occupancy=occupancy))
    adv = adv[adv["user_id"] == user_id].head(top)
    if fmt == "json":
        click.echo(adv.to_json(orient="records", indent=1))
        return
    if adv.empty:
        click.echo(f"No suggestion for tester {user_id}: no short car trip that a bike or a bus line fits.")
        return
    click.echo(f"Suggestions for tester {user_id} (factors {fp['factor_version'].iloc[0]}, "
               f"tariffs {fp['tariff_version'].iloc[0]}):")
    for r in adv.itertuples():
        click.echo(f"{r.rank}. {r.message}")
