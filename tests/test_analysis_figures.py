"""Every figure is written as a non-empty PNG and PDF, from the paper's numbers or small synthetic inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agorabench.analysis import figures, paper
from agorabench.analysis.pgr import BENCHMARK_DOMAINS
from agorabench.analysis.regression import (
    domain_problem_solving,
    fig4_points,
    intrinsic_features,
    pgr_on_top_pcs,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_written(paths: list[Path], stem: Path) -> None:
    assert paths == [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_pgr_bars_with_paper_overlay_and_undefined_cell(tmp_path):
    ours = paper.paper_table2().copy()
    ours.iloc[0, 0] = np.nan  # an undefined PGR is drawn as 'n/a', not a crash
    stem = tmp_path / "fig" / "pgr_bars"
    assert_written(
        figures.plot_pgr_bars(ours, stem, paper=paper.paper_table2(), labels=paper.generator_labels()), stem
    )


def test_fig4_problem_solving_vs_data_generation(tmp_path):
    coarse, fine = fig4_points(paper.paper_table2(), paper.paper_table7(), BENCHMARK_DOMAINS)
    stem = tmp_path / "fig4"
    paths = figures.plot_problem_solving_vs_data_generation(
        coarse, fine, stem, paper_fits=paper.paper_fig4(), labels=paper.generator_labels()
    )
    assert_written(paths, stem)


def test_fig4_with_too_few_points_still_writes(tmp_path):
    coarse = pd.DataFrame({"generator": ["g1", "g2"], "problem_solving": [50.0, 60.0], "pgr": [10.0, np.nan]})
    stem = tmp_path / "fig4_small"
    assert_written(figures.plot_problem_solving_vs_data_generation(coarse, coarse, stem), stem)
    with pytest.raises(ValueError, match="problem_solving"):
        figures.plot_problem_solving_vs_data_generation(coarse.drop(columns="problem_solving"), coarse, stem)


def test_fig5_pca_and_fig6_regression(tmp_path):
    ps = domain_problem_solving(paper.paper_table7(), BENCHMARK_DOMAINS)
    feats = intrinsic_features(paper.paper_table8(), ps)
    t2 = paper.paper_table2()
    y = [t2.at[(g, m), d] for g, m, d in feats.index]
    res, fit = pgr_on_top_pcs(feats, y, k=5)
    variance, _ = paper.paper_fig5()
    assert_written(figures.plot_pca(res, tmp_path / "fig5", paper_variance=variance), tmp_path / "fig5")
    assert_written(
        figures.plot_pgr_on_pcs(y, fit, tmp_path / "fig6", paper=paper.paper_fig6()), tmp_path / "fig6"
    )


def test_fig7_cost(tmp_path):
    rows = pd.DataFrame(
        {
            "generator": ["gpt-4o-mini"] * 3 + ["gpt-4o"],
            "size": [10000, 30000, 50000, 10000],
            "cost_usd": [1.0, 3.0, 5.0, 17.0],
            "pgr": [20.0, 25.0, np.nan, 30.0],
        }
    )
    assert_written(figures.plot_cost(rows, tmp_path / "fig7"), tmp_path / "fig7")
    with pytest.raises(ValueError, match="cost_usd"):
        figures.plot_cost(rows.drop(columns="cost_usd"), tmp_path / "bad")
