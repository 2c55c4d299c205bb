"""Retries, backoff and rate limits for remote backends, plus the async -> sync iterator bridge.

- `RetryPolicy`: a hard cap on attempts per request and exponential backoff with full jitter
  (sleep ~ U(0, min(max_s, base_s * 2**(attempt-1)))); a server's Retry-After wins when given.
- `RateLimiter`: token buckets for requests/min and tokens/min (1 s of burst; a large request runs
  the bucket into debt, so the long-run rate is exact) and a shared pause after a 429.
- `sync_iter`: runs an async generator on its own event loop in a thread and yields its items.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import queue
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class RetryableError(Exception):
    """A failed attempt worth retrying (429, 5xx, timeout, broken or malformed response)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_s: float = 1.0
    max_s: float = 60.0
    retry_after_cap_s: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap_s)
        return rng.uniform(0.0, min(self.max_s, self.base_s * 2 ** (attempt - 1)))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms`, or `retry-after` (seconds or an HTTP date); None if absent/bad."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def estimate_tokens(messages: Sequence[Mapping[str, str]], max_tokens: int) -> int:
    """What a provider's rate limiter charges up front: ~4 characters per prompt token + max_tokens."""
    chars = sum(len(str(m.get("content", ""))) + 8 for m in messages)
    return math.ceil(chars / 4) + max_tokens


class _Bucket:
    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.capacity = max(self.rate, 1.0)  # one second of burst
        self.level = self.capacity
        self.t = time.monotonic()

    def wait_s(self) -> float:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.t) * self.rate)
        self.t = now
        return 0.0 if self.level > 0 else -self.level / self.rate + 1e-3


class RateLimiter:
    """Admits attempts under requests/min and tokens/min limits (None = unlimited)."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None):
        self._requests = _Bucket(requests_per_minute) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute) if tokens_per_minute else None
        self._pause_until = 0.0
        self._lock: asyncio.Lock | None = None

    def pause(self, seconds: float) -> None:
        """Hold every new attempt for `seconds` (a 429 with Retry-After applies to the whole key)."""
        self._pause_until = max(self._pause_until, time.monotonic() + seconds)

    async def acquire(self, tokens: int) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # FIFO: waiters are served in arrival order
            while True:
                wait = max(
                    self._pause_until - time.monotonic(),
                    self._requests.wait_s() if self._requests else 0.0,
                    self._tokens.wait_s() if self._tokens else 0.0,
                )
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self._requests:
                self._requests.level -= 1
            if self._tokens:
                self._tokens.level -= tokens


_DONE = object()


def sync_iter(make: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
    """Iterate an async generator from sync code; closing the iterator cancels the async work.

    The async generator is resumed only after the consumer has finished with the previous item (asked
    for the next one), so a producer that counts its yields knows what has really been consumed.
    """
    items: queue.Queue = queue.Queue()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def pump() -> None:
        holder["acked"] = acked = asyncio.Event()
        started.set()
        try:
            async for item in make():
                items.put((True, item))
                await acked.wait()
                acked.clear()
            items.put((True, _DONE))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer thread
            items.put((False, exc))

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["task"] = loop.create_task(pump())
        try:
            loop.run_until_complete(holder["task"])
        except asyncio.CancelledError:
            pass
        finally:
            started.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="agorabench-async", daemon=True)
    thread.start()
    started.wait()
    try:
        while True:
            ok, item = items.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
            loop.call_soon_threadsafe(holder["acked"].set)
    finally:
        with contextlib.suppress(RuntimeError):  # RuntimeError: the loop already finished and closed
            loop.call_soon_threadsafe(holder["task"].cancel)
        thread.join()
