"""Stage functions of the analysis rules: scores and PGR tables, the paper's Tables 3, 4, 5, 7 and 8 and
Figures 4-7 beside the paper's numbers, and the intrinsic metrics of each generated set."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from agorabench.analysis import intrinsic, paper, study, uncertainty
from agorabench.analysis.figures import (
    message_figure,
    plot_cost,
    plot_pca,
    plot_pgr_bars,
    plot_pgr_on_pcs,
    plot_problem_solving_vs_data_generation,
    try_ols,
)
from agorabench.analysis.pgr import collect_scores, pgr_matrix
from agorabench.analysis.regression import (
    PCAResult,
    domain_problem_solving,
    f_test_p,
    fig4_points,
    intrinsic_features,
    loading_strengths,
    ols,
    pca,
)
from agorabench.analysis.study import StudyInputs
from agorabench.analysis.tables import NA, format_value, meta_prompt_table, write_pgr_tables, write_table
from agorabench.analysis.tables import scores_table as wide_scores
from agorabench.analysis.tables import to_markdown as to_markdown_text
from agorabench.jsonl import write_json, write_text
from agorabench.llm.base import Request, Sampling
from agorabench.llm.store import CallStore

log = logging.getLogger(__name__)


def scores_table(score_paths: Sequence[str], *, csv_path: str, md_path: str) -> dict[str, int]:
    """All score files as one long CSV (model, benchmark, metric, value, n, ...) and a wide Markdown view."""
    scores = collect_scores(score_paths)
    scores.to_csv(csv_path, index=False)
    wide = wide_scores(scores)
    write_table(wide, csv_path + ".wide.csv", md_path, digits=1)
    return {"scores": len(scores), "models": wide.shape[0], "benchmarks": wide.shape[1]}


def pgr_tables(
    inputs: StudyInputs, *, long_path: str, csv_path: str, md_path: str, tex_path: str
) -> dict[str, Any]:
    """The long PGR table (every student, per benchmark and domain) and Table 2 for the main experiment;
    with `inputs.bootstrap` (analysis.bootstrap) both carry paired-bootstrap intervals (uncertainty.py)."""
    scores = inputs.score_frame()
    table, undefined = inputs.pgr_long(scores)
    matrix = inputs.main_matrix(table)
    intervals = None
    if inputs.bootstrap is not None:
        table, intervals = uncertainty.pgr_intervals(scores, table, matrix, inputs)
    table.to_csv(long_path, index=False)
    write_pgr_tables(matrix, csv_path, md_path, tex_path, intervals=intervals)
    return {"students": len(inputs.students), "rows": len(table), "undefined_pgr_warnings": undefined}


def figure_pgr(long_csv: str, *, main: Mapping[str, Any], png_path: str, pdf_path: str) -> dict[str, Any]:
    """PGR per generator and domain, one panel per method (the main experiment)."""
    table = pd.read_csv(long_csv)
    matrix = pgr_matrix(table, variant=main["variant"], size=int(main["size"]))
    intervals = None
    if "pgr_low" in table.columns:  # analysis.bootstrap: error bars of the paired-bootstrap intervals
        intervals = tuple(
            pgr_matrix(table.assign(pgr=table[c]), variant=main["variant"], size=int(main["size"]))
            for c in ("pgr_low", "pgr_high")
        )
    paths = plot_pgr_bars(matrix, png_path.removesuffix(".png"), intervals=intervals)
    expected = {png_path, pdf_path}
    if not expected <= {str(p) for p in paths}:
        raise RuntimeError(f"figure written to {paths}, expected {sorted(expected)}")
    return {"generators": matrix.index.get_level_values("generator").nunique()}


# The paper's tables and figures beside ours (rules/analysis.smk). Each function reads only its inputs.


def _note(*parts: str | None) -> str:
    return "\n".join(p for p in parts if p)


def _write_figure(paths: Sequence[Path], png_path: str, pdf_path: str) -> None:
    if {str(p) for p in paths} != {png_path, pdf_path}:
        raise RuntimeError(f"figure written to {paths}, expected {png_path} and {pdf_path}")


def _cell(ours: float, theirs: float) -> str:
    return f"{format_value(ours)} / {format_value(theirs)}"


def pgr_vs_paper(pgr_csv: str, *, csv_path: str, md_path: str) -> dict[str, Any]:
    """Table 2 beside the paper's: a long CSV (generator, method, domain, ours, paper) and a Markdown table
    of 'ours / paper' cells (paper n/a for generators the paper did not run)."""
    ours = pd.read_csv(pgr_csv, index_col=[0, 1], na_values=[NA])
    ours = ours[[c for c in ours.columns if not c.endswith(uncertainty.INTERVAL_SUFFIXES)]]  # points only
    theirs = paper.paper_table2()
    long = study.beside(study.wide_long(ours), study.wide_long(theirs), ["generator", "method", "domain"])
    long.to_csv(csv_path, index=False, na_rep=NA)
    cells = ours.copy().astype(object)
    for (g, m), row in ours.iterrows():
        for col in ours.columns:
            ref = theirs.at[(g, m), col] if (g, m) in theirs.index and col in theirs else float("nan")
            cells.at[(g, m), col] = _cell(row[col], ref)
    lines = [
        "PGR (%) of this run / the paper's Table 2 (n/a: undefined here, or not run in the paper).",
        "",
        to_markdown_text(cells),
    ]
    write_text(Path(md_path), "\n".join(lines))
    shared = sorted(set(ours.index.get_level_values(0)) & set(theirs.index.get_level_values(0)))
    return {"rows": len(long), "generators_in_paper": len(shared)}


def table5(
    inputs: StudyInputs,
    *,
    ablation: Mapping[str, Any],
    csv_path: str,
    md_path: str,
    tex_path: str,
    paper_csv_path: str,
    origins: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
) -> dict[str, Any]:
    """Table 5 (meta-prompt ablation) and a long CSV of ours beside the paper's. `origins`: variant ->
    method -> domain -> "official" / "stand-in" (the meta-prompt file used), shown as column `template`."""
    table, undefined = inputs.pgr_long()
    t5 = meta_prompt_table(
        table,
        variants=ablation["variants"],
        methods=ablation["methods"],
        generators=ablation["generators"],
        size=int(ablation["size"]),
    )
    shown = t5.copy()
    if origins is not None:
        shown["template"] = [_origin_label(origins[v][m]) for m, _, v in t5.index]
    write_table(
        shown, csv_path, md_path, tex_path, caption="PGR (%) per meta-prompt variant (Table 5 layout)."
    )
    keys = ["method", "generator", "variant", "domain"]
    long = study.beside(study.wide_long(t5), study.wide_long(paper.paper_table5()), keys)
    long.to_csv(paper_csv_path, index=False, na_rep=NA)
    return {"rows": len(t5), "undefined_pgr_warnings": undefined}


def _origin_label(by_domain: Mapping[str, str]) -> str:
    """'official' / 'stand-in' when every domain's meta-prompt is, else which domains are which."""
    kinds = sorted(set(by_domain.values()))
    if len(kinds) == 1:
        return kinds[0]
    return "; ".join(f"{k}: {', '.join(d for d, o in by_domain.items() if o == k)}" for k in kinds)


