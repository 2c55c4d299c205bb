"""Analysis stage: PGR tables (Tables 2, 5), cost and abilities (Table 3), the generators' problem solving
(Table 7), regressions and PCA (Figures 4-6, Table 4), cost (Figure 7), intrinsic metrics (Table 8), figures,
and the paper's published numbers (`paper`) to compare against."""

from agorabench.analysis.pgr import (
    BENCHMARK_DOMAINS,
    DOMAINS,
    METHODS,
    UndefinedPGRWarning,
    collect_scores,
    pgr,
    pgr_matrix,
    pgr_table,
)

__all__ = [
    "BENCHMARK_DOMAINS",
    "DOMAINS",
    "METHODS",
    "UndefinedPGRWarning",
    "collect_scores",
    "pgr",
    "pgr_matrix",
    "pgr_table",
]
