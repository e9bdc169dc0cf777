"""Segmentation evaluation: our trips and sections against a reference (e-mission's own
pipeline output on real phone days, or the synthetic world's ground truth)."""
from .segmentation import (  # noqa: F401
    TripScore, match_trips, score_trips, section_boundary_hits, read_emission_ground_truth,
)
