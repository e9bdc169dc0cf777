"""GTFS transit index: where the bus and ferry lines run, where they stop, and when.

Why: speed alone cannot tell a bus from a car in town traffic. A section that follows a bus
line's shape, pauses at that line's stops, and does so when the timetable says a bus passes
is very likely that bus; a section over water along a ferry route is a ferry. This module
turns a GTFS feed (the Yélo feed by default, any feed works) into an index answering those
questions for whole arrays of points at once.

How: the feed is projected to a local metric plane (equirectangular about the network's
centre: below 0.1 % error over an agglomeration). Line geometry (``shapes.txt``, or
straight stop-to-stop legs for trips without a shape, as Yélo's ferries) is densified and
rasterised on a grid of ``cell_m`` cells; a Euclidean distance transform then gives the
distance from every cell to the nearest bus (or ferry) line, and a compact cell -> routes
table lists the routes passing within ``near_m`` of each cell. A point query is then one
integer division and one array look-up (no tree walk, no geometry object per point).
Stops (few) are searched in a strip of ``stop_near_m`` either side of the query's x
(stops sorted by x once; a few candidates per point), railway stations by brute force; no
scipy import is needed once the index is built. The timetable match is a pair of table joins on
(station, trip) with the service calendar expanded to the queried dates.

Everything here is pure: :meth:`TransitIndex.from_gtfs` takes the DataFrames from
:func:`emission_ext.reference.load_gtfs`; nothing reads files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emission_ext.geodesy import local_xy

#: GTFS route_type values per physical mode (basic and extended types).
BUS_TYPES = (3, 11, 700, 701, 702, 704, 705, 711, 712, 715, 800)
FERRY_TYPES = (4, 1000, 1200)
RAIL_TYPES = (2, 100, 101, 102, 103, 105, 106, 107, 109)
FAR_M = 65_000.0  # distance reported for points outside the indexed area


@dataclass(frozen=True)
class TransitParams:
    """Parameters of the transit index and of its matching.

    Attributes
    ----------
    cell_m : float
        Raster cell size, metres (distance error is at most ``cell_m / sqrt(2)``).
    near_m : float
        A point within this distance of a line follows it, metres.
    margin_m : float
        Area indexed around the network, metres; farther points are "far".
    stop_near_m : float
        A position within this distance of a stop is at that stop, metres.
    station_pattern : str
        Regular expression on stop names identifying railway stations when the feed has no
        rail route (Yélo serves the stations "Gare ..." but carries no trains).
    board_tol_s, alight_tol_s : float
        Timetable tolerance at boarding and alighting, seconds (delays, clock skew, where the
        segmentation puts the section boundary).
    tz : str
        Time zone of the feed's timetable (GTFS agency_timezone).
    """

    cell_m: float = 15.0
    near_m: float = 30.0
    margin_m: float = 1000.0
    stop_near_m: float = 60.0
    station_pattern: str = r"^Gare\b(?! routi)"
    board_tol_s: float = 600.0
    alight_tol_s: float = 900.0
    tz: str = "Europe/Paris"


def _gtfs_seconds(hms: pd.Series) -> np.ndarray:
    """GTFS ``HH:MM:SS`` times (hours may exceed 24) to seconds after the service day's start."""
    return pd.to_timedelta(hms, errors="coerce").dt.total_seconds().to_numpy(float)


