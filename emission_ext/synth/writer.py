"""Write a synthetic world to disk in the formats the product ingests.

Why: the CLI, the demo and the benchmarks feed the world to the real readers and ingesters,
so it must look like what they will meet in production: e-mission timeseries JSON exports
(one gzipped JSON array per tester, entries shaped like the real files in
``emission_ext/data/emission_real``), a CSV of points (SPEC section 4 input columns), the
operators' CSV files (docs/operator_formats.md) and the ground truth as CSV (timestamps as
unix seconds, geometries as WKT).

Layout::

    out_dir/emission/<user_id>.json.gz    e-mission timeseries export per tester
    out_dir/points.csv                    user_id, ts, lat, lon, accuracy, speed
    out_dir/operator/                     yelo_validations.csv, yelo_bikeshare.csv,
                                          yelo_carshare.csv, parking_sessions.csv, card_map.csv
    out_dir/truth/                        testers.csv, places.csv, trips.csv, sections.csv,
                                          records.csv (record -> trip/section), and extras:
                                          operator_records.csv (clean records), points.csv
                                          (truth of each points.csv row), bus_stops.csv
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from ..errors import ConfigError
from ..schema import to_unix
from .phone import ACTIVITY_CODES, STATE_CODES, TRANSITION_CODES

_IOS_FLAGS = {"IN_VEHICLE": "automotive", "ON_BICYCLE": "cycling", "WALKING": "walking",
              "ON_FOOT": "walking", "RUNNING": "running", "STILL": "stationary", "UNKNOWN": "unknown"}


def _local_parts(ts: np.ndarray, tz: str) -> tuple[list, list]:
    """ISO strings (``fmt_time``) and ``local_dt`` JSON objects of unix seconds in ``tz``,
    built column-wise (vectorised) and returned as Python lists for the serialiser."""
    utc = pd.to_datetime(np.asarray(ts, dtype=float), unit="s", utc=True)
    idx = utc.tz_convert(tz)
    wall = idx.tz_localize(None)
    off_s = ((wall.asi8 - utc.tz_localize(None).asi8) // 1_000_000_000).astype(int)
    offs = {int(o): f"{'+' if o >= 0 else '-'}{abs(o) // 3600:02d}:{abs(o) % 3600 // 60:02d}" for o in np.unique(off_s)}
    iso = np.datetime_as_string(wall.as_unit("us").to_numpy(), unit="us")
    fmt = [a + offs[o] for a, o in zip(iso.tolist(), off_s.tolist())]
    cols = zip(wall.year.tolist(), wall.month.tolist(), wall.day.tolist(), wall.hour.tolist(),
               wall.minute.tolist(), wall.second.tolist(), wall.day_of_week.tolist())
    ldt = [f'{{"year": {y}, "month": {mo}, "day": {d}, "hour": {h}, "minute": {mi}, "second": {se}, '
           f'"weekday": {w}, "timezone": "{tz}"}}' for y, mo, d, h, mi, se, w in cols]
    return fmt, ldt


def emission_entries(uid_hex: str, platform: str, tz: str, points: pd.DataFrame, motion: pd.DataFrame,
                     transitions: pd.DataFrame, filtered: bool = True) -> list[tuple[float, str]]:
    """JSON texts of one tester's e-mission timeseries entries, as (write_ts, text) pairs."""
    out: list[tuple[float, str]] = []
    flt = "time" if platform == "android" else "distance"
    ptype = "sensor-data"
    n = 0

    def oid():
        nonlocal n
        n += 1
        return f"{int(uid_hex[:8], 16):08x}{n:016x}"

    def envelope(key: str, write_ts: float, mtype: str, data: str, write_fmt: str | None = None) -> str:
        """One e-mission timeseries entry around its ``data`` text."""
        wf = f'"write_fmt_time": "{write_fmt}", ' if write_fmt is not None else ""
        return (f'{{"_id": {{"$oid": "{oid()}"}}, "user_id": {{"$uuid": "{uid_hex}"}}, '
                f'"metadata": {{"key": "{key}", "platform": "{platform}", "write_ts": {write_ts:.3f}, '
                f'{wf}"time_zone": "{tz}", "type": "{mtype}", "read_ts": 0}}, "data": {data}}}')

    if len(points):
        ts = to_unix(points["ts"])
        write_ts = np.maximum.accumulate(ts) + 0.05 + (np.arange(ts.size) % 7) * 0.011
        fmt, ldt = _local_parts(ts, tz)
        wfmt, _ = _local_parts(write_ts, tz)
        lat, lon = points["lat"].to_numpy().tolist(), points["lon"].to_numpy().tolist()
        acc = points["accuracy_m"].to_numpy().tolist()
        spd = np.nan_to_num(points["speed_mps"].to_numpy(dtype=float), nan=-1.0).tolist()
        hd = np.nan_to_num(points["heading"].to_numpy(dtype=float), nan=-1.0).tolist()
        tsl, wts = ts.tolist(), write_ts.tolist()
        for i in range(ts.size):  # serialisation: one text per entry (I/O edge)
            data = (f'{{"ts": {tsl[i]:.3f}, "latitude": {lat[i]:.7f}, "longitude": {lon[i]:.7f}, '
                    f'"loc": {{"type": "Point", "coordinates": [{lon[i]:.7f}, {lat[i]:.7f}]}}, '
                    f'"accuracy": {acc[i]:.3f}, "altitude": 0, "sensed_speed": {spd[i]:.2f}, '
                    f'"heading": {hd[i]:.1f}, "filter": "{flt}", "fmt_time": "{fmt[i]}", '
                    f'"local_dt": {ldt[i]}}}')
            keys = ("background/location", "background/filtered_location") \
                if filtered and acc[i] <= 200.0 else ("background/location",)
            for key in keys:
                out.append((wts[i], envelope(key, wts[i], ptype, data, wfmt[i])))
    if len(motion):
        tsa = to_unix(motion["ts"])
        fmt, ldt = _local_parts(tsa, tz)
        ts = tsa.tolist()
        act = motion["activity"].to_numpy().tolist()
        conf = motion["confidence"].to_numpy(dtype=float).tolist()
        for i in range(len(ts)):
            code = ACTIVITY_CODES.get(act[i], 4)
            if platform == "ios":
                c = 100 if conf[i] >= 92 else (75 if conf[i] >= 75 else 50)
                lvl = {100: "high", 75: "medium", 50: "low"}[c]
                flags = {v: "false" for v in ("walking", "running", "cycling", "automotive", "stationary", "unknown")}
                flags[_IOS_FLAGS.get(act[i], "unknown")] = "true"
                fl = ", ".join(f'"{k}": {v}' for k, v in flags.items())
                data = (f'{{"ts": {ts[i]:.3f}, "type": {code}, "confidence": {c}, "confidence_level": "{lvl}", '
                        f'{fl}, "fmt_time": "{fmt[i]}", "local_dt": {ldt[i]}}}')
            else:
                data = (f'{{"ts": {ts[i]:.3f}, "type": {code}, "confidence": {int(conf[i])}, '
                        f'"fmt_time": "{fmt[i]}", "local_dt": {ldt[i]}}}')
            out.append((ts[i] + 0.02, envelope("background/motion_activity", ts[i] + 0.02,
                                               "sensor-data", data)))
    if len(transitions):
        ts = to_unix(transitions["ts"])
        fmt, ldt = _local_parts(ts, tz)
        names = transitions["transition"].to_numpy()
        states = transitions["state"].to_numpy() if "state" in transitions else ["ONGOING_TRIP"] * ts.size
        for i in range(ts.size):
            data = (f'{{"ts": {ts[i]:.3f}, "transition": {TRANSITION_CODES[names[i]]}, '
                    f'"curr_state": {STATE_CODES[states[i]]}, "fmt_time": "{fmt[i]}", '
                    f'"local_dt": {ldt[i]}}}')
            out.append((ts[i], envelope("statemachine/transition", ts[i], "message", data)))
    out.sort(key=lambda e: e[0])
    return out


