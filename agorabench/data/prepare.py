"""Stage functions of the data rules: load a configured source and write it in the project's format."""

from __future__ import annotations

from typing import Any

from agorabench.data.loaders import load_benchmark, load_seeds
from agorabench.jsonl import write_jsonl


def prepare_seeds(source: dict[str, Any], out_path: str) -> dict[str, int]:
    rows = load_seeds(source)
    return {"records": write_jsonl(out_path, rows)}


def prepare_benchmark(name: str, spec: dict[str, Any], out_path: str) -> dict[str, int]:
    items = load_benchmark(name, spec["kind"], spec["source"], limit=spec.get("limit"))
    return {"items": write_jsonl(out_path, items)}
