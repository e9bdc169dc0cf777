"""GPX tracks -> points table.

Why: testers who also record with a sports watch or another app can export GPX, and planners
hand over GPX traces. The file is parsed as a stream (:class:`xml.etree.ElementTree.XMLPullParser`,
the incremental form of ``iterparse``, fed 64 KiB at a time): each finished ``trkpt`` is reduced
to a few strings and dropped from the tree, so a long track never sits in memory as a tree.
Line numbers for error messages are found afterwards, only for the points reported, by one
regular-expression scan of the file. Conversion and checks run over whole columns.

Read: ``trkpt`` (GPX 1.0 and 1.1, any namespace) ``lat``/``lon`` attributes, ``time``, and, when
present, ``hdop`` (accuracy ~ 5 m x HDOP) and GPX 1.0 ``speed``/``course``. ``source`` is ``gpx``.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path
from xml.etree.ElementTree import ParseError, XMLPullParser

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError
from ._common import RawData, RowChecker, finish_table_coded, parse_times, to_float

#: Metres of horizontal accuracy per unit of HDOP (a common rule of thumb for consumer GPS).
HDOP_TO_M = 5.0

_CHILDREN = ("time", "hdop", "speed", "course")
#: Bytes fed to the parser at a time.
CHUNK = 1 << 16
#: A ``<trkpt`` start tag, with or without a namespace prefix.
_TRKPT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?trkpt[\s>/]")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_gpx(path: str | Path) -> pd.DataFrame:
    """Stream the track points of a GPX file into raw string columns.

    Returns a frame with ``lat``, ``lon`` (attribute text or None) and ``time``, ``hdop``,
    ``speed``, ``course`` (element text or None), one row per ``<trkpt>`` in file order.

    Raises
    ------
    InputError
        Not well-formed XML (with the line), or not a GPX document.
    """
    path = str(path)
    cols: dict[str, list] = {k: [] for k in ("lat", "lon", *_CHILDREN)}
    parser = XMLPullParser(events=("start", "end"))
    root_seen = False
    parent = None
    names: dict[str, str] = {}  # namespaced tag -> local name
    try:
        with _open(path) as fh:
            while True:
                chunk = fh.read(CHUNK)
                if not chunk:
                    break
                parser.feed(chunk)
                for ev, el in parser.read_events():
                    try:
                        name = names[el.tag]
                    except KeyError:
                        name = names[el.tag] = _local(el.tag)
                    if ev == "start":
                        if not root_seen:
                            root_seen = True
                            if name != "gpx":
                                raise InputError(path, f"not a GPX file (root element <{name}>)", 1)
                        elif name == "trkseg":
                            parent = el
                    elif name == "trkpt":
                        cols["lat"].append(el.get("lat"))
                        cols["lon"].append(el.get("lon"))
                        found = dict.fromkeys(_CHILDREN)
                        for child in el:
                            cname = names.get(child.tag) or _local(child.tag)
                            if cname in found:
                                found[cname] = (child.text or "").strip() or None
                        for k in _CHILDREN:
                            cols[k].append(found[k])
                        el.clear()
                        if parent is not None:  # drop it from the tree: memory stays flat
                            try:
                                parent.remove(el)
                            except ValueError:
                                pass
            parser.close()
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise InputError(path, f"malformed XML: {exc}", line) from None
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, EOFError) as exc:
        raise InputError(path, f"cannot read the file: {exc}") from None
    if not root_seen:
        raise InputError(path, "empty file: expected a GPX document", 1)
    return pd.DataFrame(cols)


def _open(path: str):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def trkpt_lines(path: str | Path, index: np.ndarray) -> list[int | None]:
    """1-based line of the ``index``-th ``<trkpt>`` tags of a GPX file (for error messages).

    Found by one regular-expression scan of the file (only when something is reported), so
    parsing never has to track lines. ``None`` when the file's tags cannot be counted.
    """
    with _open(str(path)) as fh:
        data = fh.read()
    starts = np.fromiter((m.start() for m in _TRKPT.finditer(data)), dtype="int64")
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    lines = np.searchsorted(newlines, starts, side="left") + 1
    return [int(lines[i]) if 0 <= i < len(lines) else None for i in np.asarray(index)]


def read_gpx(path: str | Path, skip_bad: bool = False, user_id: str | None = None) -> RawData:
    """Read the track points of a GPX file into a :class:`RawData` (``source`` = ``"gpx"``).

    Parameters
    ----------
    path : str or Path
        GPX 1.0/1.1 file (``.gpx`` or ``.gpx.gz``).
    skip_bad : bool
        Drop malformed points (listed in ``problems``) instead of raising at the first one.
    user_id : str, optional
        User id of the track; default the file stem (``alice.gpx`` -> ``alice``).

    Raises
    ------
    InputError
        Malformed XML, or the first bad point: missing ``lat``/``lon`` attribute, coordinate not
        a number or out of range, missing or unreadable ``time``.
    """
    raw = parse_gpx(path)
    path = str(path)
    uid = str(user_id) if user_id is not None else Path(path).name.split(".")[0]
    chk = RowChecker(path, np.arange(len(raw)), line_of=lambda i: trkpt_lines(path, i))
    for att in ("lat", "lon"):
        chk.flag(raw[att].isna().to_numpy(), att, f"<trkpt> has no {att} attribute")
    lat, lat_nn = to_float(raw["lat"])
    lon, lon_nn = to_float(raw["lon"])
    chk.check_coords(lat, lon, raw["lat"], raw["lon"],
                     "lat", "lon", lat_nn, lon_nn)
    t, t_bad = parse_times(raw["time"], iso_only=True)
    chk.flag(t_bad, "time", "bad timestamp {value!r} (expected ISO-8601)",
             raw["time"])
    chk.flag(np.isnan(t), "time", "point has no <time>")
    hdop, h_bad = to_float(raw["hdop"])
    chk.flag(h_bad | (hdop < 0), "hdop", "bad hdop {value!r}", raw["hdop"])
    speed, _ = to_float(raw["speed"])
    course, _ = to_float(raw["course"])
    speed[speed < 0] = np.nan
    course[course < 0] = np.nan
    keep, problems = chk.report(skip_bad)
    pts = pd.DataFrame({"user_id": uid, "ts": t, "lat": lat, "lon": lon,
                        "accuracy_m": hdop * HDOP_TO_M, "speed_mps": speed, "heading": course,
                        "source": "gpx"})[keep]
    out = RawData(problems=problems, skipped=len(problems))
    out.points, out.duplicates, out.user_codes = finish_table_coded(pts, "points")
    out.tz = {u: schema.DEFAULT_TZ for u in out.points["user_id"].unique()}
    return out
