"""profiles/slurm without a scheduler: the dry-run of the paper's study, its routing and grouping, and the
sbatch flags the pinned plugin makes of a rule's resources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
import yte

from agorabench import workflow as wf
from agorabench.analysis import inputs as ai
from agorabench.budget import SLURM_TOOLS, local_rules, path_without_slurm, summarize_dry_run

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles/slurm/config.yaml"
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
# Rules without GPUs of their own that run inside a GPU group's SLURM job.
IN_GPU_GROUPS = {"take_size", "training_data", "score"}
NETWORK_RULES = {
    "generate_api",
    "score_judged",
    "intrinsic_judge_api",
    "materialize_model",
    "materialize_reward_model",
    "prepare_seeds",
    "build_seed_set",
    "prepare_benchmark",
}
SITE_VARS = ("AGORABENCH_GPU_PARTITION", "AGORABENCH_CPU_PARTITION", "AGORABENCH_NET_PARTITION")
SITE_VARS += ("AGORABENCH_SLURM_ACCOUNT", "AGORABENCH_SLURM_QOS")


def dry_run(bin_dir: Path, *args: str, **env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if k not in SITE_VARS}
    clean.update(env, PATH=path_without_slurm(bin_dir))
    cmd = [sys.executable, "-m", "snakemake", "all", "-n", "--profile", "profiles/slurm"]
    cmd += ["--workflow-profile", "none", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return summarize_dry_run(proc.stdout + proc.stderr, local_rules(ROOT)) | {"path": clean["PATH"]}


@pytest.fixture(scope="module")
def paper(tmp_path_factory) -> dict[str, Any]:
    return dry_run(tmp_path_factory.mktemp("bin"))


def test_dry_run_needs_no_scheduler_and_lists_the_whole_study(paper):
    for tool in SLURM_TOOLS:
        assert not any((Path(d) / tool).exists() for d in paper["path"].split(os.pathsep)), tool
    jobs = paper["jobs"]
    assert paper["total"] == len(jobs)
    count = {rule: sum(j["rule"] == rule for j in jobs) for rule in {j["rule"] for j in jobs}}
    assert count["train_student"] == len(wf.students(CONFIG))
    predict_rules = {f"predict_{s}" for s in wf.prediction_sets(CONFIG)}  # one inference job per model
    assert sum(n for rule, n in count.items() if rule in predict_rules) == len(wf.inference_jobs(CONFIG))
    assert count["generate_api"] + count["generate_local"] == len(wf.generated_sets(CONFIG))
    table7 = [p for p in ai.problem_solving_score_paths(CONFIG) if "/evaluation/generators/" in p]
    assert count["score"] + count["score_judged"] == len(wf.evaluations(CONFIG)) + len(table7)


def test_every_gpu_job_goes_to_the_gpu_partition_on_one_node(paper):
    for job in paper["jobs"]:
        res = job["resources"]
        gpus = res.get("gpu", 0)
        if job["rule"] == "all":
            continue
        if gpus > 0:
            assert res["slurm_partition"] == "h100" and res["nodes"] == 1, job
            # `tasks` on a GPU job becomes --ntasks-per-gpu (N tasks for N GPUs): one task is wanted.
            assert "tasks" not in res and "tasks_per_gpu" not in res, job
        elif job["rule"] not in IN_GPU_GROUPS:
            assert res["slurm_partition"] != "h100", job


def test_gpu_counts_come_from_the_study_config(paper):
    seen = set()
    for job in paper["jobs"]:
        rule, res, wc = job["rule"], job["resources"], job["wildcards"]
        if rule == "train_student":
            assert res["gpu"] == CONFIG["training"]["gpus"]
        elif rule == "generate_local":
            assert res["gpu"] == CONFIG["generators"][wc["generator"]]["tensor_parallel_size"]
        elif rule in {f"predict_{s}" for s in wf.prediction_sets(CONFIG)}:
            assert res["gpu"] == CONFIG["evaluation"].get("gpus", 1)
            rule = "predict"
        else:
            continue
        seen.add((rule, res["gpu"]))
    assert seen == {("train_student", 4), ("generate_local", 4), ("generate_local", 1), ("predict", 1)}


def test_intrinsic_judges_run_one_job_per_set_and_judge_where_their_backend_can(paper):
    """GPT-4o (API) judges each set on the network partition, Prometheus-2-8x7B (vLLM) on the GPU
    partition with its tensor-parallel GPUs; every judge of a set has its own job and record."""
    suffixes = CONFIG["intrinsic"]["judge"]["judges"]
    sets = ai.intrinsic_sets(CONFIG)
    placed: dict[str, set[tuple[str, str, int]]] = {}
    records = []  # the record each job writes, from its wildcards
    for job in paper["jobs"]:
        if job["rule"].startswith("intrinsic_judge"):
            res, wc = job["resources"], job["wildcards"]
            placed.setdefault(wc["judge"], set()).add(
                (job["rule"], res["slurm_partition"], res.get("gpu", 0))
            )
            where = "/".join(wc[k] for k in ("generator", "domain", "method", "variant"))
            records.append(
                f"{CONFIG['results_dir']}/analysis/intrinsic/{where}/n{wc['size']}.judge.{wc['judge']}.json"
            )
    tp = CONFIG["judges"][suffixes["prometheus"]]["tensor_parallel_size"]
    assert tp == 4
    assert placed == {
        "gpt4o": {("intrinsic_judge_api", "cpu", 0)},
        "prometheus": {("intrinsic_judge_local", "h100", tp)},
    }
    # one job per (set, judge), and exactly the records Table 8 and Figures 5, 6 read
    assert len(records) == len(set(records)) == len(sets) * len(suffixes)
    assert set(records) == {p for p in ai.intrinsic_paths(CONFIG) if ".judge." in p}


def test_network_rules_and_the_rest_run_on_cpu(paper):
    for job in paper["jobs"]:
        res = job["resources"]
        if job["rule"] in NETWORK_RULES or job["rule"] in {"scores_table", "pgr_table", "figure_pgr"}:
            assert res["slurm_partition"] == "cpu" and not res.get("gpu"), job


def test_site_settings_come_from_the_environment(tmp_path):
    plan = dry_run(
        tmp_path / "bin",
        AGORABENCH_GPU_PARTITION="gpu-a100",
        AGORABENCH_CPU_PARTITION="short",
        AGORABENCH_NET_PARTITION="login",
        AGORABENCH_SLURM_ACCOUNT="proj42",
    )
    by_rule: dict[str, set[str]] = {}
    for job in plan["jobs"]:
        if job["rule"] != "all":
            by_rule.setdefault(job["rule"], set()).add(job["resources"]["slurm_partition"])
            assert job["resources"]["slurm_account"] == "proj42", job
    assert by_rule["train_student"] == by_rule["predict_math"] == by_rule["generate_local"] == {"gpu-a100"}
    assert by_rule["predict_baselines"] == {"gpu-a100"}
    assert by_rule["generate_api"] == by_rule["score_judged"] == by_rule["materialize_model"] == {"login"}
    assert by_rule["intrinsic_judge_api"] == {"login"} and by_rule["intrinsic_judge_local"] == {"gpu-a100"}
    assert by_rule["scores_table"] == {"short"}


def test_grouping_cuts_the_submissions_and_keeps_one_partition_per_group(paper):
    grouped = [j for j in paper["jobs"] if j["grouped"]]
    assert grouped
    n = paper["submissions"]
    assert n < 0.5 * len(paper["jobs"]), (n, len(paper["jobs"]))
    # A group's SLURM job has one partition: every member rule must agree.
    profile = _profile()
    for group in set(profile["groups"].values()):
        members = [r for r, g in profile["groups"].items() if g == group]
        partitions = {_partition_of(profile, r) for r in members}
        assert len(partitions) == 1, (group, partitions)


def _profile(**env: str) -> dict[str, Any]:
    saved = {k: os.environ.pop(k) for k in SITE_VARS if k in os.environ}
    os.environ.update(env)
    try:
        with open(PROFILE) as f:
            return yte.process_yaml(f, require_use_yte=True)
    finally:
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)


def _partition_of(profile: dict[str, Any], rule: str) -> str:
    return (
        profile["set-resources"]
        .get(rule, {})
        .get("slurm_partition", profile["default-resources"]["slurm_partition"])
    )


def test_the_profile_names_only_rules_of_the_workflow():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules", "--workflow-profile", "none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rules = set(proc.stdout.split())
    profile = _profile()
    named = set(profile["set-resources"]) | set(profile["groups"])
    assert named <= rules, f"the profile names rules the workflow does not have: {sorted(named - rules)}"


def test_group_resources_are_the_largest_request_and_summed_runtime():
    """What the `serial` pool buys (snakemake's layering): a group of two jobs asks for max, not sum."""
    from snakemake.resources import GroupResources, Resource, Resources

    class Job:
        pipe_group = None

        def __init__(self, **res: int) -> None:
            self.resources = {"serial": 1, "_cores": 8, **res}

    level = [Job(gpu=1, mem_mb=64000, runtime=120), Job(gpu=1, mem_mb=64000, runtime=120)]
    scores = [Job(mem_mb=16000, runtime=60), Job(mem_mb=16000, runtime=60)]
    limits = Resources({"serial": Resource("serial", 1), "_cores": Resource("_cores", 64)})
    got = GroupResources.basic_layered([level, scores], constraints=limits, run_local=False)
    assert got["gpu"] == 1 and got["mem_mb"] == 64000 and got["runtime"] == 360
    unconstrained = GroupResources.basic_layered(
        [level, scores], constraints=Resources({"_cores": Resource("_cores", 64)}), run_local=False
    )
    assert unconstrained["gpu"] == 2  # without the pool, parallel members' GPUs add up


def test_sbatch_flags_for_a_multi_gpu_and_a_cpu_rule(paper):
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Res(dict):
        __getattr__ = dict.__getitem__

    class Job:
        def __init__(self, res: dict[str, Any]) -> None:
            self.resources = Res(res)
            self.threads = 8

    params = {
        "run_uuid": "uuid",
        "slurm_logfile": "log",
        "comment_str": "rule_x",
        "account": "",
        "partition": "-p h100",
        "workdir": "/w",
    }
    train = next(j for j in paper["jobs"] if j["rule"] == "train_student")
    job = Job(train["resources"])
    call = get_submit_command(job, params) + set_gres_string(job)
    assert "--gpus=4" in call and "--nodes=1" in call and "--cpus-per-task=32" in call, call
    assert "--mem 256000" in call and "-t 720" in call, call
    assert "--ntasks" not in call, call  # SLURM's default: one task, which gets all four GPUs
    score = next(j for j in paper["jobs"] if j["rule"] == "score_judged")
    call = get_submit_command(Job(score["resources"]), params) + set_gres_string(Job(score["resources"]))
    assert "--ntasks=1" in call and "--gpus" not in call, call
