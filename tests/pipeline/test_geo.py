"""The local metric plane of pipeline.geo against exact WGS84 geodesics (pyproj.Geod)."""
import numpy as np
import pytest

from pipeline.geo import project_by_group, tangent_plane

pyproj = pytest.importorskip("pyproj")


def _pairs(lat0, lon0, n, radius_m, rng):
    """Random pairs of points: the first within radius_m of the centre, the second 1-5 km on."""
    g = pyproj.Geod(ellps="WGS84")
    lon1, lat1, _ = g.fwd(np.full(n, lon0), np.full(n, lat0), rng.uniform(0, 360, n),
                          rng.uniform(0, radius_m, n))
    lon2, lat2, _ = g.fwd(lon1, lat1, rng.uniform(0, 360, n), rng.uniform(1, 5000, n))
    _, _, true = g.inv(lon1, lat1, lon2, lat2)
    return lat1, lon1, lat2, lon2, true


@pytest.mark.parametrize("lat0,lon0", [(46.16, -1.15), (37.4, -122.1), (64.1, -21.9),
                                       (-33.9, 151.2), (0.0, 179.95)])
def test_distances_within_0_1_percent_of_geodesic_within_50_km(lat0, lon0):
    rng = np.random.default_rng(1)
    lat1, lon1, lat2, lon2, true = _pairs(lat0, lon0, 5000, 50_000, rng)
    x1, y1 = tangent_plane(lat1, lon1, lat0, lon0)
    x2, y2 = tangent_plane(lat2, lon2, lat0, lon0)
    rel = np.abs(np.hypot(x2 - x1, y2 - y1) / true - 1.0)
    assert rel.max() < 1e-3
    assert rel.max() < 1e-4  # what the plane actually achieves (cos(50 km / R) ~ 3e-5)


def test_reference_point_is_origin_and_axes_point_east_and_north():
    x, y = tangent_plane(np.array([46.16, 46.16, 46.17]), np.array([-1.15, -1.14, -1.15]),
                         46.16, -1.15)
    assert abs(x[0]) < 1e-6 and abs(y[0]) < 1e-6
    assert x[1] > 700 and abs(y[1]) < 1.0  # 0.01 deg east at 46 N: ~772 m
    assert y[2] > 1100 and abs(x[2]) < 1e-6  # 0.01 deg north: ~1112 m


def test_project_by_group_sorted_and_unsorted_agree_on_distances():
    rng = np.random.default_rng(2)
    n = 4000
    grp = np.repeat([0, 1], n // 2)
    lat = np.where(grp == 0, 46.15, 37.4) + rng.normal(0, 0.05, n)
    lon = np.where(grp == 0, -1.15, -122.1) + rng.normal(0, 0.05, n)
    x, y = project_by_group(lat, lon, grp)
    perm = rng.permutation(n)
    xp, yp = project_by_group(lat[perm], lon[perm], grp[perm])
    inv = np.argsort(perm)
    xp, yp = xp[inv], yp[inv]
    same = grp[1:] == grp[:-1]
    d = np.hypot(np.diff(x), np.diff(y))[same]
    dp = np.hypot(np.diff(xp), np.diff(yp))[same]
    # another sample picks a slightly different tangent point: distances agree to ~1e-5
    assert np.allclose(d, dp, rtol=1e-4)
    _, _, true = pyproj.Geod(ellps="WGS84").inv(lon[:-1][same], lat[:-1][same],
                                                lon[1:][same], lat[1:][same])
    assert np.abs(d / true - 1).max() < 1e-3


def test_empty_input():
    x, y = project_by_group(np.empty(0), np.empty(0), np.empty(0, dtype=int))
    assert x.size == 0 and y.size == 0


def test_fast_distance_across_the_antimeridian_and_not():
    from pipeline.geo import fast_distance_m, haversine_m

    lat1, lon1 = np.array([10.0, 46.15]), np.array([179.999, -1.15])
    lat2, lon2 = np.array([10.0, 46.16]), np.array([-179.999, -1.14])
    d = fast_distance_m(lat1, lon1, lat2, lon2)
    ref = haversine_m(lat1, lon1, lat2, lon2)
    assert np.allclose(d, ref, rtol=1e-3)  # ~219 m across the date line, not ~39,000 km
    assert d[0] < 300
    alone = fast_distance_m(lat1[1:], lon1[1:], lat2[1:], lon2[1:])  # no step across it
    assert np.allclose(alone, ref[1:], rtol=1e-3)