def table8(
    intrinsic_paths: Sequence[str],
    *,
    domains: Sequence[str],
    csv_path: str,
    md_path: str,
    tex_path: str,
    paper_csv_path: str,
    note: str | None = None,
) -> dict[str, Any]:
    """Table 8 (intrinsic metrics): rows (metric, generator, method), columns the domains and their average;
    disabled metrics are listed under the Markdown table; a long CSV puts ours beside the paper's."""
    long, disabled = study.intrinsic_long(intrinsic_paths)
    long = study.with_average(long, domains)
    wide = long.pivot_table(
        index=["metric", "generator", "method"], columns="domain", values="value", dropna=False, sort=False
    )
    wide = wide.reindex(columns=[*domains, "average"])
    wide.columns.name = None
    caption = _note("Intrinsic metrics (Table 8 layout).", note)
    write_table(wide, csv_path, md_path, tex_path, digits=3, caption=caption)
    if disabled:
        notes = "\n".join(f"- `{name}` not measured: {why}" for name, why in disabled.items())
        write_text(Path(md_path), Path(md_path).read_text(encoding="utf-8") + "\n" + notes + "\n")
    keys = ["metric", "generator", "method", "domain"]
    study.beside(long, paper.paper_table8(), keys).to_csv(paper_csv_path, index=False, na_rep=NA)
    return {"metrics": long["metric"].nunique(), "sets": len(intrinsic_paths), "disabled": len(disabled)}


