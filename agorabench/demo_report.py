"""The README's demo section, rebuilt from a measured `make demo` run (never edited by hand).

    python benchmarks/demo_readme.py --results results/demo --measure results/demo_measure.json

Besides the run's figures (wall time, peak memory, jobs, the machine's load) and the PGR table, it ranks
the generators with an uncertainty: a paired bootstrap over benchmark items. Each round resamples every
benchmark's items once and scores the student, S_0 and S_ref on the same resampled items, so the
interval reflects which items happened to be in the slice, not differences between three independent
draws. A generator's value is the mean of its students' benchmark-level PGRs. Item scores: accuracy
(math), pass@1 of the first sample (code), the judge's preference - 1 (AlpacaEval: the raw win rate,
not the length-controlled one) and the mean battle score of an item's two games (Arena-Hard); an item
without a verdict is left out of that round's mean.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agorabench import workflow as wf
from agorabench.errors import DataError
from agorabench.jsonl import read_jsonl

BEGIN, END = "<!-- DEMO-RESULTS -->", "<!-- /DEMO-RESULTS -->"


def item_scores(details: list[dict[str, Any]], kind: str, weight: int = 3) -> dict[str, float]:
    """Per-item score in percent (NaN: no verdict) from a score job's details.jsonl rows."""
    from agorabench.evaluation.scorers.arena_hard import game_battles

    out: dict[str, float] = {}
    for row in details:
        if kind == "math":
            value = 100.0 * bool(row["correct"])
        elif kind == "code":
            value = 100.0 * bool(row["passed"])
        elif kind == "alpaca_eval":
            pref = row.get("preference")
            value = np.nan if pref is None else 100.0 * (float(pref) - 1.0)
        elif kind == "arena_hard":
            got = [b for g in row.get("games", []) for b in game_battles(g, weight)]  # weighted: soft
            value = 100.0 * float(np.mean(got)) if got else np.nan
        else:
            raise DataError("details.jsonl", f"unknown benchmark kind {kind!r}")
        out[str(row["id"])] = value
    return out


def _matrix(results: Path, config: dict[str, Any], model: str, bench: str, ids: list[str]) -> np.ndarray:
    spec = config["benchmarks"][bench]
    weight = int(spec.get("settings", {}).get("weight", 3))
    path = results / "evaluation" / model / bench / "details.jsonl"
    scores = item_scores(read_jsonl(path), spec["kind"], weight)
    return np.array([scores.get(i, np.nan) for i in ids], dtype=float)


def _pgr(student: np.ndarray, base: np.ndarray, ref: np.ndarray, eps: float) -> np.ndarray:
    """PGR per bootstrap round (rows: rounds); NaN where the gap S_ref - S_0 is within eps."""
    with np.errstate(invalid="ignore", divide="ignore"):
        s, b, r = (np.nanmean(x, axis=-1) for x in (student, base, ref))
        gap = r - b
        return np.where(np.abs(gap) > eps, (s - b) / gap * 100.0, np.nan)


