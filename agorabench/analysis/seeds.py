"""Seed variance (not in the paper): how much a student's PGR moves with its training or generation seed.

A seed study (`experiments.<name>.training_seeds`) trains each of its students once per seed, on the same
training data; the run with `training.seed` is the student of Table 2 itself. Per student and level
(benchmark, domain) the table gives every seed's PGR, their mean and between-seed spread (sd with ddof 1,
min, max, range) and, from the paired bootstrap over benchmark items (the same resampled items for every
seed, S0 and S_ref), each seed's interval, the interval of the seed mean and the item-sampling sd of one
seed's PGR: `seed_to_item_sd` above 1 means the seed moves a PGR more than the benchmark's items do.
A generator entry with `replicate_of` and its own `generation_seed` varies the generation seed instead:
its students are listed under the generator it repeats, `varies` telling the two kinds of rows apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agorabench import workflow as wf
from agorabench.analysis import study, uncertainty
from agorabench.analysis.pgr import DOMAIN_LEVEL
from agorabench.errors import ConfigError

NOT_COMPUTED = "not computed"  # interval status without analysis.bootstrap
TRAINING_SEED, GENERATION_SEED = "training seed", "generation seed"  # the `varies` column
STUDENT = ["generator", "domain", "method", "variant", "size"]
GROUP = [*STUDENT, "varies"]  # one seed study: a student and which seed varies
KEYS = [*GROUP, "level", "benchmark"]
RUN = ["seed", "primary", "model"]
PER_SEED_COLUMNS = [*KEYS, *RUN, "pgr", "pgr_low", "pgr_high", "pgr_interval", "item_sd"]
SUMMARY_COLUMNS = [
    *KEYS, "seeds", "n_seeds", "pgr_primary", "seed_mean", "seed_sd", "seed_min", "seed_max", "seed_range",
    "mean_low", "mean_high", "mean_interval", "item_sd", "seed_to_item_sd",
]  # fmt: skip


# Which students: the config's seed study ----------------------------------------------------------------


def replicate_records(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run of the seed studies as a student record (model = the run's model key) with its `seed`,
    `primary` (the student of Table 2) and `varies`: each training run of a student with several
    training seeds, and each pair of a generation-seed replicate (`replicate_of`) with the student it
    repeats, under that student's generator. ConfigError when there is no seed study."""
    records = [
        vars(r.student) | {"model": r.path, "seed": r.seed, "primary": r.primary, "varies": TRAINING_SEED}
        for r in wf.replicates(config)
    ]
    for primary, replicate in wf.generation_replicates(config):
        for s, is_primary in ((primary, True), (replicate, False)):
            seed = wf.generation_seed(config, s.generator)
            records.append(
                vars(primary)
                | {"model": s.path, "seed": seed, "primary": is_primary, "varies": GENERATION_SEED}
            )
    if not records:
        raise ConfigError(
            "experiments",
            "seed variance needs an experiment whose `training_seeds` lists a second seed, or a generator "
            "with `replicate_of`",
        )
    return records


def score_paths(config: dict[str, Any]) -> list[str]:
    """The score files of the seed study: every run on its domain's benchmarks, S0 and S_ref on those."""
    root = f"{config['results_dir']}/evaluation"
    records = replicate_records(config)
    domains = {r["domain"] for r in records}
    benches = [b for d in wf.DOMAINS if d in domains for b in wf.benchmarks_of(config, d)]
    pairs = [(m, b) for m in wf.BASELINES for b in benches]
    pairs += [(r["model"], b) for r in records for b in wf.benchmarks_of(config, r["domain"])]
    return [f"{root}/{m}/{b}/score.json" for m, b in dict.fromkeys(pairs)]


# Per seed and across seeds --------------------------------------------------------------------------------


def per_seed(
    scores: pd.DataFrame,
    records: Sequence[Mapping[str, Any]],
    benchmarks: Mapping[str, str],
    eps: float,
    boot: uncertainty.StudyDraws | None,
) -> pd.DataFrame:
    """One row per run and level: its PGR and, with `boot`, its item-bootstrap interval and sd. (A student
    in both kinds of seed study, training and generation, has rows in each.)"""
    parts = []
    for varies in dict.fromkeys(r.get("varies", TRAINING_SEED) for r in records):
        runs = [r for r in records if r.get("varies", TRAINING_SEED) == varies]
        part, _ = study.pgr_long_from_scores(scores, runs, benchmarks, eps)
        meta = {r["model"]: (int(r["seed"]), bool(r["primary"])) for r in runs}
        part["seed"] = [meta[m][0] for m in part["model"]]
        part["primary"] = [meta[m][1] for m in part["model"]]
        part["varies"] = varies
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    extra = [_item_columns(boot, key) for key in zip(table["model"], table["benchmark"], strict=True)]
    table[["pgr_low", "pgr_high", "pgr_interval", "item_sd"]] = pd.DataFrame(extra, index=table.index)
    return table[PER_SEED_COLUMNS]