def table3(
    inputs: StudyInputs,
    *,
    problem_solving: Mapping[str, Any] | None,
    problem_solving_scores: Sequence[str],
    stats_paths: Sequence[str],
    prices: Mapping[str, Mapping[str, Any] | None],
    domains: Sequence[str],
    csv_path: str,
    md_path: str,
    tex_path: str,
    paper_csv_path: str,
) -> dict[str, Any]:
    """Table 3 per generator: price, measured API cost (generation ledgers), problem solving and data
    generation (mean PGR), and a long CSV of ours beside the paper's; the LaTeX caption ends with the
    students' note."""
    table, undefined = inputs.pgr_long()
    matrix = inputs.main_matrix(table)
    ps = None
    if problem_solving is not None:
        ps = study.problem_solving_table(problem_solving, list(inputs.benchmarks), problem_solving_scores)
    costs = study.generator_costs(table, study.read_ledgers(stats_paths))
    t3 = study.table3_frame(matrix, ps, costs, prices, domains)
    caption = _note(
        "API price (USD / 1M tokens), generation cost, problem solving, data generation (Table 3).",
        inputs.note,
    )
    write_table(t3, csv_path, md_path, tex_path, digits=2, caption=caption)
    theirs = paper.paper_table3().rename(
        columns={"api_cost_col1_usd": "input_per_mtok_usd", "api_cost_col2_usd": "output_per_mtok_usd"}
    )
    long = study.beside(
        study.wide_long(t3, "quantity"), study.wide_long(theirs, "quantity"), ["generator", "quantity"]
    )
    long.to_csv(paper_csv_path, index=False, na_rep=NA)
    return {"generators": len(t3), "undefined_pgr_warnings": undefined}


def table7(
    *,
    problem_solving: Mapping[str, Any],
    problem_solving_scores: Sequence[str],
    benchmarks: Sequence[str],
    generators: Sequence[str],
    csv_path: str,
    md_path: str,
    tex_path: str,
    paper_csv_path: str,
) -> dict[str, Any]:
    """Table 7: the generators' own problem-solving scores on each benchmark and their average (source
    `analysis.problem_solving`), and a long CSV of ours beside the paper's."""
    ps = study.problem_solving_table(problem_solving, list(benchmarks), problem_solving_scores)
    t7 = ps.reindex(list(generators)).assign(average=lambda d: d.mean(axis=1, skipna=False))
    source = problem_solving.get("source", "paper")
    write_table(
        t7, csv_path, md_path, tex_path, digits=1, caption=f"Problem-solving scores (source: {source})."
    )
    note = f"\nSource: `{source}`" + (" (the paper's Table 7, not measured)." if source == "paper" else ".")
    write_text(Path(md_path), Path(md_path).read_text(encoding="utf-8") + note + "\n")
    long = study.beside(
        study.wide_long(t7, "benchmark"),
        study.wide_long(paper.paper_table7(), "benchmark"),
        ["generator", "benchmark"],
    )
    long.to_csv(paper_csv_path, index=False, na_rep=NA)
    return {"generators": len(t7), "source": source}


