"""Loaders for the reference data shipped in ``emission_ext/data`` (see its SOURCES.md).

Why: algorithms take reference tables (GTFS stops and shapes, bike-share stations, car parks)
as arguments and never open files themselves; these small functions are the one place where
the shipped files are read. Each accepts another path so an operator can point at a newer feed.
"""
from __future__ import annotations

import io
import zipfile
from importlib import resources
from pathlib import Path

import pandas as pd

from .errors import ConfigError

DATA = Path(str(resources.files("emission_ext") / "data"))
GTFS_PATH = DATA / "yelo_gtfs" / "yelo_gtfs_2025-11.zip"
BIKE_STATIONS_PATH = DATA / "yelo_velo" / "yelo_velo_stations_snapshot_100of135.csv"
CAR_PARKS_PATH = DATA / "larochelle_parking" / "od_parking_dispo_2025-12-05T1520.csv"
EMISSION_REAL_DIR = DATA / "emission_real"


def _require(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: reference file not found")
    return path


def load_gtfs(path: str | Path = GTFS_PATH, tables=("routes", "trips", "stops", "stop_times",
                                                      "shapes", "calendar", "calendar_dates")
              ) -> dict[str, pd.DataFrame]:
    """Read a GTFS zip into DataFrames keyed by file name (without ``.txt``).

    Id columns are read as strings. Missing optional files give empty frames.
    """
    path = _require(path)
    out: dict[str, pd.DataFrame] = {}
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ConfigError(f"{path}: not a GTFS zip ({exc})") from None
    with zf:
        names = {Path(n).name: n for n in zf.namelist()}
        for t in tables:
            member = names.get(f"{t}.txt")
            if member is None:
                out[t] = pd.DataFrame()
                continue
            raw = zf.read(member)
            df = pd.read_csv(io.BytesIO(raw), dtype=str, encoding="utf-8-sig", keep_default_na=False,
                             na_values=[""])
            for col in ("stop_lat", "stop_lon", "shape_pt_lat", "shape_pt_lon",
                        "shape_dist_traveled"):
                if col in df:
                    df[col] = pd.to_numeric(df[col], errors="coerce")
            for col in ("stop_sequence", "shape_pt_sequence", "route_type", "direction_id"):
                if col in df:
                    df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
            out[t] = df
    return out


def load_bike_stations(path: str | Path = BIKE_STATIONS_PATH) -> pd.DataFrame:
    """Yélo bike-share stations: ``station_id, name, lat, lon, docks``."""
    df = pd.read_csv(_require(path), dtype={"recordid": str})
    return pd.DataFrame({
        "station_id": df["recordid"].astype(str),
        "name": df["station_nom"].astype(str),
        "lat": df["station_latitude"].astype(float),
        "lon": df["station_longitude"].astype(float),
        "docks": df["nombre_emplacements"].astype("Int64"),
    })


def load_car_parks(path: str | Path = CAR_PARKS_PATH) -> pd.DataFrame:
    """La Rochelle car parks: ``car_park_id, name, lat, lon, capacity`` (national ids 17300-P-xxx).

    The open-data snapshots carry one row without id or coordinates (a car park whose sensor
    is off); it is dropped.
    """
    df = pd.read_csv(_require(path), dtype={"id": str})
    df = df.dropna(subset=["id", "ylat", "xlong"]).reset_index(drop=True)
    return pd.DataFrame({
        "car_park_id": df["id"].astype(str),
        "name": df["nom"].astype(str),
        "lat": df["ylat"].astype(float),
        "lon": df["xlong"].astype(float),
        "capacity": df["nb_places"].astype("Int64"),
    })


def emission_real_days() -> list[Path]:
    """The real e-mission phone days shipped with the product (raw entries, not ground truth)."""
    return sorted(p for p in EMISSION_REAL_DIR.glob("*.json.gz")
                  if not p.name.endswith((".ground_truth.json.gz", ".user_inputs.json.gz")))
