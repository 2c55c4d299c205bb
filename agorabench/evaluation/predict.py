"""Student inference: every model answers a benchmark's prompts through the generation-backend interface.

Each prompt is the user turn of the model's chat template (students learned that format in SFT; S_0 and
S_ref are prompted the same way so the three are comparable). Calls go through a durable store beside
the predictions, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agorabench.jsonl import read_jsonl, write_jsonl
from agorabench.llm.base import Request, Sampling, request_id
from agorabench.llm.factory import make_backend
from agorabench.llm.store import CallStore


def build_requests(items: list[dict[str, Any]], sampling: Sampling, model_key: str) -> list[Request]:
    return [
        Request(
            id=request_id("predict", model_key, item["id"], item["prompt"], sampling),
            messages=({"role": "user", "content": item["prompt"]},),
            sampling=sampling,
            meta={"item_id": item["id"]},
        )
        for item in items
    ]


def predict(
    *,
    model_key: str,
    model_dir: str,
    items_path: str,
    out_path: str,
    sampling: dict[str, Any],
    backend: str = "transformers",
    batch_size: int = 16,
) -> dict[str, Any]:
    """Write one prediction per benchmark item; returns counts for the job record."""
    items = read_jsonl(items_path, required=("id", "prompt"))
    requests = build_requests(items, Sampling.from_config(sampling), model_key)
    store = CallStore(Path(out_path).with_name("predictions.calls.jsonl"))
    reused = sum(r.id in store for r in requests)
    spec = {"backend": backend, "model": model_key, "model_dir": model_dir, "batch_size": batch_size}
    if store.pending(requests):
        with make_backend(spec, key="evaluation") as llm:
            for _ in store.run(llm, requests):
                pass
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
    write_jsonl(out_path, rows)
    return {
        "predictions": len(rows),
        "reused_from_store": reused,
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "finish_length": sum(r["finish_reason"] == "length" for r in rows),
    }
