"""Operator records of the synthetic world: what Yélo and the parking operator would send.

Why: fusion attaches operator records to sensed trips, and the ingest packages must survive
real exports. From the true legs this module derives the clean records (schema ``records``:
bus and sea-shuttle validations, bike-share rentals, car-share bookings, parking sessions of
subscribers) with their ground truth (which trip and section each belongs to), then writes
them out in the operators' own formats (docs/operator_formats.md) with the faults real exports
have: a clock skew of a minute or two per source, a validation now and then missing (the rider
did not validate), duplicated rows, and a few malformed rows. The parking operator writes naive
local times (allowed by the format: read as Europe/Paris); Yélo writes offsets.

Fares are synthetic placeholders (no official Yélo price sheet exists, see the reference
SOURCES.md): 1.40 EUR a one-hour ticket (transfers free within the hour), 0 under a pass; bike
share free for 30 min then 0.50 EUR per started half hour; car share 2 EUR/h + 0.37 EUR/km
(the comparable Citiz tariff).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import schema
from ..schema import Mode
from . import geo


@dataclass(frozen=True)
class OperatorFaults:
    """Faults of the operator exports; :meth:`none` switches them off."""

    skew_s: tuple[float, float] = (60.0, 120.0)   # |clock skew| per source, seconds
    p_missing_validation: float = 0.05            # the rider did not validate
    p_duplicate_row: float = 0.02
    p_malformed_row: float = 0.01
    min_duplicates: int = 1                       # at least this many per file of >= 10 rows
    min_malformed: int = 1

    @classmethod
    def none(cls) -> "OperatorFaults":
        return cls((0.0, 0.0), 0.0, 0.0, 0.0, 0, 0)


TICKET_EUR = 1.40
#: operator-side columns kept beside the schema ``records`` columns
_EXTRA = ("card_id", "device_id", "vehicle_id", "vehicle_fuel", "account_id")
FARE = {"annual": "PASS_YEAR", "monthly": "PASS_MONTH"}


def derive_records(rng: np.random.Generator, testers: pd.DataFrame, trips_by_user: dict,
                   phone_off: set, stops_xy: dict, bike_xy: dict, park_xy: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean records and their ground truth from the true trips.

    Parameters
    ----------
    trips_by_user : dict user_id -> list of plans.Trip
    phone_off : set of (user_id, trip_id) whose trip the phone did not record
    stops_xy, bike_xy, park_xy : dict id -> (lat, lon)

    Returns
    -------
    records : DataFrame, schema ``records`` (trip_id/section_id null: fusion fills them)
    truth : DataFrame ``record_id, source, user_id, trip_id, section_id, phone_missed``
    """
    rows, truth = [], []
    tix = testers.set_index("user_id")
    n_val = n_bs = n_cs = n_pk = 0
    for uid, trips in trips_by_user.items():
        t = tix.loc[uid]
        card = t["yelo_card_id"] if pd.notna(t["yelo_card_id"]) else None
        ypass = t["yelo_pass"] if pd.notna(t["yelo_pass"]) else "none"
        last_val_ts = -np.inf
        cs_open = None
        park_open = None
        for trip in trips:
            for k, leg in enumerate(trip.legs):
                sec = f"{trip.trip_id}-S{k + 1}"
                info = leg.info
                rec = None
                if leg.mode in (Mode.BUS.value, Mode.FERRY.value) and card is not None:
                    ride = info["ride"]
                    ts = info["board_ts"] + rng.uniform(3.0, 40.0)
                    boat = leg.mode == Mode.FERRY.value
                    within = ts - last_val_ts < 3600.0
                    if ypass in FARE:
                        fare, amount = FARE[ypass], 0.0
                    elif boat:
                        fare, amount = "BOAT_SINGLE", TICKET_EUR
                    else:
                        fare, amount = "TICKET_1H", 0.0 if within else TICKET_EUR
                    if not within:
                        last_val_ts = ts
                    n_val += 1
                    lat, lon = stops_xy[ride.board_stop]
                    rec = dict(record_id=f"VAL{2026000000 + n_val:010d}", source="yelo_boat" if boat else "yelo_bus",
                               kind="validation", start_ts=ts, end_ts=np.nan, stop_id=ride.board_stop,
                               route_id=ride.route_id, start_lat=lat, start_lon=lon, amount_eur=amount,
                               fare_product=fare, card_id=card)
                elif leg.mode == Mode.BIKESHARE.value and card is not None:
                    n_bs += 1
                    dur = leg.end - leg.start
                    cost = 0.0 if dur <= 1800 else 0.5 * np.ceil((dur - 1800) / 1800.0)
                    a, b = bike_xy[info["station_id"]], bike_xy[info["end_station_id"]]
                    rec = dict(record_id=f"BS-{700000 + n_bs}", source="yelo_bike", kind="rental",
                               start_ts=leg.start, end_ts=leg.end, station_id=info["station_id"],
                               end_station_id=info["end_station_id"], start_lat=a[0], start_lon=a[1],
                               end_lat=b[0], end_lon=b[1],
                               distance_m=round(leg.distance * rng.uniform(0.9, 1.1)), amount_eur=cost,
                               card_id=card, device_id=f"VELO-{int(rng.integers(1000, 1400))}")
                elif leg.mode == Mode.CARSHARE.value:
                    if "carshare_pickup" in info:
                        cs_open = dict(start=leg.start, station=info["carshare_pickup"], dist=leg.distance,
                                       trip=trip.trip_id, sec=sec)
                    elif cs_open is not None:
                        cs_open["dist"] += leg.distance
                    if "carshare_return" in info and cs_open is not None and card is not None:
                        n_cs += 1
                        hours = (leg.end - cs_open["start"]) / 3600.0
                        km = cs_open["dist"] / 1000.0
                        lat, lon = park_xy[cs_open["station"]]
                        r = dict(record_id=f"CS-{510000 + n_cs}", source="yelo_car", kind="booking",
                                 start_ts=cs_open["start"], end_ts=leg.end, station_id=cs_open["station"],
                                 end_station_id=cs_open["station"], start_lat=lat, start_lon=lon, end_lat=lat,
                                 end_lon=lon, distance_m=round(cs_open["dist"]),
                                 amount_eur=round(2.0 * np.ceil(hours * 2) / 2 + 0.37 * km, 2),
                                 card_id=card, vehicle_fuel=str(rng.choice(["electric", "hybrid", "petrol"],
                                                                          p=[0.5, 0.3, 0.2])),
                                 vehicle_id=f"AP-{int(rng.integers(10, 60))}")
                        rows.append(dict(user_id=uid, **r))
                        truth.append(dict(record_id=r["record_id"], source=r["source"], user_id=uid,
                                          trip_id=cs_open["trip"], section_id=cs_open["sec"]))
                        cs_open = None
                if leg.mode == Mode.CAR.value and "car_park_out" in info and park_open is not None:
                    park_open["end_ts"] = leg.start
                if leg.mode == Mode.CAR.value and "car_park_in" in info and pd.notna(t["parking_account_id"]):
                    if park_open is not None:
                        _close(rows, truth, park_open)
                    n_pk += 1
                    cp = info["car_park_in"]
                    lat, lon = park_xy[cp]
                    park_open = dict(user_id=uid, record_id=f"PS-{880000 + n_pk}", source="parking",
                                     kind="parking_session", start_ts=leg.end, end_ts=np.nan, car_park_id=cp,
                                     start_lat=lat, start_lon=lon, end_lat=lat, end_lon=lon, amount_eur=0.0,
                                     fare_product="subscription", account_id=t["parking_account_id"],
                                     _trip=trip.trip_id, _sec=sec)
                if leg.mode == Mode.CAR.value and "car_park_out" in info and park_open is not None:
                    _close(rows, truth, park_open)
                    park_open = None
                if rec is not None:
                    rows.append(dict(user_id=uid, **rec))
                    truth.append(dict(record_id=rec["record_id"], source=rec["source"], user_id=uid,
                                      trip_id=trip.trip_id, section_id=sec))
        if park_open is not None:
            _close(rows, truth, park_open)
    rec = pd.DataFrame(rows)
    tr = pd.DataFrame(truth, columns=["record_id", "source", "user_id", "trip_id", "section_id"])
    if rec.empty:
        empty = schema.empty("records").assign(**{c: pd.Series(dtype=object) for c in _EXTRA})
        return empty, tr.assign(phone_missed=pd.Series(dtype=bool))
    for c in _EXTRA:
        if c not in rec:
            rec[c] = None
    for c in ("start_ts", "end_ts"):
        rec[c] = pd.to_datetime(rec[c].astype(float), unit="s", utc=True)
    records = schema.coerce(rec.drop(columns=list(_EXTRA)), "records")
    records = pd.concat([records, rec[list(_EXTRA)]], axis=1)
    missed = np.array([(u, t) in phone_off for u, t in zip(tr["user_id"], tr["trip_id"])], dtype=bool)
    tr["phone_missed"] = missed
    tr["section_id"] = tr["section_id"].where(~missed, None)
    return records, tr


