"""Paired bootstrap over benchmark items: intervals on scores and PGRs, and pairwise generator comparisons.

Every round resamples each benchmark's items once (with replacement) and scores every model - students,
S0 and S_ref - on the same resampled items, so an interval reflects which items the benchmark happens to
hold, paired across the models that answered them. Domain and Table 2 averages average the benchmark PGRs
of the same round. A PGR whose gap S_ref - S0 has an interval including 0 is `unstable` (no interval).

Item scores (from a score job's details.jsonl, beside score.json): accuracy (math, `correct`, or
`strict_correct` in strict mode), pass@1 = n_passed / n_samples (code), the sum and count of an item's
battle scores (Arena-Hard: its win rate, the mean over battles, is recomputed exactly on the resampled
items) and preference - 1 (AlpacaEval). AlpacaEval's length-controlled win rate is a GLM fit over all
items; refitting it per round is not done: the LC adjustment (LC - raw win rate on all items) is held
fixed and added to each round's raw win rate (a documented approximation).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agorabench.analysis.pgr import DOMAIN_ROW_BENCHMARK, DOMAINS, METHODS
from agorabench.analysis.study import StudyInputs
from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import read_json, read_jsonl

log = logging.getLogger(__name__)
STABLE, UNSTABLE, UNDEFINED = "ok", "unstable", "undefined"
POINT_TOLERANCE = 1e-3  # percent: item scores must reproduce score.json's value (rounded to 4 decimals)


@dataclass(frozen=True)
class ItemScores:
    """One model's per-item contributions to a benchmark score: value = 100 * sum(num) / sum(den) + shift."""

    ids: tuple[str, ...]
    num: np.ndarray
    den: np.ndarray
    shift: float = 0.0

    def point(self) -> float:
        return _ratio(self.num.sum(), self.den.sum()) + self.shift

    def take(self, ids: Sequence[str], source: str) -> ItemScores:
        """The same scores in the order of `ids` (another model's items); other item sets raise DataError."""
        if set(ids) != set(self.ids) or len(ids) != len(self.ids):
            raise DataError(source, f"items differ from the base model's ({len(self.ids)} vs {len(ids)})")
        pos = {i: k for k, i in enumerate(self.ids)}
        order = np.array([pos[i] for i in ids], dtype=int)
        return ItemScores(tuple(ids), self.num[order], self.den[order], self.shift)


def _ratio(num: Any, den: Any) -> Any:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.asarray(den) > 0, 100.0 * np.asarray(num) / np.asarray(den), np.nan)


# Item scores from details.jsonl ------------------------------------------------------------------------


def _math_rows(details: list[dict[str, Any]], settings: Mapping[str, Any]) -> tuple[list, list]:
    key = "strict_correct" if settings.get("mode") == "strict" else "correct"
    return [float(bool(r[key])) for r in details], [1.0] * len(details)


def _code_rows(details: list[dict[str, Any]], settings: Mapping[str, Any]) -> tuple[list, list]:
    num = [r["n_passed"] / r["n_samples"] if r["n_samples"] else 0.0 for r in details]
    return num, [1.0] * len(details)


def _alpaca_rows(details: list[dict[str, Any]], settings: Mapping[str, Any]) -> tuple[list, list]:
    pref = [r.get("preference") for r in details]  # None: unparsed, left out like alpaca_eval does
    return [0.0 if p is None else float(p) - 1.0 for p in pref], [0.0 if p is None else 1.0 for p in pref]


def _arena_rows(details: list[dict[str, Any]], settings: Mapping[str, Any]) -> tuple[list, list]:
    from agorabench.evaluation.scorers.arena_hard import DEFAULTS, game_battles

    weight = int(settings.get("weight", DEFAULTS["weight"]))
    num, den = [], []
    for r in details:
        if r.get("missing_prediction"):
            got = [0.0] * (2 * weight)  # as the scorer: a missing answer loses both games, strongly
        else:
            got = [b for g in r.get("games", []) for b in game_battles(g, weight)]
        num.append(float(sum(got)))
        den.append(float(len(got)))
    return num, den


ITEM_ROWS = {"math": _math_rows, "code": _code_rows, "alpaca_eval": _alpaca_rows, "arena_hard": _arena_rows}


