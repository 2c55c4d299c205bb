"""Seed and benchmark loaders: counts and fields on the real data sets, clear errors on malformed input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from agorabench.data import load_benchmark, load_seeds
from agorabench.errors import ConfigError, DataError

AGORA_SEED_FILES = [
    "math_seed_data_subsampled.json",
    "code_seed_data_subsampled.json",
    "general_seed_data_subsampled.json",
    "magpie_math_seed_data_10000_subsampled.json",
    "magpie_code_seed_data_10000_subsampled.json",
    "magpie_general_seed_data_10000_subsampled.json",
    "webinstruct_math_seed_data_10000_subsampled.json",
    "webinstruct_general_seed_data_10000_subsampled.json",
]
ALPACA = "alpaca-eval-2/results/gpt4_1106_preview/model_outputs.json"


def _arena_source(data: Path) -> dict:
    return {
        "format": "arena_hard_jsonl",
        "questions": str(data / "arena-hard-v0.1/question.jsonl"),
        "baseline": str(data / "arena-hard-v0.1/model_answer/gpt-4-0314.jsonl"),
    }


def _run_code(code: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---- real data ----


@pytest.mark.shared_data
@pytest.mark.parametrize("name", AGORA_SEED_FILES)
def test_agora_seed_files(shared_data: Path, name: str) -> None:
    seeds = load_seeds({"format": "agora_json", "path": str(shared_data / "agora-seed" / name)})
    assert len(seeds) == 20
    assert all(set(s) == {"id", "instruction", "response"} for s in seeds)
    assert all(s["instruction"].strip() and s["response"].strip() for s in seeds)
    config = seeds[0]["id"].split("/")[0]
    assert [s["id"] for s in seeds] == [f"{config}/{i}" for i in range(20)]


@pytest.mark.shared_data
def test_agora_seed_limit_is_a_prefix(shared_data: Path) -> None:
    source = {"format": "agora_json", "path": shared_data / "agora-seed" / AGORA_SEED_FILES[0]}
    assert load_seeds(source, limit=3) == load_seeds(source)[:3]
    assert load_seeds(source, limit=0) == []


@pytest.mark.shared_data
@pytest.mark.parametrize(("split", "count"), [("test", 1319), ("train", 7473)])
def test_gsm8k(shared_data: Path, split: str, count: int) -> None:
    items = load_benchmark(
        "gsm8k", "math", {"format": "gsm8k_jsonl", "path": shared_data / f"gsm8k/{split}.jsonl"}
    )
    assert len(items) == count
    assert items[0]["id"] == "gsm8k/0" and items[-1]["id"] == f"gsm8k/{count - 1}"
    for item in items:
        float(item["answer"])  # every final answer is a plain number once commas are gone
    if split == "test":
        assert items[0]["answer"] == "18" and items[0]["prompt"].startswith("Janet")


@pytest.mark.shared_data
def test_math500(shared_data: Path) -> None:
    items = load_benchmark("math", "math", {"format": "math_jsonl", "path": shared_data / "math/test.jsonl"})
    assert len(items) == 500
    assert items[0] == {
        "id": "test/precalculus/807.json",
        "prompt": items[0]["prompt"],
        "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
    }
    assert all(i["answer"] and i["prompt"] for i in items)


@pytest.mark.shared_data
def test_mbpp_full_and_test_split(shared_data: Path) -> None:
    path = shared_data / "mbpp/mbpp.jsonl"
    everything = load_benchmark("mbpp", "code", {"format": "mbpp_jsonl", "path": path, "task_ids": [1, 974]})
    assert len(everything) == 974
    test = load_benchmark("mbpp", "code", {"format": "mbpp_jsonl", "path": path})
    assert len(test) == 500
    assert test[0]["id"] == "mbpp/11" and test[-1]["id"] == "mbpp/510"
    first = test[0]
    assert first["prompt"].startswith(
        "You are an expert Python programmer, and here is your task: Write a python"
    )
    assert first["prompt"].endswith('assert remove_Occ("PHP","P") == "H"')
    assert first["tests"].count("assert ") == 3
    assert (first["entry_point"], first["setup"], first["prompt_code"]) == (None, "", None)
    # test_setup_code uses names the solution defines, so it is part of the tests
    tree = next(i for i in test if i["id"] == "mbpp/367")
    assert tree["tests"].startswith("root = Node(1)")


@pytest.mark.shared_data
def test_mbpp_sanitized(shared_data: Path) -> None:
    source = {"format": "mbpp_sanitized_json", "path": shared_data / "mbpp/sanitized-mbpp.json"}
    assert len(load_benchmark("mbpp", "code", source)) == 427
    in_test_split = load_benchmark("mbpp", "code", {**source, "task_ids": [11, 510]})
    assert len(in_test_split) == 257
    assert all(11 <= int(i["id"].split("/")[1]) <= 510 for i in in_test_split)


def test_humaneval_from_package() -> None:
    items = load_benchmark("humaneval", "code", {"format": "humaneval_package"})
    assert len(items) == 164
    first = items[0]
    assert first["id"] == "HumanEval/0" and first["entry_point"] == "has_close_elements"
    assert first["prompt"].startswith("Complete the following Python function.\n\n```python\n")
    assert first["prompt"].endswith("\n```")
    assert first["tests"].endswith("\ncheck(has_close_elements)\n")
    assert first["reference_code"].startswith(first["prompt_code"])


@pytest.mark.shared_data
def test_reference_code_passes_its_tests(shared_data: Path) -> None:
    """The first items' reference solutions pass the tests as assembled (solution, then tests)."""
    sources = [
        {"format": "mbpp_jsonl", "path": shared_data / "mbpp/mbpp.jsonl", "task_ids": [360, 370]},
        {"format": "mbpp_sanitized_json", "path": shared_data / "mbpp/sanitized-mbpp.json"},
        {"format": "humaneval_package"},
    ]
    for source in sources:
        for item in load_benchmark("code", "code", source, limit=4):
            result = _run_code(item["setup"] + "\n" + item["reference_code"] + "\n" + item["tests"])
            assert result.returncode == 0, (item["id"], result.stderr[-500:])


