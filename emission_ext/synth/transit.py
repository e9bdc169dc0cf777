"""The Yélo network as the synthetic world needs it: who can ride which real trip, and where
the vehicle is at every moment of a ride.

Why: bus and sea-shuttle legs must be real scheduled GTFS trips (board at a real stop at the
timetabled time plus a realistic delay, follow the real shape, dwell at real stops), so that
the transit matcher, the mode classifier and the fusion of Yélo validations can be tested
against something that behaves like the real network. This module is built once from the
GTFS tables (pure: tables in, arrays out) and answers two questions: "which ride gets me from
here to there after this time" (direct, or with one transfer) and "give me the vehicle's
timed path for this ride".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from . import geo

BUS, FERRY = 3, 4


def _hms_to_s(s: pd.Series) -> np.ndarray:
    parts = s.fillna("").str.split(":", expand=True)
    h = pd.to_numeric(parts[0], errors="coerce")
    m = pd.to_numeric(parts[1], errors="coerce")
    sec = pd.to_numeric(parts[2], errors="coerce")
    return (h * 3600 + m * 60 + sec).to_numpy(dtype="float64")


def service_day_origin(day: date, tz: str) -> float:
    """Unix seconds of GTFS time 00:00:00 on ``day``: local noon minus 12 h (GTFS convention,
    correct on daylight-saving change days)."""
    noon = datetime.combine(day, time(12, 0), tzinfo=ZoneInfo(tz))
    return noon.timestamp() - 12 * 3600.0


@dataclass(frozen=True)
class Ride:
    """One ride on one real GTFS trip, from ``board_seq`` to ``alight_seq`` (stop_sequence)."""

    trip_id: str
    route_id: str
    route_type: int
    board_stop: str
    alight_stop: str
    board_idx: int      # row positions in TransitNet.stop_times
    alight_idx: int
    sched_dep_s: float  # scheduled departure at the boarding stop, GTFS seconds of the day
    sched_arr_s: float  # scheduled arrival at the alighting stop


@dataclass
class TransitNet:
    """Arrays built from a GTFS feed (see :meth:`from_gtfs`). Coordinates in local metres."""

    stops: pd.DataFrame        # stop_id, name, lat, lon, x, y, parent (quays used by trips)
    trips: pd.DataFrame        # trip_id, route_id, route_type, service_id, shape_id
    stop_times: pd.DataFrame   # trip_id, seq, stop_id, arr_s, dep_s, x, y, pickup, dropoff, route_type
    calendar: pd.DataFrame
    calendar_dates: pd.DataFrame
    shapes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    window: tuple[date, date]
    _day_cache: dict = field(default_factory=dict, repr=False)
    _proj_cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_gtfs(cls, gtfs: dict[str, pd.DataFrame]) -> "TransitNet":
        """Build the network from :func:`emission_ext.reference.load_gtfs` tables."""
        routes = gtfs["routes"][["route_id", "route_type"]].copy()
        trips = gtfs["trips"][["trip_id", "route_id", "service_id", "shape_id"]].merge(routes, on="route_id")
        trips["route_type"] = trips["route_type"].astype("int64")
        st = gtfs["stop_times"]
        st = pd.DataFrame({
            "trip_id": st["trip_id"].astype(str),
            "seq": st["stop_sequence"].astype("int64"),
            "stop_id": st["stop_id"].astype(str),
            "arr_s": _hms_to_s(st["arrival_time"]),
            "dep_s": _hms_to_s(st["departure_time"]),
            "pickup": pd.to_numeric(st.get("pickup_type"), errors="coerce").fillna(0).astype(int),
            "dropoff": pd.to_numeric(st.get("drop_off_type"), errors="coerce").fillna(0).astype(int),
        })
        st["arr_s"] = np.where(np.isnan(st["arr_s"]), st["dep_s"], st["arr_s"])
        st["dep_s"] = np.where(np.isnan(st["dep_s"]), st["arr_s"], st["dep_s"])
        st = st.dropna(subset=["arr_s"]).sort_values(["trip_id", "seq"]).reset_index(drop=True)
        stops = gtfs["stops"]
        stops = stops[stops["stop_id"].isin(st["stop_id"].unique())]
        x, y = geo.to_xy(stops["stop_lon"], stops["stop_lat"])
        stops = pd.DataFrame({
            "stop_id": stops["stop_id"].astype(str).to_numpy(),
            "name": stops["stop_name"].astype(str).to_numpy(),
            "lat": stops["stop_lat"].to_numpy(float), "lon": stops["stop_lon"].to_numpy(float),
            "x": x, "y": y,
            "parent": stops["parent_station"].fillna(stops["stop_id"]).astype(str).to_numpy(),
        }).reset_index(drop=True)
        sx = stops.set_index("stop_id")
        st["x"] = sx["x"].reindex(st["stop_id"]).to_numpy()
        st["y"] = sx["y"].reindex(st["stop_id"]).to_numpy()
        st = st.merge(trips[["trip_id", "route_type"]], on="trip_id", how="inner")
        st = st.sort_values(["trip_id", "seq"]).reset_index(drop=True)
        shapes = {}
        sh = gtfs["shapes"].sort_values(["shape_id", "shape_pt_sequence"])
        for sid, grp in sh.groupby("shape_id", sort=False):
            gx, gy = geo.to_xy(grp["shape_pt_lon"].to_numpy(), grp["shape_pt_lat"].to_numpy())
            shapes[str(sid)] = (gx, gy, geo.cumdist(gx, gy))
        cal = gtfs["calendar"].copy()
        cd = gtfs.get("calendar_dates", pd.DataFrame(columns=["service_id", "date", "exception_type"]))
        starts = pd.to_datetime(cal["start_date"], format="%Y%m%d")
        ends = pd.to_datetime(cal["end_date"], format="%Y%m%d")
        window = (starts.min().date(), ends.max().date())
        net = cls(stops, trips, st, cal, cd.copy(), shapes, window)
        net._index()
        return net

    def _index(self) -> None:
        """Integer codes and per-trip row ranges used by the numpy routing."""
        st = self.stop_times
        self._stop_code = {s: i for i, s in enumerate(self.stops["stop_id"])}
        parents = pd.factorize(self.stops["parent"])[0]
        self._st_stop = st["stop_id"].map(self._stop_code).to_numpy()
        self._st_parent = parents[self._st_stop]
        tcodes, tuniq = pd.factorize(st["trip_id"])
        self._st_trip = tcodes
        starts = np.flatnonzero(np.r_[True, tcodes[1:] != tcodes[:-1]])
        ends = np.r_[starts[1:], len(tcodes)]
        self._trip_range = {str(tuniq[tcodes[a]]): (a, b) for a, b in zip(starts, ends)}
        self._st_end = np.repeat(ends, ends - starts)   # one past the last row of the row's trip
        self._st_start = np.repeat(starts, ends - starts)
        self._arr = st["arr_s"].to_numpy()
        self._dep = st["dep_s"].to_numpy()
        self._pick = st["pickup"].to_numpy() != 1
        self._drop = st["dropoff"].to_numpy() != 1
        self._rtype = st["route_type"].to_numpy()
        ti = self.trips.set_index("trip_id")
        self._trip_route = ti["route_id"].astype(str).to_dict()
        self._trip_rtype = ti["route_type"].astype(int).to_dict()
        self._trip_shape = ti["shape_id"].astype(str).to_dict()
        self._trip_service = st["trip_id"].map(ti["service_id"]).to_numpy()

    # ------------------------------------------------------------------ service days
    def regular_days(self) -> list[date]:
        """Days of the feed with a full timetable (at least 80 % of the stop times of the busiest
        day of the same weekday).

        The shipped Yélo feed's bus timetables end on 2026-02-22 although its calendar runs to
        2026-06-30 (only the sea shuttles continue), so days outside these are mapped."""
        if "_regular" not in self._day_cache:
            lo, hi = self.window
            days = [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]
            per_service = pd.Series(self._trip_service).value_counts()
            counts = np.array([per_service.reindex(list(self.services_on(d))).fillna(0).to_numpy().sum()
                               for d in days])
            wd = np.array([d.weekday() for d in days])
            best = np.array([counts[wd == w].max() for w in wd])
            keep = (counts >= 0.8 * best) & (counts > 0)
            self._day_cache["_regular"] = [d for d, k in zip(days, keep) if k]
            self._day_cache["_regular_set"] = set(self._day_cache["_regular"])
        return self._day_cache["_regular"]

    def service_date(self, day: date) -> date:
        """``day`` itself when the feed has a full timetable that day, else the nearest day of
        the same weekday that has one (so any synthetic date gets a real timetable)."""
        regular = self.regular_days()
        if day in self._day_cache["_regular_set"]:
            return day
        same = [d for d in regular if d.weekday() == day.weekday()]
        if not same:
            return day
        return min(same, key=lambda d: (abs((d - day).days), d))

    def services_on(self, day: date) -> set[str]:
        """Service ids running on ``day`` (calendar + calendar_dates exceptions)."""
        if "_cal" not in self._day_cache:
            c = self.calendar
            wd = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
            week = np.column_stack([c[d].astype(int).to_numpy() == 1 for d in wd])
            start = c["start_date"].astype(int).to_numpy()
            end = c["end_date"].astype(int).to_numpy()
            exc: dict[int, tuple[set, set]] = {}
            cd = self.calendar_dates
            for sid, d, e in zip(cd.get("service_id", []), cd.get("date", []), cd.get("exception_type", [])):
                add, rem = exc.setdefault(int(d), (set(), set()))
                (add if int(e) == 1 else rem).add(sid)
            self._day_cache["_cal"] = (c["service_id"].to_numpy(), week, start, end, exc)
        sids, week, start, end, exc = self._day_cache["_cal"]
        ymd = int(day.strftime("%Y%m%d"))
        on = week[:, day.weekday()] & (start <= ymd) & (end >= ymd)
        s = set(sids[on])
        add, rem = exc.get(ymd, (set(), set()))
        return (s | add) - rem

    def day_rows(self, day: date) -> np.ndarray:
        """Boolean mask over ``stop_times`` rows of the trips running on ``day`` (mapped)."""
        day = self.service_date(day)
        key = ("mask", day)
        if key not in self._day_cache:
            self._day_cache[key] = np.isin(self._trip_service, list(self.services_on(day)))
        return self._day_cache[key]

    def day_stop_times(self, day: date) -> pd.DataFrame:
        """Stop times of the trips running on ``day`` (row index = position in ``stop_times``)."""
        day = self.service_date(day)
        if day not in self._day_cache:
            trips = self.trips.loc[self.trips["service_id"].isin(self.services_on(day)), "trip_id"]
            self._day_cache[day] = self.stop_times[self.stop_times["trip_id"].isin(set(trips))]
        return self._day_cache[day]

    # ------------------------------------------------------------------ routing
    def stops_near(self, x: float, y: float, radius_m: float) -> pd.DataFrame:
        """Stops within ``radius_m`` (crow-fly) of (x, y), with a ``dist`` column, nearest first."""
        d = np.hypot(self.stops["x"].to_numpy() - x, self.stops["y"].to_numpy() - y)
        m = d <= radius_m
        out = self.stops.loc[m, ["stop_id", "parent", "x", "y"]].assign(dist=d[m])
        return out.sort_values("dist")

    def find_rides(self, day: date, t_ready_s: float, ox: float, oy: float, dx: float, dy: float,
                   route_types=(BUS,), walk_speed: float = 1.3, radius_m: float = 700.0,
                   max_wait_s: float = 1800.0, allow_transfer: bool = True,
                   prefer_transfer: bool = False) -> list[Ride] | None:
        """Best real itinerary (earliest arrival at the destination, walking included).

        Parameters
        ----------
        day : date
            Travel day (mapped to a day with a full timetable by :meth:`service_date`).
        t_ready_s : float
            When the traveller leaves the origin, GTFS seconds of the day.
        ox, oy, dx, dy : float
            Origin and destination, local metres.
        route_types : tuple of int
            Allowed GTFS route types (3 bus, 4 ferry).
        radius_m : float
            Longest crow-fly walk to/from a stop (walks are 1.25 x crow-fly at ``walk_speed`` m/s).
        prefer_transfer : bool
            Return a one-transfer itinerary when one exists, even if a direct one exists.

        Returns
        -------
        list of Ride (one or two rides), or None when no ride fits.
        """
        sx, sy = self.stops["x"].to_numpy(), self.stops["y"].to_numpy()
        walk_o = np.hypot(sx - ox, sy - oy) * 1.25 / walk_speed
        walk_d = np.hypot(sx - dx, sy - dy) * 1.25 / walk_speed
        lim = radius_m * 1.25 / walk_speed
        ok_o, ok_d = walk_o <= lim, walk_d <= lim
        if not ok_o.any() or not ok_d.any():
            return None
        day_ok = self.day_rows(day) & np.isin(self._rtype, route_types)
        earliest = t_ready_s + walk_o[self._st_stop] + 60.0
        b = np.flatnonzero(day_ok & ok_o[self._st_stop] & self._pick & (self._dep >= earliest)
                           & (self._dep <= earliest + max_wait_s))
        if b.size == 0:
            return None
        a_mask = day_ok & ok_d[self._st_stop] & self._drop
        a_rows = np.flatnonzero(a_mask)
        direct = None
        best = np.inf
        for bi in b:  # per candidate boarding (a few dozen)
            lo = np.searchsorted(a_rows, bi + 1)
            hi = np.searchsorted(a_rows, self._st_end[bi])
            if hi > lo:
                cand = a_rows[lo:hi]
                eta = self._arr[cand] + walk_d[self._st_stop[cand]]
                k = int(eta.argmin())
                if eta[k] < best:
                    best, direct = float(eta[k]), (int(bi), int(cand[k]))
        if direct is not None and not (prefer_transfer and allow_transfer):
            return [self._ride(*direct)]
        if not allow_transfer:
            return None
        tr = self._transfer(b, a_rows, day_ok, walk_d)
        if tr is None:
            return [self._ride(*direct)] if direct else None
        if direct is None or prefer_transfer or tr[1] < best - 600.0:
            return tr[0]
        return [self._ride(*direct)]

    def _transfer(self, b: np.ndarray, a_rows: np.ndarray, day_ok: np.ndarray, walk_d: np.ndarray):
        # first legs: the earliest boarding per trip (at most 12 trips), every later stop
        _, first = np.unique(self._st_trip[b], return_index=True)
        b = np.sort(b[first])[:12]
        r1 = np.concatenate([np.arange(bi + 1, self._st_end[bi]) for bi in b]) if b.size else np.empty(0, int)
        b1 = np.concatenate([np.full(self._st_end[bi] - bi - 1, bi) for bi in b]) if b.size else np.empty(0, int)
        keep = self._drop[r1]
        r1, b1 = r1[keep], b1[keep]
        if r1.size == 0 or a_rows.size == 0:
            return None
        # second legs: for every alighting row near the destination, the earlier rows of its trip
        a_trip_start = self._st_start[a_rows]
        n = a_rows - a_trip_start
        a2 = np.repeat(a_rows, n)
        b2 = np.concatenate([np.arange(s, e) for s, e in zip(a_trip_start, a_rows)]) if n.sum() else np.empty(0, int)
        keep = self._pick[b2] & day_ok[b2]
        a2, b2 = a2[keep], b2[keep]
        if a2.size == 0:
            return None
        f = pd.DataFrame({"b1": b1, "r1": r1, "p": self._st_parent[r1], "arr1": self._arr[r1],
                          "t1": self._st_trip[r1]})
        g = pd.DataFrame({"b2": b2, "a2": a2, "p": self._st_parent[b2], "dep2": self._dep[b2],
                          "t2": self._st_trip[b2]})
        j = f.merge(g, on="p")
        j = j[(j["t1"] != j["t2"]) & (j["dep2"] >= j["arr1"] + 120.0) & (j["dep2"] <= j["arr1"] + 1500.0)]
        if j.empty:
            return None
        st_trip = self.stop_times["trip_id"].to_numpy()
        route1 = np.array([self._trip_route[t] for t in st_trip[j["b1"].to_numpy()]])
        route2 = np.array([self._trip_route[t] for t in st_trip[j["b2"].to_numpy()]])
        j = j[route1 != route2]
        if j.empty:
            return None
        a2v = j["a2"].to_numpy()
        eta = self._arr[a2v] + walk_d[self._st_stop[a2v]]
        k = int(eta.argmin())
        r = j.iloc[k]
        return [self._ride(int(r["b1"]), int(r["r1"])), self._ride(int(r["b2"]), int(r["a2"]))], float(eta[k])

    def stop_xy(self, stop_id: str) -> tuple[float, float]:
        """Local metres of a stop."""
        i = self._stop_code[stop_id]
        return float(self.stops.at[i, "x"]), float(self.stops.at[i, "y"])

    def _ride(self, bidx: int, aidx: int) -> Ride:
        st = self.stop_times
        trip_id = str(st.at[bidx, "trip_id"])
        return Ride(trip_id, self._trip_route[trip_id], self._trip_rtype[trip_id],
                    str(st.at[bidx, "stop_id"]), str(st.at[aidx, "stop_id"]), bidx, aidx,
                    float(st.at[bidx, "dep_s"]), float(st.at[aidx, "arr_s"]))

    # ------------------------------------------------------------------ vehicle path
    def _stop_positions(self, trip_id: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Distance of each stop of ``trip_id`` along its shape (monotone), or None when the
        shape is missing or does not pass near the stops (then rides go stop to stop)."""
        lo, hi = self._trip_range[trip_id]
        rows = self.stop_times.iloc[lo:hi]
        shape_id = self._trip_shape[trip_id]
        key = (shape_id, tuple(rows["stop_id"]))
        if key in self._proj_cache:
            return rows.index.to_numpy(), self._proj_cache[key]
        shp = self.shapes.get(shape_id)
        res = None
        if shp is not None and len(shp[0]) >= 2:
            sx, sy, cd = shp
            ax, ay, bx, by = sx[:-1], sy[:-1], sx[1:], sy[1:]
            vx, vy = bx - ax, by - ay
            l2 = np.maximum(vx * vx + vy * vy, 1e-9)
            px = rows["x"].to_numpy()[:, None]
            py = rows["y"].to_numpy()[:, None]
            u = np.clip(((px - ax) * vx + (py - ay) * vy) / l2, 0.0, 1.0)
            d = np.hypot(ax + u * vx - px, ay + u * vy - py)          # stops x segments
            along_d = cd[:-1] + u * np.sqrt(l2)
            out = np.empty(len(rows))
            prev_seg, ok = 0, True
            for k in range(len(rows)):  # per stop (a few dozen), not per point
                dk = d[k, prev_seg:]
                m = dk.min()
                if m > 150.0:
                    ok = False
                    break
                seg = prev_seg + int(np.argmax(dk <= m + 15.0))
                out[k] = along_d[k, seg]
                prev_seg = seg
            if ok and np.all(np.diff(out) >= 0):
                res = out
        self._proj_cache[key] = res
        return rows.index.to_numpy(), res

    def ride_path(self, rng: np.random.Generator, ride: Ride, origin_unix: float,
                  delay0_s: float, delay_sd_s: float = 8.0, dwell_s: tuple[float, float] = (8.0, 25.0),
                  ) -> dict:
        """The vehicle's timed path from boarding to alighting.

        Parameters
        ----------
        origin_unix : float
            Unix time of GTFS 00:00:00 of the service day (:func:`service_day_origin`).
        delay0_s : float
            Delay at the boarding stop, seconds (positive = late); it then drifts by a random
            walk of ``delay_sd_s`` per stop.

        Returns
        -------
        dict with ``t, x, y`` knots (unix s, metres), ``stop_ids``, ``stop_arr``, ``stop_dep``
        (actual unix times at each stop of the ride) and ``sched_arr``/``sched_dep`` (timetable).
        """
        idx, pos = self._stop_positions(ride.trip_id)
        sel = (idx >= ride.board_idx) & (idx <= ride.alight_idx)
        rows = self.stop_times.loc[idx[sel]]
        n = len(rows)
        sched_arr = origin_unix + rows["arr_s"].to_numpy()
        sched_dep = origin_unix + rows["dep_s"].to_numpy()
        delay = delay0_s + np.concatenate([[0.0], np.cumsum(rng.normal(0.0, delay_sd_s, n - 1))])
        delay = np.clip(delay, -60.0, 360.0)
        sx_, sy_ = rows["x"].to_numpy(), rows["y"].to_numpy()
        if pos is not None:
            shp = self.shapes[self._trip_shape[ride.trip_id]]
            spos = pos[sel]
        gap = np.hypot(np.diff(sx_), np.diff(sy_))
        if pos is not None:
            gap = np.maximum(np.diff(spos), 1.0)
        min_run = gap / (15.0 if ride.route_type == BUS else 9.0)
        dwell = np.where(rng.random(n) < 0.75, rng.uniform(dwell_s[0], dwell_s[1], n), 0.0)
        arr = np.empty(n)
        dep = np.empty(n)
        for k in range(n):  # per stop of the ride
            a = sched_arr[k] + delay[k]
            if k:
                a = max(a, dep[k - 1] + min_run[k - 1])
            arr[k] = a
            dep[k] = max(a + dwell[k], sched_dep[k] + delay[k]) if k < n - 1 else a
        arr[0] = dep[0] - dwell[0]
        ts, xs, ys = [], [], []
        for k in range(n - 1):  # per inter-stop piece
            if pos is not None:
                sx, sy, cd = shp
                inner = (cd > spos[k]) & (cd < spos[k + 1])
                s = np.concatenate([[spos[k]], cd[inner], [spos[k + 1]]])
                px, py = geo.along(sx, sy, cd, s)
            else:
                s = np.array([0.0, 1.0])
                px, py = sx_[k:k + 2], sy_[k:k + 2]
            frac = (s - s[0]) / max(s[-1] - s[0], 1e-9)
            tt = dep[k] + frac * (arr[k + 1] - dep[k])
            if k == 0:
                ts.append([arr[0]]); xs.append(px[:1]); ys.append(py[:1])
            ts.append(tt); xs.append(px); ys.append(py)
            if k + 1 < n - 1 and dep[k + 1] > arr[k + 1]:
                ts.append([dep[k + 1]]); xs.append(px[-1:]); ys.append(py[-1:])
        t = np.concatenate(ts)
        return dict(t=t, x=np.concatenate(xs), y=np.concatenate(ys),
                    stop_ids=rows["stop_id"].to_numpy(), stop_arr=arr, stop_dep=dep,
                    sched_arr=sched_arr, sched_dep=sched_dep,
                    stop_x=sx_, stop_y=sy_)
