"""Benchmark harness: our segmentation against trackintel on the same CSV, each in its own
process, with wall time, throughput and peak memory measured from outside."""
