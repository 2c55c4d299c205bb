"""Where a demo run's job time went: jobs and seconds inside each job's function, per rule, from the
provenance records (`<output>.prov.json`, one per job output; a job with several outputs counts once).

    python benchmarks/demo_jobs.py results/demo

The sum is machine time (two jobs run at once in the demo profile), not wall time; the interpreter and
Snakemake start-up of each job come on top (benchmarks/RESULTS.md measures them).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def job_seconds(results: Path) -> dict[str, list[float]]:
    """Seconds of each job by rule, one entry per job (records that share a start and rule are one)."""
    seen: set[tuple[str, str]] = set()
    by_rule: dict[str, list[float]] = defaultdict(list)
    for path in sorted(results.rglob("*.prov.json")):
        rec = json.loads(path.read_text())
        key = (rec.get("rule", "?"), str(rec.get("started")))
        if key in seen or rec.get("wall_s") is None:
            continue
        seen.add(key)
        by_rule[key[0]].append(float(rec["wall_s"]))
    return dict(by_rule)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path)
    args = ap.parse_args()
    by_rule = job_seconds(args.results)
    total = sum(sum(v) for v in by_rule.values())
    print(f"{'rule':32} {'jobs':>5} {'s':>8} {'s/job':>7} {'share':>6}")
    for rule, secs in sorted(by_rule.items(), key=lambda kv: -sum(kv[1])):
        s = sum(secs)
        print(f"{rule:32} {len(secs):5d} {s:8.1f} {s / len(secs):7.1f} {s / total:6.1%}")
    print(f"{'all':32} {sum(map(len, by_rule.values())):5d} {total:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
