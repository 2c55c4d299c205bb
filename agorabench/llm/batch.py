"""Batch mode: the same requests at the providers' batch price, through a durable batch ledger.

`BatchBackend` wraps an online backend (OpenAI or Anthropic) and sends its requests as asynchronous
batches (OpenAI Batch API, Anthropic Message Batches; see openai_batch.py / anthropic_batch.py). Results
come back as the same Completions, under the same request ids (= each batch line's custom_id), and the
call store stores them exactly like online results.

Never pay twice. Every step is appended (and fsynced) to a JSONL ledger next to the call store
(`<store>.batches.jsonl`) before the next step starts:

    prepare  {part, ids, attempt, t}   the requests of one batch (a "part"), before anything is sent
    upload   {part, file_id}           OpenAI only: the uploaded input file
    submit   {part, batch_id}          the provider's batch id, written as soon as it answers
    collect  {part}                    every result of the part has been handed to the call store

A rerun (after kill -9 at any moment, or a day later) re-reads the ledger: a request whose latest part
is submitted but not collected is re-attached to that batch (polled, then its results downloaded again;
downloads are free), never sent again. A part prepared but not known to be submitted is first looked up
at the provider (OpenAI: the batch's metadata names the part; Anthropic: a batch created since with the
same request count) so a kill between the provider's answer and the ledger write is re-attached too.
Requests a batch did not finish (expired, server errors, a failed batch) are resubmitted alone, up to
`max_resubmits` times; rejected requests (HTTP 400) come back as finish_reason "error".

Waiting: `wait: exit` (default) polls once and, if a batch is still running, raises BatchPending naming
each batch id and status, so a SLURM job ends at once and a later `snakemake` run picks the batch up;
`wait: poll` polls every `poll_s` seconds until the batches end.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from agorabench.errors import AgoraBenchError, ConfigError
from agorabench.llm.base import Backend, BackendError, Completion, Request
from agorabench.llm.openai_backend import FATAL_STATUS, RETRY_STATUS, HTTPChatBackend
from agorabench.llm.retry import RetryableError, RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)
MODES = ("online", "batch")
WAITS = ("exit", "poll")
BATCH_KEYS = ("wait", "poll_s", "max_requests", "max_bytes", "max_resubmits")
# The providers' published batch discount (OpenAI Batch API, Anthropic Message Batches: 50% off), used
# when a price gives no `batch_discount` of its own.
BATCH_DISCOUNT = {"openai": 0.5, "anthropic": 0.5}


class BatchPending(AgoraBenchError):
    """Batches are still running; rerun later (the message names each batch and its status)."""


@dataclass
class Outcome:
    """One request's result in a finished batch: a completion, or a failure (retryable or not)."""

    id: str
    completion: Completion | None = None
    retryable: bool = False
    error: str = ""


class Provider(ABC):
    """One provider's batch wire format; `online` builds request bodies and parses replies."""

    name = ""
    max_requests = 0
    max_bytes = 0

    def __init__(self, online: HTTPChatBackend):
        self.online = online

    @abstractmethod
    def entry(self, req: Request) -> dict[str, Any]:
        """One request as a line of the batch input."""

    def upload(self, http: Http, part: str, data: bytes) -> str | None:
        """Upload the input file and return its id (None: the provider takes requests inline)."""
        return None

    @abstractmethod
    def create(self, http: Http, part: str, entries: list[dict], file_id: str | None) -> dict: ...

    @abstractmethod
    def find(self, http: Http, part: Part, claimed: set[str]) -> str | None:
        """The id of a batch made for `part` whose id the ledger missed (a kill right after create)."""

    @abstractmethod
    def retrieve(self, http: Http, batch_id: str) -> dict: ...

    @abstractmethod
    def ended(self, batch: dict) -> bool: ...

    @abstractmethod
    def describe(self, batch: dict) -> str:
        """Status and counts for the user."""

    @abstractmethod
    def results(self, http: Http, batch: dict) -> Iterator[Outcome]: ...

    @abstractmethod
    def cancel(self, http: Http, batch_id: str) -> dict: ...

    def completion(self, rid: str, body: Any, attempts: int, latency_s: float) -> Completion:
        """A 200 body parsed exactly as the online backend parses it."""
        text, reason, n_in, n_out, model = self.online.parse_body(body)
        logprobs = self.online.parse_logprobs(body)
        return Completion(
            id=rid, text=text, finish_reason=reason, input_tokens=n_in, output_tokens=n_out,
            latency_s=round(latency_s, 4), attempts=attempts, model=model or self.online.model,
            top_logprobs=logprobs,
        )  # fmt: skip


