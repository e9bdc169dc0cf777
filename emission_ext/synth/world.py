"""Assemble a synthetic La Rochelle: testers, their true days, what their phones recorded and
what the operators sent, with the ground truth tying them together.

Why: one entry point (:func:`generate_world`) that the demo, the tests, the benchmarks and the
training of the mode classifier all call. :func:`build_world` is pure (reference tables and
parameters in, a :class:`World` of DataFrames out); :func:`generate_world` only adds the loading
of the shipped reference data. The same seed gives the same world.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from importlib import resources

import numpy as np
import pandas as pd
import shapely

from .. import schema
from ..errors import ConfigError
from ..schema import DEFAULT_TZ, Mode
from . import geo
from .operators import OperatorFaults, derive_records, operator_files
from .phone import PhoneFaults, SensingParams, sense_trip
from .plans import Context, PlanParams, TesterLife
from .population import PopulationParams, make_testers
from .transit import TransitNet

#: main-mode hierarchy used to give a multi-modal trip one mode in the statistics
MAIN_MODE_ORDER = (Mode.TRAIN.value, Mode.FERRY.value, Mode.BUS.value, Mode.CARSHARE.value,
                   Mode.CAR.value, Mode.BIKESHARE.value, Mode.E_BIKE.value, Mode.BICYCLING.value,
                   Mode.WALKING.value)

#: points a tester produces per day, measured on default worlds (used to size --points worlds)
POINTS_PER_TESTER_DAY = {"android": 140.0, "ios": 240.0, "mixed": 170.0}


@dataclass(frozen=True)
class WorldParams:
    """Everything that shapes a world besides the reference data."""

    testers: int = 50
    days: int = 7
    seed: int = 0
    start: date = date(2026, 2, 2)   # a Monday of a regular week of the shipped Yélo timetable
    tz: str = DEFAULT_TZ
    platform: str = "mixed"          # android | ios | mixed
    faults: bool = True
    sorted_points: bool = False      # True: points sorted by (user_id, ts) even with faults
    population: PopulationParams = PopulationParams()
    plans: PlanParams = PlanParams()
    sensing: SensingParams = SensingParams()
    phone_faults: PhoneFaults = PhoneFaults()
    operator_faults: OperatorFaults = OperatorFaults()


@dataclass
class World:
    """A generated world (all tables are pandas DataFrames, schema-typed where a schema exists).

    Attributes
    ----------
    testers : schema ``testers`` (+ ``emission_uuid`` and generator columns)
    points : schema ``points`` (source android|ios), in upload order, with faults as configured
    motion, transitions : schema ``motion`` / ``transitions``
    records : schema ``records`` (clean truth before export faults, mapped to user_id,
        ``trip_id``/``section_id`` null) + operator columns (card_id, account_id...)
    truth_places, truth_trips, truth_sections : schema tables; trips add ``purpose, main_mode,
        phone_off, gap``; sections add ``n_points, gap`` (null | phone_off | battery_saver |
        geofence) and the bus/ferry ``route_id, gtfs_trip_id, board_stop_id, alight_stop_id``
    record_truth : ``record_id, source, user_id, trip_id, section_id, phone_missed, fault, skew_s``
    point_truth : aligned with ``points`` rows: ``trip_id, section_id`` (null for stay fixes),
        ``fault`` (none | canyon | outlier | duplicate)
    bus_stops : per bus/ferry section, every stop served: ``user_id, section_id, stop_id, seq,
        arr_ts, dep_ts, sched_arr_ts, sched_dep_ts`` (unix s)
    operator_files : file name -> DataFrame, as written to ``operator/``
    params : the WorldParams used
    """

    testers: pd.DataFrame
    points: pd.DataFrame
    motion: pd.DataFrame
    transitions: pd.DataFrame
    records: pd.DataFrame
    truth_places: pd.DataFrame
    truth_trips: pd.DataFrame
    truth_sections: pd.DataFrame
    record_truth: pd.DataFrame
    point_truth: pd.DataFrame
    bus_stops: pd.DataFrame
    operator_files: dict = field(default_factory=dict)
    params: WorldParams = WorldParams()


@dataclass(frozen=True)
class Reference:
    """Reference tables the generator uses (see :func:`load_reference`)."""

    net: TransitNet
    bike_stations: pd.DataFrame
    car_parks: pd.DataFrame
    rail: pd.DataFrame

    @classmethod
    def from_tables(cls, gtfs: dict, bike_stations: pd.DataFrame, car_parks: pd.DataFrame,
                    rail: pd.DataFrame) -> "Reference":
        """Build from reference tables (GTFS dict as from :func:`emission_ext.reference.load_gtfs`)."""
        return cls(TransitNet.from_gtfs(gtfs), bike_stations, car_parks, rail)


@functools.lru_cache(maxsize=1)
def load_reference() -> Reference:
    """Load the shipped reference data (Yélo GTFS, bike-share stations, car parks, rail lines).

    Cached: the network index takes a few seconds to build and never changes in a process."""
    from ..reference import load_bike_stations, load_car_parks, load_gtfs
    rail = pd.read_csv(str(resources.files("emission_ext.synth") / "data" / "rail_lines.csv"))
    return Reference.from_tables(load_gtfs(), load_bike_stations(), load_car_parks(), rail)


def days_for_points(points: int, testers: int = 50, platform: str = "mixed") -> int:
    """Number of days giving about ``points`` location fixes for ``testers`` testers."""
    return max(1, math.ceil(points / (testers * POINTS_PER_TESTER_DAY[platform])))


def generate_world(testers: int = 50, days: int = 7, seed: int = 0, *, start: date | str | None = None,
                   platform: str = "mixed", faults: bool = True, sorted_points: bool = False,
                   target_points: int | None = None, reference: Reference | None = None,
                   progress=None, **overrides) -> World:
    """Generate a synthetic La Rochelle world.

    Parameters
    ----------
    testers, days, seed : int
        Size and random seed (same seed, same world).
    start : date or ISO string, optional
        First day (default Monday 2026-02-02; ``2026-03-28`` spans the DST change of 03-29).
    platform : {"mixed", "android", "ios"}
    faults : bool
        False switches every fault off (phone off, gaps, outliers, canyons, duplicates,
        out-of-order fixes, skew, missing/duplicated/malformed operator rows). GPS noise stays.
    sorted_points : bool
        Keep ``points`` sorted by (user_id, ts) (duplicates still present if faults are on).
    target_points : int, optional
        Choose ``days`` to get about this many points (e.g. 1_000_000 for the benchmarks).
    reference : Reference, optional
        Reference tables (default: :func:`load_reference`).
    progress : callable, optional
        Called with 1 after each tester is simulated and again after it is sensed (2 x testers
        calls in all), e.g. a progress bar's ``update``.
    overrides :
        Any other :class:`WorldParams` field (``population=``, ``plans=``, ``sensing=``...).
    """
    if platform not in ("mixed", "android", "ios"):
        raise ConfigError(f"platform must be android, ios or mixed, not {platform!r}")
    if testers < 1 or days < 1:
        raise ConfigError("testers and days must be at least 1")
    if target_points is not None:
        days = days_for_points(target_points, testers, platform)
    if isinstance(start, str):
        try:
            start = date.fromisoformat(start)
        except ValueError:
            raise ConfigError(f"start must be an ISO date (YYYY-MM-DD), not {start!r}") from None
    p = WorldParams(testers=testers, days=days, seed=seed, platform=platform, faults=faults,
                    sorted_points=sorted_points, **({"start": start} if start else {}), **overrides)
    if not faults:
        p = replace(p, phone_faults=PhoneFaults.none(), operator_faults=OperatorFaults.none())
    return build_world(reference or load_reference(), p, progress)


def _wkb(x: np.ndarray, y: np.ndarray):
    lon, lat = geo.to_lonlat(x, y)
    if lon.size < 2:
        lon, lat = np.r_[lon, lon], np.r_[lat, lat]
    return shapely.to_wkb(shapely.linestrings(np.column_stack([lon, lat])))


def build_world(ref: Reference, p: WorldParams, progress=None) -> World:
    """Pure core of :func:`generate_world`: reference tables + parameters -> :class:`World`
    (``progress``: optional callback, see :func:`generate_world`)."""
    tick = progress or (lambda n: None)
    rng = np.random.default_rng(p.seed)
    net = ref.net
    ctx = Context.build(net, ref.bike_stations, ref.car_parks, ref.rail, p.tz)
    testers = make_testers(rng, p.testers, net.stops, ref.car_parks, p.platform, p.population)
    days = [p.start + timedelta(days=k) for k in range(p.days)]
    # ---------------------------------------------------------------- true lives
    lives = {}
    for i, t in testers.iterrows():  # per tester
        trng = np.random.default_rng([p.seed, i])
        life = TesterLife(trng, t, ctx, p.plans)
        for d in days:
            life.live(d)
        # the last stay is open; the world ends at the end of the last day
        lives[t["user_id"]] = life
        tick(1)
    # ---------------------------------------------------------------- sensing
    pts, ptruth, mot, trans, bus_rows = [], [], [], [], []
    trip_rows, sec_rows, place_rows = [], [], []
    phone_off = set()
    for i, t in testers.iterrows():
        tick(1)
        uid, plat = t["user_id"], t["platform"]
        life = lives[uid]
        srng = np.random.default_rng([p.seed, i, 7])
        trips = life.trips
        for s in life.stays:
            place_rows.append((uid, s.place_id, s.enter, s.exit, s.x, s.y, s.kind))
        stay_of = {s.place_id: s for s in life.stays}
        for k, trip in enumerate(trips):
            nxt = trips[k + 1].start if k + 1 < len(trips) else np.inf
            end_stay = stay_of[trip.end_place]
            off = srng.random() < p.phone_faults.p_phone_off_trip
            sec_ids = [f"{trip.trip_id}-S{j + 1}" for j in range(len(trip.legs))]
            n_per_leg = np.zeros(len(trip.legs), dtype=int)
            gap = "phone_off" if off else None
            if off:
                phone_off.add((uid, trip.trip_id))
            else:
                r = sense_trip(srng, plat, trip.legs, (end_stay.x, end_stay.y), nxt, p.sensing, p.phone_faults)
                leg = r["leg"]
                n_per_leg = np.bincount(leg[leg >= 0], minlength=len(trip.legs))
                n = r["ts"].size
                pts.append((np.full(n, uid, dtype=object), r["ts"], r["x"], r["y"], r["acc"], r["speed"],
                            r["heading"], np.full(n, plat, dtype=object)))
                sec_arr = np.array(sec_ids + [None], dtype=object)[np.where(leg >= 0, leg, len(sec_ids))]
                ptruth.append((np.where(leg >= 0, trip.trip_id, None), sec_arr, r["fault"]))
                m = r["motion_ts"].size
                mot.append((np.full(m, uid, dtype=object), r["motion_ts"], r["motion_act"], r["motion_conf"]))
                trans.extend((uid, ts, name, state) for ts, name, state in r["transitions"])
                if r["gap"] is not None:
                    gap = "battery_saver"
            for j, lg in enumerate(trip.legs):
                sgap = None
                if off:
                    sgap = "phone_off"
                elif n_per_leg[j] == 0:
                    sgap = "battery_saver" if gap == "battery_saver" else "geofence"
                info = lg.info
                ride = info.get("ride")
                sec_rows.append((uid, trip.trip_id, sec_ids[j], lg.start, lg.end, lg.distance, lg.end - lg.start,
                                 lg.mode, _wkb(lg.x, lg.y), int(n_per_leg[j]), sgap,
                                 ride.route_id if ride else None, ride.trip_id if ride else None,
                                 ride.board_stop if ride else None, ride.alight_stop if ride else None))
                if ride is not None:
                    ns = len(info["stop_ids"])
                    bus_rows.append((np.full(ns, uid, dtype=object), np.full(ns, sec_ids[j], dtype=object),
                                     info["stop_ids"], np.arange(ns), info["stop_arr"], info["stop_dep"],
                                     info["sched_arr"], info["sched_dep"]))
            X = np.concatenate([lg.x for lg in trip.legs])
            Y = np.concatenate([lg.y for lg in trip.legs])
            modes = [lg.mode for lg in trip.legs]
            main = next((m for m in MAIN_MODE_ORDER if m in modes), modes[0])
            trip_rows.append((uid, trip.trip_id, trip.start, trip.end, X[0], Y[0], X[-1], Y[-1],
                              trip.start_place, trip.end_place, sum(lg.distance for lg in trip.legs),
                              trip.end - trip.start, _wkb(X, Y), trip.purpose, main, off, gap))
    # ---------------------------------------------------------------- tables
    tz = p.tz

    def cat(chunks, k, dtype=None):
        return np.concatenate([c[k] for c in chunks]) if chunks else np.empty(0, dtype=dtype or float)

    lon, lat = geo.to_lonlat(cat(pts, 2), cat(pts, 3))
    points = pd.DataFrame({"user_id": cat(pts, 0, object), "ts": cat(pts, 1), "lat": lat, "lon": lon,
                           "accuracy_m": cat(pts, 4), "speed_mps": cat(pts, 5), "heading": cat(pts, 6),
                           "source": cat(pts, 7, object)})
    point_truth = pd.DataFrame({"trip_id": cat(ptruth, 0, object), "section_id": cat(ptruth, 1, object),
                                "fault": np.array(["none", "canyon", "outlier"])[cat(ptruth, 2, int).astype(int)]})
    del pts, ptruth
    points, point_truth = _order_and_fault_points(rng, points, point_truth, p)
    points["ts"] = pd.to_datetime(points["ts"].astype(float), unit="s", utc=True)
    points = schema.coerce(points, "points")
    motion = pd.DataFrame({"user_id": cat(mot, 0, object), "ts": cat(mot, 1), "activity": cat(mot, 2, object),
                           "confidence": cat(mot, 3)})
    del mot
    motion = motion.sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)
    motion["ts"] = pd.to_datetime(motion["ts"].astype(float), unit="s", utc=True)
    motion = schema.coerce(motion, "motion")
    transitions = pd.DataFrame(trans, columns=["user_id", "ts", "transition", "state"])
    transitions["ts"] = pd.to_datetime(transitions["ts"].astype(float), unit="s", utc=True)
    transitions = schema.coerce(transitions, "transitions")
    pl = pd.DataFrame(place_rows, columns=["user_id", "place_id", "enter_ts", "exit_ts", "x", "y", "kind"])
    lon, lat = geo.to_lonlat(pl["x"].to_numpy(), pl["y"].to_numpy())
    places = schema.coerce(pd.DataFrame({
        "user_id": pl["user_id"], "place_id": pl["place_id"],
        "enter_ts": pd.to_datetime(pl["enter_ts"].astype(float), unit="s", utc=True),
        "exit_ts": pd.to_datetime(pl["exit_ts"].astype(float), unit="s", utc=True),
        "lat": lat, "lon": lon, "tz": tz, "kind": pl["kind"]}), "places")
    tr = pd.DataFrame(trip_rows, columns=["user_id", "trip_id", "start_ts", "end_ts", "sx", "sy", "ex", "ey",
                                          "start_place_id", "end_place_id", "distance_m", "duration_s",
                                          "geometry", "purpose", "main_mode", "phone_off", "gap"])
    slon, slat = geo.to_lonlat(tr["sx"].to_numpy(float), tr["sy"].to_numpy(float))
    elon, elat = geo.to_lonlat(tr["ex"].to_numpy(float), tr["ey"].to_numpy(float))
    trips = schema.coerce(tr.drop(columns=["sx", "sy", "ex", "ey"]).assign(
        start_ts=pd.to_datetime(tr["start_ts"], unit="s", utc=True),
        end_ts=pd.to_datetime(tr["end_ts"], unit="s", utc=True),
        start_lat=slat, start_lon=slon, end_lat=elat, end_lon=elon, origin="gps", tz=tz), "trips")
    se = pd.DataFrame(sec_rows, columns=["user_id", "trip_id", "section_id", "start_ts", "end_ts", "distance_m",
                                         "duration_s", "mode", "geometry", "n_points", "gap", "route_id",
                                         "gtfs_trip_id", "board_stop_id", "alight_stop_id"])
    sections = schema.coerce(se.assign(
        start_ts=pd.to_datetime(se["start_ts"], unit="s", utc=True),
        end_ts=pd.to_datetime(se["end_ts"], unit="s", utc=True),
        mode_confidence=1.0), "sections")
    stops_ll = {s: (la, lo) for s, la, lo in zip(net.stops["stop_id"], net.stops["lat"], net.stops["lon"])}
    bike_ll = {s: (la, lo) for s, la, lo in zip(ref.bike_stations["station_id"], ref.bike_stations["lat"],
                                                ref.bike_stations["lon"])}
    cp = ref.car_parks.dropna(subset=["car_park_id"])
    park_ll = {s: (la, lo) for s, la, lo in zip(cp["car_park_id"], cp["lat"], cp["lon"])}
    orng = np.random.default_rng([p.seed, 99])
    records, record_truth = derive_records(orng, testers, {u: l.trips for u, l in lives.items()}, phone_off,
                                           stops_ll, bike_ll, park_ll)
    files, flog = operator_files(orng, records, testers, p.operator_faults, tz, p.start)
    record_truth = record_truth.merge(flog[["record_id", "source", "fault", "skew_s"]],
                                      on=["record_id", "source"], how="left")
    bus_cols = ["user_id", "section_id", "stop_id", "seq", "arr_ts", "dep_ts", "sched_arr_ts", "sched_dep_ts"]
    bus_stops = pd.DataFrame({c: cat(bus_rows, k, object if k < 3 else None) for k, c in enumerate(bus_cols)})
    testers_out = schema.coerce(testers, "testers")
    return World(testers_out, points, motion, transitions, records, places, trips, sections, record_truth,
                 point_truth, bus_stops, files, p)


def _order_and_fault_points(rng, points: pd.DataFrame, truth: pd.DataFrame, p: WorldParams):
    """Sort by (user, ts), then add duplicates and out-of-order swaps as configured (one
    reindexing of each frame)."""
    if points.empty:
        return points, truth
    idx = np.lexsort((points["ts"].to_numpy(), points["user_id"].to_numpy()))
    f = p.phone_faults
    n = idx.size
    is_dup = np.zeros(n, dtype=bool)
    dup = np.flatnonzero(rng.random(n) < f.p_duplicate)
    if dup.size:
        pos = np.sort(np.concatenate([np.arange(n), dup]), kind="stable")
        idx = idx[pos]
        is_dup = np.zeros(idx.size, dtype=bool)
        is_dup[1:] = pos[1:] == pos[:-1]
        n = idx.size
    if not p.sorted_points and f.p_out_of_order > 0:
        users = points["user_id"].to_numpy()[idx]
        sw = np.flatnonzero(rng.random(n - 1) < f.p_out_of_order)
        sw = sw[users[sw] == users[sw + 1]]
        sw = sw[np.r_[True, np.diff(sw) > 1]] if sw.size else sw   # no overlapping swaps
        order = np.arange(n)
        order[sw], order[sw + 1] = sw + 1, sw
        idx, is_dup = idx[order], is_dup[order]
    points = points.iloc[idx].reset_index(drop=True)
    truth = truth.iloc[idx].reset_index(drop=True)
    if is_dup.any():
        truth.loc[is_dup, "fault"] = "duplicate"
    return points, truth
