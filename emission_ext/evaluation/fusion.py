"""Fusion acceptance figures on a synthetic world with ground truth.

Why: the issue's acceptance bars (records attached to the right section, fused section modes,
record-only trips for trips the phone missed) must be measured by something anyone can re-run,
not asserted by a test. This module goes the operator's way: the world's operator files (with
their faults: clock skew, duplicated and malformed rows, missing validations) are ingested by
the real ingest code, then fused by :func:`pipeline.fusion.fuse` against

* ``truth`` -- the world's true sections of the trips the phone recorded, their modes reduced
  to what a classifier could see (BIKESHARE -> BICYCLING, CARSHARE -> CAR, FERRY -> UNKNOWN,
  confidence 0.7), so the operator records must do the refining;
* ``segmented`` -- the sections our own segmentation (:func:`pipeline.segment.segment_user`)
  finds in the world's noisy points, their modes from the shipped classifier as in a run,
  fused with the segmentation's clean points and the GTFS lines' stops (as the ``fuse``
  stage does).

A segmented section is scored against the true section it overlaps most in time.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import schema
from .segmentation import overlap_pairs

PHYSICAL = {"BIKESHARE": "BICYCLING", "CARSHARE": "CAR", "FERRY": "UNKNOWN"}


@dataclass
class FusionScore:
    """Figures of one fusion run against the truth (shares are in 0-1)."""

    against: str
    records: int                 # records ingested (good rows) that have a truth row
    attach_total: int            # of which the phone recorded the trip
    attach_right: int            # attached to the true section (segmented: the one it overlaps most)
    attach_cover: int            # attached to a section covering >= half of the true section's time
    attach_best_ours: int        # attached to our section that overlaps the true section most
    fused_sections: int          # sections whose mode came from a record
    fused_mode_right: int
    missed_total: int            # records whose trip the phone missed
    missed_record_only: int
    conflicts: int
    seconds: float
    note: str = ""

    @property
    def attach_share(self) -> float:
        return self.attach_right / self.attach_total if self.attach_total else float("nan")

    @property
    def mode_share(self) -> float:
        return self.fused_mode_right / self.fused_sections if self.fused_sections else float("nan")

    @property
    def record_only_share(self) -> float:
        return self.missed_record_only / self.missed_total if self.missed_total else float("nan")

    def line(self) -> str:
        return (f"{self.against}: attached right {self.attach_right}/{self.attach_total} = {self.attach_share:.3f} "
                f"(covering the true section: {self.attach_cover / max(self.attach_total, 1):.3f}; "
                f"our section closest to the true one: {self.attach_best_ours / max(self.attach_total, 1):.3f}); "
                f"fused-section modes right {self.fused_mode_right}/{self.fused_sections} = {self.mode_share:.3f}; "
                f"record-only trips for phone-missed records {self.missed_record_only}/{self.missed_total} = "
                f"{self.record_only_share:.3f}; conflicts {self.conflicts}; fuse {self.seconds:.2f} s"
                + (f" ({self.note})" if self.note else ""))


def ingest_world_files(files: dict[str, pd.DataFrame], ref) -> tuple[pd.DataFrame, dict]:
    """Ingest a world's operator files (DataFrames of strings, as written) with the real
    ingest code; return (records, per-file stats)."""
    from parking_ingest.ingest import ingest_bytes as parking_ingest
    from yelo_ingest.cardmap import empty_card_map
    from yelo_ingest.ingest import ingest_bytes as yelo_ingest

    def raw(df):
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        return buf.getvalue().encode("utf-8")

    cm = yelo_ingest(raw(files["card_map.csv"]), "card_map.csv", ref=ref, card_map=empty_card_map())
    stats = {"card_map.csv": cm.stats}
    out = []
    for name, df in files.items():
        if name == "card_map.csv":
            continue
        fn = parking_ingest if name.startswith("parking") else yelo_ingest
        res = fn(raw(df), name, ref=ref, card_map=cm.card_map)
        stats[name] = res.stats
        out.append(res.records)
    recs = pd.concat(out, ignore_index=True) if out else schema.empty("records")
    return recs, stats


def _best_truth(ours: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """For each of our sections, the true section id it overlaps most in time (same user)."""
    a = ours[["user_id", "section_id", "start_ts", "end_ts"]].reset_index(drop=True)
    ai, bi, ov = overlap_pairs(a, truth)
    c = pd.DataFrame({"a": ai, "ov": ov, "truth_id": truth["section_id"].to_numpy(dtype=object)[bi]})
    c = c.sort_values(["a", "ov"], ascending=[True, False]).drop_duplicates("a")
    out = pd.Series(None, index=range(len(a)), dtype=object)
    out[c["a"].to_numpy()] = c["truth_id"].to_numpy()
    return pd.Series(out.to_numpy(), index=pd.MultiIndex.from_frame(a[["user_id", "section_id"]]))


def score(res, truth_sections: pd.DataFrame, record_truth: pd.DataFrame, against: str, seconds: float,
          exact_ids: bool, note: str = "") -> FusionScore:
    """Score a :class:`pipeline.fusion.FusionResult` against the world's truth."""
    rt = record_truth.drop_duplicates(["source", "record_id"]).set_index(["source", "record_id"])
    r = res.records.set_index(["source", "record_id"])
    r = r[r.index.isin(rt.index)]
    t = rt.loc[r.index]
    missed = t["phone_missed"].to_numpy(dtype=bool)
    rec_trips = set(res.trips.loc[res.trips["origin"] == "record", "trip_id"])
    tmode = truth_sections.set_index(["user_id", "section_id"])["mode"]
    # sections of GPS trips whose mode a record set (record-only sections have no true
    # section to compare with; they are counted by the record-only figure)
    fused = res.sections[res.sections["mode_source"].isin(["yelo", "parking"])
                         & ~res.sections["trip_id"].isin(rec_trips)]
    if exact_ids:
        mapped = pd.Series(r["section_id"].to_numpy(dtype=object), index=r.index)
        fused_truth = pd.Series(fused["section_id"].to_numpy(dtype=object),
                                index=pd.MultiIndex.from_frame(fused[["user_id", "section_id"]]))
    else:
        best = _best_truth(res.sections, truth_sections)
        key = pd.MultiIndex.from_arrays([r["user_id"].to_numpy(dtype=object), r["section_id"].to_numpy(dtype=object)])
        mapped = pd.Series(best.reindex(key).to_numpy(dtype=object), index=r.index)
        fused_truth = best.reindex(pd.MultiIndex.from_frame(fused[["user_id", "section_id"]]))
    right = (mapped.to_numpy(dtype=object) == t["section_id"].to_numpy(dtype=object))
    # looser: the attached section covers at least half of the true section's time
    ours = res.sections.set_index(["user_id", "section_id"])[["start_ts", "end_ts"]]
    okey = pd.MultiIndex.from_arrays([r["user_id"].to_numpy(dtype=object), r["section_id"].to_numpy(dtype=object)])
    tkey = pd.MultiIndex.from_arrays([r["user_id"].to_numpy(dtype=object), t["section_id"].to_numpy(dtype=object)])
    tsi = truth_sections.set_index(["user_id", "section_id"])[["start_ts", "end_ts"]]
    o0, o1 = (schema.to_unix(ours["start_ts"].reindex(okey)), schema.to_unix(ours["end_ts"].reindex(okey)))
    t0, t1 = (schema.to_unix(tsi["start_ts"].reindex(tkey)), schema.to_unix(tsi["end_ts"].reindex(tkey)))
    cover = (np.minimum(o1, t1) - np.maximum(o0, t0)) / np.maximum(t1 - t0, 1.0)
    covered = np.nan_to_num(cover, nan=0.0) >= 0.5
    # fusion's own choice: the record sits on the section of ours that overlaps its true
    # section most (the best the segmentation offers)
    if exact_ids:
        best_ours_right = right
    else:
        best_ours = _best_truth(truth_sections, res.sections)  # true section -> our section
        bo = best_ours.reindex(tkey).to_numpy(dtype=object)
        best_ours_right = bo == r["section_id"].to_numpy(dtype=object)
    fkey = pd.MultiIndex.from_arrays([fused["user_id"].to_numpy(dtype=object), fused_truth.to_numpy(dtype=object)])
    true_mode = tmode.reindex(fkey).to_numpy(dtype=object)
    mode_right = fused["mode"].to_numpy(dtype=object) == true_mode
    return FusionScore(
        against=against, records=len(r), attach_total=int((~missed).sum()),
        attach_right=int(right[~missed].sum()), attach_cover=int(covered[~missed].sum()),
        attach_best_ours=int(best_ours_right[~missed].sum()), fused_sections=len(fused), fused_mode_right=int(mode_right.sum()),
        missed_total=int(missed.sum()), missed_record_only=int(r["trip_id"][missed].isin(rec_trips).sum()),
        conflicts=len(res.conflicts), seconds=seconds, note=note)


