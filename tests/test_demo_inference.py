"""The demo's inference levers: the vectorised top-p sampler and one inference job per model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import torch

from agorabench import workflow as wf
from agorabench.errors import DataError
from agorabench.evaluation.predict import BenchmarkTask, predict, predict_benchmarks
from agorabench.jsonl import read_jsonl, write_jsonl
from agorabench.llm.base import Backend, Completion, Request
from agorabench.llm.identity import model_identity
from agorabench.llm.transformers_backend import TransformersBackend, _RowSampler


def _reference_draw(scores: torch.Tensor, seeds: list[int], temperature: float, top_p: float) -> list[int]:
    """Top-p by a full sort of each row on its own, with the same per-row uniform draw."""
    out = []
    for row, seed in zip(scores, seeds, strict=True):
        u = torch.rand(1, generator=torch.Generator().manual_seed(seed))
        probs = torch.softmax(row.float() / temperature, dim=-1)
        p, order = torch.sort(probs, descending=True)
        p = p.masked_fill((p.cumsum(-1) - p) >= top_p, 0.0)
        cdf = p.cumsum(-1)
        out.append(int(order[min(int(torch.searchsorted(cdf, u * cdf[-1])), len(cdf) - 1)]))
    return out


@pytest.mark.parametrize("spread", [8.0, 0.5])  # peaked rows (nucleus inside top_k) and flat ones (wider)
def test_vectorised_sampler_draws_what_a_full_sort_draws(spread: float) -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 5000, generator=gen) * spread
    seeds = list(range(100, 106))
    picked = _RowSampler(seeds, 0.9, 0.95, top_k=64)(None, scores).argmax(-1).tolist()
    assert picked == _reference_draw(scores, seeds, 0.9, 0.95)


def test_sampler_without_nucleus_samples_the_whole_distribution() -> None:
    scores = torch.tensor([[0.0, 0.0, 0.0, 0.0]]).repeat(4000, 1)  # uniform over 4 tokens
    picked = _RowSampler(list(range(4000)), 1.0, 1.0)(None, scores).argmax(-1)
    counts = torch.bincount(picked, minlength=4).tolist()
    assert all(850 < c < 1150 for c in counts), counts  # 1000 each; 4.6 standard deviations of slack


def test_inference_jobs_cover_every_evaluation_once() -> None:
    import yaml

    for name in ("config.yaml", "demo.yaml"):
        config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / name).read_text())
        pairs = [(m, b) for m, benches in wf.inference_jobs(config) for b in benches]
        assert sorted(pairs) == sorted(wf.evaluations(config)), name
        assert len(wf.inference_jobs(config)) == 2 + len(wf.students(config))


def _benchmark(tmp: Path, name: str, n: int) -> BenchmarkTask:
    items = [{"id": f"{name}-{i}", "prompt": f"What is {i} + {i}? Answer with a number."} for i in range(n)]
    write_jsonl(tmp / f"{name}.jsonl", items)
    out = tmp / "eval" / name / "predictions.jsonl"
    return BenchmarkTask(name, str(tmp / f"{name}.jsonl"), str(out), {"temperature": 0.0, "max_tokens": 6})


def test_one_engine_for_all_benchmarks_and_a_killed_job_keeps_what_it_finished(
    smollm2_dir: Path, tmp_path: Path
) -> None:
    first, second = _benchmark(tmp_path, "gsm8k", 3), _benchmark(tmp_path, "math", 2)
    broken = BenchmarkTask("math", str(tmp_path / "absent.jsonl"), second.out_path, second.sampling)
    args = {"model_key": "base", "model_dir": str(smollm2_dir), "summary_path": str(tmp_path / "eval/p.json")}
    with pytest.raises(DataError, match=r"absent\.jsonl"):  # a missing benchmark stops it before any call
        predict(tasks=[first, broken], **args)
    assert not Path(first.out_path).with_name("predictions.calls.jsonl").exists()
    real = TransformersBackend(smollm2_dir, batch_size=2, num_threads=1, model="base")

    class Killed(Backend):  # the real model, killed after its third answer (both benchmarks in one call)
        def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
            assert len(requests) == 5
            for done, comp in enumerate(real.complete(requests)):
                if done == 3:
                    raise KeyboardInterrupt
                yield comp

    identity = model_identity({"backend": "transformers", "model": "base", "model_dir": str(smollm2_dir)})
    with pytest.raises(KeyboardInterrupt):
        predict_benchmarks([first, second], "base", Killed, identity)
    stored = [len(read_jsonl(Path(t.out_path).with_name("predictions.calls.jsonl"))) for t in (first, second)]
    assert sum(stored) == 3  # every answer finished before the kill is kept
    counts = predict(tasks=[first, second], **args)
    assert counts["engine_starts"] == 1  # one model load served both benchmarks
    assert [counts["benchmarks"][b]["reused_from_store"] for b in ("gsm8k", "math")] == stored  # none twice
    assert [r["id"] for r in read_jsonl(second.out_path)] == ["math-0", "math-1"]
    summary = json.loads((tmp_path / "eval/p.json").read_text())
    assert summary["predictions"] == 5 and set(summary["benchmarks"]) == {"gsm8k", "math"}
    again = predict(tasks=[first, second], **args)
    assert again["engine_starts"] == 0 and again["reused_from_store"] == 5  # all stored: no model load


def test_plan_counts_inference_jobs_per_model_and_the_engine_starts_saved() -> None:
    import yaml

    from agorabench.budget import LOAD_MINUTES, estimate

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/config.yaml").read_text())
    inf = estimate(config).inference
    assert (
        inf["jobs"]
        == len(wf.inference_jobs(config))
        < inf["jobs_per_benchmark"]
        == len(wf.evaluations(config))
    )
    saved = (inf["jobs_per_benchmark"] - inf["jobs"]) * LOAD_MINUTES["predict"] / 60  # tokens are the same
    assert inf["gpu_hours_per_benchmark"] - inf["gpu_hours"] == pytest.approx(saved)
