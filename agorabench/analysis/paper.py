"""The paper's published numbers (Kim et al., 2024, arXiv 2412.03679 v1), from the project's cited copy
`paper_results.yaml` (its header gives the sources). Generators are keyed by the project's config keys."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import pandas as pd
import yaml

from agorabench.analysis.pgr import DOMAINS, METHODS
from agorabench.errors import DataError

DATA_FILE = "paper_results.yaml"
TABLE_COLUMNS: list[str] = [*DOMAINS, "average"]
MARKS = {"B": "best", "U": "second", ".": ""}


@cache
def _data() -> dict[str, Any]:
    text = resources.files("agorabench.analysis").joinpath(DATA_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise DataError(DATA_FILE, "expected a mapping at the top level")
    return data


def citation() -> str:
    """The citation header of the cited copy (its leading comment block)."""
    text = resources.files("agorabench.analysis").joinpath(DATA_FILE).read_text(encoding="utf-8")
    head = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        head.append(line[1:].removeprefix(" "))
    return "\n".join(head).strip()


def paper_generators() -> pd.DataFrame:
    """Index generator (config key); columns printed (name in Tables 2, 3, 5, 7), model, version (Table 8)."""
    return pd.DataFrame.from_dict(_data()["generators"], orient="index").rename_axis("generator")


def generator_labels() -> dict[str, str]:
    """Config key -> generator name as printed in Tables 2, 3, 5 and 7."""
    return {k: v["printed"] for k, v in _data()["generators"].items()}


def printed_inconsistencies() -> list[str]:
    return list(_data()["printed_inconsistencies"])


def _method_rows(block: dict[str, dict[str, Any]], key: str | None) -> tuple[list[tuple], list[list]]:
    index, rows = [], []
    for gen, by_method in block.items():
        for method in METHODS:
            if method in by_method:
                index.append((gen, method))
                cell = by_method[method]
                rows.append(cell[key] if key else cell)
    return index, rows


def paper_table2() -> pd.DataFrame:
    """Table 2 (PGR %): index (generator, method), columns math, code, instruction_following, average."""
    index, rows = _method_rows(_data()["table2"]["pgr"], "values")
    idx = pd.MultiIndex.from_tuples(index, names=["generator", "method"])
    return pd.DataFrame(rows, index=idx, columns=TABLE_COLUMNS, dtype=float)


def paper_table2_marks() -> pd.DataFrame:
    """Typeset marks of Table 2 ('best' bold, 'second' underlined, '' none), same shape as paper_table2()."""
    index, rows = _method_rows(_data()["table2"]["pgr"], "marks")
    idx = pd.MultiIndex.from_tuples(index, names=["generator", "method"])
    return pd.DataFrame([[MARKS[c] for c in m] for m in rows], index=idx, columns=TABLE_COLUMNS)


def paper_table3() -> pd.DataFrame:
    """Table 3: index generator; api_cost_col1_usd, api_cost_col2_usd, problem_solving, data_generation."""
    t = _data()["table3"]
    return pd.DataFrame.from_dict(t["rows"], orient="index", columns=t["columns"], dtype=float).rename_axis(
        "generator"
    )


def paper_table4() -> pd.DataFrame:
    """Table 4: metric_as_printed, loading_strength, contribution_percent."""
    t = _data()["table4"]
    return pd.DataFrame(t["rows"], columns=t["columns"])


def paper_table4_by_metric() -> pd.DataFrame:
    """Table 4 indexed by metric key (as in Table 8 / Figure 5): loading_strength, contribution_percent."""
    t = paper_table4()
    keys = _data()["table4"]["metric_keys"]
    if len(keys) != len(t):
        raise DataError(DATA_FILE, f"table4.metric_keys has {len(keys)} keys for {len(t)} rows")
    return t.drop(columns="metric_as_printed").set_axis(pd.Index(keys, name="metric")).astype(float)


def paper_table5() -> pd.DataFrame:
    """Table 5 (meta-prompt ablation, PGR %): index (method, generator, variant), columns domains, average."""
    index, rows = [], []
    for method, by_gen in _data()["table5"]["pgr"].items():
        for gen, by_variant in by_gen.items():
            for variant, values in by_variant.items():
                index.append((method, gen, variant))
                rows.append(values)
    idx = pd.MultiIndex.from_tuples(index, names=["method", "generator", "variant"])
    return pd.DataFrame(rows, index=idx, columns=TABLE_COLUMNS, dtype=float)


def paper_table7() -> pd.DataFrame:
    """Table 7 (generators' problem-solving scores): index generator, one column per benchmark, average."""
    t = _data()["table7"]
    return pd.DataFrame.from_dict(t["rows"], orient="index", columns=t["columns"], dtype=float).rename_axis(
        "generator"
    )


def paper_table8() -> pd.DataFrame:
    """Table 8 (intrinsic metrics) long: metric, generator, method, domain (incl. 'average'), value."""
    t = _data()["table8"]
    rows = [
        (metric, gen, method, domain, value)
        for metric, by_gen in t["values"].items()
        for gen, by_method in by_gen.items()
        for method, values in by_method.items()
        for domain, value in zip(t["columns"], values, strict=True)
    ]
    return pd.DataFrame(rows, columns=["metric", "generator", "method", "domain", "value"])


def paper_table8_metric_names() -> dict[str, str]:
    """Metric key -> row name as printed in Table 8."""
    return dict(_data()["table8"]["metrics"])


def printed_half_units() -> dict[str, Any]:
    """Half a unit of the last printed digit: table2 and table7 (one number each), table8 (per metric)."""
    dec = _data()["printed_decimals"]
    return {
        "table2": 0.5 * 10.0 ** -dec["table2"],
        "table7": 0.5 * 10.0 ** -dec["table7"],
        "table8": {m: 0.5 * 10.0**-d for m, d in dec["table8"].items()},
    }


def paper_fig3() -> dict[str, float]:
    """Figure 3 worked example: base, student, reference and the printed PGR (pgr_printed)."""
    return {k: float(v) for k, v in _data()["figure3"].items()}


def paper_fig4() -> pd.DataFrame:
    """Figure 4 regressions: index analysis (coarse, fine), columns n_points, r_squared, p_value."""
    return pd.DataFrame.from_dict(_data()["figure4"], orient="index").rename_axis("analysis")


def paper_fig6() -> dict[str, float]:
    """Figure 6 caption: r_squared and p_value_below (the paper prints p < 0.001)."""
    return {k: float(v) for k, v in _data()["figure6"].items()}


def paper_fig5() -> tuple[pd.Series, pd.DataFrame]:
    """Figure 5: explained variance (%) of PC1-PC5 and the loadings (features x PC1-PC5) as printed."""
    f = _data()["figure5"]
    names = [f"PC{i + 1}" for i in range(len(f["explained_variance"]))]
    variance = pd.Series(f["explained_variance"], index=names, name="explained_variance_percent", dtype=float)
    loadings = pd.DataFrame.from_dict(f["loadings"], orient="index", columns=names, dtype=float)
    return variance, loadings.rename_axis("feature")
