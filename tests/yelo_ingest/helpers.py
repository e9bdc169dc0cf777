"""Small hand-made operator files over the real reference ids, shared by the ingest tests."""
from __future__ import annotations

import functools

from emission_ext import reference
from yelo_ingest.refs import build_reference_index


@functools.lru_cache(maxsize=1)
def ref_index():
    """The real reference index (Yélo GTFS, bike stations, car parks), built once."""
    gtfs = reference.load_gtfs(tables=("routes", "stops", "trips", "stop_times"))
    return build_reference_index(gtfs, reference.load_bike_stations(), reference.load_car_parks())


def ids():
    r = ref_index()
    bus_stop = r.stops.index[~r.stops["ferry_only"].to_numpy()][0]
    ferry_stop = r.stops.index[r.stops["ferry_only"].to_numpy()][0]
    bus_route = r.routes.index[(r.routes["route_type"] == 3).to_numpy()][0]
    ferry_route = r.routes.index[(r.routes["route_type"] == 4).to_numpy()][0]
    return dict(bus_stop=bus_stop, ferry_stop=ferry_stop, bus_route=bus_route, ferry_route=ferry_route,
                st1=r.bike_stations.index[0], st2=r.bike_stations.index[5],
                cp1=r.car_parks.index[0], cp2=r.car_parks.index[1])


CARD_MAP = (
    "operator,account_id,user_id,valid_from,valid_to\n"
    "yelo,C001,010,,\n"
    "yelo,C002,011,2026-01-01,2026-12-31\n"
    "parking,P001,010,,\n"
)


def validations_csv(sep=",", dec="."):
    i = ids()
    rows = [
        ["validation_id", "card_id", "validated_at", "stop_id", "route_id", "fare_product", "amount_eur"],
        ["V1", "C001", "2026-03-02T08:14:05+01:00", i["bus_stop"], i["bus_route"], "TICKET_1H", f"1{dec}50"],
        ["V2", "C001", "2026-03-02 08:40:00", i["bus_stop"], "", "PASS_MONTH", "0"],
        ["V3", "C002", "2026-03-03T07:00:00Z", i["ferry_stop"], i["ferry_route"], "BOAT_SINGLE", f"3{dec}00"],
        ["V4", "C002", "2026-03-04T07:00:00Z", i["ferry_stop"], "", "Billet à l'unité", ""],
    ]
    return "\n".join(sep.join(r) for r in rows) + "\n"


def bikeshare_csv():
    i = ids()
    return ("provider_name,trip_id,account_id,device_id,start_time,end_time,start_station_id,"
            "end_station_id,trip_duration,trip_distance,cost_eur\n"
            f"Yelo,B1,C001,bike7,2026-03-02T09:00:00+01:00,2026-03-02T09:20:00+01:00,{i['st1']},{i['st2']},1200,3100,0\n"
            f"Yelo,B2,C002,,2026-03-02T10:00:00+01:00,2026-03-02T10:45:00+01:00,{i['st2']},{i['st1']},,,1.5\n")


def carshare_csv():
    i = ids()
    return ("provider_name,trip_id,account_id,vehicle_id,vehicle_fuel,start_time,end_time,station_id,"
            "trip_distance,cost_eur\n"
            f"Yelo Autopartage,K1,C001,car1,electric,2026-03-07T10:00:00+01:00,2026-03-07T15:00:00+01:00,{i['cp1']},42000,24.5\n")


def parking_csv():
    i = ids()
    return ("session_id,account_id,car_park_id,entry_time,exit_time,rate_type,amount_eur\n"
            f"S1,P001,{i['cp1']},2026-03-02T08:05:00+01:00,2026-03-02T17:40:00+01:00,subscription,0\n"
            f"S2,P001,{i['cp2']},2026-03-03T08:05:00+01:00,,hourly,\n")
