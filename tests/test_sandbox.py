"""The sandbox: verdicts, limits, and hostile programs that must be contained while the run completes.

Every test runs in both ways: warm servers inside bubblewrap (`bwrap`), and the direct way that is left
where bubblewrap cannot run (forced here with `bwrap=False`). Hostile programs also try to get past the
Python-level guard with ctypes, so these tests exercise the OS layers (bubblewrap, namespaces, uid drop,
Landlock, rlimits) where the machine has them. Reading the host's files is contained only by bubblewrap.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from agorabench.evaluation import sandbox as sandbox_module
from agorabench.evaluation.sandbox import (
    ERROR_MAX_CHARS,
    OUTPUT_TAIL_BYTES,
    IsolationError,
    Limits,
    Sandbox,
    SandboxResult,
    _namespace_prefix,
)

HOSTILE_TIMEOUT_S = 2.0
OS_LAYERS = ("bwrap", "netns", "uid", "landlock")
UID_BASE = 2_000_000
MODES = ("bwrap", "direct")


def _bwrap_runs() -> bool:
    try:
        Sandbox(workers=1, bwrap=True).close()
    except RuntimeError:
        return False
    return True


BWRAP = _bwrap_runs()


def _make(mode: str, limits: Limits, workers: int = 1) -> Sandbox:
    if mode == "bwrap" and not BWRAP:
        pytest.skip("bubblewrap does not run on this machine")
    return Sandbox(limits, workers=workers, uid_base=UID_BASE, bwrap=mode == "bwrap")


@pytest.fixture(scope="module", params=MODES)
def sandbox(request: pytest.FixtureRequest):
    limits = Limits(timeout_s=HOSTILE_TIMEOUT_S, memory_mb=1024, max_processes=16)
    with _make(request.param, limits, workers=2) as box:
        yield box


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def _has_layer(result_isolation: tuple[str, ...], prefix: str) -> bool:
    return any(layer.startswith(prefix) for layer in result_isolation)


def _processes_with(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                pids.append(int(entry))
    return pids


def _throwaway_uid_processes() -> list[int]:
    """Processes of this test process's throwaway uids (see sandbox._UidPool); as root only."""
    if os.geteuid() != 0:
        return []
    low = UID_BASE + (os.getpid() % (1 << 22)) * 256
    return [pid for uid in range(low, low + 256) for pid in sandbox_module._uid_processes(uid)]


