"""One call from raw points to places, trips, sections and labelled points.

Why: the runner stage, the ``process`` command and the benchmark all need the same chain
(clean -> trips -> sections). Chaining the public functions would sort and project the points
three times; this module projects them once (one :class:`pipeline.trips.Track`) and hands the
same arrays to every step. It accepts one or many users and stays pure.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .clean import CleanParams, clean_points_coded
from .sections import SectionParams, sections_from_track
from .trips import TripParams, build_trips, detect_trips, make_track


@dataclass(frozen=True)
class SegmentParams:
    """Parameters of the three steps."""

    clean: CleanParams = field(default_factory=CleanParams)
    trips: TripParams = field(default_factory=TripParams)
    sections: SectionParams = field(default_factory=SectionParams)


def segment_user(points: pd.DataFrame, motion: pd.DataFrame | None = None,
                 transitions: pd.DataFrame | None = None,
                 params: SegmentParams = SegmentParams(), *,
                 labelled: bool | str = True, transit=None, codes=None
                 ) -> dict[str, pd.DataFrame]:
    """Clean points and segment them into places, trips and sections.

    Parameters
    ----------
    points : DataFrame
        Schema ``points`` of one or many users, any order. An extra ``tz`` column (IANA
        name) becomes the ``tz`` of places and trips.
    motion, transitions : DataFrame, optional
        Schema ``motion`` and ``transitions`` when the phone sent them.
    params : SegmentParams
        Cleaning, trip and section thresholds.
    labelled : bool or "arrays"
        Build ``labelled_points`` (default). ``False`` saves its memory when only the
        tables are wanted (``labelled_points`` is then None). ``"arrays"``: no
        ``labelled_points`` but ``section_points``, the sections' points as the arrays the
        mode features read (:class:`pipeline.features.SectionPoints`), at a fraction of the cost.
    transit : pipeline.transit.TransitIndex, optional
        Reference transit lines: with it, ferry crossings (slower than a walk, told apart by
        their position on the water between two quays) become sections of their own.
    codes : (codes, users), optional
        :func:`pipeline.clean.user_codes` of ``points["user_id"]`` when known (a reader's
        ``RawData.user_codes``, for these same points): saves computing them again.

    Returns
    -------
    dict
        ``places``, ``trips``, ``sections`` (schema tables), ``labelled_points`` (clean points
        + ``trip_id``, ``section_id``) and ``removed`` (dropped points + ``reason``).
    """
    clean, removed, coded = clean_points_coded(points, params.clean, codes)
    tr = make_track(clean, coded)  # the codes and order clean_points_coded found
    s, e = detect_trips(tr, motion, transitions, params.trips)
    places, trips = build_trips(tr, s, e)
    del clean
    sections, lab = sections_from_track(tr, trips, s, e, motion, params.sections,
                                        labelled=labelled, transit=transit)
    if labelled == "arrays":
        return {"places": places, "trips": trips, "sections": sections, "labelled_points": None,
                "section_points": lab, "removed": removed}
    return {"places": places, "trips": trips, "sections": sections,
            "labelled_points": lab, "removed": removed}
