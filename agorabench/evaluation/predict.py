"""Student inference: every model answers its benchmarks' prompts through the generation-backend interface.

One job per model: S_0 and S_ref answer every benchmark, a student its domain's, with one backend (one
engine start and weights load) for all of them. Each prompt is the user turn of the model's chat template
(students learned that format in SFT; S_0 and S_ref are prompted the same way so the three are
comparable). Each benchmark keeps its own predictions file and durable call store beside it, so a killed
job keeps every answer it finished and a rerun asks only for the rest. A stored answer is keyed by what
answered it (`model_identity`: the backend's defining keys and a fingerprint of local weights), so a
retrained student never gets its predecessor's answers back from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError
from agorabench.jsonl import read_jsonl, write_json, write_jsonl
from agorabench.llm.base import Backend, Request, Sampling, request_id
from agorabench.llm.factory import make_backend
from agorabench.llm.identity import model_identity
from agorabench.llm.store import CallStore
from agorabench.progress import run_stores_with_progress


@dataclass(frozen=True)
class BenchmarkTask:
    """One benchmark of an inference job: its prepared items, where its predictions go, its sampling."""

    name: str
    items_path: str
    out_path: str
    sampling: dict[str, Any]


def build_requests(
    items: list[dict[str, Any]], sampling: Sampling, model_key: str, identity: str = ""
) -> list[Request]:
    parts = ("predict", model_key, identity) if identity else ("predict", model_key)
    return [
        Request(
            id=request_id(*parts, item["id"], item["prompt"], sampling),
            messages=({"role": "user", "content": item["prompt"]},),
            sampling=sampling,
            meta={"item_id": item["id"]},
        )
        for item in items
    ]


def tasks_from(
    benchmarks: list[str], items: list[str], outputs: list[str], sampling: dict[str, dict[str, Any]]
) -> list[BenchmarkTask]:
    """Benchmark tasks from a rule's parallel lists; a length or name mismatch is a workflow bug."""
    if not (len(benchmarks) == len(items) == len(outputs)):
        raise ConfigError(
            "evaluation", f"{len(benchmarks)} benchmarks, {len(items)} item files, {len(outputs)} outputs"
        )
    missing = sorted(set(benchmarks) - set(sampling))
    if missing:
        raise ConfigError(f"benchmarks.{missing[0]}", "has no evaluation sampling")
    return [BenchmarkTask(b, i, o, sampling[b]) for b, i, o in zip(benchmarks, items, outputs, strict=True)]


def predict_benchmarks(
    tasks: list[BenchmarkTask], model_key: str, llm: Callable[[], Backend], identity: str = ""
) -> dict[str, dict[str, Any]]:
    """Every task's predictions: the answers missing from the tasks' call stores are asked in one backend
    call (a local backend batches them together, whatever benchmark they come from); counts by task."""
    asked = []
    for task in tasks:
        items = read_jsonl(task.items_path, required=("id", "prompt"))
        requests = build_requests(items, Sampling.from_config(task.sampling), model_key, identity)
        store = CallStore(Path(task.out_path).with_name("predictions.calls.jsonl"))
        asked.append((task, items, requests, store, sum(r.id in store for r in requests)))
    missing = [(task.name, store, reqs) for task, _, reqs, store, _ in asked if store.pending(reqs)]
    if missing:
        desc = f"{model_key} {'+'.join(name for name, _, _ in missing)}"
        run_stores_with_progress(llm(), [(store, reqs) for _, store, reqs in missing], desc=desc)
    return {task.name: _write_predictions(task, *rest) for task, *rest in asked}


def predict_benchmark(
    task: BenchmarkTask, model_key: str, llm: Callable[[], Backend], identity: str = ""
) -> dict[str, Any]:
    return predict_benchmarks([task], model_key, llm, identity)[task.name]


def _write_predictions(
    task: BenchmarkTask, items: list[dict], requests: list[Request], store: CallStore, reused: int
) -> dict[str, Any]:
    rows = []
    for item, req in zip(items, requests, strict=True):
        c = store.get(req.id)
        assert c is not None
        rows.append(
            {
                "id": item["id"],
                "prompt": item["prompt"],
                "output": c.text,
                "input_tokens": c.input_tokens,
                "output_tokens": c.output_tokens,
                "finish_reason": c.finish_reason,
            }
        )
    write_jsonl(task.out_path, rows)
    return {
        "predictions": len(rows),
        "reused_from_store": reused,
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "finish_length": sum(r["finish_reason"] == "length" for r in rows),
    }


def predict(
    *,
    model_key: str,
    model_dir: str,
    tasks: list[BenchmarkTask],
    summary_path: str,
    backend: str = "transformers",
    batch_size: int = 16,
    backend_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write every benchmark's predictions with one backend, started only if some answer is missing;
    the summary (and the returned job counts) hold each benchmark's counts. `backend_options`
    (`evaluation.backend_options`) are further backend keys, e.g. vLLM's max_model_len."""
    spec = {"backend": backend, "model": model_key, "model_dir": model_dir, "batch_size": batch_size}
    spec |= backend_options or {}
    per_benchmark, counts = predict_all(tasks, model_key, spec, key="evaluation")
    write_json(summary_path, {"model": model_key, "benchmarks": per_benchmark, **counts})
    return counts | {"benchmarks": per_benchmark}


def predict_all(
    tasks: list[BenchmarkTask], model_key: str, spec: dict[str, Any], key: str
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Each task's predictions with one backend (built from `spec`, named `key` in errors), started only
    if some answer is missing: per-benchmark counts and their sums, with `engine_starts` (0 or 1)."""
    engine: list[Backend] = []

    def llm() -> Backend:
        if not engine:
            engine.append(make_backend(dict(spec), key=key))
        return engine[0]

    try:
        identity = model_identity(spec)
        per_benchmark = predict_benchmarks(tasks, model_key, llm, identity)
    finally:
        for b in engine:
            b.close()
    counts = {
        k: sum(c[k] for c in per_benchmark.values())
        for k in ("predictions", "reused_from_store", "output_tokens", "finish_length")
    }
    return per_benchmark, counts | {"engine_starts": len(engine)}
