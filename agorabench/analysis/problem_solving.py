"""Table 7 measured: each generator answers the six benchmarks itself, through its own backend (its API,
or vLLM / transformers on its local weights), with the students' prompts and sampling; the evaluation
stage's scorers then score the answers as those of model `generators/<generator>`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agorabench.evaluation.predict import BenchmarkTask, predict_all, tasks_from
from agorabench.jsonl import write_json


def predict_generator(
    *,
    generator: str,
    model_key: str,
    backend_spec: Mapping[str, Any],
    benchmarks: Sequence[str],
    items: Sequence[str],
    outputs: Sequence[str],
    sampling: Mapping[str, Mapping[str, Any]],
    summary_path: str,
) -> dict[str, Any]:
    """Every benchmark's predictions of `generator` with one backend (started only if an answer is
    missing); each benchmark's calls are stored beside its predictions, so a rerun pays only for the rest."""
    tasks: list[BenchmarkTask] = tasks_from(list(benchmarks), list(items), list(outputs), dict(sampling))
    per_benchmark, counts = predict_all(tasks, model_key, dict(backend_spec), key=f"generators.{generator}")
    summary = {"model": model_key, "generator": generator, "backend": backend_spec["backend"]}
    write_json(summary_path, summary | {"benchmarks": per_benchmark, **counts})
    return counts
