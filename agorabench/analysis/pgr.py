"""Performance Gap Recovered (PGR): scores of students, base model S0 and reference S_ref -> PGR tables.

PGR per benchmark = (S_student - S0) / (S_ref - S0) x 100; the PGR of a domain is the mean of its
benchmarks' PGRs. Where |S_ref - S0| < eps the PGR is undefined: it is reported as missing (NaN in frames,
None from `pgr`, "n/a" in printed tables) with a warning naming the benchmark.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import read_json

DOMAINS: tuple[str, ...] = ("math", "code", "instruction_following")
METHODS: tuple[str, ...] = ("instance_generation", "response_generation", "quality_enhancement")
BENCHMARK_DOMAINS: dict[str, str] = {
    "gsm8k": "math",
    "math": "math",
    "mbpp": "code",
    "humaneval": "code",
    "alpaca_eval": "instruction_following",
    "arena_hard": "instruction_following",
}
STUDENT_KEYS: tuple[str, ...] = ("model", "generator", "domain", "method", "variant", "size")
SCORE_KEYS: tuple[str, ...] = ("model", "benchmark", "metric", "value", "n")
SCORE_COLUMNS: list[str] = ["model", "benchmark", "kind", "metric", "value", "n", "path"]
DOMAIN_LEVEL = "domain"
BENCHMARK_LEVEL = "benchmark"
DOMAIN_ROW_BENCHMARK = "mean"  # `benchmark` value of the domain-level rows


class UndefinedPGRWarning(UserWarning):
    """A PGR could not be computed (gap |S_ref - S0| below eps, or a benchmark PGR missing)."""


def pgr(student: float, base: float, reference: float, eps: float = 1e-6, *, label: str = "") -> float | None:
    """PGR in percent; None (with an UndefinedPGRWarning naming `label`) where |reference - base| < eps."""
    values = (student, base, reference)
    if not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values):
        raise ValueError(
            f"PGR{f' for {label}' if label else ''}: scores must be finite numbers, got {values}"
        )
    gap = reference - base
    if abs(gap) < eps:
        where = f" for {label}" if label else ""
        warnings.warn(
            f"PGR undefined{where}: |S_ref - S0| = {abs(gap):.3g} < eps = {eps:g} "
            f"(S0 = {base}, S_ref = {reference})",
            UndefinedPGRWarning,
            stacklevel=2,
        )
        return None
    return (student - base) / gap * 100.0


def _score_record(path: Path) -> dict[str, Any]:
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in SCORE_KEYS if k not in obj]
    if missing:
        raise DataError(path, f"missing key(s) {', '.join(missing)}")
    for key in ("model", "benchmark", "metric"):
        if not isinstance(obj[key], str) or not obj[key]:
            raise DataError(path, f"key '{key}' must be a non-empty string, got {obj[key]!r}")
    value = obj["value"]
    if value is None:  # an undefined score (e.g. no judge verdict could be parsed): PGR becomes n/a
        return {**{c: obj.get(c) for c in SCORE_COLUMNS[:-1]}, "value": math.nan, "path": str(path)}
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataError(path, f"key 'value' must be a finite number (percent), got {value!r}")
    if not 0.0 <= value <= 100.0:
        raise DataError(path, f"key 'value' must be a percentage in [0, 100], got {value}")
    return {**{c: obj.get(c) for c in SCORE_COLUMNS[:-1]}, "value": float(value), "path": str(path)}


def collect_scores(score_paths: Sequence[str | Path]) -> pd.DataFrame:
    """Read score.json files (docs/formats.md) into a frame: model, benchmark, kind, metric, value, n,
    path. A malformed file or a duplicate (model, benchmark) raises DataError naming the file."""
    rows = [_score_record(Path(p)) for p in score_paths]
    seen: dict[tuple[str, str], str] = {}
    for row in rows:
        key = (row["model"], row["benchmark"])
        if key in seen:
            raise DataError(
                row["path"],
                f"duplicate score for model {key[0]!r}, benchmark {key[1]!r}",
                record=f"also in {seen[key]}",
            )
        seen[key] = row["path"]
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def _check_students(students: Sequence[Mapping[str, Any]], benchmarks: Mapping[str, str]) -> None:
    domains = set(benchmarks.values())
    for i, student in enumerate(students):
        missing = [k for k in STUDENT_KEYS if k not in student]
        if missing:
            raise ConfigError(f"students[{i}]", f"missing key(s) {', '.join(missing)}")
        if student["domain"] not in domains:
            raise ConfigError(
                f"students[{i}].domain",
                f"{student['domain']!r} has no benchmark (known domains: {sorted(domains)})",
            )


def _score_lookup(scores: pd.DataFrame) -> dict[tuple[str, str], float]:
    missing = [c for c in ("model", "benchmark", "value") if c not in scores.columns]
    if missing:
        raise DataError("scores", f"score frame lacks column(s) {', '.join(missing)}")
    lookup: dict[tuple[str, str], float] = {}
    for model, bench, value in zip(scores["model"], scores["benchmark"], scores["value"], strict=True):
        if (model, bench) in lookup:
            raise DataError("scores", f"duplicate score for model {model!r}, benchmark {bench!r}")
        lookup[(model, bench)] = float(value)
    return lookup


def _score(lookup: dict[tuple[str, str], float], model: str, benchmark: str, role: str) -> float:
    try:
        return lookup[(model, benchmark)]
    except KeyError:
        raise DataError(
            "scores",
            f"no score for model {model!r} on benchmark {benchmark!r} ({role})",
            record=f"{model}/{benchmark}",
        ) from None


def _domain_pgr(rows: list[dict[str, Any]], student: Mapping[str, Any]) -> tuple[float, str]:
    undefined = [r["benchmark"] for r in rows if math.isnan(r["pgr"])]
    if not undefined:
        return sum(r["pgr"] for r in rows) / len(rows), ""
    note = f"undefined: PGR of {', '.join(undefined)} undefined"
    warnings.warn(
        f"domain PGR of {student['model']!r} ({student['domain']}) {note}", UndefinedPGRWarning, stacklevel=3
    )
    return math.nan, note


def _student_rows(
    student: Mapping[str, Any],
    lookup: dict[tuple[str, str], float],
    benches: list[str],
    base_model: str,
    reference_model: str,
    eps: float,
) -> list[dict[str, Any]]:
    meta = {k: student[k] for k in STUDENT_KEYS}
    rows = []
    for bench in benches:
        s = _score(lookup, student["model"], bench, "student")
        s0 = _score(lookup, base_model, bench, f"base model S0 for student {student['model']!r}")
        sref = _score(lookup, reference_model, bench, f"reference S_ref for student {student['model']!r}")
        if any(math.isnan(v) for v in (s, s0, sref)):
            value, note = None, f"undefined: a score on {bench} is undefined (see its score file's counts)"
            warnings.warn(
                f"PGR undefined for {student['model']!r} on {bench!r}: {note}",
                UndefinedPGRWarning,
                stacklevel=2,
            )
        else:
            value = pgr(s, s0, sref, eps, label=f"benchmark {bench!r} (student {student['model']!r})")
            note = f"undefined: |S_ref - S0| < {eps:g} on {bench}" if value is None else ""
        rows.append(
            {
                **meta,
                "level": BENCHMARK_LEVEL,
                "benchmark": bench,
                "student_score": s,
                "base_score": s0,
                "reference_score": sref,
                "pgr": math.nan if value is None else value,
                "note": note,
            }
        )
    domain_value, note = _domain_pgr(rows, student)
    rows.append(
        {
            **meta,
            "level": DOMAIN_LEVEL,
            "benchmark": DOMAIN_ROW_BENCHMARK,
            "student_score": math.nan,
            "base_score": math.nan,
            "reference_score": math.nan,
            "pgr": domain_value,
            "note": note,
        }
    )
    return rows


PGR_COLUMNS: list[str] = [
    *STUDENT_KEYS,
    "level",
    "benchmark",
    "student_score",
    "base_score",
    "reference_score",
    "pgr",
    "note",
]


def pgr_table(
    scores: pd.DataFrame,
    students: Sequence[Mapping[str, Any]],
    *,
    base_model: str,
    reference_model: str,
    benchmarks: Mapping[str, str],
    eps: float = 1e-6,
) -> pd.DataFrame:
    """Long PGR table: per student one row per benchmark of its domain (level 'benchmark') and one
    domain row (level 'domain', benchmark 'mean'). Undefined PGRs are NaN with a `note` and a warning.

    `students`: dicts with model (the score files' `model`), generator, domain, method, variant, size;
    `benchmarks`: benchmark name -> domain. A missing score raises DataError naming model and benchmark.
    """
    if eps < 0:
        raise ConfigError("analysis.pgr_eps", f"must be >= 0, got {eps}")
    _check_students(students, benchmarks)
    lookup = _score_lookup(scores)
    rows: list[dict[str, Any]] = []
    for student in students:
        benches = [b for b, d in benchmarks.items() if d == student["domain"]]
        rows += _student_rows(student, lookup, benches, base_model, reference_model, eps)
    return pd.DataFrame(rows, columns=PGR_COLUMNS)


def _select(table: pd.DataFrame, column: str, value: Any) -> pd.DataFrame:
    if value is not None:
        out = table[table[column] == value]
        if out.empty:
            raise DataError(
                "pgr table", f"no rows with {column} = {value!r} (have {sorted(table[column].unique())})"
            )
        return out
    present = table[column].unique()
    if len(present) > 1:
        raise DataError("pgr table", f"several {column}s {sorted(present)}: pass {column}= to choose one")
    return table


def pgr_matrix(
    table: pd.DataFrame,
    *,
    variant: str | None = None,
    size: int | None = None,
    generators: Sequence[str] | None = None,
    methods: Sequence[str] = METHODS,
    domains: Sequence[str] = DOMAINS,
) -> pd.DataFrame:
    """Table 2 layout from a `pgr_table` frame: rows (generator, method), columns the domains + average.

    `variant` / `size` select one of several (needed only when the table holds more than one). A missing
    cell is NaN; the average is NaN unless all domains are defined (mean of the domain PGRs).
    """
    sub = table[table["level"] == DOMAIN_LEVEL]
    sub = _select(_select(sub, "variant", variant), "size", size)
    dup = sub.duplicated(["generator", "method", "domain"])
    if dup.any():
        row = sub[dup].iloc[0]
        raise DataError(
            "pgr table",
            f"several students for generator {row['generator']!r}, method "
            f"{row['method']!r}, domain {row['domain']!r}",
        )
    gens = list(generators) if generators is not None else list(dict.fromkeys(sub["generator"]))
    wide = sub.pivot(index=["generator", "method"], columns="domain", values="pgr")
    index = pd.MultiIndex.from_product([gens, list(methods)], names=["generator", "method"])
    wide = wide.reindex(index=index, columns=list(domains)).astype(float)
    wide["average"] = wide[list(domains)].mean(axis=1, skipna=False)
    wide.columns.name = None
    return wide
