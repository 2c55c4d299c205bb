"""Every table and figure is a file target that plans only its own upstream (snakemake -n -F on the demo
config: the jobs a from-scratch build of that one file needs, counted per rule against the study plan)."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from agorabench import workflow as wf
from agorabench.analysis import inputs
from agorabench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
A = f"{DEMO['results_dir']}/analysis"


@pytest.fixture(scope="module")
def per_output(tmp_path_factory) -> str:
    """The demo config with one job per output (the one-job modes off): the DAG whose slices these tests
    check. With the modes on, a target also plans every pool of its generators, every pair of its judges
    and every model's training (test_one_job_modes_plan_whole_generators_and_judges)."""
    config = copy.deepcopy(DEMO)
    config["generation"]["one_job_per_generator"] = False
    config["evaluation"]["one_job_per_judge"] = False
    config["intrinsic"]["judge"]["one_job_per_judge"] = False
    config["training"]["one_job"] = False
    path = tmp_path_factory.mktemp("config") / "demo-per-output.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def planned(target: str, configfile: str = "config/demo.yaml") -> Counter:
    """Jobs per rule that a forced build of `target` plans."""
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), "-n", "-F", target, "--configfile", configfile, "--quiet", "rules"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    table = out.stdout.split("Job stats:")[-1].split("Reasons:")[0]
    rows = [line.split() for line in table.splitlines()[3:]]
    counts = Counter({r[0]: int(r[1]) for r in rows if len(r) == 2 and r[1].isdigit()})
    counts.pop("total", None)
    return counts


def evaluations(config: dict, models: list[tuple[str, str]]) -> Counter:
    """predict_<set> (one job per model: S0 and S_ref answer every benchmark, a student its domain's) +
    score / score_judged jobs of (model, domain) pairs; S0 and S_ref's are listed like others."""
    judged = set(wf.judged(config))
    pairs = {(m, b) for m, d in models for b in wf.benchmarks_of(config, d)}
    sets = wf.prediction_sets(config)
    c: Counter = Counter()
    answered: set[str] = set()
    for m in {m for m, _ in models}:
        name = wf.PREDICT_BASELINES if m in wf.BASELINES else m.split("/")[2]
        c[f"predict_{name}"] += 1
        answered |= set(sets[name])
    c["score_judged"] = sum(b in judged for _, b in pairs)
    c["score"] = len(pairs) - c["score_judged"]
    c["prepare_benchmark"] = len(answered)
    return c


def generation(students: list[wf.Student]) -> Counter:
    return Counter(
        materialize_model=1,  # the demo's one model: generators, student, judge
        prepare_seeds=len({(s.domain, s.method) for s in students}),
        generate_local=len({(s.generator, s.domain, s.method, s.variant) for s in students}),
        take_size=len(students),
    )


def pgr_upstream(config: dict, students: list[wf.Student]) -> Counter:
    """Everything the PGRs of `students` need: their data, training and evaluation, S0 and S_ref's."""
    domains = {s.domain for s in students}
    models = [(s.path, s.domain) for s in students] + [(b, d) for b in wf.BASELINES for d in domains]
    c = generation(students) + evaluations(config, models)
    c.update(
        train_student=len(students), training_data=len(students), train_reference=1, prepare_reference_data=1
    )
    return c


def intrinsic_upstream(config: dict) -> Counter:
    """One judge job per (set, judge), local and API judges in their own rules, and one models job per set."""
    sets = inputs.intrinsic_sets(config)
    local, api = (len(inputs.intrinsic_judge_suffixes(config, local=k)) for k in (True, False))
    judges = Counter(intrinsic_judge_local=local * len(sets), intrinsic_judge_api=api * len(sets))
    return generation(sets) + judges + Counter(intrinsic_models=len(sets))


def problem_solving_upstream(config: dict) -> Counter:
    models = set(inputs.problem_solving_spec(config).get("models", {}).values())
    return evaluations(config, [(m, d) for m in models for d in wf.DOMAINS])