def _item_columns(boot: uncertainty.StudyDraws | None, key: tuple[str, str]) -> tuple[Any, ...]:
    """A run's interval, status and item-sampling sd (n/a without a bootstrap or when not stable)."""
    if boot is None:
        return math.nan, math.nan, NOT_COMPUTED, math.nan
    status = boot.status[key]
    lo, hi = uncertainty.summary(boot.pgr[key], status, boot.level)
    return lo, hi, status, _sd(boot.pgr[key]) if status == uncertainty.STABLE else math.nan


def _sd(draws: np.ndarray) -> float:
    ok = np.asarray(draws, dtype=float)
    ok = ok[np.isfinite(ok)]
    return float(np.std(ok, ddof=1)) if ok.size > 1 else math.nan


def summarize(runs: pd.DataFrame, boot: uncertainty.StudyDraws | None) -> pd.DataFrame:
    """Per student and level: the seeds' PGRs summarized, beside the item bootstrap of their mean."""
    rows = [_summary_row(group, boot) for _, group in runs.groupby(KEYS, sort=False)]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _summary_row(group: pd.DataFrame, boot: uncertainty.StudyDraws | None) -> dict[str, Any]:
    group = group.sort_values(["primary", "seed"], ascending=[False, True])
    values = group["pgr"].to_numpy(float)
    defined = bool(np.isfinite(values).all())
    row = {k: group[k].iloc[0] for k in KEYS} | {
        "seeds": " ".join(str(s) for s in group["seed"]),
        "n_seeds": len(group),
        "pgr_primary": float(group.loc[group["primary"], "pgr"].iloc[0]),
        "seed_mean": float(values.mean()) if defined else math.nan,
        "seed_sd": float(values.std(ddof=1)) if defined and len(values) > 1 else math.nan,
        "seed_min": float(values.min()) if defined else math.nan,
        "seed_max": float(values.max()) if defined else math.nan,
    }
    row["seed_range"] = row["seed_max"] - row["seed_min"]
    row |= _mean_interval(group, boot)
    row["item_sd"] = float(group["item_sd"].mean()) if group["item_sd"].notna().all() else math.nan
    row["seed_to_item_sd"] = row["seed_sd"] / row["item_sd"] if row["item_sd"] > 0 else math.nan
    return row


def _mean_interval(group: pd.DataFrame, boot: uncertainty.StudyDraws | None) -> dict[str, Any]:
    """The item-bootstrap interval of the seed mean: the mean over seeds in each round (same items)."""
    if boot is None:
        return {"mean_low": math.nan, "mean_high": math.nan, "mean_interval": NOT_COMPUTED}
    keys = list(zip(group["model"], group["benchmark"], strict=True))
    status = uncertainty.worst(boot.status[k] for k in keys)
    draws = np.mean([boot.pgr[k] for k in keys], axis=0)
    lo, hi = uncertainty.summary(draws, status, boot.level)
    return {"mean_low": lo, "mean_high": hi, "mean_interval": status}


# Files -----------------------------------------------------------------------------------------------------


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def markdown(summary: pd.DataFrame, runs: pd.DataFrame, settings: Mapping[str, Any] | None) -> str:
    """seed_variance.md: one row per student and level, every seed's PGR beside the spread and interval."""
    from agorabench.analysis.tables import to_markdown

    if settings is None:
        how = "no `analysis.bootstrap`: item-bootstrap columns are n/a"
    else:
        how = (
            f"paired bootstrap over benchmark items ({settings['rounds']} rounds, {settings['level']:.0%} "
            "intervals; the same resampled items for every seed)"
        )
    head = (
        "How much the PGR moves with the student's training seed (`experiments.<name>.training_seeds`; the "
        "first seed is `training.seed`, the student of Table 2) or generation seed (a generator entry with "
        "`replicate_of`, listed under the generator it repeats; the first seed is that generator's). "
        "Seed sd: between seeds (ddof 1); item sd: "
        f"item-sampling sd of one seed's PGR; interval: the seed mean's, {how}."
    )
    by_key = {k: g.sort_values(["primary", "seed"], ascending=[False, True]) for k, g in runs.groupby(KEYS)}
    view = pd.DataFrame({
        "Generator": summary["generator"], "Domain": summary["domain"], "Method": summary["method"],
        "Varies": summary["varies"],
        "Benchmark": summary["benchmark"].where(summary["level"] != DOMAIN_LEVEL, "(domain)"),
        "n": summary["size"].astype(str),
        "PGR per seed": [_per_seed_text(by_key[tuple(r[k] for k in KEYS)]) for _, r in summary.iterrows()],
        "Seed mean [interval]": [_mean_text(r) for r in summary.itertuples()],
        "Seed sd": summary["seed_sd"].map(_num), "Range": summary["seed_range"].map(_num),
        "Item sd": summary["item_sd"].map(_num), "Seed sd / item sd": summary["seed_to_item_sd"].map(_ratio),
    }).set_index(["Generator", "Domain", "Method"])  # fmt: skip
    return head + "\n\n" + to_markdown(view)


