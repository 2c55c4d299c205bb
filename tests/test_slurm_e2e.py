"""A slice of the offline demo run through `profiles/slurm` on a real SLURM, checked through sacct.

Needs a SLURM with partitions `cpu` and `h100` (GPU gres) and slurmdbd, e.g. the one-node cluster of
`tools/slurm/start-slurm.sh start`; runs only with AGORABENCH_SLURM=1 (CI sets it). The slice: one local
(transformers) generator and one OpenAI-compatible "API" generator (the project's echo server on
loopback), one setting, two instances each, GSM8K and AlpacaEval at two items each, SFT capped at two
steps. It runs the user profile unchanged, plus command-line overrides that suit one small machine: two
jobs at a time, one torch thread per job, the first status check after 5 s.
"""

from __future__ import annotations

import copy
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agorabench import workflow as wf

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "results/slurm-e2e"
TARGETS = ["scores_table", "pgr_table", "figure_pgr"]
TIMEOUT_S = int(os.environ.get("AGORABENCH_SLURM_TIMEOUT_S", "1500"))
ACCOUNT = "agorabench"  # made by tools/slurm/start-slurm.sh
QOS = "normal"
GPU_RULES = ("train_student", "train_reference", "predict_baselines", "predict_instruction_following")
NO_GPU_RULES = ("generate_api", "score_judged", "materialize_model", "prepare_seeds", "scores_table")


def _slurm_problem() -> str | None:
    """Why the SLURM end-to-end test cannot run here, or None."""
    if os.environ.get("AGORABENCH_SLURM") != "1":
        return "set AGORABENCH_SLURM=1 with a SLURM running (tools/slurm/start-slurm.sh start)"
    for tool in ("sinfo", "sbatch", "sacct"):
        if shutil.which(tool) is None:
            return f"{tool} not on PATH"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%R %G"], capture_output=True, text=True, timeout=15, check=True
        ).stdout
    except (subprocess.SubprocessError, OSError) as err:
        return f"sinfo does not work: {err}"
    partitions = dict(line.split(maxsplit=1) for line in out.splitlines() if " " in line)
    if "cpu" not in partitions or "gpu" not in partitions.get("h100", ""):
        return f"need partitions cpu and h100 (with gres/gpu); sinfo says {partitions}"
    return None


_problem = _slurm_problem()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_problem is not None, reason=_problem or "")]


def slice_config(demo: dict[str, Any], api_url: str) -> dict[str, Any]:
    """The demo config cut down to one setting, two generators (local + API) and two benchmarks."""
    cfg = copy.deepcopy(demo)
    cfg["results_dir"] = RESULTS
    local = next(iter(demo["experiments"]["main"]["generators"]))
    cfg["generators"]["echo-api"] = {
        "backend": "openai",
        "model": "echo",
        "base_url": api_url,
        "api_key_env": "AGORABENCH_E2E_API_KEY",
        "concurrency": 2,
        "price": {"input_per_mtok": 0.0, "output_per_mtok": 0.0, "date": "loopback echo server"},
    }
    cfg["experiments"] = {
        "main": {
            "generators": [local, "echo-api"],
            "domains": ["instruction_following"],
            "methods": ["response_generation"],
            "variants": ["agorabench"],
            "sizes": [2],
        }
    }
    cfg["benchmarks"] = {
        name: {**spec, "limit": 2}
        for name, spec in demo["benchmarks"].items()
        if name in ("gsm8k", "alpaca_eval")
    }
    # One GPU per SFT and inference job, so the profile's GPU routing has something to allocate (torch
    # sees no CUDA and runs on the CPU).
    cfg["training"].update(gpus=1, epochs=1, max_steps=2)
    cfg["evaluation"]["gpus"] = 1
    return cfg


def _sacct(run_id: str) -> list[dict[str, str]]:
    fields = ["JobID", "Partition", "State", "Comment", "AllocTRES", "Account", "QOS"]
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "--name", run_id, "-S", "now-2days", "-o", ",".join(fields)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines() if line.strip()]


