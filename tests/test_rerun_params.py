"""Editing what defines an output marks exactly its jobs for rerun: the generation system prompt, the
parser's version, a scorer's version; an operational setting marks none.

The demo config's pools and S_0's scores are laid out in a temporary working directory as empty files
recorded by `snakemake --touch -F` (which stores each job's params as a real run does), then each edit is
read back from `snakemake --summary`: the outputs whose status is "params changed". (`--list-changes params`
of Snakemake 9.27 lists every output that has recorded params, changed or not, so it cannot be used.)
A version bump is made in a copy of the package put first on PYTHONPATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agorabench import workflow as wf
from agorabench.evaluation.scorers import get_scorer
from agorabench.generation.parsing import PARSER_VERSION
from agorabench.generation.run import Setting
from agorabench.generation.stage import GenerationTask, generation_job

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ("Snakefile", "rules", "scripts", "config", "envs")
DEMO = "config/demo.yaml"


def snakemake(cwd: Path, *args: str, pythonpath: Path | None = None) -> str:
    exe = Path(sys.executable).with_name("snakemake")
    env = os.environ | ({"PYTHONPATH": str(pythonpath)} if pythonpath else {})
    out = subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


class Study:
    """A working directory whose demo outputs (the targets and everything upstream) are up to date."""

    def __init__(self, root: Path):
        self.root = root
        self.config = yaml.safe_load((ROOT / DEMO).read_text())
        for name in WORKFLOW:
            (root / name).symlink_to(ROOT / name)
        R = self.config["results_dir"]
        sets = wf.generated_sets(self.config)
        self.pools = {
            f"{R}/generation/{'/'.join(s)}/pool{ext}" for s in sets for ext in (".jsonl", ".stats.json")
        }
        # one_job_per_generator: each generator's generate_settings summary has the pools' params too
        self.summaries = {f"{R}/generation/{g}/settings.json" for g in wf.one_job_generators(self.config)}
        self.scores = {b: f"{R}/evaluation/base/{b}/score.json" for b in self.config["benchmarks"]}
        self.targets = sorted(self.pools | set(self.scores.values()))
        for path, _ in self.summary(DEMO):
            out = root / path
            if out.suffix:  # every file output has a suffix; the directory() outputs (models) have none
                out.parent.mkdir(parents=True, exist_ok=True)
                out.touch()
            else:
                out.mkdir(parents=True, exist_ok=True)
        snakemake(root, *self.targets, "--touch", "-F", "--cores", "1", "--configfile", DEMO)

    def summary(self, configfile: str, pythonpath: Path | None = None) -> list[tuple[str, str]]:
        """(output file, status) of every output the targets need."""
        out = snakemake(
            self.root, *self.targets, "--summary", "--configfile", configfile, pythonpath=pythonpath
        )
        rows = [line.split("\t") for line in out.splitlines() if line.count("\t") == 5]
        assert rows and rows[0][0] == "output_file", out[-2000:]
        return [(row[0], row[4]) for row in rows[1:]]

    def changed(self, config: dict | None = None, pythonpath: Path | None = None) -> set[str]:
        """The outputs whose params differ from the recorded ones under `config` (default: the demo's)."""
        configfile = DEMO
        if config is not None:
            configfile = str(self.root / "edited.yaml")
            Path(configfile).write_text(yaml.safe_dump(config, sort_keys=False))
        return {path for path, status in self.summary(configfile, pythonpath) if status == "params changed"}

    def bumped(self, module: str, pattern: str) -> Path:
        """A copy of the package in which `pattern` (a version assignment in `module`) has a new value."""
        shadow = self.root / f"shadow-{module.replace('/', '-')}"
        shutil.rmtree(shadow, ignore_errors=True)
        shutil.copytree(
            ROOT / "agorabench", shadow / "agorabench", ignore=shutil.ignore_patterns("__pycache__")
        )
        path = shadow / "agorabench" / module
        text, count = re.subn(pattern, lambda m: f'{m.group(1)}"{m.group(2)}-bumped"', path.read_text())
        assert count == 1, f"{module}: {pattern} matched {count} times"
        path.write_text(text)
        return shadow


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Study:
    return Study(tmp_path_factory.mktemp("rerun"))


def edited(config: dict, edit) -> dict:
    config = yaml.safe_load(yaml.safe_dump(config, sort_keys=False))
    edit(config)
    return config


def test_unchanged_config_reruns_nothing(study):
    assert {status for _, status in study.summary(DEMO)} == {"ok"}


def test_system_prompt_reruns_every_pool_and_nothing_else(study):
    config = edited(
        study.config, lambda c: c["generation"].__setitem__("system_prompt", "Write one instance.")
    )
    assert study.changed(config) == study.pools | study.summaries


def test_parser_version_reruns_every_pool_and_nothing_else(study):
    assert PARSER_VERSION  # the constant the copy bumps
    shadow = study.bumped("generation/parsing.py", r'(PARSER_VERSION = )"([^"]*)"')
    assert study.changed(pythonpath=shadow) == study.pools | study.summaries


def test_math_scorer_version_reruns_the_math_scores_only(study):
    assert get_scorer("math").version
    shadow = study.bumped("evaluation/scorers/math.py", r'(\n    version = )"([^"]*)"')
    math_scores = {p for b, p in study.scores.items() if study.config["benchmarks"][b]["kind"] == "math"}
    assert math_scores and math_scores != set(study.scores.values())
    assert study.changed(pythonpath=shadow) == math_scores


def test_a_generation_seed_reruns_that_generators_pools_only(study):
    generator = next(iter(study.config["generators"]))
    config = edited(study.config, lambda c: c["generators"][generator].__setitem__("generation_seed", 99))
    own = {p for p in study.pools | study.summaries if f"/generation/{generator}/" in p}
    assert own and own != study.pools
    assert study.changed(config) == own


def test_operational_settings_rerun_nothing(study):
    def edit(c: dict) -> None:
        for spec in c["generators"].values():
            spec["batch_size"] = spec.get("batch_size", 16) + 1
            spec["concurrency"] = 3
        c["evaluation"]["batch_size"] = c["evaluation"].get("batch_size", 16) + 1

    assert study.changed(edited(study.config, edit)) == set()


def test_the_generate_job_takes_what_defines_the_pool_from_its_params(tmp_path):
    params = {
        "n": 3, "max_attempts_factor": 2.0, "max_instance_tokens": 512, "seed": 7, "price": None,
        "sampling": {"temperature": 1.0, "max_tokens": 64}, "system_prompt": "Write one.",
        "attempts_per_round": 4, "parser_version": PARSER_VERSION,
    }  # fmt: skip
    wildcards = {"generator": "g", "domain": "math", "method": "instance_generation", "variant": "agorabench"}
    model = tmp_path / "m"  # the generator's weights: its fingerprint is part of the call ids
    model.mkdir()
    (model / "config.json").write_text("{}")
    inputs = {"seeds": "s.jsonl", "template": "t.txt", "themes": "th.yaml", "student": "st"}
    inputs["model"] = str(model)
    outputs = {"data": str(tmp_path / "pool.jsonl"), "stats": str(tmp_path / "pool.stats.json")}
    task = GenerationTask.from_rule(wildcards, inputs, outputs, params, {"backend": "vllm", "model": "x"})
    assert task.setting == Setting("g", "math", "instance_generation", "agorabench")
    assert task.backend_spec == {"backend": "vllm", "model": "x", "model_dir": str(model)}
    job = generation_job(task)
    assert (job.system_prompt, job.budget.attempts_per_round, job.max_instance_tokens) == (
        "Write one.",
        4,
        512,
    )
    assert (job.budget.n, job.budget.max_attempts, job.seed) == (3, 6, 7)
    assert job.store_path == str(tmp_path / "calls.jsonl") and job.sampling.max_tokens == 64