def _per_seed_text(group: pd.DataFrame) -> str:
    return "; ".join(f"{s}: {_num(v)}" for s, v in zip(group["seed"], group["pgr"], strict=True))


def _mean_text(r: Any) -> str:
    if r.mean_interval == NOT_COMPUTED:
        return _num(r.seed_mean)
    return uncertainty.interval_text(r.seed_mean, r.mean_low, r.mean_high, r.mean_interval)


def _ratio(value: float) -> str:
    return _num(value, 2)


def plot(runs: pd.DataFrame, out_stem: str, note: str = "") -> list[Path]:
    """Domain-level PGR of every seed per student (item-bootstrap intervals as error bars where stable);
    the filled marker is training.seed's run, the student of Table 2."""
    from matplotlib.figure import Figure

    from agorabench.analysis.figures import DOMAIN_COLORS, save_figure
    from agorabench.analysis.tables import METHOD_LABELS

    dom = runs[runs["level"] == DOMAIN_LEVEL]
    students = list(dict.fromkeys(zip(*(dom[k] for k in GROUP), strict=True)))
    fig = Figure(figsize=(max(5.0, 0.9 * len(students) + 2), 4.0))
    ax = fig.subplots()
    for x, key in enumerate(students):
        sub = dom[[tuple(row) == key for row in dom[GROUP].itertuples(index=False)]].sort_values("seed")
        offsets = np.linspace(-0.25, 0.25, len(sub)) if len(sub) > 1 else np.zeros(1)
        for dx, r in zip(offsets, sub.itertuples(), strict=True):
            color = DOMAIN_COLORS.get(r.domain, "black")
            err = None if math.isnan(r.pgr_low) else [[r.pgr - r.pgr_low], [r.pgr_high - r.pgr]]
            face = color if r.primary else "white"
            ax.errorbar(x + dx, r.pgr, yerr=err, fmt="o", color=color, mfc=face, capsize=2)
    labels = [f"{g}\n{METHOD_LABELS.get(m, m)}\n{d}, n{n}\n{v}" for g, d, m, _, n, v in students]
    ax.set_xticks(range(len(students)), labels, fontsize=6)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("PGR (%)")
    ax.set_title("PGR per training or generation seed (filled: the student of Table 2)", fontsize=9)
    return save_figure(fig, out_stem, note)


def seed_variance(
    inputs: study.StudyInputs,
    *,
    csv_path: str,
    per_seed_path: str,
    md_path: str,
    png_path: str,
    pdf_path: str,
) -> dict[str, int]:
    """The seed-variance target: seed_variance.csv (per student and level), seed_variance_per_seed.csv,
    seed_variance.md and the figure. `inputs.students`: `replicate_records`; `inputs.bootstrap` is
    analysis.bootstrap (None: no item bootstrap)."""
    from agorabench.jsonl import write_text

    scores, students, eps, spec = inputs.score_frame(), inputs.students, inputs.eps, inputs.bootstrap
    used = {b: d for b, d in inputs.benchmarks.items() if d in {s["domain"] for s in students}}
    settings = uncertainty.bootstrap_settings(spec) if spec is not None else None
    boot = uncertainty.study_from_scores(scores, students, used, eps, settings) if settings else None
    runs = per_seed(scores, students, used, eps, boot)
    summary = summarize(runs, boot)
    runs.to_csv(per_seed_path, index=False, na_rep="n/a")
    summary.to_csv(csv_path, index=False, na_rep="n/a")
    write_text(Path(md_path), markdown(summary, runs, settings))
    paths = plot(runs, png_path.removesuffix(".png"))
    if {str(p) for p in paths} != {png_path, pdf_path}:
        raise RuntimeError(f"figure written to {paths}, expected {png_path} and {pdf_path}")
    return {"students": len(summary[summary["level"] == DOMAIN_LEVEL]), "runs": int(runs["model"].nunique())}
