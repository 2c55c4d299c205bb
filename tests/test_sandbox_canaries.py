"""No host content in results: canaries planted where secrets live, hostile samples that read and leak them.

Canaries (fresh random strings) go into a 0600 file in /root (as root; removed afterwards), ~/.netrc and
~/.cache/huggingface/token of a temporary HOME, API keys in the environment of the scoring process, and
the command line of a process running beside it. Hostile samples try to read them (open, ctypes,
symlinks, /proc/self/root, /proc/1/root, /proc/*/environ, /proc/*/cmdline, the environment, a walk of
the whole file tree) and print and raise what they find. Scoring runs as the workflow's score rule
does, in its own process; no canary may appear in anything written under results/, logs or
.snakemake/ (the test's own and the project's). A control shows the same samples do find the file
canaries where the host is visible (the direct way, as root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from agorabench.evaluation.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
API_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN")

# Each act ends with `found` (a list of strings) printed and raised.
READS = {
    "open": (
        "for p in PATHS:\n    try:\n        found.append(open(p).read())\n    except Exception:\n"
        "        pass\n"
    ),
    "ctypes": (
        "import ctypes\nlibc = ctypes.CDLL(None)\nfor p in PATHS:\n    fd = libc.open(p.encode(), 0)\n"
        "    buf = ctypes.create_string_buffer(4096)\n    n = libc.read(fd, buf, 4096)\n"
        "    found.append(buf.raw[:max(n, 0)].decode('utf-8', 'replace'))\n"
    ),
    "symlink": (
        "import os\nfor i, p in enumerate(PATHS):\n    try:\n        os.symlink(p, f'link{i}')\n"
        "        found.append(open(f'link{i}').read())\n    except Exception:\n        pass\n"
    ),
    "proc-root": (
        "for base in ('/proc/self/root', '/proc/1/root', '/proc/2/root'):\n    for p in PATHS:\n"
        "        try:\n            found.append(open(base + p).read())\n        except Exception:\n"
        "            pass\n"
    ),
    "proc-environ-cmdline": (
        "import os\nfor pid in os.listdir('/proc'):\n    for name in ('environ', 'cmdline'):\n"
        "        try:\n            data = open(f'/proc/{pid}/{name}', 'rb').read()\n"
        "            found.append(data.decode('utf-8', 'replace'))\n"
        "        except Exception:\n            pass\n"
    ),
    "environment": "import os\nfound.append(repr(dict(os.environ)))\n",
    "home": (
        "import os\nfor p in ('~/.netrc', '~/.cache/huggingface/token'):\n    try:\n"
        "        found.append(open(os.path.expanduser(p)).read())\n    except Exception:\n        pass\n"
    ),
    "walk": (  # every file of the tree but /proc, /sys, /usr and /dev, for 2 s
        "import os, time\nstop = time.monotonic() + 2\n"
        "for top, dirs, files in os.walk('/'):\n"
        "    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ('/proc', '/sys', '/usr', '/dev')]\n"
        "    for f in files:\n        try:\n            text = open(os.path.join(top, f), 'rb').read(10**5)\n"
        "        except Exception:\n            continue\n"
        "        if b'canary-' in text:\n            found.append(text.decode('utf-8', 'replace'))\n"
        "    if time.monotonic() > stop:\n        break\n"
    ),
}


def _hostile(act: str, paths: list[str]) -> str:
    return f"PATHS = {paths!r}\nfound = []\n{READS[act]}print(found)\nraise RuntimeError(repr(found))\n"


@pytest.fixture
def planted(tmp_path: Path):
    token = uuid.uuid4().hex
    canaries: dict[str, str] = {}
    files: dict[str, Path] = {}

    def plant(name: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        canaries[name] = f"canary-{name}-{token}"
        path.write_text(canaries[name])
        path.chmod(0o600)
        files[name] = path

    home = tmp_path / "home"
    plant("netrc", home / ".netrc")
    plant("hf-token", home / ".cache" / "huggingface" / "token")
    root_file = Path(f"/root/.agorabench-canary-{token}")
    if os.geteuid() == 0 and os.access("/root", os.W_OK):
        assert not root_file.exists()
        plant("root-file", root_file)
    env = {name: f"canary-{name.lower()}-{token}" for name in API_KEYS}
    canaries |= env
    canaries["cmdline"] = f"canary-cmdline-{token}"
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", canaries["cmdline"]])
    try:
        yield SimpleNamespace(home=home, files=files, env=env, canaries=canaries)
    finally:
        helper.kill()
        helper.wait()
        if "root-file" in files:
            root_file.unlink(missing_ok=True)


def _write_benchmark(tmp_path: Path, paths: list[str]) -> tuple[Path, Path]:
    items, preds = [], []
    for act in READS:
        items.append({"id": f"hostile/{act}", "prompt": act, "tests": "pass", "setup": None,
                      "entry_point": None, "prompt_code": None})  # fmt: skip
        preds.append({"id": f"hostile/{act}", "output": f"```python\n{_hostile(act, paths)}```"})
    items_path, preds_path = tmp_path / "items.jsonl", tmp_path / "predictions.jsonl"
    items_path.write_text("".join(json.dumps(r) + "\n" for r in items))
    preds_path.write_text("".join(json.dumps(r) + "\n" for r in preds))
    return items_path, preds_path


def _files_written_since(start: float, *tops: Path) -> list[Path]:
    found = []
    for top in tops:
        for dirpath, _, names in os.walk(top):
            for name in names:
                path = Path(dirpath, name)
                try:
                    if path.is_file() and path.stat().st_mtime >= start:
                        found.append(path)
                except OSError:
                    continue
    return found


def _bwrap_runs() -> bool:
    try:
        Sandbox(workers=1, bwrap=True).close()
    except RuntimeError:
        return False
    return True


@pytest.mark.skipif(not _bwrap_runs(), reason="bubblewrap does not run here: reading is then not contained")
def test_no_canary_reaches_results_or_logs(tmp_path: Path, planted: SimpleNamespace) -> None:
    start = time.time() - 1
    paths = [str(p) for p in planted.files.values()]
    items_path, preds_path = _write_benchmark(tmp_path, paths)
    out = tmp_path / "results" / "scores" / "hostile-model" / "humaneval" / "score.json"
    log = tmp_path / "logs" / "score.log"
    log.parent.mkdir(parents=True)
    args = {
        "model": "hostile-model", "benchmark": "humaneval", "kind": "code", "items_path": str(items_path),
        "predictions_path": str(preds_path), "out_path": str(out), "settings": {"timeout_s": 8, "workers": 2},
    }  # fmt: skip
    script = "import json, sys\nfrom agorabench.evaluation.stage import score_benchmark\n"
    script += "print(score_benchmark(**json.loads(sys.argv[1])))\n"
    env = {**os.environ, "HOME": str(planted.home), **planted.env}
    with log.open("wb") as fh:
        done = subprocess.run([sys.executable, "-c", script, json.dumps(args)], cwd=ROOT, env=env,
                              stdout=fh, stderr=subprocess.STDOUT, timeout=600)  # fmt: skip
    assert done.returncode == 0, log.read_text()[-3000:]
    details = [json.loads(line) for line in (out.parent / "details.jsonl").read_text().splitlines()]
    assert len(details) == len(READS)
    for row in details:  # every hostile sample ran, raised what it found, and got no further
        assert row["statuses"] == ["error"] and row["error"].startswith("RuntimeError: ["), row
    assert "bwrap" in json.loads(out.read_text())["settings"]["isolation"]
    written = _files_written_since(start, tmp_path / "results", tmp_path / "logs",
                                   ROOT / "results", ROOT / "logs", ROOT / ".snakemake")  # fmt: skip
    assert out in written and log in written
    for path in written:
        text = path.read_bytes()[:50_000_000].decode("utf-8", "replace")
        leaked = [name for name, canary in planted.canaries.items() if canary in text]
        assert not leaked, f"{path} holds the canaries {leaked}"
    for name, path in planted.files.items():
        assert path.read_text() == planted.canaries[name]  # intact


@pytest.mark.skipif(os.geteuid() != 0, reason="the direct way reads root-only files only as root")
def test_the_hostile_samples_find_the_canaries_where_the_host_is_visible(planted: SimpleNamespace) -> None:
    paths = [str(p) for p in planted.files.values()]
    with Sandbox(workers=2, bwrap=False) as box:
        results = box.run_many([_hostile(act, paths) for act in ("open", "ctypes", "symlink")])
    for result in results:
        assert all(planted.canaries[name] in result.output for name in planted.files), result