class Http:
    """Control-plane calls (upload, create, retrieve, download) with retries on transient errors."""

    def __init__(self, online: HTTPChatBackend, policy: RetryPolicy):
        key = online._api_key.reveal() if online._api_key else None
        self.online = online
        self.policy = policy
        self.client = httpx.Client(base_url=online.base_url, timeout=online.timeout_s,
                                   headers=online._headers(key))  # fmt: skip

    def call(self, method: str, url: str, **kw: Any) -> httpx.Response:
        import random

        rng, error = random.Random(), ""
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                resp = self.client.request(method, url, **kw)
            except httpx.TransportError as exc:
                error, retry_after = f"transport error: {type(exc).__name__}", None
            else:
                if resp.status_code < 300:
                    return resp
                error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code in FATAL_STATUS or not (
                    resp.status_code in RETRY_STATUS or resp.status_code >= 500
                ):
                    raise BackendError(self.online._scrub(f"{self.online.key}: {method} {url}: {error}"))
                retry_after = parse_retry_after(resp.headers)
            if attempt < self.policy.max_attempts:
                time.sleep(self.policy.delay(attempt, retry_after, rng))
        raise BackendError(self.online._scrub(f"{self.online.key}: {method} {url} gave up: {error}"))

    def json(self, method: str, url: str, **kw: Any) -> Any:
        try:
            return self.call(method, url, **kw).json()
        except ValueError as exc:
            raise BackendError(f"{self.online.key}: {method} {url}: malformed JSON ({exc})") from None

    def close(self) -> None:
        self.client.close()


@dataclass
class Part:
    """The requests of one batch and how far they got."""

    part: str
    ids: list[str]
    attempt: int = 1
    t: float = 0.0
    file_id: str | None = None
    batch_id: str | None = None
    collected: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class BatchLedger:
    """The append-only, fsynced record of every batch part (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.parts: dict[str, Part] = {}
        if self.path.exists():
            for row in _rows(self.path.read_bytes()):
                self._apply(row)

    def _apply(self, row: dict[str, Any]) -> None:
        ev, name = row.get("event"), row.get("part")
        if ev == "prepare":
            self.parts[name] = Part(name, list(row["ids"]), int(row.get("attempt", 1)), float(row["t"]))
        elif name in self.parts:
            p = self.parts[name]
            if ev == "upload":
                p.file_id = row["file_id"]
            elif ev == "submit":
                p.batch_id = row["batch_id"]
            elif ev == "collect":
                p.collected = True

    def append(self, **row: Any) -> None:
        """Write one event and force it to disk before anything else happens."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as fh:
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self._apply(row)

    def latest(self) -> dict[str, Part]:
        """Request id -> the last part that holds it."""
        out: dict[str, Part] = {}
        for p in self.parts.values():  # insertion order = ledger order
            for rid in p.ids:
                out[rid] = p
        return out

    def live(self) -> list[Part]:
        """Parts submitted (or maybe submitted) whose results are not all collected."""
        return [p for p in self.parts.values() if not p.collected]


def _rows(raw: bytes) -> Iterator[dict[str, Any]]:
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            return  # a torn final write: that step did not happen
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return
        if isinstance(row, dict):
            yield row


