"""e-mission timeseries entries -> points, motion and transitions tables.

Why: the TRACES phones run the e-mission app, whose data reaches us either as exported JSON
arrays of timeseries entries (``metadata.key`` = ``background/location``,
``background/filtered_location``, ``background/motion_activity``,
``statemachine/transition``) or as the same documents read from the e-mission MongoDB
(``Stage_timeseries``). Both paths go through :func:`entries_to_raw`, so a phone day reads the
same whichever way it arrives.

The entries come in two dialects, and both are accepted:

* server-formatted (what exports and the database hold): motion ``data.type`` is e-mission's
  ``MotionTypes`` code and ``data.confidence`` a percentage, transitions are
  ``TransitionType`` codes;
* phone payloads (the usercache, before the server formats them): Android activity under
  obfuscated keys (``agb``/``agc``...), iOS activity as boolean flags with a
  ``high|medium|low`` confidence, transitions as strings (``local.transition.stopped_moving``,
  ``T_TRIP_ENDED``).

Everything is normalised to :data:`emission_ext.schema.ACTIVITIES`, confidence 0-100 and
transition names. Ids in MongoDB extended JSON (``{"$uuid": ...}``, ``{"$binary": ...}``),
``uuid.UUID`` objects and dashed UUID strings all become the 32-character hex string, so the
same tester gets the same id from every source.

The per-entry pass only pulls raw fields out of the dicts (JSON documents leave no other
way); conversion and validation then run over whole columns.
"""
from __future__ import annotations

import base64
import gzip
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError
from ._common import RawData, RowChecker, finish_table, finish_table_coded, ms_to_s, to_float

LOCATION = "background/location"
FILTERED = "background/filtered_location"
MOTION = "background/motion_activity"
TRANSITION = "statemachine/transition"
#: Old Android clients uploaded motion activity under this key (same payload).
MOTION_OLD = "background/activity"
KEYS = (LOCATION, FILTERED, MOTION, MOTION_OLD, TRANSITION)

#: e-mission ``MotionTypes`` codes (also Google's DetectedActivity codes for 0-8) -> activity.
#: 9 (NONE: every iOS flag false) carries no information -> UNKNOWN; 10
#: (STOPPED_WHILE_IN_VEHICLE: iOS stationary+automotive) -> IN_VEHICLE; 11 (AIR_OR_HSR, set by
#: the server's cleaning) -> IN_VEHICLE.
MOTION_CODES: dict[int, str] = {
    0: "IN_VEHICLE", 1: "ON_BICYCLE", 2: "ON_FOOT", 3: "STILL", 4: "UNKNOWN", 5: "TILTING",
    7: "WALKING", 8: "RUNNING", 9: "UNKNOWN", 10: "IN_VEHICLE", 11: "IN_VEHICLE",
}
#: Names that may appear instead of codes (e-mission enum names, Android constant names).
MOTION_NAMES: dict[str, str] = {
    "IN_VEHICLE": "IN_VEHICLE", "BICYCLING": "ON_BICYCLE", "ON_BICYCLE": "ON_BICYCLE",
    "ON_FOOT": "ON_FOOT", "STILL": "STILL", "UNKNOWN": "UNKNOWN", "TILTING": "TILTING",
    "WALKING": "WALKING", "RUNNING": "RUNNING", "NONE": "UNKNOWN",
    "STOPPED_WHILE_IN_VEHICLE": "IN_VEHICLE", "AIR_OR_HSR": "IN_VEHICLE",
}
#: Obfuscated field names of Google's DetectedActivity in old Android payloads (type, confidence).
ANDROID_ACTIVITY_FIELDS = (("agb", "agc"), ("zzaEg", "zzaEh"), ("zzbjA", "zzbjB"),
                           ("ajO", "ajP"), ("zzaKM", "zzaKN"), ("zzbhB", "zzbhC"))
#: iOS CMMotionActivity flags, strongest evidence of movement first (several may be true:
#: stationary+automotive is a car stopped at a light, so automotive wins).
IOS_FLAGS = (("automotive", "IN_VEHICLE"), ("cycling", "ON_BICYCLE"), ("running", "RUNNING"),
             ("walking", "WALKING"), ("stationary", "STILL"), ("unknown", "UNKNOWN"))
#: iOS confidence levels as e-mission converts them.
IOS_CONFIDENCE = {"high": 100.0, "medium": 75.0, "low": 50.0}

