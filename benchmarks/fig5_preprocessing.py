"""Which preprocessing reproduces the paper's Figure 5 (explained variance of PC1-PC5) and Figure 6 (R^2 of
PGR on the top-5 PCs)? Every variant is computed on the paper's own numbers (Table 8 intrinsic metrics,
Table 7 problem solving, Table 2 PGRs; `agorabench.analysis.paper`) and printed beside the figures.

    .venv/bin/python benchmarks/fig5_preprocessing.py [--top 25] [--draws 1000] [--seed 0]

Variant axes: rows (the 54 sets; + the 18 Table 8 averages; the 18 averages alone; 6 per-generator means),
features (the paper's 9; without the two Prometheus columns; without problem solving), perplexity (as
printed or its log), problem solving (the generator's domain mean of Table 7, or its Table 7 average),
normalisation groups (none, per domain, per method, per setting) and scaling (z-score, min-max, none).
Transformations that cannot change the result are checked numerically instead of enumerated (ddof 0/1,
diversity as 1 - x, sklearn's PCA, the correlation matrix's eigenvalues).

Rounding: each printed value is redrawn uniformly within half a unit of its last digit (`--draws` times;
values printed identically for all six generators, the response-generation instruction metrics, are one
value and drawn once), and the range of each statistic is reported for the closest variants. A variant
reproduces a figure when every printed value lies within that range widened by the figure's own rounding.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from agorabench.analysis import paper
from agorabench.analysis.pgr import BENCHMARK_DOMAINS, DOMAINS
from agorabench.analysis.regression import domain_problem_solving, intrinsic_features, ols

K = 5
PROMETHEUS = ("instruction_difficulty_prometheus", "response_quality_prometheus")
GROUPS = {"none": [], "domain": ["domain"], "method": ["method"], "setting": ["method", "domain"]}


@dataclass(frozen=True)
class Variant:
    rows: str  # sets | sets+averages | averages | generators
    features: str  # 9 | no-prometheus | no-problem-solving
    perplexity: str  # as-is | log
    problem_solving: str  # domain-mean | average
    normalise: str  # none | domain | method | setting
    scaling: str  # z | minmax | none


@dataclass(frozen=True)
class Tables:
    t8: pd.DataFrame  # long, as paper.paper_table8()
    t7: pd.DataFrame  # as paper.paper_table7()
    t2: pd.DataFrame  # as paper.paper_table2()


def paper_tables() -> Tables:
    return Tables(paper.paper_table8(), paper.paper_table7(), paper.paper_table2())


def variants() -> Iterator[Variant]:
    for rows, feats, ppl, ps, norm, scale in itertools.product(
        ("sets", "sets+averages", "averages", "generators"),
        ("9", "no-prometheus", "no-problem-solving"),
        ("as-is", "log"),
        ("domain-mean", "average"),
        tuple(GROUPS),
        ("z", "minmax", "none"),
    ):
        if feats == "no-problem-solving" and ps != "domain-mean":
            continue  # the problem-solving choice is moot without the feature
        if rows in ("averages", "generators") and norm != "none":
            continue  # group normalisation needs the per-domain sets
        yield Variant(rows, feats, ppl, ps, norm, scale)


def all_rows(t: Tables) -> tuple[pd.DataFrame, pd.Series]:
    """Every candidate row (the 54 sets and the 18 Table 8 averages) with the 8 metrics, both problem-solving
    readings (`ps_domain`, `ps_average`), and the row's Table 2 PGR."""
    f = intrinsic_features(t.t8, domains=[*DOMAINS, "average"])
    per_domain = domain_problem_solving(t.t7, BENCHMARK_DOMAINS)
    gens, doms = f.index.get_level_values("generator"), f.index.get_level_values("domain")
    f["ps_average"] = t.t7.loc[gens, "average"].to_numpy()
    f["ps_domain"] = [
        per_domain.at[g, d] if d != "average" else t.t7.at[g, "average"]
        for g, d in zip(gens, doms, strict=True)
    ]
    y = pd.Series([t.t2.at[(g, m), d] for g, m, d in f.index], index=f.index)
    return f, y