def _assert_no_process_left(marker: str, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while (_processes_with(marker) or _throwaway_uid_processes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == [] and _throwaway_uid_processes() == []


# ---------------------------------------------------------------- verdicts


def test_verdicts(sandbox: Sandbox) -> None:
    programs = {
        "passes": "def f(x):\n    return x + 1\n\nassert f(1) == 2\n",
        "assertion": "assert 1 + 1 == 3, 'arithmetic'\n",
        "exception": "raise ValueError('bad')\n",
        "syntax": "def f(:\n    pass\n",
        "name": "undefined_function()\n",
    }
    results = dict(zip(programs, sandbox.run_many(list(programs.values()), list(programs)), strict=True))
    assert results["passes"].status == "passed" and results["passes"].error is None
    assert results["assertion"].status == "failed"
    assert results["assertion"].error == "AssertionError: arithmetic (program.py line 1)"
    assert results["exception"].status == "error" and results["exception"].error.startswith("ValueError: bad")
    assert results["syntax"].status == "error" and "SyntaxError" in results["syntax"].error
    assert results["name"].status == "error" and "NameError" in results["name"].error


def test_exiting_before_the_tests_is_not_a_pass(sandbox: Sandbox) -> None:
    tail = "\nassert False, 'tests never reached'\n"
    early = ["import sys\nsys.exit(0)" + tail, "import os\nos._exit(0)" + tail, "raise SystemExit" + tail]
    for result in sandbox.run_many(early):
        assert result.status == "error", result


def test_output_is_captured_and_order_kept(sandbox: Sandbox) -> None:
    programs = [f"print('sample {i}')\nassert {i} % 2 == 0\n" for i in range(6)]
    results = sandbox.run_many(programs)
    assert [r.status for r in results] == ["passed", "failed"] * 3
    assert [r.output.strip() for r in results] == [f"sample {i}" for i in range(6)]


def test_writing_inside_the_sandbox_works(sandbox: Sandbox) -> None:
    program = (
        "import os, shutil, tempfile\n"
        "open('data.txt', 'w').write('hello')\n"
        "assert open('data.txt').read() == 'hello'\n"
        "os.rename('data.txt', 'moved.txt')\n"
        "os.remove('moved.txt')\n"
        "with tempfile.TemporaryDirectory() as tmp:\n"
        "    assert os.path.dirname(tmp) == os.getcwd()\n"
        "    open(os.path.join(tmp, 'f'), 'w').close()\n"
        "os.makedirs('a/b')\n"
        "shutil.rmtree('a')\n"
        "assert os.listdir('.') == []\n"
    )
    result = sandbox.run(program)
    assert result.status == "passed", result


def test_isolation_is_recorded(sandbox: Sandbox) -> None:
    result = sandbox.run("pass")
    assert result.status == "passed"
    assert "rlimits" in result.isolation and "python-guard" in result.isolation
    if sandbox.mode == "bwrap":
        assert {"bwrap", "netns", "pidns"} <= set(result.isolation)
        assert ("userns" in result.isolation) == (os.geteuid() != 0)
    else:
        prefix, layers = _namespace_prefix()
        assert "bwrap" not in result.isolation and set(layers) <= set(result.isolation)
        if prefix:
            assert {"netns", "pidns"} <= set(result.isolation)
    if os.geteuid() == 0:
        assert "uid" in result.isolation


def test_bubblewrap_is_used_where_it_runs() -> None:
    with Sandbox(workers=1) as box:
        assert box.mode == ("bwrap" if BWRAP else "direct")
    with Sandbox(workers=1, bwrap=False) as box:
        assert box.mode == "direct"


@pytest.mark.skipif(not BWRAP, reason="bubblewrap does not run on this machine")
def test_bubblewrap_shows_only_a_minimal_view() -> None:
    program = (
        "import json, os\n"
        "print(json.dumps(sorted(os.listdir('/'))))\n"
        "print(json.dumps([e for e in os.listdir('/proc') if e.isdigit()]))\n"
        "print(json.dumps(dict(os.environ)))\n"
        "print(int(open('/proc/self/status').read().split('CapEff:')[1].split()[0], 16))\n"
        f"print(json.dumps([os.path.exists({os.getcwd()!r}), sorted(os.listdir('/root'))]))\n"
    )
    with Sandbox(workers=1, bwrap=True) as box:
        result = box.run(program)
    assert result.status == "passed", result
    top, pids, env, caps, host = (json.loads(line) for line in result.output.splitlines())
    assert {"usr", "tmp", "proc", "dev", "sandbox"} <= set(top)
    assert {"etc", "home", "work", "opt", "var", "mnt", "srv"}.isdisjoint(top)
    assert len(pids) <= 3  # bubblewrap's init, the server, this program
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "PWD", "LANG", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                        "MKL_NUM_THREADS"}  # fmt: skip
    assert caps == 0
    assert host[0] is False and set(host[1]) <= {".pyenv"}  # nothing of /root but an interpreter


def test_packages_are_exposed_only_when_named() -> None:
    if not BWRAP:
        pytest.skip("bubblewrap does not run on this machine")
    program = "import yaml\nassert yaml.safe_load('a: 1') == {'a': 1}\n"
    with Sandbox(workers=1, bwrap=True) as box:
        result = box.run(program)
    assert result.status == "error" and "ModuleNotFoundError" in result.error
    with Sandbox(workers=1, bwrap=True, packages=["yaml"]) as box:
        assert box.run(program).status == "passed"
    with pytest.raises(ValueError, match="not installed"):
        Sandbox(workers=1, bwrap=True, packages=["no_such_package_xyz"])


def test_no_isolation_at_all_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine with no OS layer cannot be made here: the probe's result is replaced by one that
    # reports only the layers that would remain there.
    bare = SandboxResult("passed", None, 0.0, ("rlimits", "python-guard"), "")
    monkeypatch.setattr(Sandbox, "_run_in_slot", lambda self, program, label, uid: bare)
    with pytest.raises(IsolationError, match="only rlimits and the Python guard"):
        Sandbox(workers=1, bwrap=False)
    assert Sandbox(workers=1, bwrap=False, allow_no_isolation=True).run("pass") is bare


def test_stored_output_and_errors_are_bounded(sandbox: Sandbox) -> None:
    program = "print('x' * 100_000)\nraise ValueError('y' * 100_000)\n"
    result = sandbox.run(program)
    assert result.status == "error" and result.error.startswith("ValueError: yyy")
    assert len(result.error) <= ERROR_MAX_CHARS + 40
    assert 0 < len(result.output.encode()) <= OUTPUT_TAIL_BYTES


@pytest.mark.skipif(os.geteuid() != 0, reason="uids are only switched when running as root")
def test_concurrent_programs_get_distinct_throwaway_uids(sandbox: Sandbox) -> None:
    program = "import os, time\nprint(os.getuid(), os.geteuid())\ntime.sleep(0.5)\n"
    uids = [r.output.split() for r in sandbox.run_many([program, program])]
    assert uids[0][0] == uids[0][1] != "0" and uids[1][0] == uids[1][1] != "0"
    assert uids[0] != uids[1]


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        Limits(timeout_s=0)
    with pytest.raises(ValueError, match="workers"):
        Sandbox(workers=0)


# ---------------------------------------------------------------- hostile programs


def test_endless_programs_time_out(sandbox: Sandbox) -> None:
    start = time.monotonic()
    results = sandbox.run_many(["while True:\n    pass\n", "import time\ntime.sleep(60)\n"])
    assert [r.status for r in results] == ["timeout", "timeout"]
    assert HOSTILE_TIMEOUT_S <= time.monotonic() - start < HOSTILE_TIMEOUT_S + 5


@pytest.mark.parametrize(
    "program",
    [
        "import os\nwhile True:\n    os.fork()\n",
        "import ctypes\nlibc = ctypes.CDLL(None)\nwhile True:\n    libc.fork()\n",  # bypasses the guard
    ],
    ids=["os.fork", "ctypes-fork"],
)
def test_fork_bomb_is_contained(sandbox: Sandbox, program: str) -> None:
    marker = f"forkbomb{uuid.uuid4().hex[:8]}"
    start = time.monotonic()
    result = sandbox.run(program, label=marker)
    assert result.status in ("error", "timeout")
    assert time.monotonic() - start < HOSTILE_TIMEOUT_S + 5
    _assert_no_process_left(marker)


def test_background_children_are_killed(sandbox: Sandbox) -> None:
    marker = f"orphan{uuid.uuid4().hex[:8]}"
    program = (
        "import ctypes, time\n"
        "libc = ctypes.CDLL(None)\n"
        "if libc.fork() == 0:\n"
        "    libc.setsid()\n"  # leave the process group
        "    time.sleep(600)\n"
    )
    result = sandbox.run(program, label=marker)
    assert result.status == "passed"
    _assert_no_process_left(marker)


@pytest.mark.parametrize(
    "program",
    [
        "x = bytearray(50 * 1024**3)\n",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024**2))\n",
    ],
    ids=["one-allocation", "gradual"],
)
def test_memory_bomb_is_contained(mode: str, program: str) -> None:
    with _make(mode, Limits(timeout_s=10, memory_mb=256)) as box:
        result = box.run(program)
    assert result.status == "error" and "MemoryError" in result.error


