"""Stand-in pipeline stages for the runner tests (NOT the product's segmentation).

``standin_segment`` splits a user's points into trips at time gaps, vectorised, so the runner
can be tested without depending on :mod:`pipeline.segment`; ``standin_count`` reads its trips
(to test chaining), ``standin_refine`` and ``standin_fuse`` rewrite tables other stages wrote,
and ``standin_fail`` fails for users whose id starts with ``bad``.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from emission_ext import schema

GAP_S = 300.0


class _Segment:
    NAME = "standin_segment"
    VERSION = "1"
    INPUTS = ("points",)
    OUTPUTS = ("trips",)

    @staticmethod
    def run(inputs, ctx):
        p = inputs["points"].sort_values("ts")
        if len(p) == 0:
            return {"trips": schema.empty("trips")}
        t = schema.to_unix(p["ts"])
        new = np.r_[True, np.diff(t) > GAP_S]
        grp = np.cumsum(new) - 1
        first = np.flatnonzero(new)
        last = np.r_[first[1:] - 1, len(t) - 1]
        lat, lon = p["lat"].to_numpy(), p["lon"].to_numpy()
        trips = pd.DataFrame({
            "user_id": ctx.user_id,
            "trip_id": [f"{ctx.user_id}-t{i}" for i in range(len(first))],
            "start_ts": t[first], "end_ts": t[last],
            "start_lat": lat[first], "start_lon": lon[first],
            "end_lat": lat[last], "end_lon": lon[last],
            "start_place_id": None, "end_place_id": None,
            "distance_m": np.bincount(grp, minlength=len(first)) * 10.0,
            "duration_s": t[last] - t[first],
            "tz": ctx.tz,
        })
        return {"trips": schema.coerce(trips, "trips")}


class _Count:
    NAME = "standin_count"
    INPUTS = ("trips",)
    OUTPUTS = ("trip_counts",)

    @staticmethod
    def run(inputs, ctx):
        return {"trip_counts": pd.DataFrame({"user_id": [ctx.user_id],
                                             "n_trips": [len(inputs["trips"])]})}


class _Fail:
    NAME = "standin_fail"
    INPUTS = ("points",)
    OUTPUTS = ("fail_out",)

    @staticmethod
    def run(inputs, ctx):
        if ctx.user_id.startswith("bad"):
            raise ValueError("stand-in failure")
        return {"fail_out": pd.DataFrame({"user_id": [ctx.user_id], "ok": [True]})}


class _Refine:
    """Rewrites the trips it reads (like ``modes`` rewrites sections)."""

    NAME = "standin_refine"
    INPUTS = ("trips",)
    OUTPUTS = ("trips",)

    @staticmethod
    def run(inputs, ctx):
        t = inputs["trips"]
        return {"trips": t.assign(distance_m=t["distance_m"] * 2.0)}


class _Fuse:
    """Rewrites trips again and also rewrites an externally appended table it reads (like
    ``fuse`` with the ingested ``records``); here the stand-in for records is ``motion``."""

    NAME = "standin_fuse"
    INPUTS = ("trips", "motion")
    OUTPUTS = ("trips", "motion")

    @staticmethod
    def run(inputs, ctx):
        t, m = inputs["trips"], inputs["motion"]
        return {"trips": t.assign(origin="gps", distance_m=t["distance_m"] + len(m)),
                "motion": m.assign(confidence=100.0)}


def _module(name, cls):
    import types

    mod = types.ModuleType(f"{__name__}.{name}")
    for a in ("NAME", "VERSION", "INPUTS", "OUTPUTS"):
        if hasattr(cls, a):
            setattr(mod, a, getattr(cls, a))
    mod.run = cls.run
    sys.modules[mod.__name__] = mod
    return mod


segment = _module("segment", _Segment)
count = _module("count", _Count)
fail = _module("fail", _Fail)
refine = _module("refine", _Refine)
fuse = _module("fuse", _Fuse)

SEGMENT = f"{__name__}.segment"
COUNT = f"{__name__}.count"
FAIL = f"{__name__}.fail"
REFINE = f"{__name__}.refine"
FUSE = f"{__name__}.fuse"
