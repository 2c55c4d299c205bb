"""Figures, each written as PNG and PDF (`<out_stem>.png`, `<out_stem>.pdf`); the paper's numbers can be
overlaid. Uses matplotlib's object API (no pyplot, no global backend state: headless-safe)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from agorabench.analysis.regression import OLSResult, PCAResult, ols
from agorabench.analysis.tables import COLUMN_LABELS, METHOD_LABELS

DOMAIN_COLORS = {
    "math": "#4C72B0",
    "code": "#DD8452",
    "instruction_following": "#55A868",
    "average": "#8172B3",
}
PAPER_STYLE = {"marker": "D", "facecolor": "none", "edgecolor": "black", "zorder": 5}


def add_note(fig: Figure, note: str | None) -> None:
    """A caption-like note under the axes (what was run, why a fit is n/a); wrapped to the figure width."""
    if note:
        width = max(60, int(fig.get_figwidth() * 15))
        text = "\n".join(textwrap.fill(par, width) for par in note.split("\n"))
        fig.supxlabel(text, fontsize=7, ha="center")


def save_figure(fig: Figure, out_stem: str | Path, note: str | None = None) -> list[Path]:
    """Write `fig` (with `note` under it) as <out_stem>.png (150 dpi) and <out_stem>.pdf; returns both."""
    add_note(fig, note)
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return paths


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing} (have {list(df.columns)})")


def _fit_label(fit: OLSResult, prefix: str = "fit") -> str:
    return f"{prefix}: $R^2$ = {fit.r_squared:.3f}, p = {fit.p_value:.3e}"


def plot_pgr_bars(
    matrix: pd.DataFrame,
    out_stem: str | Path,
    *,
    paper: pd.DataFrame | None = None,
    labels: Mapping[str, str] | None = None,
    domains: Sequence[str] | None = None,
    note: str | None = None,
    intervals: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> list[Path]:
    """PGR per generator x domain, one panel per method (a `pgr_matrix` frame). Undefined PGRs are marked
    'n/a'; `paper` (same layout, e.g. paper_table2()) is overlaid as hollow diamonds; `intervals` (low and
    high frames of the same layout) are drawn as error bars, NaN (unstable: no interval) as a '~'."""
    labels = dict(labels or {})
    domains = list(domains) if domains is not None else [c for c in matrix.columns if c != "average"]
    methods = list(dict.fromkeys(matrix.index.get_level_values("method")))
    gens = list(dict.fromkeys(matrix.index.get_level_values("generator")))
    fig = Figure(figsize=(max(5.0, 1.2 * len(gens)) * len(methods), 4.0), layout="constrained")
    axes = fig.subplots(1, len(methods), squeeze=False, sharey=True)[0]
    width = 0.8 / len(domains)
    for ax, method in zip(axes, methods, strict=True):
        x = np.arange(len(gens))
        for k, domain in enumerate(domains):
            pos = x - 0.4 + width * (k + 0.5)
            vals = np.array([matrix.at[(g, method), domain] for g in gens], dtype=float)
            ax.bar(
                pos,
                np.nan_to_num(vals),
                width,
                color=DOMAIN_COLORS.get(domain),
                label=COLUMN_LABELS.get(domain, domain),
            )
            for p_, v in zip(pos, vals, strict=True):
                if np.isnan(v):
                    ax.text(p_, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
            if intervals is not None:
                _error_bars(ax, pos, vals, [[f.at[(g, method), domain] for g in gens] for f in intervals])
            if paper is not None:
                ref = [paper[domain].get((g, method), np.nan) if domain in paper else np.nan for g in gens]
                ax.scatter(pos, ref, s=18, label="paper" if k == 0 else None, **PAPER_STYLE)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(x, [labels.get(g, g) for g in gens], rotation=30, ha="right")
        ax.set_title(METHOD_LABELS.get(method, method))
    axes[0].set_ylabel("PGR (%)")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=len(names), fontsize=9)
    return save_figure(fig, out_stem, note)


def _error_bars(ax, pos: np.ndarray, vals: np.ndarray, bounds: Sequence[Sequence[float]]) -> None:
    """Interval error bars at the bars; a defined PGR without an interval (unstable) gets a '~'."""
    lo, hi = (np.asarray(b, dtype=float) for b in bounds)
    ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(vals)
    if ok.any():
        yerr = [np.clip(vals[ok] - lo[ok], 0, None), np.clip(hi[ok] - vals[ok], 0, None)]
        ax.errorbar(pos[ok], vals[ok], yerr=yerr, fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    for p_, v in zip(pos[~ok & np.isfinite(vals)], vals[~ok & np.isfinite(vals)], strict=True):
        ax.text(p_, v, "~", ha="center", va="bottom", fontsize=9)


def try_ols(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[OLSResult | None, str]:
    """An OLS fit, or None and why not (too few points, no spread): small studies report n/a, not a crash."""
    try:
        return ols(x, y), ""
    except ValueError as exc:
        return None, str(exc).removeprefix("OLS: ")


def _scatter_fit(ax, x: np.ndarray, y: np.ndarray, paper_fit: Mapping[str, float] | None) -> None:
    ax.scatter(x, y, s=22, alpha=0.8)
    fit, why = try_ols(x, y) if len(x) else (None, "no points")
    if fit is not None:
        grid = np.linspace(x.min(), x.max(), 50)
        ax.plot(grid, fit.intercept + fit.slope * grid, color="C3", label=_fit_label(fit))
    else:
        ax.plot([], [], " ", label=textwrap.fill(f"fit: $R^2$ = n/a, p = n/a ({why})", 50))
    if paper_fit is not None:
        ax.plot(
            [], [], " ", label=f"paper: $R^2$ = {paper_fit['r_squared']:.3f}, p = {paper_fit['p_value']:.3e}"
        )
    ax.legend(fontsize=8)


def plot_problem_solving_vs_data_generation(
    coarse: pd.DataFrame,
    fine: pd.DataFrame,
    out_stem: str | Path,
    *,
    paper_fits: pd.DataFrame | None = None,
    labels: Mapping[str, str] | None = None,
    note: str | None = None,
) -> list[Path]:
    """Figure 4: PGR against problem-solving score with OLS fits (R^2 and p in the legend). `coarse`: one row
    per generator (generator, problem_solving, pgr); `fine`: one per setting (same columns). `paper_fits`:
    paper_fig4() (rows coarse, fine) to print the paper's values beside ours."""
    for df, what in ((coarse, "coarse points"), (fine, "fine points")):
        _require(df, ["generator", "problem_solving", "pgr"], what)
    labels = dict(labels or {})
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for ax, df, name in ((ax1, coarse, "coarse"), (ax2, fine, "fine")):
        df = df.dropna(subset=["pgr", "problem_solving"])
        paper_fit = paper_fits.loc[name] if paper_fits is not None and name in paper_fits.index else None
        _scatter_fit(ax, df["problem_solving"].to_numpy(float), df["pgr"].to_numpy(float), paper_fit)
        ax.set_xlabel("problem-solving score")
        ax.set_ylabel("data generation: PGR (%)")
    for _, row in coarse.dropna(subset=["pgr"]).iterrows():
        ax1.annotate(
            labels.get(row["generator"], row["generator"]),
            (row["problem_solving"], row["pgr"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax1.set_title("coarse: average per generator")
    ax2.set_title("fine: per generator x setting")
    return save_figure(fig, out_stem, note)


def message_figure(title: str, message: str, out_stem: str | Path, note: str | None = None) -> list[Path]:
    """A figure that says why it has nothing to plot (e.g. a PCA with too few data sets)."""
    fig = Figure(figsize=(7, 3), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, textwrap.fill(message, 70), ha="center", va="center", fontsize=10, wrap=True)
    return save_figure(fig, out_stem, note)


def plot_pca(
    result: PCAResult,
    out_stem: str | Path,
    *,
    paper_variance: pd.Series | None = None,
    labels: Mapping[str, str] | None = None,
    note: str | None = None,
) -> list[Path]:
    """Figure 5: explained variance per principal component and the loadings heat map."""
    labels = dict(labels or {})
    var, load = result.explained_variance, result.loadings
    fig = Figure(figsize=(12, 0.45 * len(load) + 2.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    x = np.arange(len(var))
    ax1.bar(x, var.to_numpy(), color="#4C72B0", label="this run")
    if paper_variance is not None:
        ref = paper_variance.reindex(var.index)
        ax1.scatter(x, ref.to_numpy(float), s=30, label="paper", **PAPER_STYLE)
    ax1.set_xticks(x, list(var.index))
    ax1.set_ylabel("explained variance (%)")
    ax1.set_title(f"top {len(var)} PCs: {var.sum():.1f}% of variance")
    ax1.legend(fontsize=8)
    image = ax2.imshow(load.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(load.to_numpy()):
        ax2.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax2.set_xticks(np.arange(load.shape[1]), list(load.columns))
    ax2.set_yticks(np.arange(load.shape[0]), [labels.get(f, f) for f in load.index])
    ax2.set_title("loadings")
    fig.colorbar(image, ax=ax2, shrink=0.8)
    return save_figure(fig, out_stem, note)


def plot_pgr_on_pcs(
    pgr: Sequence[float] | np.ndarray,
    fit: OLSResult | None,
    out_stem: str | Path,
    *,
    paper: Mapping[str, float] | None = None,
    scores: pd.DataFrame | None = None,
    why: str = "",
    note: str | None = None,
    composite: OLSResult | None = None,
) -> list[Path]:
    """Figure 6: observed PGR against the PGR predicted from the top principal components, with the fit on
    the PC scores and on their one weighted composite (`composite`) in the legend. Without a fit (too few
    points), PGR is drawn against PC1 (`scores`) and R^2 / p are reported as n/a with `why`."""
    y = np.asarray(pgr, dtype=float)
    fig = Figure(figsize=(5, 4.5), layout="constrained")
    ax = fig.subplots()
    if fit is not None:
        ax.scatter(fit.fitted, y, s=22, alpha=0.8)
        lo, hi = float(min(y.min(), fit.fitted.min())), float(max(y.max(), fit.fitted.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
        ax.plot([], [], " ", label=_fit_label(fit, f"OLS on {fit.coef.size} PCs"))
        if composite is not None:
            ax.plot([], [], " ", label=_fit_label(composite, "OLS on 1 weighted composite"))
        ax.set_xlabel("predicted PGR (%)")
    else:
        if scores is not None and len(scores) == len(y):
            ax.scatter(scores.iloc[:, 0], y, s=22, alpha=0.8)
        ax.plot([], [], " ", label=textwrap.fill(f"OLS: $R^2$ = n/a, p = n/a ({why})", 45))
        ax.set_xlabel("PC1 score")
    if paper is not None:
        ax.plot([], [], " ", label=f"paper: $R^2$ = {paper['r_squared']:.3f}, p < {paper['p_value_below']:g}")
    ax.set_ylabel("observed PGR (%)")
    ax.legend(fontsize=8)
    return save_figure(fig, out_stem, note)


COST_AXES = {
    "size": "number of instances",
    "cost_usd": "generation cost (USD)",
    "tokens": "generated + prompt tokens",
}


def _cost_axis(ax, rows: pd.DataFrame, x: str, labels: Mapping[str, str]) -> None:
    for key, grp in rows.groupby("line", sort=False):
        grp = grp.sort_values("size")
        ax.plot(grp[x], grp["pgr"], marker="o", label=labels.get(key, key))
    values = rows[x].to_numpy(float)
    if x != "size" and len(values) and (values > 0).all() and values.max() / values.min() > 10:
        ax.set_xscale("log")
    if x == "size" and len(values) and values.max() >= 1000:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}K"))
    ax.set_xlabel(COST_AXES[x])


def plot_cost(
    rows: pd.DataFrame,
    out_stem: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    paper: pd.DataFrame | None = None,
    note: str | None = None,
) -> list[Path]:
    """Figure 7: PGR against the number of instances, generation cost (USD) and (when given, column
    `tokens`) tokens; one line per generator (and method, when several), one column per domain when `rows`
    has a `domain` column. `rows`: generator, size, cost_usd, pgr[, domain, method, tokens]; undefined PGRs
    are left out. `paper`: generator, domain, size, pgr points drawn as hollow diamonds on the size axis."""
    _require(rows, ["generator", "size", "cost_usd", "pgr"], "cost rows")
    labels = dict(labels or {})
    rows = rows.copy()
    if "domain" not in rows:
        rows["domain"] = "all"
    domains = list(dict.fromkeys(rows["domain"])) or ["all"]
    rows = rows.dropna(subset=["pgr"])
    several = "method" in rows and rows["method"].nunique() > 1
    rows["line"] = [
        f"{labels.get(g, g)} ({METHOD_LABELS.get(m, m)})" if several else labels.get(g, g)
        for g, m in zip(rows["generator"], rows.get("method", rows["generator"]), strict=True)
    ]
    # No defined PGR at all (e.g. S_ref = S_0 on a small slice): one empty size axis per domain, marked n/a.
    xs = [x for x in COST_AXES if x in rows and rows[x].notna().any()] or ["size"]
    fig = Figure(figsize=(3.6 * len(domains) + 1, 3.0 * len(xs) + 0.6), layout="constrained")
    axes = fig.subplots(len(xs), len(domains), squeeze=False, sharey="col")
    for j, domain in enumerate(domains):
        sub = rows[rows["domain"] == domain]
        for i, x in enumerate(xs):
            _cost_axis(axes[i, j], sub.dropna(subset=[x]), x, {})
        axes[0, j].set_title(COLUMN_LABELS.get(domain, domain))
        if sub.empty:
            for ax in axes[:, j]:
                ax.text(0.5, 0.5, "no defined PGR (n/a)", ha="center", va="center", transform=ax.transAxes)
        if paper is not None:
            ref = paper[paper["domain"] == domain]
            for _, r in ref.iterrows():
                axes[0, j].scatter([r["size"]], [r["pgr"]], s=30, **PAPER_STYLE)
            if len(ref):
                axes[0, j].scatter([], [], s=30, label="paper (Table 2)", **PAPER_STYLE)
    for i in range(len(xs)):
        axes[i, 0].set_ylabel("PGR (%)")
    handles, names = axes[0, 0].get_legend_handles_labels()
    for ax in axes[0, 1:]:
        for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
            if n not in names:
                handles.append(h)
                names.append(n)
    if names:
        fig.legend(handles, names, loc="outside upper center", ncol=min(len(names), 4), fontsize=8)
    return save_figure(fig, out_stem, note)