#: e-mission ``TransitionType`` codes (server-formatted entries, Android and iOS).
TRANSITION_CODES: dict[int, str] = {
    0: "INITIALIZE", 1: "EXITED_GEOFENCE", 2: "STOPPED_MOVING", 3: "STOP_TRACKING",
    4: "BOOTED", 5: "INIT_COMPLETE", 6: "TRIP_STARTED", 7: "RECEIVED_SILENT_PUSH",
    8: "TRIP_END_DETECTED", 9: "TRIP_RESTARTED", 10: "END_TRIP_TRACKING",
    11: "TRACKING_STOPPED", 12: "NOP", 13: "VISIT_STARTED", 14: "VISIT_ENDED", 15: "NONE",
    16: "DATA_PUSHED", 17: "START_TRACKING", 18: "TRACKING_ERROR",
}
#: Phone-payload transition strings whose name differs from the plain upper-cased suffix.
TRANSITION_ALIASES = {"T_TRIP_ENDED": "STOPPED_MOVING", "T_FORCE_STOP_TRACKING": "STOP_TRACKING"}
_TRANSITION_NAMES = frozenset(TRANSITION_CODES.values())


def load_entries(path: str | Path) -> list:
    """Parse an e-mission JSON export (plain or gzip) into its list of entries.

    Raises
    ------
    InputError
        Unreadable gzip, invalid/truncated JSON (with the line and column) or a document that
        is not an array (a single entry object, or a phone upload body
        ``{"phone_to_server": [...]}``, is accepted).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except (EOFError, gzip.BadGzipFile, OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise InputError(path, "file not found") from None
        raise InputError(path, f"cannot read the file: {exc}") from None
    if isinstance(doc, dict):
        # tolerate a single entry, or the body of a phone upload (``usercache/put``)
        for k in ("phone_to_server", "entries"):
            if isinstance(doc.get(k), list):
                return doc[k]
        if "metadata" in doc:
            return [doc]
    if not isinstance(doc, list):
        raise InputError(path, f"expected a JSON array of e-mission entries, got {type(doc).__name__}")
    return doc


def normalise_user_id(raw) -> str | None:
    """One string id for every form e-mission uses for a user id.

    ``{"$uuid": hex}``, ``{"$binary": {"base64": ..}}``, :class:`uuid.UUID`, 16 raw bytes and
    dashed UUID strings all give the 32-character lower-case hex; other strings are kept as
    they are; ``None`` stays ``None``.
    """
    if raw is None:
        return None
    if isinstance(raw, uuid.UUID):
        return raw.hex
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw).hex() if len(raw) == 16 else bytes(raw).decode("utf-8", "replace")
    if isinstance(raw, dict):
        if "$uuid" in raw:
            return normalise_user_id(str(raw["$uuid"]))
        if "$binary" in raw:
            b = raw["$binary"]
            b64 = b.get("base64") if isinstance(b, dict) else b
            try:
                return base64.b64decode(b64).hex()
            except (ValueError, TypeError):
                return None
        if "$oid" in raw:
            return str(raw["$oid"])
        return None
    s = str(raw).strip()
    if len(s) == 36 and s.count("-") == 4:
        try:
            return uuid.UUID(s).hex
        except ValueError:
            pass
    if len(s) == 32:
        try:
            return uuid.UUID(hex=s).hex
        except ValueError:
            pass
    return s or None


def _motion_fields(d: dict) -> tuple[object, object]:
    """(activity code/name or flags marker, confidence) of one motion data dict."""
    if "type" in d:
        return d.get("type"), d.get("confidence")
    for tk, ck in ANDROID_ACTIVITY_FIELDS:
        if tk in d:
            return d.get(tk), d.get(ck)
    if any(f in d for f, _ in IOS_FLAGS):
        for flag, name in IOS_FLAGS:
            if d.get(flag) is True:
                return name, d.get("confidence")
        return "NONE", d.get("confidence")
    return None, d.get("confidence")


def _cached_user(raw, cache: dict) -> str | None:
    """:func:`normalise_user_id` with a cache keyed on the raw form (one id per file, mostly)."""
    if isinstance(raw, dict):
        hk = ("$uuid", raw["$uuid"]) if len(raw) == 1 and "$uuid" in raw else \
            ("json", json.dumps(raw, sort_keys=True, default=str))
    else:
        hk = raw
    try:
        return cache[hk]
    except KeyError:
        u = cache[hk] = normalise_user_id(raw)
        return u
    except TypeError:  # unhashable odd form
        return normalise_user_id(raw)


def _other_coords(d: dict) -> tuple[object, object]:
    """(lat, lon) of a location payload without ``latitude``/``longitude``: old Android
    ``mLatitude``/``mLongitude``, or the GeoJSON ``loc`` point."""
    if "mLatitude" in d or "mLongitude" in d:
        return d.get("mLatitude"), d.get("mLongitude")
    loc = d.get("loc")
    coords = loc.get("coordinates") if isinstance(loc, dict) else None
    if isinstance(coords, (list, tuple)) and len(coords) >= 2:
        return coords[1], coords[0]
    return None, None


def _transition_name(raw) -> str | None:
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, np.integer)) or (isinstance(raw, float) and float(raw).is_integer()):
        return TRANSITION_CODES.get(int(raw))
    s = str(raw).strip()
    if s.lstrip("-").isdigit():
        return TRANSITION_CODES.get(int(s))
    if s in TRANSITION_ALIASES:
        return TRANSITION_ALIASES[s]
    for prefix in ("local.transition.", "T_"):
        if s.startswith(prefix):
            s = s[len(prefix):]
            break
    s = s.upper()
    return s if s in _TRANSITION_NAMES else None


def _activity_name(raw) -> str | None:
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, np.integer)) or (isinstance(raw, float) and float(raw).is_integer()):
        return MOTION_CODES.get(int(raw))
    s = str(raw).strip().upper()
    if s.isdigit():
        return MOTION_CODES.get(int(s))
    return MOTION_NAMES.get(s)


def entries_to_raw(entries: list, origin: str, user_id: str | None = None,
                   skip_bad: bool = False, locations: str = "filtered") -> RawData:
    """Convert e-mission timeseries entries to schema tables.

    Parameters
    ----------
    entries : list of dict
        Timeseries entries (``metadata``, ``data``, ``user_id``), as in an e-mission JSON export
        or ``Stage_timeseries`` documents. Entries of other keys (battery, stats, config...)
        are ignored.
    origin : str
        Name of the file or collection, used in error messages.
    user_id : str, optional
        Forces this user id on every entry (else taken from each entry's ``user_id``).
    skip_bad : bool
        Drop malformed entries (counted in ``skipped``, listed in ``problems``) instead of
        raising at the first one.
    locations : {"filtered", "raw"}
        ``filtered``: a user's points come from ``background/filtered_location`` when the user
        has any, else from ``background/location``; ``raw``: always ``background/location``.

    Returns
    -------
    RawData
        points (``source`` = the phone platform, android|ios), motion (activity, confidence
        0-100), transitions (transition names), ``tz`` per user. Timestamps are UTC; unix
        times above 1e11 are read as milliseconds.

    Raises
    ------
    InputError
        The first malformed entry (``unit="entry"``: 0-based index in ``entries``), naming the
        field, unless ``skip_bad``.
    """
    if locations not in ("filtered", "raw"):
        raise ValueError(f"locations must be 'filtered' or 'raw', not {locations!r}")
    forced = None if user_id is None else str(user_id)
    # ---- select the entries of interest (one light pass), then pull fields per column ----
    sel: list[tuple[int, str, dict, dict, object]] = []
    bad_shape: list[tuple[int, str, str]] = []
    for i, ent in enumerate(entries):
        try:
            md = ent["metadata"]
            key = md["key"]
        except (KeyError, TypeError, IndexError):
            if not isinstance(ent, dict):
                bad_shape.append((i, "", f"entry is a {type(ent).__name__}, not an object"))
            else:
                bad_shape.append((i, "metadata.key", "entry has no metadata.key"))
            continue
        if key not in KEYS:
            continue
        data = ent.get("data")
        if not isinstance(data, dict) or not isinstance(md, dict):
            bad_shape.append((i, "data", "entry has no data object"))
            continue
        sel.append((i, MOTION if key == MOTION_OLD else key, md, data, ent.get("user_id")))

    idx = [e[0] for e in sel]
    kind = [e[1] for e in sel]
    mds = [e[2] for e in sel]
    datas = [e[3] for e in sel]
    if forced is None:
        uid_cache: dict = {}
        uid = [_cached_user(e[4], uid_cache) for e in sel]
    else:
        uid = [forced] * len(sel)
    plat = [m.get("platform") for m in mds]
    for j in [j for j, p in enumerate(plat) if p is None]:
        # infer from the location filter when the platform is missing
        plat[j] = {"time": "android", "distance": "ios"}.get(
            datas[j].get("filter") or mds[j].get("filter"))
    plat = [p.lower() if isinstance(p, str) else p for p in plat]
    tzs = [m.get("time_zone") for m in mds]
    wts = [m.get("write_ts") for m in mds]
    ts = [d.get("ts") for d in datas]
    n_sel = len(sel)
    a: list = [None] * n_sel  # lat | activity | transition
    b: list = [None] * n_sel  # lon | confidence
    c: list = [None] * n_sel  # accuracy
    d4: list = [None] * n_sel  # speed
    e5: list = [None] * n_sel  # heading
    for j, k in enumerate(kind):
        d = datas[j]
        if k == MOTION:
            a[j], b[j] = _motion_fields(d)
        elif k == TRANSITION:
            a[j] = d.get("transition")
        else:
            lat, lon = d.get("latitude"), d.get("longitude")
            if lat is None and lon is None:
                lat, lon = _other_coords(d)
            a[j], b[j] = lat, lon
            c[j] = d.get("accuracy")
            d4[j] = d.get("sensed_speed")
            e5[j] = d.get("heading")
            if c[j] is None:
                c[j] = d.get("mAccuracy")
            if d4[j] is None:
                d4[j] = d.get("speed", d.get("mSpeed"))
            if e5[j] is None:
                e5[j] = d.get("bearing", d.get("mBearing"))
            if ts[j] is None and d.get("mTime") is not None:
                ts[j] = d["mTime"]  # old Android payloads: milliseconds

    problems: list[InputError] = [InputError(origin, r, i, f or None, unit="entry")
                                  for i, f, r in bad_shape]

    n = len(idx)
    where = np.asarray(idx, dtype="int64")
    kind_a = np.asarray(kind, dtype=object)
    is_loc = (kind_a == LOCATION) | (kind_a == FILTERED)
    is_mot = kind_a == MOTION
    is_tr = kind_a == TRANSITION
    chk = RowChecker(origin, where, unit="entry")

    users = pd.Series(uid, dtype=object)
    chk.flag(users.isna().to_numpy(), "user_id", "missing user id")

    # timestamps: data.ts; motion/transitions fall back on metadata.write_ts (as e-mission does)
    t, t_bad = to_float(ts)
    w, _ = to_float(wts)
    fallback = np.isnan(t) & ~t_bad & (is_mot | is_tr)
    t = np.where(fallback, w, t)
    t = ms_to_s(t)
    chk.flag(t_bad, "data.ts", "timestamp is not a number: {value!r}", ts)
    chk.flag(np.isnan(t), "data.ts", "missing timestamp")
    chk.flag(~np.isfinite(t) | (t < 0) | (t > 7.0e9), "data.ts",
             "timestamp {value} outside 1970-2191", t)

    plat_s = np.array(plat, dtype=object)
    chk.flag(is_loc & ~np.isin(plat_s, ("android", "ios")), "metadata.platform",
             "platform {value!r} is not android or ios", plat)

    # locations: convert the location rows only, scatter back into full-length columns
    li = np.flatnonzero(is_loc)
    cols = {}
    for name, raw in (("lat", a), ("lon", b), ("acc", c), ("spd", d4), ("hdg", e5)):
        v = np.full(n, 0.0 if name in ("lat", "lon") else np.nan)
        nn = np.zeros(n, dtype=bool)
        if len(li):
            v[li], nn[li] = to_float([raw[i] for i in li])
        cols[name] = (v, nn)
    (lat, lat_nn), (lon, lon_nn) = cols["lat"], cols["lon"]
    (acc, acc_nn), (spd, _), (hdg, _) = cols["acc"], cols["spd"], cols["hdg"]
    chk.check_coords(lat, lon, a, b, "data.latitude", "data.longitude", lat_nn, lon_nn)
    chk.flag(acc_nn, "data.accuracy", "accuracy is not a number: {value!r}", c)
    # phones report -1 (iOS) for "not available": keep the fix, drop the value
    acc[acc < 0] = np.nan
    spd[spd < 0] = np.nan
    hdg[hdg < 0] = np.nan

    # motion
    act = np.full(n, None, dtype=object)
    conf = np.full(n, np.nan)
    if is_mot.any():
        mi = np.flatnonzero(is_mot)
        raw_t = [a[i] for i in mi]
        act[mi] = [_activity_name(x) for x in raw_t]
        raw_c = pd.Series([b[i] for i in mi], dtype=object)
        levels = raw_c.map(lambda x: IOS_CONFIDENCE.get(x.lower()) if isinstance(x, str) else None)
        cv, c_bad = to_float(raw_c.where(levels.isna(), levels))
        conf[mi] = cv
        m_bad = np.zeros(n, dtype=bool)
        m_bad[mi] = c_bad
        chk.flag(is_mot & pd.isna(act), "data.type", "unknown motion activity {value!r}",
                 a)
        chk.flag(m_bad, "data.confidence", "confidence is not a number: {value!r}",
                 b)
        chk.flag(is_mot & ((conf < 0) | (conf > 100)), "data.confidence",
                 "confidence {value} outside 0-100", conf)

    # transitions
    trn = np.full(n, None, dtype=object)
    if is_tr.any():
        ti = np.flatnonzero(is_tr)
        trn[ti] = [_transition_name(a[i]) for i in ti]
        chk.flag(is_tr & pd.isna(trn), "data.transition", "unknown transition {value!r}",
                 a)

    try:
        keep, errs = chk.report(skip_bad)
    except InputError as first_row_error:  # the earliest entry at fault, whatever its kind
        raise min(problems + [first_row_error], key=lambda e: e.line) from None
    if problems and not skip_bad:
        raise problems[0]
    problems = sorted(problems + errs, key=lambda e: e.line)

    tz = _time_zones(users.to_numpy(dtype=object), plat_s, np.asarray(tzs, dtype=object), keep)
    base = pd.DataFrame({"user_id": users, "ts": t, "_kind": kind_a})[keep]

    # points: pick the location kind per user, then drop duplicates within it
    lp = base.assign(lat=lat[keep], lon=lon[keep], accuracy_m=acc[keep], speed_mps=spd[keep],
                     heading=hdg[keep], source=plat_s[keep])[is_loc[keep]]
    if locations == "filtered":
        has_f = lp.loc[lp["_kind"] == FILTERED, "user_id"].unique()
        want = np.where(lp["user_id"].isin(has_f), FILTERED, LOCATION)
    else:
        want = np.full(len(lp), LOCATION, dtype=object)
    lp = lp[lp["_kind"].to_numpy() == want]
    mo = base.assign(activity=act[keep], confidence=conf[keep])[is_mot[keep]]
    tr = base.assign(transition=trn[keep])[is_tr[keep]]

    out = RawData(tz=tz, problems=problems, skipped=len(problems))
    out.points, d1, out.user_codes = finish_table_coded(lp, "points")
    out.motion, d2 = finish_table(mo, "motion")
    out.transitions, d3 = finish_table(tr, "transitions")
    out.duplicates = d1 + d2 + d3
    return out


def _time_zones(users: np.ndarray, plat: np.ndarray, zones: np.ndarray, keep: np.ndarray
                ) -> dict[str, str]:
    """Most frequent ``metadata.time_zone`` per user, phone entries first (server entries carry
    the server's zone), :data:`schema.DEFAULT_TZ` when none is given."""
    out: dict[str, str] = {}
    df = pd.DataFrame({"u": users, "p": plat, "z": zones})[keep]
    for u, g in df.groupby("u", sort=True):
        phone = g.loc[g["p"].isin(("android", "ios")) & g["z"].notna(), "z"]
        anyz = g.loc[g["z"].notna(), "z"]
        zs = phone if len(phone) else anyz
        out[str(u)] = str(zs.value_counts(sort=True).index[0]) if len(zs) else schema.DEFAULT_TZ
    return out


def read_emission(path: str | Path, skip_bad: bool = False, user_id: str | None = None,
                  locations: str = "filtered") -> RawData:
    """Read an e-mission JSON export (``.json`` or ``.json.gz``); see :func:`entries_to_raw`."""
    entries = load_entries(path)
    return entries_to_raw(entries, str(path), user_id=user_id, skip_bad=skip_bad,
                          locations=locations)
