"""Provenance records, trace and verify on a small synthetic chain of jobs written in tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from snakemake.iocontainers import Namedlist

from agorabench.provenance import cli, job
from agorabench.provenance import lineage as lin
from agorabench.provenance.datacard import CardInputs, card, seed_licenses
from agorabench.provenance.verify import verify

CANARY = "sk-canary-record-0123456789abcdef"
CONFIG = {
    "seed": 7,
    "results_dir": "res",
    "generators": {"gen-1.0": {"backend": "openai", "model": "gpt-x", "api_key_env": "OPENAI_API_KEY"}},
    "generation": {"sampling": {"temperature": 1.0}, "prompts_dir": "cfg"},
    "student": {"base": "base"},
    "training": {"seed": 11, "epochs": 1},
    "seeds": {"math": {"instance_generation": {"format": "jsonl", "path": "src/seeds.jsonl"}}},
}


class FakeSmk:
    """The parts of Snakemake's script object that `job` reads."""

    def __init__(self, rule: str, inputs: dict, outputs: dict, params: dict | None = None, wildcards=None):
        self.rule, self.threads, self.config = rule, 1, CONFIG
        self.input = Namedlist(fromdict=inputs)
        self.output = Namedlist(fromdict=outputs)
        self.params = Namedlist(fromdict=params or {})
        self.wildcards = Namedlist(fromdict=wildcards or {})
        self.log = Namedlist()