def _rules_of(comment: str, rules: list[str]) -> set[str]:
    """The rules a job ran, from the plugin's comment: rule_<rule>[_wildcards_...] or rule_<group>_<rules>.

    Longer names are matched first and cut out, so `score` is not found inside `score_judged`."""
    body = "_" + comment.removeprefix("rule_").split("_wildcards_")[0] + "_"
    found = set()
    for rule in sorted(rules, key=len, reverse=True):
        token = f"_{rule}_"
        if token in body:
            found.add(rule)
            body = body.replace(token, "_#_")
    return found


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> dict[str, Any]:
    from servers.fault_server import FaultServer

    tmp = tmp_path_factory.mktemp("slurm-e2e")
    shutil.rmtree(ROOT / RESULTS, ignore_errors=True)
    demo = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    with FaultServer() as api:
        cfg = slice_config(demo, api.url)
        config_path = tmp / "slice.yaml"
        config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        env = {
            **os.environ,
            "AGORABENCH_E2E_API_KEY": "not-a-secret",
            "AGORABENCH_SLURM_ACCOUNT": ACCOUNT,
            "AGORABENCH_SLURM_QOS": QOS,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        one_thread = [f"{rule}=1" for rule in ("generate_local", *GPU_RULES, "score", "score_judged")]
        cmd = [
            *("timeout", "-s", "KILL", str(TIMEOUT_S)),
            *(sys.executable, "-m", "snakemake", *TARGETS),
            *("--profile", "profiles/slurm", "--workflow-profile", "none"),
            *("--configfile", str(config_path)),
            *("--slurm-init-seconds-before-status-checks", "5", "--jobs", "2", "--latency-wait", "5"),
            # The slice's folder is wiped above; a lock left by a killed run must not block the next one.
            "--nolock",
            "--set-threads",
            *one_thread,
        ]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    (tmp / "snakemake.log").write_text(log)
    if proc.returncode != 0:
        pytest.fail(f"snakemake exited {proc.returncode} (137: killed after {TIMEOUT_S} s):\n{log[-6000:]}")
    match = re.search(r"SLURM run ID: (\S+)", log)
    assert match, "the slurm plugin printed no run ID"
    return {"config": cfg, "config_path": config_path, "log": log, "run_id": match.group(1), "env": env}


@pytest.fixture(scope="module")
def jobs(slurm_run) -> list[dict[str, str]]:
    rows = _sacct(slurm_run["run_id"])
    assert rows, f"sacct knows no job named {slurm_run['run_id']}"
    rules = re.findall(r"^\s*rule (\w+):", slurm_run["log"], flags=re.MULTILINE)
    for row in rows:
        row["rules"] = _rules_of(row["Comment"], sorted(set(rules)))
        assert row["rules"], f"no rule recognised in job {row}"
    return rows


def test_every_job_completed_under_the_given_account_and_qos(jobs):
    for job in jobs:
        assert job["State"] == "COMPLETED", job
        assert job["Account"] == ACCOUNT and job["QOS"] == QOS, job


def test_sft_and_inference_ran_on_h100_with_a_gpu(jobs):
    for rule in GPU_RULES:
        ran = [j for j in jobs if rule in j["rules"]]
        assert ran, f"no SLURM job ran {rule}"
        for job in ran:
            assert job["Partition"] == "h100", job
            assert "gres/gpu=1" in job["AllocTRES"], job


def test_api_and_cpu_rules_ran_on_cpu_without_a_gpu(jobs):
    for rule in NO_GPU_RULES:
        ran = [j for j in jobs if rule in j["rules"]]
        assert ran, f"no SLURM job ran {rule}"
        for job in ran:
            assert job["Partition"] == "cpu", job
            assert "gres/gpu" not in job["AllocTRES"], job


def test_small_jobs_were_grouped(jobs, slurm_run):
    """Fewer SLURM jobs than rule jobs: SFT with its training set, predictions with their scores, ..."""
    done = re.search(r"(\d+) of \1 steps \(100%\) done", slurm_run["log"])
    assert done, "snakemake did not report all steps done"
    assert len(jobs) < int(done.group(1))
    assert any({"take_size", "train_student"} <= j["rules"] for j in jobs)
    assert any({"predict_baselines", "score"} <= j["rules"] for j in jobs)


def test_the_slice_is_complete(slurm_run):
    cfg = slurm_run["config"]
    out = ROOT / RESULTS
    for model, bench in wf.evaluations(cfg):
        assert (out / "evaluation" / model / bench / "score.json").is_file(), (model, bench)
    for student in wf.students(cfg):
        assert (out / "training" / student.path / "train_info.json").is_file(), student
    with open(out / "analysis/scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(wf.evaluations(cfg))
    for name in ("pgr.csv", "pgr_long.csv", "pgr.md", "figures/pgr_by_generator.png"):
        assert (out / "analysis" / name).stat().st_size > 0, name
    # Nothing is left to do for the same targets.
    config = str(slurm_run["config_path"])
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            *TARGETS,
            "-n",
            "--workflow-profile",
            "none",
            "--configfile",
            config,
        ],
        cwd=ROOT,
        env=slurm_run["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert "Nothing to be done" in check.stdout + check.stderr
