"""Validation mode `official` against the official code's verdicts on the corpus.

tests/data/generation_official_corpus.json holds project-written completions, one or more per rule of
data-agora's parser, validators, finish-reason check and upload_to_hf.py clean-up; tools/official/verdicts.py
ran each through the official `Agora.run_single` (commit in `verdicts_by`) and recorded the verdict, the
parsed pair and the cleaned pair. The official mode must agree case by case.

The length rule counts tokens with the tokenizer the corpus names (`tokenizer`): `llama3` is the
validators' Meta-Llama-3.1-8B-Instruct tokenizer, built from Meta's BPE file in the pinned llama-models
wheel (the `llama3_tokenizer_dir` fixture) and used through the project's own path
(`student_token_counter`). Without that asset a case still runs when a byte count, an upper bound on any
byte-level BPE count, keeps it under its limit (the length rule then passes in real tokens too); the cases
the bound cannot decide skip, saying why.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from agorabench.data.assets import official_template
from agorabench.generation.instances import build_official_prompt
from agorabench.generation.official import CountTokens, official_token_counter
from agorabench.generation.parsing import parse_completion
from agorabench.generation.prompts import load_template
from agorabench.generation.stage import student_token_counter

CORPUS = json.loads((Path(__file__).parent / "data" / "generation_official_corpus.json").read_text("utf-8"))
CASES = CORPUS["cases"]


class WhitespaceTokenizer:
    def encode(self, text: str) -> list[str]:
        return text.split()


class ByteTokenizer:
    """One token per UTF-8 byte: at least the Llama-3 count (each BPE token is a byte or more, each special
    token 10+ bytes, which also pays for the BOS that encode adds)."""

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))


@pytest.fixture(scope="session")
def corpus_counter(request) -> tuple[CountTokens, str | None]:
    """The corpus's tokenizer, exact; or, when the Llama-3 asset is absent, the byte bound and why."""
    if CORPUS["tokenizer"] == "whitespace":
        return official_token_counter(WhitespaceTokenizer()), None
    assert CORPUS["tokenizer"] == "llama3", CORPUS["tokenizer"]
    try:
        folder = request.getfixturevalue("llama3_tokenizer_dir")
    except pytest.skip.Exception as e:
        return official_token_counter(ByteTokenizer()), str(e)
    return student_token_counter(str(folder), "official"), None


def test_corpus_covers_every_rule_and_names_its_source():
    assert len(CASES) >= 60
    assert CORPUS["tokenizer"] in ("llama3", "whitespace")
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


def _recording(count: CountTokens, seen: list[int]) -> CountTokens:
    def counted(instruction: str, response: str) -> int:
        seen.append(count(instruction, response))
        return seen[-1]

    return counted


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_official_mode_agrees_with_the_official_code(case, shared_data, corpus_counter):
    official = case["official"]
    prompt = None
    if case["method"] == "response_generation":
        prompt = _rg_prompt(case, shared_data / "agora-prompts")
        assert hashlib.sha256(prompt.encode("utf-8")).hexdigest() == official["prompt_sha256"]
    count, missing = corpus_counter
    counts: list[int] = []
    max_tokens = case.get("max_tokens", CORPUS["max_tokens"])
    parsed = parse_completion(
        case["text"], domain=case["domain"], method=case["method"], variant=case["variant"],
        instruction=case.get("seed_instruction"), finish_reason=case.get("finish_reason", "stop"),
        count_tokens=_recording(count, counts),
        max_tokens=max_tokens, validation="official", prompt=prompt,
    )  # fmt: skip
    if missing and any(n > max_tokens for n in counts):
        pytest.skip(f"the byte bound cannot decide this case's length rule: {missing}")
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