def expected(target: str) -> Counter:
    main = inputs.main_students(DEMO)
    ps = problem_solving_upstream(DEMO)
    if target == "figure7_cost":
        c = pgr_upstream(DEMO, inputs.cost_students(DEMO))
    elif target == "figure4_problem_solving":
        c = pgr_upstream(DEMO, main) | ps
    elif target == "figure5_pca":
        c = intrinsic_upstream(DEMO) | ps
    elif target == "figure6_pgr_on_pcs":
        c = pgr_upstream(DEMO, main) | intrinsic_upstream(DEMO) | ps
    elif target == "table8_intrinsic":
        c = intrinsic_upstream(DEMO)
    elif target == "table3_cost_and_abilities":
        c = pgr_upstream(DEMO, main) | ps
    elif target == "table4_pca_contributions":
        c = intrinsic_upstream(DEMO) | ps
    elif target == "table7_problem_solving":
        c = ps + Counter(materialize_model=1)  # the demo's generators are evaluated as S0 (`base`)
    else:
        raise AssertionError(target)
    return c + Counter({target: 1})


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("figure4_problem_solving", f"{A}/figures/figure4_problem_solving_vs_data_generation.pdf"),
        ("figure5_pca", f"{A}/figures/figure5_pca_intrinsic_metrics.pdf"),
        ("figure6_pgr_on_pcs", f"{A}/figures/figure6_pgr_on_top_pcs.pdf"),
        ("figure7_cost", f"{A}/figures/figure7_cost_vs_pgr.pdf"),
        ("table8_intrinsic", f"{A}/table8_intrinsic.md"),
        ("table3_cost_and_abilities", f"{A}/table3.md"),
        ("table4_pca_contributions", f"{A}/table4_pca_contributions.md"),
        ("table7_problem_solving", f"{A}/table7.md"),
    ],
)
def test_each_figure_target_plans_only_its_upstream(target, path, per_output):
    assert planned(path, per_output) == expected(target)


def test_figure7_needs_no_other_student_than_the_cost_study(per_output):
    jobs = planned(f"{A}/figures/figure7_cost_vs_pgr.pdf", per_output)
    cost = inputs.cost_students(DEMO)
    assert jobs["train_student"] == len(cost) < len(wf.students(DEMO))
    sizes = {*DEMO["experiments"]["main"]["sizes"], *DEMO["experiments"]["data_volume"]["sizes"]}
    assert {s.size for s in cost} == sizes and len(sizes) == 2  # the demo's miniature volume study


def test_one_job_modes_plan_whole_generators_and_judges():
    """The demo's one-job modes couple outputs: Figure 7 (the cost study's students, all of them
    instance generation) plans every pool of its generators, through judge_calls every student the judge
    scores, and through train_all the training data of every student."""
    jobs = planned(f"{A}/figures/figure7_cost_vs_pgr.pdf")
    judged = {m for m, _ in wf.judged_pairs(DEMO, "smollm2-judge") if m.startswith("students/")}
    needed = [s for s in wf.students(DEMO) if s.path in judged] + inputs.cost_students(DEMO)
    assert jobs["judge_calls"] == 1 and jobs["train_student"] == len({s.path for s in needed})
    assert len({s.path for s in needed}) > len(inputs.cost_students(DEMO))
    # all of each generator's calls; train_all trains every student, so every pool is written
    assert jobs["generate_settings"] == len(DEMO["generators"])
    assert jobs["generate_local"] == len(wf.generated_sets(DEMO))
    assert jobs["train_all"] == 1 and jobs["training_data"] == len(wf.students(DEMO))
    assert jobs["train_all"] == 1 and jobs["training_data"] == len(wf.students(DEMO))


def test_demo_all_builds_every_table_and_figure_but_table5():
    jobs = planned("all")
    for rule in (
        "pgr_vs_paper",
        "figure4_problem_solving",
        "figure5_pca",
        "figure6_pgr_on_pcs",
        "figure7_cost",
        "table3_cost_and_abilities",
        "table4_pca_contributions",
        "table7_problem_solving",
    ):
        assert jobs[rule] == 1
    assert jobs["table8_intrinsic"] == 1 and jobs["intrinsic_models"] == len(inputs.intrinsic_sets(DEMO))
    assert "table5_meta_prompt" not in jobs  # one meta-prompt variant: no ablation
    assert "materialize_reward_model" not in jobs  # disabled in the demo, with its reason


