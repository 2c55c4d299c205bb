"""A fault-injecting chat server on 127.0.0.1 for tests and benchmarks (no model, no network).

It speaks the OpenAI chat-completions shape (`POST /v1/chat/completions`) and Anthropic's Messages
shape (`POST /v1/messages`) and answers deterministically: the reply is "echo: <last user message>",
optionally padded to `reply_words` words, cut at a stop string ("stop") or at max_tokens words
("length"); a token is a whitespace-separated word.

Faults are drawn per (request, attempt) from a seeded hash, so a run is reproducible:
429 with Retry-After, 500, 503, a slow reply (sleeps `slow_s`, beyond the client's timeout), a
truncated body (Content-Length promises more than is sent) and malformed JSON. A user message
containing "[[400]]" gets a 400. With `api_key` set, requests without that key get a 401 whose body
echoes the key it received (as some real servers do), to test that clients scrub secrets.

The server keeps a ledger keyed by `request_key(messages)`: attempts received and outcomes. "ok" means a
complete 200 answer was written: the call was paid. A "slow" answer is also a real completion that the
client gave up on, so a provider would bill it too; it is counted apart as "slow".

The batch endpoints of both providers (files, batches, results) are in batch_server.py.

    PYTHONPATH=tests python -m servers.fault_server --port 8009 --latency-s 0.05 --rate-429 0.1
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = ("429", "500", "503", "slow", "truncated", "malformed")


@dataclass(frozen=True)
class Faults:
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_slow: float = 0.0
    rate_truncated: float = 0.0
    rate_malformed: float = 0.0
    retry_after_s: float = 0.05  # sent with every 429
    slow_s: float = 2.0  # how long a slow reply sleeps
    latency_s: float = 0.0  # added to every answer
    per_token_s: float = 0.0  # simulated decoding time per output token
    reply_words: int = 0  # pad replies to this many words (0: echo only)
    fail_first: int = 0  # the first `fail_first` attempts of every request get `fail_kind`
    fail_kind: str = "429"
    seed: int = 0
    api_key: str | None = None

    def __post_init__(self) -> None:
        total = sum(getattr(self, f"rate_{k}") for k in FAULT_KINDS)
        if not 0 <= total <= 1:
            raise ValueError(f"fault rates must sum to a value in [0, 1], got {total}")
        if self.fail_kind not in FAULT_KINDS:
            raise ValueError(f"fail_kind must be one of {FAULT_KINDS}, got {self.fail_kind!r}")

    def __repr__(self) -> str:  # the key is a secret even in a test server
        rates = {k: getattr(self, f"rate_{k}") for k in FAULT_KINDS if getattr(self, f"rate_{k}")}
        return f"Faults({rates}, latency_s={self.latency_s})"


def request_key(messages: Any) -> str:
    """The ledger key of a request: a hash of its messages (the content the client pays for)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def _draw(faults: Faults, key: str, attempt: int) -> str | None:
    if attempt <= faults.fail_first:
        return faults.fail_kind
    h = hashlib.sha256(f"{faults.seed}/{key}/{attempt}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    edge = 0.0
    for kind in FAULT_KINDS:
        edge += getattr(faults, f"rate_{kind}")
        if u < edge:
            return kind
    return None


def _reply(
    messages: list[dict], max_tokens: int, stop: list[str], reply_words: int
) -> tuple[str, str, int, int]:
    """(text, reason, input words, output words); reason is "stop", "length" or "stop_sequence"."""
    user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    words = ["echo:", *str(user).split()]
    words += [f"w{i}" for i in range(max(0, reply_words - len(words)))]
    reason = "length" if len(words) > max_tokens else "stop"
    text = " ".join(words[:max_tokens])
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    if cuts:
        text, reason = text[: min(cuts)], "stop_sequence"
    n_in = sum(len(str(m.get("content", "")).split()) for m in messages)
    return text, reason, n_in, len(text.split())


class Ledger:
    """Thread-safe record of what the server saw and answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []  # answers: {"seq", "t", "key", "attempt", "outcome"}
        self.arrivals: list[str] = []  # keys in order of arrival
        self.received: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}

    def arrive(self, key: str) -> int:
        with self.lock:
            self.received[key] += 1
            self.arrivals.append(key)
            return self.received[key]

    def record(self, key: str, attempt: int, outcome: str) -> None:
        with self.lock:
            self.outcomes.setdefault(key, Counter())[outcome] += 1
            self.events.append({"seq": len(self.events), "t": time.time(), "key": key, "attempt": attempt,
                                "outcome": outcome})  # fmt: skip

    def settle(self, timeout_s: float = 10.0) -> bool:
        """Wait until every request that arrived has been answered; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.events) == len(self.arrivals):
                    return True
            time.sleep(0.01)
        return False

    def count(self, key: str, outcome: str) -> int:
        with self.lock:
            return self.outcomes.get(key, Counter())[outcome]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            totals: Counter[str] = Counter()
            for c in self.outcomes.values():
                totals.update(c)
            return {"received": sum(self.received.values()), "keys": len(self.received),
                    "outcomes": dict(totals)}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None
    ):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def do_GET(self) -> None:
        from . import batch_server  # the batch endpoints (OpenAI and Anthropic)

        if batch_server.handle(self, "GET", b""):
            return
        if self.path.rstrip("/") == "/_stats":
            self._json(200, self.server.ledger.snapshot())
        elif self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "fault-echo", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        from . import batch_server

        if batch_server.handle(self, "POST", raw):
            return
        anthropic = self.path.rstrip("/").endswith("/messages")
        if not (anthropic or self.path.rstrip("/").endswith("/chat/completions")):
            return self._json(404, {"error": {"message": f"no route {self.path}"}})
        try:
            body = json.loads(raw)
            messages = body["messages"]
        except (ValueError, KeyError, TypeError):
            return self._json(400, {"error": {"message": "body must be JSON with 'messages'"}})
        faults: Faults = self.server.faults
        if faults.api_key is not None and self._given_key(anthropic) != faults.api_key:
            msg = f"Incorrect API key provided: {self._given_key(anthropic)}"
            return self._json(401, {"error": {"message": msg, "type": "invalid_request_error"}})
        key = request_key(messages)
        attempt = self.server.ledger.arrive(key)
        outcome = self._answer(body, anthropic, faults, key, attempt)
        self.server.ledger.record(key, attempt, outcome)

    def _given_key(self, anthropic: bool) -> str:
        if anthropic:
            return self.headers.get("x-api-key", "")
        return self.headers.get("Authorization", "").removeprefix("Bearer ")

    def _answer(self, body: dict, anthropic: bool, faults: Faults, key: str, attempt: int) -> str:
        if any("[[400]]" in str(m.get("content", "")) for m in body["messages"]):
            self._json(400, {"error": {"message": "this request is rejected ([[400]])"}})
            return "400"
        fault = _draw(faults, key, attempt)
        if fault == "429":
            self._json(
                429, {"error": {"message": "rate limited"}}, {"Retry-After": str(faults.retry_after_s)}
            )
        elif fault in ("500", "503"):
            self._json(int(fault), {"error": {"message": f"injected {fault}"}})
        elif fault == "malformed":
            self._send(200, b'{"id": "x", "choices": [{"message": ')
        else:
            return self._success(body, anthropic, faults, fault)
        return fault

    def _success(self, body: dict, anthropic: bool, faults: Faults, fault: str | None) -> str:
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 256)
        stop = body.get("stop_sequences" if anthropic else "stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        text, reason, n_in, n_out = _reply(body["messages"], max_tokens, stop, faults.reply_words)
        n_in += len(str(body.get("system", "")).split()) if anthropic else 0  # a top-level system prompt
        payload = json.dumps(_anthropic(body, text, reason, n_in, n_out) if anthropic
                             else _openai(body, text, reason, n_in, n_out)).encode()  # fmt: skip
        time.sleep(faults.latency_s + faults.per_token_s * n_out + (faults.slow_s if fault == "slow" else 0))
        try:
            if fault == "truncated":  # promise the whole body, send half, hang up
                self._send(200, payload[: len(payload) // 2], length=len(payload))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return "truncated"
            self._send(200, payload)
        except OSError:  # the client is gone (it timed out)
            self.close_connection = True
            return "slow" if fault == "slow" else "client_gone"
        return "slow" if fault == "slow" else "ok"


def _openai(body: dict, text: str, reason: str, n_in: int, n_out: int) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": text},
              "finish_reason": "length" if reason == "length" else "stop"}  # fmt: skip
    return {
        "id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "fault-echo"), "choices": [choice],
        "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
    }  # fmt: skip


def _anthropic(body: dict, text: str, reason: str, n_in: int, n_out: int) -> dict:
    stop_reason = {"length": "max_tokens", "stop": "end_turn"}.get(reason, reason)
    return {
        "id": "msg_fault", "type": "message", "role": "assistant", "model": body.get("model", "fault-echo"),
        "content": [{"type": "text", "text": text}], "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": n_in, "output_tokens": n_out},
    }  # fmt: skip


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], faults: Faults):
        super().__init__(addr, _Handler)
        self.faults = faults
        self.ledger = Ledger()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, kill -9) are part of the job; anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultServer:
    """Start with `with FaultServer(Faults(...)) as srv:`; `srv.url` is the OpenAI base URL."""

    def __init__(self, faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0):
        self._server = _Server((host, port), faults or Faults())
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-server", daemon=True)

    @property
    def root(self) -> str:
        """The Anthropic base URL (the server root)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL (`.../v1`)."""
        return self.root + "/v1"

    @property
    def ledger(self) -> Ledger:
        return self._server.ledger

    def set_faults(self, faults: Faults) -> None:
        self._server.faults = faults

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=8009)
    for kind in FAULT_KINDS:
        p.add_argument(f"--rate-{kind}", type=float, default=0.0)
    for name in ("retry_after_s", "slow_s", "latency_s", "per_token_s"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(Faults(), name))
    p.add_argument("--reply-words", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    faults = Faults(**{k: v for k, v in vars(a).items() if k != "port"})
    with FaultServer(faults, port=a.port) as srv:
        print(f"fault server on {srv.url} with {faults!r}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