def test_large_file_is_stopped(mode: str) -> None:
    with _make(mode, Limits(timeout_s=HOSTILE_TIMEOUT_S, max_file_mb=1)) as box:
        result = box.run("with open('big', 'wb') as fh:\n    fh.write(b'x' * 5 * 1024**2)\n")
    assert result.status == "error" and "File too large" in result.error


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside every sandbox, with a canary file the samples try to destroy."""
    (tmp_path / "canary.txt").write_text("alive")
    return tmp_path


@pytest.mark.parametrize(
    "template",
    [
        "import os\nos.remove({canary!r})\n",
        "import shutil\nshutil.rmtree({dir!r})\n",
        "import pathlib\npathlib.Path({canary!r}).unlink()\n",
        "open({canary!r}, 'w').write('overwritten')\n",
        "import ctypes\nassert ctypes.CDLL(None).unlink({canary!r}.encode()) == 0\n",
        "import ctypes\nassert ctypes.CDLL(None).rename({canary!r}.encode(), b'moved') == 0\n",
    ],
    ids=["os.remove", "rmtree", "pathlib", "overwrite", "ctypes-unlink", "ctypes-rename"],
)
def test_canary_outside_the_sandbox_survives(sandbox: Sandbox, outside: Path, template: str) -> None:
    canary = outside / "canary.txt"
    result = sandbox.run(template.format(canary=str(canary), dir=str(outside)))
    assert result.status != "passed", result
    assert canary.read_text() == "alive"


@pytest.mark.parametrize(
    "template",
    [
        "import os\nos.system('touch {target}')\n",
        "import subprocess\nsubprocess.run(['touch', '{target}'])\n",
        "import ctypes\nctypes.CDLL(None).system(b'touch {target}')\n",  # a real shell, past the guard
    ],
    ids=["os.system", "subprocess", "ctypes-system"],
)
def test_shell_cannot_write_outside(sandbox: Sandbox, outside: Path, template: str) -> None:
    target = outside / "created-by-sample"
    result = sandbox.run(template.format(target=target))
    if "ctypes" in template and not any(_has_layer(result.isolation, layer) for layer in OS_LAYERS):
        pytest.skip("no OS-level isolation on this machine: only the Python guard applies")
    assert not target.exists(), result


@pytest.mark.parametrize(
    "connect",
    [
        "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n",
        # _socket gets past the Python guard
        "import _socket\ns = _socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))\n",
    ],
    ids=["socket", "_socket"],
)
def test_no_network(sandbox: Sandbox, connect: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = sandbox.run(connect.format(port=port))
        if "_socket" in connect and not any(_has_layer(result.isolation, layer) for layer in OS_LAYERS):
            pytest.skip("no OS-level isolation on this machine: only the Python guard applies")
        assert result.status == "error", result
        listener.settimeout(0.5)
        with pytest.raises(TimeoutError):
            listener.accept()


def test_signals_cannot_reach_the_parent(sandbox: Sandbox) -> None:
    program = f"import ctypes\nassert ctypes.CDLL(None).kill({os.getpid()}, 0) != 0\n"
    result = sandbox.run(program)
    if not any(_has_layer(result.isolation, layer) for layer in ("pidns", "uid", "landlock")):
        pytest.skip("no OS-level isolation on this machine")
    assert result.status == "passed", result


# ---------------------------------------------------------------- reading the host (bubblewrap only)

READING_ACTS = {
    "open": "print(open({secret!r}).read())\nraise RuntimeError(open({secret!r}).read())\n",
    "ctypes": (
        "import ctypes\nlibc = ctypes.CDLL(None)\nfd = libc.open({secret!r}.encode(), 0)\n"
        "buf = ctypes.create_string_buffer(4096)\nn = libc.read(fd, buf, 4096)\n"
        "raise RuntimeError(buf.raw[:max(n, 0)].decode())\n"
    ),
    "symlink": "import os\nos.symlink({secret!r}, 'link')\nraise RuntimeError(open('link').read())\n",
    "proc-self-root": "raise RuntimeError(open('/proc/self/root' + {secret!r}).read())\n",
    "proc-1-root": "raise RuntimeError(open('/proc/1/root' + {secret!r}).read())\n",
    "proc-environ": (
        "import os\nfound = []\nfor pid in os.listdir('/proc'):\n"
        "    try:\n        found.append(open(f'/proc/{{pid}}/environ', 'rb').read().decode())\n"
        "    except Exception:\n        pass\nprint(found)\nraise RuntimeError(str(found))\n"
    ),
    "proc-cmdline": (
        "import os\nfound = []\nfor pid in os.listdir('/proc'):\n"
        "    try:\n        found.append(open(f'/proc/{{pid}}/cmdline', 'rb').read().decode())\n"
        "    except Exception:\n        pass\nprint(found)\nraise RuntimeError(str(found))\n"
    ),
}


@pytest.fixture
def secret(tmp_path: Path) -> tuple[Path, str]:
    """A 0600 file outside every sandbox, and its canary text."""
    canary = f"canary-{uuid.uuid4().hex}"
    path = tmp_path / "secret.txt"
    path.write_text(canary)
    path.chmod(0o600)
    return path, canary


@pytest.mark.parametrize("act", sorted(READING_ACTS))
def test_host_files_cannot_be_read(sandbox: Sandbox, secret: tuple[Path, str], act: str) -> None:
    path, canary = secret
    result = sandbox.run(READING_ACTS[act].format(secret=str(path)))
    assert len(result.error or "") <= ERROR_MAX_CHARS + 40 and len(result.output) <= OUTPUT_TAIL_BYTES
    if sandbox.mode != "bwrap":
        pytest.skip("only bubblewrap hides the host's files; the direct way bounds what is stored")
    assert result.status == "error", result
    assert canary not in (result.error or "") and canary not in result.output


def test_reading_acts_work_where_the_host_is_visible(secret: tuple[Path, str]) -> None:
    """The control: the same acts do read the file in the direct way (as root it keeps
    CAP_DAC_READ_SEARCH), so their failure under bubblewrap is bubblewrap's doing."""
    if os.geteuid() != 0:
        pytest.skip("the direct way reads root-only files only as root")
    path, canary = secret
    with Sandbox(workers=2, bwrap=False) as box:
        acts = ("open", "ctypes", "symlink", "proc-self-root")
        results = box.run_many([READING_ACTS[a].format(secret=str(path)) for a in acts])
    assert all(canary in (r.error or "") for r in results), results