def table4(
    intrinsic_paths: Sequence[str],
    *,
    problem_solving: Mapping[str, Any] | None,
    problem_solving_scores: Sequence[str],
    benchmarks: Mapping[str, str],
    components: int,
    csv_path: str,
    md_path: str,
    note: str = "",
) -> dict[str, Any]:
    """Table 4: loading strength and contribution of each intrinsic metric on the top PCs of Figure 5's
    PCA, beside the paper's (columns paper_loading_strength, paper_contribution_percent)."""
    features, notes = _features(intrinsic_paths, problem_solving, benchmarks, problem_solving_scores)
    features, dropped = study.clean_features(features)
    result, why = _pca_or_none(features, components)
    theirs = paper.paper_table4_by_metric().add_prefix("paper_")
    if result is None:
        t4 = pd.DataFrame(columns=["loading_strength", "contribution_percent"]).rename_axis("metric")
    else:
        t4 = loading_strengths(result)
    t4 = t4.join(theirs, how="left")
    t4.to_csv(csv_path, na_rep=NA)
    k = 0 if result is None else result.loadings.shape[1]
    head = (
        f"Loading strength on the top {k} PCs (explained-variance-weighted mean |loading|) and contribution."
    )
    lines = [
        head,
        "",
        to_markdown_text(t4, digits=3),
        *(f"- {n}" for n in [*notes, *dropped, why, note] if n),
    ]
    write_text(Path(md_path), "\n".join(lines) + "\n")
    return {"metrics": len(t4), "components": k}


def _fit_row(name: str, df: pd.DataFrame, paper_fits: pd.DataFrame) -> dict[str, Any]:
    fit, why = try_ols(df["problem_solving"].to_numpy(float), df["pgr"].to_numpy(float))
    ref = paper_fits.loc[name] if name in paper_fits.index else {}
    return {
        "analysis": name,
        "n_points": len(df),
        "r_squared": fit.r_squared if fit else None,
        "p_value": fit.p_value if fit else None,
        "slope": fit.slope if fit else None,
        "why_na": why,
        "paper_n_points": ref.get("n_points"),
        "paper_r_squared": ref.get("r_squared"),
        "paper_p_value": ref.get("p_value"),
    }


def figure4(
    inputs: StudyInputs,
    *,
    problem_solving: Mapping[str, Any],
    problem_solving_scores: Sequence[str],
    png_path: str,
    pdf_path: str,
    points_csv: str,
    fits_csv: str,
) -> dict[str, Any]:
    """Figure 4: PGR against the generators' problem-solving scores, coarse (per generator) and fine (per
    generator x setting), with OLS R^2 and p beside the paper's (n/a with too few points)."""
    table, undefined = inputs.pgr_long()
    matrix = inputs.main_matrix(table)
    benchmarks = inputs.benchmarks
    ps = study.problem_solving_table(problem_solving, list(benchmarks), problem_solving_scores)
    coarse, fine = fig4_points(matrix, ps, benchmarks)
    pd.concat([coarse.assign(analysis="coarse"), fine.assign(analysis="fine")]).to_csv(
        points_csv, index=False, na_rep=NA
    )
    fits = pd.DataFrame([_fit_row(n, d, paper.paper_fig4()) for n, d in (("coarse", coarse), ("fine", fine))])
    fits.to_csv(fits_csv, index=False, na_rep=NA)
    source = f"problem-solving scores: {problem_solving.get('source', 'paper')}"
    paths = plot_problem_solving_vs_data_generation(
        coarse,
        fine,
        png_path.removesuffix(".png"),
        paper_fits=paper.paper_fig4(),
        labels=paper.generator_labels(),
        note=_note(inputs.note, source),
    )
    _write_figure(paths, png_path, pdf_path)
    return {"coarse_points": len(coarse), "fine_points": len(fine), "undefined_pgr_warnings": undefined}


