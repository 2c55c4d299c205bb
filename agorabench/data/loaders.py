"""The loaders' public entry points (seeds: seeds.py, benchmarks: benchmarks.py)."""

from __future__ import annotations

from agorabench.data._common import demo_path
from agorabench.data.benchmarks import BENCHMARK_FORMATS, BENCHMARK_KINDS, load_benchmark, validate_item
from agorabench.data.seeds import SEED_FORMATS, load_seeds

__all__ = [
    "BENCHMARK_FORMATS",
    "BENCHMARK_KINDS",
    "SEED_FORMATS",
    "demo_path",
    "load_benchmark",
    "load_seeds",
    "validate_item",
]
