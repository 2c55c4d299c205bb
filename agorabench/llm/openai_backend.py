"""Remote chat backends over HTTP: the OpenAI-compatible chat-completions API (OpenAI, vLLM and
llama.cpp servers, any compatible endpoint) and the shared retry/limit machinery (see retry.py).

Each request gets at most `max_retries + 1` attempts. 429, 408, 409, 5xx, timeouts, connection errors
and truncated or malformed bodies are retried; a 400/413/422 ends that request at once; 401/403/404
mean the configuration is wrong and stop the whole run with BackendError. A request that never
succeeds comes back as a Completion with finish_reason "error" and `attempts` = attempts made.

The API key is read from the environment variable named in the config, is only ever placed in the
request header and is scrubbed from every error text.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from abc import abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx

from agorabench.errors import ConfigError
from agorabench.llm.base import Backend, BackendError, Completion, Request, TokenLogprobs, cut_at_stop
from agorabench.llm.retry import (
    RateLimiter,
    RetryableError,
    RetryPolicy,
    estimate_tokens,
    parse_retry_after,
    sync_iter,
)

# Models a provider has shut down -> (documented replacement, source). A retired model is never swapped
# silently: the "model not found" answer becomes an error naming the config key and the replacement.
RETIRED_MODELS: dict[str, tuple[str, str]] = {
    # the paper's judge (AlpacaEval 2.0 and Arena-Hard v0.1); replacement as in config/judges/README.md
    "gpt-4-1106-preview": ("gpt-4o-2024-08-06", "see config/judges/README.md"),
}
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
FATAL_STATUS = frozenset({401, 403, 404})


class _RequestFailed(Exception):
    """This request cannot succeed (e.g. HTTP 400); not retried."""


def _positive(value: Any, key: str, *, allow_none: bool, integer: bool = False) -> None:
    if value is None and allow_none:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise ConfigError(key, f"must be a {'positive integer' if integer else 'number > 0'}, got {value!r}")


class Secret:
    """Holds a key so that repr(), vars() and tracebacks of the backend never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"


def read_api_key(api_key_env: str | None, key: str, *, required: bool) -> Secret | None:
    """The key from the environment variable named by `api_key_env` (never from the config itself)."""
    if api_key_env is None:
        if required:
            raise ConfigError(
                f"{key}.api_key_env", "is required: name the environment variable holding the key"
            )
        return None
    if not isinstance(api_key_env, str) or not api_key_env.isidentifier():
        raise ConfigError(f"{key}.api_key_env", "must be the NAME of an environment variable, not a key")
    value = os.environ.get(api_key_env)
    if not value:
        raise ConfigError(f"{key}.api_key_env", f"environment variable {api_key_env} is not set")
    return Secret(value)


def resolve_base_url(base_url: str | None, base_url_env: str | None, default: str, key: str) -> str:
    """`base_url`, or the URL in the environment variable `base_url_env`, or the provider's default."""
    if base_url is not None and base_url_env is not None:
        raise ConfigError(f"{key}.base_url_env", "give base_url or base_url_env, not both")
    if base_url_env is None:
        return default if base_url is None else base_url
    if not isinstance(base_url_env, str) or not base_url_env.isidentifier():
        raise ConfigError(f"{key}.base_url_env", "must be the NAME of an environment variable")
    value = os.environ.get(base_url_env)
    if not value:
        raise ConfigError(f"{key}.base_url_env", f"environment variable {base_url_env} is not set")
    return value


