"""Regenerate the README's demo section (between the DEMO-RESULTS markers) from a measured demo run.

    python benchmarks/measure.py --out results/demo_measure.json -- make demo
    python benchmarks/demo_readme.py --results results/demo --measure results/demo_measure.json

Copies the run's PGR figure to docs/img/ and prints the section; `--check` only prints it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from agorabench.demo_report import render, replace_section

ROOT = Path(__file__).resolve().parents[1]
FIGURE = "docs/img/demo_pgr_by_generator.png"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results/demo")
    ap.add_argument("--measure", default="results/demo_measure.json")
    ap.add_argument("--config", default="config/demo.yaml")
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--check", action="store_true", help="print the section, change no file")
    args = ap.parse_args()
    config = yaml.safe_load((ROOT / args.config).read_text())
    measure = json.loads((ROOT / args.measure).read_text())
    section = render(ROOT / args.results, config, measure, FIGURE)
    print(section)
    if not args.check:
        shutil.copyfile(ROOT / args.results / "analysis/figures/pgr_by_generator.png", ROOT / FIGURE)
        readme = ROOT / args.readme
        readme.write_text(replace_section(readme.read_text(), section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
