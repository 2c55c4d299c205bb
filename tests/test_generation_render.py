"""Byte-for-byte: the paper config's prompts equal what data-agora's own loaders render.

tests/data/generation_official_render.json holds, per case (setting, variant, index, attempt, pool size,
theme lists), only the sha256 of the prompt the official loader renders (tools/official/render_expected.py,
commit in `rendered_by`). Here the same prompt is made through the paper config's code path: the official
assets obtained by `obtain_assets` from ../shared/data/agora-prompts (the config's hashes), the template
`workflow.template_path` names, seeds read by `load_seeds` from the official samples in
../shared/data/agora-seed, and `build_official_prompt` (demonstration mode `official`) with the config's seed.
Cases with run.py's theme lists also need run.py (not in ../shared/data): they run when a data-agora checkout
is at $AGORABENCH_DATA_AGORA_GIT (or a `fetch`ed mirror is present) and are skipped otherwise.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from agorabench import workflow as wf
from agorabench.data.assets import RUN_PY, obtain_assets, official_lists
from agorabench.data.seeds import load_seeds
from agorabench.generation.instances import build_official_prompt, load_themes
from agorabench.generation.prompts import load_template

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "config" / "config.yaml").read_text("utf-8"))
EXPECTED = json.loads((ROOT / "tests" / "data" / "generation_official_render.json").read_text("utf-8"))
MIRROR = Path("/work/.mirror/neulab+data-agora/repo")
DOMAIN = {"math": "math", "code": "code", "instruction_following": "general"}


def _seed_file(domain: str, method: str) -> str:
    d = DOMAIN[domain]
    if method == "instance_generation":
        return f"{d}_seed_data_subsampled.json"
    if method == "response_generation":
        return f"magpie_{d}_seed_data_10000_subsampled.json"
    return f"webinstruct_{'math' if d == 'math' else 'general'}_seed_data_10000_subsampled.json"


def _run_py(tmp: Path) -> Path | None:
    git_dir = os.environ.get("AGORABENCH_DATA_AGORA_GIT") or (str(MIRROR) if MIRROR.is_dir() else None)
    if not git_dir:
        return None
    text = subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"{PAPER['generation']['official']['commit']}:{RUN_PY}"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    path = tmp / "run.py"
    path.write_bytes(text)
    return path


@pytest.fixture(scope="module")
def paper(tmp_path_factory, shared_data):
    """The paper config with its official templates obtained from the shared copy (run.py when present)."""
    tmp = tmp_path_factory.mktemp("render")
    config = copy.deepcopy(PAPER)
    config["results_dir"] = str(tmp / "results")
    official = config["generation"]["official"]
    run_py = _run_py(tmp)
    files = {p: h for p, h in official["files"].items() if p.startswith("agora_scripts/prompts/")}
    local = tmp / "local"
    local.mkdir()
    for name in {Path(p).name for p in files}:
        (local / name).write_bytes((shared_data / "agora-prompts" / name).read_bytes())
    if run_py is not None:
        files[RUN_PY] = official["files"][RUN_PY]  # verified against the config's hash like the rest
        (local / "run.py").write_bytes(run_py.read_bytes())
    official |= {"files": files, "local_dir": str(local)}
    obtain_assets(official, wf.official_dir(config))
    return config, run_py is not None


def _lists(config: dict, case: dict, have_run_py: bool) -> tuple[list[str], list[str]]:
    if case["lists"] == "none":
        return [], []
    if case["lists"] == "official":
        if not have_run_py:
            pytest.skip("run.py's lists need a data-agora checkout (AGORABENCH_DATA_AGORA_GIT)")
        themes, triggers = official_lists(wf.themes_input(config), config["generation"]["theme_lists"])
    else:
        themes, triggers = load_themes(ROOT / "config" / "themes.yaml")
    return themes[case["domain"]], triggers[case["domain"]]


def _case_id(c: dict) -> str:
    return f"{c['domain']}-{c['method']}-{c['variant']}-i{c['index']}a{c['attempt']}p{c['pool']}-{c['lists']}"


def test_expected_file_covers_nine_settings_and_the_json_variants():
    assert EXPECTED["rendered_by"]["commit"] == PAPER["generation"]["official"]["commit"]
    assert EXPECTED["seed"] == PAPER["seed"]
    settings = {(c["domain"], c["method"], c["variant"]) for c in EXPECTED["cases"]}
    assert len(settings) == 9 + 3


@pytest.mark.parametrize("case", EXPECTED["cases"], ids=[_case_id(c) for c in EXPECTED["cases"]])
def test_prompt_is_byte_for_byte_the_official_one(case, paper, shared_data):
    config, have_run_py = paper
    domain, method, variant = case["domain"], case["method"], case["variant"]
    assert wf.template_origin(config, variant, domain, method) == "official"
    template = load_template(wf.template_path(config, variant, domain, method), method)
    seed_dir = shared_data / "agora-seed"
    seeds = load_seeds({"format": "agora_json", "path": str(seed_dir / _seed_file(domain, method))})
    pool = load_seeds(
        {"format": "agora_json", "path": str(seed_dir / _seed_file(domain, "response_generation"))}
    )
    themes, triggers = _lists(config, case, have_run_py)
    spec = build_official_prompt(
        template, domain=domain, method=method, index=case["index"], attempt=case["attempt"], seeds=seeds,
        pool=pool[: case["pool"]], themes=themes, first_words=triggers, seed=config["seed"],
    )  # fmt: skip
    assert hashlib.sha256(spec.prompt.encode("utf-8")).hexdigest() == case["sha256"]
    assert "<input1>" not in spec.prompt and "<input_theme>" not in spec.prompt