def _csv_times(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for c in df.columns:
        if isinstance(df[c].dtype, pd.DatetimeTZDtype):
            df[c] = to_unix(df[c])
        elif c == "geometry":
            g = df[c].to_numpy(dtype=object)
            ok = np.array([v is not None for v in g], dtype=bool)
            wkt = np.full(len(g), None, dtype=object)
            if ok.any():
                wkt[ok] = shapely.to_wkt(shapely.from_wkb(g[ok]), rounding_precision=7)
            df[c] = wkt
    return df


def write_world(world, out_dir, *, filtered: bool = True, emission: bool = True) -> dict[str, Path]:
    """Write ``world`` under ``out_dir`` (layout in the module docstring).

    Parameters
    ----------
    filtered : bool
        Also write ``background/filtered_location`` copies of fixes with accuracy <= 200 m, as
        the e-mission server does (real exports carry both keys).
    emission : bool
        Write the e-mission JSON exports (the slowest part; False skips them).

    Returns
    -------
    dict name -> path of what was written.
    """
    out = Path(out_dir)
    try:
        for sub in ("emission", "operator", "truth"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot create the output directory ({exc})") from None
    written: dict[str, Path] = {}
    tz = world.params.tz
    t = world.testers
    if emission:
        pts_by = dict(tuple(world.points.groupby("user_id", sort=False)))
        mot_by = dict(tuple(world.motion.groupby("user_id", sort=False)))
        tr_by = dict(tuple(world.transitions.groupby("user_id", sort=False)))
        empty = world.points.iloc[:0]
        for _, row in t.iterrows():
            uid = row["user_id"]
            ents = emission_entries(row["emission_uuid"], row["platform"], tz, pts_by.get(uid, empty),
                                    mot_by.get(uid, world.motion.iloc[:0]),
                                    tr_by.get(uid, world.transitions.iloc[:0]), filtered)
            path = out / "emission" / f"{uid}.json.gz"
            with gzip.open(path, "wt", encoding="utf-8", compresslevel=3) as fh:
                fh.write("[\n")
                fh.write(",\n".join(e[1] for e in ents))
                fh.write("\n]\n")
            written[f"emission/{uid}"] = path
    p = world.points
    csv = pd.DataFrame({"user_id": p["user_id"], "ts": np.round(to_unix(p["ts"]), 3), "lat": p["lat"].round(7),
                        "lon": p["lon"].round(7), "accuracy": p["accuracy_m"], "speed": p["speed_mps"]})
    csv.to_csv(out / "points.csv", index=False)
    written["points.csv"] = out / "points.csv"
    for name, df in world.operator_files.items():
        df.to_csv(out / "operator" / name, index=False)
        written[f"operator/{name}"] = out / "operator" / name
    keep = ["user_id", "emission_uuid", "tz", "home_lat", "home_lon", "work_lat", "work_lon", "platform",
            "car_fuel", "car_size", "car_fiscal_hp", "yelo_card_id", "yelo_pass", "parking_account_id",
            "parking_subscription", "has_bike", "ebike", "carshare", "commute_mode"]
    truth = {
        "testers.csv": t[[c for c in keep if c in t]],
        "places.csv": world.truth_places,
        "trips.csv": world.truth_trips,
        "sections.csv": world.truth_sections,
        "records.csv": world.record_truth,
        "operator_records.csv": world.records,
        "points.csv": world.point_truth,
        "bus_stops.csv": world.bus_stops,
    }
    for name, df in truth.items():
        _csv_times(df).to_csv(out / "truth" / name, index=False)
        written[f"truth/{name}"] = out / "truth" / name
    return written