def _close(rows, truth, p):
    trip, sec = p.pop("_trip"), p.pop("_sec")
    rows.append(p)
    truth.append(dict(record_id=p["record_id"], source="parking", user_id=p["user_id"], trip_id=trip,
                      section_id=sec))


# ---------------------------------------------------------------------------- operator files
def _iso(ts: pd.Series, tz: str, naive: bool = False) -> pd.Series:
    """UTC timestamps -> ISO-8601 local time with offset (``2026-02-02T08:14:05+01:00``), or
    without it (``naive``: local wall-clock time, as some exports do)."""
    out = pd.Series([""] * len(ts), index=ts.index, dtype=object)
    ok = ts.notna()
    if ok.any():
        s = ts[ok].dt.tz_convert(tz).dt.strftime("%Y-%m-%dT%H:%M:%S%z")
        out[ok] = s.str[:-5] if naive else s.str[:-2] + ":" + s.str[-2:]
    return out


def operator_files(rng: np.random.Generator, records: pd.DataFrame, testers: pd.DataFrame,
                   faults: OperatorFaults, tz: str, first_day) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The files Yélo and the parking operator would send, with faults.

    Returns
    -------
    files : dict file name -> DataFrame of strings (``yelo_validations.csv``, ``yelo_bikeshare.csv``,
        ``yelo_carshare.csv``, ``parking_sessions.csv``, ``card_map.csv``)
    fault_log : DataFrame ``record_id, source, fault, skew_s`` (fault: none | missing | duplicated |
        malformed)
    """
    log = []
    files = {}
    skews = {}
    for src in ("yelo_bus", "yelo_bike", "yelo_car", "parking"):
        mag = rng.uniform(*faults.skew_s) if faults.skew_s[1] > 0 else 0.0
        skews[src] = float(mag * rng.choice([-1.0, 1.0]))
    skews["yelo_boat"] = skews["yelo_bus"]   # same validators' back office

    def skewed(df, col):
        s = df[col]
        jitter = rng.normal(0.0, 2.0, len(df)) if faults.skew_s[1] > 0 else np.zeros(len(df))
        sk = df["source"].map(skews).to_numpy() + jitter
        return s + pd.to_timedelta(sk, unit="s"), sk

    r = records
    # validations
    v = r[r["source"].isin(["yelo_bus", "yelo_boat"])]
    drop = rng.random(len(v)) < faults.p_missing_validation
    for rid, src in zip(v.loc[drop, "record_id"], v.loc[drop, "source"]):
        log.append((rid, src, "missing", 0.0))
    v = v[~drop]
    vt, vsk = skewed(v, "start_ts")
    files["yelo_validations.csv"] = pd.DataFrame({
        "validation_id": v["record_id"], "card_id": v["card_id"], "validated_at": _iso(vt, tz),
        "stop_id": v["stop_id"], "route_id": v["route_id"], "fare_product": v["fare_product"],
        "amount_eur": v["amount_eur"].map(lambda a: f"{a:.2f}")})
    log += [(a, b, "none", c) for a, b, c in zip(v["record_id"], v["source"], vsk)]
    # bike share
    b = r[r["source"] == "yelo_bike"]
    bs, bsk = skewed(b, "start_ts")
    be, _ = skewed(b, "end_ts")
    files["yelo_bikeshare.csv"] = pd.DataFrame({
        "provider_name": "Yelo", "trip_id": b["record_id"], "account_id": b["card_id"],
        "device_id": b.get("device_id"), "start_time": _iso(bs, tz), "end_time": _iso(be, tz),
        "start_station_id": b["station_id"], "end_station_id": b["end_station_id"],
        "trip_duration": ((b["end_ts"] - b["start_ts"]).dt.total_seconds()).round().astype("Int64").astype(str),
        "trip_distance": b["distance_m"].map(lambda a: f"{a:.0f}"),
        "cost_eur": b["amount_eur"].map(lambda a: f"{a:.2f}")})
    log += [(a, "yelo_bike", "none", c) for a, c in zip(b["record_id"], bsk)]
    # car share
    c = r[r["source"] == "yelo_car"]
    cs_, csk = skewed(c, "start_ts")
    ce, _ = skewed(c, "end_ts")
    files["yelo_carshare.csv"] = pd.DataFrame({
        "provider_name": "Yelo Autopartage", "trip_id": c["record_id"], "account_id": c["card_id"],
        "vehicle_id": c.get("vehicle_id"), "vehicle_fuel": c.get("vehicle_fuel"),
        "start_time": _iso(cs_, tz), "end_time": _iso(ce, tz), "station_id": c["station_id"],
        "trip_distance": c["distance_m"].map(lambda a: f"{a:.0f}"),
        "cost_eur": c["amount_eur"].map(lambda a: f"{a:.2f}")})
    log += [(a, "yelo_car", "none", s) for a, s in zip(c["record_id"], csk)]
    # parking
    p = r[r["source"] == "parking"]
    pe, psk = skewed(p, "start_ts")
    px, _ = skewed(p, "end_ts")
    files["parking_sessions.csv"] = pd.DataFrame({
        "session_id": p["record_id"], "account_id": p.get("account_id"), "car_park_id": p["car_park_id"],
        "entry_time": _iso(pe, tz, naive=True), "exit_time": _iso(px, tz, naive=True),
        "rate_type": "subscription",
        "amount_eur": p["amount_eur"].map(lambda a: f"{a:.2f}")})
    log += [(a, "parking", "none", s) for a, s in zip(p["record_id"], psk)]
    # duplicates and malformed rows
    id_col = {"yelo_validations.csv": "validation_id", "yelo_bikeshare.csv": "trip_id",
              "yelo_carshare.csv": "trip_id", "parking_sessions.csv": "session_id"}
    time_col = {"yelo_validations.csv": "validated_at", "yelo_bikeshare.csv": "start_time",
                "yelo_carshare.csv": "start_time", "parking_sessions.csv": "entry_time"}
    status = {rid: i for i, (rid, _, f, _) in enumerate(log)}
    for name, df in files.items():
        df = df.reset_index(drop=True).astype(object)
        n = len(df)
        if n == 0:
            files[name] = df
            continue
        n_mal = int((rng.random(n) < faults.p_malformed_row).sum())
        n_dup = int((rng.random(n) < faults.p_duplicate_row).sum())
        if n >= 10:
            n_mal = max(n_mal, faults.min_malformed)
            n_dup = max(n_dup, faults.min_duplicates)
        mal = rng.choice(n, min(n_mal, n), replace=False)
        first_kind = int(rng.integers(3))
        for j, i in enumerate(mal):  # per malformed row (a handful)
            kind = (first_kind + j) % 3
            if kind == 0:
                df.at[i, time_col[name]] = "2026-02-31T25:61:00"
            elif kind == 1:
                df.at[i, id_col[name]] = ""
            else:
                amount = [c for c in df.columns if c in ("amount_eur", "cost_eur")][0]
                df.at[i, amount] = "n/a"
            rid = files[name].iloc[i][id_col[name]]
            k = status.get(rid)
            if k is not None:
                log[k] = (log[k][0], log[k][1], "malformed", log[k][3])
        dup = rng.choice(n, min(n_dup, n), replace=False)
        for i in dup:
            k = status.get(files[name].iloc[i][id_col[name]])
            if k is not None and log[k][2] == "none":
                log[k] = (log[k][0], log[k][1], "duplicated", log[k][3])
        df = pd.concat([df, df.iloc[dup]]).sort_index(kind="stable").reset_index(drop=True)
        files[name] = df
    # card map
    cm = []
    valid_from = (pd.Timestamp(first_day) - pd.Timedelta(days=30)).strftime("%Y-%m-%d")
    for _, t in testers.iterrows():
        if pd.notna(t["yelo_card_id"]):
            cm.append(("yelo", t["yelo_card_id"], t["user_id"], valid_from, ""))
        if pd.notna(t["parking_account_id"]):
            cm.append(("parking", t["parking_account_id"], t["user_id"], valid_from, ""))
    files["card_map.csv"] = pd.DataFrame(cm, columns=["operator", "account_id", "user_id", "valid_from", "valid_to"])
    flog = pd.DataFrame(log, columns=["record_id", "source", "fault", "skew_s"])
    return files, flog