def item_scores(record: Mapping[str, Any], details: list[dict[str, Any]], source: str) -> ItemScores:
    """ItemScores of one score.json `record` and its details.jsonl rows; they must reproduce its value."""
    kind = record.get("kind")
    if kind not in ITEM_ROWS:
        raise DataError(source, f"no item scores for benchmark kind {kind!r} (known: {sorted(ITEM_ROWS)})")
    try:
        num, den = ITEM_ROWS[kind](details, record.get("settings") or {})
        ids = tuple(str(r["id"]) for r in details)
    except (KeyError, TypeError) as exc:
        raise DataError(source, f"details row lacks a field of a {kind} verdict: {exc}") from None
    items = ItemScores(ids, np.asarray(num, dtype=float), np.asarray(den, dtype=float))
    value = record.get("value")
    if value is None or not len(ids):
        return items
    raw = float(items.point())
    if kind != "alpaca_eval" and not abs(raw - float(value)) <= POINT_TOLERANCE:
        raise DataError(source, f"item scores give {raw:.4f}, score.json says {value}")
    # The shift makes the point exactly score.json's value: its rounding, or AlpacaEval's LC adjustment
    # (held fixed, module docstring).
    return ItemScores(ids, items.num, items.den, float(value) - raw)


def load_item_scores(score_path: str | Path) -> ItemScores:
    """ItemScores of a score.json file and the details.jsonl the score job wrote beside it."""
    details_path = Path(score_path).with_name("details.jsonl")
    if not details_path.exists():
        raise DataError(details_path, f"no per-item verdicts beside {score_path} (needed for intervals)")
    return item_scores(read_json(score_path), read_jsonl(details_path), str(details_path))


# The bootstrap ----------------------------------------------------------------------------------------


def resample(n_items: int, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """Item indices of every round: (rounds, n_items), drawn with replacement."""
    if n_items < 1 or rounds < 1:
        raise ValueError(f"bootstrap needs items and rounds, got {n_items} items, {rounds} rounds")
    return rng.integers(0, n_items, size=(rounds, n_items))


def score_draws(items: ItemScores, idx: np.ndarray) -> np.ndarray:
    """The benchmark score (percent) of each round on the resampled items: shape (rounds,)."""
    return _ratio(items.num[idx].sum(axis=1), items.den[idx].sum(axis=1)) + items.shift


def pgr_draws(student: np.ndarray, base: np.ndarray, reference: np.ndarray, eps: float) -> np.ndarray:
    """PGR per round (percent); NaN where |S_ref - S0| < eps in that round."""
    gap = reference - base
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.abs(gap) >= max(eps, 1e-12), (student - base) / gap * 100.0, np.nan)


def interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the defined draws; (NaN, NaN) when more than 1 - level of them are NaN."""
    draws = np.asarray(draws, dtype=float)
    ok = draws[np.isfinite(draws)]
    if ok.size == 0 or ok.size < level * draws.size:
        return math.nan, math.nan
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ok, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def excludes_zero(draws: np.ndarray, level: float = 0.95) -> bool:
    """Whether the interval of `draws` (a gap S_ref - S0 per round) lies strictly on one side of 0."""
    lo, hi = interval(draws, level)
    return bool(lo > 0 or hi < 0)


def two_sided_p(diff: np.ndarray) -> float:
    """Bootstrap p-value of 'no difference': twice the smaller tail mass at 0, with the +1 correction."""
    d = np.asarray(diff, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return math.nan
    tail = min((d <= 0).sum(), (d >= 0).sum())
    return float(min(1.0, 2.0 * (tail + 1) / (d.size + 1)))


def smallest_holm_p(tested: int, rounds: int) -> float:
    """The smallest Holm-adjusted p a family of `tested` pairs can reach with `rounds` bootstrap rounds:
    the bootstrap p-value is at least 2 / (rounds + 1), and Holm multiplies the smallest by `tested`."""
    return min(1.0, tested * 2.0 / (rounds + 1)) if tested else math.nan


def rounds_for(tested: int, alpha: float) -> int:
    """The fewest rounds with which the smallest Holm-adjusted p of `tested` pairs is below `alpha`."""
    return math.floor(2.0 * tested / alpha)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control under any dependence); NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


# A study: every student's PGR per round -----------------------------------------------------------------

_WORST = {STABLE: 0, UNSTABLE: 1, UNDEFINED: 2}


def worst(statuses: Iterable[str]) -> str:
    """The least usable of several statuses (undefined > unstable > ok)."""
    return max(statuses, key=_WORST.__getitem__, default=UNDEFINED)


@dataclass
class StudyDraws:
    """Bootstrap draws of a study. Keys: (student model, benchmark) at the benchmark level and (student
    model, DOMAIN_ROW) for its domain; `gaps` and `scores` by benchmark and (model, benchmark)."""

    rounds: int
    level: float
    pgr: dict[tuple[str, str], np.ndarray]
    point: dict[tuple[str, str], float]
    status: dict[tuple[str, str], str]
    scores: dict[tuple[str, str], np.ndarray]
    gaps: dict[str, np.ndarray]


DOMAIN_ROW = DOMAIN_ROW_BENCHMARK  # the domain-level rows of a pgr_table frame


def _point_pgr(s: float, b: float, r: float, eps: float) -> float:
    return float(pgr_draws(np.array([s]), np.array([b]), np.array([r]), eps)[0])


def _benchmark_draws(
    out: StudyDraws,
    bench: str,
    idx: np.ndarray,
    items: Mapping[tuple[str, str], ItemScores],
    models: Sequence[str],
    roles: tuple[str, str],
    eps: float,
) -> None:
    base = items[(roles[0], bench)]
    for model in {*models, *roles}:
        aligned = items[(model, bench)].take(base.ids, f"{model}/{bench}")
        out.scores[(model, bench)] = score_draws(aligned, idx)
    b, r = out.scores[(roles[0], bench)], out.scores[(roles[1], bench)]
    out.gaps[bench] = r - b
    stable = excludes_zero(r - b, out.level)
    points = {m: items[(m, bench)].point() for m in {*models, *roles}}
    for model in models:
        key = (model, bench)
        out.pgr[key] = pgr_draws(out.scores[key], b, r, eps)
        out.point[key] = _point_pgr(points[model], points[roles[0]], points[roles[1]], eps)
        out.status[key] = UNDEFINED if math.isnan(out.point[key]) else (STABLE if stable else UNSTABLE)


def bootstrap_study(
    items: Mapping[tuple[str, str], ItemScores],
    students: Sequence[Mapping[str, Any]],
    benchmarks: Mapping[str, str],
    *,
    base_model: str = "base",
    reference_model: str = "reference",
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    eps: float = 1e-6,
) -> StudyDraws:
    """Paired bootstrap of every student's benchmark and domain PGRs. `items`: (model, benchmark) ->
    ItemScores; `students`: records with model and domain; `benchmarks`: benchmark -> domain. Each round
    resamples each benchmark's items once, for all models (benchmarks drawn in `benchmarks` order)."""
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    out = StudyDraws(rounds, level, {}, {}, {}, {}, {})
    missing = [f"{m}/{b}" for m in (base_model, reference_model) for b in benchmarks if (m, b) not in items]
    missing += [f"{s['model']}/{b}" for s in students for b, d in benchmarks.items()
                if d == s["domain"] and (s["model"], b) not in items]  # fmt: skip
    if missing:
        raise DataError(
            "item scores", f"none for {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")
        )
    for bench, domain in benchmarks.items():
        idx = resample(len(items[(base_model, bench)].ids), rounds, rng)
        models = [s["model"] for s in students if s["domain"] == domain]
        _benchmark_draws(out, bench, idx, items, models, (base_model, reference_model), eps)
    for s in students:
        benches = [b for b, d in benchmarks.items() if d == s["domain"]]
        _average_into(out, (s["model"], DOMAIN_ROW), [(s["model"], b) for b in benches])
    return out


def _average_into(out: StudyDraws, key: tuple[str, str], parts: Sequence[tuple[str, str]]) -> None:
    """Mean of the parts' draws per round (NaN if any part is NaN), point and worst status."""
    out.pgr[key] = np.mean([out.pgr[p] for p in parts], axis=0)
    out.point[key] = float(np.mean([out.point[p] for p in parts]))
    out.status[key] = worst(out.status[p] for p in parts)


def summary(draws: np.ndarray, status: str, level: float) -> tuple[float, float]:
    """The interval of a PGR, or (NaN, NaN) when it is unstable or undefined."""
    return interval(draws, level) if status == STABLE else (math.nan, math.nan)


INTERVAL_COLUMNS = ["pgr_low", "pgr_high", "pgr_interval", "gap_low", "gap_high"]