def test_scoring_without_bubblewrap_falls_back_and_refuses_no_isolation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agorabench.errors import ConfigError
    from agorabench.evaluation.scorers.code import CodeScorer

    items = [{"id": "t/1", "prompt": "p", "tests": "assert f() == 1\n", "setup": "", "entry_point": None,
              "prompt_code": None}]  # fmt: skip
    preds = [{"id": "t/1", "output": "def f():\n    return 1\n"}]
    monkeypatch.setattr(sandbox_module, "_bwrap_binaries", list)  # as on a machine without bubblewrap
    score = CodeScorer().score(items, preds, workers=1)
    assert score.value == 100.0 and "bwrap" not in score.settings["isolation"]
    bare = SandboxResult("passed", None, 0.0, ("rlimits", "python-guard"), "")
    monkeypatch.setattr(Sandbox, "_run_in_slot", lambda self, program, label, uid: bare)  # and no OS layer
    with pytest.raises(ConfigError, match=r"evaluation\.code_allow_no_isolation.*set it to true"):
        CodeScorer().score(items, preds, workers=1)
    assert CodeScorer().score(items, preds, workers=1, allow_no_isolation=True).value == 100.0


@pytest.mark.skipif(not BWRAP, reason="bubblewrap does not run on this machine")
def test_a_closed_sandbox_runs_nothing() -> None:
    box = Sandbox(workers=1)
    box.close()
    with pytest.raises(RuntimeError, match="closed"):  # never a silent fall back to the direct way
        box.run("pass")
