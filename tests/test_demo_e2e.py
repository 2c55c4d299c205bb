"""The offline demo's outputs, checked after `make demo` (CI runs the demo first and sets
AGORABENCH_DEMO_RESULTS=results/demo)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from agorabench import workflow as wf

ROOT = Path(__file__).resolve().parents[1]
RESULTS = os.environ.get("AGORABENCH_DEMO_RESULTS")
pytestmark = pytest.mark.skipif(not RESULTS, reason="set AGORABENCH_DEMO_RESULTS after `make demo` (CI does)")
CONFIG = yaml.safe_load((ROOT / "config/demo.yaml").read_text())


@pytest.fixture(scope="module")
def results() -> Path:
    path = ROOT / RESULTS
    assert (path / "analysis/pgr.csv").is_file(), f"{path} has no PGR table: did `make demo` run?"
    return path


def test_pgr_table_has_every_generator_and_method(results):
    table = pd.read_csv(results / "analysis/pgr.csv")
    assert set(table["generator"]) == set(CONFIG["generators"])
    assert set(table["method"]) == set(wf.METHODS)
    assert {"math", "code", "instruction_following", "average"} <= set(table.columns)
    md = (results / "analysis/pgr.md").read_text()
    assert "smollm2-t0.7" in md and "Math" in md
    assert (results / "analysis/pgr.tex").read_text().strip()


def test_pgr_values_are_finite_or_undefined(results):
    long = pd.read_csv(results / "analysis/pgr_long.csv")
    bench = long[long["level"] == "benchmark"]
    assert len(bench) == 2 * len(wf.students(CONFIG))
    defined = bench["pgr"].dropna()
    assert (defined.abs() < float("inf")).all()
    undefined = bench[bench["pgr"].isna()]
    assert undefined["note"].astype(str).str.contains("undefined").all()  # (none when all are defined)


def test_every_score_file_and_its_provenance(results):
    for model, bench in wf.evaluations(CONFIG):
        score = results / "evaluation" / model / bench / "score.json"
        data = json.loads(score.read_text())
        assert data["model"] == model and data["benchmark"] == bench
        assert data["n"] == CONFIG["benchmarks"][bench]["limit"]
        if data["value"] is None:  # undefined only when the judge gave no parsable verdict
            assert data["counts"]["judge_unparsed"] == data["counts"]["judged"] > 0
        else:
            assert 0.0 <= data["value"] <= 100.0
        prov = json.loads((score.parent / "score.json.prov.json").read_text())
        assert prov["outputs"][0]["sha256"]


def test_reference_differs_from_base(results):
    scores = pd.read_csv(results / "analysis/scores.csv")
    assert {"base", "reference"} <= set(scores["model"])
    ref_info = json.loads((results / "training/reference/train_info.json").read_text())
    assert ref_info


def test_generation_stats_record_counts_and_cost(results):
    for g, d, m, v in wf.generated_sets(CONFIG):
        stats = json.loads((results / "generation" / g / d / m / v / "pool.stats.json").read_text())
        assert stats["calls"] >= 1
        assert "rejected" in stats and "shortfall" in stats


def test_figure_is_written(results):
    png = results / "analysis/figures/pgr_by_generator.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (results / "analysis/figures/pgr_by_generator.pdf").read_bytes()[:4] == b"%PDF"


def test_one_inference_job_per_model(results):
    for model, benchmarks in wf.inference_jobs(CONFIG):
        summary = json.loads((results / "evaluation" / model / "predictions.json").read_text())
        assert list(summary["benchmarks"]) == benchmarks
        assert summary["engine_starts"] <= 1  # one model load for all of its benchmarks (0: all stored)
        for bench in benchmarks:
            rows = (results / "evaluation" / model / bench / "predictions.jsonl").read_text().splitlines()
            assert (
                len(rows)
                == summary["benchmarks"][bench]["predictions"]
                == CONFIG["benchmarks"][bench]["limit"]
            )


def test_one_generation_job_per_generator(results):
    """generate_settings made every call (one model load per generator); each pool's job replayed them."""
    counts = ("valid", "calls", "rejected", "finish_reasons", "input_tokens", "output_tokens")
    for g in wf.one_job_generators(CONFIG):
        summary = json.loads((results / "generation" / g / "settings.json").read_text())
        pools = {(s["domain"], s["method"], s["variant"]): s for s in summary["pools"]}
        assert sorted(pools) == sorted(wf.generator_settings(CONFIG, g))
        for (d, m, v), made in pools.items():
            stats = json.loads((results / "generation" / g / d / m / v / "pool.stats.json").read_text())
            assert [stats[k] for k in counts] == [made[k] for k in counts]
            assert stats["calls_new"] == 0 and stats["calls_from_store"] == stats["calls"]


def test_one_job_per_judge(results):
    """judge_calls and intrinsic_judge_calls made the judges' calls; each pair's or set's job read them."""
    for judge in wf.one_job_judges(CONFIG):
        summary = json.loads((results / "evaluation" / f"judge_calls.{judge}.json").read_text())
        assert sorted(summary["pairs"]) == sorted(f"{m} {b}" for m, b in wf.judged_pairs(CONFIG, judge))
        for m, b in wf.judged_pairs(CONFIG, judge):
            stored = (results / "evaluation" / m / b / "judge_calls.jsonl").read_text().splitlines()
            assert len(stored) == summary["pairs"][f"{m} {b}"]["calls"] >= 1  # none added by score_judged
    from agorabench.analysis import inputs as ai

    for suffix in ai.one_job_judges(CONFIG):
        summary = json.loads((results / "analysis" / "intrinsic" / f"judge_calls.{suffix}.json").read_text())
        assert summary["sets"] == len(ai.intrinsic_sets(CONFIG)) and summary["calls"] >= summary["sets"]


def test_one_training_job_for_every_model(results):
    """train_all trained every model once; each model's own job linked the staged files (same inode)."""
    names = wf.one_job_training(CONFIG)
    summary = json.loads((results / "training" / "train_all.json").read_text())
    assert [m["name"] for m in summary["models"]] == names and len(names) == len(wf.students(CONFIG)) + 1
    for name in names:
        info = json.loads((results / "training" / name / "train_info.json").read_text())
        assert info["trained_by"].endswith("training/train_all.json")
        final = results / "training" / name / "model" / "model.safetensors"
        staged = results / "training" / "staged" / name / "model" / "model.safetensors"
        assert final.stat().st_ino == staged.stat().st_ino
