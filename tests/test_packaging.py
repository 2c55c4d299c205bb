"""The package as users install it: honest dependencies, one pin per package, the `agorabench` command."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

from agorabench import cli

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)")


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        if m := PIN.match(line.strip()):
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def _pyproject_pins() -> dict[str, str]:
    lines = list(PYPROJECT["dependencies"])
    for extra in PYPROJECT["optional-dependencies"].values():
        lines += [x for x in extra if not x.startswith("agorabench")]
    return _pins(lines)


def test_every_pyproject_pin_equals_the_lock():
    lock = _pins((ROOT / "requirements.txt").read_text().splitlines())
    pins = _pyproject_pins()
    assert pins, "pyproject.toml declares no pinned dependencies"
    differ = {name: (v, lock.get(name)) for name, v in pins.items() if lock.get(name) != v}
    assert not differ, f"pyproject.toml vs requirements.txt: {differ}"


def test_runtime_dependencies_hold_no_test_or_lint_tools():
    runtime = _pins(PYPROJECT["dependencies"]) | {
        k: v
        for name, extra in PYPROJECT["optional-dependencies"].items()
        if name != "test"
        for k, v in _pins(extra).items()
    }
    assert not {"pytest", "ruff", "snakefmt"} & set(runtime)


def _imported_top_level(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_provider_sdk_is_pinned_or_imported():
    """The backends speak HTTP through httpx; an SDK pinned but never imported is a false dependency."""
    imported = set().union(*(_imported_top_level(p) for p in (ROOT / "agorabench").rglob("*.py")))
    assert not {"openai", "anthropic"} & imported
    for f in [ROOT / "requirements.txt", *sorted((ROOT / "envs").glob("*.yaml"))]:
        assert not {"openai", "anthropic"} & set(_pins(f.read_text().replace("- ", "").splitlines())), f


TEST_SERVERS = ("fault_server", "batch_server", "llamacpp_server")  # tests/servers/


def _test_server_uses(path: Path) -> list[str]:
    """Imports of the `servers` package, and any mention of a test server's module name, in `path`."""
    text = path.read_text()
    found = [f"imports {m}" for m in _imported_top_level(path) if m == "servers"]
    return found + [f"names {name}" for name in TEST_SERVERS if name in text]


def test_no_runtime_module_imports_a_test_server():
    """The loopback servers live in tests/servers/: the installed package neither ships nor imports them."""
    assert {p.stem for p in (ROOT / "tests/servers").glob("*.py")} >= set(TEST_SERVERS)
    assert _test_server_uses(ROOT / "tests/test_llm_openai.py")  # the check sees a real import
    runtime = sorted((ROOT / "agorabench").rglob("*.py"))
    uses = {str(p.relative_to(ROOT)): _test_server_uses(p) for p in runtime}
    assert not {path: u for path, u in uses.items() if u}


def test_the_console_script_is_declared():
    assert PYPROJECT["scripts"]["agorabench"] == "agorabench.cli:main"


@pytest.mark.parametrize("command", ["check-config", "plan", "trace", "verify", "lineage", "datacard"])
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: agorabench" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml", "rehearsal.yaml"])
def test_check_config_accepts_the_shipped_configs(name, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["check-config", f"config/{name}"]) == 0
    assert "valid" in capsys.readouterr().out


def test_check_config_names_the_bad_key(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = (ROOT / "config/demo.yaml").read_text().replace("seed: 42", "seed: forty-two", 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(config)
    assert cli.main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "config key 'seed'" in err and str(bad) in err


def test_check_config_names_a_bad_cross_reference(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = (
        (ROOT / "config/demo.yaml")
        .read_text()
        .replace("base: smollm2-135m-instruct", "base: no-such-model", 1)
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(config)
    assert cli.main(["check-config", str(bad)]) == 1
    assert "student.base" in capsys.readouterr().err


def test_check_config_names_a_missing_file(tmp_path, capsys):
    assert cli.main(["check-config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


@pytest.mark.slow
def test_pip_install_gives_a_working_command(tmp_path):
    """A fresh venv, `pip install .` (core dependencies only), then `agorabench --help` and check-config."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = [str(env_dir / "bin/python"), "-m", "pip", "install", "-q"]
    proc = subprocess.run([*pip, str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exe = str(env_dir / "bin/agorabench")
    assert subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60).returncode == 0
    check = subprocess.run(
        [exe, "check-config", "config/config.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "valid" in check.stdout