def _densify(x: np.ndarray, y: np.ndarray, line: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Insert points every ``step`` metres along polylines given as vertex arrays.

    ``line`` gives, per vertex, the polyline it belongs to (vertices of a line contiguous and
    ordered). Returns densified (x, y, line). Vectorised over all segments.
    """
    if len(x) == 0:
        return x, y, line
    same = line[1:] == line[:-1]
    x0, y0, x1, y1 = x[:-1][same], y[:-1][same], x[1:][same], y[1:][same]
    seg_line = line[:-1][same]
    length = np.hypot(x1 - x0, y1 - y0)
    n = np.maximum(np.ceil(length / step).astype(np.int64), 1)
    rep = np.repeat(np.arange(len(n)), n)
    offs = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    f = offs / n[rep]
    dx = x0[rep] + f * (x1 - x0)[rep]
    dy = y0[rep] + f * (y1 - y0)[rep]
    # keep the very last vertex of each line and isolated vertices
    return (np.concatenate([dx, x]), np.concatenate([dy, y]),
            np.concatenate([seg_line[rep], line]))


@dataclass
class TransitIndex:
    """Vectorised proximity and timetable queries over a GTFS feed.

    Build it with :meth:`from_gtfs`. Coordinates given to queries are WGS84 degrees; the
    index answers in metres and seconds.
    """

    params: TransitParams
    lat0: float
    lon0: float
    x_min: float
    y_min: float
    shape: tuple[int, int]            # (ny, nx) raster size
    dist_bus: np.ndarray              # uint16 metres to the nearest bus line, per cell
    dist_ferry: np.ndarray            # uint16 metres to the nearest ferry line, per cell
    cell_keys: np.ndarray             # sorted cell ids having routes within near_m
    cell_ptr: np.ndarray              # CSR pointers into cell_routes
    cell_routes: np.ndarray           # route indices
    route_ids: np.ndarray             # route_id per route index
    route_mode: np.ndarray            # "BUS" | "FERRY" | "TRAIN" per route index
    stop_xy: np.ndarray               # (n_stops, 2) metres
    stop_station: np.ndarray          # station index (parent or self) per stop
    station_ids: np.ndarray
    rail_xy: np.ndarray               # (n, 2) railway stations, metres
    stop_times: pd.DataFrame          # station, trip, seq, t_s (seconds of service day)
    trip_route: np.ndarray            # route index per trip index
    trip_service: np.ndarray          # service index per trip index
    service_ids: np.ndarray
    calendar: pd.DataFrame            # per service: weekday flags, start, end (datetime64[D])
    calendar_dates: pd.DataFrame      # service index, date, exception_type
    _stop_order: np.ndarray | None = field(default=None, repr=False)  # stops sorted by x
    _ferry_quays: tuple | None = field(default=None, repr=False)  # see ferry_quays

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_gtfs(cls, gtfs: dict[str, pd.DataFrame], params: TransitParams = TransitParams()) -> "TransitIndex":
        """Build the index from GTFS tables (``routes, trips, stops, stop_times, shapes,
        calendar, calendar_dates``) as returned by :func:`emission_ext.reference.load_gtfs`.

        Raises
        ------
        ValueError
            When the feed has no stops (nothing to index).
        """
        routes, trips, stops = gtfs["routes"], gtfs["trips"], gtfs["stops"]
        stop_times = gtfs.get("stop_times", pd.DataFrame())
        shapes = gtfs.get("shapes", pd.DataFrame())
        if stops is None or len(stops) == 0:
            raise ValueError("GTFS feed has no stops")
        lat0 = float(np.nanmean(stops["stop_lat"]))
        lon0 = float(np.nanmean(stops["stop_lon"]))

        def proj(lat, lon):
            return local_xy(lat, lon, lat0, lon0)

        route_ids = routes["route_id"].astype(str).to_numpy()
        rtype = pd.to_numeric(routes["route_type"], errors="coerce").fillna(3).astype(int).to_numpy()
        route_mode = np.where(np.isin(rtype, FERRY_TYPES), "FERRY",
                              np.where(np.isin(rtype, RAIL_TYPES), "TRAIN", "BUS"))
        route_index = pd.Series(np.arange(len(route_ids)), index=route_ids)

        # stops and stations
        st = stops.copy()
        st["stop_id"] = st["stop_id"].astype(str)
        ltype = pd.to_numeric(st.get("location_type", pd.Series(0, index=st.index)),
                              errors="coerce").fillna(0).astype(int)
        quays = st[ltype == 0].reset_index(drop=True)
        parent = quays.get("parent_station", pd.Series(np.nan, index=quays.index))
        station_of = parent.where(parent.notna(), quays["stop_id"]).astype(str)
        station_ids, stop_station = np.unique(station_of.to_numpy(), return_inverse=True)
        sx, sy = proj(quays["stop_lat"], quays["stop_lon"])
        stop_xy = np.column_stack([sx, sy])
        stop_index = pd.Series(np.arange(len(quays)), index=quays["stop_id"].to_numpy())

        # trips, services
        tr = trips.copy()
        tr["trip_id"] = tr["trip_id"].astype(str)
        trip_route = route_index.reindex(tr["route_id"].astype(str)).fillna(-1).astype(int).to_numpy()
        service_ids, trip_service = np.unique(tr["service_id"].astype(str).to_numpy(), return_inverse=True)
        trip_index = pd.Series(np.arange(len(tr)), index=tr["trip_id"].to_numpy())

        # stop times at station level
        if len(stop_times):
            s_idx = stop_index.reindex(stop_times["stop_id"].astype(str)).to_numpy()
            t_idx = trip_index.reindex(stop_times["trip_id"].astype(str)).to_numpy()
            dep = _gtfs_seconds(stop_times["departure_time"].fillna(stop_times["arrival_time"]))
            ok = ~(np.isnan(s_idx) | np.isnan(t_idx) | np.isnan(dep))
            s_idx, t_idx = s_idx[ok].astype(np.int64), t_idx[ok].astype(np.int64)
            st_tab = pd.DataFrame({
                "station": stop_station[s_idx].astype(np.int64),
                "stop": s_idx,
                "trip": t_idx,
                "seq": pd.to_numeric(stop_times["stop_sequence"], errors="coerce").to_numpy(float)[ok],
                "t_s": dep[ok],
            })
        else:
            st_tab = pd.DataFrame({"station": [], "stop": [], "trip": [], "seq": [], "t_s": []})

        # line geometry per route: shapes, else stop-to-stop legs of each trip pattern
        xs, ys, lines, line_route = [], [], [], []
        if len(shapes):
            sh = shapes.sort_values(["shape_id", "shape_pt_sequence"])
            shape_codes, shape_line = np.unique(sh["shape_id"].astype(str).to_numpy(), return_inverse=True)
            x, y = proj(sh["shape_pt_lat"], sh["shape_pt_lon"])
            xs.append(x); ys.append(y); lines.append(shape_line)
            # route of each shape (a shape may serve several routes: one line per pair)
            pairs = tr.dropna(subset=["shape_id"])[["shape_id", "route_id"]].drop_duplicates()
            shape_route = (pairs.assign(line=pd.Series(np.arange(len(shape_codes)), index=shape_codes)
                                        .reindex(pairs["shape_id"].astype(str)).to_numpy(),
                                        route=route_index.reindex(pairs["route_id"].astype(str)).to_numpy())
                           .dropna(subset=["line", "route"]))
            n_lines = len(shape_codes)
        else:
            shape_route = pd.DataFrame({"line": [], "route": []})
            n_lines = 0
        no_shape = tr["shape_id"].isna() if "shape_id" in tr else pd.Series(True, index=tr.index)
        if no_shape.any() and len(st_tab):
            legs = st_tab[np.isin(st_tab["trip"].to_numpy(), np.flatnonzero(no_shape.to_numpy()))]
            # one polyline per distinct stop pattern of a route
            legs = legs.sort_values(["trip", "seq"])
            legs = legs.assign(route=trip_route[legs["trip"].to_numpy()])
            pattern = legs.groupby("trip", sort=False)["stop"].agg(tuple)
            pat = pd.DataFrame({"trip": pattern.index, "stops": pattern.to_numpy(),
                                "route": trip_route[pattern.index.to_numpy()]})
            keep_trips = pat.drop_duplicates(subset=["route", "stops"])["trip"].to_numpy()
            legs = legs[legs["trip"].isin(keep_trips)]
            leg_line = n_lines + pd.factorize(legs["trip"])[0]
            lx, ly = stop_xy[legs["stop"].to_numpy(), 0], stop_xy[legs["stop"].to_numpy(), 1]
            xs.append(lx); ys.append(ly); lines.append(leg_line)
            lr = pd.DataFrame({"line": leg_line, "route": legs["route"].to_numpy()}).drop_duplicates()
            shape_route = pd.concat([shape_route[["line", "route"]], lr], ignore_index=True)
        if xs:
            x, y, ln = np.concatenate(xs), np.concatenate(ys), np.concatenate(lines).astype(np.int64)
        else:
            x = y = np.zeros(0); ln = np.zeros(0, np.int64)
        step = params.cell_m / 2.0
        dx, dy, dl = _densify(x, y, ln, step)

        # raster extent
        allx = np.concatenate([dx, stop_xy[:, 0]])
        ally = np.concatenate([dy, stop_xy[:, 1]])
        x_min = float(allx.min() - params.margin_m)
        y_min = float(ally.min() - params.margin_m)
        nx = int(np.ceil((allx.max() + params.margin_m - x_min) / params.cell_m)) + 1
        ny = int(np.ceil((ally.max() + params.margin_m - y_min) / params.cell_m)) + 1
        cx = ((dx - x_min) / params.cell_m).astype(np.int64)
        cy = ((dy - y_min) / params.cell_m).astype(np.int64)

        lr = shape_route[["line", "route"]].astype(np.int64).drop_duplicates()
        # expand densified points to (cell, route)
        pt = pd.DataFrame({"cell": cy * nx + cx, "line": dl}).drop_duplicates()
        cr = pt.merge(lr, on="line")[["cell", "route"]].drop_duplicates()
        cr_mode = route_mode[cr["route"].to_numpy()]

        from scipy import ndimage  # only to build; a cached index loads without it

        def dist_raster(mask_cells: np.ndarray) -> np.ndarray:
            grid = np.ones(ny * nx, dtype=bool)
            if len(mask_cells) == 0:
                return np.full((ny, nx), 65535, np.uint16)
            grid[mask_cells] = False
            d = ndimage.distance_transform_edt(grid.reshape(ny, nx), sampling=params.cell_m)
            return np.minimum(np.round(d), 65535).astype(np.uint16)

        dist_bus = dist_raster(np.unique(cr["cell"].to_numpy()[cr_mode == "BUS"]))
        dist_ferry = dist_raster(np.unique(cr["cell"].to_numpy()[cr_mode == "FERRY"]))

        # cells within near_m of each route: dilate the route cells by a disc
        r = int(np.ceil(params.near_m / params.cell_m))
        oy, ox = np.mgrid[-r:r + 1, -r:r + 1]
        disc = (np.hypot(ox, oy) * params.cell_m) <= params.near_m + params.cell_m * 0.5
        ox, oy = ox[disc], oy[disc]
        ccy, ccx = np.divmod(cr["cell"].to_numpy(), nx)
        ex = (ccx[:, None] + ox[None, :]).ravel()
        ey = (ccy[:, None] + oy[None, :]).ravel()
        er = np.repeat(cr["route"].to_numpy(), len(ox))
        inside = (ex >= 0) & (ex < nx) & (ey >= 0) & (ey < ny)
        key = (ey[inside] * nx + ex[inside]) * len(route_ids) + er[inside]
        key = np.unique(key)
        cells, routes_of = np.divmod(key, len(route_ids))
        cell_keys, starts = np.unique(cells, return_index=True)
        cell_ptr = np.append(starts, len(cells)).astype(np.int64)

        # railway stations: rail stops of the feed, else stops named like a station
        rail_stop = np.zeros(len(quays), bool)
        if len(st_tab):
            rail_trips = np.flatnonzero(route_mode[np.maximum(trip_route, 0)] == "TRAIN")
            rail_stop[np.unique(st_tab.loc[st_tab["trip"].isin(rail_trips), "stop"].to_numpy())] = True
        if params.station_pattern:
            pat = re.compile(params.station_pattern)
            rail_stop |= quays["stop_name"].astype(str).map(lambda s: bool(pat.search(s))).to_numpy()
        rail_xy = stop_xy[rail_stop]

        # calendar
        cal = gtfs.get("calendar", pd.DataFrame())
        sidx = pd.Series(np.arange(len(service_ids)), index=service_ids)
        if len(cal):
            days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
            calendar = pd.DataFrame({"service": sidx.reindex(cal["service_id"].astype(str)).to_numpy()})
            for i, d in enumerate(days):
                calendar[i] = pd.to_numeric(cal[d], errors="coerce").fillna(0).astype(bool).to_numpy()
            calendar["start"] = pd.to_datetime(cal["start_date"].astype(str), format="%Y%m%d").to_numpy()
            calendar["end"] = pd.to_datetime(cal["end_date"].astype(str), format="%Y%m%d").to_numpy()
            calendar = calendar.dropna(subset=["service"]).astype({"service": np.int64})
        else:
            calendar = pd.DataFrame(columns=["service", 0, 1, 2, 3, 4, 5, 6, "start", "end"])
        cd = gtfs.get("calendar_dates", pd.DataFrame())
        if len(cd):
            calendar_dates = pd.DataFrame({
                "service": sidx.reindex(cd["service_id"].astype(str)).to_numpy(),
                "date": pd.to_datetime(cd["date"].astype(str), format="%Y%m%d").to_numpy(),
                "exception_type": pd.to_numeric(cd["exception_type"], errors="coerce").to_numpy(),
            }).dropna(subset=["service"]).astype({"service": np.int64})
        else:
            calendar_dates = pd.DataFrame({"service": pd.Series([], dtype=np.int64),
                                           "date": pd.Series([], dtype="datetime64[ns]"),
                                           "exception_type": pd.Series([], dtype=float)})

        return cls(params=params, lat0=lat0, lon0=lon0, x_min=x_min, y_min=y_min,
                   shape=(ny, nx), dist_bus=dist_bus, dist_ferry=dist_ferry,
                   cell_keys=cell_keys, cell_ptr=cell_ptr, cell_routes=routes_of.astype(np.int32),
                   route_ids=route_ids, route_mode=route_mode, stop_xy=stop_xy,
                   stop_station=stop_station.astype(np.int64), station_ids=station_ids,
                   rail_xy=rail_xy, stop_times=st_tab, trip_route=trip_route,
                   trip_service=trip_service.astype(np.int64), service_ids=service_ids,
                   calendar=calendar, calendar_dates=calendar_dates)

    # ------------------------------------------------------------------ persistence
    _ARRAYS = ("dist_bus", "dist_ferry", "cell_keys", "cell_ptr", "cell_routes", "route_ids",
               "route_mode", "stop_xy", "stop_station", "station_ids", "rail_xy", "trip_route",
               "trip_service", "service_ids")
    _FRAMES = ("stop_times", "calendar", "calendar_dates")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything the index holds as plain numpy arrays (strings as unicode arrays), for
        :meth:`from_arrays`; lets the caller cache a built index (e.g. in an ``.npz``)."""
        out = {k: np.asarray(getattr(self, k)) for k in self._ARRAYS}
        for k in ("route_ids", "route_mode", "station_ids", "service_ids"):
            out[k] = out[k].astype(str)
        for name in self._FRAMES:
            df = getattr(self, name)
            for col in df.columns:
                out[f"{name}.{col}"] = df[col].to_numpy()
        out["meta"] = np.array([self.lat0, self.lon0, self.x_min, self.y_min, *self.shape], dtype=float)
        return out

    @classmethod
    def from_arrays(cls, arrays, params: TransitParams = TransitParams()) -> "TransitIndex":
        """Rebuild an index from :meth:`to_arrays` output (built with the same ``params``)."""
        meta = np.asarray(arrays["meta"], float)
        kw = {k: np.asarray(arrays[k]) for k in cls._ARRAYS}
        frames = {}
        for name in cls._FRAMES:
            prefix = f"{name}."
            cols = {k[len(prefix):]: np.asarray(arrays[k]) for k in arrays if k.startswith(prefix)}
            if name == "calendar":
                cols = {(int(c) if c.isdigit() else c): v for c, v in cols.items()}
            frames[name] = pd.DataFrame(cols)
        return cls(params=params, lat0=float(meta[0]), lon0=float(meta[1]), x_min=float(meta[2]),
                   y_min=float(meta[3]), shape=(int(meta[4]), int(meta[5])), **kw, **frames)

    # ------------------------------------------------------------------ geometry
    def project(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 degrees to the index's local plane, metres (arrays)."""
        return local_xy(lat, lon, self.lat0, self.lon0)

    def _cells(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Cell id per point and whether the point lies inside the raster."""
        x, y = self.project(lat, lon)
        ny, nx = self.shape
        cx = np.floor((x - self.x_min) / self.params.cell_m)
        cy = np.floor((y - self.y_min) / self.params.cell_m)
        inside = (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
        cell = np.where(inside, cy * nx + cx, 0).astype(np.int64)
        return cell, inside

    def distance_to_bus_line(self, lat, lon) -> np.ndarray:
        """Distance from each point to the nearest bus line, metres (``FAR_M`` outside the area)."""
        cell, inside = self._cells(lat, lon)
        return np.where(inside, self.dist_bus.ravel()[cell], FAR_M).astype(float)

    def distance_to_lines(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Distances to the nearest bus line and to the nearest ferry route, metres (``FAR_M``
        outside the area): both rasters read at one projection of the points."""
        cell, inside = self._cells(lat, lon)
        return (np.where(inside, self.dist_bus.ravel()[cell], FAR_M).astype(float),
                np.where(inside, self.dist_ferry.ravel()[cell], FAR_M).astype(float))

    def distance_to_ferry_line(self, lat, lon) -> np.ndarray:
        """Distance from each point to the nearest ferry route, metres (``FAR_M`` outside)."""
        cell, inside = self._cells(lat, lon)
        return np.where(inside, self.dist_ferry.ravel()[cell], FAR_M).astype(float)

    def distance_to_rail_station(self, lat, lon) -> np.ndarray:
        """Distance from each point to the nearest railway station, metres (inf when none)."""
        x, y = self.project(lat, lon)
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        m = len(self.rail_xy)
        if m == 0:
            return np.full(len(x), np.inf)
        out = np.empty(len(x))
        step = max(1, 2_000_000 // m)  # brute force over the few stations, in bounded chunks
        for a in range(0, len(x), step):
            dx = x[a:a + step, None] - self.rail_xy[None, :, 0]
            dy = y[a:a + step, None] - self.rail_xy[None, :, 1]
            out[a:a + step] = np.sqrt(dx * dx + dy * dy).min(axis=1)
        return out

    def ferry_quays(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (metres, the index's plane) and station of every stop a ferry calls at.

        Returns
        -------
        xy : ndarray, shape (n, 2)
            Quay positions, metres.
        station : ndarray of int
            Station index per quay (two stops of one pier share it).

        Worked out once per index (a scan of the timetable, ~2 ms) and kept: segmentation
        asks for it once per batch of users.
        """
        if self._ferry_quays is None:
            st = self.stop_times
            served = self.route_mode[self.trip_route[st["trip"].to_numpy()]] == "FERRY"
            stations = np.unique(st["station"].to_numpy()[served])
            keep = np.isin(self.stop_station, stations)
            self._ferry_quays = (self.stop_xy[keep], self.stop_station[keep])
        return self._ferry_quays

    def nearest_station(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Nearest stop's station index and distance, metres; (-1, inf) when no stop is within
        ``stop_near_m``.

        Only stops whose x lies within ``stop_near_m`` of the query's x can qualify: with the
        stops sorted by x, each query looks at that contiguous run (a few stops) only.
        """
        x, y = self.project(lat, lon)
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        r = self.params.stop_near_m
        st = np.full(len(x), -1, np.int64)
        dist = np.full(len(x), np.inf)
        if len(self.stop_xy) == 0 or len(x) == 0:
            return st, dist
        if self._stop_order is None:
            self._stop_order = np.argsort(self.stop_xy[:, 0], kind="stable")
        order = self._stop_order
        sx = self.stop_xy[order, 0]
        lo = np.searchsorted(sx, x - r, side="left")
        cnt = np.searchsorted(sx, x + r, side="right") - lo
        cnt[~(np.isfinite(x) & np.isfinite(y))] = 0
        q = np.repeat(np.arange(len(x)), cnt)
        if len(q) == 0:
            return st, dist
        k = np.arange(len(q)) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
        s = order[k]
        dx = x[q] - self.stop_xy[s, 0]
        dy = y[q] - self.stop_xy[s, 1]
        d = np.sqrt(dx * dx + dy * dy)
        o = np.lexsort((s, d, q))  # per query: nearest first, ties to the lower stop index
        q, s, d = q[o], s[o], d[o]
        head = np.r_[True, q[1:] != q[:-1]]
        q, s, d = q[head], s[head], d[head]
        near = d <= r
        st[q[near]] = self.stop_station[s[near]]
        dist[q[near]] = d[near]
        return st, dist

    def route_share(self, lat, lon, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        """Per group (section), the largest share of its points within ``near_m`` of one route.

        Parameters
        ----------
        lat, lon : array of float
            Point coordinates, degrees.
        group : array of int
            Group index (0..n_groups-1) of each point.
        n_groups : int
            Number of groups.

        Returns
        -------
        share : ndarray (n_groups,)
            Best share in [0, 1] (0 for groups without points).
        route : ndarray (n_groups,)
            Index of that route (-1 when no point is near any route); see ``route_ids``.
        """
        group = np.asarray(group, np.int64)
        cell, inside = self._cells(lat, lon)
        pos = np.searchsorted(self.cell_keys, cell)
        pos = np.minimum(pos, len(self.cell_keys) - 1) if len(self.cell_keys) else pos
        hit = inside & (len(self.cell_keys) > 0)
        if len(self.cell_keys):
            hit &= self.cell_keys[pos] == cell
        p = np.flatnonzero(hit)
        counts_pts = np.bincount(group, minlength=n_groups).astype(float)
        n_routes = len(self.route_ids)
        share = np.zeros(n_groups)
        best = np.full(n_groups, -1, np.int64)
        if len(p) == 0:
            return share, best
        start = self.cell_ptr[pos[p]]
        n = self.cell_ptr[pos[p] + 1] - start
        rep = np.repeat(np.arange(len(p)), n)
        offs = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        routes = self.cell_routes[start[rep] + offs].astype(np.int64)
        key = group[p][rep] * n_routes + routes
        cnt = np.bincount(key, minlength=n_groups * n_routes).reshape(n_groups, n_routes)
        best_r = cnt.argmax(axis=1)
        best_c = cnt[np.arange(n_groups), best_r]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(counts_pts > 0, best_c / np.maximum(counts_pts, 1), 0.0)
        best = np.where(best_c > 0, best_r, -1)
        return share, best

    # ------------------------------------------------------------------ timetable
    def _active(self, service: np.ndarray, date: np.ndarray) -> np.ndarray:
        """Whether each (service index, local date as datetime64[D]) pair runs."""
        service = np.asarray(service, np.int64)
        date = np.asarray(date, "datetime64[D]")
        out = np.zeros(len(service), bool)
        if len(service) == 0:
            return out
        q = pd.DataFrame({"service": service, "date": date.astype("datetime64[ns]"), "i": np.arange(len(service))})
        if len(self.calendar):
            c = q.merge(self.calendar, on="service", how="inner")
            wd = pd.DatetimeIndex(c["date"]).day_of_week.to_numpy()
            flags = c[[0, 1, 2, 3, 4, 5, 6]].to_numpy(bool)
            ok = flags[np.arange(len(c)), wd] & (c["date"] >= c["start"]).to_numpy() & (c["date"] <= c["end"]).to_numpy()
            out[c["i"].to_numpy()[ok]] = True
        if len(self.calendar_dates):
            e = q.merge(self.calendar_dates, on=["service", "date"], how="inner")
            out[e["i"].to_numpy()[e["exception_type"].to_numpy() == 1]] = True
            out[e["i"].to_numpy()[e["exception_type"].to_numpy() == 2]] = False
        return out

    def schedule_match(self, board_lat, board_lon, board_ts, alight_lat, alight_lon, alight_ts,
                       route: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Whether a scheduled trip leaves the boarding station and reaches the alighting one
        at the given times (within the tolerances), on a service running that day.

        Parameters
        ----------
        board_lat, board_lon, alight_lat, alight_lon : array of float
            Positions, degrees (one per section).
        board_ts, alight_ts : array of float
            Unix seconds.
        route : array of int, optional
            Restrict the match to this route index per section (-1: any route).

        Returns
        -------
        matched : ndarray of bool
        route : ndarray of int
            Route index of the matched trip (-1 when none).
        """
        n = len(np.asarray(board_ts))
        matched = np.zeros(n, bool)
        mroute = np.full(n, -1, np.int64)
        if n == 0 or len(self.stop_times) == 0:
            return matched, mroute
        b_st, _ = self.nearest_station(board_lat, board_lon)
        a_st, _ = self.nearest_station(alight_lat, alight_lon)
        ok = (b_st >= 0) & (a_st >= 0) & (b_st != a_st)
        if not ok.any():
            return matched, mroute
        idx = np.flatnonzero(ok)
        local_b = pd.to_datetime(np.asarray(board_ts, float)[idx], unit="s", utc=True).tz_convert(self.params.tz)
        local_a = pd.to_datetime(np.asarray(alight_ts, float)[idx], unit="s", utc=True).tz_convert(self.params.tz)
        day_b = local_b.normalize().tz_localize(None)
        sec_b = (local_b - local_b.normalize()).total_seconds().to_numpy()
        sec_a = (local_a - local_b.normalize()).total_seconds().to_numpy()
        frames = []
        # service day = the local date, or the previous one for times past midnight (GTFS > 24h)
        for shift in (0, 1):
            frames.append(pd.DataFrame({
                "q": idx, "station": b_st[idx], "a_station": a_st[idx],
                "date": (day_b - pd.Timedelta(days=shift)).to_numpy(),
                "tb": sec_b + 86400.0 * shift, "ta": sec_a + 86400.0 * shift,
                "want_route": (np.asarray(route)[idx] if route is not None else np.full(len(idx), -1)),
            }))
        q = pd.concat(frames, ignore_index=True)
        st = self.stop_times
        c = q.merge(st[["station", "trip", "seq", "t_s"]], on="station")
        c = c[(c["t_s"] >= c["tb"] - self.params.board_tol_s) & (c["t_s"] <= c["tb"] + self.params.board_tol_s)]
        if len(c) == 0:
            return matched, mroute
        c = c.assign(route=self.trip_route[c["trip"].to_numpy()])
        c = c[(c["want_route"] < 0) | (c["want_route"] == c["route"])]
        c = c.merge(st[["station", "trip", "seq", "t_s"]].rename(
            columns={"station": "a_station", "seq": "a_seq", "t_s": "a_t"}), on=["a_station", "trip"])
        c = c[(c["a_seq"] > c["seq"]) & (np.abs(c["a_t"] - c["ta"]) <= self.params.alight_tol_s)]
        if len(c) == 0:
            return matched, mroute
        c = c[self._active(self.trip_service[c["trip"].to_numpy()], c["date"].to_numpy())]
        if len(c) == 0:
            return matched, mroute
        c = c.sort_values("q").drop_duplicates("q")
        matched[c["q"].to_numpy()] = True
        mroute[c["q"].to_numpy()] = c["route"].to_numpy()
        return matched, mroute