@pytest.mark.shared_data
def test_alpaca_eval(shared_data: Path) -> None:
    items = load_benchmark(
        "alpaca_eval", "alpaca_eval", {"format": "alpaca_eval_json", "path": shared_data / ALPACA}
    )
    assert len(items) == 805
    assert items[0]["id"] == "alpaca_eval/0" and items[-1]["id"] == "alpaca_eval/804"
    assert {i["reference_generator"] for i in items} == {"gpt4_1106_preview"}
    counts = Counter(i["dataset"] for i in items)
    assert counts == {"selfinstruct": 252, "oasst": 188, "koala": 156, "helpful_base": 129, "vicuna": 80}
    assert len({i["prompt"] for i in items}) == 805


@pytest.mark.shared_data
def test_arena_hard(shared_data: Path) -> None:
    items = load_benchmark("arena_hard", "arena_hard", _arena_source(shared_data))
    assert len(items) == 500
    assert items[0]["id"] == "arena_hard/328c149ed45a41c0b9d6f14659e63599"
    assert items[0]["prompt"] == "Use ABC notation to write a melody in the style of a folk tune."
    assert {i["reference_generator"] for i in items} == {"gpt-4-0314"}
    assert all(i["reference_output"].strip() and i["cluster"] for i in items)


# ---- malformed input ----


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "seeds.jsonl", ['{"id": "a", "instruction": "x", "response": ""}', "{not json"])
    with pytest.raises(DataError, match=r"seeds\.jsonl, line 2: invalid JSON") as err:
        load_seeds({"format": "jsonl", "path": str(path)})
    assert err.value.line == 2 and err.value.path == str(path)