def test_table5_target_without_an_ablation_names_the_config_key():
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), "-n", f"{A}/table5_meta_prompt.md", "--configfile", "config/demo.yaml"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "experiments" in out.stdout + out.stderr and "two meta-prompt variants" in out.stdout + out.stderr


def test_paper_table5_plans_the_ablation_students():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    spec = inputs.ablation(config)
    assert spec == {
        "variants": ["agorabench", "unoptimized", "json"],
        "generators": ["gpt-4o-mini", "llama-3.1-70b-instruct", "llama-3.1-8b-instruct"],
        "methods": ["instance_generation", "quality_enhancement"],
        "size": 10000,
    }
    jobs = planned("results/paper/analysis/table5_meta_prompt.md", "config/config.yaml")
    assert jobs["train_student"] == len(inputs.ablation_students(config)) == 3 * 3 * 2 * 3
    assert "intrinsic_models" not in jobs and "figure4_problem_solving" not in jobs


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c["intrinsic"]["judge"]["judges"].__setitem__("x", "nope"), "intrinsic.judge.judges.x"),
        (lambda c: c["intrinsic"]["perplexity"].__setitem__("model", "nope"), "intrinsic.perplexity.model"),
        (lambda c: c["intrinsic"].__setitem__("reward_model", {"name": "rm"}), "intrinsic.reward_model"),
        (lambda c: c["intrinsic"]["diversity"].pop("embedder"), "intrinsic.diversity.embedder"),
    ],
)
def test_intrinsic_config_errors_name_the_key(mutate, key):
    config = copy.deepcopy(DEMO)
    mutate(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        inputs.check_intrinsic(config)


def test_logprob_verdicts_are_refused_with_the_official_rubrics():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    inputs.check_intrinsic(config)  # the paper config: official rubrics, text verdicts
    config["intrinsic"]["judge"]["verdict"] = "logprobs"
    with pytest.raises(ConfigError, match=r"intrinsic\.judge\.verdict"):
        inputs.check_intrinsic(config)
    inputs.check_intrinsic(DEMO)  # the demo: its own rubrics that ask for the score alone


def test_problem_solving_and_figure4_availability():
    config = copy.deepcopy(DEMO)
    assert inputs.enabled_targets(config)["figure4"]
    config["analysis"]["problem_solving"] = {"source": "paper"}  # the paper never ran the demo generators
    assert sorted(inputs.problem_solving_missing(config)) == ["smollm2-64tok", "smollm2-t0.7"]
    assert not inputs.enabled_targets(config)["figure4"]
    with pytest.raises(ConfigError, match=r"analysis\.problem_solving"):
        inputs.check_problem_solving(config)


def test_prometheus_as_second_intrinsic_judge_with_its_own_sampling():
    """Prometheus-2-8x7B, the paper config's second intrinsic judge (enabled in config.yaml), with its own
    sampling. Its entries are set again here (a placeholder revision, no tensor_parallel_size): this checks
    the wiring of such a judge, not the shipped values."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["models"]["prometheus-2-8x7b"] = {
        "hub": "prometheus-eval/prometheus-8x7b-v2.0",
        "revision": "0" * 40,
    }
    sampling = {"temperature": 1.0, "top_p": 0.9, "max_tokens": 1024, "repetition_penalty": 1.03}
    config["judges"]["prometheus-2-8x7b"] = {
        "backend": "vllm",
        "model": "prometheus-2-8x7b",
        "sampling": sampling,
    }
    config["intrinsic"]["judge"]["judges"]["prometheus"] = "prometheus-2-8x7b"
    wf.check_config(config)
    inputs.check_intrinsic(config)
    judges = inputs.intrinsic_judges(config)
    assert judges["prometheus"] == {
        "name": "prometheus-2-8x7b",
        "backend": "vllm",
        "model": "prometheus-2-8x7b",
    } | {"sampling": sampling}
    assert "sampling" not in judges["gpt4o"]  # the shared intrinsic.judge.sampling applies
    assert "prometheus-2-8x7b (prometheus-2-8x7b)" in inputs.describe_intrinsic(config)
    # the official rubrics for both judges
    assert set(inputs.rubric_paths(config)) == {"evaluators", "prompts"}
