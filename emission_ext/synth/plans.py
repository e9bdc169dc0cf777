"""Daily life of the synthetic testers: activity schedules, mode choice and trip assembly.

Why: the ground truth the rest of the product is tested against (places, trips, single-mode
sections, which operator record belongs to which section) is produced here. Each tester lives
day after day from home: commute on working days (with the odd lunch trip, errand on the way
home and evening outing), outings on other days, the occasional sea-shuttle outing or train
day trip. French household travel surveys find about 3-4 trips per person per day on weekdays
and a little fewer at weekends; the probabilities below aim there. Modes are chosen per tour
(a car or bike that leaves home comes back), from distance and what the tester owns; a mode that
cannot be realised (no bus that fits, no bike-share station near) falls back to another.

The loop runs per tester, day and trip (a few thousand trips for 50 testers x 7 days); every
per-point computation is numpy inside :mod:`.legs` and :mod:`.transit`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ..schema import Mode
from . import geo, legs as L
from .transit import BUS, FERRY, TransitNet, service_day_origin

W, BI, CA, BU, BS, CS, FE, TR = (Mode.WALKING.value, Mode.BICYCLING.value, Mode.CAR.value,
                                 Mode.BUS.value, Mode.BIKESHARE.value, Mode.CARSHARE.value,
                                 Mode.FERRY.value, Mode.TRAIN.value)


@dataclass(frozen=True)
class PlanParams:
    """Behaviour probabilities (per day or per trip) and limits."""

    p_lunch_trip: float = 0.2        # working day: go out for lunch (walk)
    p_errand_after_work: float = 0.35
    p_evening_outing: float = 0.25
    outings_weekend: tuple[float, ...] = (0.2, 0.5, 0.3)   # P(0, 1, 2 outings) on a day off
    p_chain_stop: float = 0.3        # an outing visits a second place before going home
    p_habit: float = 0.85            # commute with the usual mode
    p_ferry_outing: float = 0.25     # a day-off outing uses the sea shuttle (if home is near)
    p_train_day: float = 0.04        # a day off is a train day trip
    p_carshare_outing: float = 0.6   # car-share members: an outing > 3 km by car share
    p_transfer: float = 0.15         # a bus trip takes a one-transfer itinerary when one exists
    bus_radius_m: float = 800.0      # longest walk to/from a stop
    bikeshare_radius_m: float = 600.0


@dataclass
class Stay:
    """A stay at a place (between two trips)."""

    place_id: str
    kind: str
    x: float
    y: float
    enter: float | None   # unix s
    exit: float | None


@dataclass
class Trip:
    trip_id: str
    purpose: str
    legs: list = field(default_factory=list)
    start_place: str | None = None
    end_place: str | None = None

    @property
    def start(self) -> float:
        return self.legs[0].start

    @property
    def end(self) -> float:
        return self.legs[-1].end


@dataclass
class Context:
    """Reference data the planner needs, in local metres."""

    net: TransitNet
    bike_st: pd.DataFrame      # station_id, x, y
    car_parks: pd.DataFrame    # car_park_id, x, y
    rail: pd.DataFrame         # line, seq, station, x, y
    ferry_stops: pd.DataFrame  # stop_id, x, y
    tz: str
    _ride_cache: dict = field(default_factory=dict)

    @classmethod
    def build(cls, net: TransitNet, bike_stations: pd.DataFrame, car_parks: pd.DataFrame,
              rail: pd.DataFrame, tz: str) -> "Context":
        def xy(df):
            x, y = geo.to_xy(df["lon"].to_numpy(), df["lat"].to_numpy())
            return df.assign(x=x, y=y)
        cp = car_parks.dropna(subset=["car_park_id", "lat", "lon"])
        cp = cp[~cp["name"].str.contains("camping", case=False, na=False)]
        fs = net.stop_times.loc[net.stop_times["route_type"] == FERRY, "stop_id"].unique()
        ferry = net.stops[net.stops["stop_id"].isin(fs)][["stop_id", "x", "y"]].reset_index(drop=True)
        return cls(net, xy(bike_stations).reset_index(drop=True), xy(cp).reset_index(drop=True),
                   xy(rail).reset_index(drop=True), ferry, tz)


def _nearest(df: pd.DataFrame, x: float, y: float):
    d = np.hypot(df["x"].to_numpy() - x, df["y"].to_numpy() - y)
    i = int(d.argmin())
    return df.iloc[i], float(d[i])


class TesterLife:
    """Simulates one tester's days; produces stays and trips (with legs)."""

    def __init__(self, rng: np.random.Generator, tester: pd.Series, ctx: Context, params: PlanParams):
        self.rng, self.t, self.ctx, self.p = rng, tester, ctx, params
        self.uid = tester["user_id"]
        self.home = (float(tester["home_x"]), float(tester["home_y"]))
        self.work = (float(tester["work_x"]), float(tester["work_y"]))
        self.stays: list[Stay] = [Stay(self._pid(), "home", *self.home, None, None)]
        self.trips: list[Trip] = []
        self.now = -np.inf
        self.pos = self.home
        self.car_xy = self.home if tester["has_car"] else None   # where the own car is parked
        self.car_cp = None                                        # ... and the car park, if any
        self.carshare_station = None   # while a car-share car is out: its station row
        self.tour_mode = W             # mode of the tour that left home last
        self._bike_mode = Mode.E_BIKE.value if tester.get("ebike", False) else BI

    # ---------------------------------------------------------------- ids
    def _pid(self) -> str:
        return f"{self.uid}-P{len(getattr(self, 'stays', [])) + 1:05d}"

    def _tid(self) -> str:
        return f"{self.uid}-T{len(self.trips) + 1:05d}"

    # ---------------------------------------------------------------- days
    def live(self, day: date) -> None:
        origin = service_day_origin(day, self.ctx.tz)
        rng, p = self.rng, self.p
        weekday = day.weekday()
        works = weekday < 5 and not (self.t["work_days"] == 4 and weekday == 2)
        if works:
            start_h = float(self.t["work_start_h"])
            d = np.hypot(self.work[0] - self.home[0], self.work[1] - self.home[1])
            lead = 300 + d / 5.0
            self.go(day, origin + start_h * 3600 - lead + rng.normal(0, 300), self.work, "work", "commute")
            lunch_h = 12.0 + rng.uniform(0, 0.75)
            if rng.random() < p.p_lunch_trip and start_h < 11:
                ang = rng.uniform(0, 2 * np.pi)
                r = rng.uniform(250, 900)
                lunch = (self.work[0] + r * np.cos(ang), self.work[1] + r * np.sin(ang))
                self.go(day, origin + lunch_h * 3600, lunch, "lunch", "lunch", force=W)
                self.go(day, self.now + rng.uniform(35, 60) * 60, self.work, "work", "lunch", force=W)
            leave = origin + (start_h + 8.0 + (1.0 if start_h >= 7 else 0.0)) * 3600 + rng.normal(0, 1200)
            if rng.random() < p.p_errand_after_work:
                shop = self._around(self.home, 300, 2000)
                self.go(day, leave, shop, "shop", "commute")
                self.go(day, self.now + rng.uniform(10, 35) * 60, self.home, "home", "commute")
            else:
                self.go(day, leave, self.home, "home", "commute")
            if rng.random() < p.p_evening_outing:
                self._outing(day, origin + rng.uniform(19.0, 20.5) * 3600, (0.6, 2.0))
            return
        if rng.random() < p.p_train_day:
            self._train_day(day, origin)
            return
        n = rng.choice(len(p.outings_weekend), p=p.outings_weekend)
        starts = sorted(rng.uniform(9.5, 11.0, 1).tolist() + rng.uniform(14.0, 17.0, 1).tolist())
        for k in range(int(n)):
            self._outing(day, origin + starts[k] * 3600, (1.0, 3.0))

    def _around(self, c, rmin, rmax):
        ang = self.rng.uniform(0, 2 * np.pi)
        r = self.rng.uniform(rmin, rmax)
        return (c[0] + r * np.cos(ang), c[1] + r * np.sin(ang))

    def _outing(self, day: date, t: float, stay_h: tuple[float, float]) -> None:
        rng, p = self.rng, self.p
        ferry_near = _nearest(self.ctx.ferry_stops, *self.home) if len(self.ctx.ferry_stops) else (None, np.inf)
        if ferry_near[1] < 2500 and rng.random() < p.p_ferry_outing:
            if self._ferry_outing(day, t, stay_h, ferry_near[0]):
                return
        dist = float(np.clip(rng.lognormal(np.log(2500), 0.8), 300, 15000))
        dest = self._around(self.home, dist * 0.9, dist * 1.1)
        mode = None
        if self.t["carshare"] and dist > 2000 and rng.random() < p.p_carshare_outing:
            mode = CS
        self.go(day, t, dest, "leisure", "leisure", force=mode)
        if rng.random() < p.p_chain_stop:
            nxt = self._around(dest, 400, 2500)
            self.go(day, self.now + rng.uniform(0.3, 1.2) * 3600, nxt, "shop", "leisure")
        self.go(day, self.now + rng.uniform(*stay_h) * 3600, self.home, "home", "leisure")

    def _ferry_outing(self, day, t, stay_h, term) -> bool:
        fs = self.ctx.ferry_stops
        other = fs[np.hypot(fs["x"] - term["x"], fs["y"] - term["y"]) > 800]
        if other.empty:
            return False
        o = other.iloc[int(self.rng.integers(len(other)))]
        dest = self._around((o["x"], o["y"]), 150, 600)
        if not self.go(day, t, dest, "leisure", "leisure", force=FE, strict=True):
            return False
        self.go(day, self.now + self.rng.uniform(*stay_h) * 3600, self.home, "home", "leisure", force=FE)
        return True

    def _train_day(self, day: date, origin: float) -> None:
        rail = self.ctx.rail
        line = self.rng.choice(rail["line"].unique())
        stations = rail[rail["line"] == line].sort_values("seq")
        end = stations.iloc[-1]
        dest = self._around((end["x"], end["y"]), 200, 1200)
        self.go(day, origin + self.rng.uniform(8.0, 10.0) * 3600, dest, "visit", "train_day",
                force=TR, rail=stations)
        self.go(day, self.now + self.rng.uniform(4.0, 7.0) * 3600, self.home, "home", "train_day",
                force=TR, rail=stations.iloc[::-1])

    # ---------------------------------------------------------------- mode choice
    def _choose(self, dist: float, purpose: str) -> str:
        t, rng = self.t, self.rng
        if purpose == "commute" and rng.random() < self.p.p_habit:
            return str(t["commute_mode"])
        w = {W: 5.0 * np.exp(-dist / 800.0), BI: 0.9 * (dist < 7000) if t["has_bike"] else 0.0,
             CA: (0.8 + dist / 1500.0) if t["has_car"] else 0.0,
             BU: 1.1 * (dist > 1200) if pd.notna(t["yelo_card_id"]) else 0.0,
             BS: 0.5 * (1000 < dist < 5000) if pd.notna(t["yelo_card_id"]) else 0.0}
        if sum(w.values()) <= 1e-9:
            w[W] = 1.0
        k = list(w)
        pr = np.array([w[m] for m in k], float)
        return str(rng.choice(k, p=pr / pr.sum()))

    # ---------------------------------------------------------------- one trip
    def go(self, day: date, t_plan: float, dest, kind: str, purpose: str, force: str | None = None,
           strict: bool = False, rail=None) -> bool:
        """Travel from the current place to ``dest`` leaving at ``t_plan`` (or later)."""
        rng = self.rng
        t0 = max(t_plan, self.now + rng.uniform(240, 600))
        x0, y0 = self.pos
        x1, y1 = dest
        dist = float(np.hypot(x1 - x0, y1 - y0))
        at_home = self.stays[-1].kind == "home"
        if force is not None:
            mode = force
        elif self.carshare_station is not None:
            mode = CS
        elif not at_home and self.tour_mode in (CA, BI):
            mode = self.tour_mode
        else:
            mode = self._choose(dist, purpose)
        car_ok = self.car_xy is not None and np.hypot(self.car_xy[0] - x0, self.car_xy[1] - y0) < 1500.0
        for _ in range(5):
            if mode != CA or car_ok:
                break
            mode = self._choose(dist, "other")
        if mode == CA and not car_ok:
            mode = W if dist < 3000 else BI if self.t["has_bike"] else W
        legs = self._build(day, t0, x0, y0, x1, y1, mode, rail)
        if legs is None:
            if strict:
                return False
            legs = self._fallback(day, t0, x0, y0, x1, y1, dist)
        if at_home:
            used = {lg.mode for lg in legs}
            bike_used = BI in used or Mode.E_BIKE.value in used
            self.tour_mode = CA if CA in used and self.car_xy is not None else BI if bike_used else mode
        trip = Trip(self._tid(), purpose, legs)
        prev = self.stays[-1]
        prev.exit = trip.start
        trip.start_place = prev.place_id
        stay = Stay(self._pid(), kind, float(legs[-1].x[-1]), float(legs[-1].y[-1]), trip.end, None)
        trip.end_place = stay.place_id
        self.trips.append(trip)
        self.stays.append(stay)
        self.now = trip.end
        self.pos = (stay.x, stay.y)
        return True

    def _fallback(self, day, t0, x0, y0, x1, y1, dist):
        if dist < 3000 or not (self.t["has_car"] or self.t["has_bike"]):
            if dist >= 3000:   # a lift from someone (car passenger)
                return [L.drive(self.rng, t0, x0, y0, x1, y1)]
            return [L.walk(self.rng, t0, x0, y0, x1, y1)]
        if self.t["has_bike"] and dist < 8000:
            return [L.bike(self.rng, t0, x0, y0, x1, y1, mode=self._bike_mode)]
        car_ok = self.car_xy is not None and np.hypot(self.car_xy[0] - x0, self.car_xy[1] - y0) < 1500.0
        if car_ok:
            return self._car(t0, x0, y0, x1, y1)
        return [L.drive(self.rng, t0, x0, y0, x1, y1)]   # a lift

    def _build(self, day, t0, x0, y0, x1, y1, mode, rail=None):
        rng = self.rng
        if mode == W:
            return [L.walk(rng, t0, x0, y0, x1, y1)]
        if mode == BI:
            return [L.bike(rng, t0, x0, y0, x1, y1, mode=self._bike_mode)]
        if mode == CA:
            return self._car(t0, x0, y0, x1, y1)
        if mode in (BU, FE):
            return self._transit(day, t0, x0, y0, x1, y1, BUS if mode == BU else FERRY)
        if mode == BS:
            return self._bikeshare(t0, x0, y0, x1, y1)
        if mode == CS:
            return self._carshare(t0, x0, y0, x1, y1)
        if mode == TR:
            return self._train(t0, x0, y0, x1, y1, rail)
        raise ValueError(mode)

    def _car(self, t0, x0, y0, x1, y1):
        rng, out = self.rng, []
        out_cp = None
        cx, cy = self.car_xy
        sub = self.t["parking_subscription"]
        to_work = np.hypot(x1 - self.work[0], y1 - self.work[1]) < 1.0
        if pd.notna(sub) and to_work:
            cp = self.ctx.car_parks[self.ctx.car_parks["car_park_id"] == sub].iloc[0]
            gx, gy = float(cp["x"]), float(cp["y"])   # where the drive would end
        else:
            cp, gx, gy = None, x1, y1
        if np.hypot(gx - cx, gy - cy) <= 30.0:       # the car is parked where the drive would
            return [L.walk(rng, t0, x0, y0, x1, y1)]  # end: walk there (no 0 m drive)
        if np.hypot(cx - x0, cy - y0) > 30.0:        # walk to where the car is parked
            lw = L.walk(rng, t0, x0, y0, cx, cy)
            L.stay_on(lw, lw.end + rng.uniform(30, 90))
            out.append(lw)
            t0, x0, y0 = lw.end, cx, cy
            out_cp = None if self.car_cp is None else str(self.car_cp["car_park_id"])
        if cp is not None:
            walk_on = np.hypot(x1 - gx, y1 - gy) > 30.0  # else the car park is at the door
            lc = L.drive(rng, t0, x0, y0, *((gx, gy) if walk_on else (x1, y1)))
            lc.info.update(car_park_in=str(sub))
            out += [lc, L.walk(rng, lc.end, gx, gy, x1, y1)] if walk_on else [lc]
            self.car_xy, self.car_cp = (float(cp["x"]), float(cp["y"])), cp
        else:
            lc = L.drive(rng, t0, x0, y0, x1, y1)
            out.append(lc)
            self.car_xy, self.car_cp = (x1, y1), None
        if out_cp is not None:
            lc.info.update(car_park_out=out_cp)
        return out

    def _transit(self, day, t0, x0, y0, x1, y1, rtype):
        """Walk - ride (- walk - ride) - walk on real GTFS trips; None when nothing fits."""
        ctx = self.ctx
        origin = service_day_origin(day, ctx.tz)
        ready = t0 - origin
        for _ in range(3):  # a walker who misses the planned bus takes a later one
            state = self.rng.bit_generator.state
            legs, late = self._try_transit(day, origin, ready, t0, x0, y0, x1, y1, rtype)
            if legs is not None or late is None:
                return legs
            self.rng.bit_generator.state = state
            ready += late + 60.0
        return None

    def _rides(self, day, ready, x0, y0, x1, y1, rtype):
        ctx = self.ctx
        radius = self.p.bus_radius_m if rtype == BUS else 2600.0
        prefer = bool(rtype == BUS and self.rng.random() < self.p.p_transfer)
        key = (ctx.net.service_date(day), round(x0), round(y0), round(x1), round(y1), int(ready // 60), rtype,
               prefer)
        if key not in ctx._ride_cache:
            ctx._ride_cache[key] = ctx.net.find_rides(day, ready, x0, y0, x1, y1, route_types=(rtype,),
                                                      radius_m=radius, prefer_transfer=prefer)
        return ctx._ride_cache[key]

    def _try_transit(self, day, origin, ready, t0, x0, y0, x1, y1, rtype):
        """Returns (legs, None), (None, seconds late for the first bus) or (None, None)."""
        ctx, rng = self.ctx, self.rng
        rides = self._rides(day, ready, x0, y0, x1, y1, rtype)
        if not rides:
            return None, None
        out = []
        t, x, y = t0, x0, y0
        for k, ride in enumerate(rides):
            bx, by = ctx.net.stop_xy(ride.board_stop)
            lw = L.walk(rng, t, x, y, bx, by)
            delay0 = float(np.clip(rng.normal(60.0, 80.0), -40.0, 300.0)) if rtype == BUS else \
                float(np.clip(rng.normal(30.0, 60.0), -30.0, 240.0))
            sched = origin + ride.sched_dep_s
            need = lw.end + 10.0 - sched          # the bus must not leave before the walker is there
            if need > delay0:
                if need > 300.0:                  # missed it: try a later departure
                    return None, (need if k == 0 else 120.0)
                delay0 = need
            path = ctx.net.ride_path(rng, ride, origin, delay0)
            L.stay_on(lw, float(path["t"][0]))
            out.append(lw)
            mode = BU if rtype == BUS else FE
            leg = L.Leg(mode, path["t"], path["x"], path["y"], info=dict(
                ride=ride, stop_arr=path["stop_arr"], stop_dep=path["stop_dep"],
                sched_arr=path["sched_arr"], sched_dep=path["sched_dep"], stop_ids=path["stop_ids"],
                board_ts=float(path["stop_arr"][0])))
            out.append(leg)
            t, x, y = leg.end, float(leg.x[-1]), float(leg.y[-1])
        out.append(L.walk(rng, t, x, y, x1, y1))
        return out, None

    def _bikeshare(self, t0, x0, y0, x1, y1):
        bs, rng = self.ctx.bike_st, self.rng
        a, da = _nearest(bs, x0, y0)
        b, db = _nearest(bs, x1, y1)
        r = self.p.bikeshare_radius_m
        if da > r or db > r or a["station_id"] == b["station_id"]:
            return None
        l1 = L.walk(rng, t0, x0, y0, a["x"], a["y"])
        L.stay_on(l1, l1.end + rng.uniform(30, 120))   # unlock the bike
        l2 = L.bike(rng, l1.end, a["x"], a["y"], b["x"], b["y"], mode=BS)
        l2.info.update(station_id=str(a["station_id"]), end_station_id=str(b["station_id"]))
        l3 = L.walk(rng, l2.end + rng.uniform(20, 60), b["x"], b["y"], x1, y1)
        l3.t[0] = l2.end
        return [l1, l2, l3]

    def _carshare(self, t0, x0, y0, x1, y1):
        rng = self.rng
        if self.carshare_station is None:          # pick the car up
            st, d = _nearest(self.ctx.car_parks, x0, y0)
            if d > 2500:
                return None
            l1 = L.walk(rng, t0, x0, y0, st["x"], st["y"])
            L.stay_on(l1, l1.end + rng.uniform(60, 240))
            l2 = L.drive(rng, l1.end, st["x"], st["y"], x1, y1, mode=CS)
            l2.info.update(carshare_pickup=str(st["car_park_id"]))
            self.carshare_station = st
            return [l1, l2]
        st = self.carshare_station
        home_bound = np.hypot(x1 - self.home[0], y1 - self.home[1]) < 1.0
        if not home_bound:                         # keep the car for the next stop
            l = L.drive(rng, t0, x0, y0, x1, y1, mode=CS)
            l.info.update(carshare_keep=str(st["car_park_id"]))
            return [l]
        l1 = L.drive(rng, t0, x0, y0, st["x"], st["y"], mode=CS)
        l1.info.update(carshare_return=str(st["car_park_id"]))
        l2 = L.walk(rng, l1.end + rng.uniform(60, 180), st["x"], st["y"], x1, y1)
        l2.t[0] = l1.end
        self.carshare_station = None
        return [l1, l2]

    def _train(self, t0, x0, y0, x1, y1, stations):
        rng = self.rng
        first, last = stations.iloc[0], stations.iloc[-1]
        l1 = L.walk(rng, t0, x0, y0, first["x"], first["y"])
        if l1.end - t0 > 50 * 60:   # too far to walk to the station: drive (a lift / car)
            l1 = L.drive(rng, t0, x0, y0, first["x"], first["y"])
        # synthetic hourly trains at hh:12
        dep = np.ceil((l1.end + 300 - 12 * 60) / 3600.0) * 3600.0 + 12 * 60
        L.stay_on(l1, dep)
        sx, sy = stations["x"].to_numpy(), stations["y"].to_numpy()
        ts, xs, ys, t = [], [], [], dep
        for k in range(len(sx) - 1):  # per station pair
            lt = L.train(rng, t, sx[k], sy[k], sx[k + 1], sy[k + 1])
            ts.append(lt.t); xs.append(lt.x); ys.append(lt.y)
            t = lt.end + (rng.uniform(60, 120) if k < len(sx) - 2 else 0.0)
        ltr = L.Leg(TR, np.concatenate(ts), np.concatenate(xs), np.concatenate(ys))
        order = np.argsort(ltr.t, kind="stable")
        ltr.t, ltr.x, ltr.y = ltr.t[order], ltr.x[order], ltr.y[order]
        l3 = L.walk(rng, ltr.end, last["x"], last["y"], x1, y1)
        if l3.end - l3.start > 50 * 60:
            l3 = L.drive(rng, ltr.end, last["x"], last["y"], x1, y1)
        return [l1, ltr, l3]
