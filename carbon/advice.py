"""The coach: concrete, non-judgemental suggestions computed from a tester's own car trips.

Why: a suggestion is only useful when it fits the trip it replaces. A short car trip is
suggested a bike (the tester's own, when they already cycle; else a Yélo bike when stations lie
near both ends) during the day, or a Yélo bus line when, on the GTFS timetable, a bus of that
line leaves a stop near the trip's start around the trip's local time on a day the service
runs and later reaches a stop near its end. Nothing is suggested otherwise: no line there, no
bus at that hour, a 3 a.m. trip, a trip too long to cycle. Repeated trips between the same
places are grouped, and each suggestion states the CO2e and euros it would save per month,
scaled from the days the data covers, using the same factor and tariff files as the footprint.

The transit and bike-share reference tables come in as arguments (built once by
:meth:`AdviceContext.build` from :func:`emission_ext.reference.load_gtfs` and
:func:`~emission_ext.reference.load_bike_stations`); nothing here reads a file.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emission_ext.geodesy import local_xy
from emission_ext.schema import to_unix

from ._files import local_naive
from .factors import EmissionFactors, FactorParams, factor_table
from .tariffs import Tariffs, bikeshare_fare

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class AdviceParams:
    """Thresholds of the coach.

    Attributes
    ----------
    bike_max_km, bus_max_km : float
        Longest car trip (km) for which a bike / a bus is suggested.
    min_km : float
        Shorter car trips are ignored (manoeuvres, GPS noise).
    car_share_min : float
        A trip counts as a car trip when CAR covers at least this share of its distance.
    stop_radius_m, station_radius_m : float
        A bus stop / bike station is "near" a trip end within this straight-line distance (m).
    day_start_h, day_end_h : float
        Bikes are suggested only for trips starting in [day_start_h, day_end_h) local time.
    bus_window_min : float
        A bus must leave the origin stop within this many minutes of the trip's start.
    bike_speed_kmh : float
        Used to price a bike-share rental (duration = km / speed).
    habit_radius_m : float
        Car trips whose origins and destinations both lie within this distance of a habit's
        first trip belong to that habit (grouped into one suggestion).
    min_days : float
        Floor of the observed span (days) when scaling savings to a month.
    min_co2e_kg_per_month : float
        Suggestions saving less than this (kg CO2e per month) are not worth a tester's attention
        (e.g. a trip made once in a year) and are dropped.
    """

    bike_max_km: float = 5.0
    bus_max_km: float = 15.0
    min_km: float = 0.5
    car_share_min: float = 0.8
    stop_radius_m: float = 400.0
    station_radius_m: float = 300.0
    day_start_h: float = 6.0
    day_end_h: float = 22.0
    bus_window_min: float = 20.0
    bike_speed_kmh: float = 15.0
    habit_radius_m: float = 300.0
    min_days: float = 7.0
    min_co2e_kg_per_month: float = 0.1


def _xy(lat, lon, lat0):
    """Local equirectangular metres (good to a fraction of a percent over a city)."""
    return local_xy(lat, lon, lat0)


def _gtfs_seconds(hms: pd.Series) -> np.ndarray:
    parts = hms.astype(str).str.split(":", expand=True)
    return (pd.to_numeric(parts[0], errors="coerce") * 3600 + pd.to_numeric(parts[1], errors="coerce") * 60
            + pd.to_numeric(parts[2], errors="coerce")).to_numpy(dtype="float64")


@dataclass(frozen=True)
class AdviceContext:
    """Bus stops, timetable and bike stations as flat arrays, built once per run.

    Build with :meth:`build`; the arrays are projected around ``lat0``.
    """

    lat0: float
    stop_xy: np.ndarray            # (n_stops, 2) metres
    stop_names: np.ndarray
    st_stop: np.ndarray            # stop index of each stop_time
    st_trip: np.ndarray            # GTFS trip index of each stop_time
    st_seq: np.ndarray             # stop_sequence
    st_dep: np.ndarray             # departure, seconds after the service day's midnight
    trip_route: np.ndarray         # route short name of each GTFS trip
    trip_service: np.ndarray       # service index of each GTFS trip
    service_weekdays: np.ndarray   # (n_services, 7) bool
    service_start: np.ndarray      # yyyymmdd int (0 when unknown)
    service_end: np.ndarray
    added: dict                    # yyyymmdd -> set of service indexes added that day
    removed: dict                  # yyyymmdd -> set of service indexes removed that day
    station_xy: np.ndarray         # (n_stations, 2) metres
    station_names: np.ndarray

    @classmethod
    def build(cls, gtfs: dict[str, pd.DataFrame] | None, stations: pd.DataFrame | None,
              lat0: float = 46.16) -> "AdviceContext":
        """Flatten a GTFS feed (``load_gtfs`` tables) and bike stations (``load_bike_stations``).

        Only bus routes (GTFS route_type 3, or 700-799) are kept; either input may be None.
        """
        empty = np.zeros(0)
        if gtfs is None or gtfs.get("stop_times") is None or len(gtfs["stop_times"]) == 0:
            sxy, snames = np.zeros((0, 2)), np.zeros(0, dtype=object)
            st_stop = st_trip = st_seq = st_dep = empty.astype(int)
            trip_route = trip_service = np.zeros(0, dtype=object)
            weekdays, s0, s1, added, removed = np.zeros((0, 7), bool), empty, empty, {}, {}
        else:
            stops = gtfs["stops"].reset_index(drop=True)
            sx, sy = _xy(stops["stop_lat"], stops["stop_lon"], lat0)
            sxy, snames = np.column_stack([sx, sy]), stops["stop_name"].astype(str).to_numpy(dtype=object)
            routes = gtfs["routes"]
            rt = pd.to_numeric(routes["route_type"], errors="coerce")
            bus_routes = routes[(rt == 3) | ((rt >= 700) & (rt < 800))]
            trips = gtfs["trips"][gtfs["trips"]["route_id"].isin(bus_routes["route_id"])].reset_index(drop=True)
            short = bus_routes.set_index("route_id")["route_short_name"].astype(str)
            services = pd.Index(pd.unique(trips["service_id"]))
            st = gtfs["stop_times"]
            st = st[st["trip_id"].isin(trips["trip_id"])]
            st_trip = pd.Index(trips["trip_id"]).get_indexer(st["trip_id"])
            st_stop = pd.Index(stops["stop_id"]).get_indexer(st["stop_id"])
            keep = st_stop >= 0
            dep = st["departure_time"].where(st["departure_time"].notna(), st["arrival_time"])
            st_dep = _gtfs_seconds(dep)
            st_seq = pd.to_numeric(st["stop_sequence"], errors="coerce").to_numpy(dtype="float64")
            st_stop, st_trip, st_seq, st_dep = st_stop[keep], st_trip[keep], st_seq[keep], st_dep[keep]
            trip_route = trips["route_id"].map(short).to_numpy(dtype=object)
            trip_service = services.get_indexer(trips["service_id"])
            cal = gtfs.get("calendar")
            weekdays = np.zeros((len(services), 7), dtype=bool)
            s0 = np.zeros(len(services))
            s1 = np.zeros(len(services))
            if cal is not None and len(cal):
                ci = services.get_indexer(cal["service_id"])
                ok = ci >= 0
                flags = cal[list(DAY_NAMES)].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy() > 0
                weekdays[ci[ok]] = flags[ok]
                s0[ci[ok]] = pd.to_numeric(cal["start_date"], errors="coerce").to_numpy()[ok]
                s1[ci[ok]] = pd.to_numeric(cal["end_date"], errors="coerce").to_numpy()[ok]
            added, removed = {}, {}
            cd = gtfs.get("calendar_dates")
            if cd is not None and len(cd):
                ci = services.get_indexer(cd["service_id"])
                d = pd.to_numeric(cd["date"], errors="coerce").to_numpy()
                e = pd.to_numeric(cd["exception_type"], errors="coerce").to_numpy()
                for idx, day, kind in zip(ci[ci >= 0], d[ci >= 0], e[ci >= 0]):
                    (added if kind == 1 else removed).setdefault(int(day), set()).add(int(idx))
                    if kind == 1:  # a service known only by its dates runs on that weekday
                        wd = pd.Timestamp(str(int(day))).weekday()
                        if s0[idx] == 0:
                            weekdays[idx, wd] = True
        if stations is not None and len(stations):
            bx, by = _xy(stations["lat"], stations["lon"], lat0)
            bxy, bnames = np.column_stack([bx, by]), stations["name"].astype(str).to_numpy(dtype=object)
        else:
            bxy, bnames = np.zeros((0, 2)), np.zeros(0, dtype=object)
        return cls(lat0, sxy, snames, st_stop, st_trip, st_seq, st_dep, trip_route, trip_service,
                   weekdays, s0, s1, added, removed, bxy, bnames)

    def active_services(self, day: pd.Timestamp) -> np.ndarray:
        """Bool per service: runs on local date ``day``. Inside the feed's validity the
        calendar and its exceptions decide; outside it, the weekday pattern alone."""
        ymd = int(day.strftime("%Y%m%d"))
        wd = day.weekday()
        n = len(self.service_weekdays)
        if n == 0:
            return np.zeros(0, dtype=bool)
        known = self.service_start > 0
        lo = self.service_start[known].min() if known.any() else 0
        hi = self.service_end[known].max() if known.any() else 0
        if known.any() and lo <= ymd <= hi:
            act = self.service_weekdays[:, wd] & known & (self.service_start <= ymd) & (self.service_end >= ymd)
            act[list(self.added.get(ymd, ()))] = True
            act[list(self.removed.get(ymd, ()))] = False
            return act
        return self.service_weekdays[:, wd].copy()

    def bus_option(self, o_xy, d_xy, local_start: pd.Timestamp, radius_m: float, window_s: float):
        """The bus departure that best fits a trip, or None.

        A GTFS trip fits when it stops within ``radius_m`` of the origin, leaving within
        ``window_s`` of the trip's local start time on a day its service runs, and later stops
        within ``radius_m`` of the destination. Returns ``(route, origin stop name,
        destination stop name, departure seconds)`` of the fitting departure closest in time.
        """
        if len(self.stop_xy) == 0:
            return None
        do = np.hypot(*(self.stop_xy - o_xy).T)
        dd = np.hypot(*(self.stop_xy - d_xy).T)
        near_o, near_d = do <= radius_m, dd <= radius_m
        if not near_o.any() or not near_d.any():
            return None
        runs = self.active_services(local_start.normalize())[self.trip_service]
        t = (local_start - local_start.normalize()).total_seconds()
        # departures after midnight of the previous service day are listed as 24:xx+
        dt = np.minimum(np.abs(self.st_dep - t), np.abs(self.st_dep - (t + 86400.0)))
        mo = near_o[self.st_stop] & (dt <= window_s) & runs[self.st_trip]
        if not mo.any():
            return None
        md = near_d[self.st_stop] & runs[self.st_trip]
        if not md.any():
            return None
        o = pd.DataFrame({"trip": self.st_trip[mo], "seq_o": self.st_seq[mo], "stop_o": self.st_stop[mo],
                          "dt": dt[mo], "dist_o": do[self.st_stop[mo]], "dep": self.st_dep[mo]})
        d = pd.DataFrame({"trip": self.st_trip[md], "seq_d": self.st_seq[md], "stop_d": self.st_stop[md],
                          "dist_d": dd[self.st_stop[md]]})
        j = o.merge(d, on="trip")
        j = j[j["seq_d"] > j["seq_o"]]
        if j.empty:
            return None
        best = j.sort_values(["dt", "dist_o", "dist_d"]).iloc[0]
        return (str(self.trip_route[int(best.trip)]), str(self.stop_names[int(best.stop_o)]),
                str(self.stop_names[int(best.stop_d)]), float(best.dep))

    def stations_near(self, xy, radius_m: float):
        """(index, distance m) of the nearest bike station within ``radius_m``, or None."""
        if len(self.station_xy) == 0:
            return None
        dist = np.hypot(*(self.station_xy - xy).T)
        i = int(np.argmin(dist))
        return (i, float(dist[i])) if dist[i] <= radius_m else None


ADVICE_COLUMNS = ["rank", "user_id", "kind", "n_trips", "distance_km", "usual_time",
                  "co2e_kg_saved_per_month", "eur_saved_per_month", "line", "from_place", "to_place",
                  "trip_ids", "message"]


def car_trips(trips: pd.DataFrame, footprint: pd.DataFrame, params: AdviceParams = AdviceParams()
              ) -> pd.DataFrame:
    """Trips driven by car (CAR >= ``car_share_min`` of the distance, no other motorised mode),
    with their car CO2e (kg) and cost (EUR, NaN when unknown) from the footprint."""
    f = footprint
    motor = f["mode"].isin(["BUS", "FERRY", "CARSHARE", "TRAIN", "TRAM", "SUBWAY", "AIR", "UNKNOWN"])
    car = f["mode"] == "CAR"
    g = f.assign(car_km=np.where(car, f["distance_m"] / 1000.0, 0.0), motor=motor,
                 car_co2=np.where(car, f["co2e_kg"], 0.0), car_cost=np.where(car, f["cost_eur"], 0.0),
                 cost_unknown=car & f["cost_eur"].isna(),
                 all_km=f["distance_m"] / 1000.0).groupby(["user_id", "trip_id"])
    agg = pd.DataFrame({"car_km": g["car_km"].sum(), "all_km": g["all_km"].sum(), "motor": g["motor"].any(),
                        "car_co2": g["car_co2"].sum(), "car_cost": g["car_cost"].sum()})
    agg.loc[g["cost_unknown"].any().to_numpy(), "car_cost"] = np.nan  # one unknown car cost: unknown
    agg = agg[(agg["car_km"] >= params.car_share_min * agg["all_km"]) & ~agg["motor"]
              & (agg["car_km"] >= params.min_km)].reset_index()
    cols = ["user_id", "trip_id", "start_ts", "start_lat", "start_lon", "end_lat", "end_lon"]
    return agg.merge(trips[cols], on=["user_id", "trip_id"], how="inner")


def advise(trips: pd.DataFrame, footprint: pd.DataFrame, sections: pd.DataFrame,
           testers: pd.DataFrame | None, context: AdviceContext, factors: EmissionFactors,
           tariffs: Tariffs, params: AdviceParams = AdviceParams(),
           factor_params: FactorParams = FactorParams()) -> pd.DataFrame:
    """Ranked suggestions per tester (best first), at most one per habitual origin-destination.

    Parameters
    ----------
    trips, sections : DataFrame
        Schema tables of the testers to advise.
    footprint : DataFrame
        Their footprint (:func:`carbon.footprint.compute_footprint`): the car's CO2e and cost.
    context : AdviceContext
        Bus timetable and bike stations.

    Returns
    -------
    DataFrame with :data:`ADVICE_COLUMNS`; savings in kg CO2e and EUR per month (EUR NaN when
    the car's cost is unknown).
    """
    cand = car_trips(trips, footprint, params)
    if cand.empty:
        return pd.DataFrame(columns=ADVICE_COLUMNS)
    cand = cand.sort_values(["user_id", "start_ts"], kind="stable").reset_index(drop=True)
    prof = testers.drop_duplicates("user_id").set_index("user_id") if testers is not None and len(testers) \
        else pd.DataFrame(index=pd.Index([], name="user_id"))
    tz = prof["tz"] if "tz" in prof else pd.Series(dtype=object)
    cand["local"] = local_naive(cand["start_ts"], cand["user_id"].map(tz))
    hour = cand["local"].dt.hour + cand["local"].dt.minute / 60.0
    daytime = ((hour >= params.day_start_h) & (hour < params.day_end_h)).to_numpy()
    km = cand["car_km"].to_numpy()
    ox, oy = _xy(cand["start_lat"], cand["start_lon"], context.lat0)
    dx, dy = _xy(cand["end_lat"], cand["end_lon"], context.lat0)
    # who already cycles (owns a bike)
    cyclists = set(sections.loc[sections["mode"].isin(["BICYCLING", "E_BIKE"]), "user_id"].astype(str))
    passes = prof["yelo_pass"] if "yelo_pass" in prof else pd.Series(dtype=object)
    has_pass = cand["user_id"].map(passes).isin(["monthly", "annual"]).to_numpy()
    ft = factor_table(factors, factor_params)
    bike_f, bs_f, bus_f = (ft.at["bicycling", "per_km"], ft.at["bikeshare", "per_km"], ft.at["bus_mix", "per_km"])

    options = []
    for i in range(len(cand)):  # one loop per car trip (tens to hundreds), arrays inside
        u = str(cand["user_id"].iat[i])
        base = dict(i=i, user_id=u)
        if km[i] <= params.bike_max_km and daytime[i]:
            if u in cyclists:
                options.append(dict(base, kind="bike", alt_co2=km[i] * bike_f, alt_cost=0.0, line="",
                                    from_place="", to_place=""))
            else:
                so = context.stations_near(np.array([ox[i], oy[i]]), params.station_radius_m)
                sd = context.stations_near(np.array([dx[i], dy[i]]), params.station_radius_m)
                if so is not None and sd is not None and so[0] != sd[0]:
                    fare = float(bikeshare_fare([km[i] / params.bike_speed_kmh * 3600.0], tariffs)[0])
                    options.append(dict(base, kind="bikeshare", alt_co2=km[i] * bs_f, alt_cost=fare, line="",
                                        from_place=str(context.station_names[so[0]]),
                                        to_place=str(context.station_names[sd[0]])))
        if km[i] <= params.bus_max_km:
            bus = context.bus_option(np.array([ox[i], oy[i]]), np.array([dx[i], dy[i]]), cand["local"].iat[i],
                                     params.stop_radius_m, params.bus_window_min * 60.0)
            if bus is not None:
                options.append(dict(base, kind="bus", alt_co2=km[i] * bus_f,
                                    alt_cost=0.0 if has_pass[i] else tariffs["bus_ticket_1h"],
                                    line=bus[0], from_place=bus[1], to_place=bus[2]))
    if not options:
        return pd.DataFrame(columns=ADVICE_COLUMNS)
    opt = pd.DataFrame(options)
    c = cand.iloc[opt["i"].to_numpy()].reset_index(drop=True)
    opt["trip_id"] = c["trip_id"].to_numpy()
    ii = opt["i"].to_numpy()
    opt["km"] = km[ii]
    opt["co2_saved"] = c["car_co2"].to_numpy() - opt["alt_co2"]
    opt["eur_saved"] = c["car_cost"].to_numpy() - opt["alt_cost"]
    opt["minute"] = (c["local"].dt.hour * 60 + c["local"].dt.minute).to_numpy()
    habit = _habits(cand["user_id"].astype(str).to_numpy(), ox, oy, dx, dy, params.habit_radius_m)
    opt["od"] = habit[ii]
    opt = opt[opt["co2_saved"] > 0]
    if opt.empty:
        return pd.DataFrame(columns=ADVICE_COLUMNS)
    g = opt.groupby(["user_id", "od", "kind"], sort=False)
    adv = pd.DataFrame({
        "n_trips": g.size(), "distance_km": g["km"].mean(), "co2": g["co2_saved"].sum(),
        "eur": g["eur_saved"].sum(), "eur_known": g["eur_saved"].count(),
        "minute": g["minute"].median(), "line": g["line"].agg(lambda s: s.mode().iat[0]),
        "from_place": g["from_place"].agg(lambda s: s.mode().iat[0]),
        "to_place": g["to_place"].agg(lambda s: s.mode().iat[0]),
        "trip_ids": g["trip_id"].agg(lambda s: ",".join(map(str, s))),
    }).reset_index()
    adv.loc[adv["eur_known"] < adv["n_trips"], "eur"] = np.nan
    span = _span_days(sections, params.min_days)
    scale = DAYS_PER_MONTH / adv["user_id"].map(span).to_numpy(dtype="float64")
    adv["co2e_kg_saved_per_month"] = adv["co2"] * scale
    adv["eur_saved_per_month"] = adv["eur"] * scale
    adv = adv[adv["co2e_kg_saved_per_month"] >= params.min_co2e_kg_per_month]
    if adv.empty:
        return pd.DataFrame(columns=ADVICE_COLUMNS)
    # one suggestion per habit: the one that saves the most CO2e (own bike first on ties)
    pref = adv["kind"].map({"bike": 0, "bikeshare": 1, "bus": 2})
    adv = adv.assign(_pref=pref).sort_values(["user_id", "od", "co2e_kg_saved_per_month", "_pref"],
                                             ascending=[True, True, False, True])
    adv = adv.drop_duplicates(["user_id", "od"]).sort_values(
        ["user_id", "co2e_kg_saved_per_month"], ascending=[True, False])
    adv["rank"] = adv.groupby("user_id").cumcount() + 1
    adv["usual_time"] = adv["minute"].map(lambda m: f"{int(m) // 60:02d}:{int(m) % 60:02d}")
    adv["message"] = [_message(r) for r in adv.itertuples()]
    return adv[ADVICE_COLUMNS].reset_index(drop=True)


def _habits(user, ox, oy, dx, dy, radius_m: float) -> np.ndarray:
    """Habit label of each car trip: leader clustering per user in time order, a trip joins the
    first habit whose first trip starts and ends within ``radius_m`` of its own ends."""
    lab = np.full(len(user), -1, dtype=np.int64)
    nxt = 0
    for u in pd.unique(user):  # per user, then per trip: tens to hundreds of iterations
        seeds: list[int] = []
        for i in np.flatnonzero(user == u):
            if seeds:
                s = np.asarray(seeds)
                ok = (np.hypot(ox[s] - ox[i], oy[s] - oy[i]) <= radius_m) & \
                     (np.hypot(dx[s] - dx[i], dy[s] - dy[i]) <= radius_m)
                if ok.any():
                    lab[i] = lab[s[int(np.argmax(ok))]]
                    continue
            seeds.append(i)
            lab[i] = nxt
            nxt += 1
    return lab


def _span_days(sections: pd.DataFrame, min_days: float) -> pd.Series:
    t0 = pd.Series(to_unix(sections["start_ts"]), index=sections.index)
    t1 = pd.Series(to_unix(sections["end_ts"]), index=sections.index)
    d = pd.DataFrame({"u": sections["user_id"].astype(str), "t0": t0, "t1": t1}).groupby("u")
    return np.maximum((d["t1"].max() - d["t0"].min()) / 86400.0, min_days)


def _message(r) -> str:
    trips = f"{r.n_trips} car trip{'s' if r.n_trips > 1 else ''} of about {r.distance_km:.1f} km around {r.usual_time}"
    if r.kind == "bike":
        how = "could be ridden by bike"
    elif r.kind == "bikeshare":
        how = f"could be ridden on a Yélo bike from station {r.from_place} to {r.to_place}"
    else:
        how = (f"{'is' if r.n_trips == 1 else 'are'} served by Yélo bus line {r.line} "
               f"({r.from_place} -> {r.to_place}), which runs at that time")
    if pd.isna(r.eur_saved_per_month):
        eur = ""
    elif r.eur_saved_per_month >= 0:
        eur = f" and about EUR {r.eur_saved_per_month:.2f}"
    else:  # cheaper by car (e.g. tickets without a pass): say so instead of a negative saving
        eur = f", for about EUR {-r.eur_saved_per_month:.2f} more"
    return (f"{trips} {how}: that would save about {r.co2e_kg_saved_per_month:.1f} kg CO2e{eur} "
            f"per month.")