def test_missing_field_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "seeds.jsonl", ['{"id": "a", "instruction": "x"}'])
    with pytest.raises(DataError, match=r"line 1: missing field 'response'"):
        load_seeds({"format": "jsonl", "path": str(path)})
    bench = _write(tmp_path / "gsm.jsonl", ['{"question": "q", "answer": "#### 1"}', '{"answer": "#### 2"}'])
    with pytest.raises(DataError, match=r"gsm\.jsonl, line 2: missing field 'question'"):
        load_benchmark("gsm8k", "math", {"format": "gsm8k_jsonl", "path": str(bench)})


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match="file not found") as err:
        load_benchmark("math", "math", {"format": "math_jsonl", "path": str(missing)})
    assert err.value.path == str(missing)
    with pytest.raises(DataError, match="file not found"):
        load_seeds({"format": "agora_json", "path": str(tmp_path / "nope.json")})


def test_gsm8k_record_without_final_answer(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "test.jsonl",
        ['{"question": "1+1?", "answer": "1+1=2\\n#### 2"}', '{"question": "2+2?", "answer": "it is 4"}'],
    )
    with pytest.raises(DataError, match=r"line 2: .*'####'"):
        load_benchmark("gsm8k", "math", {"format": "gsm8k_jsonl", "path": str(path)})


def test_gsm8k_answer_drops_thousands_commas(tmp_path: Path) -> None:
    path = _write(tmp_path / "test.jsonl", ['{"question": "How many?", "answer": "a lot\\n#### 1,250"}'])
    [item] = load_benchmark("gsm8k", "math", {"format": "gsm8k_jsonl", "path": str(path)})
    assert item == {"id": "gsm8k/0", "prompt": "How many?", "answer": "1250"}


def _arena_files(tmp_path: Path, qids: list[str], answered: list[str]) -> dict:
    questions = _write(
        tmp_path / "question.jsonl",
        [
            json.dumps({"question_id": q, "cluster": "c", "turns": [{"content": f"question {q}"}]})
            for q in qids
        ],
    )
    answers = [
        {
            "question_id": q,
            "model_id": "base",
            "choices": [{"index": 0, "turns": [{"content": f"answer {q}"}]}],
        }
        for q in answered
    ]
    baseline = _write(tmp_path / "base.jsonl", [json.dumps(a) for a in answers])
    return {"format": "arena_hard_jsonl", "questions": str(questions), "baseline": str(baseline)}


def test_arena_hard_question_without_baseline(tmp_path: Path) -> None:
    source = _arena_files(tmp_path, ["q1", "q2"], ["q1"])
    with pytest.raises(DataError, match=r"question\.jsonl, line 2: question 'q2' has no baseline answer"):
        load_benchmark("arena_hard", "arena_hard", source)


def test_arena_hard_join_and_stray_baseline(tmp_path: Path) -> None:
    items = load_benchmark("arena_hard", "arena_hard", _arena_files(tmp_path, ["q1"], ["q1"]))
    assert items[0]["reference_output"] == "answer q1" and items[0]["reference_generator"] == "base"
    with pytest.raises(DataError, match=r"base\.jsonl: 1 answer\(s\) for question_ids not in"):
        load_benchmark("arena_hard", "arena_hard", _arena_files(tmp_path, ["q1"], ["q1", "q9"]))


@pytest.mark.parametrize("loader", ["seeds", "benchmark"])
def test_hf_source_without_revision(loader: str) -> None:
    source = {
        "format": "hf",
        "repo": "openai/gsm8k",
        "config": "main",
        "split": "test",
        "instruction_field": "q",
    }
    with pytest.raises(ConfigError, match=r"revision.*is required"):
        if loader == "seeds":
            load_seeds(source)
        else:
            load_benchmark("gsm8k", "math", source)


def test_hf_source_unreachable_names_repo() -> None:
    source = {"format": "hf", "repo": "openai/gsm8k", "config": "main", "split": "test", "revision": "0" * 40}
    with pytest.raises(DataError, match=r"could not load dataset 'openai/gsm8k'") as err:
        load_benchmark("gsm8k", "math", source)
    assert err.value.path.startswith("hf://datasets/openai/gsm8k@")


