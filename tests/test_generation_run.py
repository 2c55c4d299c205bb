"""The generation orchestrator, driven by a small deterministic Backend that returns canned completions."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from agorabench.errors import AgoraBenchError, ConfigError, DataError
from agorabench.generation.instances import load_themes
from agorabench.generation.prompts import template_path
from agorabench.generation.run import generate_set, take_prefix
from agorabench.jsonl import read_json, read_jsonl
from agorabench.llm.base import Backend, Completion, Request, Sampling

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
THEMES, FIRST_WORDS = load_themes(ROOT / "config" / "themes.yaml")
SEEDS = [
    {
        "id": f"seed/{i}",
        "instruction": f"What is {i} + {i}?",
        "response": f"{2 * i}\n[RESULT] {2 * i} [/RESULT]",
    }
    for i in range(12)
]
SAMPLING = Sampling(temperature=1.0, top_p=0.9, max_tokens=256, stop=("[END]",))
PRICE = {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "date": "2024-12-01"}
RECORD_KEYS = {
    "id",
    "instruction",
    "response",
    "index",
    "request_id",
    "demo_ids",
    "source_id",
    "theme",
    "first_word",
}

Reply = Callable[[Request], "str | tuple[str, str]"]


def math_instance(req: Request) -> str:
    i = req.meta["index"]
    return f"Problem {i}: compute {i} * 3.\nOUTPUT: Multiply.\n[RESULT] {3 * i} [/RESULT]\n[END]"


def no_result_tag(req: Request) -> str:
    return f"Problem {req.meta['index']}?\nOUTPUT: It is some number.\n[END]"


class CannedBackend(Backend):
    """Answers each request with `reply(request)`: the text, or (text, finish_reason)."""

    name = "canned"
    model = "canned-1"

    def __init__(self, reply: Reply = math_instance, *, attempts: int = 1, die_after: int | None = None):
        self.reply = reply
        self.attempts = attempts
        self.die_after = die_after
        self.requests: list[Request] = []

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for req in requests:
            if self.die_after is not None and len(self.requests) >= self.die_after:
                raise RuntimeError("backend process killed")
            self.requests.append(req)
            out = self.reply(req)
            text, finish = out if isinstance(out, tuple) else (out, "stop")
            yield Completion(
                id=req.id,
                text=text,
                finish_reason=finish,
                input_tokens=1000,
                output_tokens=100,
                latency_s=0.01,
                attempts=self.attempts,
                model=self.model,
            )


def run(
    tmp: Path,
    backend: Backend,
    *,
    n: int = 6,
    max_attempts: int = 20,
    domain: str = "math",
    method: str = "instance_generation",
    variant: str = "agorabench",
    tag: str = "a",
    **kw,
) -> dict:
    args = {
        "generator": "gen",
        "backend": backend,
        "sampling": SAMPLING,
        "domain": domain,
        "method": method,
        "variant": variant,
        "template_path": str(template_path(PROMPTS, variant, domain, method)),
        "seeds": SEEDS,
        "themes": THEMES[domain],
        "first_words": FIRST_WORDS[domain],
        "n": n,
        "max_attempts": max_attempts,
        "seed": 0,
        "store_path": str(tmp / "calls.jsonl"),
        "out_path": str(tmp / f"data_{tag}.jsonl"),
        "stats_path": str(tmp / f"stats_{tag}.json"),
        "progress": False,
    } | kw
    return generate_set(**args)


def test_exact_counts_and_record_format(tmp_path):
    backend = CannedBackend()
    stats = run(tmp_path, backend, n=6)
    rows = read_jsonl(tmp_path / "data_a.jsonl")
    assert [r["index"] for r in rows] == list(range(6))
    assert all(set(r) == RECORD_KEYS for r in rows)
    assert rows[4]["id"] == "gen/math/instance_generation/agorabench/4"
    assert rows[4]["instruction"] == "Problem 4: compute 4 * 3." and rows[4]["response"].endswith("[/RESULT]")
    assert [r["request_id"] for r in rows] == [
        q.id for q in sorted(backend.requests, key=lambda q: q.meta["index"])
    ]
    assert all(len(r["demo_ids"]) == 3 and r["theme"] in THEMES["math"] for r in rows)
    assert {r["source_id"] for r in rows} == {None} and {r["first_word"] for r in rows} == {None}
    assert (stats["valid"], stats["shortfall"], stats["calls"], stats["calls_new"]) == (6, 0, 6, 6)
    assert stats["rejected"] == {} and stats["finish_reasons"] == {"stop": 6}
    assert read_json(tmp_path / "stats_a.json") == stats
    assert stats["models"] == ["canned-1"] and stats["cost_usd"] is None


def test_rejected_outputs_are_counted_and_retried_with_the_same_prompt(tmp_path):
    def reply(req: Request) -> str:
        bad = req.meta["index"] % 2 == 0 and req.meta["attempt"] == 0
        return no_result_tag(req) if bad else math_instance(req)

    backend = CannedBackend(reply)
    stats = run(tmp_path, backend, n=6)
    assert (stats["valid"], stats["calls"], stats["rejected"]) == (6, 9, {"math_result_count": 3})
    first, retry = [q for q in backend.requests if q.meta["index"] == 2]
    assert first.messages == retry.messages and first.id != retry.id
    assert first.sampling.seed != retry.sampling.seed and retry.meta["attempt"] == 1
    row = read_jsonl(tmp_path / "data_a.jsonl")[2]
    assert row["request_id"] == retry.id


def test_resume_makes_zero_new_calls(tmp_path):
    first = run(tmp_path, CannedBackend(), n=5, price=PRICE)
    again = CannedBackend()
    second = run(tmp_path, again, n=5, price=PRICE, tag="b")
    assert again.requests == []
    assert (second["calls"], second["calls_from_store"], second["calls_new"]) == (5, 5, 0)
    assert second["cost_usd"] == first["cost_usd"] and second["cost_usd_new"] == 0.0
    assert (tmp_path / "data_a.jsonl").read_bytes() == (tmp_path / "data_b.jsonl").read_bytes()


def test_restart_after_a_crash_pays_only_for_missing_calls(tmp_path):
    clean = tmp_path / "clean"
    run(clean, CannedBackend(no_result_tag), n=4, max_attempts=10)
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="killed"):
        run(crashed, CannedBackend(no_result_tag, die_after=7), n=4, max_attempts=10)
    assert not (crashed / "data_a.jsonl").exists()
    resumed = CannedBackend(no_result_tag)
    stats = run(crashed, resumed, n=4, max_attempts=10)
    assert len(resumed.requests) == 3 and stats["calls_from_store"] == 7
    assert len(read_jsonl(crashed / "calls.jsonl")) == 10  # every call paid for exactly once
    assert read_json(crashed / "stats_a.json")["rejected"] == read_json(clean / "stats_a.json")["rejected"]


def test_unrelated_settings_keep_stored_calls(tmp_path):
    run(tmp_path, CannedBackend(), n=4)
    backend = CannedBackend()
    stats = run(tmp_path, backend, n=6, max_attempts=50, price=PRICE, tag="b", chunk_size=2)
    assert sorted(q.meta["index"] for q in backend.requests) == [4, 5]  # only the new indices
    assert stats["calls_from_store"] == 4
    rows_a, rows_b = read_jsonl(tmp_path / "data_a.jsonl"), read_jsonl(tmp_path / "data_b.jsonl")
    assert rows_b[:4] == rows_a
    hotter = CannedBackend()
    run(tmp_path, hotter, n=4, tag="c", sampling=dataclasses.replace(SAMPLING, temperature=0.7))
    assert len(hotter.requests) == 4  # sampling defines the request: a change is a new call


def test_shortfall_is_reported_when_the_budget_runs_out(tmp_path):
    def reply(req: Request) -> str:
        return no_result_tag(req) if req.meta["index"] == 2 else math_instance(req)

    stats = run(tmp_path, CannedBackend(reply), n=5, max_attempts=8)
    assert (stats["valid"], stats["shortfall"], stats["calls"]) == (4, 1, 8)
    assert stats["rejected"] == {"math_result_count": 4}  # index 2: attempts 0..3
    assert [r["index"] for r in read_jsonl(tmp_path / "data_a.jsonl")] == [0, 1, 3, 4]
    short = run(tmp_path / "fresh", CannedBackend(), n=5, max_attempts=3)
    assert (short["valid"], short["shortfall"], short["calls"]) == (3, 2, 3)


def test_cost_tokens_and_backend_retries(tmp_path):
    stats = run(tmp_path, CannedBackend(attempts=3), n=4, price=PRICE)
    assert (stats["input_tokens"], stats["output_tokens"]) == (4000, 400)
    assert stats["cost_usd"] == pytest.approx(4000 / 1e6 * 3.0 + 400 / 1e6 * 15.0)  # 0.018
    assert stats["cost_usd_new"] == pytest.approx(0.018)
    assert stats["retries"] == 8 and stats["price"] == PRICE
    with pytest.raises(ConfigError, match=r"config key 'price'.*missing date"):
        run(tmp_path, CannedBackend(), price={"input_per_mtok": 1, "output_per_mtok": 2})
    with pytest.raises(ConfigError, match=re.escape("config key 'price.output_per_mtok'")):
        run(tmp_path, CannedBackend(), price=PRICE | {"output_per_mtok": "free"})


def test_finish_reasons_and_backend_errors(tmp_path):
    def reply(req: Request) -> str | tuple[str, str]:
        if req.meta["attempt"] == 0 and req.meta["index"] == 0:
            return "Problem 0?\nOUTPUT: Let us expand the", "length"
        if req.meta["attempt"] == 0 and req.meta["index"] == 1:
            return "", "error"
        return math_instance(req)

    stats = run(tmp_path, CannedBackend(reply), n=3)
    assert stats["rejected"] == {"backend_error": 1, "finish_length": 1}
    assert stats["finish_reasons"] == {"error": 1, "length": 1, "stop": 3}
    assert stats["valid"] == 3


def test_prompts_are_identical_across_generators(tmp_path):
    a, b = CannedBackend(), CannedBackend()
    run(tmp_path, a, n=4, domain="instruction_following", generator="gen-a", tag="a")
    run(tmp_path, b, n=4, domain="instruction_following", generator="gen-b", tag="b")
    assert [q.messages for q in a.requests] == [q.messages for q in b.requests]
    assert not {q.id for q in a.requests} & {q.id for q in b.requests}


def test_response_generation_uses_seed_i_and_checks_the_seed_count(tmp_path):
    def reply(req: Request) -> str:
        return f"It is {req.meta['index'] * 2}.\n[RESULT] {req.meta['index'] * 2} [/RESULT] [END]"

    stats = run(tmp_path, CannedBackend(reply), n=3, method="response_generation")
    rows = read_jsonl(tmp_path / "data_a.jsonl")
    assert stats["valid"] == 3 and [r["source_id"] for r in rows] == ["seed/0", "seed/1", "seed/2"]
    assert (
        rows[1]["instruction"] == "What is 1 + 1?" and rows[1]["demo_ids"] == [] and rows[1]["theme"] is None
    )
    with pytest.raises(ConfigError, match="config key 'n': 13 instances asked but seeds has 12"):
        run(tmp_path, CannedBackend(reply), n=13, method="response_generation")
    wrapped = run(tmp_path, CannedBackend(reply), n=13, method="response_generation", wrap=True, tag="w")
    assert wrapped["valid"] == 13 and read_jsonl(tmp_path / "data_w.jsonl")[12]["source_id"] == "seed/0"


def test_quality_enhancement_json_variant(tmp_path):
    def reply(req: Request) -> str:
        i = req.meta["index"]
        return json.dumps(
            {"instruction": f"Compute {i} + {i}.", "response": f"Sum.\n[RESULT] {2 * i} [/RESULT]"}
        )

    stats = run(tmp_path, CannedBackend(reply), n=2, method="quality_enhancement", variant="json")
    rows = read_jsonl(tmp_path / "data_a.jsonl")
    assert (
        stats["valid"] == 2
        and rows[1]["instruction"] == "Compute 1 + 1."
        and rows[1]["source_id"] == "seed/1"
    )
    assert rows[0]["id"] == "gen/math/quality_enhancement/json/0"


def test_bad_inputs_name_what_is_wrong(tmp_path):
    bad = [*SEEDS[:3], {"id": "seed/x", "instruction": "Q"}]
    with pytest.raises(DataError, match=r"seeds.jsonl, record 'seed/x': seed 3: field 'response' missing"):
        run(tmp_path, CannedBackend(), seeds=bad, seeds_name="seeds.jsonl")
    with pytest.raises(ConfigError, match="config key 'max_attempts'"):
        run(tmp_path, CannedBackend(), max_attempts=-1)
    with pytest.raises(ConfigError, match="config key 'n'"):
        run(tmp_path, CannedBackend(), n=-2)
    with pytest.raises(ConfigError, match="config key 'variant'"):
        run(
            tmp_path,
            CannedBackend(),
            template_path=str(PROMPTS / "json" / "math_instance_generation.txt"),
            variant="fancy",
        )


class DroppingBackend(CannedBackend):
    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        yield from super().complete(requests[:-1])


def test_a_backend_that_drops_requests_is_an_error(tmp_path):
    with pytest.raises(AgoraBenchError, match="returned no completion"):
        run(tmp_path, DroppingBackend(), n=3)


def test_progress_bar_on_stderr(tmp_path, capsys):
    run(tmp_path, CannedBackend(), n=3, price=PRICE, progress=True)
    err = capsys.readouterr().err
    assert "gen math/instance_generation/agorabench" in err and "3/3" in err
    assert "valid=100%" in err and "$=0.01" in err


def test_take_prefix(tmp_path):
    run(tmp_path, CannedBackend(), n=6)
    assert take_prefix(tmp_path / "data_a.jsonl", tmp_path / "p4.jsonl", 4) == {
        "size": 4,
        "instances": 4,
        "shortfall": 0,
    }
    assert [r["index"] for r in read_jsonl(tmp_path / "p4.jsonl")] == [0, 1, 2, 3]
    assert read_jsonl(tmp_path / "p4.jsonl") == read_jsonl(tmp_path / "data_a.jsonl")[:4]


def test_take_prefix_of_a_short_pool_reports_the_shortfall(tmp_path, caplog):
    run(tmp_path, CannedBackend(), n=6)
    counts = take_prefix(tmp_path / "data_a.jsonl", tmp_path / "p10.jsonl", 10)
    assert counts == {"size": 10, "instances": 6, "shortfall": 4}
    assert read_jsonl(tmp_path / "p10.jsonl") == read_jsonl(tmp_path / "data_a.jsonl")
    assert "fewer than the 10 asked for" in caplog.text


@pytest.mark.slow
def test_real_smollm2_through_transformers(tmp_path, smollm2_dir):
    tb = pytest.importorskip("agorabench.llm.transformers_backend")
    backend = tb.TransformersBackend(smollm2_dir, dtype="float32", batch_size=4, num_threads=1)
    sampling = Sampling(temperature=0.7, top_p=0.9, max_tokens=24, stop=("[END]",))
    kw = {
        "n": 2,
        "max_attempts": 3,
        "domain": "instruction_following",
        "method": "response_generation",
        "sampling": sampling,
    }
    stats = run(tmp_path, backend, **kw)
    rows = read_jsonl(tmp_path / "data_a.jsonl")
    assert 2 <= stats["calls"] <= 3 and stats["valid"] + stats["shortfall"] == 2 == stats["n"]
    assert len(rows) == stats["valid"] and sum(stats["rejected"].values()) == stats["calls"] - stats["valid"]
    assert stats["input_tokens"] > 100 and stats["models"] == [Path(smollm2_dir).name]
    unused = CannedBackend()
    again = run(tmp_path, unused, tag="b", **kw)
    assert unused.requests == [] and again["calls_from_store"] == stats["calls"]
    assert (tmp_path / "data_a.jsonl").read_bytes() == (tmp_path / "data_b.jsonl").read_bytes()


def flaky_until_attempt(k: int) -> Reply:
    """Rejects attempts below k of every index (no [RESULT] tag), accepts from attempt k on."""

    def reply(req: Request) -> str:
        return no_result_tag(req) if req.meta["attempt"] < k else math_instance(req)

    return reply


def test_attempts_per_round_batches_retries_without_changing_the_result(tmp_path):
    one = CannedBackend(flaky_until_attempt(2))
    stats_one = run(tmp_path / "one", one, n=4, max_attempts=40, attempts_per_round=1)
    four = CannedBackend(flaky_until_attempt(2))
    stats_four = run(tmp_path / "four", four, n=4, max_attempts=40, attempts_per_round=4)
    rows_one = read_jsonl(tmp_path / "one" / "data_a.jsonl")
    rows_four = read_jsonl(tmp_path / "four" / "data_a.jsonl")
    # Each index keeps its lowest valid attempt (2) either way: the same instances, same request ids.
    assert [r["request_id"] for r in rows_one] == [r["request_id"] for r in rows_four]
    assert stats_one["valid"] == stats_four["valid"] == 4
    # One attempt per round needs 3 rounds of 4 calls; four per round asks 16 calls in a single round.
    assert stats_one["calls"] == 12 and stats_four["calls"] == 16
    assert stats_four["rejected"] == {"math_result_count": 8}
