"""Reference lookups for operator records: known ids and coordinates of stops, stations and car parks.

Why: validation needs the set of known GTFS stop/route ids, bike-share station ids and
car-park ids, and the ``records`` table needs the coordinates of each place so that fusion
can compare them with the GPS sections. Both come from the reference tables loaded by
:mod:`emission_ext.reference`; this module turns those tables (passed in, never read here)
into one small index. It also decides which stops are served only by ferries (GTFS
``route_type`` 4: Le Bus de Mer, Le Passeur), so a validation there is a ``yelo_boat`` record.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FERRY_ROUTE_TYPE = 4


@dataclass(frozen=True)
class ReferenceIndex:
    """Known places and lines, each a DataFrame indexed by its id.

    Attributes
    ----------
    stops : DataFrame
        Index ``stop_id``; columns ``lat``, ``lon`` (WGS84 degrees), ``ferry_only`` (bool:
        every route serving the stop, or its platforms, is a ferry).
    routes : DataFrame
        Index ``route_id``; column ``route_type`` (GTFS); for routes shuttling between two
        stops (the ferries) also ``terminal_a``, ``terminal_b`` and ``crossing_s`` (median
        scheduled crossing, s), NaN otherwise.
    bike_stations : DataFrame
        Index ``station_id``; ``lat``, ``lon``.
    car_parks : DataFrame
        Index ``car_park_id``; ``lat``, ``lon``.
    """

    stops: pd.DataFrame
    routes: pd.DataFrame
    bike_stations: pd.DataFrame
    car_parks: pd.DataFrame

    def id_sets(self) -> dict[str, np.ndarray]:
        """Known ids per reference name, as used in the format files' ``reference`` keys."""
        return {
            "gtfs_stop": self.stops.index.to_numpy(dtype=object),
            "gtfs_route": self.routes.index.to_numpy(dtype=object),
            "bike_station": self.bike_stations.index.to_numpy(dtype=object),
            "car_park": self.car_parks.index.to_numpy(dtype=object),
        }


def _places(df: pd.DataFrame, id_col: str) -> pd.DataFrame:
    """Keep rows with an id and finite coordinates (reference files may have blank rows)."""
    ids = df[id_col].astype(object)
    ok = ids.notna() & ~ids.astype(str).isin(["", "nan", "None"])
    ok &= np.isfinite(pd.to_numeric(df["lat"], errors="coerce")) & np.isfinite(
        pd.to_numeric(df["lon"], errors="coerce"))
    out = pd.DataFrame({"lat": df.loc[ok, "lat"].astype("float64").to_numpy(),
                        "lon": df.loc[ok, "lon"].astype("float64").to_numpy()},
                       index=pd.Index(ids[ok].astype(str).to_numpy(), name=id_col))
    return out[~out.index.duplicated()]


def build_reference_index(gtfs: dict[str, pd.DataFrame], bike_stations: pd.DataFrame,
                          car_parks: pd.DataFrame) -> ReferenceIndex:
    """Build the index from :func:`emission_ext.reference.load_gtfs` (``stops``, ``routes``,
    ``trips``, ``stop_times``), :func:`~emission_ext.reference.load_bike_stations` and
    :func:`~emission_ext.reference.load_car_parks` frames."""
    stops = gtfs["stops"]
    st = pd.DataFrame({"lat": stops["stop_lat"].astype("float64").to_numpy(),
                       "lon": stops["stop_lon"].astype("float64").to_numpy()},
                      index=pd.Index(stops["stop_id"].astype(str).to_numpy(), name="stop_id"))
    routes = gtfs["routes"]
    rt = pd.DataFrame({"route_type": pd.to_numeric(routes["route_type"], errors="coerce").to_numpy()},
                      index=pd.Index(routes["route_id"].astype(str).to_numpy(), name="route_id"))
    ferry_only = pd.Series(False, index=st.index)
    trips, times = gtfs.get("trips"), gtfs.get("stop_times")
    if trips is not None and times is not None and len(trips) and len(times):
        trip_type = trips[["trip_id", "route_id"]].merge(
            rt.reset_index(), on="route_id", how="left").set_index("trip_id")["route_type"]
        pairs = pd.DataFrame({"stop_id": times["stop_id"].astype(str).to_numpy(),
                              "ferry": (times["trip_id"].map(trip_type) == FERRY_ROUTE_TYPE).to_numpy()})
        if "parent_station" in stops:  # a station is served by what serves its platforms
            parent = stops.set_index("stop_id")["parent_station"].dropna()
            up = pairs[pairs["stop_id"].isin(parent.index)].copy()
            up["stop_id"] = up["stop_id"].map(parent).astype(str)
            pairs = pd.concat([pairs, up], ignore_index=True)
        agg = pairs.groupby("stop_id")["ferry"].all()
        ferry_only = agg.reindex(st.index, fill_value=False).astype(bool)
    st["ferry_only"] = ferry_only.to_numpy()
    rt = rt.join(_shuttles(trips, times))
    bs = _places(bike_stations, "station_id")
    cp = _places(car_parks, "car_park_id")
    return ReferenceIndex(stops=st, routes=rt, bike_stations=bs, car_parks=cp)


def _hms(s: pd.Series) -> np.ndarray:
    """GTFS ``HH:MM:SS`` (hours may exceed 24) to seconds; NaN when unreadable."""
    parts = s.astype(str).str.split(":", expand=True)
    if parts.shape[1] < 3:
        return np.full(len(s), np.nan)
    v = parts.iloc[:, :3].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
    return v[:, 0] * 3600 + v[:, 1] * 60 + v[:, 2]


def _shuttles(trips, times) -> pd.DataFrame:
    """For routes that shuttle between exactly two stops (Le Passeur, Le Bus de Mer): both
    terminals and the median scheduled crossing time, s. Index ``route_id``; columns
    ``terminal_a``, ``terminal_b``, ``crossing_s``."""
    cols = ["terminal_a", "terminal_b", "crossing_s"]
    if trips is None or times is None or not len(trips) or not len(times):
        return pd.DataFrame(columns=cols)
    t = times[["trip_id", "stop_id", "stop_sequence", "arrival_time"]].merge(
        trips[["trip_id", "route_id"]], on="trip_id")
    n_stops = t.groupby("route_id")["stop_id"].nunique()
    two = n_stops.index[n_stops == 2]
    t = t[t["route_id"].isin(two)].sort_values(["trip_id", "stop_sequence"])
    if not len(t):
        return pd.DataFrame(columns=cols)
    sec = _hms(t["arrival_time"])
    same = t["trip_id"].to_numpy()[1:] == t["trip_id"].to_numpy()[:-1]
    d = pd.DataFrame({"route_id": t["route_id"].to_numpy()[1:][same], "d": (sec[1:] - sec[:-1])[same]})
    crossing = d[d["d"] > 0].groupby("route_id")["d"].median()
    terms = t.groupby("route_id")["stop_id"].agg(lambda x: sorted(set(x)))
    return pd.DataFrame({"terminal_a": terms.str[0], "terminal_b": terms.str[1],
                         "crossing_s": crossing.reindex(terms.index)})
