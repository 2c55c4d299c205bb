"""Assemble the data of the tables and figures from the study's files: PGRs from score files, the
generators' problem-solving scores, intrinsic-metric records, generation ledgers (cost), and the paper's
numbers beside ours."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agorabench.analysis import paper
from agorabench.analysis.pgr import DOMAIN_LEVEL, UndefinedPGRWarning, collect_scores, pgr_matrix, pgr_table
from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import read_json

log = logging.getLogger(__name__)
INTRINSIC_COLUMNS = ["metric", "generator", "method", "domain", "value"]


def pgr_long(
    score_paths: Sequence[str],
    students: Sequence[Mapping[str, Any]],
    benchmarks: Mapping[str, str],
    eps: float,
) -> tuple[pd.DataFrame, int]:
    """The long PGR table of `students` (see pgr.pgr_table) and how many PGRs were undefined (logged)."""
    return pgr_long_from_scores(collect_scores(score_paths), students, benchmarks, eps)


def pgr_long_from_scores(
    scores: pd.DataFrame,
    students: Sequence[Mapping[str, Any]],
    benchmarks: Mapping[str, str],
    eps: float,
) -> tuple[pd.DataFrame, int]:
    """`pgr_long` on an already collected scores frame."""
    used = {b: d for b, d in benchmarks.items() if d in {s["domain"] for s in students}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UndefinedPGRWarning)
        table = pgr_table(
            scores, students, base_model="base", reference_model="reference", benchmarks=used, eps=eps
        )
    undefined = [str(w.message) for w in caught if issubclass(w.category, UndefinedPGRWarning)]
    for msg in undefined:
        log.warning("PGR undefined: %s", msg)
    return table, len(undefined)


@dataclass(frozen=True)
class StudyInputs:
    """What the analysis rules that compute PGRs share: the scores, the students (records with `model`),
    benchmark -> domain, pgr_eps and, where the rule has them, the main experiment (variant, size),
    analysis.bootstrap (None: no intervals) and the rule's one-line note (which students or intrinsic
    metrics it covers). `scores`: score.json files (read with `collect_scores`) or, as one str, the
    scores.csv that `scores_table` wrote."""

    scores: str | tuple[str, ...]
    students: Sequence[Mapping[str, Any]]
    benchmarks: Mapping[str, str]
    eps: float
    main: Mapping[str, Any] | None = None
    bootstrap: Mapping[str, Any] | None = None
    note: str = ""

    @classmethod
    def from_rule(cls, input: Any, params: Any) -> StudyInputs:
        """From a rule's input (its `scores`, else all of it) and params (`students`, `benchmarks`, `eps`;
        `main`, `bootstrap`, `note` where it has them): smk.input / smk.params, or any objects like them."""
        scores = getattr(input, "scores", input)
        return cls(
            scores=str(scores) if isinstance(scores, str) else tuple(str(p) for p in scores),
            students=params.students,
            benchmarks=params.benchmarks,
            eps=params.eps,
            main=getattr(params, "main", None),
            bootstrap=getattr(params, "bootstrap", None),
            note=getattr(params, "note", ""),
        )

    def score_frame(self) -> pd.DataFrame:
        """The scores as one frame: scores.csv read back, or the score files collected."""
        return pd.read_csv(self.scores) if isinstance(self.scores, str) else collect_scores(self.scores)

    def pgr_long(self, scores: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int]:
        """`pgr_long` of the students (on `scores`, a `score_frame` already read, if given)."""
        frame = self.score_frame() if scores is None else scores
        return pgr_long_from_scores(frame, self.students, self.benchmarks, self.eps)

    def main_setting(self) -> tuple[str, int]:
        """The main experiment's (variant, size); ValueError when the rule has no `main`."""
        if self.main is None:
            raise ValueError("these inputs have no main experiment (params.main)")
        return self.main["variant"], int(self.main["size"])

    def main_matrix(self, table: pd.DataFrame) -> pd.DataFrame:
        """`table` in Table 2's layout, for the main experiment's variant and size."""
        variant, size = self.main_setting()
        return pgr_matrix(table, variant=variant, size=size)


