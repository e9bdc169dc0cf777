"""A synthetic La Rochelle: testers, their phones and their operator records, with ground truth.

Why: there is no real tester data yet, and every part of the product (segmentation, mode
classifier, fusion, carbon, the demo, the benchmarks) needs data that behaves like the real
thing and whose truth is known. ``generate_world`` builds such a world from the real reference
data (Yélo GTFS, bike-share stations, car parks); ``write_world`` writes it in the formats the
product ingests (e-mission timeseries JSON, CSV points, operator CSV files) plus the truth.

    >>> from emission_ext.synth import generate_world, write_world
    >>> world = generate_world(testers=5, days=2, seed=1)
    >>> write_world(world, "out/")

See docs/synth.md.
"""
from .stats import RANGES, check_stats, world_stats
from .world import (Reference, World, WorldParams, build_world, days_for_points, generate_world,
                    load_reference)
from .writer import write_world

__all__ = ["generate_world", "build_world", "write_world", "World", "WorldParams", "Reference",
           "load_reference", "days_for_points", "world_stats", "check_stats", "RANGES"]
