"""The scorer interface: a Score in the format of docs/formats.md, matching predictions to items, a registry.

A scorer kind registers itself with the `@register` decorator in `scorers/<kind>.py`; `get_scorer(kind)`
imports that module when the kind is not registered yet and returns an instance.
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agorabench.errors import ConfigError, DataError

Z_95 = 1.959963984540054


@dataclass
class Score:
    """One model's score on one benchmark; `value` is in percent (0-100)."""

    kind: str
    metric: str
    value: float | None  # None: undefined (e.g. no judge verdict parsed)
    n: int
    ci: tuple[float, float] | None
    counts: dict[str, int]
    settings: dict[str, Any]
    secondary: dict[str, Any] = field(default_factory=dict)
    per_item: list[dict[str, Any]] = field(default_factory=list)  # id, correct/passed, answer or error

    def to_dict(self, model: str, benchmark: str) -> dict[str, Any]:
        """The score.json record (docs/formats.md); `per_item` is kept out (write it separately)."""
        return {
            "model": model,
            "benchmark": benchmark,
            "kind": self.kind,
            "metric": self.metric,
            "value": self.value,
            "n": self.n,
            "ci": list(self.ci) if self.ci is not None else None,
            "counts": dict(self.counts),
            "settings": dict(self.settings),
            "secondary": dict(self.secondary),
        }


class Scorer(ABC):
    kind: str = ""
    version: str  # each kind's own (a rule param): bumped when a change to the scorer moves numbers

    @abstractmethod
    def score(
        self,
        items: list[dict[str, Any]],
        predictions: list[dict[str, Any]],
        *,
        source: str = "predictions",
        **settings: Any,
    ) -> Score:
        """Score predictions against benchmark items; `source` names the predictions in errors."""


_REGISTRY: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: `@register` on a Scorer subclass with a `kind` makes it available."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} has no `kind`")
    _REGISTRY[cls.kind] = cls
    return cls


def get_scorer(kind: str) -> Scorer:
    """The scorer registered for `kind` (importing `scorers/<kind>.py` when it is not registered yet)."""
    importlib.import_module("agorabench.evaluation.scorers")  # runs the package's @register lines
    if kind not in _REGISTRY and kind.isidentifier():
        module = f"agorabench.evaluation.scorers.{kind}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    if kind not in _REGISTRY:
        raise ConfigError("scorer", f"unknown scorer kind {kind!r} (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[kind]()


def scorer_kinds() -> list[str]:
    importlib.import_module("agorabench.evaluation.scorers")
    return sorted(_REGISTRY)


def match_predictions(
    items: Sequence[dict[str, Any]],
    predictions: Sequence[dict[str, Any]],
    source: str,
    items_source: str = "benchmark items",
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Pair every item with its prediction by `id` (None where it has none), in item order.

    Raises DataError for an item or prediction without a string id, duplicate ids, and predictions whose
    id is not an item: they mean the predictions belong to another benchmark or run.
    """
    if not items:
        raise DataError(items_source, "no benchmark items to score")
    by_item = _index(items, items_source, "item")
    by_pred = _index(predictions, source, "prediction")
    unknown = [pid for pid in by_pred if pid not in by_item]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise DataError(source, f"prediction id is not an item of the benchmark{more}", record=unknown[0])
    return [(item, by_pred.get(item_id)) for item_id, item in by_item.items()]


def _index(records: Sequence[dict[str, Any]], source: str, what: str) -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise DataError(source, f"{what} is not an object", line=number)
        rid = record.get("id")
        if not isinstance(rid, str) or not rid:
            raise DataError(source, f"{what} has no string 'id'", line=number)
        if rid in index:
            raise DataError(source, f"duplicate {what} id", line=number, record=rid)
        index[rid] = record
    return index


def require_str(record: dict[str, Any], key: str, source: str, nullable: bool = False) -> str | None:
    """record[key] as a string; a missing key or another type raises DataError naming the record."""
    value = record.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        got = "missing" if key not in record else f"a {type(value).__name__}"
        raise DataError(source, f"field '{key}' must be a string, is {got}", record=record.get("id"))
    return value


def resolve_settings(
    kind: str, defaults: dict[str, Any], given: dict[str, Any], checks: dict[str, Callable[[Any], bool]]
) -> dict[str, Any]:
    """Defaults updated by `given`; an unknown key or a value failing its check raises ConfigError."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"{kind}.{unknown[0]}", f"unknown setting (known: {', '.join(sorted(defaults))})")
    settings = {**defaults, **given}
    for key, check in checks.items():
        if not check(settings[key]):
            raise ConfigError(f"{kind}.{key}", f"bad value {settings[key]!r}")
    return settings


def mean_ci(values: Sequence[float]) -> tuple[float, float] | None:
    """95% interval in percent for a mean of per-item scores in [0, 1]: Wilson for 0/1 scores, else normal."""
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    if all(v in (0, 1) for v in values):
        denom = 1 + Z_95**2 / n
        centre = (mean + Z_95**2 / (2 * n)) / denom
        half = Z_95 * math.sqrt(mean * (1 - mean) / n + Z_95**2 / (4 * n * n)) / denom
    else:
        var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        centre, half = mean, Z_95 * math.sqrt(var / n)
    return round(max(0.0, centre - half) * 100, 4), round(min(1.0, centre + half) * 100, 4)


def percent(values: Sequence[float]) -> float:
    return round(100 * sum(values) / len(values), 4) if values else 0.0
