"""Trace and verify on the offline demo's records (CI runs `make demo` first and sets
AGORABENCH_DEMO_RESULTS=results/demo). Verification edits only a linked copy of the results."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from agorabench import workflow as wf
from agorabench.provenance.lineage import trace, write_lineage_md
from agorabench.provenance.verify import verify

ROOT = Path(__file__).resolve().parents[1]
RESULTS = os.environ.get("AGORABENCH_DEMO_RESULTS")
pytestmark = pytest.mark.skipif(not RESULTS, reason="set AGORABENCH_DEMO_RESULTS after `make demo` (CI does)")
CONFIG = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
LEAF_RULES = {"prepare_seeds", "prepare_benchmark", "prepare_reference_data", "materialize_model"}


def _key(rule: str, **wildcards: object) -> tuple[str, tuple[tuple[str, str], ...]]:
    return rule, tuple(sorted((k, str(v)) for k, v in wildcards.items()))


def _expected_jobs() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every job upstream of the PGR table, by the study plan of config/demo.yaml."""
    out = {_key("pgr_table"), _key("scores_table"), _key("train_reference"), _key("prepare_reference_data")}
    out |= {_key("materialize_model", model_name=m) for m in CONFIG["models"]}
    out |= {_key("prepare_benchmark", benchmark=b) for b in CONFIG["benchmarks"]}
    judged = set(wf.judged(CONFIG))
    for model, benchmarks in wf.inference_jobs(CONFIG):
        name = wf.PREDICT_BASELINES if model in wf.BASELINES else model.split("/")[2]
        assert benchmarks == wf.prediction_sets(CONFIG)[name]
        out.add(_key(f"predict_{name}", model=model))
    for model, bench in wf.evaluations(CONFIG):
        out.add(_key("score_judged" if bench in judged else "score", model=model, benchmark=bench))
    for s in wf.students(CONFIG):
        setting = {"generator": s.generator, "domain": s.domain, "method": s.method, "variant": s.variant}
        out |= {_key("generate_local", **setting), _key("prepare_seeds", domain=s.domain, method=s.method)}
        out |= {_key("take_size", **setting, size=s.size), _key("train_student", **setting, size=s.size)}
    return out


def test_trace_of_the_pgr_table_reaches_every_job_down_to_the_seeds():
    lineage = trace(f"{RESULTS}/analysis/pgr.csv", workdir=ROOT)
    got = {_key(j.rule, **(j.record.get("wildcards") or {})) for j in lineage.jobs.values()}
    missing = _expected_jobs() - got
    assert not missing, sorted(missing)[:10]
    leaves = {j.rule for j in lineage.jobs.values() if not j.upstream}
    assert leaves == LEAF_RULES
    prompts = CONFIG["generation"]["prompts_dir"]  # the demo's own meta-prompts (config/demo-prompts)
    assert f"{prompts}/agorabench/math_instance_generation.txt" in lineage.sources()


def test_lineage_markdown_of_the_pgr_table(tmp_path: Path):
    out = tmp_path / "pgr.csv.lineage.md"
    counts = write_lineage_md(f"{RESULTS}/analysis/pgr.csv", out=out, workdir=ROOT)
    text = out.read_text()
    assert counts["jobs"] >= len(_expected_jobs())
    assert "| `generate_local` |" in text and "prepare_seeds [domain=math method=instance_generation]" in text


def _linked_copy(tmp_path: Path) -> Path:
    """A working directory whose results are per-file links to the demo's (an edit replaces a link)."""
    work = tmp_path / "work"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("results", ".snakemake", ".git"):
            (work / entry.name).symlink_to(entry)
    src = ROOT / RESULTS
    for folder, _, files in os.walk(src):
        dest = work / RESULTS / Path(folder).relative_to(src)
        dest.mkdir(parents=True, exist_ok=True)
        for f in files:
            (dest / f).symlink_to(Path(folder) / f)
    return work


def test_verify_passes_on_the_demo_and_flags_a_hand_edited_prediction(tmp_path: Path):
    student = next(s for s in wf.students(CONFIG) if s.domain == "math")
    target = f"{RESULTS}/evaluation/{student.path}/gsm8k/score.json"
    edited = str(Path(target).with_name("predictions.jsonl"))
    work = _linked_copy(tmp_path)
    report = verify(target, workdir=work, code="off")
    assert report.ok, report.text()
    rules = {j.rule for j in trace(target, workdir=work).jobs.values()}
    assert {"generate_local", "train_student", "prepare_seeds"} <= rules
    original = (work / edited).read_text()
    (work / edited).unlink()  # the link, not the demo's file
    (work / edited).write_text(original.replace('"output": "', '"output": "edited ', 1))
    report = verify(target, workdir=work, code="off")
    assert [(p.kind, p.path) for p in report.problems] == [("modified", edited)]
    assert (ROOT / edited).read_text() == original
