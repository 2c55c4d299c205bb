"""Statistics of the analyses: OLS with R^2 and p (Figures 4, 6), PCA of intrinsic metrics (Figure 5),
and the points of Figure 4 (problem-solving vs data-generation ability)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from agorabench.analysis.pgr import DOMAINS


@dataclass(frozen=True)
class OLSResult:
    """Ordinary least squares y = intercept + X @ coef. `p_value` is the overall F-test (equal to the
    slope's t-test for one predictor); `coef_p_values` are two-sided t-tests per coefficient."""

    intercept: float
    coef: np.ndarray
    coef_p_values: np.ndarray
    r_squared: float
    p_value: float
    n: int
    fitted: np.ndarray

    @property
    def adjusted_r_squared(self) -> float:
        """R^2 adjusted for the number of predictors k: 1 - (1 - R^2)(n - 1)/(n - k - 1)."""
        return 1.0 - (1.0 - self.r_squared) * (self.n - 1) / (self.n - self.coef.size - 1)

    @property
    def slope(self) -> float:
        if self.coef.size != 1:
            raise ValueError(f"slope is defined for one predictor, this fit has {self.coef.size}")
        return float(self.coef[0])


def _as_matrix(x: Sequence[float] | np.ndarray | pd.DataFrame) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def ols(x: Sequence[float] | np.ndarray | pd.DataFrame, y: Sequence[float] | np.ndarray) -> OLSResult:
    """Fit y on x (one predictor: 1-D x; several: 2-D x, one column each) with an intercept."""
    xm, yv = _as_matrix(x), np.asarray(y, dtype=float)
    n, k = xm.shape
    if yv.shape != (n,):
        raise ValueError(f"OLS: x has {n} rows but y has shape {yv.shape}")
    if not (np.isfinite(xm).all() and np.isfinite(yv).all()):
        raise ValueError("OLS: x and y must be finite (drop undefined PGRs first)")
    if n <= k + 1:
        raise ValueError(f"OLS: {n} points are too few for {k} predictor(s) and an intercept")
    design = np.column_stack([np.ones(n), xm])
    beta, _, rank, _ = np.linalg.lstsq(design, yv, rcond=None)
    if rank < k + 1:
        raise ValueError("OLS: predictors are collinear or constant")
    fitted = design @ beta
    ss_res = float(((yv - fitted) ** 2).sum())
    ss_tot = float(((yv - yv.mean()) ** 2).sum())
    if ss_tot == 0:
        raise ValueError("OLS: y is constant, R^2 is undefined")
    r2 = 1.0 - ss_res / ss_tot
    dof = n - k - 1
    sigma2 = ss_res / dof
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(design.T @ design)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, beta / se, np.inf)
    coef_p = 2.0 * stats.t.sf(np.abs(t), dof)
    f_p = float(stats.f.sf((r2 / k) / ((1.0 - r2) / dof), k, dof)) if r2 < 1 else 0.0
    return OLSResult(float(beta[0]), beta[1:], coef_p[1:], r2, f_p, n, fitted)


@dataclass(frozen=True)
class PCAResult:
    """PCA of standardised features. `explained_variance` in percent per PC; `loadings` features x PCs
    (unit eigenvectors, each signed so that its largest-magnitude entry is positive); `scores` rows x PCs."""

    explained_variance: pd.Series
    loadings: pd.DataFrame
    scores: pd.DataFrame


def _standardise(features: pd.DataFrame) -> np.ndarray:
    values = features.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        bad = features.columns[~np.isfinite(values).all(axis=0)].tolist()
        raise ValueError(f"PCA: features {bad} have missing or infinite values")
    std = values.std(axis=0)
    constant = features.columns[std == 0].tolist()
    if constant:
        raise ValueError(f"PCA: features {constant} are constant and cannot be standardised")
    return (values - values.mean(axis=0)) / std


