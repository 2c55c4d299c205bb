"""Stage functions of the analysis rules: scores table, PGR tables and the PGR figure."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from agorabench.analysis.figures import plot_pgr_bars
from agorabench.analysis.pgr import UndefinedPGRWarning, collect_scores, pgr_matrix, pgr_table
from agorabench.analysis.tables import scores_table as wide_scores
from agorabench.analysis.tables import write_pgr_tables, write_table

log = logging.getLogger(__name__)


def scores_table(score_paths: Sequence[str], *, csv_path: str, md_path: str) -> dict[str, int]:
    """All score files as one long CSV (model, benchmark, metric, value, n, ...) and a wide Markdown view."""
    scores = collect_scores(score_paths)
    scores.to_csv(csv_path, index=False)
    wide = wide_scores(scores)
    write_table(wide, csv_path + ".wide.csv", md_path, digits=1)
    return {"scores": len(scores), "models": wide.shape[0], "benchmarks": wide.shape[1]}


def pgr_tables(
    *,
    scores_csv: str,
    students: Sequence[Mapping[str, Any]],
    benchmarks: Mapping[str, str],
    eps: float,
    main: Mapping[str, Any],
    long_path: str,
    csv_path: str,
    md_path: str,
    tex_path: str,
) -> dict[str, Any]:
    """The long PGR table (every student, per benchmark and domain) and Table 2 for the main experiment."""
    scores = pd.read_csv(scores_csv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UndefinedPGRWarning)
        table = pgr_table(
            scores, students, base_model="base", reference_model="reference", benchmarks=benchmarks, eps=eps
        )
    undefined = [str(w.message) for w in caught if issubclass(w.category, UndefinedPGRWarning)]
    for msg in undefined:
        log.warning("PGR undefined: %s", msg)
    table.to_csv(long_path, index=False)
    matrix = pgr_matrix(table, variant=main["variant"], size=int(main["size"]))
    write_pgr_tables(matrix, csv_path, md_path, tex_path)
    return {"students": len(students), "rows": len(table), "undefined_pgr_warnings": len(undefined)}


def figure_pgr(long_csv: str, *, main: Mapping[str, Any], png_path: str, pdf_path: str) -> dict[str, Any]:
    """PGR per generator and domain, one panel per method (the main experiment)."""
    table = pd.read_csv(long_csv)
    matrix = pgr_matrix(table, variant=main["variant"], size=int(main["size"]))
    paths = plot_pgr_bars(matrix, png_path.removesuffix(".png"))
    expected = {png_path, pdf_path}
    if not expected <= {str(p) for p in paths}:
        raise RuntimeError(f"figure written to {paths}, expected {sorted(expected)}")
    return {"generators": matrix.index.get_level_values("generator").nunique()}
