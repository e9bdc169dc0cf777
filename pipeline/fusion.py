"""Fusion: attach operator records (Yélo, parking) to GPS sections and let them refine modes.

Why: a bus validation, a bike-share rental, a car-share booking or a car-park entry says,
with operator certainty, how a tester travelled at a given time and place; the phone knows
where they went but only guesses the mode. One matcher serves every source: each record is
turned into one or two *events* (a time, a place, and which end of a section it should sit
at), and events are joined to sections with a vectorised interval join (``searchsorted`` over
per-user sorted section times, no Python loop over records or sections). The best candidate
per event minimises a cost mixing the time residual beyond the clock-skew tolerance, the
distance from the section's end to the stop/station/car park, and a penalty when the section
is confidently of an incompatible mode.

Then, in order:

1. **Split** -- an event well inside a section (more than ``min_split_s`` + skew from its end,
   and far from that end in space) shows a mode change the GPS missed; the section is cut at
   the event (geometry at the vertex nearest the record's place) and matching runs again on
   the split sections.
2. **Modes** -- each matched section takes the record's mode (``yelo_bus`` BUS, ``yelo_boat``
   FERRY, ``yelo_bike`` BIKESHARE, ``yelo_car`` CARSHARE, ``parking`` confirms CAR) with
   ``mode_source`` ``yelo``/``parking`` and confidence 1, unless the section's mode is of an
   incompatible family (foot, bike, road...) and was confident or user-confirmed: then it is
   left alone and a *conflict* is reported for review. Confident means ``mode_confidence >=
   confident`` on a section of at least ``thin_s`` and ``thin_fixes`` fixes, and the record's
   own interval (rental or booking, a shuttle's scheduled crossing, the ride or drive the
   phone's points show at a validation or car-park gate) covering at least ``lock_cover`` of
   the section as classified: a shorter ride inside it is a mode change the GPS missed, so
   the section is split there (step 1) and only the record's part takes its mode
   (:func:`_locked`, the one rule every matching step uses).
3. **Record-only trips** -- records whose time overlaps no GPS trip (the phone recorded
   nothing) become trips with ``origin="record"`` (validations within ``transfer_s`` chained
   into one trip). Records during a GPS trip that match none of its sections are conflicts.

Pure: tables in, tables out; parameters in :class:`FusionParams`. Units: seconds, metres.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emission_ext import schema
from emission_ext.schema import Mode

#: Mode given by each record source.
SOURCE_MODE: dict[str, str] = {
    "yelo_bus": Mode.BUS.value, "yelo_boat": Mode.FERRY.value, "yelo_bike": Mode.BIKESHARE.value,
    "yelo_car": Mode.CARSHARE.value, "parking": Mode.CAR.value,
}
#: ``mode_source`` written for each record source.
SOURCE_MODE_SOURCE: dict[str, str] = {
    "yelo_bus": "yelo", "yelo_boat": "yelo", "yelo_bike": "yelo", "yelo_car": "yelo", "parking": "parking",
}
#: Physical family of each mode; UNKNOWN is compatible with everything.
FAMILY: dict[str, str] = {
    "WALKING": "foot", "BICYCLING": "bike", "E_BIKE": "bike", "BIKESHARE": "bike", "BUS": "road",
    "CAR": "road", "CARSHARE": "road", "TRAM": "rail", "TRAIN": "rail", "SUBWAY": "rail",
    "FERRY": "water", "AIR": "air", "UNKNOWN": "any",
}
#: Families a record's mode may plausibly have been classified as (a boat's speed looks like a
#: bike or a slow car to a classifier; a bus like a car or a tram).
COMPATIBLE: dict[str, frozenset[str]] = {
    "BUS": frozenset({"road", "rail", "any"}),
    "FERRY": frozenset({"water", "road", "bike", "rail", "any"}),
    "BIKESHARE": frozenset({"bike", "any"}),
    "CARSHARE": frozenset({"road", "any"}),
    "CAR": frozenset({"road", "any"}),
}

CONFLICT_COLUMNS = ("user_id", "record_id", "source", "trip_id", "section_id", "kind", "record_mode",
                    "section_mode", "mode_confidence", "detail")


@dataclass(frozen=True)
class FusionParams:
    """Tolerances of the matcher.

    Attributes
    ----------
    skew_s : float
        Clock skew tolerated between operator and phone clocks, seconds (no cost within it).
    gap_s : float
        How far beyond the skew an event may be from its section end (GPS gaps, late
        segmentation), seconds.
    near_m : float
        An event within this distance of a section end is "at" it, metres.
    far_m : float
        An event farther than this from the section end (when the section end is known) never
        matches, metres.
    confident : float
        ``mode_confidence`` from which an incompatible section is a conflict, not overridden.
    min_split_s : float
        Minimum duration of each part when a section is split at a record, seconds.
    transfer_s : float
        Unmatched validations of one tester this close in time form one record-only trip.
    incompatible_penalty : float
        Cost added to a candidate of an incompatible, confident mode (prefer a compatible one).
    mismatch_penalty : float
        Smaller cost added to a candidate of an incompatible but unsure mode (a tie-breaker
        between a short walk to the station and the ride itself).
    mid_cost : float
        Cost of an event well inside a section (more than ``skew_s`` from both ends) whose
        place lies within ``near_m`` of the section's path: the GPS missed a mode change there.
    min_offset_events : int
        An operator's clock offset is estimated (median over clear matches) and corrected when
        at least this many of its events match clearly; 0 disables the correction.
    merge_ride_pieces : bool
        Merge a validated section with the following motorised/unknown sections of its trip
        (a bus or boat ride the GPS cut into pieces) up to the next section of another family.
    detour : float
        Ratio of travelled to straight-line distance for record-only sections without an
        operator distance.
    gap_speed_mps : float
        When an event is more than ``skew_s`` from its section end (a GPS gap), the allowed
        distance grows by this speed times the extra time, m/s.
    land_m : float
        A shuttle's scheduled landing more than ``min_split_s`` before its section's end cuts
        the section there when that end lies farther than this from the landing stop (the
        walk after the crossing), metres.
    still_mps : float
        A section longer than ``min_split_s + skew_s`` whose distance over duration is below
        this speed saw no movement (a GPS gap bridged by the segmentation): a record on it
        makes a record-only trip instead, m/s.
    ride_mps : float
        With the phone's points: a move between two consecutive points at least this fast is a
        vehicle moving (a bus validation's ride, a drive into or out of a car park), m/s.
    ride_stop_s : float
        Slower stretches up to this long inside a ride are stops (bus stops, lights), seconds.
    min_ride_m : float
        A ride moves at least this far in a straight line (one jumpy fix is not a ride), metres.
    settle_s : float
        A ride's end cuts a section only when the tester then moves slower than ``walk_mps``
        over this long (the walk after alighting, not a stop), and its start only when they
        did so before it (the wait at the stop), seconds.
    walk_mps : float
        Straight-line speed below which the tester is walking or waiting, m/s.
    wait_mps : float
        Straight-line speed below which the tester waits (at a stop; also when the phone
        paused recording where it stood): a ride ends there whatever follows, m/s.
    min_cut_s : float
        Shortest part left by a cut at a ride's start or end seen in the phone's points (a 1-3
        minute bus ride the segmentation merged with the walk after it), seconds.
    blind_s : float
        A Yélo record after whose moment the phone recorded at most one point during this long
        (or the rental's length when shorter) was not seen by the phone: it makes a record-only
        trip, seconds.
    alight_m : float
        With the stops of each GTFS route (``route_stops``): the end of a bus ride on a known
        line cuts only when a stop of that line lies within this distance of where the speed
        dropped (else it was a traffic stop), and the part boundary is placed at that stop,
        metres.
    after_ride_confidence : float
        ``mode_confidence`` given to the part after a ride's end when it is made WALKING (it
        is slower than ``walk_mps`` on average; the section's mode came from the ride).
    lock_cover : float
        A confident incompatible section is a conflict only when the record's own interval
        (rental or booking time, a shuttle's scheduled crossing, the ride or drive the phone's
        points show for a validation or car-park entry/exit) covers at least this share of the
        section as classified (before any split); a shorter interval is a mode change the GPS
        missed inside it: the section is split there. Unknown interval: the whole section.
    thin_s : float
        A section shorter than this (seconds) carries too little evidence for its calibrated
        confidence to lock it against a record.
    thin_fixes : int
        Likewise a section with fewer of the phone's fixes than this (when points are given).
    """

    skew_s: float = 180.0
    gap_s: float = 900.0
    near_m: float = 300.0
    far_m: float = 2000.0
    confident: float = 0.8
    min_split_s: float = 120.0
    transfer_s: float = 3600.0
    incompatible_penalty: float = 2.0
    mismatch_penalty: float = 0.15
    mid_cost: float = 0.5
    min_offset_events: int = 5
    merge_ride_pieces: bool = True
    detour: float = 1.3
    gap_speed_mps: float = 15.0
    land_m: float = 100.0
    still_mps: float = 0.1
    ride_mps: float = 3.0
    ride_stop_s: float = 90.0
    min_ride_m: float = 120.0
    settle_s: float = 120.0
    walk_mps: float = 2.0
    wait_mps: float = 0.5
    min_cut_s: float = 20.0
    blind_s: float = 600.0
    alight_m: float = 150.0
    after_ride_confidence: float = 0.6
    lock_cover: float = 0.5
    thin_s: float = 60.0
    thin_fixes: int = 3


@dataclass
class FusionResult:
    """Output of :func:`fuse`.

    Attributes
    ----------
    trips : DataFrame
        Schema ``trips``: the input trips (``origin`` "gps") plus record-only trips
        (``origin`` "record").
    sections : DataFrame
        Schema ``sections``, split where a record showed a missed mode change (parts get ids
        ``<section_id>.1``, ``.2``...), modes refined from the records, plus the sections of
        record-only trips.
    records : DataFrame
        Schema ``records`` with ``trip_id``/``section_id`` of the match (null when unmatched).
    conflicts : DataFrame
        One row per record to review: ``user_id, record_id, source, trip_id, section_id,
        kind, record_mode, section_mode, mode_confidence, detail``; ``kind`` is
        ``mode_conflict`` (incompatible confident/user mode), ``no_section`` (during a GPS
        trip but near none of its sections) or ``records_disagree`` (two records give one
        section different modes).
    clock_offsets : dict
        Estimated clock offset of each record source, seconds (operator clock minus phone
        clock); sources with too few clear matches are absent and not corrected.
    """

    trips: pd.DataFrame
    sections: pd.DataFrame
    records: pd.DataFrame
    conflicts: pd.DataFrame
    clock_offsets: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Counts for a printed summary."""
        r = self.records
        origin = self.trips["origin"] if "origin" in self.trips else pd.Series(dtype=object)
        rec_only_trips = set(self.trips.loc[origin == "record", "trip_id"])
        matched = r["section_id"].notna()
        return {
            "records": int(len(r)),
            "matched_gps": int((matched & ~r["trip_id"].isin(rec_only_trips)).sum()),
            "record_only_trips": int(len(rec_only_trips)),
            "records_in_record_only_trips": int(r["trip_id"].isin(rec_only_trips).sum()),
            "unmatched": int((~matched).sum()),
            "conflicts": int(len(self.conflicts)),
            "sections_split": int(self.sections["section_id"].str.contains(r"\.\d+$", regex=True).sum())
            if len(self.sections) else 0,
        }


# --------------------------------------------------------------------------- geometry helpers

_R = 6_371_008.8


def haversine_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres between arrays of WGS84 points (NaN propagates)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * _R * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _section_ends(sections: pd.DataFrame, trips: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Start and end (lat, lon) of each section: from its geometry when present, else from its
    trip's ends for the first/last section of the trip, else NaN."""
    n = len(sections)
    lat0 = np.full(n, np.nan)
    lon0 = np.full(n, np.nan)
    lat1 = np.full(n, np.nan)
    lon1 = np.full(n, np.nan)
    if "geometry" in sections and n:
        import shapely

        g = sections["geometry"].to_numpy(dtype=object)
        has = np.array([isinstance(x, (bytes, bytearray, memoryview)) and len(x) > 0 for x in g], dtype=bool) \
            if g.dtype == object else np.zeros(n, bool)
        if has.any():
            geoms = shapely.from_wkb(g[has], on_invalid="ignore")
            ok = ~shapely.is_empty(geoms) & (shapely.get_num_coordinates(geoms) > 0)
            p0 = shapely.get_point(geoms, 0)
            p1 = shapely.get_point(geoms, -1)
            idx = np.flatnonzero(has)[ok]
            lon0[idx], lat0[idx] = shapely.get_x(p0[ok]), shapely.get_y(p0[ok])
            lon1[idx], lat1[idx] = shapely.get_x(p1[ok]), shapely.get_y(p1[ok])
    if len(trips) and n:
        t = trips.set_index(["user_id", "trip_id"])
        key = pd.MultiIndex.from_arrays([sections["user_id"].to_numpy(), sections["trip_id"].to_numpy()])
        pos = t.index.get_indexer(key)
        found = pos >= 0
        ts0 = schema.to_unix(sections["start_ts"])
        ts1 = schema.to_unix(sections["end_ts"])
        tt0 = np.where(found, schema.to_unix(t["start_ts"])[np.maximum(pos, 0)], np.nan)
        tt1 = np.where(found, schema.to_unix(t["end_ts"])[np.maximum(pos, 0)], np.nan)
        first = found & (np.abs(ts0 - tt0) < 1.0) & np.isnan(lat0)
        last = found & (np.abs(ts1 - tt1) < 1.0) & np.isnan(lat1)
        p = np.maximum(pos, 0)
        lat0[first] = t["start_lat"].to_numpy()[p][first]
        lon0[first] = t["start_lon"].to_numpy()[p][first]
        lat1[last] = t["end_lat"].to_numpy()[p][last]
        lon1[last] = t["end_lon"].to_numpy()[p][last]
    return lat0, lon0, lat1, lon1


def line_distance_m(geometry: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Distance in metres from each point to the LineString (WKB) of the same row.

    Local equirectangular projection around each point (exact enough within a few km);
    vectorised over all segments of all rows. NaN where the geometry is missing."""
    import shapely

    n = len(geometry)
    out = np.full(n, np.nan)
    has = np.array([isinstance(x, (bytes, bytearray, memoryview)) and len(x) > 0 for x in geometry], dtype=bool)
    if not has.any():
        return out
    geoms = shapely.from_wkb(geometry[has], on_invalid="ignore")
    coords, gi = shapely.get_coordinates(geoms, return_index=True)
    if not len(coords):
        return out
    la, lo = np.asarray(lat, dtype="float64")[has][gi], np.asarray(lon, dtype="float64")[has][gi]
    ky = np.pi / 180.0 * _R
    x = (coords[:, 0] - lo) * np.cos(np.radians(la)) * ky
    y = (coords[:, 1] - la) * ky
    pt = np.hypot(x, y)  # vertex distances (single-vertex lines)
    same = gi[1:] == gi[:-1]
    x0, y0, x1, y1 = x[:-1][same], y[:-1][same], x[1:][same], y[1:][same]
    g = np.concatenate([gi[:-1][same], gi])
    dx, dy = x1 - x0, y1 - y0
    l2 = dx * dx + dy * dy
    t = np.clip(-(x0 * dx + y0 * dy) / np.where(l2 > 0, l2, 1.0), 0.0, 1.0)
    d = np.concatenate([np.hypot(x0 + t * dx, y0 + t * dy), pt])
    order = np.argsort(g, kind="stable")
    g, d = g[order], d[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    dmin = np.full(len(geoms), np.nan)
    dmin[g[starts]] = np.minimum.reduceat(d, starts)
    out[np.flatnonzero(has)] = dmin
    return out


# --------------------------------------------------------------------------- events

def _events(records: pd.DataFrame) -> pd.DataFrame:
    """One or two events per record: ``rec`` (row position), ``t`` (unix s), ``lat``, ``lon``,
    ``role`` (0 = should sit at a section's start, 1 = at its end), ``primary`` (bool), and
    ``r0``/``r1`` the record's interval (``r1`` NaN unless a rental or booking).

    validation: boarding (start role), and, on a shuttle route with a known other terminal
    and crossing time (extra column ``expected_ride_s``), the landing (end role).
    rental/booking: start (start role, primary) and end (end role). parking: entry (end role:
    a car section arrives, primary) and exit (start role: a car section leaves).
    """
    src = records["source"].to_numpy(dtype=object)
    t0 = schema.to_unix(records["start_ts"])
    t1 = schema.to_unix(records["end_ts"]) if "end_ts" in records else np.full(len(records), np.nan)
    la0 = records["start_lat"].to_numpy(dtype="float64", na_value=np.nan)
    lo0 = records["start_lon"].to_numpy(dtype="float64", na_value=np.nan)
    la1 = records["end_lat"].to_numpy(dtype="float64", na_value=np.nan)
    lo1 = records["end_lon"].to_numpy(dtype="float64", na_value=np.nan)
    pos = np.arange(len(records))
    parking = src == "parking"
    if "expected_ride_s" in records:  # a shuttle's landing: the other terminal, on schedule
        ride = pd.to_numeric(records["expected_ride_s"], errors="coerce").to_numpy(dtype="float64")
        land = np.isnan(t1) & ~np.isnan(ride) & ~np.isnan(la1) & (records["kind"].to_numpy(dtype=object) == "validation")
        t1 = np.where(land, t0 + ride, t1)
    interval = np.isin(src, ["yelo_bike", "yelo_car"]) & ~np.isnan(t1)
    r1 = np.where(interval, t1, np.nan)
    a = pd.DataFrame({"rec": pos, "t": t0, "lat": la0, "lon": lo0,
                      "role": np.where(parking, 1, 0), "primary": True, "r0": t0, "r1": r1})
    has_end = ~np.isnan(t1)
    b = pd.DataFrame({"rec": pos[has_end], "t": t1[has_end], "r0": t0[has_end], "r1": r1[has_end],
                      "lat": np.where(np.isnan(la1), la0, la1)[has_end],
                      "lon": np.where(np.isnan(lo1), lo0, lo1)[has_end],
                      "role": np.where(parking, 0, 1)[has_end], "primary": False})
    return pd.concat([a, b], ignore_index=True)


def _compat_matrix(rec_modes: np.ndarray, sec_modes: np.ndarray) -> np.ndarray:
    """True where a section mode is compatible with a record mode (pairwise arrays)."""
    fam = pd.Series(sec_modes).map(FAMILY).fillna("any").to_numpy(dtype=object)
    out = np.ones(len(rec_modes), dtype=bool)
    for m, fams in COMPATIBLE.items():  # five record modes: a loop over the vocabulary, not rows
        sel = rec_modes == m
        if sel.any():
            out[sel] = np.isin(fam[sel], list(fams))
    return out


@dataclass
class _Sec:
    """Sections as sorted arrays for the interval join."""

    frame: pd.DataFrame  # sorted by user, start
    ucode: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    key0: np.ndarray
    key1max: np.ndarray
    lat0: np.ndarray
    lon0: np.ndarray
    lat1: np.ndarray
    lon1: np.ndarray
    mode: np.ndarray
    conf: np.ndarray
    user_set: np.ndarray  # mode_source == user
    o0: np.ndarray | None = None  # span of the section as classified (a split part keeps its parent's), s
    o1: np.ndarray | None = None
    nfix: np.ndarray | None = None  # the phone's fixes within the section (None: no points given)


_SPAN = 1e10  # seconds between two users' time axes in the combined sort key


def _prepare_sections(sections: pd.DataFrame, ends, users: pd.Index, tbase: float) -> _Sec:
    lat0, lon0, lat1, lon1 = ends
    df = sections.copy()
    df["_lat0"], df["_lon0"], df["_lat1"], df["_lon1"] = lat0, lon0, lat1, lon1
    df["_after_ride"] = False  # set on the part after a ride's end (never merged into the ride)
    df["_u"] = users.get_indexer(df["user_id"].to_numpy())
    df["_t0"] = schema.to_unix(df["start_ts"]) - tbase
    df["_t1"] = schema.to_unix(df["end_ts"]) - tbase
    df["_o0"], df["_o1"] = df["_t0"], df["_t1"]  # the span the classifier saw (parts inherit it)
    df = df.sort_values(["_u", "_t0", "_t1"], kind="stable").reset_index(drop=True)
    u = df["_u"].to_numpy().astype("float64")
    t0 = df["_t0"].to_numpy()
    t1 = df["_t1"].to_numpy()
    key0 = u * _SPAN + t0
    key1 = u * _SPAN + t1
    key1max = np.maximum.accumulate(key1) if len(key1) else key1  # users are separated by _SPAN
    conf = df["mode_confidence"].to_numpy(dtype="float64", na_value=np.nan) if "mode_confidence" in df \
        else np.full(len(df), np.nan)
    ms = df["mode_source"].to_numpy(dtype=object) if "mode_source" in df else np.full(len(df), None, dtype=object)
    return _Sec(df, u, t0, t1, key0, key1max, df["_lat0"].to_numpy(), df["_lon0"].to_numpy(),
                df["_lat1"].to_numpy(), df["_lon1"].to_numpy(), df["mode"].to_numpy(dtype=object),
                conf, ms == "user", df["_o0"].to_numpy(), df["_o1"].to_numpy())


def _with_fixes(sec: _Sec, tr: "_Track | None") -> _Sec:
    """Fill ``sec.nfix``: how many of the phone's fixes lie within each section."""
    if tr is not None and len(sec.t0):
        lo = np.searchsorted(tr.key, sec.key0, side="left")
        hi = np.searchsorted(tr.key, sec.ucode * _SPAN + sec.t1, side="right")
        sec.nfix = hi - lo
    return sec


def _locked(sec: _Sec, s_idx: np.ndarray, compat: np.ndarray, i0: np.ndarray | None, i1: np.ndarray | None,
            p: FusionParams) -> np.ndarray:
    """The one rule for a record against a section it does not fit: ``True`` where the section
    is user-set, or confident (``mode_confidence >= confident``, not thin: at least ``thin_s``
    long and ``thin_fixes`` fixes) and the record's interval ``[i0, i1]`` (s relative; NaN:
    unknown, taken as the whole section) covers at least ``lock_cover`` of the section as the
    classifier saw it. Otherwise the record overrides (and may split) the section."""
    s = np.asarray(s_idx, dtype=int)
    thin = (sec.t1[s] - sec.t0[s]) < p.thin_s
    if sec.nfix is not None:
        thin |= sec.nfix[s] < p.thin_fixes
    sure = (sec.conf[s] >= p.confident) & ~thin
    if i0 is not None and sec.o0 is not None:
        o0, o1 = sec.o0[s], sec.o1[s]
        with np.errstate(invalid="ignore"):
            cover = (np.minimum(i1, o1) - np.maximum(i0, o0)) / np.maximum(o1 - o0, 1.0)
        # a ride inside the section, short of most of it: a mode change the GPS missed. NaN
        # (unknown interval) and no overlap at all (the ride is elsewhere) keep the lock
        sure &= ~((cover > 0.0) & (cover < p.lock_cover))
    return ~compat & (sure | sec.user_set[s])


def _ev_interval(ev: pd.DataFrame, idx: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    if "i0" not in ev:
        return None, None
    return ev["i0"].to_numpy()[idx], ev["i1"].to_numpy()[idx]


def _match_events(ev: pd.DataFrame, ev_u: np.ndarray, ev_mode: np.ndarray, sec: _Sec,
                  p: FusionParams) -> pd.DataFrame:
    """Best section per event (vectorised interval join). Returns, per event, ``sec`` (row of
    ``sec.frame`` or -1), ``cost``, ``dt`` (s from the section's role end), ``dd`` (m),
    ``compatible`` and ``locked`` (confident or user-set incompatible section)."""
    n = len(ev)
    out = pd.DataFrame({"sec": np.full(n, -1), "cost": np.full(n, np.inf), "dt": np.nan, "dd": np.nan,
                        "compatible": True, "locked": False}, index=ev.index)
    if n == 0 or len(sec.key0) == 0:
        return out
    w = p.skew_s + p.gap_s
    t = ev["t"].to_numpy()
    key = ev_u.astype("float64") * _SPAN + t
    valid = (ev_u >= 0) & ~np.isnan(t)
    lo = np.searchsorted(sec.key1max, key - w, side="left")
    hi = np.searchsorted(sec.key0, key + w, side="right")
    cnt = np.where(valid, np.maximum(hi - lo, 0), 0)
    total = int(cnt.sum())
    if total == 0:
        return out
    e_idx = np.repeat(np.arange(n), cnt)
    start = np.repeat(lo, cnt)
    offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    s_idx = start + offs
    same = sec.ucode[s_idx] == ev_u[e_idx]
    e_idx, s_idx = e_idx[same], s_idx[same]
    role = ev["role"].to_numpy()[e_idx]
    te = t[e_idx]
    s0, s1 = sec.t0[s_idx], sec.t1[s_idx]
    # outside the (skew-widened) span of the section: only allowed within gap_s
    outside = np.maximum(0.0, np.maximum(s0 - te, te - s1))
    ok = outside <= w
    # a rental or booking must overlap the section in time (skew-widened): its end alone far
    # after a missed ride must not pull it onto the next trip
    ri0 = ev["r0"].to_numpy()[e_idx]
    ri1 = ev["r1"].to_numpy()[e_idx]
    interval = ~np.isnan(ri1)
    ok &= ~interval | ((s1 >= ri0 - p.skew_s) & (s0 <= ri1 + p.skew_s))
    t_role = np.where(role == 0, s0, s1)
    dt = te - t_role
    slat = np.where(role == 0, sec.lat0[s_idx], sec.lat1[s_idx])
    slon = np.where(role == 0, sec.lon0[s_idx], sec.lon1[s_idx])
    elat = ev["lat"].to_numpy()[e_idx]
    elon = ev["lon"].to_numpy()[e_idx]
    dd = haversine_m(elat, elon, slat, slon)
    # a section end seen late (GPS gap) may be farther from the place: allow the distance a
    # vehicle covers in the extra time
    allow = p.far_m + p.gap_speed_mps * np.maximum(0.0, np.abs(dt) - p.skew_s)
    ok &= ~(dd > allow)  # NaN (unknown end or place) is not a mismatch
    compat = _compat_matrix(ev_mode[e_idx], sec.mode[s_idx])
    locked = _locked(sec, s_idx, compat, *_ev_interval(ev, e_idx), p)
    # an event the phone saw (its time moved to where a ride starts or ends in the points): the
    # time is exact, the few hundred metres from the car park or stop to the fix are not evidence
    dd_cost = np.where(ev["seen"].to_numpy(dtype=bool)[e_idx], np.maximum(dd - p.near_m, 0.0), dd) \
        if "seen" in ev else dd
    dd_term = np.where(np.isnan(dd), 0.5, np.minimum(dd_cost, allow) / allow)
    cost = (np.maximum(0.0, np.abs(dt) - p.skew_s) / p.gap_s + 0.25 * np.abs(dt) / (p.skew_s + p.gap_s)
            + dd_term)
    cost = np.where(ok, cost, np.inf)
    # well inside a section and on its path: a mode change the GPS missed (split later)
    mid = (te - s0 > p.skew_s) & (s1 - te > p.skew_s)
    if mid.any() and "geometry" in sec.frame:
        mi = np.flatnonzero(mid)
        dl = line_distance_m(sec.frame["geometry"].to_numpy(dtype=object)[s_idx[mi]], elat[mi], elon[mi])
        on_path = dl <= p.near_m
        cost_mid = np.full(len(cost), np.inf)
        cost_mid[mi[on_path]] = p.mid_cost + dl[on_path] / p.far_m
        cost = np.minimum(cost, cost_mid)
        ok |= np.isfinite(cost_mid)
    # the phone's own activity hint said walking: as unlikely a place for a ride as an unsure
    # incompatible mode (every record is a ride, a rental or a drive)
    walked = np.zeros(len(s_idx), bool)
    if "sensed_mode" in sec.frame:
        walked = sec.frame["sensed_mode"].to_numpy(dtype=object)[s_idx] == "WALKING"
    # the part after a ride the phone saw end is the walk or wait after it
    walked |= sec.frame["_after_ride"].to_numpy(dtype=bool)[s_idx]
    cost = cost + np.where(locked, p.incompatible_penalty,
                           np.where(compat & ~walked, 0.0, p.mismatch_penalty))
    cand = pd.DataFrame({"e": e_idx[ok], "sec": s_idx[ok], "cost": cost[ok], "dt": dt[ok], "dd": dd[ok],
                         "compatible": compat[ok], "locked": locked[ok]})
    cand = cand.sort_values(["e", "cost"], kind="stable").drop_duplicates("e")
    pos = cand["e"].to_numpy()
    for c in ("sec", "cost", "dt", "dd", "compatible", "locked"):
        col = out[c].to_numpy().copy()
        col[pos] = cand[c].to_numpy()
        out[c] = col
    return out


def _landing_with_boarding(ev: pd.DataFrame, ev_mode: np.ndarray, m: pd.DataFrame, sec: _Sec,
                           p: FusionParams) -> pd.DataFrame:
    """A shuttle's landing that falls during the section its boarding matched belongs to that
    section (the crossing goes on in it), not to the end of another section nearby in time."""
    role = ev["role"].to_numpy()
    prim = ev["primary"].to_numpy()
    rec = ev["rec"].to_numpy()
    land = np.flatnonzero((role == 1) & ~prim & np.isnan(ev["r1"].to_numpy()))
    if len(land) == 0 or len(sec.t0) == 0:
        return m
    board_sec = np.full(int(rec.max()) + 1, -1)
    b = (role == 0) & prim & (m["sec"].to_numpy() >= 0)
    board_sec[rec[b]] = m["sec"].to_numpy()[b]
    bs = board_sec[rec[land]]
    t = ev["t"].to_numpy()[land]
    sb = np.maximum(bs, 0)
    ok = (bs >= 0) & (m["sec"].to_numpy()[land] != bs) & (t > sec.t0[sb]) & (t < sec.t1[sb])
    if not ok.any():
        return m
    i, s_ = land[ok], bs[ok]
    m = m.copy()
    col = {c: m[c].to_numpy().copy() for c in ("sec", "dt", "dd")}
    col["sec"][i] = s_
    col["dt"][i] = ev["t"].to_numpy()[i] - sec.t1[s_]
    col["dd"][i] = haversine_m(ev["lat"].to_numpy()[i], ev["lon"].to_numpy()[i], sec.lat1[s_], sec.lon1[s_])
    compat = _compat_matrix(ev_mode[i], sec.mode[s_])
    col["compatible"] = m["compatible"].to_numpy().copy()
    col["compatible"][i] = compat
    col["locked"] = m["locked"].to_numpy().copy()
    col["locked"][i] = _locked(sec, s_, compat, *_ev_interval(ev, i), p)
    for c, v in col.items():
        m[c] = v
    return m


# --------------------------------------------------------------------------- the phone's points

@dataclass
class _Track:
    """The phone's points as arrays sorted by (user, time), times relative to ``tbase``."""

    u: np.ndarray
    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    key: np.ndarray


def _track(points: pd.DataFrame | None, users: pd.Index, tbase: float) -> _Track | None:
    """Arrays of the points of the known users (``None`` without points)."""
    if points is None or not len(points):
        return None
    u = users.get_indexer(points["user_id"].to_numpy(dtype=object))
    t = schema.to_unix(points["ts"]) - tbase
    lat = points["lat"].to_numpy(dtype="float64", na_value=np.nan)
    lon = points["lon"].to_numpy(dtype="float64", na_value=np.nan)
    ok = (u >= 0) & ~np.isnan(t) & ~np.isnan(lat) & ~np.isnan(lon)
    u, t, lat, lon = u[ok], t[ok], lat[ok], lon[ok]
    order = np.lexsort((t, u))
    u, t, lat, lon = u[order], t[order], lat[order], lon[order]
    return _Track(u, t, lat, lon, u.astype("float64") * _SPAN + t)


def _ride_runs(tr: _Track, p: FusionParams) -> dict[str, np.ndarray]:
    """Vehicle rides in the phone's points: runs of moves at least ``ride_mps`` fast, stops up
    to ``ride_stop_s`` bridged, at least ``min_ride_m`` from first to last point.

    Returns arrays per run: ``a``/``b`` (first/last point index), ``key_a``/``key_b`` (sort
    keys of their times), ``calm_before``/``calm_after`` (the tester moved slower than
    ``walk_mps`` over ``settle_s`` before the start / after the end, or the phone saw nothing
    then) and ``still_after`` (slower than ``wait_mps`` after the end: waiting)."""
    empty = {k: np.zeros(0, dtype=int if k in ("a", "b") else (float if k.startswith("key") else bool))
             for k in ("a", "b", "key_a", "key_b", "calm_before", "calm_after", "still_after")}
    n = len(tr.t)
    if n < 2:
        return empty
    dt = np.diff(tr.t)
    d = haversine_m(tr.lat[:-1], tr.lon[:-1], tr.lat[1:], tr.lon[1:])
    fast = (tr.u[1:] == tr.u[:-1]) & (d >= p.ride_mps * np.maximum(dt, 1.0)) & (dt <= p.settle_s + p.ride_stop_s)
    f = np.flatnonzero(fast)  # move f goes from point f to point f + 1
    if not len(f):
        return empty
    brk = np.r_[True, (tr.u[f[1:]] != tr.u[f[:-1]]) | (tr.t[f[1:]] - tr.t[f[:-1] + 1] > p.ride_stop_s)]
    a = f[brk]
    b = f[np.r_[brk[1:], True]] + 1
    keep = haversine_m(tr.lat[a], tr.lon[a], tr.lat[b], tr.lon[b]) >= p.min_ride_m
    a, b = a[keep], b[keep]
    # the last point at most settle_s after the end / the first at most settle_s before the
    # start; when the phone recorded nothing then, the next / previous point whenever it came
    # (a GPS gap during the ride is not a stop: the tester was far away at the next fix)
    k = np.searchsorted(tr.key, tr.key[b] + p.settle_s, side="right") - 1
    k = np.where((k == b) & (b + 1 < n), b + 1, k)
    k = np.where(tr.u[k] == tr.u[b], k, b)
    span = tr.t[k] - tr.t[b]
    v_after = np.where(span <= 0, 0.0, haversine_m(tr.lat[b], tr.lon[b], tr.lat[k], tr.lon[k])
                       / np.maximum(span, 1.0))
    j = np.searchsorted(tr.key, tr.key[a] - p.settle_s, side="left")
    j = np.where((j == a) & (a > 0), a - 1, j)
    j = np.where(tr.u[j] == tr.u[a], j, a)
    span = tr.t[a] - tr.t[j]
    calm_before = (span <= 0) | (haversine_m(tr.lat[j], tr.lon[j], tr.lat[a], tr.lon[a])
                                 < p.walk_mps * np.maximum(span, 1.0))
    return {"a": a, "b": b, "key_a": tr.key[a], "key_b": tr.key[b],
            "calm_before": calm_before, "calm_after": v_after < p.walk_mps, "still_after": v_after < p.wait_mps}


def _nearest_run(keys: np.ndarray, lat: np.ndarray, lon: np.ndarray, run_keys: np.ndarray,
                 run_lat: np.ndarray, run_lon: np.ndarray, p: FusionParams) -> np.ndarray:
    """For each query (sort key, place), the run whose ``run_keys`` time is nearest within
    ``skew_s`` and whose point lies within ``near_m`` of the place (unknown place: any);
    -1 when none. ``run_keys`` sorted."""
    out = np.full(len(keys), -1)
    if not len(keys) or not len(run_keys):
        return out
    lo = np.searchsorted(run_keys, keys - p.skew_s, side="left")
    hi = np.searchsorted(run_keys, keys + p.skew_s, side="right")
    cnt = np.maximum(hi - lo, 0)
    if not cnt.sum():
        return out
    q = np.repeat(np.arange(len(keys)), cnt)
    r = np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    dd = haversine_m(lat[q], lon[q], run_lat[r], run_lon[r])
    ok = ~(dd > p.near_m)
    c = pd.DataFrame({"q": q[ok], "r": r[ok], "dt": np.abs(run_keys[r[ok]] - keys[q[ok]])})
    c = c.sort_values(["q", "dt"], kind="stable").drop_duplicates("q")
    out[c["q"].to_numpy()] = c["r"].to_numpy()
    return out


def route_stops(gtfs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The stops each GTFS route serves: ``route_id``, ``stop_id``, ``lat``, ``lon`` (one row per
    pair), from the feed's ``trips``, ``stop_times`` and ``stops`` tables -- the alighting stop
    of a validated bus ride is one of them."""
    st = gtfs["stop_times"][["trip_id", "stop_id"]].drop_duplicates()
    rs = st.merge(gtfs["trips"][["trip_id", "route_id"]], on="trip_id")[["route_id", "stop_id"]].drop_duplicates()
    stops = gtfs["stops"][["stop_id", "stop_lat", "stop_lon"]]
    out = rs.merge(stops, on="stop_id").rename(columns={"stop_lat": "lat", "stop_lon": "lon"})
    out["lat"] = pd.to_numeric(out["lat"], errors="coerce")
    out["lon"] = pd.to_numeric(out["lon"], errors="coerce")
    return out.dropna(subset=["lat", "lon"]).astype({"route_id": object, "stop_id": object}).reset_index(drop=True)


def _nearest_line_stop(route: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                       stops: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each (route id, place): the nearest stop of that route -- (distance m, lat, lon);
    NaN when the route is unknown or has no stops. Pairs only rides with their own line's
    stops (sorted by route, ``searchsorted`` ranges)."""
    n = len(route)
    d = np.full(n, np.nan)
    slat = np.full(n, np.nan)
    slon = np.full(n, np.nan)
    if stops is None or not len(stops) or not n:
        return d, slat, slon
    st = stops.sort_values("route_id", kind="stable")
    codes = pd.Index(pd.unique(st["route_id"].to_numpy(dtype=object)))
    sc = codes.get_indexer(st["route_id"].to_numpy(dtype=object))
    rc = codes.get_indexer(pd.Series(route, dtype=object).to_numpy(dtype=object))
    lo = np.searchsorted(sc, rc, side="left")
    hi = np.searchsorted(sc, rc, side="right")
    cnt = np.where(rc >= 0, hi - lo, 0)
    if not cnt.sum():
        return d, slat, slon
    q = np.repeat(np.arange(n), cnt)
    j = np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    la, lo_ = st["lat"].to_numpy(dtype="float64"), st["lon"].to_numpy(dtype="float64")
    dist = haversine_m(lat[q], lon[q], la[j], lo_[j])
    c = pd.DataFrame({"q": q, "j": j, "d": dist}).sort_values(["q", "d"], kind="stable").drop_duplicates("q")
    qi, ji = c["q"].to_numpy(), c["j"].to_numpy()
    d[qi], slat[qi], slon[qi] = c["d"].to_numpy(), la[ji], lo_[ji]
    return d, slat, slon


def _walks_after(tr: _Track, b: np.ndarray, a: np.ndarray, sec: _Sec, p: FusionParams) -> np.ndarray:
    """Per ride (end point ``b``, start point ``a`` of the record-matched rides, in time
    order): whether the phone moved slower than ``walk_mps`` (straight line) from the ride's
    end to the end of the section holding it, or to the next matched ride's start if sooner."""
    n = len(b)
    if not n:
        return np.zeros(0, bool)
    kb = tr.key[b]
    s = np.searchsorted(sec.key0, kb, side="right") - 1
    sp = np.maximum(s, 0)
    inside = (s >= 0) & (sec.ucode[sp] == tr.u[b])
    end_key = np.where(inside, sec.ucode[sp] * _SPAN + sec.t1[sp], kb)
    nxt = np.r_[a[1:], -1]
    has_next = (nxt >= 0) & (tr.u[np.maximum(nxt, 0)] == tr.u[b]) & (tr.key[np.maximum(nxt, 0)] > kb)
    end_key = np.where(has_next, np.minimum(end_key, tr.key[np.maximum(nxt, 0)]), end_key)
    e = np.maximum(np.searchsorted(tr.key, end_key, side="right") - 1, b)
    span = tr.t[e] - tr.t[b]
    return (span <= 0) | (haversine_m(tr.lat[b], tr.lon[b], tr.lat[e], tr.lon[e]) < p.walk_mps * np.maximum(span, 1.0))


def _ride_cuts(ev: pd.DataFrame, ev_u: np.ndarray, ev_src: np.ndarray, sec: _Sec, tr: _Track | None,
               p: FusionParams, ev_route: np.ndarray | None = None,
               stops: pd.DataFrame | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Cuts at the start and end of the ride each record shows in the phone's points.

    A bus validation's boarding starts a ride (its end is the alighting: the phone's speed
    drops to a walk); a parking entry ends a drive, a parking exit starts one (rentals are
    left out: their own start and end times bound the ride). A ride's end
    cuts the section it falls in when the tester then walks or waits (``calm_after``), its
    start when they walked or waited before (``calm_before``), each part at least
    ``min_cut_s`` long. With ``stops`` (:func:`route_stops`), a bus ride's end on a known line
    (``ev_route``) cuts only within ``alight_m`` of a stop of that line, and at that stop. A second bus boarding inside a section that already holds one cuts it
    at its own time (a transfer the GPS did not see).

    Returns the cuts (``sec``, ``t``, ``lat``, ``lon``, ``min_s`` and ``after_ride``: the
    part starting at the cut follows a ride and must not be merged into it) and, per event,
    the time the phone saw it (the ride's start or end; NaN when no ride was found), for
    a boarding, the time its ride's run of fast moves ended (NaN when none), and the start
    and end times of the run found at each event (boarding, car-park entry or exit; NaN)."""
    cols = ["sec", "t", "lat", "lon", "min_s", "after_ride"]
    seen = np.full(len(ev), np.nan)
    ride_end = np.full(len(ev), np.nan)
    run_iv = (np.full(len(ev), np.nan), np.full(len(ev), np.nan))
    if not len(sec.t0):
        return pd.DataFrame(columns=cols), seen, ride_end, run_iv
    role = ev["role"].to_numpy()
    key = ev_u.astype("float64") * _SPAN + ev["t"].to_numpy()
    lat, lon = ev["lat"].to_numpy(), ev["lon"].to_numpy()
    board = (ev_src == "yelo_bus") & ev["primary"].to_numpy() & (ev_u >= 0)
    out = []
    if tr is not None:
        runs = _ride_runs(tr, p)
        a, b = runs["a"], runs["b"]
        starts = np.flatnonzero((board | ((ev_src == "parking") & (role == 0))) & (ev_u >= 0))
        ends = np.flatnonzero((ev_src == "parking") & (role == 1) & (ev_u >= 0))
        rs = _nearest_run(key[starts], lat[starts], lon[starts], runs["key_a"], tr.lat[a], tr.lon[a], p)
        re_ = _nearest_run(key[ends], lat[ends], lon[ends], runs["key_b"], tr.lat[b], tr.lon[b], p)
        seen[starts[rs >= 0]] = tr.t[a[rs[rs >= 0]]]
        ride_end[starts[rs >= 0]] = tr.t[b[rs[rs >= 0]]]
        seen[ends[re_ >= 0]] = tr.t[b[re_[re_ >= 0]]]
        for q, r in ((starts, rs), (ends, re_)):
            run_iv[0][q[r >= 0]] = tr.t[a[r[r >= 0]]]
            run_iv[1][q[r >= 0]] = tr.t[b[r[r >= 0]]]
        run = np.unique(np.r_[rs[rs >= 0], re_[re_ >= 0]])
        # the line of each bus ride (its boarding's route), for the alighting stop
        line = pd.Series(ev_route[starts] if ev_route is not None else np.full(len(starts), None),
                         dtype=object).to_numpy(dtype=object)
        rl = pd.Series(line[rs >= 0], index=rs[rs >= 0]).groupby(level=0).first()
        run_line = rl.reindex(run).to_numpy(dtype=object)
        dstop, slat, slon = _nearest_line_stop(run_line, tr.lat[b[run]], tr.lon[b[run]], stops)
        at_stop = ~(dstop > p.alight_m)  # unknown line or no stops table: the phone's fix
        # the rest of the section after the ride's end, up to the next ride a record starts,
        # must be on foot -- a bus crawling in traffic (slow for minutes, then fast again
        # without a new boarding) has not ended its ride -- unless the tester then waits
        rest = _walks_after(tr, b[run], a[run], sec, p) | runs["still_after"][run]
        for pt, calm, after in ((a[run], runs["calm_before"][run], False),
                                (b[run], runs["calm_after"][run] & at_stop & rest, True)):
            la = np.where(after & ~np.isnan(slat), slat, tr.lat[pt])
            lo = np.where(after & ~np.isnan(slon), slon, tr.lon[pt])
            out.append(pd.DataFrame({"k": tr.key[pt], "t": tr.t[pt], "lat": la, "lon": lo,
                                     "min_s": p.min_cut_s, "after_ride": after})[calm])
    # transfers: the second (third...) boarding inside one section
    bi = np.flatnonzero(board & ~np.isnan(key))
    if len(bi):
        s = np.searchsorted(sec.key0, key[bi], side="right") - 1
        ok = (s >= 0) & (sec.ucode[np.maximum(s, 0)] == ev_u[bi]) & (ev["t"].to_numpy()[bi] < sec.t1[np.maximum(s, 0)])
        tb = pd.DataFrame({"s": s[ok], "k": key[bi][ok], "t": ev["t"].to_numpy()[bi][ok],
                           "lat": lat[bi][ok], "lon": lon[bi][ok]}).sort_values(["s", "t"], kind="stable")
        later = (tb["s"].shift(1).to_numpy() == tb["s"].to_numpy()) & (tb["t"].diff().to_numpy() >= p.min_split_s)
        tb = tb[later]
        out.append(pd.DataFrame({"k": tb["k"].to_numpy(), "t": tb["t"].to_numpy(), "lat": tb["lat"].to_numpy(),
                                 "lon": tb["lon"].to_numpy(), "min_s": p.min_split_s, "after_ride": False}))
    if not out:
        return pd.DataFrame(columns=cols), seen, ride_end, run_iv
    c = pd.concat(out, ignore_index=True)
    s = np.searchsorted(sec.key0, c["k"].to_numpy(), side="right") - 1
    sp = np.maximum(s, 0)
    inside = (s >= 0) & (c["k"].to_numpy() < sec.ucode[sp] * _SPAN + sec.t1[sp]) & ~sec.user_set[sp]
    c = c[inside].assign(sec=s[inside])
    return c[cols].reset_index(drop=True), seen, ride_end, run_iv


def _record_intervals(ev: pd.DataFrame, ev_src: np.ndarray,
                      run_iv: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per event, the interval (s, relative) of the ride the record shows: a rental's or
    booking's own time, a shuttle validation's scheduled crossing (boarding to landing), else
    the run of fast moves the phone's points show at that event (``run_iv``); NaN when none."""
    i0 = ev["r0"].to_numpy().copy()
    i1 = ev["r1"].to_numpy().copy()
    rec = ev["rec"].to_numpy()
    land = (ev["role"].to_numpy() == 1) & ~ev["primary"].to_numpy() & np.isnan(i1) & (ev_src != "parking")
    if land.any():  # the shuttle's crossing, for both of its events
        end = np.full(int(rec.max()) + 1, np.nan)
        end[rec[land]] = ev["t"].to_numpy()[land]
        i1 = np.where(np.isnan(i1) & (ev_src != "parking"), end[rec], i1)
    none = np.isnan(i1)
    i0 = np.where(none, run_iv[0], i0)
    i1 = np.where(none, run_iv[1], i1)
    return i0, i1


def _blind(records: pd.DataFrame, ev: pd.DataFrame, ev_u: np.ndarray, tr: _Track | None,
           p: FusionParams) -> np.ndarray:
    """Per record: a Yélo record after whose moment (boarding, rental or booking start) the
    phone recorded at most one point for ``blind_s`` (or the rental's length, at least
    ``min_split_s``, when shorter) -- the phone was off: the trip was not seen."""
    out = np.zeros(len(records), bool)
    if tr is None:
        return out
    src = records["source"].to_numpy(dtype=object)
    prim = ev["primary"].to_numpy()
    rec = ev["rec"].to_numpy()
    sel = np.flatnonzero(prim & (ev_u >= 0) & (src[rec] != "parking") & ~np.isnan(ev["t"].to_numpy()))
    if not len(sel):
        return out
    t = ev["t"].to_numpy()[sel]
    r1 = ev["r1"].to_numpy()[sel]
    w = np.where(np.isnan(r1), p.blind_s, np.clip(r1 - t, p.min_split_s, p.blind_s))
    k = ev_u[sel].astype("float64") * _SPAN + t
    n = np.searchsorted(tr.key, k + w, side="right") - np.searchsorted(tr.key, k, side="left")
    out[rec[sel]] = n <= 1
    return out


# --------------------------------------------------------------------------- splitting

def _split_sections(sec: _Sec, cuts: pd.DataFrame, p: FusionParams) -> pd.DataFrame:
    """Cut sections at the given times. ``cuts``: ``sec`` (row of ``sec.frame``), ``t`` (s,
    relative), ``lat``, ``lon`` (the record's place, used as the part boundary), optional
    ``min_s`` (shortest part the cut may leave, default ``min_split_s``) and ``after_ride``
    (the part starting at the cut follows a ride). Returns the new sections frame (same
    internal columns as ``sec.frame``)."""
    df = sec.frame
    cuts = cuts.copy()
    if "min_s" not in cuts:
        cuts["min_s"] = p.min_split_s
    if "after_ride" not in cuts:
        cuts["after_ride"] = False
    cuts["min_s"] = cuts["min_s"].astype("float64")
    cuts["after_ride"] = cuts["after_ride"].astype(bool)
    # at one time, the strictest cut (after_ride wins)
    cuts = cuts.sort_values(["sec", "t", "after_ride"], ascending=[True, True, False]).drop_duplicates(["sec", "t"])
    # keep cuts at least min_s apart from each other and from the section ends
    s0 = sec.t0[cuts["sec"].to_numpy()]
    s1 = sec.t1[cuts["sec"].to_numpy()]
    tc = cuts["t"].to_numpy()
    ms = cuts["min_s"].to_numpy()
    keep = (tc - s0 >= ms) & (s1 - tc >= ms)
    cuts = cuts[keep]
    prev_same = cuts["sec"].shift(1).to_numpy() == cuts["sec"].to_numpy()
    close = prev_same & (cuts["t"].diff().to_numpy() < cuts["min_s"].to_numpy())
    cuts = cuts[~close]
    if cuts.empty:
        return df
    cs = cuts["sec"].to_numpy()
    # parts: for each cut section, boundaries [s0, c1, ..., ck, s1]
    ncut = np.bincount(cs, minlength=len(df))
    split_rows = np.flatnonzero(ncut > 0)
    nparts = ncut[split_rows] + 1
    part_sec = np.repeat(split_rows, nparts)
    part_k = np.arange(nparts.sum()) - np.repeat(np.cumsum(nparts) - nparts, nparts)
    # boundary times and places: start of part k = cut k-1 (or section start)
    cut_t = cuts["t"].to_numpy()
    cut_lat = cuts["lat"].to_numpy()
    cut_lon = cuts["lon"].to_numpy()
    first_cut = np.searchsorted(cs, split_rows)  # cuts are sorted by section
    fc = np.repeat(first_cut, nparts)
    is_first = part_k == 0
    is_last = part_k == np.repeat(nparts - 1, nparts)
    cprev = np.where(is_first, 0, fc + part_k - 1)
    cnext = np.where(is_last, 0, fc + part_k)
    pt0 = np.where(is_first, sec.t0[part_sec], cut_t[cprev])
    pt1 = np.where(is_last, sec.t1[part_sec], cut_t[cnext])
    plat0 = np.where(is_first, sec.lat0[part_sec], cut_lat[cprev])
    plon0 = np.where(is_first, sec.lon0[part_sec], cut_lon[cprev])
    plat1 = np.where(is_last, sec.lat1[part_sec], cut_lat[cnext])
    plon1 = np.where(is_last, sec.lon1[part_sec], cut_lon[cnext])
    parts = df.iloc[part_sec].copy().reset_index(drop=True)
    dur = np.maximum(sec.t1[part_sec] - sec.t0[part_sec], 1e-9)
    frac = (pt1 - pt0) / dur
    geom_frac, geoms = _split_geometry(df, part_sec, part_k, plat0, plon0, plat1, plon1, is_first, is_last)
    frac = np.where(np.isnan(geom_frac), frac, geom_frac)
    parts["section_id"] = parts["section_id"].astype(str).to_numpy() + "." + (part_k + 1).astype(str)
    parts["_t0"], parts["_t1"] = pt0, pt1
    parts["_lat0"], parts["_lon0"], parts["_lat1"], parts["_lon1"] = plat0, plon0, plat1, plon1
    parts["distance_m"] = parts["distance_m"].to_numpy(dtype="float64") * frac
    parts["duration_s"] = pt1 - pt0
    parts["_after_ride"] = np.where(is_first, parts["_after_ride"].to_numpy(dtype=bool),
                                    cuts["after_ride"].to_numpy()[cprev])
    if geoms is not None:
        parts["geometry"] = geoms
    keep_rows = ncut == 0
    out = pd.concat([df[keep_rows], parts], ignore_index=True)
    return out.sort_values(["_u", "_t0", "_t1"], kind="stable").reset_index(drop=True)


def _split_geometry(df, part_sec, part_k, plat0, plon0, plat1, plon1, is_first, is_last):
    """Cut each split section's LineString at the vertices nearest the cut places.

    Returns (length fraction per part or NaN, WKB per part or None when no geometry)."""
    n = len(part_sec)
    if "geometry" not in df:
        return np.full(n, np.nan), None
    import shapely

    g = df["geometry"].to_numpy(dtype=object)[part_sec]
    has = np.array([isinstance(x, (bytes, bytearray, memoryview)) and len(x) > 0 for x in g], dtype=bool)
    frac = np.full(n, np.nan)
    out = np.full(n, None, dtype=object)
    if not has.any():
        return frac, out
    geoms = shapely.from_wkb(g[has], on_invalid="ignore")
    coords, gidx = shapely.get_coordinates(geoms, return_index=True)
    hp = np.flatnonzero(has)
    # vertex index (within its geometry) nearest to the part's start and end boundary
    counts = np.bincount(gidx, minlength=len(geoms))
    offs = np.cumsum(counts) - counts

    def nearest(lat, lon, default_first):
        # distance of every vertex of the part's geometry to the boundary place
        rep = np.repeat(np.arange(len(hp)), counts)
        d = haversine_m(coords[:, 1], coords[:, 0], lat[hp][rep], lon[hp][rep])
        d = np.where(np.isnan(d), np.inf, d)
        order = np.lexsort((d, rep))
        first_of = np.searchsorted(rep[order], np.arange(len(hp)))
        best = order[np.minimum(first_of, len(order) - 1)] - offs
        return np.where(default_first, 0, best)

    v0 = nearest(plat0, plon0, is_first[hp])
    v1 = nearest(plat1, plon1, np.zeros(len(hp), bool))
    v1 = np.where(is_last[hp], counts - 1, v1)
    v1 = np.maximum(v1, v0)
    # segment lengths along each geometry, cumulative
    seg = haversine_m(coords[:-1, 1], coords[:-1, 0], coords[1:, 1], coords[1:, 0])
    seg = np.where(gidx[1:] == gidx[:-1], seg, 0.0)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[offs + counts - 1] - cum[offs]
    plen = cum[offs + v1] - cum[offs + v0]
    frac[hp] = np.where(total > 0, plen / np.where(total > 0, total, 1.0), np.nan)
    # build the parts' LineStrings (at least two vertices: repeat the vertex when degenerate)
    npts = np.maximum(v1 - v0 + 1, 2)
    pi = np.repeat(np.arange(len(hp)), npts)
    within = np.arange(npts.sum()) - np.repeat(np.cumsum(npts) - npts, npts)
    vi = np.minimum(np.repeat(v0, npts) + within, np.repeat(v1, npts))
    pc = coords[np.repeat(offs, npts) + vi]
    lines = shapely.linestrings(pc, indices=pi)
    out[hp] = shapely.to_wkb(lines)
    return frac, out


# --------------------------------------------------------------------------- main entry

def fuse(trips: pd.DataFrame, sections: pd.DataFrame, records: pd.DataFrame,
         params: FusionParams = FusionParams(), points: pd.DataFrame | None = None,
         stops: pd.DataFrame | None = None) -> FusionResult:
    """Attach records to sections, refine modes, split sections, create record-only trips.

    Parameters
    ----------
    trips, sections : DataFrame
        Schema ``trips`` and ``sections`` of one or many users (``geometry``, ``mode_confidence``
        and ``mode_source`` optional; section ends come from the geometry, else from the trip).
    records : DataFrame
        Schema ``records`` with ``start_lat/lon`` (and ``end_lat/lon`` when known) filled by
        the ingest packages. Any previous ``trip_id``/``section_id`` is recomputed.
    params : FusionParams
    points : DataFrame, optional
        The phone's points (``user_id``, ``ts``, ``lat``, ``lon``; e.g. the segmentation's
        ``labelled_points``). With them a bus ride, or a drive into or out of a car park, is
        cut out of a section where the phone's speed rises and drops (a 1-3 minute ride the
        segmentation merged with the walk after it), and a Yélo record after which the phone
        recorded nothing makes a record-only trip.
    stops : DataFrame, optional
        The stops of each GTFS route (:func:`route_stops`): a bus ride's end (where the
        phone's speed drops) is placed at the nearest stop of the validated line, and a drop
        far from any of its stops (traffic) does not end the ride.

    Returns
    -------
    FusionResult
    """
    p = params
    trips = schema.coerce(trips, "trips")
    sections = schema.coerce(sections, "sections")
    records = schema.coerce(records, "records").reset_index(drop=True)
    trips["origin"] = trips["origin"].astype(object).where(trips["origin"].notna(), "gps")
    # idempotent: record-only trips of an earlier fusion are rebuilt, not matched against
    old = trips["origin"].to_numpy() == "record"
    if old.any():
        gone = pd.MultiIndex.from_frame(trips.loc[old, ["user_id", "trip_id"]])
        trips = trips[~old].reset_index(drop=True)
        sections = sections[~pd.MultiIndex.from_frame(sections[["user_id", "trip_id"]]).isin(gone)]
        sections = sections.reset_index(drop=True)
    users = pd.Index(pd.unique(pd.concat([sections["user_id"], records["user_id"], trips["user_id"]],
                                          ignore_index=True).astype(object)))
    alltimes = np.concatenate([schema.to_unix(sections["start_ts"]), schema.to_unix(records["start_ts"])])
    tbase = float(np.nanmin(alltimes)) if len(alltimes) and np.isfinite(alltimes).any() else 0.0
    ends = _section_ends(sections, trips)
    sec = _prepare_sections(sections, ends, users, tbase)

    src = records["source"].to_numpy(dtype=object)
    rec_mode = pd.Series(src).map(SOURCE_MODE).to_numpy(dtype=object)
    ev = _events(records)
    for c in ("t", "r0", "r1"):
        ev[c] = ev[c] - tbase
    ev_u = users.get_indexer(records["user_id"].to_numpy(dtype=object))[ev["rec"].to_numpy()]
    ev_mode = rec_mode[ev["rec"].to_numpy()]

    def match(sec: _Sec) -> pd.DataFrame:
        """Every event's best section (the events' times and intervals as they are now)."""
        return _landing_with_boarding(ev, ev_mode, _match_events(ev, ev_u, ev_mode, sec, p), sec, p)

    # pass 1: match; estimate each source's clock offset from the clear matches and correct it;
    # find missed mode changes, split
    m = match(sec)
    ev_src = src[ev["rec"].to_numpy()]
    offsets = _clock_offsets(m, ev_src, p)
    if offsets:
        shift = pd.Series(ev_src).map(offsets).fillna(0.0).to_numpy()
        for c in ("t", "r0", "r1"):
            ev[c] = ev[c] - shift
    track = _track(points, users, tbase)
    sec = _with_fixes(sec, track)
    ev_route = records["route_id"].to_numpy(dtype=object)[ev["rec"].to_numpy()] if "route_id" in records else None
    rides, seen, ride_end, run_iv = _ride_cuts(ev, ev_u, ev_src, sec, track, p, ev_route, stops)
    # each event's interval: the record's own (rental, booking, a shuttle's scheduled
    # crossing), else the ride or drive the phone's points show at the event; a confident
    # section it covers only part of is not contradicted by it (the GPS missed a mode change)
    ev["i0"], ev["i1"] = _record_intervals(ev, ev_src, run_iv)
    m = match(sec)
    cut = (m["sec"].to_numpy() >= 0) & ~m["locked"].to_numpy()
    role = ev["role"].to_numpy()
    inside = np.where(role == 0, m["dt"].to_numpy(), -m["dt"].to_numpy())
    # well inside a section: a mode change the GPS missed, even when the section starts near
    # the stop (a wait at the stop before boarding is not the ride)
    deep = inside > p.min_split_s + p.skew_s
    # a shuttle's landing (scheduled, from the GTFS) cuts a ride merged with the walk after it
    # as soon as it is min_split_s inside and the section ends away from the landing stop
    landing = (role == 1) & (src[ev["rec"].to_numpy()] != "parking") & np.isnan(ev["r1"].to_numpy())
    landing &= (inside > p.min_split_s) & ~(m["dd"].to_numpy() <= p.land_m)  # unknown distance: away
    s_idx = m["sec"].to_numpy()
    safe = np.maximum(s_idx, 0)
    differs = (sec.mode[safe] != ev_mode) if len(sec.mode) else np.zeros(len(ev), bool)
    cut &= (deep | landing) & differs
    # validated rides seen in the points: (user, start, end), for the merge of their pieces
    rv = ~np.isnan(ride_end)
    ride_span = (ev_u[rv], seen[rv], ride_end[rv])
    # a car-park entry/exit the phone saw (a drive ends/starts there) is matched at the phone's
    # time: the gate's clock and the walk inside the car park blur it more than the fixes do.
    # A validation keeps its own time (it is the boarding; 30-s fixes place the ride's start
    # less precisely: moving bus boardings too made seeds 0-4 one record worse)
    snap = ~np.isnan(seen) & (ev_src == "parking")
    ev["t"] = np.where(snap, seen, ev["t"].to_numpy())
    ev["seen"] = snap
    if cut.any() or len(rides):
        cuts = pd.DataFrame({"sec": s_idx[cut], "t": ev["t"].to_numpy()[cut],
                             "lat": ev["lat"].to_numpy()[cut], "lon": ev["lon"].to_numpy()[cut],
                             "min_s": p.min_split_s, "after_ride": False})
        cuts = pd.concat([cuts, rides], ignore_index=True) if len(rides) else cuts
        new = _split_sections(sec, cuts, p)
        if len(new) != len(sec.frame):
            sec = _with_fixes(_rebuild(new, sec), track)
            m = match(sec)

    # per record: primary section (primary event, else the other event)
    nrec = len(records)
    rec_sec = np.full(nrec, -1)
    rec_locked = np.zeros(nrec, bool)
    prim = ev["primary"].to_numpy()
    evr = ev["rec"].to_numpy()
    ms = m["sec"].to_numpy()
    sec_ok = ms >= 0
    # a rental/booking whose start the GPS missed belongs to the section of its end; a parking
    # session belongs to the arrival only (its exit still confirms the departure, as a claim)
    fallback = ~prim & sec_ok & (src[evr] != "parking")
    rec_sec[evr[fallback]] = ms[fallback]
    rec_locked[evr[fallback]] = m["locked"].to_numpy()[fallback]
    rec_sec[evr[prim & sec_ok]] = ms[prim & sec_ok]
    rec_locked[evr[prim & sec_ok]] = m["locked"].to_numpy()[prim & sec_ok]

    # claims: sections whose mode a record sets (primary, the other event's, and for rentals /
    # bookings every compatible section in between)
    claims = pd.DataFrame({"rec": evr[sec_ok], "sec": ms[sec_ok], "cost": m["cost"].to_numpy()[sec_ok],
                           "locked": m["locked"].to_numpy()[sec_ok]})
    span = _span_claims(ev, m, sec, rec_mode, src, p)
    if len(span):
        claims = pd.concat([claims, span], ignore_index=True)
    sf = sec.frame
    # a validation's ride goes on through the next motorised pieces the GPS cut it into: merge them
    if p.merge_ride_pieces and len(sf):
        sf, newpos = _merge_ride_pieces(sec, rec_sec, rec_locked, rec_mode, src, p, ride_span)
        ok_rec = rec_sec >= 0
        rec_sec = np.where(ok_rec, newpos[np.maximum(rec_sec, 0)], -1)
        claims["sec"] = newpos[claims["sec"].to_numpy()]
    # a record on a section along which the GPS saw no movement (a gap the segmentation
    # bridged, e.g. the phone off during the ride) was not seen by the phone: record-only trip
    gap_rec = np.zeros(nrec, bool)
    if len(sf):
        sdur = sf["_t1"].to_numpy() - sf["_t0"].to_numpy()
        sdist = sf["distance_m"].to_numpy(dtype="float64", na_value=np.nan)
        still = (sdur > p.min_split_s + p.skew_s) & (sdist < p.still_mps * sdur)
        gap_rec = (rec_sec >= 0) & still[np.maximum(rec_sec, 0)]
    # a Yélo record after which the phone recorded nothing (phone off) was not seen either
    gap_rec |= _blind(records, ev, ev_u, track, p)
    if gap_rec.any():
        rec_sec = np.where(gap_rec, -1, rec_sec)
        claims = claims[~gap_rec[claims["rec"].to_numpy()]]
    claims = claims.sort_values(["sec", "cost"], kind="stable").drop_duplicates(["sec", "rec"])
    claims["mode"] = rec_mode[claims["rec"].to_numpy()]
    claims["msrc"] = pd.Series(src[claims["rec"].to_numpy()]).map(SOURCE_MODE_SOURCE).to_numpy()

    conflicts = []
    # records that disagree on one section: the cheapest claim wins, the others are reviewed
    nmodes = claims.groupby("sec")["mode"].transform("nunique").to_numpy()
    winner = ~claims.duplicated("sec", keep="first").to_numpy()
    dis = (nmodes > 1) & ~winner
    dis &= claims["mode"].to_numpy() != claims.groupby("sec")["mode"].transform("first").to_numpy()
    if dis.any():
        d = claims[dis]
        conflicts.append(_conflicts(records, d["rec"].to_numpy(), sf, d["sec"].to_numpy(), "records_disagree",
                                    rec_mode, "another record gives this section another mode"))
    win = claims[winner]
    lock = win["locked"].to_numpy()
    if lock.any():
        d = win[lock]
        conflicts.append(_conflicts(records, d["rec"].to_numpy(), sf, d["sec"].to_numpy(), "mode_conflict",
                                    rec_mode, "section mode incompatible with the record and confident or user-set; not overridden"))
    apply = win[~lock]
    sf = _walk_after_rides(sf, p)
    sec_rows = apply["sec"].to_numpy()
    mode_col = sf["mode"].to_numpy(dtype=object).copy()
    mode_col[sec_rows] = apply["mode"].to_numpy()
    sf["mode"] = mode_col
    conf = sf["mode_confidence"].to_numpy(dtype="float64", na_value=np.nan).copy()
    conf[sec_rows] = 1.0
    sf["mode_confidence"] = conf
    msrc = sf["mode_source"].to_numpy(dtype=object).copy()
    msrc[sec_rows] = apply["msrc"].to_numpy()
    sf["mode_source"] = msrc

    # records: matched ids
    matched = rec_sec >= 0
    rec_trip = np.full(nrec, None, dtype=object)
    rec_sid = np.full(nrec, None, dtype=object)
    rec_trip[matched] = sf["trip_id"].to_numpy(dtype=object)[rec_sec[matched]]
    rec_sid[matched] = sf["section_id"].to_numpy(dtype=object)[rec_sec[matched]]

    # unmatched: during a GPS trip -> conflict; else record-only trip
    un = np.flatnonzero(~matched)
    during = _during_trip(records.iloc[un], trips, p) & ~gap_rec[un] if len(un) else np.zeros(0, bool)
    if during.any():
        conflicts.append(_conflicts(records, un[during], sf, np.full(int(during.sum()), -1), "no_section",
                                    rec_mode, "record during a GPS trip but near none of its sections"))
    lonely = un[~during]
    new_trips, new_secs, lonely_trip, lonely_sec = _record_only(records, lonely, rec_mode, src, trips, p)
    rec_trip[lonely] = lonely_trip
    rec_sid[lonely] = lonely_sec

    out_records = records.copy()
    out_records["trip_id"] = pd.Series(rec_trip, dtype=object).where(pd.notna(rec_trip), None).astype(schema.STR)
    out_records["section_id"] = pd.Series(rec_sid, dtype=object).where(pd.notna(rec_sid), None).astype(schema.STR)

    out_sections = sf.copy()
    out_sections["start_ts"] = schema.from_unix(out_sections["_t0"].to_numpy() + tbase).to_numpy()
    out_sections["end_ts"] = schema.from_unix(out_sections["_t1"].to_numpy() + tbase).to_numpy()
    out_sections = out_sections.drop(columns=[c for c in out_sections.columns if c.startswith("_")])
    if len(new_secs):
        out_sections = pd.concat([out_sections, new_secs], ignore_index=True)
    out_sections = schema.coerce(out_sections, "sections")[schema.SECTIONS.names]
    out_trips = trips
    if len(new_trips):
        out_trips = pd.concat([trips, new_trips], ignore_index=True)
    out_trips = schema.coerce(out_trips, "trips")[schema.TRIPS.names]
    conf_df = pd.concat(conflicts, ignore_index=True) if conflicts else pd.DataFrame(
        {c: pd.Series([], dtype=object) for c in CONFLICT_COLUMNS})
    return FusionResult(out_trips.sort_values(["user_id", "start_ts"], kind="stable").reset_index(drop=True),
                        out_sections.sort_values(["user_id", "start_ts"], kind="stable").reset_index(drop=True),
                        schema.coerce(out_records, "records"), conf_df.reset_index(drop=True), offsets)


def _walk_after_rides(sf: pd.DataFrame, p: FusionParams) -> pd.DataFrame:
    """The part cut off after a ride's end (the walk or wait after alighting or parking) keeps
    its section's mode, which the ride made motorised: when the part itself is slower than
    ``walk_mps`` on average it becomes WALKING (``mode_source`` "rule", confidence
    ``after_ride_confidence``), unless the tester set the mode. A record claiming it still wins."""
    sf = sf.copy()
    if not len(sf):
        return sf
    dur = sf["_t1"].to_numpy() - sf["_t0"].to_numpy()
    dist = sf["distance_m"].to_numpy(dtype="float64", na_value=np.nan)
    ms = sf["mode_source"].to_numpy(dtype=object) if "mode_source" in sf else np.full(len(sf), None, dtype=object)
    walk = (sf["_after_ride"].to_numpy(dtype=bool) & (dist < p.walk_mps * np.maximum(dur, 1.0))
            & (sf["mode"].to_numpy(dtype=object) != Mode.WALKING.value) & (ms != "user"))
    if walk.any():
        sf.loc[walk, "mode"] = Mode.WALKING.value
        sf.loc[walk, "mode_source"] = "rule"
        sf.loc[walk, "mode_confidence"] = p.after_ride_confidence
    return sf


def _merge_ride_pieces(sec: _Sec, rec_sec, rec_locked, rec_mode, src, p: FusionParams, ride_span=None):
    """Merge each validated section with the following sections of the same trip that the
    ride plausibly continues through (motorised, not confidently or user-set otherwise, not
    sensed as walking), up to the first other section (e.g. the walk after alighting). A
    section lying within a validated ride the phone's points show (``ride_span``: user codes,
    start and end times, s relative) continues it whatever its mode or hint (a bus stuck in a
    jam looks like a walk), unless confidently incompatible.

    Returns (new internal frame, position of each old row in it)."""
    df = sec.frame
    n = len(df)
    newpos = np.arange(n)
    is_val = np.isin(src, ["yelo_bus", "yelo_boat"])
    heads = np.unique(rec_sec[(rec_sec >= 0) & is_val & ~rec_locked])
    if n == 0 or not len(heads):
        return df, newpos
    trip = df["trip_id"].to_numpy(dtype=object)
    fam = pd.Series(sec.mode).map(FAMILY).fillna("any").to_numpy(dtype=object)
    locked = (sec.conf >= p.confident) | sec.user_set
    cont = np.isin(fam, ["road", "rail", "water"]) & ~locked
    if "sensed_mode" in df:  # the phone's own hint says the tester walked: the ride is over
        cont &= df["sensed_mode"].to_numpy(dtype=object) != "WALKING"
    same_trip = np.r_[False, (trip[1:] == trip[:-1]) & (sec.ucode[1:] == sec.ucode[:-1])]
    if ride_span is not None and len(ride_span[0]):
        ru, ra, rb = ride_span
        rk = ru.astype("float64") * _SPAN + ra
        order = np.argsort(rk, kind="stable")
        rk, rend = rk[order], (ru.astype("float64") * _SPAN + rb)[order]
        j = np.searchsorted(rk, sec.key0, side="right") - 1  # the last ride starting before the row
        jj = np.maximum(j, 0)
        within = (j >= 0) & (sec.ucode * _SPAN + sec.t1 <= rend[jj] + p.min_cut_s) & (sec.key0 >= rk[jj])
        cont |= within & ~locked
    joinable = cont & same_trip & ~df["_after_ride"].to_numpy(dtype=bool)  # row i may be merged into row i-1's ride
    # group id: a head starts a group; a joinable row that follows a grouped row joins it
    start = np.zeros(n, bool)
    start[heads] = True
    brk = start | ~joinable
    grp_start = np.maximum.accumulate(np.where(brk, np.arange(n), 0))
    in_ride = start[grp_start] & (joinable | start)
    group = np.where(in_ride, grp_start, np.arange(n))
    if (group == np.arange(n)).all():
        return df, newpos
    order_key = pd.Series(group)
    first = ~order_key.duplicated().to_numpy()
    last = ~order_key.duplicated(keep="last").to_numpy()
    out = df[first].copy()
    g_first = group[first]
    agg = pd.DataFrame({"g": group, "t1": df["_t1"].to_numpy(), "d": df["distance_m"].to_numpy(dtype="float64"),
                        "lat1": df["_lat1"].to_numpy(), "lon1": df["_lon1"].to_numpy()})
    t1 = agg.groupby("g")["t1"].max()
    dist = agg.groupby("g")["d"].sum()
    lastrow = agg[last].set_index("g")
    out["_t1"] = t1.reindex(g_first).to_numpy()
    out["distance_m"] = dist.reindex(g_first).to_numpy()
    out["duration_s"] = out["_t1"].to_numpy() - out["_t0"].to_numpy()
    out["_lat1"] = lastrow["lat1"].reindex(g_first).to_numpy()
    out["_lon1"] = lastrow["lon1"].reindex(g_first).to_numpy()
    if "geometry" in df:
        out["geometry"] = _concat_lines(df["geometry"].to_numpy(dtype=object), group, g_first)
    newpos = np.searchsorted(g_first, group)
    return out.reset_index(drop=True), newpos


def _concat_lines(wkb: np.ndarray, group: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """One LineString per group from its rows' LineStrings, in row order (WKB; None when the
    group has no geometry)."""
    import shapely

    has = np.array([isinstance(x, (bytes, bytearray, memoryview)) and len(x) > 0 for x in wkb], dtype=bool)
    out = np.full(len(groups), None, dtype=object)
    if not has.any():
        return out
    geoms = shapely.from_wkb(wkb[has], on_invalid="ignore")
    coords, gi = shapely.get_coordinates(geoms, return_index=True)
    owner = np.searchsorted(groups, group[has][gi])
    counts = np.bincount(owner, minlength=len(groups))
    ok = counts >= 2
    keep = ok[owner]
    idx = np.flatnonzero(ok)
    # shapely wants dense indices 0..k-1: number the groups that have a line
    lines = shapely.linestrings(coords[keep], indices=np.searchsorted(idx, owner[keep]))
    out[idx] = shapely.to_wkb(lines) if len(idx) else out[idx]
    # groups with a single vertex in all: keep their first row's geometry
    first_geom = pd.Series(wkb).groupby(group).first()
    single = np.flatnonzero(~ok)
    out[single] = first_geom.reindex(groups[single]).to_numpy(dtype=object)
    return out


def _clock_offsets(m: pd.DataFrame, ev_src: np.ndarray, p: FusionParams) -> dict[str, float]:
    """Median time offset (s) of each source's events from the section ends they matched,
    over clear matches (at the place, within the skew tolerance); sources with fewer than
    ``p.min_offset_events`` such matches get no correction. Clipped to +-``skew_s``."""
    if p.min_offset_events <= 0:
        return {}
    dt = m["dt"].to_numpy(dtype="float64")
    clear = (m["sec"].to_numpy() >= 0) & ~m["locked"].to_numpy(dtype=bool) & \
        (m["dd"].to_numpy(dtype="float64") <= p.near_m) & (np.abs(dt) <= p.skew_s)
    if not clear.any():
        return {}
    d = pd.DataFrame({"src": ev_src[clear], "dt": dt[clear]})
    g = d.groupby("src")["dt"].agg(["median", "size"])
    g = g[g["size"] >= p.min_offset_events]
    return {k: float(np.clip(v, -p.skew_s, p.skew_s)) for k, v in g["median"].items()}


def _rebuild(frame: pd.DataFrame, old: _Sec) -> _Sec:
    """A :class:`_Sec` over an already prepared (internal-column) frame."""
    u = frame["_u"].to_numpy().astype("float64")
    t0 = frame["_t0"].to_numpy()
    t1 = frame["_t1"].to_numpy()
    key1 = u * _SPAN + t1
    conf = frame["mode_confidence"].to_numpy(dtype="float64", na_value=np.nan) if "mode_confidence" in frame \
        else np.full(len(frame), np.nan)
    ms = frame["mode_source"].to_numpy(dtype=object) if "mode_source" in frame else np.full(len(frame), None, dtype=object)
    return _Sec(frame, u, t0, t1, u * _SPAN + t0, np.maximum.accumulate(key1), frame["_lat0"].to_numpy(),
                frame["_lon0"].to_numpy(), frame["_lat1"].to_numpy(), frame["_lon1"].to_numpy(),
                frame["mode"].to_numpy(dtype=object), conf, ms == "user", frame["_o0"].to_numpy(),
                frame["_o1"].to_numpy())


def _span_claims(ev, m, sec: _Sec, rec_mode, src, p: FusionParams) -> pd.DataFrame:
    """For rentals and bookings whose start and end events matched different sections of one
    user, claim every compatible section from the first to the last (a ride the GPS cut in
    pieces; a car-share booking with several drives)."""
    e = pd.DataFrame({"rec": ev["rec"].to_numpy(), "primary": ev["primary"].to_numpy(),
                      "sec": m["sec"].to_numpy()})
    a = e[e["primary"] & (e["sec"] >= 0)].set_index("rec")["sec"]
    b = e[~e["primary"] & (e["sec"] >= 0)].set_index("rec")["sec"]
    both = a.index.intersection(b.index)
    if not len(both):
        return pd.DataFrame(columns=["rec", "sec", "cost", "locked"])
    lo = np.minimum(a[both].to_numpy(), b[both].to_numpy())
    hi = np.maximum(a[both].to_numpy(), b[both].to_numpy())
    rec = both.to_numpy()
    keep = np.isin(src[rec], ["yelo_bike", "yelo_car"]) & (hi - lo > 1)
    lo, hi, rec = lo[keep] + 1, hi[keep], rec[keep]  # strictly between (ends are claimed already)
    cnt = hi - lo
    if cnt.sum() == 0:
        return pd.DataFrame(columns=["rec", "sec", "cost", "locked"])
    r = np.repeat(rec, cnt)
    s = np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    compat = _compat_matrix(rec_mode[r], sec.mode[s])
    if "i0" in ev:  # the record's interval (its primary event's)
        pe = ev[ev["primary"].to_numpy()].set_index("rec")
        i0, i1 = pe["i0"].reindex(r).to_numpy(), pe["i1"].reindex(r).to_numpy()
    else:
        i0 = i1 = None
    locked = _locked(sec, s, compat, i0, i1, p)
    # during a rental every section is the ride (a pushed bike looks like a walk); during a
    # booking the tester also walks between drives
    bike = src[r] == "yelo_bike"
    take = np.where(bike, ~locked, compat & (sec.mode[s] != "WALKING"))
    same_user = sec.ucode[s] == sec.ucode[np.repeat(lo - 1, cnt)]
    ok = take & same_user
    return pd.DataFrame({"rec": r[ok], "sec": s[ok], "cost": np.full(int(ok.sum()), 5.0), "locked": False})


def _conflicts(records, rec_pos, sf, sec_pos, kind, rec_mode, detail) -> pd.DataFrame:
    r = records.iloc[rec_pos]
    has = np.asarray(sec_pos) >= 0
    sp = np.maximum(np.asarray(sec_pos), 0)
    pick = lambda col: np.where(has, sf[col].to_numpy(dtype=object)[sp], None) if len(sf) else np.full(len(sp), None)
    conf = sf["mode_confidence"].to_numpy(dtype="float64", na_value=np.nan)[sp] if len(sf) else np.full(len(sp), np.nan)
    return pd.DataFrame({
        "user_id": r["user_id"].to_numpy(dtype=object), "record_id": r["record_id"].to_numpy(dtype=object),
        "source": r["source"].to_numpy(dtype=object), "trip_id": pick("trip_id"), "section_id": pick("section_id"),
        "kind": kind, "record_mode": rec_mode[rec_pos], "section_mode": pick("mode"),
        "mode_confidence": np.where(has, conf, np.nan), "detail": detail,
    })


def _during_trip(recs: pd.DataFrame, trips: pd.DataFrame, p: FusionParams) -> np.ndarray:
    """Whether each record's primary moment (``start_ts`` +- skew) falls in a GPS trip of its
    user (then the phone recorded the trip and the record should have matched a section)."""
    n = len(recs)
    if n == 0 or len(trips) == 0:
        return np.zeros(n, bool)
    users = pd.Index(pd.unique(pd.concat([trips["user_id"], recs["user_id"]]).astype(object)))
    tu = users.get_indexer(trips["user_id"].to_numpy(dtype=object)).astype("float64")
    t0 = schema.to_unix(trips["start_ts"])
    t1 = schema.to_unix(trips["end_ts"])
    base = float(np.nanmin(t0))
    k0 = tu * _SPAN + (t0 - base)
    k1 = tu * _SPAN + (t1 - base)
    order = np.argsort(k0, kind="stable")
    k0, k1 = k0[order], np.maximum.accumulate(k1[order])
    ru = users.get_indexer(recs["user_id"].to_numpy(dtype=object)).astype("float64")
    # the record's primary moment: boarding, rental/booking start, car-park entry
    r0 = schema.to_unix(recs["start_ts"])
    a = ru * _SPAN + (r0 - base) - p.skew_s
    b = ru * _SPAN + (r0 - base) + p.skew_s
    lo = np.searchsorted(k1, a, side="left")   # first trip ending after a
    hi = np.searchsorted(k0, b, side="right")  # trips starting before b
    return hi > lo


def _record_only(records, pos, rec_mode, src, trips, p: FusionParams):
    """Trips and sections built from records alone (``origin="record"``)."""
    if len(pos) == 0:
        return pd.DataFrame(), pd.DataFrame(), np.array([], dtype=object), np.array([], dtype=object)
    r = records.iloc[pos].copy()
    r["_pos"] = pos
    r["_mode"] = rec_mode[pos]
    r["_t0"] = schema.to_unix(r["start_ts"])
    t1 = schema.to_unix(r["end_ts"])
    r["_t1"] = np.where(np.isnan(t1), r["_t0"].to_numpy(), t1)
    r = r.sort_values(["user_id", "_t0"], kind="stable")
    is_val = r["kind"].to_numpy(dtype=object) == "validation"
    same_user = r["user_id"].shift(1).to_numpy() == r["user_id"].to_numpy()
    gap = r["_t0"].to_numpy() - np.r_[np.nan, r["_t1"].to_numpy()[:-1]]
    chain = same_user & is_val & np.r_[False, is_val[:-1]] & (gap <= p.transfer_s)
    grp = np.cumsum(~chain)
    rid = (r["source"].astype(str) + ":" + r["record_id"].astype(str)).to_numpy()
    first_id = pd.Series(rid).groupby(grp).transform("first").to_numpy()
    trip_ids = np.array(["rec-" + x for x in first_id], dtype=object)
    sec_ids = np.array(["rec-" + x for x in rid], dtype=object)
    # a validation's section runs to the next validation of its chain (a transfer), else is a point
    nxt_same = np.r_[grp[1:] == grp[:-1], False]
    sec_t1 = np.where(nxt_same & is_val, np.r_[r["_t0"].to_numpy()[1:], np.nan], r["_t1"].to_numpy())
    # a parking session stands for the arrival at the car park, not the hours parked
    sec_t1 = np.where(r["source"].to_numpy(dtype=object) == "parking", r["_t0"].to_numpy(), sec_t1)
    lat0 = r["start_lat"].to_numpy(dtype="float64", na_value=np.nan)
    lon0 = r["start_lon"].to_numpy(dtype="float64", na_value=np.nan)
    lat1 = r["end_lat"].to_numpy(dtype="float64", na_value=np.nan)
    lon1 = r["end_lon"].to_numpy(dtype="float64", na_value=np.nan)
    nxt_lat = np.r_[lat0[1:], np.nan]
    nxt_lon = np.r_[lon0[1:], np.nan]
    lat1 = np.where(np.isnan(lat1) & nxt_same, nxt_lat, lat1)
    lon1 = np.where(np.isnan(lon1) & nxt_same, nxt_lon, lon1)
    lat1 = np.where(np.isnan(lat1), lat0, lat1)
    lon1 = np.where(np.isnan(lon1), lon0, lon1)
    dist = r["distance_m"].to_numpy(dtype="float64", na_value=np.nan)
    crow = haversine_m(lat0, lon0, lat1, lon1) * p.detour
    dist = np.where(np.isnan(dist), np.nan_to_num(crow, nan=0.0), dist)
    secs = pd.DataFrame({
        "user_id": r["user_id"].to_numpy(dtype=object), "trip_id": trip_ids, "section_id": sec_ids,
        "start_ts": schema.from_unix(r["_t0"].to_numpy()).to_numpy(),
        "end_ts": schema.from_unix(sec_t1).to_numpy(),
        "distance_m": dist, "duration_s": sec_t1 - r["_t0"].to_numpy(),
        "mode": r["_mode"].to_numpy(dtype=object), "mode_confidence": 1.0,
        "mode_source": pd.Series(r["source"].to_numpy(dtype=object)).map(SOURCE_MODE_SOURCE).to_numpy(),
        "sensed_mode": None, "geometry": None,
    })
    g = pd.DataFrame({"grp": grp, "t0": r["_t0"].to_numpy(), "t1": sec_t1, "lat0": lat0, "lon0": lon0,
                      "lat1": lat1, "lon1": lon1, "dist": dist, "user_id": r["user_id"].to_numpy(dtype=object),
                      "trip_id": trip_ids})
    agg = g.groupby("grp", sort=False).agg(user_id=("user_id", "first"), trip_id=("trip_id", "first"),
                                          t0=("t0", "min"), t1=("t1", "max"), start_lat=("lat0", "first"),
                                          start_lon=("lon0", "first"), end_lat=("lat1", "last"),
                                          end_lon=("lon1", "last"), distance_m=("dist", "sum"))
    tz = trips.groupby("user_id")["tz"].first() if len(trips) and "tz" in trips else pd.Series(dtype=object)
    new_trips = pd.DataFrame({
        "user_id": agg["user_id"].to_numpy(dtype=object), "trip_id": agg["trip_id"].to_numpy(dtype=object),
        "start_ts": schema.from_unix(agg["t0"].to_numpy()).to_numpy(),
        "end_ts": schema.from_unix(agg["t1"].to_numpy()).to_numpy(),
        "start_lat": agg["start_lat"].to_numpy(), "start_lon": agg["start_lon"].to_numpy(),
        "end_lat": agg["end_lat"].to_numpy(), "end_lon": agg["end_lon"].to_numpy(),
        "start_place_id": None, "end_place_id": None,
        "distance_m": agg["distance_m"].to_numpy(), "duration_s": (agg["t1"] - agg["t0"]).to_numpy(),
        "geometry": None, "origin": "record",
        "tz": agg["user_id"].map(tz).astype(object).where(agg["user_id"].isin(tz.index), schema.DEFAULT_TZ)
              .to_numpy(dtype=object),
    })
    # back to the caller's order of ``pos``
    back = pd.Series(np.arange(len(r)), index=r["_pos"].to_numpy()).reindex(pos).to_numpy()
    return new_trips, secs, trip_ids[back], sec_ids[back]