def design(v: Variant, rows: tuple[pd.DataFrame, pd.Series]) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature rows (columns in Figure 5's order) and the PGR of each row for one variant."""
    _, printed = paper.paper_fig5()
    f, y = rows
    average = f.index.get_level_values("domain") == "average"
    keep = {"sets": ~average, "sets+averages": average | ~average, "averages": average}.get(v.rows, ~average)
    ps = "ps_domain" if v.problem_solving == "domain-mean" else "ps_average"
    f, y = f[keep].rename(columns={ps: "problem_solving"})[list(printed.index)], y[keep]
    if v.rows == "generators":
        f, y = (
            f.groupby(level="generator", sort=False).mean(),
            y.groupby(level="generator", sort=False).mean(),
        )
    if v.perplexity == "log":
        f["perplexity"] = np.log(f["perplexity"])
    if v.features == "no-prometheus":
        f = f.drop(columns=list(PROMETHEUS))
    elif v.features == "no-problem-solving":
        f = f.drop(columns="problem_solving")
    if GROUPS[v.normalise]:
        by = [f.index.get_level_values(level) for level in GROUPS[v.normalise]]
        f = f.groupby(by).transform(lambda c: (c - c.mean()) / c.std(ddof=0) if c.std() > 0 else c * 0.0)
    return f, y.to_numpy(float)


def scale(x: np.ndarray, how: str) -> np.ndarray:
    x = x[:, np.ptp(x, axis=0) > 0]
    centred = x - x.mean(axis=0)
    if how == "z":
        return centred / x.std(axis=0)
    if how == "minmax":
        return centred / np.ptp(x, axis=0)
    return centred


def statistics(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Explained variance (%) of PC1-PC5 and the Figure 6 fits: R^2 of y on the top-5 PC scores, adjusted
    for 5 predictors, and adjusted for one (the fitted composite), with the composite's p."""
    _, sing, vt = np.linalg.svd(x, full_matrices=False)
    var = sing**2 / (sing**2).sum() * 100.0
    out = {f"PC{i + 1}": float(var[i]) if i < len(var) else np.nan for i in range(K)}
    out |= {"r2": np.nan, "adj_r2_5": np.nan, "adj_r2_1": np.nan, "p_composite": np.nan}
    k = min(K, len(var))
    if len(y) > k + 2:
        scores = x @ vt[:k].T
        fit = ols(scores, y)
        composite = ols(scores @ fit.coef, y)
        out |= {
            "r2": fit.r_squared,
            "adj_r2_5": fit.adjusted_r_squared,
            "adj_r2_1": composite.adjusted_r_squared,
            "p_composite": composite.p_value,
        }
    return out


def evaluate(v: Variant, rows: tuple[pd.DataFrame, pd.Series]) -> dict[str, float]:
    f, y = design(v, rows)
    return statistics(scale(f.to_numpy(float), v.scaling), y)


def perturbed(t: Tables, rng: np.random.Generator) -> Tables:
    """The tables with every printed value redrawn within half a unit of its last digit."""
    half = paper.printed_half_units()
    t8 = t.t8.copy()
    step = t8["metric"].map(half["table8"]).to_numpy()
    # one printed value repeated for all generators (response generation's fixed instructions): one draw
    keys = ["metric", "method", "domain"]
    same = t8.groupby(keys)["value"].transform("nunique").eq(1).to_numpy()
    group = t8.groupby(keys, sort=False).ngroup().to_numpy()
    shared = rng.uniform(-1.0, 1.0, group.max() + 1)[group]
    own = rng.uniform(-1.0, 1.0, len(t8))
    t8["value"] = t8["value"] + np.where(same, shared, own) * step
    t7 = t.t7 + rng.uniform(-1.0, 1.0, t.t7.shape) * half["table7"]
    t2 = t.t2 + rng.uniform(-1.0, 1.0, t.t2.shape) * half["table2"]
    return Tables(t8, t7, t2)


def rounding_ranges(v: Variant, t: Tables, draws: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = [evaluate(v, all_rows(perturbed(t, rng))) for _ in range(draws)]
    return pd.DataFrame(out).agg(["min", "max"])


def _shifted(t: Tables, table: str, rows: np.ndarray, step: float) -> Tables:
    """The tables with the value(s) `rows` (positions) of one table moved by `step`."""
    if table == "t8":
        t8 = t.t8.copy()
        t8.iloc[rows, t8.columns.get_loc("value")] += step
        return Tables(t8, t.t7, t.t2)
    frame = getattr(t, table).copy()
    frame.iloc[rows[0], rows[1]] += step
    return Tables(**{**t.__dict__, table: frame})


def _units(t: Tables) -> list[tuple[str, np.ndarray, float]]:
    """Each independently printed value: (table, its position(s), half a unit of its last digit). A Table 8
    value printed for all six generators (response generation's fixed instructions) is one unit."""
    half = paper.printed_half_units()
    step = t.t8["metric"].map(half["table8"]).to_numpy()
    keys = ["metric", "method", "domain"]
    same = t.t8.groupby(keys)["value"].transform("nunique").eq(1).to_numpy()
    group = t.t8.groupby(keys, sort=False).ngroup().to_numpy()
    units = [("t8", np.array([i]), step[i]) for i in np.flatnonzero(~same)]
    for g in np.unique(group[same]):
        rows = np.flatnonzero(group == g)
        units.append(("t8", rows, step[rows[0]]))
    for name, key in (("t7", "table7"), ("t2", "table2")):
        n_rows, n_cols = getattr(t, name).shape
        units += [(name, np.array([r, c]), half[key]) for r in range(n_rows) for c in range(n_cols)]
    return units


def worst_case_reach(v: Variant, t: Tables) -> pd.Series:
    """First-order bound on how far rounding can move each statistic: the sum over printed values of
    |change when that value alone moves by its half unit|."""
    base = pd.Series(evaluate(v, all_rows(t)))
    reach = base * 0.0
    for table, rows, step in _units(t):
        reach += (pd.Series(evaluate(v, all_rows(_shifted(t, table, rows, step)))) - base).abs()
    return reach


def invariance_check(t: Tables) -> dict[str, float]:
    """Max |difference| of the explained variance (and R^2) between equivalent computations."""
    base = Variant("sets", "9", "as-is", "domain-mean", "none", "z")
    f, y = design(base, all_rows(t))
    x = f.to_numpy(float)
    ref = statistics(scale(x, "z"), y)
    ddof1 = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    flipped = x.copy()
    for col in ("instruction_diversity", "response_diversity"):
        flipped[:, list(f.columns).index(col)] = 1.0 - flipped[:, list(f.columns).index(col)]
    sk = PCA(n_components=K).fit(scale(x, "z")).explained_variance_ratio_ * 100.0
    corr = np.sort(np.linalg.eigvalsh(np.corrcoef(x, rowvar=False)))[::-1]
    names = [*(f"PC{i + 1}" for i in range(K)), "r2"]

    def gap(other: dict[str, float]) -> float:
        return max(abs(other[n] - ref[n]) for n in names)

    return {
        "ddof 1": gap(statistics(ddof1, y)),
        "diversity 1 - x": gap(statistics(scale(flipped, "z"), y)),
        "sklearn PCA": float(np.abs(sk - [ref[f"PC{i + 1}"] for i in range(K)]).max()),
        "correlation-matrix eigenvalues": float(
            np.abs(corr[:K] / corr.sum() * 100.0 - [ref[f"PC{i + 1}"] for i in range(K)]).max()
        ),
    }


def table(t: Tables) -> pd.DataFrame:
    variance, _ = paper.paper_fig5()
    rows, candidates = [], all_rows(t)
    for v in variants():
        s = evaluate(v, candidates)
        gap = max(abs(s[pc] - variance[pc]) for pc in variance.index)
        rows.append({**v.__dict__, **s, "max_gap": gap})
    return pd.DataFrame(rows).sort_values("max_gap", kind="stable").reset_index(drop=True)


def _fmt(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".3f")


DEFAULT = Variant("sets", "9", "as-is", "domain-mean", "none", "z")  # the project's (regression.pca)
FIELDS = list(Variant.__dataclass_fields__)
STATS = [*(f"PC{i + 1}" for i in range(K)), "r2", "adj_r2_1"]


def near_r_squared(res: pd.DataFrame, printed: float, tol: float = 0.002) -> pd.DataFrame:
    """Variants where some R^2 reading (plain, adjusted for 5 PCs, adjusted for one composite) is near."""
    hits = [res[(res[c] - printed).abs() <= tol].assign(matches=c) for c in ("r2", "adj_r2_5", "adj_r2_1")]
    return pd.concat(hits).drop(columns="p_composite")


def rounding_report(v: Variant, t: Tables, draws: int, seed: int, worst_case: bool) -> str:
    """Range of each statistic over the redraws (and the first-order worst case) beside the paper."""
    variance, _ = paper.paper_fig5()
    fig6 = paper.paper_fig6()
    printed = pd.Series({**variance.to_dict(), "r2": fig6["r_squared"], "adj_r2_1": fig6["r_squared"]})
    tol = pd.Series({**{pc: 0.05 for pc in variance.index}, "r2": 0.0005, "adj_r2_1": 0.0005})
    rng = rounding_ranges(v, t, draws, seed)[STATS]
    ours = pd.Series(evaluate(v, all_rows(t)))[STATS]
    rows = {"paper": printed, "ours": ours, "redraw min": rng.loc["min"], "redraw max": rng.loc["max"]}
    inside = (rng.loc["min"] - tol <= printed) & (printed <= rng.loc["max"] + tol)
    verdict = [f"redraws reach the paper: {inside.to_dict()}"]
    if worst_case:
        reach = worst_case_reach(v, t)[STATS]
        rows["worst-case reach"] = reach
        verdict.append(f"worst case reaches the paper: {((ours - printed).abs() <= reach + tol).to_dict()}")
    table = pd.DataFrame(rows).T.reset_index(names="")
    return "\n".join([f"- {v}", "", _fmt(table), "", *verdict, ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=25, help="variants to print, closest first")
    ap.add_argument("--draws", type=int, default=1000, help="rounding redraws per checked variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=int, default=3, help="closest variants whose rounding range is drawn")
    args = ap.parse_args()
    t = paper_tables()
    variance, _ = paper.paper_fig5()
    fig6 = paper.paper_fig6()
    print(f"paper: Figure 5 {variance.tolist()} (printed to 0.1), Figure 6 R^2 {fig6['r_squared']}")
    print("\n## Equivalent computations (max |difference|, percentage points / R^2)\n")
    for name, gap in invariance_check(t).items():
        print(f"- {name}: {gap:.2e}")
    res = table(t)
    print(f"\n## {len(res)} variants, closest {args.top} to Figure 5 (max_gap: largest |PCi - paper|)\n")
    print(_fmt(res.head(args.top).drop(columns="p_composite")))
    print(f"\n## Variants with some R^2 within 0.002 of the printed {fig6['r_squared']}\n")
    print(_fmt(near_r_squared(res, fig6["r_squared"])))
    print(f"\n## Rounding ({args.draws} redraws of Tables 8, 7, 2 within their printed rounding)\n")
    closest = [Variant(**r) for r in res[FIELDS].head(args.check).to_dict("records")]
    for v in dict.fromkeys([DEFAULT, *closest]):
        print(rounding_report(v, t, args.draws, args.seed, worst_case=v == DEFAULT))


if __name__ == "__main__":
    main()
