"""The paper's evaluation inputs: the full MATH loader, pinned sha256-verified assets, and the default
config wiring them (official judge prompts/configs, df_gamed.csv, HumanEval+)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from agorabench import workflow as wf
from agorabench.data.benchmarks import _hf_record_format, load_benchmark
from agorabench.errors import ConfigError, DataError
from agorabench.evaluation.assets import asset_file, asset_refs, obtain_asset, resolve_assets

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_hendrycks_math_answer_is_the_last_boxed(tmp_path: Path) -> None:
    rows = [  # the original MATH record layout (EleutherAI/hendrycks_math columns)
        {"problem": "What is $1+1$?", "level": "Level 1", "type": "Prealgebra",
         "solution": "We get $\\boxed{3}$ first, no: $1+1=\\boxed{2}$."},
        {"problem": "Simplify.", "level": "Level 5", "type": "Algebra",
         "solution": "So it is $\\boxed{\\frac{1}{\\sqrt{2}}}$."},
        {"problem": "Area?", "level": "Level 2", "type": "Geometry", "solution": "The area is $\\fbox{12}$."},
    ]  # fmt: skip
    items = load_benchmark(
        "math", "math", {"format": "hendrycks_math_jsonl", "path": str(_write(tmp_path / "t.jsonl", rows))}
    )
    assert [i["answer"] for i in items] == ["2", "\\frac{1}{\\sqrt{2}}", "12"]
    assert [i["id"] for i in items] == ["math/0", "math/1", "math/2"] and items[0][
        "prompt"
    ] == "What is $1+1$?"


def test_hendrycks_math_without_a_boxed_answer_names_the_record(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", [{"problem": "p", "solution": "no final answer here"}])
    with pytest.raises(DataError, match=r"bad\.jsonl, line 1: field 'solution' has no \\boxed"):
        load_benchmark("math", "math", {"format": "hendrycks_math_jsonl", "path": str(path)})


def test_hendrycks_math_on_math500_gives_its_answers(shared_data: Path) -> None:
    """MATH-500 keeps the original `solution`: deriving the answer from it gives MATH-500's own `answer`."""
    path = shared_data / "math/test.jsonl"
    derived = load_benchmark("math", "math", {"format": "hendrycks_math_jsonl", "path": str(path)})
    given = load_benchmark("math", "math", {"format": "math_jsonl", "path": str(path)})
    assert len(derived) == 500 and derived == given


def test_full_math_is_the_default_record_format() -> None:
    assert _hf_record_format({"repo": "EleutherAI/hendrycks_math", "revision": "x"}, "s") == "hendrycks_math"


