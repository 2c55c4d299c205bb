"""Several pools of one generator generated together (rule generate_settings): their rounds run side by
side and share backend calls, yet each pool is what it is alone; its own job then replays the store."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from test_generation_run import FIRST_WORDS, PROMPTS, SAMPLING, SEEDS, THEMES, CannedBackend, math_instance

from agorabench.errors import AgoraBenchError, ConfigError
from agorabench.generation.run import Budget, GenerationJob, Materials, Setting, generate, generate_pools
from agorabench.generation.stage import GenerationTask, _StoredOnly
from agorabench.llm.base import Completion, Request
from agorabench.llm.factory import LazyBackend, backend_for_stores
from agorabench.llm.store import CallStore

# (method, variant, first accepted attempt): pools that need 1, 2 and 3 rounds
POOLS = [("instance_generation", "agorabench", 0), ("response_generation", "agorabench", 1),
         ("quality_enhancement", "json", 2)]  # fmt: skip


def reply(req: Request) -> str:
    i, method = req.meta["index"], req.meta["method"]
    if req.meta["attempt"] < next(first for m, _, first in POOLS if m == method):
        return f"no result tag {i}\n[END]"
    if method == "instance_generation":
        return math_instance(req)
    if method == "response_generation":
        return f"It is {2 * i}.\n[RESULT] {2 * i} [/RESULT] [END]"
    return json.dumps({"instruction": f"Compute {i} + {i}.", "response": f"Sum.\n[RESULT] {2 * i} [/RESULT]"})


class CountingBackend(CannedBackend):
    """CannedBackend that also counts its calls (one call = one batch on a local model)."""

    def __init__(self) -> None:
        super().__init__(reply)
        self.calls: list[int] = []

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        self.calls.append(len(requests))
        return super().complete(requests)


def work(tmp: Path) -> list[tuple[GenerationJob, Materials]]:
    from agorabench.generation.prompts import template_path

    out = []
    for method, variant, _ in POOLS:
        d = tmp / method
        job = GenerationJob(
            setting=Setting("gen", "math", method, variant), sampling=SAMPLING, seed=0,
            budget=Budget(n=4, max_attempts=20), out_path=str(d / "pool.jsonl"),
            stats_path=str(d / "pool.stats.json"), store_path=str(d / "calls.jsonl"), progress=False,
        )  # fmt: skip
        materials = Materials(
            template_path=template_path(PROMPTS, variant, "math", method), seeds=SEEDS,
            themes=THEMES["math"], first_words=FIRST_WORDS["math"],
        )  # fmt: skip
        out.append((job, materials))
    return out


def without_wall(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k != "wall_s"}


def test_pools_together_are_the_pools_alone(tmp_path: Path) -> None:
    alone, together = CountingBackend(), CountingBackend()
    stats_alone = [generate(job, alone, m) for job, m in work(tmp_path / "alone")]
    stats_together = generate_pools(work(tmp_path / "together"), together)
    for (method, *_), a, t in zip(POOLS, stats_alone, stats_together, strict=True):
        assert without_wall(a) == without_wall(t) and t["valid"] == 4
        assert (tmp_path / "alone" / method / "pool.jsonl").read_bytes() == (
            tmp_path / "together" / method / "pool.jsonl"
        ).read_bytes()
    # Alone: 1 + 2 + 3 rounds, one call each. Together: 3 calls, each with every pool still running.
    assert alone.calls == [4, 4, 4, 4, 4, 4] and together.calls == [12, 8, 4]
    assert sorted(r.id for r in alone.requests) == sorted(r.id for r in together.requests)


def test_filled_stores_replay_without_the_backend(tmp_path: Path) -> None:
    filled = generate_pools(work(tmp_path / "filled"), CountingBackend(), write=False)
    assert not any((tmp_path / "filled" / m / "pool.jsonl").exists() for m, *_ in POOLS)  # the pools' jobs do
    task = GenerationTask(Setting("gen", "math", "quality_enhancement", "json"), {}, {}, "", "", "", "",
                          str(tmp_path / "filled" / "quality_enhancement" / "pool.jsonl"), "",
                          replay="settings.json")  # fmt: skip
    replayed = generate_pools(work(tmp_path / "filled"), _StoredOnly(task))
    alone = [generate(job, CountingBackend(), m) for job, m in work(tmp_path / "alone")]
    same = ("valid", "calls", "rejected", "finish_reasons", "input_tokens", "output_tokens", "cost_usd")
    for f, r, a in zip(filled, replayed, alone, strict=True):
        assert [f[k] for k in same] == [r[k] for k in same] == [a[k] for k in same]
        assert (r["calls_new"], f["calls_new"]) == (0, f["calls"])
        assert (tmp_path / "filled" / r["method"] / "pool.jsonl").read_bytes() == (
            tmp_path / "alone" / r["method"] / "pool.jsonl"
        ).read_bytes()
    (tmp_path / "filled" / "quality_enhancement" / "calls.jsonl").write_text(
        ""
    )  # a store lost after the fill
    with pytest.raises(AgoraBenchError, match=r"call\(s\) are not in .*calls.jsonl.*generate_settings"):
        generate_pools(work(tmp_path / "filled"), _StoredOnly(task))


def test_a_local_model_is_loaded_only_for_calls_not_stored(tmp_path: Path) -> None:
    spec = {"backend": "transformers", "model_dir": str(tmp_path / "no-such-model"), "dtype": "float32"}
    backend = backend_for_stores(spec, key="generators.g")
    assert isinstance(backend, LazyBackend) and not backend.built
    [(job, m)] = work(tmp_path)[:1]
    generate(job, CountingBackend(), m)
    stats = generate(job, backend, m)  # everything stored: the missing model is never opened
    assert stats["calls_new"] == 0 and not backend.built
    CallStore(job.store_path).path.write_text("")
    with pytest.raises(ConfigError, match="no-such-model is not a transformers model folder"):  # now it is
        generate(job, backend, m)


def test_a_bad_local_spec_fails_before_any_call() -> None:
    with pytest.raises(ConfigError, match=r"generators\.g\.batch_sise"):
        backend_for_stores({"backend": "transformers", "model_dir": "m", "batch_sise": 4}, key="generators.g")