def ledger_path(store_path: str | Path) -> Path:
    """Where the batch ledger of a call store lives."""
    p = Path(store_path)
    return p.with_name(p.name + ".batches.jsonl")


def check_batch_options(opts: Any, key: str) -> dict[str, Any]:
    """The `batch:` mapping of a generator/judge, checked; unknown keys are errors naming them."""
    if opts is None:
        return {}
    if not isinstance(opts, dict):
        raise ConfigError(key, f"must be a mapping, got {type(opts).__name__}")
    for k in opts:
        if k not in BATCH_KEYS:
            raise ConfigError(f"{key}.{k}", f"unknown key (known: {', '.join(BATCH_KEYS)})")
    if opts.get("wait", "exit") not in WAITS:
        raise ConfigError(f"{key}.wait", f"must be one of {', '.join(WAITS)}, got {opts['wait']!r}")
    for k in ("poll_s", "max_requests", "max_bytes"):
        v = opts.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v <= 0):
            raise ConfigError(f"{key}.{k}", f"must be a number > 0, got {v!r}")
    v = opts.get("max_resubmits")
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
        raise ConfigError(f"{key}.max_resubmits", f"must be an integer >= 0, got {v!r}")
    return dict(opts)


class BatchBackend(Backend):
    """An online backend's requests, sent as provider batches (see the module docstring)."""

    mode = "batch"

    def __init__(
        self,
        provider: Provider,
        *,
        wait: str = "exit",
        poll_s: float = 60.0,
        max_requests: int | None = None,
        max_bytes: int | None = None,
        max_resubmits: int = 3,
        key: str = "backend",
    ):
        self.provider = provider
        self.online = provider.online
        self.name, self.model, self.key = self.online.name, self.online.model, key
        self.wait, self.poll_s, self.max_resubmits = wait, float(poll_s), max_resubmits
        self.max_requests = min(int(max_requests or provider.max_requests), provider.max_requests)
        self.max_bytes = min(int(max_bytes or provider.max_bytes), provider.max_bytes)
        self.ledger_file: Path | None = None
        self.batch_discount = BATCH_DISCOUNT.get(self.name, 0.0)

    def use_ledger(self, store_path: str | Path) -> None:
        """Keep the batch ledger next to the call store at `store_path` (callers do this first)."""
        self.ledger_file = ledger_path(store_path)

    def checkpoint(self, stage: str, part: Part) -> None:
        """Called after each durable step (tests kill the process here)."""

    # --- submitting -------------------------------------------------------------------------------
    def _split(self, requests: Sequence[Request]) -> Iterator[list[tuple[Request, bytes]]]:
        """Parts within the request and byte limits, in request order."""
        part: list[tuple[Request, bytes]] = []
        size = 0
        for req in requests:
            line = (json.dumps(self.provider.entry(req), ensure_ascii=False) + "\n").encode("utf-8")
            if len(line) > self.max_bytes:
                raise BackendError(f"{self.key}: request {req.id} is {len(line)} bytes, over max_bytes")
            if part and (len(part) >= self.max_requests or size + len(line) > self.max_bytes):
                yield part
                part, size = [], 0
            part.append((req, line))
            size += len(line)
        if part:
            yield part

    def _submit(
        self, http: Http, ledger: BatchLedger, lines: list[tuple[Request, bytes]], attempt: int
    ) -> Part:
        name = f"part-{uuid.uuid4().hex[:16]}"
        ledger.append(
            event="prepare", part=name, ids=[r.id for r, _ in lines], attempt=attempt, t=time.time()
        )
        part = ledger.parts[name]
        self.checkpoint("prepared", part)
        return self._send(http, ledger, part, {r.id: line for r, line in lines})

    def _send(self, http: Http, ledger: BatchLedger, part: Part, lines: dict[str, bytes]) -> Part:
        if part.file_id is None:
            file_id = self.provider.upload(http, part.part, b"".join(lines[i] for i in part.ids))
            if file_id is not None:
                ledger.append(event="upload", part=part.part, file_id=file_id)
                self.checkpoint("uploaded", part)
        entries = [json.loads(lines[i]) for i in part.ids]
        batch = self.provider.create(http, part.part, entries, part.file_id)
        self.checkpoint("created", part)  # the only window where a kill loses the id: find() covers it
        ledger.append(event="submit", part=part.part, batch_id=batch["id"], t=time.time())
        self.checkpoint("submitted", part)
        return part

    def _reattach(
        self, http: Http, ledger: BatchLedger, part: Part, by_id: dict[str, Request]
    ) -> Part | None:
        """A part prepared but with no recorded batch: find its batch, else send it now."""
        claimed = {p.batch_id for p in ledger.parts.values() if p.batch_id}
        found = self.provider.find(http, part, claimed)
        if found is not None:
            ledger.append(event="submit", part=part.part, batch_id=found, t=time.time(), found=True)
            return part
        if not all(i in by_id for i in part.ids):
            return None  # not asked for now; prepared again if ever needed
        lines = {r.id: line for r, line in next(iter(self._split([by_id[i] for i in part.ids])))}
        return self._send(http, ledger, part, lines) if len(lines) == len(part.ids) else None

    # --- running ----------------------------------------------------------------------------------
    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        if not requests:
            return iter(())
        if self.ledger_file is None:  # a caller that gives no call store: never a hidden second payment
            log.warning(
                "%s: this caller keeps no batch ledger; its %d calls run online", self.key, len(requests)
            )
            return self.online.complete(requests)
        no_logprobs = type(self.online).parse_logprobs is HTTPChatBackend.parse_logprobs
        if no_logprobs and any(r.top_logprobs for r in requests):
            raise BackendError(f"{self.key}: backend {self.name} returns no log-probabilities (top_logprobs)")
        return self._run(list(requests))

    def _run(self, requests: list[Request]) -> Iterator[Completion]:
        ledger = BatchLedger(self.ledger_file)  # type: ignore[arg-type]
        by_id = {r.id: r for r in requests}
        http = Http(self.online, self.online.policy)
        try:
            live = self._attach(http, ledger, by_id)
            waiting = set(by_id) - {i for p in live for i in p.ids}
            fresh = [r for r in requests if r.id in waiting]
            live += [self._submit(http, ledger, lines, 1) for lines in self._split(fresh)]
            yield from self._drain(http, ledger, live, by_id)
        finally:
            http.close()

    def _attach(self, http: Http, ledger: BatchLedger, by_id: dict[str, Request]) -> list[Part]:
        """The uncollected parts that hold requests asked for now (re-attached or sent)."""
        latest = ledger.latest()
        wanted = {latest[i].part for i in by_id if i in latest and not latest[i].collected}
        live = []
        for p in ledger.live():
            if p.part not in wanted:
                continue
            if p.batch_id is None:
                p = self._reattach(http, ledger, p, by_id)
            if p is not None:
                live.append(p)
        return live

    def _drain(
        self, http: Http, ledger: BatchLedger, live: list[Part], by_id: dict[str, Request]
    ) -> Iterator[Completion]:
        while live:
            status = {}
            for part in list(live):
                batch = self.provider.retrieve(http, part.batch_id)  # type: ignore[arg-type]
                if not self.provider.ended(batch):
                    status[part.batch_id] = self.provider.describe(batch)
                    self.checkpoint("polled", part)
                    continue
                live.remove(part)
                retry: list[Request] = []
                yield from self._collect(http, part, batch, by_id, retry, part.attempt <= self.max_resubmits)
                ledger.append(event="collect", part=part.part)
                if retry:
                    for lines in self._split(retry):
                        live.append(self._submit(http, ledger, lines, part.attempt + 1))
            if status and live:
                self._wait(status)

    def _wait(self, status: dict[str, str]) -> None:
        lines = "; ".join(f"{b}: {s}" for b, s in status.items())
        if self.wait == "exit":
            raise BatchPending(
                f"{self.key}: waiting for {len(status)} {self.name} batch(es) ({lines}); nothing is lost: "
                f"run snakemake again later to collect them (ledger {self.ledger_file})"
            )
        time.sleep(self.poll_s)

    def _collect(
        self, http: Http, part: Part, batch: dict, by_id: dict[str, Request], retry: list[Request],
        may_retry: bool,
    ) -> Iterator[Completion]:  # fmt: skip
        """Yield the part's results asked for now; put retryable failures into `retry`."""
        t0 = part.t
        seen: set[str] = set()
        for out in self.provider.results(http, batch):
            if out.id not in by_id or out.id in seen or out.id not in part.ids:
                continue
            seen.add(out.id)
            comp = out.completion
            if comp is not None:
                comp.attempts, comp.latency_s = part.attempt, round(time.time() - t0, 4)
                yield comp
            elif out.retryable and may_retry:
                retry.append(by_id[out.id])
            else:
                yield self._failed(out.id, out.error, part)
        why = f"batch {part.batch_id} ended ({self.provider.describe(batch)}) without a result"
        for rid in part.ids:
            if rid in by_id and rid not in seen:
                if may_retry:
                    retry.append(by_id[rid])
                else:
                    yield self._failed(rid, why, part)

    def _failed(self, rid: str, error: str, part: Part) -> Completion:
        return Completion(id=rid, text="", finish_reason="error", attempts=part.attempt, model=self.model,
                          error=self.online._scrub(f"batch {part.batch_id}: {error}"))  # fmt: skip

    # --- cancelling -------------------------------------------------------------------------------
    def cancel(self) -> list[str]:
        """Cancel every batch of the ledger whose results are not collected; their ids."""
        ledger = BatchLedger(self.ledger_file)  # type: ignore[arg-type]
        http = Http(self.online, self.online.policy)
        try:
            out = []
            for p in ledger.live():
                batch = self.provider.retrieve(http, p.batch_id) if p.batch_id else {}
                state = batch.get("status") or batch.get("processing_status")
                if p.batch_id and not self.provider.ended(batch) and state not in ("cancelling", "canceling"):
                    self.provider.cancel(http, p.batch_id)
                    out.append(p.batch_id)
            return out
        finally:
            http.close()

    def status(self) -> dict[str, str]:
        """Batch id -> status, for every batch of the ledger whose results are not collected."""
        ledger = BatchLedger(self.ledger_file)  # type: ignore[arg-type]
        http = Http(self.online, self.online.policy)
        try:
            live = [p.batch_id for p in ledger.live() if p.batch_id]
            return {b: self.provider.describe(self.provider.retrieve(http, b)) for b in live}
        finally:
            http.close()

    def close(self) -> None:
        self.online.close()

    def __repr__(self) -> str:
        return f"BatchBackend({self.online!r})"


def batch_price(price: dict[str, Any] | None, default: float = 0.0) -> dict[str, Any] | None:
    """The price of a batch call: per-Mtok prices times (1 - `batch_discount`, else `default`)."""
    if not price:
        return price
    d = price.get("batch_discount", default)
    if isinstance(d, bool) or not isinstance(d, int | float) or not 0 <= d < 1:
        raise ConfigError("price.batch_discount", f"must be a number in [0, 1), got {d!r}")
    scaled = {k: price[k] * (1 - d) for k in ("input_per_mtok", "output_per_mtok") if k in price}
    return price | scaled | {"batch_discount": d, "mode": "batch"}


def retryable_status(status: int) -> bool:
    return status in RETRY_STATUS or status >= 500


__all__ = ["BatchBackend", "BatchLedger", "BatchPending", "Outcome", "Part", "Provider", "RetryableError"]
