"""Validation mode `official` against the official code's verdicts on the corpus.

tests/data/generation_official_corpus.json holds project-written completions, one or more per rule of
data-agora's parser, validators, finish-reason check and upload_to_hf.py clean-up; tools/official/verdicts.py
ran each through the official `Agora.run_single` (commit in `verdicts_by`) and recorded the verdict, the
parsed pair and the cleaned pair. The official mode must agree case by case.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from agorabench.data.assets import official_template
from agorabench.generation.instances import build_official_prompt
from agorabench.generation.official import official_token_counter
from agorabench.generation.parsing import parse_completion
from agorabench.generation.prompts import load_template

CORPUS = json.loads((Path(__file__).parent / "data" / "generation_official_corpus.json").read_text("utf-8"))
CASES = CORPUS["cases"]


class WhitespaceTokenizer:
    def encode(self, text: str) -> list[str]:
        return text.split()


def test_corpus_covers_every_rule_and_names_its_source():
    assert len(CASES) >= 60
    assert CORPUS["verdicts_by"] == {
        "tool": "tools/official/verdicts.py",
        "repo": "neulab/data-agora",
        "commit": "d7e66e12b03616caa42d818d5c2a387c127014ab",
    }
    assert all("official" in c for c in CASES)
    valid = sum(c["official"]["valid"] for c in CASES)
    assert 0 < valid < len(CASES)  # both verdicts occur
    settings = {(c["domain"], c["method"], c["variant"]) for c in CASES}
    assert len(settings) >= 10  # all nine settings and the JSON variant


def _rg_prompt(case: dict, prompts: Path) -> str:
    rel = official_template(case["variant"], case["domain"], case["method"])
    template = load_template(prompts / Path(rel).name, case["method"])
    seed = {"id": "0", "instruction": case["seed_instruction"], "response": ""}
    spec = build_official_prompt(
        template, domain=case["domain"], method=case["method"], index=0, attempt=0, seeds=[seed], pool=[],
        themes=[], first_words=[], seed=0,
    )  # fmt: skip
    return spec.prompt


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_official_mode_agrees_with_the_official_code(case, shared_data):
    official = case["official"]
    prompt = None
    if case["method"] == "response_generation":
        prompt = _rg_prompt(case, shared_data / "agora-prompts")
        assert hashlib.sha256(prompt.encode("utf-8")).hexdigest() == official["prompt_sha256"]
    parsed = parse_completion(
        case["text"], domain=case["domain"], method=case["method"], variant=case["variant"],
        instruction=case.get("seed_instruction"), finish_reason=case.get("finish_reason", "stop"),
        count_tokens=official_token_counter(WhitespaceTokenizer()),
        max_tokens=case.get("max_tokens", CORPUS["max_tokens"]), validation="official", prompt=prompt,
    )  # fmt: skip
    assert parsed.ok == official["valid"], parsed.reason
    if official["valid"]:
        assert parsed.raw == (official["parsed"]["instruction"], official["parsed"]["response"])
        assert (parsed.instruction, parsed.response) == (
            official["cleaned"]["instruction"],
            official["cleaned"]["response"],
        )
    else:
        assert parsed.reason  # a rejection always names its reason


def test_strict_mode_is_stricter_on_the_corpus():
    # The project's mode rejects outputs the official code keeps (no OUTPUT:, empty fields, prose).
    loose = [c for c in CASES if c["id"] in ("ig-no-output", "ig-empty", "code-two-blocks")]
    for case in loose:
        assert case["official"]["valid"]
        parsed = parse_completion(
            case["text"], domain=case["domain"], method=case["method"], variant=case["variant"]
        )
        assert not parsed.ok and parsed.reason
