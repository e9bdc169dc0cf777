"""GeoLife ``.plt`` trajectories -> points table (reader only).

Why: some users already hold Microsoft Research's GeoLife trajectories and want to look at them
with the same tools. GeoLife's licence is non-commercial: this reader exists so such users can
*read* their files; the product never trains or tunes anything on GeoLife.

Format: 6 header lines, then ``lat, lon, 0, altitude_ft, days_since_1899-12-30, date, time``
(times in GMT). Read with pandas in one call; the date and time columns give the timestamp,
the fractional-day column is the fallback. ``source`` is ``geolife``; there is no accuracy.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError
from ._common import RawData, RowChecker, finish_table_coded, to_float

HEADER_LINES = 6
COLUMNS = ("lat", "lon", "zero", "altitude_ft", "days", "date", "time")
#: Unix epoch as a GeoLife day number (days since 1899-12-30).
EPOCH_DAYS = 25569.0


def user_from_path(path: str | Path) -> str:
    """GeoLife user id from the folder layout: ``Data/000/Trajectory/x.plt`` -> ``"000"``.

    When the file is not inside a ``Trajectory`` folder, its parent folder's name is used.
    """
    p = Path(path).resolve()
    parent = p.parent
    if parent.name.lower() == "trajectory":
        return parent.parent.name
    return parent.name


def read_plt(path: str | Path, skip_bad: bool = False, user_id: str | None = None) -> RawData:
    """Read one GeoLife ``.plt`` file into a :class:`RawData` (``source`` = ``"geolife"``).

    Parameters
    ----------
    path : str or Path
        The ``.plt`` file.
    skip_bad : bool
        Drop malformed rows (listed in ``problems``) instead of raising at the first one.
    user_id : str, optional
        User id; default from the folder layout (:func:`user_from_path`).

    Raises
    ------
    InputError
        Too few columns, or the first bad row (bad date/time, missing/NaN or out-of-range
        coordinates), naming the 1-based file line.
    """
    path = str(path)
    try:
        df = pd.read_csv(path, skiprows=HEADER_LINES, header=None, dtype=str,
                         keep_default_na=False, na_values=[""], skip_blank_lines=False,
                         skipinitialspace=True)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except pd.errors.EmptyDataError:
        df = pd.DataFrame(columns=range(len(COLUMNS)))
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error, OSError) as exc:
        raise InputError(path, f"cannot parse PLT: {str(exc).strip()}") from None
    if df.shape[1] < len(COLUMNS):
        raise InputError(path, f"expected {len(COLUMNS)} columns ({', '.join(COLUMNS)}), "
                         f"found {df.shape[1]}", HEADER_LINES + 1, COLUMNS[df.shape[1]])
    df = df.iloc[:, :len(COLUMNS)]
    df.columns = list(COLUMNS)
    line = np.arange(len(df), dtype="int64") + HEADER_LINES + 1
    blank = df.isna().all(axis=1).to_numpy()
    df, line = df[~blank].reset_index(drop=True), line[~blank]

    chk = RowChecker(path, line)
    lat, lat_nn = to_float(df["lat"])
    lon, lon_nn = to_float(df["lon"])
    chk.check_coords(lat, lon, df["lat"], df["lon"],
                     "lat", "lon", lat_nn, lon_nn)
    stamp = df["date"].str.strip() + "T" + df["time"].str.strip()
    dt = pd.to_datetime(stamp, format="%Y-%m-%dT%H:%M:%S", utc=True, errors="coerce")
    t = schema.to_unix(dt)
    days, _ = to_float(df["days"])
    t = np.where(np.isnan(t), (days - EPOCH_DAYS) * 86400.0, t)
    shown = df["date"].fillna("") + " " + df["time"].fillna("")
    chk.flag(~np.isfinite(t), "date/time", "bad timestamp {value!r} (expected YYYY-MM-DD HH:MM:SS)",
             shown)
    keep, problems = chk.report(skip_bad)
    uid = str(user_id) if user_id is not None else user_from_path(path)
    pts = pd.DataFrame({"user_id": uid, "ts": t, "lat": lat, "lon": lon, "accuracy_m": np.nan,
                        "source": "geolife"})[keep]
    out = RawData(problems=problems, skipped=len(problems))
    out.points, out.duplicates, out.user_codes = finish_table_coded(pts, "points")
    out.tz = {u: schema.DEFAULT_TZ for u in out.points["user_id"].unique()}
    return out
