"""Math scorer: answer extraction, equivalence (with the usual traps), the scorer, real GSM8K and MATH-500."""

from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

import pytest

from agorabench.errors import ConfigError, DataError
from agorabench.evaluation.scorers import get_scorer, scorer_kinds
from agorabench.evaluation.scorers.math import (
    MathScorer,
    MathVerifier,
    answers_match,
    extract_answer,
    normalize_answer,
    to_number,
)

# MATH-500 self-consistency: every solution's final answer must match its `answer` field. Measured: 500/500
# (the answer field is the solution's last \boxed{} content; math-verify also accepts every pair).
MATH500_FLOOR = 500


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(timeout_s=3) as v:
        yield v


# ---------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    ("text", "answer", "fmt"),
    [
        ("Step 1 ... so x = 4.\n[RESULT] 42 [/RESULT]", "42", "result"),
        ("[RESULT] 1 [/RESULT] then revised:\n[RESULT] \\frac{3}{4} [/RESULT]", "\\frac{3}{4}", "result"),
        ("The work ... \\boxed{7}.\n[RESULT] 8 [/RESULT]", "8", "result"),  # [RESULT] outranks \boxed
        ("Solution ...\n[RESULT] 12", "12", "result"),  # stop sequence cut the closing tag
        ("[RESULT] 5 [END]", "5", "result"),
        ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\n#### 18", "18", "gsm8k"),
        ("#### 1,234", "1,234", "gsm8k"),
        ("so $\\boxed{\\frac{\\sqrt{3}}{2}}$", "\\frac{\\sqrt{3}}{2}", "boxed"),
        (
            "first \\boxed{1}, finally \\boxed{\\left(3, \\frac{\\pi}{2}\\right)}",
            "\\left(3, \\frac{\\pi}{2}\\right)",
            "boxed",
        ),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}", "boxed"),
        ("hence \\boxed 5", "5", "boxed"),
        ("\\fbox{x^2}", "x^2", "boxed"),
        ("So the answer is 3.5.", "3.5", "answer_is"),
        ("The answer is $\\frac{1}{2}$.", "$\\frac{1}{2}$", "answer_is"),
        ("Final Answer: The final answer is $18$. I hope it is correct.", "$18$", "answer_is"),
        ("**Answer:** 42", "42", "answer_is"),
        ("The temperature fell to -12 degrees", "-12", "last_number"),
        ("In total 1,000 apples and 3 pears, i.e. 1,003", "1,003", "last_number"),
    ],
)
def test_extract_answer(text: str, answer: str, fmt: str) -> None:
    extraction = extract_answer(text)
    assert extraction is not None
    assert (extraction.answer, extraction.format) == (answer, fmt)


def test_strict_mode_ignores_fallback_formats() -> None:
    assert extract_answer("The answer is 7.", mode="strict") is None
    assert extract_answer("we get 7 apples", mode="strict") is None
    assert extract_answer("\\boxed{7}", mode="strict").answer == "7"


def test_no_answer_found() -> None:
    assert extract_answer("I cannot solve this.") is None
    assert extract_answer("") is None
    assert extract_answer("\\boxed{unclosed") is None


def test_calculator_annotations_are_not_the_answer() -> None:
    # Without a final line, the last number must come from the text, not from inside <<...>>.
    text = "She keeps 10 eggs <<10-2=8>>"
    assert extract_answer(text).answer == "10"
    text = "Half of them is 48/2=<<48/2=24>>24"
    assert extract_answer(text).answer == "24"
    assert extract_answer("He paid 5*3=<<5*3=15>>15 dollars.\n#### 15").answer == "15"


