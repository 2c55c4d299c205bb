"""Parity: the project's EvalPlus scoring (loader `evalplus_jsonl` + code scorer + sandbox) gives EvalPlus
0.3.1's own verdicts (`trusted_exec` for the expected outputs, `untrusted_check` per solution) on tasks
in the HumanEval+ and MBPP+ release formats: canonical solutions pass, and the wrong ones fail the same
tests.

The tasks are project-written (the release files are not reachable from the test machines);
they exercise exact comparison, the float tolerance EvalPlus forces (atol 1e-6), a task's own `atol`,
type checks, inputs a solution mutates, and the `find_zero` (HumanEval/32) special oracle.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agorabench.data.benchmarks import load_benchmark
from agorabench.evaluation.scorers import get_scorer

evalplus_eval = pytest.importorskip("evalplus.eval", reason="evalplus==0.3.1 not installed")
from evalplus.gen.util import trusted_exec  # noqa: E402

TASKS = [
    {
        "task_id": "HumanEval/900", "entry_point": "add",
        "prompt": 'def add(a: int, b: int) -> int:\n    """Sum of a and b."""\n',
        "canonical_solution": "    return a + b\n",
        "base_input": [[1, 2], [0, 0]], "plus_input": [[10**20, 5], [-3, 3]], "atol": 0,
    },
    {
        "task_id": "HumanEval/901", "entry_point": "mean",
        "prompt": 'def mean(xs: list) -> float:\n    """Arithmetic mean."""\n',
        "canonical_solution": "    return sum(xs) / len(xs)\n",
        "base_input": [[[1.0, 2.0]], [[0.1, 0.2, 0.3]]], "plus_input": [[[1e-9] * 7], [[1e6, 1e-6, 3.3]]],
        "atol": 0,
    },
    {
        "task_id": "HumanEval/902", "entry_point": "sort_copy",
        "prompt": 'def sort_copy(xs: list) -> list:\n    """xs sorted."""\n',
        "canonical_solution": "    return sorted(xs)\n",
        "base_input": [[[3, 1, 2]]], "plus_input": [[[]], [[5, 5, -1, 0]]], "atol": 0,
    },
    {
        "task_id": "HumanEval/903", "entry_point": "find_zero",
        "prompt": 'def find_zero(xs: list) -> float:\n    """A zero of the polynomial xs."""\n',
        "canonical_solution": (
            "    lo, hi = -1e3, 1e3\n"
            "    f = lambda x: sum(c * x**i for i, c in enumerate(xs))\n"
            "    for _ in range(200):\n"
            "        mid = (lo + hi) / 2\n"
            "        if (f(lo) < 0) == (f(mid) < 0):\n            lo = mid\n"
            "        else:\n            hi = mid\n"
            "    return lo\n"
        ),
        "base_input": [[[1.0, 2.0]], [[-6.0, 11.0, -6.0, 1.0]]], "plus_input": [[[2.0, -3.0, 0.0, 1.0]]],
        "atol": 1e-4,
    },
]  # fmt: skip

# Per task: solutions that should pass and fail, base or plus (EvalPlus decides; the test only compares).
SOLUTIONS = {
    "HumanEval/900": [
        "def add(a, b):\n    return a + b\n",
        "def add(a, b):\n    return a + b if abs(a) < 10**9 else 0\n",  # passes base, fails plus
        "def add(a, b):\n    return float(a + b)\n",  # right value, wrong type
    ],
    "HumanEval/901": [
        "import math\ndef mean(xs):\n    return math.fsum(xs) / len(xs)\n",  # differs in the last bits
        "def mean(xs):\n    return sum(xs) / len(xs) + 1e-3\n",
        "def mean(xs):\n    return sum(xs) / len(xs) + 1e-8\n",  # within the forced atol 1e-6
    ],
    "HumanEval/902": [
        "def sort_copy(xs):\n    xs.sort()\n    return xs\n",  # mutates its input: still passes
        "def sort_copy(xs):\n    return sorted(xs, reverse=True)\n",
        "def sort_copy(xs):\n    return tuple(sorted(xs))\n",
    ],
    "HumanEval/903": [
        "def find_zero(xs):\n    lo, hi = 0.5, 10.0\n"
        "    f = lambda x: sum(c * x**i for i, c in enumerate(xs))\n"
        "    for _ in range(100):\n        m = (lo + hi) / 2\n"
        "        lo, hi = (m, hi) if (f(m) < 0) == (f(lo) < 0) else (lo, m)\n"
        "    return lo\n",  # another root where there are several
        "def find_zero(xs):\n    return 0.0\n",
        "def find_zero(xs):\n    x = 0.0\n    for _ in range(100):\n"
        "        f = sum(c * x**i for i, c in enumerate(xs))\n"
        "        d = sum(i * c * x**(i - 1) for i, c in enumerate(xs) if i)\n"
        "        x = x - f / d if d else x + 0.5\n    return x\n",
    ],
}


def _official(task: dict, solution: str) -> tuple[bool, bool]:
    """(base passed, plus passed) as EvalPlus's evaluate.py decides them."""
    reference = task["prompt"] + task["canonical_solution"]
    verdicts = []
    for inputs in (task["base_input"], task["plus_input"]):
        expected, ref_time = trusted_exec(reference, inputs, task["entry_point"], record_time=True)
        status, _ = evalplus_eval.untrusted_check(
            "humaneval", solution, inputs, task["entry_point"], expected, task["atol"], ref_time
        )
        verdicts.append(status == evalplus_eval.PASS)
    return verdicts[0], verdicts[0] and verdicts[1]


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    path = tmp_path_factory.mktemp("evalplus") / "HumanEvalPlus.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in TASKS), encoding="utf-8")
    items = load_benchmark("humaneval_plus", "code", {"format": "evalplus_jsonl", "path": str(path)})
    outputs = {tid: [f"```python\n{s}```" for s in [t["prompt"] + t["canonical_solution"], *SOLUTIONS[tid]]]
               for tid, t in ((t["task_id"], t) for t in TASKS)}  # fmt: skip
    predictions = [{"id": i["id"], "output": outputs[i["id"]][0], "outputs": outputs[i["id"]]} for i in items]
    score = get_scorer("code").score(items, predictions, timeout_s=20.0, workers=2)
    return {row["id"]: row for row in score.per_item} | {"_score": score}  # type: ignore[dict-item]