class HTTPChatBackend(Backend):
    """Concurrency, rate limits, retries and the async->sync bridge; subclasses map requests/replies."""

    path = ""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str | None,
        api_key_required: bool,
        concurrency: int = 8,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        extra_body: dict[str, Any] | None = None,
        key: str = "backend",
    ):
        _check_limits(key, model, concurrency, requests_per_minute, tokens_per_minute, timeout_s, max_retries)
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{key}.base_url", f"must be an http(s) URL, got {base_url!r}")
        if extra_body is not None and not isinstance(extra_body, dict):
            raise ConfigError(f"{key}.extra_body", "must be a mapping")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.key = key
        self.api_key_env = api_key_env
        self._api_key = read_api_key(api_key_env, key, required=api_key_required)
        self.concurrency = concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.timeout_s = timeout_s
        self.policy = RetryPolicy(max_attempts=max_retries + 1, base_s=backoff_base_s, max_s=backoff_max_s)
        self.extra_body = dict(extra_body or {})
        self._rng = random.Random()

    # --- what subclasses define -------------------------------------------------------------------
    @abstractmethod
    def _headers(self, api_key: str | None) -> dict[str, str]:
        """HTTP headers, the key included (built only inside a run, never stored)."""

    @abstractmethod
    def build_body(self, request: Request) -> dict[str, Any]: ...

    @abstractmethod
    def parse_body(self, data: Any) -> tuple[str, str, int, int, str]:
        """(text, finish_reason, input_tokens, output_tokens, model) from a decoded 200 body."""

    def parse_logprobs(self, data: Any) -> list[TokenLogprobs] | None:
        """Per generated token, the top tokens' log-probabilities (None: the API gives none)."""
        return None

    # --- running ------------------------------------------------------------------------------------
    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        if not requests:
            return iter(())
        return sync_iter(lambda: self._run(list(requests)))

    async def _run(self, requests: list[Request]) -> AsyncIterator[Completion]:
        limiter = RateLimiter(self.requests_per_minute, self.tokens_per_minute)
        todo = deque(requests)
        results: asyncio.Queue = asyncio.Queue()
        # A slot is held from sending a request until its result has been consumed (stored) downstream,
        # so at most `concurrency` calls are ever paid for but not yet stored (what a kill can lose).
        slots = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        headers = self._headers(self._api_key.reveal() if self._api_key else None)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout_s, limits=limits, headers=headers
        ) as client:

            async def worker() -> None:
                try:
                    while todo:
                        await slots.acquire()
                        if not todo:
                            slots.release()
                            return
                        req = todo.popleft()
                        await results.put(await self._one(client, limiter, req))
                except Exception as exc:  # a fatal error ends the run
                    await results.put(exc)

            workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(requests)))]
            try:
                for _ in range(len(requests)):
                    item = await results.get()
                    if isinstance(item, Exception):
                        raise item
                    yield item  # resumes once the consumer has taken it (see sync_iter)
                    slots.release()
            finally:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    async def _one(self, client: httpx.AsyncClient, limiter: RateLimiter, req: Request) -> Completion:
        body = self.build_body(req)
        if req.top_logprobs and type(self).parse_logprobs is HTTPChatBackend.parse_logprobs:
            raise BackendError(f"{self.key}: backend {self.name} returns no log-probabilities (top_logprobs)")
        tokens = estimate_tokens(req.messages, req.sampling.max_tokens)
        t0 = time.monotonic()
        error = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            await limiter.acquire(tokens)
            try:
                (text, reason, n_in, n_out, model), logprobs = await self._attempt(client, body)
            except RetryableError as exc:
                error = self._scrub(str(exc))
                if exc.retry_after is not None:
                    limiter.pause(min(exc.retry_after, self.policy.retry_after_cap_s))
                if attempt < self.policy.max_attempts:
                    await asyncio.sleep(self.policy.delay(attempt, exc.retry_after, self._rng))
                continue
            except _RequestFailed as exc:
                return self._error(req, self._scrub(str(exc)), attempt, t0)
            text, stopped = cut_at_stop(text, req.sampling.stop)
            return Completion(
                id=req.id, text=text, finish_reason="stop" if stopped else reason, input_tokens=n_in,
                output_tokens=n_out, latency_s=round(time.monotonic() - t0, 4), attempts=attempt,
                model=model or self.model, top_logprobs=logprobs if req.top_logprobs else None,
            )  # fmt: skip
        return self._error(req, f"gave up after {self.policy.max_attempts} attempts: {error}", attempt, t0)

    def _error(self, req: Request, message: str, attempts: int, t0: float) -> Completion:
        return Completion(
            id=req.id, text="", finish_reason="error", latency_s=round(time.monotonic() - t0, 4),
            attempts=attempts, model=self.model, error=message,
        )  # fmt: skip

    async def _attempt(
        self, client: httpx.AsyncClient, body: dict[str, Any]
    ) -> tuple[tuple[str, str, int, int, str], list[TokenLogprobs] | None]:
        try:
            resp = await client.post(self.path, json=body)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timeout after {self.timeout_s}s ({type(exc).__name__})") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:  # refused/reset, truncated, protocol
            raise RetryableError(f"transport error: {type(exc).__name__}: {exc}") from None
        status = resp.status_code
        if status == 200:
            try:
                data = resp.json()
                return self.parse_body(data), self.parse_logprobs(data)
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                raise RetryableError(f"malformed response body ({type(exc).__name__}: {exc})") from None
        snippet = resp.text[:300]
        if status in RETRY_STATUS or status >= 500:
            raise RetryableError(f"HTTP {status}: {snippet}", parse_retry_after(resp.headers))
        if status == 404 and _model_not_found(snippet):
            raise BackendError(self._scrub(self._retired_message(snippet)))
        if status in FATAL_STATUS:
            hint = f"check {self.key}.api_key_env / model / base_url"
            raise BackendError(
                self._scrub(f"{self.key}: HTTP {status} from {self.base_url}: {snippet} ({hint})")
            )
        raise _RequestFailed(f"HTTP {status}: {snippet}")

    def _retired_message(self, snippet: str) -> str:
        """A provider's "model not found": name the config key and the documented replacement, if any."""
        where = f"{self.key}.model"
        hint = RETIRED_MODELS.get(self.model)
        advice = (
            f"{self.model} was retired ({hint[1]}); the documented replacement is {hint[0]!r}: set "
            f"{where} to it yourself (scores then differ from the paper's judge; docs/fidelity.md)"
            if hint
            else f"check {where}"
        )
        return f"{where}: {self.base_url} does not serve model {self.model!r} (HTTP 404: {snippet}); {advice}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key.reveal(), "[REDACTED]") if self._api_key else text