def domain_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The domain-level PGR rows: generator, domain, method, variant, size, pgr."""
    rows = table[table["level"] == DOMAIN_LEVEL]
    return rows[["generator", "domain", "method", "variant", "size", "pgr"]].reset_index(drop=True)


# Problem-solving scores ------------------------------------------------------------------------------


def problem_solving_table(
    spec: Mapping[str, Any], benchmarks: Sequence[str], score_paths: Sequence[str] = ()
) -> pd.DataFrame:
    """Generators' problem-solving scores: index generator, one column per benchmark.

    spec `source`: 'paper' (Table 7), 'table' (`scores`: generator -> benchmark -> score), 'evaluation'
    (`models`: generator -> the evaluated model key whose score files hold its scores) or 'generators'
    (each generator evaluated itself; `plan.problem_solving_spec` fills `models`)."""
    source = spec.get("source", "paper")
    if source == "paper":
        table = paper.paper_table7()
    elif source == "table":
        table = pd.DataFrame.from_dict(dict(spec.get("scores") or {}), orient="index", dtype=float)
    elif source in ("evaluation", "generators"):
        table = _evaluated_scores(spec.get("models") or {}, score_paths)
    else:
        raise ConfigError("analysis.problem_solving.source", f"unknown source {source!r}")
    missing = [b for b in benchmarks if b not in table.columns]
    if missing:
        raise ConfigError("analysis.problem_solving", f"source {source!r} has no scores for {missing}")
    return table[list(benchmarks)].rename_axis("generator").astype(float)


def _evaluated_scores(models: Mapping[str, str], score_paths: Sequence[str]) -> pd.DataFrame:
    scores = collect_scores(score_paths)
    lookup = {
        (m, b): v for m, b, v in zip(scores["model"], scores["benchmark"], scores["value"], strict=True)
    }
    benches = list(dict.fromkeys(scores["benchmark"]))
    rows = {}
    for gen, model in models.items():
        absent = [b for b in benches if (model, b) not in lookup]
        if absent:
            raise DataError("score files", f"no score of model {model!r} (generator {gen!r}) on {absent}")
        rows[gen] = {b: lookup[(model, b)] for b in benches}
    return pd.DataFrame.from_dict(rows, orient="index")


# Intrinsic metrics -----------------------------------------------------------------------------------


def intrinsic_long(paths: Sequence[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Intrinsic-metric records -> long frame (metric, generator, method, domain, value) and the disabled
    metrics with their reasons. A missing value (e.g. every verdict unparsed) is NaN."""
    rows, disabled = [], {}
    for path in paths:
        rec = read_json(path)
        if not isinstance(rec, dict) or "set" not in rec or "metrics" not in rec:
            raise DataError(path, "not an intrinsic-metric record (needs 'set' and 'metrics')")
        s = rec["set"]
        for metric, m in rec["metrics"].items():
            value = m.get("value")
            rows.append(
                (metric, s["generator"], s["method"], s["domain"], math.nan if value is None else value)
            )
        disabled |= rec.get("disabled", {})
    return pd.DataFrame(rows, columns=INTRINSIC_COLUMNS), disabled


def with_average(long: pd.DataFrame, domains: Sequence[str]) -> pd.DataFrame:
    """Add domain 'average' rows: the mean over `domains` (NaN unless all are present and defined)."""
    keys = ["metric", "generator", "method"]
    sub = long[long["domain"].isin(domains)]
    wide = sub.pivot_table(index=keys, columns="domain", values="value", dropna=False, aggfunc="first")
    wide = wide.reindex(columns=list(domains))
    avg = wide.mean(axis=1, skipna=False).rename("value").reset_index().assign(domain="average")
    return pd.concat([long, avg[INTRINSIC_COLUMNS]], ignore_index=True)


