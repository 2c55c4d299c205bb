"""How long Snakemake takes to plan the paper's study through profiles/slurm, and to find nothing to do
once the study is finished.

    .venv/bin/python benchmarks/plan_timing.py [--config config/config.yaml] [--repeats 3] [--json out.json]

1. plan: `snakemake --profile profiles/slurm --workflow-profile none all -n`, with the SLURM clients
   hidden from PATH (the dry-run needs no scheduler); reports the job count and the SLURM submissions
   after grouping.
2. no-op: the workflow copied to a temporary folder, every output of the study created there (files
   empty, directories with Snakemake's timestamp file), then `snakemake all --touch` to give them the DAG's
   order of modification times and their metadata; timed: the same `snakemake --profile profiles/slurm
   all` (not a dry-run), which must report nothing to be done, and its dry-run.
Goals (issue 7): each <= 15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agorabench.budget import local_rules, path_without_slurm, summarize_dry_run  # noqa: E402

COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".snakemake", "results", ".cache", "*.egg-info", "__pycache__"
)
PROFILE = ["--profile", "profiles/slurm", "--workflow-profile", "none"]
# Run inside the copy: a dry-run that records every output of the DAG (path, directory or not).
COLLECT = """
import json, sys
import snakemake.jobs as jobs
seen = {}
original = jobs.Job.log_info
def log_info(self, *args, **kwargs):
    for f in list(self.output) + list(self.log):
        seen[str(f)] = bool(getattr(f, "is_directory", False))
    return original(self, *args, **kwargs)
jobs.Job.log_info = log_info
from snakemake.cli import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as out:
    json.dump(seen, out)
"""


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout + proc.stderr


def timed(cmd: list[str], cwd: Path, env: dict[str, str], repeats: int) -> tuple[list[float], str]:
    walls, out = [], ""
    for _ in range(repeats):
        wall, out = run(cmd, cwd, env)
        walls.append(round(wall, 2))
    return walls, out


def fake_finished_study(copy: Path, config: str, env: dict[str, str]) -> int:
    """Create every output of the study in `copy`, then let `--touch` order their times; returns the count."""
    listing = copy / "outputs.json"
    cmd = [sys.executable, "-c", COLLECT, str(listing), "all", "-n", "--workflow-profile", "none"]
    run([*cmd, "--configfile", config], copy, env)
    outputs: dict[str, bool] = json.loads(listing.read_text())
    for name, is_dir in outputs.items():
        path = copy / name
        if is_dir:
            path.mkdir(parents=True, exist_ok=True)
            (path / ".snakemake_timestamp").touch()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    touch = [
        sys.executable,
        "-m",
        "snakemake",
        "all",
        "--touch",
        "--cores",
        "1",
        "--workflow-profile",
        "none",
    ]
    run([*touch, "--configfile", config], copy, env, timeout=1800)
    return len(outputs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="plan-timing-") as tmp:
        env = {**os.environ, "PATH": path_without_slurm(Path(tmp, "bin"))}
        for var in ("AGORABENCH_GPU_PARTITION", "AGORABENCH_CPU_PARTITION", "AGORABENCH_NET_PARTITION"):
            env.pop(var, None)
        config = ["--configfile", args.config]
        snakemake = [sys.executable, "-m", "snakemake", "all"]
        plan_walls, out = timed([*snakemake, "-n", *PROFILE, *config], ROOT, env, args.repeats)
        summary = summarize_dry_run(out, local_rules(ROOT))
        copy = Path(tmp, "study")
        shutil.copytree(ROOT, copy, ignore=COPY_IGNORE, symlinks=True)
        start = time.perf_counter()
        n_outputs = fake_finished_study(copy, args.config, env)
        setup_s = round(time.perf_counter() - start, 1)
        noop_walls, noop_out = timed([*snakemake, *PROFILE, *config], copy, env, args.repeats)
        if "Nothing to be done" not in noop_out:
            raise SystemExit(f"the finished study is not up to date:\n{noop_out[-3000:]}")
        noop_dry_walls, _ = timed([*snakemake, "-n", *PROFILE, *config], copy, env, args.repeats)
    figures: dict[str, Any] = {
        "config": args.config,
        "jobs": summary["total"],
        "slurm_submissions": summary["submissions"],
        "group_jobs": len(summary["groups"]),
        "plan_dry_run_s": plan_walls,
        "noop_run_s": noop_walls,
        "noop_dry_run_s": noop_dry_walls,
        "fake_study_outputs": n_outputs,
        "fake_study_setup_s": setup_s,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    for key in ("plan_dry_run", "noop_run", "noop_dry_run"):
        figures[f"{key}_median_s"] = statistics.median(figures[f"{key}_s"])
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
