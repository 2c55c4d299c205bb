"""Table 7 measured: each generator answers the six benchmarks itself, through its own backend (its API,
or vLLM / transformers on its local weights), with the students' prompts and sampling; the evaluation
stage's scorers then score the answers as those of model `generators/<generator>`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agorabench.evaluation.predict import BenchmarkTask, predict_benchmark, tasks_from
from agorabench.jsonl import write_json
from agorabench.llm.base import Backend
from agorabench.llm.factory import make_backend


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
    engine: list[Backend] = []

    def llm() -> Backend:
        if not engine:
            engine.append(make_backend(dict(backend_spec), key=f"generators.{generator}"))
        return engine[0]

    try:
        per_benchmark = {t.name: predict_benchmark(t, model_key, llm) for t in tasks}
    finally:
        for b in engine:
            b.close()
    counts = {
        key: sum(c[key] for c in per_benchmark.values())
        for key in ("predictions", "reused_from_store", "output_tokens", "finish_length")
    }
    summary = {"model": model_key, "generator": generator, "backend": backend_spec["backend"]}
    write_json(summary_path, summary | {"benchmarks": per_benchmark, **counts})
    return counts | {"engine_starts": len(engine)}
