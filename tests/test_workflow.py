"""The study plan and the config checks: the DAG a config asks for, and errors that name the key."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from agorabench import workflow as wf
from agorabench.analysis import inputs as ai
from agorabench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "config/schema.yaml").read_text())


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name):
    config = load(name)
    jsonschema.Draft202012Validator(SCHEMA).validate(config)
    wf.check_config(config)


def test_paper_plan_counts():
    config = load("config.yaml")
    students = wf.students(config)
    # Table 2: 6 generators x 9 settings; Table 5: 3 generators x 3 domains x 2 methods x 2 variants;
    # Figure 7: GPT-4o-mini, Llama-3.1-70B and -8B at 2 more sizes (25K, 50K) x 3 domains x 3 methods.
    assert len(students) == 54 + 36 + 54
    assert len(wf.generated_sets(config)) == 54 + 36
    assert wf.pool_size(config, "gpt-4o-mini", "math", "instance_generation", "agorabench") == 50000
    assert wf.pool_size(config, "gpt-4o", "math", "instance_generation", "agorabench") == 10000
    assert wf.pool_size(config, "llama-3.1-8b-instruct", "code", "quality_enhancement", "agorabench") == 50000
    # every student on its domain's 2 benchmarks; S_0 and S_ref on all 6
    assert len(wf.evaluations(config)) == 2 * len(students) + 2 * 6


def test_demo_plan_counts():
    config = load("demo.yaml")
    # 2 generators x 9 settings, plus the demo's one-student volume study
    assert len(wf.students(config)) == 2 * 9 + 1
    assert wf.reference_is_trained(config)
    assert wf.checkpoint_dir(config, "reference").endswith("training/reference/model")
    assert wf.checkpoint_dir(config, "base") == "results/demo/models/smollm2-135m-instruct"


def test_student_paths_are_unique_and_readable():
    config = load("config.yaml")
    paths = [s.path for s in wf.students(config)]
    assert len(paths) == len(set(paths))
    assert "students/gpt-4o/math/instance_generation/agorabench/n10000" in paths


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c["experiments"]["main"]["generators"].append("gpt-5"), "experiments.main.generators"),
        (lambda c: c["student"].__setitem__("base", "nope"), "student.base"),
        (
            lambda c: c["generators"]["llama-3.1-8b-instruct"].__setitem__("model", "nope"),
            "generators.llama-3.1-8b-instruct.model",
        ),
        (lambda c: c["benchmarks"]["arena_hard"].__setitem__("judge", "nope"), "benchmarks.arena_hard.judge"),
    ],
)
def test_cross_reference_errors_name_the_key(mutate, key):
    config = copy.deepcopy(load("config.yaml"))
    mutate(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        wf.check_config(config)


def snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("snakemake")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_schema_rejects_unknown_key_before_any_job(tmp_path):
    config = load("demo.yaml")
    config["training"]["learning_rte"] = 1e-4
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    out = snakemake("-n", "all", "--configfile", str(bad))
    assert out.returncode != 0
    assert "learning_rte" in out.stdout + out.stderr


def test_schema_rejects_bad_value_naming_it(tmp_path):
    config = load("demo.yaml")
    config["generators"]["smollm2-t0.7"]["backend"] = "openia"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    out = snakemake("-n", "all", "--configfile", str(bad))
    assert out.returncode != 0
    assert "openia" in out.stdout + out.stderr


def _job_counts(output: str) -> dict[str, int]:
    """Per-rule job counts from the table a dry-run prints."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("job ")) + 2
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def test_paper_dag_plans_offline():
    out = snakemake("-n", "-F", "all", "--quiet", "rules")
    assert out.returncode == 0, out.stderr[-3000:]
    config = load("config.yaml")
    students = wf.students(config)
    counts = _job_counts(out.stdout)
    evaluations = wf.evaluations(config)
    judged = sum(1 for _, b in evaluations if b in wf.judged(config))
    assert counts["materialize_model"] == len(config["models"])
    assert counts["prepare_seeds"] == counts["build_seed_set"] == 9 and counts["prepare_benchmark"] == 6
    assert counts["generate_api"] + counts["generate_local"] == len(wf.generated_sets(config)) == 90
    assert counts["take_size"] == counts["train_student"] == counts["training_data"] == len(students) == 144
    predicts = sum(counts[f"predict_{s}"] for s in wf.prediction_sets(config))
    assert predicts == len(wf.inference_jobs(config)) == 2 + len(students)  # one job per model
    # + Table 7: each generator scored on the six benchmarks (analysis.problem_solving source generators)
    table7 = [p for p in ai.problem_solving_score_paths(config) if "/evaluation/generators/" in p]
    judged7 = sum(1 for p in table7 if p.split("/")[-2] in wf.judged(config))
    assert len(table7) == 6 * 6
    assert counts["score"] + counts["score_judged"] == len(evaluations) + len(table7)
    assert counts["score_judged"] == judged + judged7
    assert counts["all"] == 1 and counts["total"] > 700


def test_demo_dag_plans():
    out = snakemake("-n", "-F", "all", "--quiet", "rules", "--configfile", "config/demo.yaml")
    assert out.returncode == 0, out.stderr[-3000:]
    config = load("demo.yaml")
    counts = _job_counts(out.stdout)
    students = wf.students(config)
    assert counts["materialize_model"] == 1 and counts["train_reference"] == 1
    assert counts["generate_local"] == len(wf.generated_sets(config)) == 18
    assert counts["generate_settings"] == len(config["generators"]) == 2  # one_job_per_generator
    assert counts["judge_calls"] == counts["intrinsic_judge_calls"] == 1  # one_job_per_judge
    assert counts["take_size"] == counts["train_student"] == len(students)
    assert sum(counts[f"predict_{s}"] for s in wf.prediction_sets(config)) == 2 + len(students)
    for rule in ("scores_table", "pgr_table", "figure_pgr"):
        assert counts[rule] == 1
