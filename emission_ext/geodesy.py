"""The Earth model every package shares: one radius, one local metric plane.

Why: segmentation, transit matching, features, advice and the synthetic world all turn WGS84
degrees into metres. Over a city, an equirectangular plane around a reference latitude is
accurate to a fraction of a per cent and costs two multiplications per point; keeping its
constants here means every module measures with the same metre. Part of the floor: imports
nothing of ours.
"""
from __future__ import annotations

import numpy as np

#: mean Earth radius (IUGG), metres
EARTH_RADIUS_M = 6_371_008.8


def metres_per_degree(lat0) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at latitude ``lat0`` (degrees)."""
    kx = np.cos(np.radians(lat0)) * np.pi / 180.0 * EARTH_RADIUS_M
    ky = np.pi / 180.0 * EARTH_RADIUS_M
    return kx, ky


def local_xy(lat, lon, lat0: float, lon0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees to an equirectangular plane around (``lat0``, ``lon0``), metres.

    Returns ``(x east, y north)`` arrays; ``y`` is measured from ``lat0``.
    """
    kx, ky = metres_per_degree(lat0)
    return ((np.asarray(lon, dtype="float64") - lon0) * kx,
            (np.asarray(lat, dtype="float64") - lat0) * ky)
