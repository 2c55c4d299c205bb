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
    else:  # a local judge is loaded only for calls not stored (judge_calls may have made them all)
        from agorabench.llm.factory import backend_for_stores

        with backend_for_stores(judge_spec, key=f"judges.{judge_name}") as judge:
            score = _judged(scorer, items, predictions, judge, out_path, predictions_path, settings)
    write_jsonl(details_path, score.per_item)
    result = score.to_dict(model, benchmark)
    write_json(out_path, result)
    return {"n": result["n"], "value": result["value"], **result.get("counts", {})}


def _judged(
    scorer: Any,
    items: list[dict],
    predictions: list[dict],
    judge: Any,
    out_path: str,
    predictions_path: str,
    settings: dict[str, Any],
) -> Any:
    cache_path = str(Path(out_path).with_name("judge_calls.jsonl"))
    source = predictions_path
    return scorer.score(items, predictions, judge=judge, cache_path=cache_path, source=source, **settings)


def judge_calls(
    pairs: list[dict[str, Any]], *, judge_spec: dict[str, Any], judge_name: str, out_path: str
) -> dict[str, Any]:
    """Make one judge's calls for many (model, benchmark) pairs in one job (one model load): each pair is
    scored as its score_judged job scores it, into that job's call store, which then needs no judge.
    `pairs`: {model, benchmark, kind, items, predictions, out, settings} each. Writes a summary."""
    from agorabench.evaluation.scorers import get_scorer
    from agorabench.llm.factory import make_backend
    from agorabench.llm.store import CallStore

    counts = {}
    with make_backend(judge_spec, key=f"judges.{judge_name}") as judge:
        for p in pairs:
            items = read_jsonl(p["items"], required=("id", "prompt"))
            predictions = read_jsonl(p["predictions"], required=("id", "output"))
            score = _judged(get_scorer(p["kind"]), items, predictions, judge, p["out"], p["predictions"],
                            dict(p["settings"]))  # fmt: skip
            store = CallStore(Path(p["out"]).with_name("judge_calls.jsonl"))
            counts[f"{p['model']} {p['benchmark']}"] = {"n": score.n, "calls": len(store)}
    summary = {"judge": judge_name, "pairs": counts}
    write_json(out_path, summary)
    return {"pairs": len(counts), "calls": sum(c["calls"] for c in counts.values())}