class OpenAIBackend(HTTPChatBackend):
    """OpenAI-compatible `POST {base_url}/chat/completions`."""

    name = "openai"
    path = "/chat/completions"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        base_url_env: str | None = None,
        api_key_env: str | None = None,
        max_tokens_param: str = "max_tokens",
        key: str = "backend",
        **limits: Any,
    ):
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError(f"{key}.max_tokens_param", "must be 'max_tokens' or 'max_completion_tokens'")
        self.max_tokens_param = max_tokens_param
        base_url = resolve_base_url(base_url, base_url_env, "https://api.openai.com/v1", key)
        # api.openai.com needs a key; a local server (vLLM, llama.cpp) may not.
        required = "api.openai.com" in base_url
        super().__init__(base_url=base_url, model=model, api_key_env=api_key_env, api_key_required=required,
                         key=key, **limits)  # fmt: skip

    def _headers(self, api_key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def build_body(self, request: Request) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "temperature": s.temperature,
            "top_p": s.top_p,
            self.max_tokens_param: s.max_tokens,
        }
        if s.stop:
            body["stop"] = list(s.stop)
        if s.seed is not None:
            body["seed"] = s.seed
        if s.repetition_penalty is not None:  # vLLM's extension; api.openai.com rejects it
            body["repetition_penalty"] = s.repetition_penalty
        if request.top_logprobs:
            body |= {"logprobs": True, "top_logprobs": request.top_logprobs}
        return body | self.extra_body

    def parse_body(self, data: Any) -> tuple[str, str, int, int, str]:
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        if not isinstance(text, str):
            raise TypeError("message.content is not a string")
        reason = choice.get("finish_reason") or "stop"  # "stop", "length", or e.g. "content_filter"
        usage = data.get("usage") or {}
        n_in, n_out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        return text, reason, n_in, n_out, str(data.get("model", ""))

    def parse_logprobs(self, data: Any) -> list[TokenLogprobs] | None:
        """`choices[0].logprobs.content[*].top_logprobs` (OpenAI, vLLM and llama.cpp servers)."""
        content = (data["choices"][0].get("logprobs") or {}).get("content")
        if content is None:
            return None
        out = []
        for tok in content:
            tops = {t["token"]: float(t["logprob"]) for t in tok.get("top_logprobs") or ()}
            out.append({tok["token"]: float(tok["logprob"])} | tops)
        return out


def _model_not_found(body: str) -> bool:
    """Whether an HTTP 404 body is the provider's unknown/retired-model answer (OpenAI, Anthropic)."""
    text = body.lower()
    return "model_not_found" in text or (
        "model" in text and ("does not exist" in text or "not_found" in text)
    )


def _check_limits(
    key: str,
    model: str,
    concurrency: int,
    requests_per_minute: float | None,
    tokens_per_minute: float | None,
    timeout_s: float,
    max_retries: int,
) -> None:
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{key}.model", f"must be a non-empty model name, got {model!r}")
    _positive(concurrency, f"{key}.concurrency", allow_none=False, integer=True)
    _positive(requests_per_minute, f"{key}.requests_per_minute", allow_none=True)
    _positive(tokens_per_minute, f"{key}.tokens_per_minute", allow_none=True)
    _positive(timeout_s, f"{key}.timeout_s", allow_none=False)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"{key}.max_retries", f"must be an integer >= 0, got {max_retries!r}")
