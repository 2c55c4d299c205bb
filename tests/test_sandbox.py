"""The sandbox: verdicts, limits, and hostile programs that must be contained while the run completes.

Hostile programs also try to get past the Python-level guard with ctypes, so these tests exercise the OS
layers (namespaces, uid drop, Landlock, rlimits) where the machine has them.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from agorabench.evaluation.sandbox import Limits, Sandbox, _namespace_prefix

HOSTILE_TIMEOUT_S = 2.0
OS_LAYERS = ("netns", "uid", "landlock")


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(timeout_s=HOSTILE_TIMEOUT_S, memory_mb=1024, max_processes=16), workers=2)


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


def _assert_no_process_left(marker: str, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []


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
    prefix, layers = _namespace_prefix()
    assert set(layers) <= set(result.isolation)
    if prefix:
        assert {"netns", "pidns"} <= set(result.isolation)
    if os.geteuid() == 0:
        assert "uid" in result.isolation


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
def test_memory_bomb_is_contained(program: str) -> None:
    result = Sandbox(Limits(timeout_s=10, memory_mb=256), workers=1).run(program)
    assert result.status == "error" and "MemoryError" in result.error


def test_large_file_is_stopped(tmp_path: Path) -> None:
    sandbox = Sandbox(Limits(timeout_s=HOSTILE_TIMEOUT_S, max_file_mb=1), workers=1)
    result = sandbox.run("with open('big', 'wb') as fh:\n    fh.write(b'x' * 5 * 1024**2)\n")
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