def pca(features: pd.DataFrame, n_components: int | None = None) -> PCAResult:
    """PCA (SVD) of the standardised columns of `features` (rows: data sets; columns: metrics)."""
    z = _standardise(features)
    _, sing, vt = np.linalg.svd(z, full_matrices=False)
    k = len(sing) if n_components is None else n_components
    if not 1 <= k <= len(sing):
        raise ValueError(f"PCA: n_components must be in 1..{len(sing)}, got {n_components}")
    vt = vt[:k] * np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])[:, None]
    names = [f"PC{i + 1}" for i in range(k)]
    var = sing**2 / (sing**2).sum() * 100.0
    return PCAResult(
        explained_variance=pd.Series(var[:k], index=names, name="explained_variance_percent"),
        loadings=pd.DataFrame(vt.T, index=features.columns, columns=names),
        scores=pd.DataFrame(z @ vt.T, index=features.index, columns=names),
    )


def pgr_on_top_pcs(
    features: pd.DataFrame, pgr: Sequence[float] | pd.Series, k: int = 5
) -> tuple[PCAResult, OLSResult]:
    """Figure 6: PCA of intrinsic metrics, then OLS of PGR on the top-k principal component scores."""
    result = pca(features, n_components=k)
    return result, ols(result.scores.to_numpy(), np.asarray(pgr, dtype=float))


@dataclass(frozen=True)
class Figure6Fits:
    """Figure 6 both ways. `pc_scores`: OLS of PGR on the top-k PC scores (F-test with k predictors);
    `composite`: OLS of PGR on one composite, the top-k PC scores weighted by their fitted coefficients
    (the paper's "weighted top-5"): the same R^2, its p an F-test with one predictor."""

    pcs: PCAResult
    pc_scores: OLSResult
    composite: OLSResult


def pgr_on_composite(features: pd.DataFrame, pgr: Sequence[float] | pd.Series, k: int = 5) -> Figure6Fits:
    """Figure 6 fitted both ways (see Figure6Fits) on the same PCA of the intrinsic metrics."""
    result, on_pcs = pgr_on_top_pcs(features, pgr, k)
    composite = result.scores.to_numpy() @ on_pcs.coef
    return Figure6Fits(result, on_pcs, ols(composite, np.asarray(pgr, dtype=float)))


def f_test_p(r_squared: float, n: int, k: int) -> float:
    """p of the overall F-test of an OLS fit with `k` predictors, an intercept and `n` points."""
    if not 0 <= r_squared < 1 or n <= k + 1:
        raise ValueError(f"F-test: needs 0 <= R^2 < 1 and n > k + 1, got R^2={r_squared}, n={n}, k={k}")
    dof = n - k - 1
    return float(stats.f.sf((r_squared / k) / ((1.0 - r_squared) / dof), k, dof))


def loading_strengths(result: PCAResult, k: int | None = None) -> pd.DataFrame:
    """Table 4: each feature's loading strength on the top-k PCs, the mean of its absolute loadings
    weighted by the PCs' explained variance, and its contribution (% of the strengths' sum)."""
    k = result.loadings.shape[1] if k is None else k
    if not 1 <= k <= result.loadings.shape[1]:
        raise ValueError(f"loading strengths: k must be in 1..{result.loadings.shape[1]}, got {k}")
    weights = result.explained_variance.iloc[:k].to_numpy()
    strength = result.loadings.iloc[:, :k].abs().to_numpy() @ weights / weights.sum()
    out = pd.DataFrame({"loading_strength": strength}, index=result.loadings.index)
    out["contribution_percent"] = contributions(out["loading_strength"])
    return out.sort_values("loading_strength", ascending=False).rename_axis("metric")


def contributions(strengths: pd.Series | Sequence[float]) -> np.ndarray:
    """Table 4's contribution of each metric: its loading strength as a percentage of their sum."""
    values = np.asarray(strengths, dtype=float)
    if not (np.isfinite(values).all() and (values >= 0).all() and values.sum() > 0):
        raise ValueError("contributions: loading strengths must be finite, non-negative and not all 0")
    return values / values.sum() * 100.0


def domain_problem_solving(scores: pd.DataFrame, benchmarks: Mapping[str, str]) -> pd.DataFrame:
    """Per-domain problem-solving score of each generator: mean of its domain's benchmark scores.
    `scores`: index generator, one column per benchmark (e.g. the paper's Table 7)."""
    missing = [b for b in benchmarks if b not in scores.columns]
    if missing:
        raise ValueError(f"problem-solving scores lack benchmark column(s) {missing}")
    domains = list(dict.fromkeys(benchmarks.values()))
    cols = {d: scores[[b for b, dd in benchmarks.items() if dd == d]].mean(axis=1) for d in domains}
    return pd.DataFrame(cols, index=scores.index)