def test_items_keep_evalplus_fields(tmp_path: Path) -> None:
    path = tmp_path / "HumanEvalPlus.jsonl"
    path.write_text(json.dumps(TASKS[0]) + "\n", encoding="utf-8")
    [item] = load_benchmark("he", "code", {"format": "evalplus_jsonl", "path": str(path)})
    assert item["id"] == "HumanEval/900" and item["entry_point"] == "add"
    assert item["prompt_code"] == TASKS[0]["prompt"] and item["plus_tests"] != item["tests"]


def _mine(row: dict) -> list[tuple[bool, bool]]:
    return [
        (b == "passed", p == "passed") for b, p in zip(row["statuses"], row["plus_statuses"], strict=True)
    ]


@pytest.mark.parametrize("task", TASKS[:3], ids=[t["task_id"] for t in TASKS[:3]])
def test_verdicts_equal_evalplus(task: dict, ours: dict[str, dict]) -> None:
    solutions = [task["prompt"] + task["canonical_solution"], *SOLUTIONS[task["task_id"]]]
    official = [_official(task, s) for s in solutions]
    assert _mine(ours[task["task_id"]]) == official
    assert official[0] == (True, True)  # the canonical solution passes both


def test_find_zero_oracle_where_evalplus_031_fails_everything(ours: dict[str, dict]) -> None:
    """EvalPlus 0.3.1's find_zero oracle `continue`s before recording the input as passed, so every
    HumanEval/32 solution fails, the canonical one included (a deliberate difference, docs/fidelity.md).
    Here a solution passes when |poly(xs, x)| <= atol on every input, computed independently below."""
    task = TASKS[3]
    solutions = [task["prompt"] + task["canonical_solution"], *SOLUTIONS[task["task_id"]]]
    assert [_official(task, s) for s in solutions] == [(False, False)] * len(solutions)

    def root_ok(solution: str, inputs: list) -> bool:
        scope: dict = {}
        exec(solution, scope)
        return all(
            abs(sum(c * scope["find_zero"](xs) ** i for i, c in enumerate(xs))) <= task["atol"]
            for [xs] in inputs
        )

    base = [root_ok(s, task["base_input"]) for s in solutions]
    plus = [b and root_ok(s, task["plus_input"]) for s, b in zip(solutions, base, strict=True)]
    assert _mine(ours[task["task_id"]]) == list(zip(base, plus, strict=True))
    assert base[0] and plus[0] and not base[2]  # canonical passes, `return 0.0` fails


def test_plus_pass_at_1_is_reported(ours: dict[str, dict]) -> None:
    score = ours["_score"]
    rates = [sum(s == "passed" for s in ours[t["task_id"]]["plus_statuses"]) / 4 for t in TASKS]
    assert score.secondary["plus_pass@1"] == pytest.approx(100 * sum(rates) / len(rates), abs=1e-3)
    assert score.value >= score.secondary["plus_pass@1"]