def _features(
    intrinsic_paths: Sequence[str],
    problem_solving: Mapping[str, Any] | None,
    benchmarks: Mapping[str, str],
    problem_solving_scores: Sequence[str],
) -> tuple[pd.DataFrame, list[str]]:
    """Figures 5/6 features per (generator, method, domain) (before `study.clean_features`) and notes."""
    long, _ = study.intrinsic_long(intrinsic_paths)
    notes = []
    ps = None
    if problem_solving is not None:
        table = study.problem_solving_table(problem_solving, list(benchmarks), problem_solving_scores)
        ps = domain_problem_solving(table, benchmarks)
    else:
        notes.append("problem_solving left out: no problem-solving scores for these generators")
    return intrinsic_features(long, ps), notes


def _pca_or_none(features: pd.DataFrame, k: int) -> tuple[PCAResult | None, str]:
    n, p = features.shape
    if n < 2 or p < 2:
        return None, f"PCA needs at least 2 data sets and 2 usable features; have {n} and {p}"
    try:
        return pca(features, n_components=min(k, n, p)), ""
    except ValueError as exc:  # e.g. collinear features of a tiny study
        return None, str(exc)


def figure5(
    intrinsic_paths: Sequence[str],
    *,
    problem_solving: Mapping[str, Any] | None,
    problem_solving_scores: Sequence[str],
    benchmarks: Mapping[str, str],
    components: int,
    png_path: str,
    pdf_path: str,
    variance_csv: str,
    loadings_csv: str,
    note: str = "",
) -> dict[str, Any]:
    """Figure 5: PCA of the intrinsic metrics (and problem-solving scores): explained variance and loadings,
    each beside the paper's."""
    features, notes = _features(intrinsic_paths, problem_solving, benchmarks, problem_solving_scores)
    features, dropped = study.clean_features(features)
    notes += dropped
    result, why = _pca_or_none(features, components)
    paper_var, paper_load = paper.paper_fig5()
    n, p = features.shape
    small = f"only {n} data sets for {p} features: the components are not stable" if 0 < n < 2 * p else ""
    caption = _note(note, *notes, small, why)
    stem = png_path.removesuffix(".png")
    if result is None:
        _write_figure(message_figure("Figure 5: PCA", why, stem, caption), png_path, pdf_path)
        pd.DataFrame(columns=["component", "ours", "paper"]).to_csv(variance_csv, index=False)
        pd.DataFrame(columns=["feature", "component", "ours", "paper"]).to_csv(loadings_csv, index=False)
        return {"data_sets": n, "features": p, "components": 0}
    var = pd.DataFrame({"ours": result.explained_variance, "paper": paper_var}).rename_axis("component")
    var.reset_index().to_csv(variance_csv, index=False, na_rep=NA)
    ours = result.loadings.rename_axis("feature").stack().rename("ours")
    theirs = paper_load.stack().rename("paper")
    load = pd.concat([ours, theirs], axis=1).rename_axis(["feature", "component"]).reset_index()
    load.to_csv(loadings_csv, index=False, na_rep=NA)
    paths = plot_pca(result, stem, paper_variance=paper_var, note=caption)
    _write_figure(paths, png_path, pdf_path)
    return {"data_sets": n, "features": p, "components": len(result.explained_variance)}


# Which Figure 6 fit reproduces the paper (computed on the paper's own numbers, tests/test_analysis_paper.py)
FIG6_READING = (
    "The paper's p < 0.001 is reproduced by the one-composite fit (at its R^2 = 0.325 and 54 sets: "
    "p = 6.8e-06); the F-test on the five PC scores gives p = 0.0016 there. The printed R^2 = 0.325 "
    "matches the composite's adjusted R^2 (one predictor; 0.3252 from Table 8's rounded values, whose "
    "plain R^2 is 0.338): a numerical match, the paper does not say adjusted."
)
PAPER_FIG6_POINTS = 54  # the paper's 6 generators x 9 settings