def _gain(student: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The student's score minus S_0's, in points (per bootstrap round when rows are rounds)."""
    with np.errstate(invalid="ignore"):
        return np.nanmean(student, axis=-1) - np.nanmean(base, axis=-1)


def _interval(stacked: np.ndarray) -> tuple[float, float]:
    """95% percentile interval of the per-round means of a (benchmarks, rounds) array."""
    some = ~np.isnan(stacked).all(axis=0)  # rounds with at least one defined value
    means = np.nanmean(stacked[:, some], axis=0)
    lo, hi = np.percentile(means, [2.5, 97.5]) if len(means) else (np.nan, np.nan)
    return float(lo), float(hi)


def paired_bootstrap(
    results: str | Path, config: dict[str, Any], rounds: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per generator of the main experiment: mean benchmark-level PGR, its 95% paired-bootstrap interval,
    how many benchmark-level PGRs were defined on the full slices, and the mean gain over S_0 (student
    minus S_0, in points, with its interval from the same rounds). The gain does not divide by
    S_ref - S_0, so on small slices, where that gap is an item or two, it is the steadier ranking."""
    results = Path(results)
    main = wf.main_experiment(config)
    eps = float(config.get("analysis", {}).get("pgr_eps", 1e-6))
    rng = np.random.default_rng(seed)
    per_gen: dict[str, list[np.ndarray]] = {}
    points: dict[str, list[float]] = {}
    gains: dict[str, list[np.ndarray]] = {}
    gain_points: dict[str, list[float]] = {}
    for bench, spec in config["benchmarks"].items():
        ids = [str(r["id"]) for r in read_jsonl(results / "evaluation" / "base" / bench / "details.jsonl")]
        idx = rng.integers(0, len(ids), size=(rounds, len(ids)))  # one resample per round, shared
        base, ref = (_matrix(results, config, m, bench, ids) for m in wf.BASELINES)
        for s in wf.students(config):
            if (s.variant, s.size) != (main["variant"], main["size"]) or spec["domain"] != s.domain:
                continue
            student = _matrix(results, config, s.path, bench, ids)
            per_gen.setdefault(s.generator, []).append(_pgr(student[idx], base[idx], ref[idx], eps))
            points.setdefault(s.generator, []).append(float(_pgr(student, base, ref, eps)))
            gains.setdefault(s.generator, []).append(_gain(student[idx], base[idx]))
            gain_points.setdefault(s.generator, []).append(float(_gain(student, base)))
    rows = []
    for gen, draws in per_gen.items():
        defined = [p for p in points[gen] if not np.isnan(p)]
        lo, hi = _interval(np.vstack(draws))  # (benchmark PGRs, rounds)
        g_lo, g_hi = _interval(np.vstack(gains[gen]))
        rows.append({
            "generator": gen, "mean_pgr": float(np.mean(defined)) if defined else np.nan,
            "ci_low": lo, "ci_high": hi,
            "defined": len(defined), "benchmark_pgrs": len(points[gen]),
            "mean_gain": float(np.nanmean(gain_points[gen])), "gain_low": g_lo, "gain_high": g_hi,
        })  # fmt: skip
    return pd.DataFrame(rows).sort_values("mean_pgr", ascending=False, ignore_index=True)


def run_checks(results: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    """The issue's demo targets read from the outputs: valid instances per set, rows per student,
    defined benchmark-level PGRs and judged verdict coverage."""
    results = Path(results)
    valid = {}
    for g, d, m, v in wf.generated_sets(config):
        stats = json.loads((results / "generation" / g / d / m / v / "pool.stats.json").read_text())
        valid[f"{g}/{d}/{m}"] = int(stats["valid"])
    rows = {}
    for s in wf.students(config):
        info = json.loads((results / "training" / s.path / "train_info.json").read_text())
        # untrained students (no valid instance) record train_rows; trained ones their dataset
        rows[s.path] = int(info["train_rows"] if "train_rows" in info else info["dataset"]["rows"])
    long = pd.read_csv(results / "analysis" / "pgr_long.csv")
    bench = long[long["level"] == "benchmark"]
    coverage = {}
    for model, b in wf.evaluations(config):
        if b in wf.judged(config):
            counts = json.loads((results / "evaluation" / model / b / "score.json").read_text())["counts"]
            judged = int(counts.get("judged", 0))
            coverage[f"{model}/{b}"] = (
                (judged - int(counts.get("judge_unparsed", 0))) / judged if judged else 0.0
            )
    return {
        "min_valid": min(valid.values()),
        "sets_with_8_valid": sum(n >= 8 for n in valid.values()),
        "sets": len(valid),
        "min_train_rows": min(rows.values()),
        "pgr_defined": int(bench["pgr"].notna().sum()),
        "pgr_total": len(bench),
        "min_verdict_coverage": min(coverage.values()) if coverage else None,
        "judged_scores_95": sum(c >= 0.95 for c in coverage.values()),
        "judged_scores": len(coverage),
    }


def _baseline_scores(results: Path) -> str:
    lines = (results / "analysis" / "scores.md").read_text().strip().splitlines()
    keep = [
        ln
        for ln in lines
        if not ln.startswith("|") or re.match(r"\|\s*(?:(?:Model|model|base|reference)\b|-{3})", ln)
    ]
    return "\n".join(keep)


def _shared(load: tuple[float | None, float | None]) -> str:
    """A warning when other work ran on the machine as the run began (load above one core). The load after
    is the demo's own two jobs, so it says nothing of other work."""
    before = load[0]
    shared = ": the machine was shared" if before is not None and before > 1.0 else ""
    return f"{shared}; the load after includes the demo's own jobs"


def _environment(measure: dict[str, Any]) -> str:
    """Whether the measured run built `.venv` (measure.py --absent .venv), when that was recorded."""
    absent = (measure.get("absent_before") or {}).get(".venv")
    if absent is None:
        return ""
    return "; `.venv` was absent, so the time includes building it" if absent else "; `.venv` existed"


def _weaker_generators(config: dict[str, Any]) -> dict[str, int]:
    """Generators whose output budget is cut below the shared one, with their budget."""
    shared = ((config.get("generation") or {}).get("sampling") or {}).get("max_tokens")
    return {
        name: spec["sampling"]["max_tokens"]
        for name, spec in (config.get("generators") or {}).items()
        if shared and (spec.get("sampling") or {}).get("max_tokens", shared) < shared
    }


def _weaker_by_construction(config: dict[str, Any]) -> str:
    """A sentence naming the generators whose output budget is cut below the shared one, or ''."""
    shared = config["generation"]["sampling"]["max_tokens"] if _weaker_generators(config) else None
    return "".join(
        f" {name} is weaker by construction ({n} new tokens per call against {shared})"
        for name, n in _weaker_generators(config).items()
    )


def _verdict(ranking: pd.DataFrame, config: dict[str, Any]) -> str:
    """Whether each weaker-by-construction generator came out below the others in this run: below on
    the gain over S_0 with non-overlapping intervals, or not separated."""
    weak = set(_weaker_generators(config))
    lines = []
    for r in ranking[ranking["generator"].isin(weak)].itertuples():
        others = ranking[~ranking["generator"].isin(weak)]
        below = bool((r.mean_gain < others["mean_gain"]).all())
        apart = bool((r.gain_high < others["gain_low"]).all())
        if below and apart:
            lines.append(
                f"In this run {r.generator} is below the others, with gain intervals that do not overlap."
            )
        else:
            where = "below" if below else "not below"
            lines.append(
                f"In this run {r.generator} is {where} the others on the gain over S_0 and the intervals "
                "overlap: the demo does not separate the generators."
            )
    return " ".join(lines)


def render(results: str | Path, config: dict[str, Any], measure: dict[str, Any], figure: str) -> str:
    """The section between the README's DEMO-RESULTS markers."""
    results = Path(results)
    checks = run_checks(results, config)
    ranking = paired_bootstrap(results, config)
    load = measure.get("load_average_before", [None])[0], measure.get("load_average_after", [None])[0]
    out = [
        BEGIN,
        "### What the demo printed",
        "",
        "Regenerated by `benchmarks/demo_readme.py` from a run measured with `benchmarks/measure.py` "
        f"(`{measure['command']}`, {measure['date']}; {measure['cpus']} cores, load average {load[0]} before "
        f"and {load[1]} after{_shared(load)}): **{measure['wall_s'] / 60:.1f} min wall, "
        f"{measure['peak_tree_rss_gib']:.2f} GiB peak memory** (summed RSS of the process tree), "
        f"{measure.get('jobs')} jobs, exit status {measure['returncode']}{_environment(measure)}.",
        "",
        f"- generated sets with >= 8 valid instances: {checks['sets_with_8_valid']} of {checks['sets']} "
        f"(fewest: {checks['min_valid']}); smallest student training set: {checks['min_train_rows']} rows",
        f"- benchmark-level PGRs defined: {checks['pgr_defined']} of {checks['pgr_total']}",
        f"- judged scores with a verdict for >= 95% of their pairs: {checks['judged_scores_95']} of "
        f"{checks['judged_scores']} (lowest coverage {_pct(checks['min_verdict_coverage'])})",
        "",
        "Generators ranked by the mean of their students' benchmark-level PGRs, with a 95% paired "
        "bootstrap interval over benchmark items (1,000 rounds; `agorabench/demo_report.py`), and the "
        "mean gain of their students over S_0 in points (student minus S_0 on the same items, with its "
        "interval from the same rounds: it does not divide by S_ref - S_0, which is an item or two on "
        f"these slices).{_weaker_by_construction(config)}:",
        "",
        "| Generator | mean PGR | 95% interval | PGRs defined | gain over S_0 (points) | 95% interval |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in ranking.itertuples():
        out.append(
            f"| {r.generator} | {_num(r.mean_pgr)} | [{_num(r.ci_low)}, {_num(r.ci_high)}] "
            f"| {r.defined} of {r.benchmark_pgrs} | {_num(r.mean_gain)} "
            f"| [{_num(r.gain_low)}, {_num(r.gain_high)}] |"
        )
    verdict = _verdict(ranking, config)
    out += ["", verdict] if verdict else []
    out += [
        "",
        "The PGR table (`results/demo/analysis/pgr.md`; Table 2 layout, best per method block in bold; "
        "`n/a` is an undefined PGR, never a number):",
        "",
        (results / "analysis" / "pgr.md").read_text().strip(),
        "",
        "Scores of S_0 and S_ref (`scores.md`, percent):",
        "",
        _baseline_scores(results),
        "",
        f"![PGR per generator, domain and method (demo)]({figure})",
        END,
    ]
    return "\n".join(out)


def _num(x: float) -> str:
    return "n/a" if x is None or np.isnan(x) else f"{x:.1f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def replace_section(readme: str, section: str) -> str:
    """The README text with its DEMO-RESULTS block replaced; both markers must be present once."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise DataError("README.md", f"needs exactly one {BEGIN} ... {END} block")
    start, stop = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[:start] + section + readme[stop:]
