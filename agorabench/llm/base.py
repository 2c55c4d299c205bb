"""The generation-backend interface.

A backend turns chat requests into completions. Callers give every request a stable id derived from
its content (see `request_id`), so that a durable store can skip requests already paid for.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from types import SimpleNamespace
from typing import Any

from agorabench.errors import AgoraBenchError, ConfigError

FINISH_REASONS = ("stop", "length", "error")
MAX_TOP_LOGPROBS = 20  # OpenAI's limit


class BackendError(AgoraBenchError):
    """A backend cannot go on (bad key, unknown model, missing package); never carries a secret."""


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()
    seed: int | None = None
    repetition_penalty: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str | list):  # accept "x" or ["x", "y"] as well as a tuple
            object.__setattr__(self, "stop", (self.stop,) if isinstance(self.stop, str) else tuple(self.stop))
        problem = _sampling_problem(self)
        if problem:
            raise ConfigError(f"sampling.{problem[0]}", problem[1])

    @classmethod
    def from_config(cls, cfg: dict[str, Any], key: str = "sampling") -> Sampling:
        """Build from a config mapping; unknown or bad keys raise ConfigError naming `key`."""
        if not isinstance(cfg, dict):
            raise ConfigError(key, f"must be a mapping, got {type(cfg).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(
                f"{key}.{unknown[0]}", f"unknown sampling key (known: {', '.join(sorted(known))})"
            )
        cfg = dict(cfg)
        stop = cfg.get("stop", ())
        cfg["stop"] = (stop,) if isinstance(stop, str) else tuple(stop or ())
        problem = _sampling_problem(SimpleNamespace(**{f.name: f.default for f in fields(cls)} | cfg))
        if problem:
            raise ConfigError(f"{key}.{problem[0]}", problem[1])
        return cls(**cfg)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _sampling_problem(s: Any) -> tuple[str, str] | None:
    """The first bad field of a sampling object as (field, reason), else None."""
    if not isinstance(s.temperature, int | float) or s.temperature < 0:
        return "temperature", f"must be a number >= 0, got {s.temperature!r}"
    if not isinstance(s.top_p, int | float) or not 0 < s.top_p <= 1:
        return "top_p", f"must be in (0, 1], got {s.top_p!r}"
    if not _is_int(s.max_tokens) or s.max_tokens < 1:
        return "max_tokens", f"must be an integer >= 1, got {s.max_tokens!r}"
    if not isinstance(s.stop, tuple) or not all(isinstance(x, str) and x for x in s.stop):
        return "stop", f"must be a list of non-empty strings, got {s.stop!r}"
    if s.seed is not None and not _is_int(s.seed):
        return "seed", f"must be an integer or null, got {s.seed!r}"
    rp = s.repetition_penalty
    if rp is not None and (not isinstance(rp, int | float) or rp <= 0):
        return "repetition_penalty", f"must be a number > 0 or null, got {rp!r}"
    return None


@dataclass(frozen=True)
class Request:
    id: str
    messages: tuple[dict[str, str], ...]
    sampling: Sampling
    # Free-form context kept with the stored result (e.g. setting, index); never sent to the model.
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # How many of the most likely tokens, with their log-probabilities, to return for each generated
    # token (OpenAI's `top_logprobs`); 0 returns none. Not part of Sampling: it changes no text.
    top_logprobs: int = 0

    def __post_init__(self) -> None:
        if not _is_int(self.top_logprobs) or not 0 <= self.top_logprobs <= MAX_TOP_LOGPROBS:
            raise ConfigError(
                "top_logprobs", f"must be an integer in [0, {MAX_TOP_LOGPROBS}], got {self.top_logprobs!r}"
            )


# Per generated token: the most likely tokens' texts -> natural-log probabilities (the chosen one included).
TokenLogprobs = dict[str, float]


@dataclass
class Completion:
    id: str
    text: str
    finish_reason: str  # "stop" | "length" | "error"
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    model: str = ""
    error: str | None = None
    top_logprobs: list[TokenLogprobs] | None = None  # one entry per generated token, when requested

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Completion:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def request_id(*parts: Any) -> str:
    """A stable id from the parts that define a request (e.g. generator, setting, index, prompt)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string (excluded, as the OpenAI API does); True if one was found."""
    hits = [i for i in (text.find(s) for s in stop) if i >= 0]
    if not hits:
        return text, False
    return text[: min(hits)], True


class Backend(ABC):
    """Turns requests into completions, yielding each as soon as it is finished (any order)."""

    name: str = "backend"
    model: str = ""
    price: dict[str, Any] | None = None  # the config entry's `price` ($ per Mtok), set by make_backend

    @abstractmethod
    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release servers, engines or connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows keys or headers
        return f"{type(self).__name__}(model={self.model!r})"