def test_asset_from_a_local_copy_is_verified(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "arena-hard-v0.1/config/judge_config.yaml"
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "judge_config.yaml"
    assert obtain_asset({"path": str(src), "sha256": sha}, out, "evaluation.assets.a") == {
        "bytes": src.stat().st_size
    }
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(DataError, match=rf"sha256 {sha} differs from evaluation\.assets\.a\.sha256 0{{64}}"):
        obtain_asset({"path": str(src), "sha256": "0" * 64}, tmp_path / "x.yaml", "evaluation.assets.a")


def test_gunzipped_asset_keeps_the_hash_of_the_download(tmp_path: Path) -> None:
    gz = tmp_path / "Tasks.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"a": 1}\n'))
    spec = {"path": str(gz), "sha256": hashlib.sha256(gz.read_bytes()).hexdigest(), "gunzip": True}
    assert asset_file(spec, "w") == "Tasks.jsonl"
    obtain_asset(spec, tmp_path / "out" / "Tasks.jsonl", "w")
    assert (tmp_path / "out" / "Tasks.jsonl").read_bytes() == b'{"a": 1}\n'


@pytest.mark.parametrize(
    ("spec", "key"),
    [({"url": "http://x/f", "sha256": "0" * 64}, "a.url"), ({"path": "f", "sha256": "abc"}, "a.sha256"),
     ({"sha256": "0" * 64}, "a"), ({"path": "f", "sha256": "0" * 64, "md5": "x"}, "a.md5")],
)  # fmt: skip
def test_bad_asset_specs_name_the_key(spec: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        asset_file(spec, "a")
    assert err.value.key == key


def test_asset_references_resolve_or_name_the_setting() -> None:
    settings = {"judge_template": {"asset": "clf"}, "glm": "length_controlled_v1", "k": [1]}
    assert asset_refs(settings) == ["clf"]
    assert resolve_assets(settings, {"clf": "r/clf.txt"}, "s")["judge_template"] == "r/clf.txt"
    with pytest.raises(ConfigError, match=r"asset 'clf' is not in evaluation\.assets") as err:
        resolve_assets(settings, {}, "benchmarks.alpaca_eval.settings")
    assert err.value.key == "benchmarks.alpaca_eval.settings.judge_template"


@pytest.fixture(scope="module")
def paper() -> dict:
    return yaml.safe_load((ROOT / "config/config.yaml").read_text(encoding="utf-8"))


def test_paper_config_evaluates_full_math_humaneval_plus_and_official_judges(paper: dict) -> None:
    math = wf.benchmark_spec(paper, "math")["source"]
    assert math["repo"] == "EleutherAI/hendrycks_math" and len(math["data_files"]["test"]) == 7
    for bench, asset in (("humaneval", "humanevalplus"), ("mbpp", "mbppplus")):
        source = wf.benchmark_spec(paper, bench)["source"]
        assert source == {"format": "evalplus_jsonl", "path": wf.asset_paths(paper)[asset]}
        assert wf.asset_inputs(paper, paper["benchmarks"][bench]["source"]) == [wf.asset_paths(paper)[asset]]
    alpaca = wf.scorer_settings(paper, "alpaca_eval")
    assert alpaca["verdict"] == "logprobs" and alpaca["judge_template"].endswith(
        "alpaca_eval_clf/alpaca_eval_clf.txt"
    )
    assert alpaca["glm"] == "length_controlled_v1" and alpaca["glm_data"].endswith("df_gamed.csv")
    assert wf.scorer_settings(paper, "arena_hard")["judge_template"].endswith("judge_config.yaml")
    assert sorted(wf.judge_inputs(paper, "alpaca_eval")["judge_assets"]) == sorted(
        [alpaca["judge_template"], alpaca["glm_data"]]
    )
    for name in ("alpaca_eval", "arena_hard"):
        assert paper["judges"][paper["benchmarks"][name]["judge"]]["model"] == "gpt-4-1106-preview"


def test_paper_assets_match_the_shared_copies(paper: dict, shared_data: Path) -> None:
    """The pinned hashes are those of the byte-identical copies in ../shared/data (see their SOURCE.md)."""
    copies = {
        "alpaca_eval_clf": "alpaca-eval-2/evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt",
        "arena_hard_judge_config": "arena-hard-v0.1/config/judge_config.yaml",
        "arena_hard_questions": "arena-hard-v0.1/question.jsonl",
        "arena_hard_baseline": "arena-hard-v0.1/model_answer/gpt-4-0314.jsonl",
    }
    assets = paper["evaluation"]["assets"]
    for name, rel in copies.items():
        assert hashlib.sha256((shared_data / rel).read_bytes()).hexdigest() == assets[name]["sha256"], name


def test_official_judge_assets_load_as_templates(paper: dict, shared_data: Path, tmp_path: Path) -> None:
    from agorabench.evaluation.judging import load_template

    assets = paper["evaluation"]["assets"]
    out = tmp_path / "judge_config.yaml"
    obtain_asset(
        assets["arena_hard_judge_config"]
        | {"path": str(shared_data / "arena-hard-v0.1/config/judge_config.yaml")},
        out,
        "a",
    )
    template = load_template(out, "arena_hard.txt", ("question_1", "answer_1", "answer_2"))
    assert template.regex_pattern == "\\[\\[([AB<>=]+)\\]\\]" and template.messages[0][0] == "system"