def covered_domains(benchmarks: Mapping[str, str], domains: Sequence[str] = DOMAINS) -> list[str]:
    """The domains (in `domains` order) that at least one configured benchmark belongs to."""
    have = set(benchmarks.values())
    return [d for d in domains if d in have]


def _covered_columns(
    matrix: pd.DataFrame, benchmarks: Mapping[str, str], domains: Sequence[str]
) -> list[str]:
    """Domain columns of a Table 2 matrix that have benchmarks; a PGR in any other domain is an error."""
    covered = covered_domains(benchmarks, domains)
    if not covered:
        raise ValueError(f"Figure 4: no configured benchmark belongs to any of the domains {list(domains)}")
    stray = [d for d in domains if d not in covered and d in matrix.columns and matrix[d].notna().any()]
    if stray:
        raise ValueError(f"Figure 4: PGRs in domain(s) {stray}, which no configured benchmark belongs to")
    return covered


def fig4_points(
    matrix: pd.DataFrame,
    problem_solving: pd.DataFrame,
    benchmarks: Mapping[str, str],
    domains: Sequence[str] = DOMAINS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figure 4 points from a Table 2 matrix (`pgr_matrix`) and per-benchmark problem-solving scores.

    coarse: one row per generator: problem_solving (mean of all benchmarks) and pgr (mean of its
    generator x method x domain PGRs). fine: one row per generator x method x domain: problem_solving
    (generator's domain mean) and pgr. Undefined (NaN) PGRs are dropped from both; so are the domains no
    configured benchmark belongs to (a study of some domains only).
    """
    per_domain = domain_problem_solving(problem_solving, benchmarks)
    columns = _covered_columns(matrix, benchmarks, domains)
    long = matrix.reindex(columns=columns).stack().rename("pgr").reset_index()
    long.columns = ["generator", "method", "domain", "pgr"]
    absent = sorted(set(long["generator"]) - set(per_domain.index))
    if absent:
        raise ValueError(f"no problem-solving scores for generator(s) {absent}")
    long["problem_solving"] = [
        per_domain.at[g, d] for g, d in zip(long["generator"], long["domain"], strict=True)
    ]
    fine = long.dropna(subset=["pgr"]).reset_index(drop=True)
    coarse = fine.groupby("generator", sort=False)["pgr"].mean().to_frame()
    coarse["problem_solving"] = problem_solving.loc[coarse.index, list(benchmarks)].mean(axis=1)
    return coarse.reset_index()[["generator", "problem_solving", "pgr"]], fine


def intrinsic_features(
    intrinsic: pd.DataFrame, problem_solving: pd.DataFrame | None = None, domains: Sequence[str] = DOMAINS
) -> pd.DataFrame:
    """Features of Figures 5/6: one row per (generator, method, domain), one column per intrinsic metric.

    `intrinsic`: long frame metric, generator, method, domain, value (e.g. paper_table8()); rows of other
    domains (such as 'average') are ignored. `problem_solving`: generator x domain scores
    (`domain_problem_solving`), added as column 'problem_solving' when given; it is NaN (undefined) for
    the sets of a domain it has no column for (no benchmark of that domain is configured).
    """
    missing = [c for c in ("metric", "generator", "method", "domain", "value") if c not in intrinsic.columns]
    if missing:
        raise ValueError(f"intrinsic metrics: missing column(s) {missing}")
    rows = intrinsic[intrinsic["domain"].isin(domains)]
    wide = rows.pivot(index=["generator", "method", "domain"], columns="metric", values="value")
    wide = wide[list(dict.fromkeys(rows["metric"]))]
    wide.columns.name = None
    if problem_solving is not None:
        keys = wide.index.to_frame(index=False)
        absent = sorted(set(keys["generator"]) - set(problem_solving.index))
        if absent:
            raise ValueError(f"no problem-solving scores for generator(s) {absent}")
        wide["problem_solving"] = [
            problem_solving.at[g, d] if d in problem_solving.columns else np.nan
            for g, d in zip(keys["generator"], keys["domain"], strict=True)
        ]
    return wide.astype(float)