def clean_features(features: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows and columns PCA can use: features undefined for more than half of the data sets are left out,
    then data sets with any undefined feature (e.g. an empty set), then features with no spread. Returns
    the rest and why each was left out."""
    notes = []
    missing = features.isna().mean()
    for col in missing[missing > 0.5].index:
        notes.append(
            f"{col} left out: undefined for {int(features[col].isna().sum())} of {len(features)} data sets"
        )
    features = features.drop(columns=missing[missing > 0.5].index)
    incomplete = features.isna().any(axis=1)
    if incomplete.any():
        names = ", ".join(
            "/".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in features.index[incomplete]
        )
        notes.append(f"{int(incomplete.sum())} data set(s) with an undefined metric left out: {names}")
        features = features[~incomplete]
    for col in list(features.columns):
        if len(features) and np.ptp(features[col].to_numpy(float)) == 0:
            notes.append(f"{col} left out: the same value for every data set")
            features = features.drop(columns=col)
    return features, notes


# Cost (Figure 7) -------------------------------------------------------------------------------------


def read_ledgers(paths: Sequence[str]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """pool.stats.json ledgers by (generator, domain, method, variant)."""
    out = {}
    for path in paths:
        rec = read_json(path)
        missing = [
            k for k in ("generator", "domain", "method", "variant", "valid", "cost_usd") if k not in rec
        ]
        if missing:
            raise DataError(path, f"generation ledger lacks {missing}")
        out[(rec["generator"], rec["domain"], rec["method"], rec["variant"])] = rec | {"path": path}
    return out


def _prorated(ledger: Mapping[str, Any], size: int) -> tuple[float | None, float | None]:
    """Cost and tokens of the first `size` instances: the pool's ledger pro rata to its valid instances."""
    valid = ledger["valid"]
    if not valid:
        return None, None
    share = size / valid
    cost = ledger.get("cost_usd")
    tokens = ledger.get("input_tokens", 0) + ledger.get("output_tokens", 0)
    return (None if cost is None else cost * share), tokens * share


def cost_rows(table: pd.DataFrame, ledgers: Mapping[tuple, Mapping[str, Any]]) -> pd.DataFrame:
    """Figure 7 rows: generator, method, domain (and 'average': PGR mean, cost and tokens summed over the
    domains), size, pgr, cost_usd, tokens."""
    rows = domain_rows(table)
    costs = []
    for r in rows.itertuples():
        key = (r.generator, r.domain, r.method, r.variant)
        if key not in ledgers:
            raise DataError("generation ledgers", f"no pool.stats.json for {'/'.join(key)}")
        costs.append(_prorated(ledgers[key], int(r.size)))
    rows["cost_usd"] = [c for c, _ in costs]
    rows["tokens"] = [t for _, t in costs]
    rows["cost_usd"] = rows["cost_usd"].astype(float)
    domains = list(dict.fromkeys(rows["domain"]))
    if len(domains) > 1:
        grouped = rows.groupby(["generator", "method", "variant", "size"], sort=False)
        full = grouped.filter(lambda g: set(g["domain"]) == set(domains))
        avg = full.groupby(["generator", "method", "variant", "size"], sort=False).agg(
            pgr=("pgr", lambda v: v.mean(skipna=False)),
            cost_usd=("cost_usd", lambda v: v.sum(min_count=len(v))),
            tokens=("tokens", lambda v: v.sum(min_count=len(v))),
        )
        rows = pd.concat([rows, avg.reset_index().assign(domain="average")], ignore_index=True)
    return rows


def generator_costs(table: pd.DataFrame, ledgers: Mapping[tuple, Mapping[str, Any]]) -> pd.DataFrame:
    """Table 3's cost: per generator, the summed cost (USD) and tokens of its sets in `table` (each pool's
    ledger pro rata to the set's size); NaN cost when any of its ledgers has none."""
    rows = cost_rows(table, ledgers)
    rows = rows[rows["domain"] != "average"]
    grouped = rows.groupby("generator", sort=False)
    return grouped.agg(
        api_cost_usd=("cost_usd", lambda v: v.sum(min_count=len(v))),
        tokens=("tokens", "sum"),
        sets=("cost_usd", "size"),
    )


def table3_frame(
    matrix: pd.DataFrame,
    problem_solving: pd.DataFrame | None,
    costs: pd.DataFrame,
    prices: Mapping[str, Mapping[str, Any] | None],
    domains: Sequence[str],
) -> pd.DataFrame:
    """Table 3 per generator: its price (USD per 1M input / output tokens, from the config), measured cost,
    problem solving (mean of its benchmark scores; NaN without scores) and data generation (mean of its
    generator x method x domain PGRs, NaN when any is undefined; `pgr_defined` counts the defined ones)."""
    cells = matrix[list(domains)]
    gens = list(dict.fromkeys(matrix.index.get_level_values("generator")))
    out = pd.DataFrame(index=pd.Index(gens, name="generator"))
    out["input_per_mtok_usd"] = [(prices.get(g) or {}).get("input_per_mtok", math.nan) for g in gens]
    out["output_per_mtok_usd"] = [(prices.get(g) or {}).get("output_per_mtok", math.nan) for g in gens]
    out["api_cost_usd"] = costs["api_cost_usd"].reindex(gens)
    out["tokens"] = costs["tokens"].reindex(gens)
    ps = problem_solving.mean(axis=1) if problem_solving is not None else pd.Series(dtype=float)
    out["problem_solving"] = ps.reindex(gens)
    by_gen = cells.groupby(level="generator", sort=False)
    out["data_generation"] = by_gen.apply(lambda g: g.to_numpy(float).mean()).reindex(gens)
    out["pgr_defined"] = by_gen.apply(lambda g: int(np.isfinite(g.to_numpy(float)).sum())).reindex(gens)
    return out.astype(float)


def paper_cost_points(generators: Sequence[str], methods: Sequence[str]) -> pd.DataFrame:
    """The paper's Table 2 PGRs of these generators and methods as 10K-instance points (generator, method,
    domain, size, pgr): the paper's Figure 7 values themselves are not in the cited copy."""
    t2 = paper.paper_table2()
    rows = [
        (g, m, d, 10000, float(t2.at[(g, m), d]))
        for g in generators
        for m in methods
        if (g, m) in t2.index
        for d in t2.columns
    ]
    return pd.DataFrame(rows, columns=["generator", "method", "domain", "size", "pgr"])


# Ours beside the paper's -----------------------------------------------------------------------------


def beside(ours: pd.DataFrame, theirs: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Long comparison: `keys` + ours + paper (NaN where the paper has no such row). Both frames are long
    with a `value` column."""
    left = ours.rename(columns={"value": "ours"})
    right = theirs.rename(columns={"value": "paper"})[[*keys, "paper"]]
    return left[[*keys, "ours"]].merge(right, on=list(keys), how="left")


def wide_long(table: pd.DataFrame, column_name: str = "domain") -> pd.DataFrame:
    """A wide table (index levels, one column per domain/average) as a long frame with `value`."""
    out = table.stack(future_stack=True).rename("value").reset_index()
    return out.rename(columns={out.columns[-2]: column_name})