def evaluate_world(world, *, segmented: bool = True, params=None) -> tuple[list[FusionScore], dict]:
    """Ingest the world's operator files, fuse against true and (optionally) segmented
    sections, and score both. Returns (scores, ingest stats per file)."""
    import time

    from pipeline.fusion import FusionParams, fuse, route_stops
    from yelo_ingest.refs import build_reference_index

    from ..reference import load_bike_stations, load_car_parks, load_gtfs

    params = params or FusionParams()
    gtfs = load_gtfs(tables=("routes", "stops", "trips", "stop_times"))
    ref = build_reference_index(gtfs, load_bike_stations(), load_car_parks())
    records, stats = ingest_world_files(world.operator_files, ref)
    truth_trips = world.truth_trips
    on = ~truth_trips["phone_off"].astype(bool).to_numpy()
    trips = truth_trips[on][schema.TRIPS.names]
    kept = pd.MultiIndex.from_frame(trips[["user_id", "trip_id"]])
    ts = world.truth_sections
    secs = ts[pd.MultiIndex.from_frame(ts[["user_id", "trip_id"]]).isin(kept)][schema.SECTIONS.names].copy()
    secs["mode"] = secs["mode"].map(lambda m: PHYSICAL.get(m, m))
    secs["mode_confidence"] = 0.7
    secs["mode_source"] = "classifier"
    scores = []
    t0 = time.perf_counter()
    res = fuse(trips, secs, records, params)
    scores.append(score(res, ts, world.record_truth, "truth sections", time.perf_counter() - t0, exact_ids=True))
    if segmented:
        from pipeline.segment import segment_user

        from ..models.apply import apply_modes, transit_index

        # as a run does: segment (ferry crossings need the transit index), then the shipped
        # classifier (rules when none is shipped), then fuse
        transit = transit_index()
        seg = segment_user(world.points, world.motion, world.transitions, transit=transit)
        ssec = apply_modes(seg["sections"], seg["labelled_points"], world.motion, transit=transit)
        note = "modes: " + ("the shipped classifier" if (ssec["mode_source"] == "classifier").any()
                            else "rules (no model shipped)")
        t0 = time.perf_counter()
        res = fuse(seg["trips"], ssec, records, params, points=seg["labelled_points"], stops=route_stops(gtfs))
        scores.append(score(res, ts, world.record_truth, "segmented sections", time.perf_counter() - t0,
                            exact_ids=False, note=note))
    return scores, stats
