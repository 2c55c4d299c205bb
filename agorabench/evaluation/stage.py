"""Stage function of the score rules: one score file per (model, benchmark)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agorabench.jsonl import read_jsonl, write_json, write_jsonl


def score_benchmark(
    *,
    model: str,
    benchmark: str,
    kind: str,
    items_path: str,
    predictions_path: str,
    out_path: str,
    settings: dict[str, Any],
    judge_spec: dict[str, Any] | None = None,
    judge_name: str = "judge",
) -> dict[str, Any]:
    """Score predictions; writes the score JSON and, beside it, per-item verdicts (details.jsonl)."""
    from agorabench.evaluation.scorers import get_scorer

    items = read_jsonl(items_path, required=("id", "prompt"))
    predictions = read_jsonl(predictions_path, required=("id", "output"))
    scorer = get_scorer(kind)
    details_path = Path(out_path).with_name("details.jsonl")
    if judge_spec is None:
        score = scorer.score(items, predictions, source=predictions_path, **settings)
    else:
        from agorabench.llm.factory import make_backend

        with make_backend(judge_spec, key=f"judges.{judge_name}") as judge:
            score = scorer.score(
                items,
                predictions,
                judge=judge,
                cache_path=str(Path(out_path).with_name("judge_calls.jsonl")),
                source=predictions_path,
                **settings,
            )
    write_jsonl(details_path, score.per_item)
    result = score.to_dict(model, benchmark)
    write_json(out_path, result)
    return {"n": result["n"], "value": result["value"], **result.get("counts", {})}
