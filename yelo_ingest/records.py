"""Yélo rows -> the schema ``records`` table (bus/boat validations, bike-share, car-share).

Why: each Yélo file speaks its operator's vocabulary (MDS trip fields, validation fields);
the rest of the product speaks one table. These converters take rows that already passed
validation, with their tester ids already resolved, and fill the ``records`` columns --
including the start/end coordinates of the stop, station or car park from the reference
index, which fusion compares with the GPS sections. Pure functions, vectorised.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from emission_ext import schema

from .refs import FERRY_ROUTE_TYPE, ReferenceIndex


def place_coords(ids: pd.Series, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of each id (NaN when missing or unknown)."""
    idx = table.index.get_indexer(ids.astype(object).where(ids.notna(), "\0").astype(str))
    lat = np.where(idx >= 0, table["lat"].to_numpy()[np.maximum(idx, 0)], np.nan)
    lon = np.where(idx >= 0, table["lon"].to_numpy()[np.maximum(idx, 0)], np.nan)
    return lat, lon


def finish_records(d: dict, n: int) -> pd.DataFrame:
    """Fill the remaining records columns with nulls and coerce to the schema dtypes."""
    for c in schema.RECORDS.names:
        if c not in d:
            d[c] = np.full(n, None, dtype=object) if schema.RECORDS.column(c).dtype == schema.STR else np.full(n, np.nan)
    df = pd.DataFrame(d)[schema.RECORDS.names]
    for c in schema.RECORDS.columns:
        if c.dtype == schema.STR:
            df[c.name] = df[c.name].astype(object).where(df[c.name].notna(), None)
    return schema.coerce(df, "records")


def validation_source(stop_ids: pd.Series, route_ids: pd.Series, ref: ReferenceIndex) -> np.ndarray:
    """``yelo_boat`` when the route is a ferry (GTFS route_type 4) or, without a route, when
    the stop is served only by ferries; ``yelo_bus`` otherwise."""
    rtype = route_ids.map(ref.routes["route_type"]).to_numpy(dtype="float64", na_value=np.nan)
    ferry_stop = stop_ids.map(ref.stops["ferry_only"]).fillna(False).to_numpy(dtype=bool)
    boat = np.where(np.isnan(rtype), ferry_stop, rtype == FERRY_ROUTE_TYPE)
    return np.where(boat, "yelo_boat", "yelo_bus").astype(object)


def validations_to_records(good: pd.DataFrame, users: np.ndarray, ref: ReferenceIndex) -> pd.DataFrame:
    """Validated ``yelo_validations`` rows -> records (kind ``validation``, point events:
    ``end_ts`` null, start coordinates = the stop). On a route shuttling between two stops
    (the ferries) the other terminal is the ``end_stop_id`` (with its coordinates) and the
    extra column ``expected_ride_s`` holds the scheduled crossing time."""
    n = len(good)
    lat, lon = place_coords(good["stop_id"], ref.stops)
    # a shuttle (two-stop ferry route) boarded at one terminal lands at the other
    rt = ref.routes.reindex(good["route_id"].astype(object).where(good["route_id"].notna(), "\0").astype(str))
    stop = good["stop_id"].astype(str).to_numpy()
    ta = rt["terminal_a"].to_numpy(dtype=object) if "terminal_a" in rt else np.full(n, None, dtype=object)
    tb = rt["terminal_b"].to_numpy(dtype=object) if "terminal_b" in rt else np.full(n, None, dtype=object)
    end_stop = np.where(stop == ta, tb, np.where(stop == tb, ta, None)).astype(object)
    end_stop = np.where(pd.isna(end_stop), None, end_stop).astype(object)
    elat, elon = place_coords(pd.Series(end_stop), ref.stops)
    crossing = np.where(pd.notna(end_stop), rt["crossing_s"].to_numpy(dtype="float64", na_value=np.nan)
                        if "crossing_s" in rt else np.nan, np.nan)
    out = finish_records({
        "user_id": users, "record_id": good["validation_id"].astype(str).to_numpy(),
        "source": validation_source(good["stop_id"], good["route_id"], ref),
        "kind": np.full(n, "validation", dtype=object),
        "start_ts": good["validated_at"].to_numpy(), "end_ts": pd.Series(pd.NaT, index=range(n), dtype=schema.UTC_TS),
        "stop_id": good["stop_id"].to_numpy(), "route_id": good["route_id"].to_numpy(),
        "end_stop_id": end_stop, "start_lat": lat, "start_lon": lon, "end_lat": elat, "end_lon": elon,
        "amount_eur": good["amount_eur"].to_numpy(dtype="float64", na_value=np.nan),
        "fare_product": good["fare_product"].to_numpy(),
    }, n)
    # extra column (not in the schema): scheduled crossing time of a shuttle, s (fusion uses it
    # to find where the crossing ends inside a longer GPS section)
    out["expected_ride_s"] = crossing
    return out


