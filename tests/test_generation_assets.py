"""Official data-agora assets: obtained and verified by sha256, run.py's lists, template origins."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from agorabench import workflow as wf
from agorabench.data.assets import (
    RUN_PY,
    lists_sha256,
    obtain_assets,
    official_lists,
    official_template,
)
from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import sha256_file

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "config" / "config.yaml").read_text("utf-8"))
DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text("utf-8"))
OFFICIAL = PAPER["generation"]["official"]
MIRROR = Path("/work/.mirror/neulab+data-agora/repo")
# sha256 of the lists extracted from run.py at d7e66e1 (lists_sha256); the lists' text is not in the repo.
LISTS_SHA256 = {
    "code_faithful": "cacfa5631013715fcc42f6bd3654309fd1bd183c4da6d099339c10231f8cfb41",
    "corrected": "dd453239d79fe0d7d530e3fd9f6661986116582ecc03b8cbcbc462145dadeadb",
}
SETTINGS = [(d, m) for d in wf.DOMAINS for m in wf.METHODS]


def _prompt_files() -> dict[str, str]:
    return {p: h for p, h in OFFICIAL["files"].items() if p != RUN_PY}


def test_obtain_from_the_shared_copy_verifies_every_hash(tmp_path, shared_data):
    spec = OFFICIAL | {"files": _prompt_files(), "local_dir": str(shared_data / "agora-prompts")}
    counts = obtain_assets(spec, tmp_path / "out")
    assert counts["files"] == len(_prompt_files()) == 22
    manifest = json.loads((tmp_path / "out" / "MANIFEST.json").read_text("utf-8"))
    assert manifest["commit"] == OFFICIAL["commit"] == "d7e66e12b03616caa42d818d5c2a387c127014ab"
    for entry in manifest["files"]:
        assert (
            sha256_file(tmp_path / "out" / entry["path"])
            == entry["sha256"]
            == OFFICIAL["files"][entry["path"]]
        )


def test_a_changed_file_fails_naming_it(tmp_path, shared_data):
    local = tmp_path / "local"
    local.mkdir()
    name = "instance_generation_math_prompt.txt"
    (local / name).write_text((shared_data / "agora-prompts" / name).read_text("utf-8") + " ", "utf-8")
    path = f"agora_scripts/prompts/{name}"
    spec = OFFICIAL | {"files": {path: OFFICIAL["files"][path]}, "local_dir": str(local)}
    with pytest.raises(DataError, match=f"sha256 of {path} is"):
        obtain_assets(spec, tmp_path / "out")
    assert not (tmp_path / "out" / path).exists()  # no unverified file left behind


def test_a_missing_file_and_a_bad_hash_are_named(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{RUN_PY} not in the local folder")):
        obtain_assets(
            OFFICIAL | {"files": {RUN_PY: OFFICIAL["files"][RUN_PY]}, "local_dir": str(tmp_path)}, tmp_path
        )
    with pytest.raises(ConfigError, match=re.escape("generation.official.files.x.txt")):
        obtain_assets(OFFICIAL | {"files": {"x.txt": "abc"}}, tmp_path)


def _run_py(tmp_path: Path) -> Path:
    git_dir = os.environ.get("AGORABENCH_DATA_AGORA_GIT") or (str(MIRROR) if MIRROR.is_dir() else None)
    if git_dir is None:
        pytest.skip("no data-agora checkout (set AGORABENCH_DATA_AGORA_GIT to a fetched git dir)")
    text = subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"{OFFICIAL['commit']}:{RUN_PY}"],
        check=True,
        capture_output=True,
    ).stdout
    path = tmp_path / "run.py"
    path.write_bytes(text)
    assert sha256_file(path) == OFFICIAL["files"][RUN_PY]
    return path


def test_lists_equal_the_official_run_py(tmp_path):
    run_py = _run_py(tmp_path)
    themes, triggers = official_lists(run_py, "code_faithful")
    assert {d: len(v) for d, v in themes.items()} == {"math": 36, "code": 14, "instruction_following": 28}
    assert len(triggers["instruction_following"]) == 123 and triggers["math"] == triggers["code"] == []
    assert themes["math"].count("Combinatorics") == 2  # the official duplicate, kept
    assert "As a Question: " in triggers["instruction_following"]  # the missing comma, kept
    assert {t.split(" a ")[-1].split(" Code")[0] for t in themes["code"]} == {
        "Python", "Java", "C++", "C", "JavaScript", "C#", "PHP",
    }  # fmt: skip
    assert lists_sha256(themes, triggers) == LISTS_SHA256["code_faithful"]
    fixed, fixed_triggers = official_lists(run_py, "corrected")
    assert len(fixed["math"]) == 35 and len(fixed_triggers["instruction_following"]) == 122
    assert {"As a ", "Question: "} <= set(fixed_triggers["instruction_following"])
    assert lists_sha256(fixed, fixed_triggers) == LISTS_SHA256["corrected"]


def test_lists_are_read_without_running_the_file(tmp_path):
    src = 'import sys\nsys.exit(3)\nmath_themes = ["A", "A"]\ncode_themes = ["B"]\ngeneral_themes = ["C"]\n'
    src += 'general_triggers = ["x " "y", "z"]\n'
    (tmp_path / "run.py").write_text(src, "utf-8")
    themes, triggers = official_lists(tmp_path / "run.py", "corrected")
    assert themes["math"] == ["A"] and triggers["instruction_following"] == ["x ", "y", "z"]
    (tmp_path / "run.py").write_text("math_themes = []\n", "utf-8")
    with pytest.raises(DataError, match="no module-level list 'code_themes'"):
        official_lists(tmp_path / "run.py")


def test_paper_config_uses_every_official_template_and_labels_stand_ins():
    origins = {
        (v, d, m): wf.template_origin(PAPER, v, d, m)
        for v in ("agorabench", "unoptimized", "json")
        for d, m in SETTINGS
    }
    official = sorted(k for k, o in origins.items() if o == "official")
    assert len(official) == 9 + 3
    assert all(v == "agorabench" or (v, m) == ("json", "instance_generation") for v, _, m in official)
    for v, d, m in official:
        path = wf.template_path(PAPER, v, d, m)
        assert path == f"{wf.official_dir(PAPER)}/{official_template(v, d, m)}" and path in wf.official_files(
            PAPER
        )
    assert wf.template_path(PAPER, "unoptimized", "math", "quality_enhancement") == (
        "config/prompts/unoptimized/math_quality_enhancement.txt"
    )
    assert wf.template_origin(PAPER, "json", "code", "quality_enhancement") == "stand-in"
    assert {wf.template_origin(DEMO, "agorabench", d, m) for d, m in SETTINGS} == {"stand-in"}
    assert wf.themes_input(PAPER) == f"{wf.official_dir(PAPER)}/{RUN_PY}"
    assert wf.themes_input(DEMO) == DEMO["generation"]["themes"]


def test_paper_modes_are_the_official_ones():
    modes = wf.generation_modes(PAPER, "agorabench", "code", "instance_generation")
    assert modes == {
        "template_origin": "official", "themes_from": "official", "theme_lists": "code_faithful",
        "validation": "official", "max_attempts_per_instance": 10, "demonstrations": "official",
        "pool_block": 256,
    }  # fmt: skip
    demo = wf.generation_modes(DEMO, "agorabench", "code", "instance_generation")
    assert (demo["validation"], demo["demonstrations"], demo["max_attempts_per_instance"]) == (
        "strict", "seeds_only", None,
    )  # fmt: skip


def test_an_unlisted_official_template_is_a_config_error():
    cfg = copy.deepcopy(PAPER)
    del cfg["generation"]["official"]["files"]["agora_scripts/prompts/response_generation_code_prompt.txt"]
    with pytest.raises(ConfigError, match=re.escape("generation.official.files")):
        wf.template_path(cfg, "agorabench", "code", "response_generation")


def test_dry_run_plans_the_asset_rule():
    target = f"{wf.official_dir(PAPER)}/MANIFEST.json"
    cmd = [str(ROOT / ".venv/bin/snakemake"), "-n", target, "--quiet", "rules"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "official_assets" in out.stdout


def test_download_over_http_checks_the_hash(tmp_path, shared_data):
    # A local HTTP server laid out like raw GitHub (<repo>/<commit>/<path>); `url` points at it.
    import functools
    import http.server
    import threading

    name = "response_generation_math_prompt.txt"
    path = f"agora_scripts/prompts/{name}"
    served = tmp_path / "www" / OFFICIAL["repo"] / OFFICIAL["commit"] / path
    served.parent.mkdir(parents=True)
    served.write_bytes((shared_data / "agora-prompts" / name).read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{{repo}}/{{commit}}/{{path}}"
        spec = OFFICIAL | {"files": {path: OFFICIAL["files"][path]}, "url": url}
        assert obtain_assets(spec, tmp_path / "out")["files"] == 1
        served.write_text("changed upstream", "utf-8")
        with pytest.raises(DataError, match=re.escape(f"sha256 of {path} is")):
            obtain_assets(spec, tmp_path / "out2")
        with pytest.raises(DataError, match="HTTP 404"):
            obtain_assets(spec | {"files": {"nope.txt": "0" * 64}}, tmp_path / "out3")
    finally:
        server.shutdown()


def test_generation_stage_reads_the_lists_its_params_name(tmp_path):
    from agorabench.generation.stage import theme_lists

    src = 'math_themes = ["A", "A"]\ncode_themes = ["B"]\ngeneral_themes = ["C"]\ngeneral_triggers = ["x"]\n'
    (tmp_path / "run.py").write_text(src, "utf-8")
    params = {"themes_from": "official", "theme_lists": "code_faithful"}
    themes, triggers = theme_lists(params, str(tmp_path / "run.py"))
    assert themes["math"] == ["A", "A"] and triggers["instruction_following"] == ["x"]
    themes, _ = theme_lists({"themes_from": "project"}, str(ROOT / "config" / "themes.yaml"))
    assert len(themes["math"]) > 0
