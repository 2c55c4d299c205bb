"""Build a backend from a config mapping (a `generators.<name>` or judge/student entry).

    backend: transformers   model_dir, dtype, batch_size, device, num_threads, model, chat_template
    backend: openai         model, base_url | base_url_env, api_key_env, concurrency, requests_per_minute,
                            tokens_per_minute, timeout_s, max_retries, backoff_base_s, backoff_max_s,
                            extra_body, max_tokens_param, mode (online | batch), batch (docs/batch.md)
    backend: anthropic      model, base_url | base_url_env, api_key_env, concurrency, requests_per_minute,
                            tokens_per_minute, timeout_s, max_retries, backoff_base_s, backoff_max_s,
                            extra_body
    backend: vllm           model_dir, tensor_parallel_size, dtype, max_model_len,
                            gpu_memory_utilization, seed, enforce_eager, batch_size, model

Keys named in `ignore_keys` (by default non-backend ones: `label`, `price`, `sampling`...) are allowed and
skipped; any other unknown key is an error naming it, so a typo never silently changes a run.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError
from agorabench.llm.base import Backend, Completion, Request

BACKENDS = ("transformers", "openai", "anthropic", "vllm")
LOCAL_BACKENDS = ("transformers", "vllm")  # a model this machine loads (the rest are API clients)
# Keys of a generator entry that the workflow reads, not the backend (generation_seed / replicate_of: which
# pools; the generation rule's params carry the seed).
NON_BACKEND_KEYS = frozenset(
    {
        "label",
        "notes",
        "price",
        "prices",
        "cost",
        "description",
        "sampling",
        "generation_seed",
        "replicate_of",
    }
)
_LIMIT_KEYS = (
    "concurrency", "requests_per_minute", "tokens_per_minute", "timeout_s", "max_retries",
    "backoff_base_s", "backoff_max_s", "extra_body",
)  # fmt: skip
_REQUIRED = {
    "transformers": ("model_dir",),
    "openai": ("model",),
    "anthropic": ("model",),
    "vllm": ("model_dir",),
}


def _backend_class(kind: str) -> type[Backend]:
    # Imported on demand: torch, httpx and vllm are only loaded for the backend in use.
    if kind == "transformers":
        from agorabench.llm.transformers_backend import TransformersBackend

        return TransformersBackend
    if kind == "openai":
        from agorabench.llm.openai_backend import OpenAIBackend

        return OpenAIBackend
    if kind == "anthropic":
        from agorabench.llm.anthropic_backend import AnthropicBackend

        return AnthropicBackend
    from agorabench.llm.vllm_backend import VLLMBackend

    return VLLMBackend


def allowed_keys(kind: str) -> set[str]:
    """The spec keys a backend takes (besides `backend`)."""
    params = inspect.signature(_backend_class(kind).__init__).parameters
    keys = {n for n, p in params.items() if n not in ("self", "key") and p.kind is not p.VAR_KEYWORD}
    if kind in ("openai", "anthropic"):
        keys |= set(_LIMIT_KEYS)
    return keys


def make_backend(
    spec: dict[str, Any],
    *,
    key: str = "generators.<name>",
    ignore_keys: Collection[str] = NON_BACKEND_KEYS,
) -> Backend:
    """A ready backend for `spec`; a bad spec raises ConfigError naming `key` and the bad field."""
    kind, args = _checked(spec, key, ignore_keys)
    mode = spec.get("mode", "online")
    if mode == "online" and "batch" not in spec:
        backend = _backend_class(kind)(**args, key=key)
    else:
        from agorabench.llm.batch_factory import make_batch_backend  # batch mode (docs/batch.md)

        backend = make_batch_backend(
            lambda: _backend_class(kind)(**args, key=key), kind, mode, spec.get("batch"), key
        )
    backend.price = spec.get("price")  # the dollars a progress bar shows (agorabench/progress.py)
    return backend


def _checked(spec: dict[str, Any], key: str, ignore_keys: Collection[str]) -> tuple[str, dict[str, Any]]:
    """The backend kind and its constructor's arguments; ConfigError for a bad spec."""
    if not isinstance(spec, dict):
        raise ConfigError(key, f"must be a mapping, got {type(spec).__name__}")
    kind = spec.get("backend")
    if kind not in BACKENDS:
        raise ConfigError(f"{key}.backend", f"must be one of {', '.join(BACKENDS)}, got {kind!r}")
    args = {k: v for k, v in spec.items() if k not in ("backend", "mode", "batch") and k not in ignore_keys}
    allowed = allowed_keys(kind)
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}", f"unknown key for backend {kind} (known: {', '.join(sorted(allowed))})"
        )
    for name in _REQUIRED[kind]:
        if args.get(name) in (None, ""):
            raise ConfigError(f"{key}.{name}", f"is required for backend {kind}")
    return kind, args


class LazyBackend(Backend):
    """A local model's backend, built at its first call: a job whose requests are all in its call store
    (a resumed job, or pools a job of all of a generator's settings has filled) loads no model."""

    def __init__(self, spec: dict[str, Any], key: str):
        kind, _ = _checked(spec, key, NON_BACKEND_KEYS)  # a bad spec fails now, not at the first call
        # the model name the backend will report (its requests' ids may depend on it)
        self.model = str(spec.get("model") or Path(str(spec.get("model_dir", ""))).name)
        self.name, self.price = kind, spec.get("price")
        self._spec, self._key, self._built = dict(spec), key, None

    @property
    def built(self) -> bool:
        return self._built is not None

    def _backend(self) -> Backend:
        if self._built is None:
            self._built = make_backend(self._spec, key=self._key)
        return self._built

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        return self._backend().complete(requests)

    def close(self) -> None:
        if self._built is not None:
            self._built.close()


def backend_for_stores(spec: dict[str, Any], *, key: str) -> Backend:
    """The backend of a job that goes through call stores: a local model (online) is built lazily
    (`LazyBackend`), an API client (cheap, and in batch mode stateful) at once."""
    local = isinstance(spec, dict) and spec.get("backend") in LOCAL_BACKENDS
    online = isinstance(spec, dict) and spec.get("mode", "online") == "online" and "batch" not in spec
    return LazyBackend(spec, key) if local and online else make_backend(spec, key=key)