def _fig6_row(name: str, fit: Any, n: int, k: int, why: str, ref: Mapping[str, float]) -> dict[str, Any]:
    """One Figure 6 fit: ours, and the paper's R^2 with the p this fit's test gives at that R^2 (54 sets)."""
    return {
        "fit": name,
        "n_points": n,
        "predictors": k if fit is not None else None,
        "r_squared": fit.r_squared if fit is not None else None,
        "adjusted_r_squared": fit.adjusted_r_squared if fit is not None else None,  # k predictors
        "p_value": fit.p_value if fit is not None else None,
        "why_na": why if fit is None else "",
        "paper_r_squared": ref["r_squared"],
        "paper_p_value_below": ref["p_value_below"],
        "p_at_paper_r_squared": f_test_p(ref["r_squared"], PAPER_FIG6_POINTS, k) if k else None,
    }


def figure6(
    inputs: StudyInputs,
    intrinsic_paths: Sequence[str],
    *,
    problem_solving: Mapping[str, Any] | None,
    problem_solving_scores: Sequence[str],
    components: int,
    png_path: str,
    pdf_path: str,
    fit_csv: str,
) -> dict[str, Any]:
    """Figure 6: OLS of PGR on the top principal components of the intrinsic metrics (data sets with a
    defined PGR); R^2 and p beside the paper's, n/a when there are too few points. `inputs.note`: the
    rule's note (for Figure 6, the intrinsic metrics')."""
    features, notes = _features(intrinsic_paths, problem_solving, inputs.benchmarks, problem_solving_scores)
    table, undefined = inputs.pgr_long()
    matrix = inputs.main_matrix(table)
    pgr = pd.Series([matrix.at[(g, m), d] for g, m, d in features.index], index=features.index, dtype=float)
    keep = pgr.notna()
    features, dropped = study.clean_features(features[keep])  # PCA of the data sets with a defined PGR
    notes += dropped
    pgr = pgr[features.index]
    result, why = _pca_or_none(features, components)
    fit = composite = None
    if result is not None:
        fit, why = try_ols(result.scores.to_numpy(), pgr.to_numpy())
    if fit is not None:  # the paper's "weighted top-5": one composite, the PC scores x fitted weights
        composite = ols(result.scores.to_numpy() @ fit.coef, pgr.to_numpy())
    ref = paper.paper_fig6()
    k = 0 if result is None else result.scores.shape[1]
    rows = [
        _fig6_row("pc_scores", fit, len(pgr), k or components, why, ref),
        _fig6_row("composite", composite, len(pgr), 1, why, ref),
    ]
    pd.DataFrame(rows).to_csv(fit_csv, index=False, na_rep=NA)
    no_pgr = f"{int((~keep).sum())} data set(s) without a defined PGR left out" if (~keep).any() else ""
    caption = _note(inputs.note, no_pgr, *notes, FIG6_READING)
    scores = result.scores if result is not None else None
    paths = plot_pgr_on_pcs(
        pgr.to_numpy(),
        fit,
        png_path.removesuffix(".png"),
        paper=ref,
        scores=scores,
        why=why,
        note=caption,
        composite=composite,
    )
    _write_figure(paths, png_path, pdf_path)
    return {"points": len(pgr), "components": k, "undefined_pgr_warnings": undefined}