def test_other_task_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "Other.jsonl"
    path.write_text(json.dumps(TASKS[0] | {"task_id": "Other/2"}) + "\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"Other\.jsonl.*'Other/2' is neither HumanEval/<n> nor Mbpp/<n>"):
        load_benchmark("x", "code", {"format": "evalplus_jsonl", "path": str(path)})


# MBPP+-format tasks (project-written, with real MBPP+ task numbers so EvalPlus's per-task input decoding
# and special oracles apply): tuples decoded from JSON lists, complex numbers, set comparison,
# "not None" outputs and Mbpp/295's zero oracle.
MBPP_TASKS = [
    {
        "task_id": "Mbpp/2", "entry_point": "similar_elements",
        "prompt": '"""\nShared elements of two tuples.\n"""\n',
        "canonical_solution": "\ndef similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
        "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]]], "plus_input": [[[], []], [[1, 2, 2], [2, 9]]],
        "atol": 0,
    },
    {
        "task_id": "Mbpp/124", "entry_point": "angle_complex",
        "prompt": '"""\nThe angle of a + b.\n"""\n',
        "canonical_solution": "\nimport cmath\ndef angle_complex(a, b):\n    return cmath.phase(a + b)\n",
        "base_input": [[0.0, "1j"]], "plus_input": [[2.0, "1+2j"], [-1.0, "-3j"]], "atol": 0,
    },
    {
        "task_id": "Mbpp/295", "entry_point": "sum_div",
        "prompt": '"""\nSum of the proper divisors of n.\n"""\n',
        "canonical_solution": "\ndef sum_div(n):\n    return sum(d for d in range(1, n) if n % d == 0)\n",
        "base_input": [[8], [12]], "plus_input": [[1], [7]], "atol": 0,
    },
    {
        "task_id": "Mbpp/737", "entry_point": "check_str",
        "prompt": '"""\nDoes the string start with a vowel?\n"""\n',
        "canonical_solution": "\nimport re\ndef check_str(s):\n    return re.search('^[aeiouAEIOU]', s)\n",
        "base_input": [["annie"], ["dawood"]], "plus_input": [[""], ["Else"]], "atol": 0,
    },
]  # fmt: skip
MBPP_SOLUTIONS = {
    "Mbpp/2": [
        "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b)))\n",  # same set: passes
        "def similar_elements(a, b):\n    return tuple(set(a) | set(b))\n",
        "def similar_elements(a, b):\n    hash(a)\n    return tuple(set(a) & set(b))\n",  # needs tuples
    ],
    "Mbpp/124": [
        "import math\ndef angle_complex(a, b):\n    c = a + b\n    return math.atan2(c.imag, c.real)\n",
        "def angle_complex(a, b):\n    return abs(a + b)\n",
    ],
    "Mbpp/295": [
        "def sum_div(n):\n    return 0 if n == 1 else sum(d for d in range(1, n) if n % d == 0)\n",
        "def sum_div(n):\n    return 0\n",  # the special oracle accepts 0
        "def sum_div(n):\n    return n\n",
    ],
    "Mbpp/737": [
        "def check_str(s):\n    return bool(s) and s[0] in 'aeiouAEIOU'\n",  # a bool: compared as such
        "def check_str(s):\n    return s[:1] or None\n",  # anything not None counts as True
        "def check_str(s):\n    return None\n",
    ],
}


def _official_mbpp(task: dict, solution: str) -> tuple[bool, bool]:
    from evalplus.data.mbpp import mbpp_deserialize_inputs
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS

    reference = task["prompt"] + task["canonical_solution"]
    verdicts = []
    for inputs in (task["base_input"], task["plus_input"]):
        inputs = mbpp_deserialize_inputs(task["task_id"], inputs)
        not_none = task["entry_point"] in MBPP_OUTPUT_NOT_NONE_TASKS
        expected, ref_time = trusted_exec(
            reference, inputs, task["entry_point"], record_time=True, output_not_none=not_none
        )
        status, _ = evalplus_eval.untrusted_check(
            "mbpp", solution, inputs, task["entry_point"], expected, task["atol"], ref_time
        )
        verdicts.append(status == evalplus_eval.PASS)
    return verdicts[0], verdicts[0] and verdicts[1]


@pytest.fixture(scope="module")
def ours_mbpp(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    path = tmp_path_factory.mktemp("mbppplus") / "MbppPlus.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in MBPP_TASKS), encoding="utf-8")
    items = load_benchmark("mbpp_plus", "code", {"format": "evalplus_jsonl", "path": str(path)})
    by_id = {t["task_id"]: t for t in MBPP_TASKS}
    predictions = []
    for item in items:
        task = by_id[item["id"]]
        sols = [task["prompt"] + task["canonical_solution"], *MBPP_SOLUTIONS[item["id"]]]
        predictions.append({"id": item["id"], "outputs": [f"```python\n{s}```" for s in sols]})
    score = get_scorer("code").score(items, predictions, timeout_s=20.0, workers=2)
    return {row["id"]: row for row in score.per_item}


@pytest.mark.parametrize("task", MBPP_TASKS, ids=[t["task_id"] for t in MBPP_TASKS])
def test_mbpp_plus_verdicts_equal_evalplus(task: dict, ours_mbpp: dict[str, dict]) -> None:
    solutions = [task["prompt"] + task["canonical_solution"], *MBPP_SOLUTIONS[task["task_id"]]]
    official = [_official_mbpp(task, s) for s in solutions]
    assert _mine(ours_mbpp[task["task_id"]]) == official
    assert official[0] == (True, True)