def bikeshare_to_records(good: pd.DataFrame, users: np.ndarray, ref: ReferenceIndex) -> pd.DataFrame:
    """Validated ``yelo_bikeshare`` rows -> records (kind ``rental``, source ``yelo_bike``)."""
    n = len(good)
    la0, lo0 = place_coords(good["start_station_id"], ref.bike_stations)
    la1, lo1 = place_coords(good["end_station_id"], ref.bike_stations)
    return finish_records({
        "user_id": users, "record_id": good["trip_id"].astype(str).to_numpy(),
        "source": np.full(n, "yelo_bike", dtype=object), "kind": np.full(n, "rental", dtype=object),
        "start_ts": good["start_time"].to_numpy(), "end_ts": good["end_time"].to_numpy(),
        "station_id": good["start_station_id"].to_numpy(), "end_station_id": good["end_station_id"].to_numpy(),
        "start_lat": la0, "start_lon": lo0, "end_lat": la1, "end_lon": lo1,
        "distance_m": good["trip_distance"].to_numpy(dtype="float64", na_value=np.nan),
        "amount_eur": good["cost_eur"].to_numpy(dtype="float64", na_value=np.nan),
    }, n)


def carshare_to_records(good: pd.DataFrame, users: np.ndarray, ref: ReferenceIndex) -> pd.DataFrame:
    """Validated ``yelo_carshare`` rows -> records (kind ``booking``, source ``yelo_car``).

    The car is taken and returned at the same car park: ``station_id`` = ``end_station_id`` =
    ``car_park_id`` = that national id, start and end coordinates = the car park. The extra
    column ``vehicle_fuel`` (electric, hybrid, petrol...) is kept for the carbon factors.
    """
    n = len(good)
    lat, lon = place_coords(good["station_id"], ref.car_parks)
    st = good["station_id"].to_numpy()
    out = finish_records({
        "user_id": users, "record_id": good["trip_id"].astype(str).to_numpy(),
        "source": np.full(n, "yelo_car", dtype=object), "kind": np.full(n, "booking", dtype=object),
        "start_ts": good["start_time"].to_numpy(), "end_ts": good["end_time"].to_numpy(),
        "station_id": st, "end_station_id": st, "car_park_id": st,
        "start_lat": lat, "start_lon": lon, "end_lat": lat, "end_lon": lon,
        "distance_m": good["trip_distance"].to_numpy(dtype="float64", na_value=np.nan),
        "amount_eur": good["cost_eur"].to_numpy(dtype="float64", na_value=np.nan),
    }, n)
    # extra column (not in the schema): the car's fuel, used by carbon for car-share factors
    out["vehicle_fuel"] = good["vehicle_fuel"].to_numpy(dtype=object)
    return out


CONVERTERS = {
    "yelo_validations": validations_to_records,
    "yelo_bikeshare": bikeshare_to_records,
    "yelo_carshare": carshare_to_records,
}