def figure7(
    inputs: StudyInputs, *, stats_paths: Sequence[str], png_path: str, pdf_path: str, csv_path: str
) -> dict[str, Any]:
    """Figure 7: PGR against the number of instances, dollars and tokens of generation (the pool's ledger
    pro rata to the instances used), per domain and on average; the paper's 10K Table 2 points beside."""
    table, undefined = inputs.pgr_long()
    rows = study.cost_rows(table, study.read_ledgers(stats_paths))
    rows.to_csv(csv_path, index=False, na_rep=NA)
    gens = list(dict.fromkeys(rows["generator"]))
    theirs = study.paper_cost_points(gens, list(dict.fromkeys(rows["method"])))
    theirs = theirs[theirs["domain"].isin(set(rows["domain"]))]
    notes = [] if len(theirs) else ["the paper ran none of these generators: no paper points"]
    if rows["cost_usd"].fillna(0).eq(0).all():
        notes.append("every generation cost is $0 (local models priced at 0): the dollar axis is flat")
    paths = plot_cost(
        rows,
        png_path.removesuffix(".png"),
        labels=paper.generator_labels(),
        paper=theirs if len(theirs) else None,
        note=_note(inputs.note, *notes),
    )
    _write_figure(paths, png_path, pdf_path)
    return {"points": int(rows["pgr"].notna().sum()), "rows": len(rows), "undefined_pgr_warnings": undefined}


# Intrinsic metrics of one generated set ---------------------------------------------------------------


@dataclass(frozen=True)
class _JudgePlan:
    """What one generated set's intrinsic judging asks: its records, the rubric of each aspect, the
    call store beside the output, the sampling and how verdicts are read."""

    records: list[dict[str, Any]]
    templates: dict[str, Any]
    store: CallStore
    sampling: Sampling
    verdict: str
    top_logprobs: int

    def requests(self, judge_model: str) -> list[Request]:
        out: list[Request] = []
        for aspect, template in self.templates.items():
            out += intrinsic.aspect_requests(
                self.records, template, aspect=aspect, judge_model=judge_model, sampling=self.sampling,
                verdict=self.verdict, top_logprobs=self.top_logprobs,
            )  # fmt: skip
        return out


def _judge_plan(
    set_path: str,
    domain: str,
    judge: Mapping[str, Any],
    rubrics: Mapping[str, str],
    sampling: Mapping[str, Any],
    max_instances: int | None,
    out_path: str,
    official: Mapping[str, Any] | None,
    verdict: Mapping[str, Any] | None,
) -> _JudgePlan:
    records = intrinsic.read_set(set_path, max_instances)
    if official is not None:
        templates = intrinsic.load_official_templates(official, rubrics, domain)
    else:
        templates = {aspect: intrinsic.load_rubric(path, aspect) for aspect, path in rubrics.items()}
    own = dict(sampling) | dict(judge.get("sampling") or {})
    samp = Sampling.from_config(own, key=f"judges.{judge['name']}.sampling")
    mode = dict(verdict or {})
    store = CallStore(Path(out_path).with_suffix(".calls.jsonl"))
    return _JudgePlan(records, templates, store, samp, mode.get("mode", "text"), mode.get("top_logprobs", 20))


