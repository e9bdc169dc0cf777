"""The built GTFS transit index is cached as a folder of memory-mapped .npy files."""
from __future__ import annotations

import numpy as np

from emission_ext.models import apply


def test_transit_index_cache_folder_round_trip_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("EMISSION_EXT_CACHE", str(tmp_path))
    apply.transit_index.cache_clear()
    try:
        built = apply.transit_index()
        folders = [p for p in tmp_path.iterdir() if p.name.startswith("transit-")]
        assert len(folders) == 1 and folders[0].is_dir() and not folders[0].name.endswith(".tmp")
        assert (folders[0] / "dist_bus.npy").exists()
        apply.transit_index.cache_clear()
        loaded = apply.transit_index()
        assert isinstance(loaded.dist_bus, np.memmap) or isinstance(loaded.dist_bus.base, np.memmap)
        for k in ("dist_bus", "dist_ferry", "cell_keys", "cell_routes", "stop_xy", "rail_xy"):
            np.testing.assert_array_equal(getattr(loaded, k), getattr(built, k))
        lat = built.lat0 + np.linspace(-0.05, 0.05, 500)
        lon = built.lon0 + np.linspace(-0.05, 0.05, 500)
        np.testing.assert_array_equal(loaded.distance_to_lines(lat, lon)[0], built.distance_to_bus_line(lat, lon))
        np.testing.assert_array_equal(loaded.distance_to_lines(lat, lon)[1], built.distance_to_ferry_line(lat, lon))
        pd_cols = list(built.stop_times.columns)
        assert list(loaded.stop_times.columns) == pd_cols
        # a damaged cache is rebuilt, not trusted
        (folders[0] / "meta.npy").write_bytes(b"not an npy file")
        apply.transit_index.cache_clear()
        again = apply.transit_index()
        np.testing.assert_array_equal(again.dist_bus, built.dist_bus)
        np.load(folders[0] / "meta.npy")  # rewritten whole
    finally:
        apply.transit_index.cache_clear()
