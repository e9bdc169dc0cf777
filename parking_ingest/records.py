"""Parking sessions -> the schema ``records`` table.

Why: the parking operator's sessions (Alliance for Parking Data Standards session model,
national car-park ids ``17300-P-xxx``) tell that the tester's car entered a car park at a
time and left at another. Fusion uses the car park's coordinates and the entry/exit times
to confirm the CAR sections arriving at / leaving the car park. Pure and vectorised.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from yelo_ingest.records import place_coords, finish_records
from yelo_ingest.refs import ReferenceIndex


def sessions_to_records(good: pd.DataFrame, users: np.ndarray, ref: ReferenceIndex) -> pd.DataFrame:
    """Validated ``parking_sessions`` rows -> records (source ``parking``, kind
    ``parking_session``; ``start_ts`` = entry, ``end_ts`` = exit or null while parked;
    start and end coordinates = the car park; ``fare_product`` = the rate type)."""
    n = len(good)
    lat, lon = place_coords(good["car_park_id"], ref.car_parks)
    return finish_records({
        "user_id": users, "record_id": good["session_id"].astype(str).to_numpy(),
        "source": np.full(n, "parking", dtype=object), "kind": np.full(n, "parking_session", dtype=object),
        "start_ts": good["entry_time"].to_numpy(), "end_ts": good["exit_time"].to_numpy(),
        "car_park_id": good["car_park_id"].to_numpy(),
        "start_lat": lat, "start_lon": lon, "end_lat": lat, "end_lon": lon,
        "amount_eur": good["amount_eur"].to_numpy(dtype="float64", na_value=np.nan),
        "fare_product": good["rate_type"].to_numpy(),
    }, n)


CONVERTERS = {"parking_sessions": sessions_to_records}