def intrinsic_judge(
    set_path: str,
    *,
    set_meta: Mapping[str, Any],
    suffix: str,
    judge: Mapping[str, Any],
    rubrics: Mapping[str, str],
    sampling: Mapping[str, Any],
    max_instances: int | None,
    out_path: str,
    official: Mapping[str, Any] | None = None,
    verdict: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Instruction difficulty and response quality (1-5) of one generated set by one judge, as metrics
    `<aspect>_<suffix>`. `judge`: {name: key of `judges`, spec: backend spec, sampling: its own, if any}.
    `rubrics`: aspect -> the project's rubric file, or (with `official`, the config's `intrinsic.rubrics`)
    the official evaluators and prompts files. `verdict`: {mode: text|logprobs, top_logprobs}
    (intrinsic.judge; default text). The judge's calls are stored beside the output
    (`<out>.calls.jsonl`), so a rerun resumes them; a local judge is loaded only for calls not stored
    (`intrinsic_judge_calls` may have made them all)."""
    from agorabench.llm.factory import backend_for_stores

    plan = _judge_plan(
        set_path, set_meta["domain"], judge, rubrics, sampling, max_instances, out_path, official, verdict
    )
    metrics: dict[str, Any] = {}
    with backend_for_stores(dict(judge["spec"]), key=f"judges.{judge['name']}") as backend:
        for aspect, template in plan.templates.items():
            result = intrinsic.judge_aspect(
                backend, plan.records, template, aspect=aspect, sampling=plan.sampling, store=plan.store,
                verdict=plan.verdict, top_logprobs=plan.top_logprobs,
            )  # fmt: skip
            metrics[f"{aspect}_{suffix}"] = result | {"judge": judge["name"]}
    records = plan.records
    record = {"set": dict(set_meta) | {"path": set_path, "instances": len(records)}, "metrics": metrics}
    write_json(out_path, record)
    return {k: v["unparsed"] for k, v in metrics.items()} | {"instances": len(records)}


def intrinsic_judge_calls(
    sets: Sequence[Mapping[str, Any]],
    *,
    judge: Mapping[str, Any],
    rubrics: Mapping[str, str],
    sampling: Mapping[str, Any],
    max_instances: int | None,
    out_path: str,
    official: Mapping[str, Any] | None = None,
    verdict: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Make one judge's intrinsic calls for many generated sets in one job (one model load, batches that
    mix sets): each set's calls go into the store its `intrinsic_judge` job reads, which then needs no
    model. `sets`: {data, set_meta, out} per set (out: that job's output path). Writes a summary."""
    from agorabench.llm.factory import make_backend
    from agorabench.progress import run_stores_with_progress

    plans = [
        _judge_plan(s["data"], s["set_meta"]["domain"], judge, rubrics, sampling, max_instances, s["out"],
                    official, verdict)
        for s in sets
    ]  # fmt: skip
    key = f"judges.{judge['name']}"
    with make_backend(dict(judge["spec"]), key=key) as backend:
        work = [(plan.store, plan.requests(backend.model)) for plan in plans]
        asked = sum(len(reqs) for _, reqs in work)
        pending = sum(len(store.pending(reqs)) for store, reqs in work)
        run_stores_with_progress(backend, work, desc=f"intrinsic judge {backend.model}, {len(sets)} sets")
    summary = {"judge": judge["name"], "sets": len(sets), "calls": asked, "calls_new": pending}
    write_json(out_path, summary)
    return summary


def intrinsic_models(
    set_path: str,
    *,
    set_meta: Mapping[str, Any],
    perplexity: Mapping[str, Any] | None,
    reward: Mapping[str, Any] | None,
    diversity: Mapping[str, Any] | None,
    disabled: Mapping[str, str],
    max_instances: int | None,
    out_path: str,
) -> dict[str, Any]:
    """Perplexity, reward-model quality and diversity of one generated set; a None spec skips the metric
    (its reason is in `disabled`, metric name -> reason)."""
    records = intrinsic.read_set(set_path, max_instances)
    metrics: dict[str, Any] = {}
    if perplexity is not None:
        p = dict(perplexity)
        kw = {k: p[k] for k in ("target", "batch_size", "max_length", "dtype") if k in p}
        metrics["perplexity"] = intrinsic.perplexity(records, p["model_dir"], **kw) | {"model": p["model"]}
    if reward is not None:
        r = dict(reward)
        kw = {k: r[k] for k in ("batch_size", "max_length", "dtype") if k in r}
        result = intrinsic.reward_scores(records, r["model_dir"], **kw)
        model = {k: r[k] for k in ("model", "hub", "revision") if k in r}
        metrics[f"response_quality_{r['name']}"] = result | {"model": model}
    if diversity is not None:
        model, name = intrinsic.load_embedder(diversity["embedder"])
        batch = int(diversity.get("batch_size", 64))
        for field in ("instruction", "response"):
            texts = [rec[field] for rec in records]
            metrics[f"{field}_diversity"] = intrinsic.diversity(
                texts, model, batch_size=batch, model_name=name
            )
    record = {
        "set": dict(set_meta) | {"path": set_path, "instances": len(records)},
        "metrics": metrics,
        "disabled": dict(disabled),
    }
    write_json(out_path, record)
    return {"instances": len(records), "metrics": len(metrics), "disabled": len(disabled)}
