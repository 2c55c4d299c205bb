"""Generation modes: official demonstration pool and attempt budget, official validation, labels."""

from __future__ import annotations

import json
from pathlib import Path

from test_generation_run import SEEDS, CannedBackend, math_instance, run

from agorabench.jsonl import read_jsonl
from agorabench.llm.base import Request

OFFICIAL = {"demonstrations": "official", "validation": "official", "max_attempts_per_instance": 10}


def reject_first_attempt_of_even(req: Request) -> str:
    if req.meta["index"] % 2 == 0 and req.meta["attempt"] == 0:
        return f"Problem {req.meta['index']}?\nOUTPUT: no tag"
    return math_instance(req)


def _prompts(backend: CannedBackend, index: int) -> list[str]:
    reqs = sorted((r for r in backend.requests if r.meta["index"] == index), key=lambda r: r.meta["attempt"])
    return [r.messages[-1]["content"] for r in reqs]


def test_official_pool_grows_round_by_round(tmp_path):
    backend = CannedBackend(reject_first_attempt_of_even)
    stats = run(tmp_path, backend, n=12, max_attempts=200, **OFFICIAL)
    rows = {r["index"]: r for r in read_jsonl(tmp_path / "data_a.jsonl")}
    seed_ids = {s["id"] for s in SEEDS}
    first_round = {rows[i]["id"] for i in range(1, 12, 2)}  # odd indices: accepted in round 0
    assert stats["valid"] == 12 and stats["calls"] == 18 and stats["demonstrations"] == "official"
    for i in range(1, 12, 2):
        assert set(rows[i]["demo_ids"]) <= seed_ids  # round 0: the pool is the seeds
    retried = [set(rows[i]["demo_ids"]) for i in range(0, 12, 2)]
    assert all(ids <= seed_ids | first_round for ids in retried)
    assert any(ids & first_round for ids in retried)  # accepted instances were drawn as demonstrations
    assert all(len(rows[i]["demo_ids"]) == 3 for i in rows)


def test_official_prompt_is_redrawn_at_each_attempt_and_deterministic(tmp_path):
    backend = CannedBackend(reject_first_attempt_of_even)
    run(tmp_path / "a", backend, n=6, max_attempts=100, **OFFICIAL)
    first, retry = _prompts(backend, 0)
    assert first != retry  # new demonstrations and theme
    again = CannedBackend(reject_first_attempt_of_even)
    run(tmp_path / "b", again, n=6, max_attempts=100, **OFFICIAL)
    assert [r.id for r in again.requests] == [r.id for r in backend.requests]
    assert read_jsonl(tmp_path / "a" / "data_a.jsonl") == read_jsonl(tmp_path / "b" / "data_a.jsonl")
    resumed = CannedBackend(reject_first_attempt_of_even)
    stats = run(tmp_path / "a", resumed, n=6, max_attempts=100, tag="b", **OFFICIAL)
    assert stats["calls_new"] == 0 and resumed.requests == []


def test_seeds_only_keeps_the_prompt_across_attempts(tmp_path):
    backend = CannedBackend(reject_first_attempt_of_even)
    run(tmp_path, backend, n=4, max_attempts=100)
    first, retry = _prompts(backend, 0)
    assert first == retry


def test_official_budget_is_ten_attempts_per_instance(tmp_path):
    backend = CannedBackend(lambda req: "no output trigger and no result tag")
    stats = run(tmp_path, backend, n=3, max_attempts=30, attempts_per_round=4, **OFFICIAL)
    per_index = [len([r for r in backend.requests if r.meta["index"] == i]) for i in range(3)]
    assert per_index == [10, 10, 10] and stats["calls"] == 30
    assert stats["shortfall"] == 3 and stats["max_attempts_per_instance"] == 10
    assert stats["rejected"] == {"math_result_count": 30}


def test_official_validation_keeps_what_the_official_code_keeps(tmp_path: Path):
    # No OUTPUT: trigger: the official parser gives instruction = response = the text; strict rejects it.
    def no_trigger(req: Request) -> str:
        return f"Compute {req.meta['index']} + 1. [RESULT] {req.meta['index'] + 1} [/RESULT]"

    official = run(
        tmp_path / "o", CannedBackend(no_trigger), n=2, max_attempts=4, **OFFICIAL, labels={"x": 1}
    )
    strict = run(tmp_path / "s", CannedBackend(no_trigger), n=2, max_attempts=4)
    assert official["valid"] == 2 and official["validation"] == "official" and official["x"] == 1
    assert strict["valid"] == 0 and strict["rejected"] == {"missing_trigger": 4}
    row = read_jsonl(tmp_path / "o" / "data_a.jsonl")[0]
    assert row["instruction"] == row["response"] == "Compute 0 + 1. [RESULT] 1 [/RESULT]"


def test_data_card_labels_the_template_origin_and_modes(tmp_path: Path):
    from agorabench.provenance.datacard import CardInputs, card

    instance = {"id": "g1", "instruction": "q", "response": "a", "demo_ids": ["s1"]}
    pool, seeds = tmp_path / "pool.jsonl", tmp_path / "s.jsonl"
    pool.write_text(json.dumps(instance) + "\n")
    seeds.write_text(json.dumps({"id": "s1", "instruction": "q", "response": "a"}) + "\n")
    common = dict(
        pool_path=str(pool), rows=[instance], record={}, seeds_path=str(seeds), seeds_record={},
        generator="gen-1", spec={"backend": "openai", "model": "m"}, seed_source={"format": "demo"},
        setting=("math", "quality_enhancement", "unoptimized"),
    )  # fmt: skip
    base = {"n": 1, "valid": 1, "shortfall": 0, "validation": "official", "demonstrations": "official"}
    stand_in = card(CardInputs(stats=base | {"template_origin": "stand-in"}, **common))
    official = card(CardInputs(stats=base | {"template_origin": "official", "themes_from": "official",
                                              "theme_lists": "code_faithful"}, **common))  # fmt: skip
    assert "| template origin | **stand-in**" in stand_in
    assert "| template origin | official (neulab/data-agora) |" in official
    assert "| themes / triggers | official (code_faithful) |" in official
    assert "| validation / demonstrations | official / official |" in official


def test_pool_block_lets_later_blocks_draw_from_earlier_ones(tmp_path: Path):
    backend = CannedBackend()
    stats = run(tmp_path, backend, n=12, max_attempts=200, pool_block=4, **OFFICIAL)
    rows = {r["index"]: r for r in read_jsonl(tmp_path / "data_a.jsonl")}
    seed_ids = {s["id"] for s in SEEDS}
    assert stats["valid"] == 12 and stats["calls"] == 12
    assert all(set(rows[i]["demo_ids"]) <= seed_ids for i in range(4))  # the first block: seeds only
    earlier = {rows[i]["id"] for i in range(8)}
    assert all(set(rows[i]["demo_ids"]) <= seed_ids | earlier for i in range(8, 12))
    assert any(set(rows[i]["demo_ids"]) - seed_ids for i in range(4, 12))
    order = [r.meta["index"] for r in backend.requests]
    assert order == sorted(order)  # block by block
