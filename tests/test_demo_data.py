"""The demo's project-written data: it loads, has the promised sizes and formats, and its code is correct."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agorabench.data import demo_path, load_benchmark, load_seeds

DOMAINS = ("math", "code", "instruction_following")
METHODS = {"instance_generation": 8, "response_generation": 16, "quality_enhancement": 16}
BENCHMARKS = {
    "gsm8k": "math",
    "math": "math",
    "mbpp": "code",
    "alpaca_eval": "alpaca_eval",
    "arena_hard": "arena_hard",
}
RESULT = re.compile(r"\n\[RESULT\] \S.* \[/RESULT\]$")
FENCED = re.compile(r"^```python\n(.+)\n```$", re.DOTALL)


def _compile_fenced(text: str) -> None:
    match = FENCED.match(text)
    assert match, f"not one ```python block: {text[:80]!r}"
    compile(match.group(1), "<demo>", "exec")


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("method", METHODS)
def test_demo_seed_sets(domain: str, method: str) -> None:
    seeds = load_seeds({"format": "demo", "name": f"{domain}_{method}"})
    assert len(seeds) == METHODS[method]
    assert all(s["id"] == f"demo/{domain}/{method}/{i}" for i, s in enumerate(seeds))
    if method == "response_generation":
        assert all(s["response"] == "" for s in seeds)
        return
    assert all(s["response"].strip() for s in seeds)
    if method == "instance_generation" and domain == "math":
        assert all(RESULT.search(s["response"]) for s in seeds)
    if method == "instance_generation" and domain == "code":
        for s in seeds:
            _compile_fenced(s["response"])


def test_demo_reference_sft() -> None:
    pairs = load_seeds({"format": "demo", "name": "reference_sft"})
    assert len(pairs) == 48
    by_domain = {d: [p for p in pairs if p["id"].startswith(f"demo/reference/{d}/")] for d in DOMAINS}
    assert {d: len(v) for d, v in by_domain.items()} == dict.fromkeys(DOMAINS, 16)
    assert all(RESULT.search(p["response"]) for p in by_domain["math"])
    for p in by_domain["code"]:
        _compile_fenced(p["response"])
    assert all(len(f"{p['instruction']} {p['response']}".split()) < 150 for p in pairs)


@pytest.mark.parametrize(("name", "kind"), BENCHMARKS.items())
def test_demo_benchmarks_load(name: str, kind: str) -> None:
    items = load_benchmark(name, kind, {"format": "demo", "name": name})
    assert len(items) == 16
    assert all(i["id"].startswith(f"demo/{name}/") for i in items)
    assert load_benchmark(name, kind, {"format": "demo", "name": name}, limit=5) == items[:5]
    if kind == "math":
        assert all(i["answer"].strip() for i in items)
    if kind in ("alpaca_eval", "arena_hard"):
        assert {i["reference_generator"] for i in items} == {"agorabench-demo-author"}


def test_demo_gsm8k_answers_are_numbers() -> None:
    for item in load_benchmark("gsm8k", "math", {"format": "demo", "name": "gsm8k"}):
        assert re.fullmatch(r"-?\d+(\.\d+)?", item["answer"]), item


@pytest.mark.parametrize("index", range(16))
def test_demo_mbpp_reference_passes(index: int) -> None:
    item = load_benchmark("mbpp", "code", {"format": "demo", "name": "mbpp"})[index]
    assert item["tests"].count("assert ") == 3
    program = item["setup"] + "\n" + item["reference_code"] + "\n" + item["tests"]
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, (item["id"], result.stderr[-500:])


def test_demo_mbpp_tests_reject_a_wrong_solution() -> None:
    item = load_benchmark("mbpp", "code", {"format": "demo", "name": "mbpp"})[0]
    program = "def add_numbers(a, b):\n    return a - b\n" + item["tests"]
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=20)
    assert result.returncode != 0 and "AssertionError" in result.stderr


@pytest.mark.shared_data
def test_demo_prompts_are_not_copied_from_real_benchmarks(shared_data: Path) -> None:
    real: set[str] = set()
    for rel, key in (
        ("gsm8k/test.jsonl", "question"),
        ("gsm8k/train.jsonl", "question"),
        ("math/test.jsonl", "problem"),
        ("mbpp/mbpp.jsonl", "text"),
        ("arena-hard-v0.1/question.jsonl", None),
    ):
        for line in (shared_data / rel).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            real.add((row[key] if key else row["turns"][0]["content"]).strip().lower())
    alpaca = json.loads(
        (shared_data / "alpaca-eval-2/results/gpt4_1106_preview/model_outputs.json").read_text()
    )
    real |= {r["instruction"].strip().lower() for r in alpaca}
    texts = [p.read_text(encoding="utf-8") for p in demo_path("benchmarks", "gsm8k").parent.glob("*.jsonl")]
    texts += [
        p.read_text(encoding="utf-8")
        for p in demo_path("seeds", "math_response_generation").parent.glob("*.jsonl")
    ]
    for text in texts:
        for line in text.splitlines():
            row = json.loads(line)
            assert row.get("prompt", row.get("instruction")).strip().lower() not in real, row["id"]
    # the MBPP-style demo tasks are new tasks, not MBPP's
    mbpp_texts = {
        json.loads(line)["text"].strip().lower() for line in (shared_data / "mbpp/mbpp.jsonl").open()
    }
    for item in load_benchmark("mbpp", "code", {"format": "demo", "name": "mbpp"}):
        task = item["prompt"].split("here is your task: ", 1)[1].split(" Your code should pass", 1)[0]
        assert task.strip().lower() not in mbpp_texts, item["id"]