def _write(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def _run(smk: FakeSmk, counts: dict[str, Any] | None = None) -> dict[str, Any]:
    with job(smk) as j:
        j.counts = counts or {}
    return json.loads(Path(str(smk.output[0]).rstrip("/") + ".prov.json").read_text())


GEN = "res/gen/gen-1.0/math/instance_generation/agorabench"
WC = {"generator": "gen-1.0", "domain": "math", "method": "instance_generation", "variant": "agorabench"}


def _seeds() -> dict:
    _write("src/seeds.jsonl", '{"id": "s1", "instruction": "1+1?", "response": "2"}\n')
    _write("res/seeds.jsonl", '{"id": "s1", "instruction": "1+1?", "response": "2"}\n')
    params = {"source": CONFIG["seeds"]["math"]["instance_generation"]}
    wc = {"domain": "math", "method": "instance_generation"}
    return _run(FakeSmk("prepare_seeds", {}, {"o": "res/seeds.jsonl"}, params, wc), {"records": 1})


def _generate() -> dict:
    _write("cfg/tpl.txt", "Write a new problem like {demos}\n")
    _write(f"{GEN}/pool.jsonl", '{"index": 0, "instruction": "2+2?", "response": "4"}\n')
    stats = {"n": 1, "valid": 1, "calls": 2, "input_tokens": 30, "output_tokens": 9, "cost_usd": 0.001,
             "finish_reasons": {"stop": 1, "error": 1}, "rejected": {"no_output_trigger": 1},
             "models": ["gpt-x-1"]}  # fmt: skip
    _write(f"{GEN}/pool.stats.json", json.dumps(stats))
    rows = [
        {"id": "a", "finish_reason": "error", "attempts": 3},
        {"id": "a", "finish_reason": "stop", "input_tokens": 15, "output_tokens": 5, "model": "gpt-x-1"},
        {"id": "b", "finish_reason": "stop", "input_tokens": 15, "output_tokens": 4, "model": "gpt-x-1"},
    ]
    _write(f"{GEN}/calls.jsonl", "".join(json.dumps(r) + "\n" for r in rows) + '{"torn')
    inputs = {"seeds": "res/seeds.jsonl", "template": "cfg/tpl.txt"}
    params = {"generation": {"seed": 7, "n": 1, "api_key": "literal", "note": CANARY}}
    smk = FakeSmk("generate_api", inputs, {"data": f"{GEN}/pool.jsonl", "stats": f"{GEN}/pool.stats.json"})
    smk.params, smk.wildcards = Namedlist(fromdict=params), Namedlist(fromdict=WC)
    return _run(smk, stats | {"template_sha256": "abc"})


def _take(text: str = '{"index": 0, "instruction": "2+2?", "response": "4"}\n') -> dict:
    _write(f"{GEN}/n1.jsonl", text)
    return _run(
        FakeSmk("take_size", {"pool": f"{GEN}/pool.jsonl"}, {"o": f"{GEN}/n1.jsonl"}, {}, WC | {"size": "1"})
    )


def _train() -> dict:
    _write("res/models/base/config.json", "{}")
    _write(
        "res/models/base/model_info.json", json.dumps({"model": "base", "source": "hub", "revision": "r1"})
    )
    out = "res/train/model"
    _write(f"{out}/weights.bin", "w")
    _write("res/train/info.json", "{}")
    inputs = {"data": f"{GEN}/n1.jsonl", "base": "res/models/base"}
    params = {"hparams": CONFIG["training"]}
    return _run(FakeSmk("train_student", inputs, {"model": out, "info": "res/train/info.json"}, params, WC))


def _table() -> dict:
    _write("res/table.csv", "a,b\n1,2\n")
    _write("res/table.md", "| a | b |\n")
    outputs = {"csv": "res/table.csv", "md": "res/table.md"}
    return _run(FakeSmk("scores_table", {"m": "res/train/model"}, outputs))


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """seeds -> generate -> take_size -> train -> table, each with its record, in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MY_SERVICE_API_KEY", CANARY)
    return {"seeds": _seeds(), "gen": _generate(), "take": _take(), "train": _train(), "table": _table()}


def test_record_has_config_code_models_templates_seeds_and_ledger(chain):
    gen = chain["gen"]
    assert gen["record_version"] == 2 and gen["absent"] == {
        "code.script": "not run as a Snakemake rule script"
    }
    assert gen["config"]["generators"] == {"gen-1.0": CONFIG["generators"]["gen-1.0"]}  # *_env names kept
    assert gen["config"]["generation"] == CONFIG["generation"] and gen["config"]["seed"] == 7
    assert "agorabench/provenance/record.py" in gen["code"]["modules"]
    assert gen["started"] <= gen["finished"]
    assert gen["templates"][0]["path"] == "cfg/tpl.txt" and gen["templates"][0]["content_sha256"] == "abc"
    assert gen["models"] == [{"role": "generator", "name": "gen-1.0", "backend": "openai", "model": "gpt-x"}]
    assert gen["seeds"] == {"config.seed": 7, "params.generation.seed": 7}
    store = gen["ledger"]["call_store"]
    assert store["calls"] == 2 and store["finish_reasons"] == {"stop": 2}  # later row replaced the error
    assert store["input_tokens"] == 30 and store["models"] == ["gpt-x-1"]
    assert gen["ledger"]["stats"]["cost_usd"] == 0.001
    assert chain["seeds"]["sources"][0]["path"] == "src/seeds.jsonl"
    assert chain["train"]["models"][0]["model_info"]["revision"] == "r1"
    assert chain["train"]["seeds"]["config.training.seed"] == 11


def test_record_keeps_secrets_out(chain):
    text = Path(f"{GEN}/pool.jsonl.prov.json").read_text()
    assert CANARY not in text and "literal" not in text
    assert json.loads(text)["params"]["generation"]["api_key"] == "<redacted>"


def test_missing_pieces_are_recorded_as_absent_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    _write("out.txt", "x")
    smk = FakeSmk("generate_api", {"template": "no/such/template.txt"}, {"o": "out.txt"}, {}, WC)
    smk.config = None
    rec = _run(smk)
    assert "FileNotFoundError" in rec["absent"]["templates"]
    assert rec["outputs"][0]["sha256"] and rec["config"] == {"seed": None, "results_dir": None}


def test_trace_walks_every_job_from_a_non_first_output(chain):
    lineage = lin.trace("res/table.md")
    assert [j.rule for j in lineage.jobs.values()] == [
        "prepare_seeds", "generate_api", "take_size", "train_student", "scores_table",
    ]  # fmt: skip
    assert lineage.root == "res/table.csv.prov.json"
    assert set(lineage.sources()) == {"cfg/tpl.txt", "src/seeds.jsonl", "res/models/base"}
    text = lin.tree(lineage)
    assert "res/models/base" in text and "train_student [generator=gen-1.0" in text
    assert text.rstrip().endswith("5 jobs (generate_api 1, prepare_seeds 1, scores_table 1, take_size 1, "
                                  "train_student 1); 3 source files")  # fmt: skip
    dot = lin.to_dot(lineage)
    assert dot.count("shape=box") == 5 and dot.count("->") >= 6


def test_trace_finds_files_inside_a_folder_output(chain):
    assert lin.trace("res/train/model/weights.bin").root == "res/train/model.prov.json"


def test_trace_cli_writes_json_markdown_and_dot(chain, capsys):
    assert cli.main(["trace", "res/table.csv", "--json", "l.json", "--md", "--dot", "l.dot", "--tree"]) == 0
    data = json.loads(Path("l.json").read_text())
    assert data["summary"]["jobs"] == 5 and data["jobs"][-1]["rule"] == "scores_table"
    assert data["jobs"][1]["inputs"][0]["producer"] == "res/seeds.jsonl.prov.json"
    md = Path("res/table.csv.lineage.md").read_text()
    assert "| `generate_api` | 1 |" in md and "LLM calls | 2 (30 input / 9 output tokens), $0.00" in md
    assert "([record](table.csv.prov.json))" in md
    assert Path("l.dot").read_text().startswith("digraph lineage")
    assert "scores_table" in capsys.readouterr().out


def test_trace_of_a_file_without_record_fails_clearly(chain, capsys):
    assert cli.main(["trace", "src/seeds.jsonl"]) == 2
    assert "src/seeds.jsonl: no provenance record lists it" in capsys.readouterr().err


def test_verify_passes_then_flags_a_modified_output(chain):
    assert verify("res/table.csv", code="modules").ok
    _write(f"{GEN}/pool.jsonl", '{"index": 0, "instruction": "edited", "response": "4"}\n')
    report = verify("res/table.csv", code="modules")
    [problem] = report.problems
    assert (problem.kind, problem.path) == ("modified", f"{GEN}/pool.jsonl")
    assert problem.jobs == [
        "generate_api [generator=gen-1.0 domain=math method=instance_generation variant=agorabench]"
    ]


def test_verify_flags_missing_files_stale_inputs_and_changed_sources(chain):
    Path("res/train/model/weights.bin").unlink()
    _take('{"index": 0, "instruction": "redone", "response": "4"}\n')  # producer reran, train did not
    _write("src/seeds.jsonl", "changed\n")
    kinds = {(p.kind, p.path): p.detail for p in verify("res/table.csv", code="off").problems}
    assert kinds[("modified", "res/train/model")] == "1 missing: weights.bin"
    assert "older version" in kinds[("stale", f"{GEN}/n1.jsonl")]
    assert ("modified", "src/seeds.jsonl") in kinds and len(kinds) == 3


def test_verify_flags_code_changes(chain, capsys):
    record = Path(f"{GEN}/pool.jsonl.prov.json")
    data = json.loads(record.read_text())
    data["code"]["modules"]["agorabench/jsonl.py"] = "0" * 64
    data["code"]["git_commit"] = "f" * 40
    record.write_text(json.dumps(data))
    modules = verify("res/table.csv", code="modules")
    assert [(p.kind, p.path) for p in modules.problems] == [("code", "agorabench/jsonl.py")]
    assert any("recorded at commit ffffffff" in n for n in modules.notes)
    strict = verify("res/table.csv", code="strict")
    assert ("code", "git") in {(p.kind, p.path) for p in strict.problems}
    assert cli.main(["verify", "res/table.csv"]) == 1
    assert "CODE" in capsys.readouterr().out
    assert cli.main(["verify", "res/table.csv", "--code", "off", "--json", "v.json"]) == 0
    assert json.loads(Path("v.json").read_text())["ok"] is True


def test_svg_without_graphviz_is_a_clear_error(chain, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert cli.main(["trace", "res/table.csv", "--svg", "l.svg"]) == 2
    assert "graphviz `dot` is not installed" in capsys.readouterr().err


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="graphviz `dot` not installed (apt-get install graphviz)"
)
def test_svg_is_rendered_with_graphviz(chain):
    assert cli.main(["trace", "res/table.csv", "--svg", "l.svg"]) == 0
    assert "<svg" in Path("l.svg").read_text()


def test_seed_licenses():
    assert seed_licenses({"format": "demo", "name": "x"})[0]["license"] == "Apache-2.0"
    math = seed_licenses({"format": "agora_json", "path": "data/seed_data/math_seed_data.json"})
    assert [x["license"] for x in math] == ["MIT", "MIT"]
    magpie = seed_licenses(
        {"format": "agora_json", "path": "data/seed_data/magpie_code_seed_data_10000.json"}
    )
    assert magpie == [{"upstream": "Magpie (Magpie-Align)", "license": "unknown"}]
    assert seed_licenses({"format": "hf", "repo": "openai/gsm8k", "revision": "abc"})[0]["license"] == "MIT"
    assert seed_licenses({"format": "jsonl", "path": "mine.jsonl"})[0]["license"] == "unknown"
    assert seed_licenses({"format": "jsonl", "path": "m.jsonl", "license": "CC0"})[0]["license"] == "CC0"


def test_data_card_content(chain):
    stats = json.loads(Path(f"{GEN}/pool.stats.json").read_text())
    text = card(
        CardInputs(
            pool_path=f"{GEN}/pool.jsonl", stats=stats, rows=[{"demo_ids": ["s1"], "source_id": None}],
            record=chain["gen"], seeds_path="res/seeds.jsonl", seeds_record=chain["seeds"],
            generator="gen-1.0", spec=CONFIG["generators"]["gen-1.0"],
            seed_source={"format": "demo", "name": "math_instance_generation"},
            setting=("math", "instance_generation", "agorabench"),
        )
    )  # fmt: skip
    assert "# Data card: `gen-1.0` · math / instance_generation · variant `agorabench`" in text
    assert "| `no_output_trigger` | 1 |" in text and "| seeds used by these instances | 1 |" in text
    assert "license: Apache-2.0" in text and "`gpt-x` through the openai API" in text
    assert "$0.0010" in text and "| random seed | 7 |" in text


def test_config_subset_follows_judges_and_local_models():
    from agorabench.provenance.collect import config_subset

    demo = {
        "seed": 1, "results_dir": "r", "models": {"m-1.5": {"hub": "org/m", "revision": "abc"}},
        "judges": {"j": {"backend": "transformers", "model": "m-1.5"}},
        "benchmarks": {"ae": {"kind": "alpaca_eval", "judge": "j"}},
        "generators": {"g-0.7": {"backend": "vllm", "model": "m-1.5"}},
    }  # fmt: skip
    judged = config_subset("score_judged", {"model": "base", "benchmark": "ae"}, demo)
    assert judged["judges"] == demo["judges"] and judged["models"] == demo["models"]
    assert "judges" not in config_subset("prepare_benchmark", {"benchmark": "ae"}, demo)
    gen = config_subset("generate_local", {"generator": "g-0.7"}, demo)
    assert gen["generators"] == demo["generators"] and gen["models"]["m-1.5"]["revision"] == "abc"