# ---------------------------------------------------------------- equivalence


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("1000", "1,000"),
        ("1234567", "1,234,567"),
        ("18", "$18.00"),
        ("18", "\\$18"),
        ("18", "18 dollars"),
        ("5", "5 cm"),
        ("5", "5\\text{ inches}"),
        ("50", "50%"),
        ("10\\%", "10"),
        ("-5", "−5"),
        ("-3", "x = -3"),
        ("0.5", "\\frac{1}{2}"),
        ("\\frac{1}{2}", "0.5"),
        ("\\frac12", "\\dfrac{1}{2}"),
        ("1/2", "0.5"),
        ("5", "5.0"),
        ("90^\\circ", "90"),
        ("\\$32{,}348", "32348"),
        ("[0,3)", "[0, 3)"),
        ("(-\\infty,-2)\\cup(3,\\infty)", "(-\\infty, -2) \\cup (3, \\infty)"),
        ("2\\sqrt{3}", "\\sqrt{12}"),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
        ("-\\frac{33}{2}", "k = \\frac{-33}{2}"),
        ("6 - 5i", "6-5i"),
        ("\\text{(C)}", "(C)"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ],
)
def test_equivalent_answers(gold: str, pred: str, verifier: MathVerifier) -> None:
    assert answers_match(gold, pred, verifier) == (True, None)


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("5", "6"),
        ("5", "-5"),
        ("1000", "100"),
        ("1,000", "1"),
        ("\\frac{1}{2}", "\\frac{1}{3}"),
        ("\\frac{14}{3}", "4.67"),  # a rounded decimal is not the exact answer
        ("3", "3x"),
        ("5", "5 x^2"),
        ("[0,3)", "(0,3)"),
        ("[0,3)", "[0,3]"),
        ("2\\sqrt{3}", "3\\sqrt{2}"),
        ("\\frac{\\pi}{2}", "\\frac{\\pi}{3}"),
        ("6 - 5i", "6 + 5i"),
        ("\\text{(C)}", "(D)"),
    ],
)
def test_different_answers(gold: str, pred: str, verifier: MathVerifier) -> None:
    assert answers_match(gold, pred, verifier)[0] is False


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("1,000", Fraction(1000)),
        ("-1,234.5", Fraction(-12345, 10)),
        ("$18.00", Fraction(18)),
        ("\\frac{-3}{4}", Fraction(-3, 4)),
        ("-\\frac34", Fraction(-3, 4)),
        ("3/4", Fraction(3, 4)),
        (".5", Fraction(1, 2)),
        ("12 eggs.", Fraction(12)),
        ("\\$ 7", Fraction(7)),
        ("1,2", None),  # a list, not a thousands separator
        ("x+1", None),
        ("\\sqrt{2}", None),
    ],
)
def test_to_number(answer: str, value: Fraction | None) -> None:
    assert to_number(answer) == value


def test_normalize_answer() -> None:
    assert normalize_answer("$\\dfrac{1}{2}$.") == "\\frac{1}{2}"
    assert normalize_answer("\\(\\left(1, 2\\right)\\)") == "(1, 2)"
    assert normalize_answer("1,\\!000") == "1,000"


def test_pathological_input_times_out_and_is_counted() -> None:
    with MathVerifier(timeout_s=1) as verifier:
        start = time.monotonic()
        verdict, failure = answers_match("2^{2^{2^{2^{2^{2}}}}}", "3", verifier)
        assert (verdict, failure) == (False, "timeout")
        assert time.monotonic() - start < 30
        assert answers_match("\\sqrt{4}", "2", verifier) == (True, None)  # still usable afterwards


def test_hung_worker_is_killed_and_restarted() -> None:
    with MathVerifier(timeout_s=5, hard_timeout_s=0.5) as v:
        v.equivalent("1", "1")  # worker started
        start = time.monotonic()
        assert v.equivalent("2^{2^{2^{2^{2^{2}}}}}", "3") == (False, "timeout")
        assert time.monotonic() - start < 3  # killed at the hard limit, not math-verify's 5 s
        v.hard_timeout_s = 60
        assert v.equivalent("\\sqrt{4}", "2") == (True, None)


# ---------------------------------------------------------------- scorer


def _items(*answers: str) -> list[dict]:
    return [{"id": f"q{i}", "prompt": f"question {i}", "answer": a} for i, a in enumerate(answers)]


