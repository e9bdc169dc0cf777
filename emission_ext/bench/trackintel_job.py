"""trackintel side of the benchmark, run as a script by another interpreter.

Why: trackintel is a benchmark-only dependency that may need an older pandas than the
product's venv, so this file imports nothing from emission_ext and is run with
``--trackintel-python`` (by default ``.venv-bench/bin/python``). It reads the benchmark CSV,
then runs ``generate_staypoints`` (sliding, 100 m, 5 min), ``generate_triplegs`` and
``create_activity_flag`` (5 min) + ``generate_trips``, and prints one JSON line with its counts and timings.

Usage: python trackintel_job.py POINTS.csv
"""
import json
import sys
import time


def main(path):
    t0 = time.perf_counter()
    import geopandas as gpd
    import pandas as pd
    import trackintel as ti

    df = pd.read_csv(path, dtype={"user_id": str})
    df["tracked_at"] = pd.to_datetime(df["ts"], unit="s", utc=True)
    gdf = gpd.GeoDataFrame(df[["user_id", "tracked_at"]],
                           geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326")
    pfs = ti.Positionfixes(gdf) if hasattr(ti, "Positionfixes") else gdf.as_positionfixes
    t1 = time.perf_counter()
    pfs, sp = pfs.generate_staypoints(method="sliding", dist_threshold=100, time_threshold=5)
    pfs, tpls = pfs.generate_triplegs(sp)
    sp = sp.create_activity_flag(method="time_threshold", time_threshold=5)
    res = ti.preprocessing.generate_trips(sp, tpls)
    trips = res[-1]
    t2 = time.perf_counter()
    print(json.dumps({"points": len(df), "staypoints": len(sp), "triplegs": len(tpls),
                      "trips": len(trips), "load_s": t1 - t0, "segment_s": t2 - t1,
                      "trackintel": getattr(ti, "__version__", "?"), "pandas": pd.__version__}))


if __name__ == "__main__":
    main(sys.argv[1])