def interval_columns(table: pd.DataFrame, study: StudyDraws) -> pd.DataFrame:
    """A long `pgr_table` frame with INTERVAL_COLUMNS added: the PGR's interval and status (ok /
    unstable / undefined), and at the benchmark level the interval of S_ref - S0."""
    rows = []
    for model, bench in zip(table["model"], table["benchmark"], strict=True):
        key = (model, bench)
        if key not in study.status:
            raise DataError("pgr table", f"no bootstrap draws for student {model!r}, {bench!r}")
        lo, hi = summary(study.pgr[key], study.status[key], study.level)
        g_lo, g_hi = interval(study.gaps[bench], study.level) if bench in study.gaps else (math.nan,) * 2
        rows.append((lo, hi, study.status[key], g_lo, g_hi))
    extra = pd.DataFrame(rows, columns=INTERVAL_COLUMNS, index=table.index)
    return pd.concat([table, extra], axis=1)


# Table 2 cells and pairwise comparisons ----------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One Table 2 cell: PGR per round, its point value and status."""

    draws: np.ndarray
    point: float
    status: str


def table_cells(
    study: StudyDraws,
    students: Sequence[Mapping[str, Any]],
    *,
    variant: str,
    size: int,
    domains: Sequence[str],
) -> dict[tuple[str, str, str], Cell]:
    """(generator, method, column) -> Cell for the students of one (variant, size): a domain's cell is its
    student's domain PGR, 'average' the mean of the domains' PGRs in each round (when all are there)."""
    cells: dict[tuple[str, str, str], Cell] = {}
    for s in students:
        if s["variant"] == variant and int(s["size"]) == int(size) and s["domain"] in domains:
            key = (s["model"], DOMAIN_ROW)
            cells[(s["generator"], s["method"], s["domain"])] = Cell(
                study.pgr[key], study.point[key], study.status[key]
            )
    for g, m in {(g, m) for g, m, _ in cells}:
        parts = [cells.get((g, m, d)) for d in domains]
        if all(p is not None for p in parts):
            cells[(g, m, "average")] = Cell(
                np.mean([p.draws for p in parts], axis=0),
                float(np.mean([p.point for p in parts])),
                worst(p.status for p in parts),
            )
    return cells


INTERVAL_SUFFIXES = ("_low", "_high", "_interval")  # interval_matrix's columns beside each Table 2 column


def interval_matrix(
    cells: Mapping[tuple[str, str, str], Cell], matrix: pd.DataFrame, level: float
) -> pd.DataFrame:
    """Per column of a `pgr_matrix` frame: `<column>_low`, `<column>_high` and `<column>_interval` (ok /
    unstable / undefined; 'undefined' where the study has no such cell)."""
    out = pd.DataFrame(index=matrix.index)
    for col in matrix.columns:
        lows, highs, status = [], [], []
        for g, m in matrix.index:
            cell = cells.get((g, m, col))
            st = UNDEFINED if cell is None else cell.status
            lo, hi = (math.nan, math.nan) if cell is None else summary(cell.draws, st, level)
            lows.append(lo)
            highs.append(hi)
            status.append(st)
        out[f"{col}_low"], out[f"{col}_high"], out[f"{col}_interval"] = lows, highs, status
    return out


PAIR_COLUMNS = [
    "method", "column", "generator_a", "generator_b", "pgr_a", "pgr_b", "difference", "diff_low",
    "diff_high", "p_a_better", "p_value", "p_holm", "significant", "status",
]  # fmt: skip


def _pair_row(method: str, col: str, a: str, b: str, ca: Cell, cb: Cell, level: float) -> dict[str, Any]:
    status = worst([ca.status, cb.status])
    row = {"method": method, "column": col, "generator_a": a, "generator_b": b, "pgr_a": ca.point,
           "pgr_b": cb.point, "difference": ca.point - cb.point, "status": status}  # fmt: skip
    if status != STABLE:
        return row | {
            "diff_low": math.nan,
            "diff_high": math.nan,
            "p_a_better": math.nan,
            "p_value": math.nan,
        }
    diff = ca.draws - cb.draws  # paired: the same resampled items in each round
    lo, hi = interval(diff, level)
    finite = diff[np.isfinite(diff)]
    better = float((finite > 0).mean() + 0.5 * (finite == 0).mean()) if finite.size else math.nan
    return row | {"diff_low": lo, "diff_high": hi, "p_a_better": better, "p_value": two_sided_p(diff)}