def test_scorer_strict_and_flexible() -> None:
    items = _items("18", "0.5", "7", "4")
    preds = [
        {"id": "q0", "output": "9*2=<<9*2=18>>18\n#### 18"},
        {"id": "q1", "output": "so\n[RESULT] \\frac{1}{2} [/RESULT]"},
        {"id": "q2", "output": "The answer is 7."},  # flexible only
        {"id": "q3", "output": "\\boxed{5}"},  # wrong
    ]
    flexible = get_scorer("math").score(items, preds)
    strict = get_scorer("math").score(items, preds, mode="strict")
    assert flexible.value == 75.0 and strict.value == 50.0
    assert flexible.secondary == strict.secondary == {"strict_accuracy": 50.0, "flexible_accuracy": 75.0}
    assert flexible.counts["correct"] == 3 and strict.counts["correct"] == 2
    assert strict.settings == {"mode": "strict", "verify_timeout_s": 5}
    assert [r["correct"] for r in flexible.per_item] == [True, True, True, False]
    assert flexible.per_item[2]["format"] == "answer_is" and flexible.per_item[3]["answer"] == "5"
    lo, hi = flexible.ci
    assert 0 < lo < 75 < hi < 100


def test_missing_prediction_counts_as_wrong() -> None:
    score = MathScorer().score(_items("1", "2"), [{"id": "q0", "output": "#### 1"}])
    assert score.value == 50.0 and score.n == 2
    assert score.counts["missing_prediction"] == 1
    assert score.per_item[1] == {
        "id": "q1", "gold": "2", "answer": None, "format": None, "failure": None,
        "correct": False, "strict_correct": False,
    }  # fmt: skip


def test_extraction_failed_counted() -> None:
    score = MathScorer().score(_items("1"), [{"id": "q0", "output": "no idea"}])
    assert score.value == 0.0 and score.counts["extraction_failed"] == 1


def test_bad_predictions_raise_data_error() -> None:
    items = _items("1", "2")
    with pytest.raises(DataError, match=r"preds.jsonl.*'q9'.*not an item"):
        MathScorer().score(items, [{"id": "q9", "output": "1"}], source="preds.jsonl")
    with pytest.raises(DataError, match=r"line 2.*duplicate prediction id"):
        MathScorer().score(items, [{"id": "q0", "output": "1"}, {"id": "q0", "output": "2"}])
    with pytest.raises(DataError, match=r"field 'output' must be a string"):
        MathScorer().score(items, [{"id": "q0", "output": None}])
    with pytest.raises(DataError, match=r"has no string 'id'"):
        MathScorer().score(items, [{"output": "1"}])
    with pytest.raises(DataError, match=r"field 'answer'"):
        MathScorer().score([{"id": "q0", "prompt": "p"}], [])
    with pytest.raises(DataError, match=r"no benchmark items"):
        MathScorer().score([], [])
    with pytest.raises(DataError, match=r"line 2.*duplicate item id"):
        MathScorer().score(_items("1") * 2, [])


def test_bad_settings_raise_config_error() -> None:
    with pytest.raises(ConfigError, match=r"math.mode"):
        MathScorer().score(_items("1"), [], mode="lenient")
    with pytest.raises(ConfigError, match=r"math.temperature.*unknown setting"):
        MathScorer().score(_items("1"), [], temperature=0)
    with pytest.raises(ConfigError, match=r"unknown scorer kind 'nope'"):
        get_scorer("nope")
    assert {"code", "math"} <= set(scorer_kinds())
    assert isinstance(get_scorer("math"), MathScorer)


def test_score_to_dict_matches_format() -> None:
    score = MathScorer().score(_items("3"), [{"id": "q0", "output": "#### 3"}])
    record = score.to_dict("student-a", "gsm8k")
    assert list(record) == [
        "model", "benchmark", "kind", "metric", "value", "n", "ci", "counts", "settings", "secondary",
    ]  # fmt: skip
    assert record["kind"] == "math" and record["metric"] == "accuracy" and record["value"] == 100.0
    json.dumps(record)  # serialisable as score.json


