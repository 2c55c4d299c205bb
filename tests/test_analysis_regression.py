"""OLS and PCA against independent implementations (scipy.stats.linregress, sklearn.decomposition.PCA); the
Figure 4-6 points of a study whose benchmarks cover only some domains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.decomposition import PCA

from agorabench.analysis import paper, stage
from agorabench.analysis.regression import fig4_points, intrinsic_features, ols, pca, pgr_on_top_pcs
from agorabench.analysis.study import StudyInputs

RNG = np.random.default_rng(7)


def test_ols_one_predictor_matches_linregress():
    x = RNG.normal(size=30)
    y = 2.0 * x + RNG.normal(size=30)
    fit, ref = ols(x, y), stats.linregress(x, y)
    assert fit.slope == pytest.approx(ref.slope)
    assert fit.intercept == pytest.approx(ref.intercept)
    assert fit.r_squared == pytest.approx(ref.rvalue**2)
    assert fit.p_value == pytest.approx(ref.pvalue)
    assert fit.coef_p_values[0] == pytest.approx(ref.pvalue)


def test_ols_several_predictors_recovers_coefficients_and_f_test():
    x = RNG.normal(size=(200, 3))
    y = 1.5 + x @ np.array([1.0, -2.0, 0.0]) + 0.1 * RNG.normal(size=200)
    fit = ols(x, y)
    assert fit.intercept == pytest.approx(1.5, abs=0.05)
    assert fit.coef == pytest.approx([1.0, -2.0, 0.0], abs=0.05)
    assert fit.coef_p_values[2] > 0.001 and fit.p_value < 1e-10
    # the F-test p from R^2 by hand
    f = (fit.r_squared / 3) / ((1 - fit.r_squared) / (200 - 4))
    assert fit.p_value == pytest.approx(stats.f.sf(f, 3, 196))
    with pytest.raises(ValueError, match="one predictor"):
        _ = fit.slope


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([1.0, 2.0], [1.0, 2.0], "too few"),
        ([1.0, 2.0, np.nan], [1.0, 2.0, 3.0], "finite"),
        ([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], "collinear or constant"),
        ([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0], "y is constant"),
    ],
)
def test_ols_bad_input_is_a_clear_error(x, y, message):
    with pytest.raises(ValueError, match=message):
        ols(x, y)


def test_pca_matches_sklearn_on_standardised_features():
    base = RNG.normal(size=(40, 2))
    feats = pd.DataFrame(
        np.column_stack([base, base @ [[1.0], [0.5]] + 0.1 * RNG.normal(size=(40, 1))]),
        columns=["a", "b", "c"],
    )
    res = pca(feats)
    z = (feats - feats.mean()) / feats.std(ddof=0)
    ref = PCA().fit(z)
    assert res.explained_variance.to_numpy() == pytest.approx(ref.explained_variance_ratio_ * 100)
    # same components up to sign; our sign: largest-magnitude loading positive
    assert np.abs(res.loadings.to_numpy()) == pytest.approx(np.abs(ref.components_.T), abs=1e-8)
    for pc in res.loadings:
        col = res.loadings[pc]
        assert col[col.abs().idxmax()] > 0
    assert res.scores.to_numpy() == pytest.approx(z.to_numpy() @ res.loadings.to_numpy())


def test_pca_rejects_constant_feature():
    feats = pd.DataFrame({"a": [1.0, 2.0, 3.0], "flat": [2.0, 2.0, 2.0]})
    with pytest.raises(ValueError, match="flat"):
        pca(feats)


def test_pgr_on_top_pcs_regresses_on_k_components():
    feats = pd.DataFrame(RNG.normal(size=(30, 6)), columns=list("abcdef"))
    y = feats["a"] * 3 + RNG.normal(size=30)
    res, fit = pgr_on_top_pcs(feats, y, k=2)
    assert list(res.loadings.columns) == ["PC1", "PC2"]
    assert fit.coef.size == 2 and fit.n == 30
    assert fit.r_squared == pytest.approx(ols(res.scores.to_numpy(), y).r_squared)


def test_fig4_points_coarse_and_fine():
    idx = pd.MultiIndex.from_product([["g1", "g2"], ["instance_generation"]], names=["generator", "method"])
    matrix = pd.DataFrame(
        {"math": [10.0, 30.0], "code": [20.0, np.nan], "instruction_following": [30.0, 50.0]}, index=idx
    )
    bench = {"gsm8k": "math", "mbpp": "code", "arena_hard": "instruction_following"}
    ps = pd.DataFrame(
        {"gsm8k": [80.0, 60.0], "mbpp": [70.0, 50.0], "arena_hard": [30.0, 10.0]}, index=["g1", "g2"]
    )
    coarse, fine = fig4_points(matrix, ps, bench)
    assert len(fine) == 5  # the undefined cell is dropped
    g2_math = fine[(fine["generator"] == "g2") & (fine["domain"] == "math")].iloc[0]
    assert g2_math["problem_solving"] == 60.0 and g2_math["pgr"] == 30.0
    c = coarse.set_index("generator")
    assert c.at["g1", "pgr"] == pytest.approx(20.0) and c.at["g2", "pgr"] == pytest.approx(40.0)
    assert c.at["g1", "problem_solving"] == pytest.approx(60.0)
    with pytest.raises(ValueError, match="g2"):
        fig4_points(matrix, ps.drop(index="g2"), bench)


def test_intrinsic_features_pivots_and_adds_problem_solving():
    long = pd.DataFrame(
        [
            (m, g, "instance_generation", d, v)
            for m in ("m1", "m2")
            for g in ("g1", "g2")
            for d, v in (("math", 1.0), ("code", 2.0), ("average", 9.0))
        ],
        columns=["metric", "generator", "method", "domain", "value"],
    )
    ps = pd.DataFrame({"math": [5.0, 6.0], "code": [7.0, 8.0]}, index=["g1", "g2"])
    feats = intrinsic_features(long, ps, domains=("math", "code"))
    assert list(feats.columns) == ["m1", "m2", "problem_solving"]
    assert len(feats) == 4  # 'average' rows are not data sets
    assert feats.loc[("g2", "instance_generation", "code"), "problem_solving"] == 8.0


def test_loading_strengths_weight_absolute_loadings_by_explained_variance():
    from agorabench.analysis.regression import PCAResult, contributions, loading_strengths

    loadings = pd.DataFrame([[0.6, -0.8], [-0.8, -0.6]], index=["a", "b"], columns=["PC1", "PC2"])
    res = PCAResult(pd.Series([75.0, 25.0], index=["PC1", "PC2"]), loadings, pd.DataFrame())
    t4 = loading_strengths(res)
    # a: 0.75 x 0.6 + 0.25 x 0.8 = 0.65; b: 0.75 x 0.8 + 0.25 x 0.6 = 0.75
    assert t4["loading_strength"].to_dict() == pytest.approx({"b": 0.75, "a": 0.65})
    assert t4["contribution_percent"].to_list() == pytest.approx([75 / 1.4, 65 / 1.4])
    assert loading_strengths(res, k=1)["loading_strength"].to_dict() == pytest.approx({"b": 0.8, "a": 0.6})
    with pytest.raises(ValueError, match="non-negative"):
        contributions([0.5, -0.1])


def test_f_test_p_and_the_composite_fit_match_ols():
    from agorabench.analysis.regression import f_test_p, pgr_on_composite

    feats = pd.DataFrame(RNG.normal(size=(40, 6)), columns=list("abcdef"))
    y = feats["a"] - feats["b"] + RNG.normal(size=40)
    fits = pgr_on_composite(feats, y, k=3)
    assert fits.pc_scores.p_value == pytest.approx(f_test_p(fits.pc_scores.r_squared, 40, 3))
    assert fits.composite.r_squared == pytest.approx(fits.pc_scores.r_squared)
    assert fits.composite.p_value == pytest.approx(f_test_p(fits.composite.r_squared, 40, 1))
    assert fits.composite.p_value < fits.pc_scores.p_value


def test_adjusted_r_squared_penalises_each_predictor():
    x = RNG.normal(size=(25, 3))
    y = x[:, 0] + RNG.normal(size=25)
    fit = ols(x, y)
    assert fit.adjusted_r_squared == pytest.approx(1 - (1 - fit.r_squared) * 24 / 21)
    one = ols(x[:, 0], y)
    assert one.adjusted_r_squared == pytest.approx(1 - (1 - one.r_squared) * 24 / 23)


# --- a study whose benchmarks cover only some domains ------------------------------------------------

MATH_ONLY = {"gsm8k": "math", "math": "math"}


def _matrix(cells: dict[str, list[float]]) -> pd.DataFrame:
    idx = pd.MultiIndex.from_product(
        [["g1", "g2", "g3"], ["instance_generation"]], names=["generator", "method"]
    )
    return pd.DataFrame(cells, index=idx)


def test_fig4_points_skips_domains_without_benchmarks():
    nan = [np.nan] * 3
    matrix = _matrix({"math": [10.0, 30.0, 20.0], "code": nan, "instruction_following": nan})
    ps = pd.DataFrame({"gsm8k": [80.0, 60.0, 70.0], "math": [40.0, 20.0, 30.0]}, index=["g1", "g2", "g3"])
    coarse, fine = fig4_points(matrix, ps, MATH_ONLY)
    assert fine["domain"].unique().tolist() == ["math"] and len(fine) == 3
    assert fine.set_index("generator").at["g2", "problem_solving"] == pytest.approx(40.0)
    assert coarse.set_index("generator")["pgr"].to_dict() == {"g1": 10.0, "g2": 30.0, "g3": 20.0}
    # a matrix without the uncovered columns at all gives the same points
    _, fine_math = fig4_points(matrix[["math"]], ps, MATH_ONLY)
    assert fine_math.equals(fine)


def test_fig4_points_rejects_a_pgr_in_a_domain_without_benchmarks():
    matrix = _matrix({"math": [10.0, 30.0, 20.0], "code": [5.0, np.nan, np.nan]})
    ps = pd.DataFrame({"gsm8k": [80.0, 60.0, 70.0]}, index=["g1", "g2", "g3"])
    with pytest.raises(ValueError, match=r"\['code'\]"):
        fig4_points(matrix, ps, {"gsm8k": "math"})
    with pytest.raises(ValueError, match="no configured benchmark"):
        fig4_points(matrix, ps, {"gsm8k": "chemistry"})


def test_intrinsic_features_problem_solving_is_undefined_where_no_benchmark_is():
    long = pd.DataFrame(
        [
            (m, g, "instance_generation", d, 1.0)
            for m in ("m1",)
            for g in ("g1", "g2")
            for d in ("math", "code")
        ],
        columns=["metric", "generator", "method", "domain", "value"],
    )
    ps = pd.DataFrame({"math": [5.0, 6.0]}, index=["g1", "g2"])  # no code benchmark configured
    feats = intrinsic_features(long, ps, domains=("math", "code"))
    assert feats.loc[("g2", "instance_generation", "math"), "problem_solving"] == 6.0
    assert feats.xs("code", level="domain")["problem_solving"].isna().all()


def _score(root: Path, model: str, bench: str, value: float) -> str:
    path = root / model / bench / "score.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"model": model, "benchmark": bench, "kind": "math", "metric": "accuracy", "value": value, "n": 10}
    path.write_text(json.dumps(rec))
    return str(path)


def test_figures_4_to_6_on_a_study_of_one_domain(tmp_path):
    """The paper's numbers for the math sets only (benchmarks of one domain): Figures 4-6 are drawn from
    the math points; problem solving is undefined for the other domains' sets and left out of Figure 5."""
    t2, t8 = paper.paper_table2(), paper.paper_table8()
    gens = list(dict.fromkeys(t2.index.get_level_values("generator")))
    paths = [_score(tmp_path, m, b, v) for m, v in (("base", 20.0), ("reference", 60.0)) for b in MATH_ONLY]
    students = []
    for g, m in t2.index:
        model = f"students/{g}/math/{m}/agorabench/n10000"
        students.append(
            {
                "model": model,
                "generator": g,
                "domain": "math",
                "method": m,
                "variant": "agorabench",
                "size": 10000,
            }
        )
        paths += [_score(tmp_path, model, b, 20.0 + 0.4 * t2.at[(g, m), "math"]) for b in MATH_ONLY]
    intrinsic = []
    for (g, m, d), grp in t8[t8["domain"] != "average"].groupby(["generator", "method", "domain"]):
        rec = {
            "set": {"generator": g, "domain": d, "method": m, "variant": "agorabench", "size": "10000"},
            "metrics": {k: {"value": v} for k, v in zip(grp["metric"], grp["value"], strict=True)},
        }
        path = tmp_path / "intrinsic" / g / d / m / "n10000.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
        intrinsic.append(str(path))
    common = {"problem_solving": {"source": "paper"}, "problem_solving_scores": [], "benchmarks": MATH_ONLY}
    study = StudyInputs(
        tuple(paths), students, MATH_ONLY, 1e-6, main={"variant": "agorabench", "size": 10000}
    )
    out = {k: str(tmp_path / f"f.{k}") for k in ("png", "pdf", "points", "fits", "var", "load", "fit6")}
    c4 = stage.figure4(
        study,
        problem_solving=common["problem_solving"],
        problem_solving_scores=[],
        png_path=out["png"],
        pdf_path=out["pdf"],
        points_csv=out["points"],
        fits_csv=out["fits"],
    )
    assert c4["coarse_points"] == len(gens) and c4["fine_points"] == 3 * len(gens)
    assert pd.read_csv(out["fits"])["r_squared"].notna().all()
    c5 = stage.figure5(
        intrinsic,
        **common,
        components=5,
        png_path=out["png"],
        pdf_path=out["pdf"],
        variance_csv=out["var"],
        loadings_csv=out["load"],
    )
    assert c5 == {"data_sets": 54, "features": 8, "components": 5}  # problem solving: math sets only
    assert "problem_solving" not in set(pd.read_csv(out["load"]).dropna(subset=["ours"])["feature"])
    c6 = stage.figure6(
        study,
        intrinsic,
        problem_solving=common["problem_solving"],
        problem_solving_scores=[],
        components=5,
        png_path=out["png"],
        pdf_path=out["pdf"],
        fit_csv=out["fit6"],
    )
    assert c6["points"] == 3 * len(gens)
    assert pd.read_csv(out["fit6"]).set_index("fit").at["pc_scores", "r_squared"] > 0