def test_hf_source_through_datasets_on_a_local_folder(tmp_path: Path) -> None:
    """The hf path end to end with the real datasets.load_dataset, on a local folder instead of the hub."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _write(
        repo / "test.jsonl",
        ['{"question": "1+1?", "answer": "1+1=2\\n#### 2"}', '{"question": "3?", "answer": "#### 3"}'],
    )
    common = {
        "format": "hf",
        "repo": str(repo),
        "revision": "local",
        "split": "test",
        "cache_dir": str(tmp_path / "c"),
    }
    items = load_benchmark("gsm8k", "math", {**common, "record_format": "gsm8k"})
    assert items == [
        {"id": "gsm8k/0", "prompt": "1+1?", "answer": "2"},
        {"id": "gsm8k/1", "prompt": "3?", "answer": "3"},
    ]
    seeds = load_seeds({**common, "instruction_field": "question", "id_prefix": "local"}, limit=1)
    assert seeds == [{"id": "local/0", "instruction": "1+1?", "response": ""}]


def test_hf_source_needs_a_record_mapping() -> None:
    source = {"format": "hf", "repo": "someone/else", "split": "test", "revision": "abc"}
    with pytest.raises(ConfigError, match="record_format"):
        load_benchmark("x", "math", source)


def test_agora_seed_empty_instruction(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(
        json.dumps(
            [
                {"config": "math", "instruction": "ok", "response": "r"},
                {"config": "math", "instruction": "  ", "response": "r"},
            ]
        )
    )
    with pytest.raises(DataError, match=r"seed\.json, record '#1': seed 'math/1' has an empty instruction"):
        load_seeds({"format": "agora_json", "path": str(path)})


def test_duplicate_ids(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.jsonl", ['{"id": "a", "instruction": "x", "response": ""}'] * 2)
    with pytest.raises(DataError, match="duplicate id 'a'"):
        load_seeds({"format": "jsonl", "path": str(path)})


def test_normalised_items_are_checked_per_kind(tmp_path: Path) -> None:
    path = _write(tmp_path / "code.jsonl", ['{"id": "c/0", "prompt": "write f"}'])
    with pytest.raises(DataError, match="line 1: missing field 'tests'"):
        load_benchmark("code", "code", {"format": "jsonl", "path": str(path)})
    path = _write(tmp_path / "ok.jsonl", ['{"id": "c/0", "prompt": "write f", "tests": "assert True"}'])
    [item] = load_benchmark("code", "code", {"format": "jsonl", "path": str(path)})
    assert item["setup"] == "" and item["entry_point"] is None and item["prompt_code"] is None
    path = _write(tmp_path / "judge.jsonl", ['{"id": "j/0", "prompt": "hi", "reference_output": ""}'])
    with pytest.raises(DataError, match="field 'reference_output' is empty"):
        load_benchmark("alpaca_eval", "alpaca_eval", {"format": "jsonl", "path": str(path)})
    path = _write(tmp_path / "math.jsonl", ['{"id": "m/0", "prompt": "1+1", "answer": 2}'])
    with pytest.raises(DataError, match="field 'answer' must be str"):
        load_benchmark("math", "math", {"format": "jsonl", "path": str(path)})


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"benchmarks\.gsm8k\.source\.format.*unknown format 'csv'"):
        load_benchmark("gsm8k", "math", {"format": "csv", "path": "x"})
    with pytest.raises(ConfigError, match="yields 'code' items, not 'math'"):
        load_benchmark("mbpp", "math", {"format": "mbpp_jsonl", "path": "x"})
    with pytest.raises(ConfigError, match="unknown kind"):
        load_benchmark("mbpp", "python", {"format": "demo", "name": "mbpp"})
    with pytest.raises(ConfigError, match="task_ids"):
        load_benchmark("mbpp", "code", {"format": "mbpp_jsonl", "path": "x", "task_ids": [510, 11]})
    with pytest.raises(ConfigError, match="limit"):
        load_seeds({"format": "demo", "name": "math_response_generation"}, limit=-1)
    with pytest.raises(ConfigError, match=r"no demo file seeds/nothing\.jsonl; available: code_instance"):
        load_seeds({"format": "demo", "name": "nothing"})
    with pytest.raises(ConfigError, match=r"source\.path.*is required"):
        load_seeds({"format": "jsonl"})