# ---------------------------------------------------------------- real data


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _gsm8k(shared_data: Path) -> tuple[list[dict], list[str]]:
    rows = _read_jsonl(shared_data / "gsm8k" / "test.jsonl")
    items = [
        {"id": f"gsm8k/{i}", "prompt": r["question"], "answer": r["answer"].rsplit("####", 1)[1].strip()}
        for i, r in enumerate(rows)
    ]
    return items, [r["answer"] for r in rows]


def _math500(shared_data: Path) -> tuple[list[dict], list[str]]:
    rows = _read_jsonl(shared_data / "math" / "test.jsonl")
    items = [{"id": r["unique_id"], "prompt": r["problem"], "answer": r["answer"]} for r in rows]
    return items, [r["solution"] for r in rows]


@pytest.mark.shared_data
def test_gsm8k_gold_solutions_score_correct(shared_data: Path) -> None:
    items, solutions = _gsm8k(shared_data)
    preds = [{"id": it["id"], "output": sol} for it, sol in zip(items, solutions, strict=True)]
    score = MathScorer().score(items, preds, mode="strict")
    assert score.n == 1319
    assert score.counts["correct"] == 1319


@pytest.mark.shared_data
def test_gsm8k_neighbour_solutions_score_wrong(shared_data: Path) -> None:
    """Each item scored against the next item's solution: correct only where the two golds are equal."""
    items, solutions = _gsm8k(shared_data)
    shifted = solutions[1:] + solutions[:1]
    preds = [{"id": it["id"], "output": sol} for it, sol in zip(items, shifted, strict=True)]
    score = MathScorer().score(items, preds)
    golds = [to_number(it["answer"]) for it in items]
    equal_golds = sum(g == h for g, h in zip(golds, golds[1:] + golds[:1], strict=True))
    assert None not in golds
    assert score.counts["correct"] == equal_golds


@pytest.mark.shared_data
def test_math500_solutions_match_their_answers(shared_data: Path) -> None:
    items, solutions = _math500(shared_data)
    preds = [{"id": it["id"], "output": sol} for it, sol in zip(items, solutions, strict=True)]
    score = MathScorer().score(items, preds, mode="strict")
    failures = [(r["id"], r["gold"], r["answer"]) for r in score.per_item if not r["correct"]]
    assert score.counts["correct"] >= MATH500_FLOOR, failures


@pytest.mark.slow
@pytest.mark.shared_data
def test_math500_math_verify_accepts_every_answer(shared_data: Path) -> None:
    """The same pairs through math-verify alone (the path non-identical answers take)."""
    items, solutions = _math500(shared_data)
    failed = []
    with MathVerifier(timeout_s=5) as v:
        for item, solution in zip(items, solutions, strict=True):
            extracted = extract_answer(solution, mode="strict")
            ok, _ = v.equivalent(normalize_answer(item["answer"]), normalize_answer(extracted.answer))
            if not ok:
                failed.append(item["id"])
    assert len(items) - len(failed) >= MATH500_FLOOR, failed


@pytest.mark.slow
@pytest.mark.shared_data
def test_math500_neighbour_solutions_score_wrong(shared_data: Path) -> None:
    """Correct only where the two gold answers are themselves equivalent (e.g. "5" and "x=5")."""
    items, solutions = _math500(shared_data)
    shifted = solutions[1:] + solutions[:1]
    preds = [{"id": it["id"], "output": sol} for it, sol in zip(items, shifted, strict=True)]
    score = MathScorer().score(items, preds)
    golds = [it["answer"] for it in items]
    with MathVerifier(timeout_s=5) as v:
        equivalent = [answers_match(g, h, v)[0] for g, h in zip(golds, golds[1:] + golds[:1], strict=True)]
    assert [r["correct"] for r in score.per_item] == equivalent
    assert sum(equivalent) < 10  # neighbours rarely share an answer
