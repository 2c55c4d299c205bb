"""The environment for child interpreters that import agorabench (`python -m agorabench...`, workers).

Under `--sdm conda` the package is not installed in the rule's environment: the rule script imports it from
the workflow folder, which Snakemake's script preamble appends to sys.path. A child process does not inherit
sys.path, so it gets that folder on PYTHONPATH instead (envs/*.yaml, tests/test_env_build.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])  # the folder holding agorabench/


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: os.environ) with the folder of this agorabench package first on PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != PACKAGE_ROOT]
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, *rest])
    return env
