"""The conda environments clusters use (`--sdm conda`) parse and agree with requirements.txt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
# vLLM 0.32.0 requires transformers<5.20; the vllm environment is the one deliberate difference.
# Its dependency mistral_common 1.13 needs numpy<2.4 on Python <= 3.12.
ALLOWED_DIFFERENCES = {("vllm.yaml", "transformers"): "5.19.0", ("vllm.yaml", "numpy"): "2.3.5"}


def pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


REQUIREMENTS = pins((ROOT / "requirements.txt").read_text().splitlines())


def test_every_rule_group_has_an_environment():
    assert {p.stem for p in ENVS} == {"generation", "vllm", "training", "evaluation", "analysis"}


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_environment_parses_and_pins_agree(path):
    env = yaml.safe_load(path.read_text())
    assert env["name"].startswith("agorabench-")
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip_lines = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    env_pins = pins(pip_lines)
    assert env_pins, "pip packages must be pinned with =="
    for name, version in env_pins.items():
        allowed = ALLOWED_DIFFERENCES.get((path.name, name))
        if name in REQUIREMENTS and allowed is None:
            assert version == REQUIREMENTS[name], (
                f"{path.name}: {name}=={version}, requirements.txt has {REQUIREMENTS[name]}"
            )
        elif allowed is not None:
            assert version == allowed
    unpinned = [ln for ln in pip_lines if "==" not in ln]
    assert not unpinned, f"{path.name}: unpinned or not a package pin {unpinned}"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_environment_has_no_path_that_depends_on_where_snakemake_copies_it(path):
    # Snakemake copies the file to .snakemake/conda/<hash>.yaml before `conda env create`, so a relative
    # `-e ..`, `-r file` or `file:` URL would resolve there (compare snakemake PR #3940).
    body = "\n".join(ln.split("#")[0] for ln in path.read_text().splitlines())
    for bad in ("-e ", "-r ", "--requirement", "file:", "../", "./"):
        assert bad not in body, f"{path.name}: {bad!r} depends on where the file lies"


def test_every_rule_names_an_existing_environment():
    for smk in (ROOT / "rules").glob("*.smk"):
        for env in re.findall(r'"\.\./(envs/[^"]+)"', smk.read_text()):
            assert (ROOT / env).is_file(), f"{smk.name} uses missing {env}"