def pairwise(
    cells: Mapping[tuple[str, str, str], Cell],
    *,
    generators: Sequence[str],
    methods: Sequence[str],
    columns: Sequence[str],
    alpha: float = 0.05,
    level: float = 0.95,
) -> pd.DataFrame:
    """Every pair of generators in the same (method, column) of Table 2: the PGR difference a - b, its
    paired interval, P(a beats b) over rounds, a two-sided bootstrap p-value and Holm's adjustment over the
    whole table (pairs with an unstable or undefined PGR are reported but not tested)."""
    rows = []
    for method, col in itertools.product(methods, columns):
        for a, b in itertools.combinations(generators, 2):
            ca, cb = cells.get((a, method, col)), cells.get((b, method, col))
            if ca is not None and cb is not None:
                rows.append(_pair_row(method, col, a, b, ca, cb, level))
    return with_holm(pd.DataFrame(rows, columns=PAIR_COLUMNS), alpha)


def with_holm(pairs: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """`p_holm` (Holm over every tested pair of the frame: one family) and `significant` at `alpha`."""
    pairs["p_holm"] = holm(pairs["p_value"].to_numpy(float)) if len(pairs) else []
    pairs["significant"] = pairs["p_holm"] < alpha
    return pairs


# From the study's files -----------------------------------------------------------------------------------

BOOTSTRAP_DEFAULTS: dict[str, Any] = {"rounds": 1000, "seed": 0, "level": 0.95, "alpha": 0.05}


def bootstrap_settings(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """analysis.bootstrap with its defaults; unknown keys or bad values raise ConfigError."""
    given = dict(spec or {})
    unknown = sorted(set(given) - set(BOOTSTRAP_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"analysis.bootstrap.{unknown[0]}", f"unknown key (known: {sorted(BOOTSTRAP_DEFAULTS)})"
        )
    s = BOOTSTRAP_DEFAULTS | given
    if not isinstance(s["rounds"], int) or s["rounds"] < 100:
        raise ConfigError("analysis.bootstrap.rounds", f"must be an integer >= 100, got {s['rounds']!r}")
    for key in ("level", "alpha"):
        if not 0 < float(s[key]) < 1:
            raise ConfigError(f"analysis.bootstrap.{key}", f"must be in (0, 1), got {s[key]!r}")
    return s


def study_items(
    scores: pd.DataFrame,
    students: Sequence[Mapping[str, Any]],
    benchmarks: Mapping[str, str],
    roles: Sequence[str] = ("base", "reference"),
) -> dict[tuple[str, str], ItemScores]:
    """ItemScores of every (model, benchmark) the students' PGRs need, from the `path` column of a
    `collect_scores` frame (each score.json's details.jsonl beside it)."""
    paths = {(m, b): p for m, b, p in zip(scores["model"], scores["benchmark"], scores["path"], strict=True)}
    need = {(r, b) for r in roles for b, d in benchmarks.items() if d in {s["domain"] for s in students}}
    need |= {(s["model"], b) for s in students for b, d in benchmarks.items() if d == s["domain"]}
    absent = sorted(k for k in need if k not in paths)
    if absent:
        raise DataError("scores", f"no score file for {'/'.join(absent[0])} (and {len(absent) - 1} more)")
    return {key: load_item_scores(paths[key]) for key in sorted(need)}


def study_from_scores(
    scores: pd.DataFrame,
    students: Sequence[Mapping[str, Any]],
    benchmarks: Mapping[str, str],
    eps: float,
    settings: Mapping[str, Any],
) -> StudyDraws:
    """bootstrap_study of the students, their benchmarks of `benchmarks` only, from the score files."""
    used = {b: d for b, d in benchmarks.items() if d in {s["domain"] for s in students}}
    items = study_items(scores, students, used)
    return bootstrap_study(
        items,
        students,
        used,
        rounds=settings["rounds"],
        seed=settings["seed"],
        level=settings["level"],
        eps=eps,
    )


def interval_text(point: float, low: float, high: float, status: str, digits: int = 1) -> str:
    """A table cell: 'point [low, high]', 'point (unstable)' or 'n/a' (undefined)."""
    if status == UNDEFINED or math.isnan(point):
        return "n/a"
    if status == UNSTABLE or math.isnan(low):
        return f"{point:.{digits}f} (unstable)"
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def pgr_intervals(
    scores: pd.DataFrame, table: pd.DataFrame, matrix: pd.DataFrame, inputs: StudyInputs
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The long PGR table with INTERVAL_COLUMNS and the interval columns of its Table 2 `matrix`
    (`scores`: `inputs.score_frame()`; `inputs.bootstrap`: analysis.bootstrap)."""
    settings = bootstrap_settings(inputs.bootstrap)
    students, (variant, size) = inputs.students, inputs.main_setting()
    study = study_from_scores(scores, students, inputs.benchmarks, inputs.eps, settings)
    domains = [c for c in matrix.columns if c != "average"]
    cells = table_cells(study, students, variant=variant, size=size, domains=domains)
    return interval_columns(table, study), interval_matrix(cells, matrix, settings["level"])


def _verdict(row: Mapping[str, Any], a: str, b: str, digits: int) -> tuple[str, str]:
    """The difference cell and the verdict of one pair of a significance view (`a`, `b`: the names)."""
    if row["status"] != STABLE:
        return interval_text(row["difference"], math.nan, math.nan, row["status"], digits), row["status"]
    diff = interval_text(row["difference"], row["diff_low"], row["diff_high"], STABLE, digits)
    if not row["significant"]:
        return diff, "not significant"
    return diff, f"{a} beats {b}" if row["difference"] > 0 else f"{b} beats {a}"


def _family_head(what: str, pairs: pd.DataFrame, settings: Mapping[str, Any]) -> str:
    tested = int(pairs["p_value"].notna().sum())
    head = (
        f"{what}: paired bootstrap over benchmark items ({settings['rounds']} rounds, "
        f"{settings['level']:.0%} intervals), two-sided p-values adjusted by Holm over all {tested} tested "
        f"pairs; significant at {settings['alpha']}: {int(pairs['significant'].sum())}. Pairs with an "
        "unstable or undefined PGR are not tested."
    )
    return head + _resolution_note(tested, settings)


def _write_pairs(pairs: pd.DataFrame, settings: Mapping[str, Any], csv_path: str) -> None:
    """A significance view's CSV; its resolution warning (if any) goes to the job's log too."""
    note = _resolution_note(int(pairs["p_value"].notna().sum()), settings)
    if note:
        log.warning("%s:%s", csv_path, note.replace("**", ""))
    pairs.to_csv(csv_path, index=False, na_rep="n/a")


def _resolution_note(tested: int, settings: Mapping[str, Any]) -> str:
    """A warning when the rounds are too few for any pair of the family to be significant."""
    floor = smallest_holm_p(tested, settings["rounds"])
    if not floor >= settings["alpha"]:
        return ""
    need = rounds_for(tested, settings["alpha"])
    return (
        f" **With {settings['rounds']} rounds no pair can be significant**: the smallest Holm-adjusted p "
        f"of {tested} pairs is {floor:.3g} >= {settings['alpha']}; set analysis.bootstrap.rounds to at "
        f"least {need}."
    )


def _pairs_view(pairs: pd.DataFrame, keys: Mapping[str, str], a: Sequence[str], b: Sequence[str],
                digits: int) -> pd.DataFrame:  # fmt: skip
    """The rows of a significance view: `keys` (label -> column) index them; `a`, `b`: the pairs' names."""
    cells = [_verdict(r, x, y, digits) for r, x, y in zip(pairs.to_dict("records"), a, b, strict=True)]
    view = pd.DataFrame({label: pairs[col] for label, col in keys.items()} | {
        "A": list(a), "B": list(b), "A - B": [c for c, _ in cells],
        "P(A > B)": pairs["p_a_better"].map(lambda v: "n/a" if math.isnan(v) else f"{v:.3f}"),
        "p (Holm)": pairs["p_holm"].map(lambda v: "n/a" if math.isnan(v) else f"{v:.3g}"),
        "Verdict": [v for _, v in cells],
    })  # fmt: skip
    return view.set_index(list(keys))


def significance_markdown(pairs: pd.DataFrame, settings: Mapping[str, Any], digits: int = 1) -> str:
    """The 'which differences are significant' view: one row per pair, the tested family counted."""
    from agorabench.analysis.tables import to_markdown

    what = "PGR differences between generators in the same Table 2 cell (method x column)"
    head = _family_head(what, pairs, settings)
    if pairs.empty:
        return head + "\n\nNo two generators share a cell.\n"
    keys = {"Method": "method", "Column": "column"}
    view = _pairs_view(pairs, keys, list(pairs["generator_a"]), list(pairs["generator_b"]), digits)
    return head + "\n\n" + to_markdown(view)


def significance_tables(
    inputs: StudyInputs,
    *,
    csv_path: str,
    md_path: str,
    methods: Sequence[str] = METHODS,
    domains: Sequence[str] = DOMAINS,
) -> dict[str, int]:
    """The significance view of Table 2 (the main experiment's students): pgr_significance.csv / .md."""
    from agorabench.jsonl import write_text

    settings = bootstrap_settings(inputs.bootstrap)
    variant, size = inputs.main_setting()
    chosen = [s for s in inputs.students if s["variant"] == variant and int(s["size"]) == size]
    study = study_from_scores(inputs.score_frame(), chosen, inputs.benchmarks, inputs.eps, settings)
    present = [d for d in domains if any(s["domain"] == d for s in chosen)]
    cells = table_cells(study, chosen, variant=variant, size=size, domains=present)
    pairs = pairwise(
        cells,
        generators=list(dict.fromkeys(s["generator"] for s in chosen)),
        methods=[m for m in methods if any(s["method"] == m for s in chosen)],
        columns=[*present, "average"] if len(present) > 1 else present,
        alpha=settings["alpha"],
        level=settings["level"],
    )
    _write_pairs(pairs, settings, csv_path)
    write_text(Path(md_path), significance_markdown(pairs, settings))
    return {"pairs": len(pairs), "tested": int(pairs["p_value"].notna().sum()),
            "significant": int(pairs["significant"].sum())}  # fmt: skip


# Without item data (the paper's published numbers) --------------------------------------------------------

BENCHMARK_ITEMS: dict[str, int] = {  # items of each benchmark as configured (config/config.yaml)
    "gsm8k": 1319, "math": 5000, "mbpp": 378, "humaneval": 164, "alpaca_eval": 805, "arena_hard": 500,
}  # fmt: skip


def binomial_difference_se(n_items: int, gap: float, accuracy: float = 50.0) -> float:
    """Approximate standard error (PGR points) of the difference of two students' PGRs on one benchmark of
    `n_items`: independent binomial scores at `accuracy` (percent; 50 is the worst case), the gap
    S_ref - S0 (points) held fixed, no pairing between the students (conservative when they agree on
    items)."""
    if n_items < 1 or gap == 0:
        raise ValueError(f"needs items and a non-zero gap, got {n_items} items, gap {gap}")
    return 100.0 * math.sqrt(2.0 * accuracy * (100.0 - accuracy) / n_items) / abs(gap)


def domain_difference_se(benchmark_se: Sequence[float]) -> float:
    """The standard error of a domain's PGR difference: its benchmarks' mean, independent benchmarks."""
    return math.sqrt(sum(s * s for s in benchmark_se)) / len(benchmark_se)


# Table 5: meta-prompt variants of the same generator ---------------------------------------------------

VARIANT_PAIR_COLUMNS = ["generator", *(c.replace("generator_", "variant_") for c in PAIR_COLUMNS)]


def variant_pairwise(
    study: StudyDraws,
    students: Sequence[Mapping[str, Any]],
    ablation: Mapping[str, Any],
    *,
    domains: Sequence[str] = DOMAINS,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Table 5's pairs: for each generator, method and column (domains + average), every two meta-prompt
    variants' PGR difference (paired over items), with Holm's adjustment over the whole table."""
    present = [d for d in domains if any(s["domain"] == d for s in students)]
    columns = [*present, "average"] if len(present) > 1 else present
    by_variant = {
        v: table_cells(study, students, variant=v, size=int(ablation["size"]), domains=present)
        for v in ablation["variants"]
    }
    rows = []
    for g, method, col in itertools.product(ablation["generators"], ablation["methods"], columns):
        for a, b in itertools.combinations(ablation["variants"], 2):
            ca, cb = by_variant[a].get((g, method, col)), by_variant[b].get((g, method, col))
            if ca is not None and cb is not None:
                row = _pair_row(method, col, a, b, ca, cb, study.level)
                rows.append(
                    {"generator": g, **{k.replace("generator_", "variant_"): v for k, v in row.items()}}
                )
    return with_holm(pd.DataFrame(rows, columns=VARIANT_PAIR_COLUMNS), alpha)


def table5_significance(inputs: StudyInputs, *, ablation: Mapping[str, Any], csv_path: str) -> dict[str, int]:
    """Table 5's significance view: table5_significance.csv (one row per pair of variants)."""
    settings = bootstrap_settings(inputs.bootstrap)
    students = inputs.students
    study = study_from_scores(inputs.score_frame(), students, inputs.benchmarks, inputs.eps, settings)
    pairs = variant_pairwise(study, students, ablation, alpha=settings["alpha"])
    _write_pairs(pairs, settings, csv_path)
    return {"pairs": len(pairs), "tested": int(pairs["p_value"].notna().sum()),
            "significant": int(pairs["significant"].sum())}  # fmt: skip


# Figure 7: data volume (sizes of the same generator and method) ------------------------------------------

SIZE_PAIR_COLUMNS = ["generator", "variant", *(c.replace("generator_", "size_") for c in PAIR_COLUMNS)]


def _sizes_by_setting(students: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], list[int]]:
    sizes: dict[tuple[str, str, str], set[int]] = {}
    for s in students:
        sizes.setdefault((s["generator"], s["method"], s["variant"]), set()).add(int(s["size"]))
    return {k: sorted(v) for k, v in sizes.items()}


def has_size_pairs(students: Sequence[Mapping[str, Any]]) -> bool:
    """Whether some generator and method of Figure 7's students was trained at more than one size."""
    return any(len(v) > 1 for v in _sizes_by_setting(students).values())


def size_pairwise(
    study: StudyDraws,
    students: Sequence[Mapping[str, Any]],
    *,
    domains: Sequence[str] = DOMAINS,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Figure 7's pairs: for each generator, method and column (domains + average), every two sizes' PGR
    difference, larger (`size_a`) minus smaller (`size_b`): what the extra data bought, paired over items,
    with Holm's adjustment over the whole figure."""
    present = [d for d in domains if any(s["domain"] == d for s in students)]
    columns = [*present, "average"] if len(present) > 1 else present
    rows = []
    for (g, method, variant), sizes in _sizes_by_setting(students).items():
        mine = [s for s in students if (s["generator"], s["method"], s["variant"]) == (g, method, variant)]
        cells = {n: table_cells(study, mine, variant=variant, size=n, domains=present) for n in sizes}
        for col, (small, large) in itertools.product(columns, itertools.combinations(sizes, 2)):
            ca, cb = cells[large].get((g, method, col)), cells[small].get((g, method, col))
            if ca is not None and cb is not None:
                row = _pair_row(method, col, str(large), str(small), ca, cb, study.level)
                named = {k.replace("generator_", "size_"): v for k, v in row.items()}
                rows.append({"generator": g, "variant": variant, **named, "size_a": large, "size_b": small})
    return with_holm(pd.DataFrame(rows, columns=SIZE_PAIR_COLUMNS), alpha)


def figure7_markdown(pairs: pd.DataFrame, settings: Mapping[str, Any], digits: int = 1) -> str:
    """Figure 7's 'which size differences are significant' view (A: the larger size, B: the smaller)."""
    from agorabench.analysis.tables import to_markdown

    what = (
        "PGR gained by more data (Figure 7: the larger size A minus the smaller B, same generator, method "
        "and column; sizes are prefixes of one generated pool)"
    )
    head = _family_head(what, pairs, settings)
    if pairs.empty:
        return head + "\n\nNo generator and method was trained at two sizes.\n"
    keys = {"Generator": "generator", "Method": "method", "Column": "column"}
    a, b = ([f"n{n}" for n in pairs[c]] for c in ("size_a", "size_b"))
    return head + "\n\n" + to_markdown(_pairs_view(pairs, keys, a, b, digits))


def figure7_significance(inputs: StudyInputs, *, csv_path: str, md_path: str) -> dict[str, int]:
    """Figure 7's significance view: figure7_significance.csv / .md (one row per pair of sizes)."""
    from agorabench.jsonl import write_text

    settings = bootstrap_settings(inputs.bootstrap)
    students = inputs.students
    study = study_from_scores(inputs.score_frame(), students, inputs.benchmarks, inputs.eps, settings)
    pairs = size_pairwise(study, students, alpha=settings["alpha"])
    _write_pairs(pairs, settings, csv_path)
    write_text(Path(md_path), figure7_markdown(pairs, settings))
    return {"pairs": len(pairs), "tested": int(pairs["p_value"].notna().sum()),
            "significant": int(pairs["significant"].sum())}  # fmt: skip
