"""Data: seed sets and benchmarks loaded from their original formats into the records of docs/formats.md.

`load_seeds(source, limit)` and `load_benchmark(name, kind, source, limit)` take a `source` mapping from
the config (its `format` picks the reader); the offline demo's own data lives in `demo/`.
"""

from agorabench.data.loaders import (
    BENCHMARK_FORMATS,
    BENCHMARK_KINDS,
    SEED_FORMATS,
    demo_path,
    load_benchmark,
    load_seeds,
    validate_item,
)

__all__ = [
    "BENCHMARK_FORMATS",
    "BENCHMARK_KINDS",
    "SEED_FORMATS",
    "demo_path",
    "load_benchmark",
    "load_seeds",
    "validate_item",
]
