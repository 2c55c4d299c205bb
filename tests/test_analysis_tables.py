"""Table writers: CSV / Markdown / LaTeX with best and second-best marks, n/a cells, scores and Table 5."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agorabench.analysis.paper import paper_table2
from agorabench.analysis.pgr import METHODS
from agorabench.analysis.tables import (
    NA,
    mark_best,
    meta_prompt_table,
    scores_table,
    to_latex,
    to_markdown,
    write_pgr_tables,
)


def small_matrix() -> pd.DataFrame:
    idx = pd.MultiIndex.from_product(
        [["g1", "g2", "g3"], ["instance_generation"]], names=["generator", "method"]
    )
    return pd.DataFrame(
        {"math": [10.0, 30.0, 20.0], "code": [5.0, np.nan, 5.0], "instruction_following": [1.0, 2.0, 3.0]},
        index=idx,
    ).assign(average=lambda d: d.mean(axis=1, skipna=False))


def test_mark_best_ties_and_nan():
    marks = mark_best(small_matrix())
    assert marks["math"].tolist() == ["", "best", "second"]
    assert marks["code"].tolist() == ["best", "", "best"]  # a tie shares the mark; n/a is never marked
    assert marks["average"].tolist() == ["second", "", "best"]


def test_write_pgr_tables_three_formats(tmp_path):
    m = small_matrix()
    csv, md, tex = tmp_path / "t" / "pgr.csv", tmp_path / "t" / "pgr.md", tmp_path / "t" / "pgr.tex"
    write_pgr_tables(m, csv, md, tex, labels={"g1": "Gen One"})
    back = pd.read_csv(csv, na_values=[NA])
    assert back["math"].tolist() == m["math"].tolist() and back["code"].isna().tolist() == [
        False,
        True,
        False,
    ]
    assert NA in csv.read_text()
    text = md.read_text()
    assert "| **30.0** |" in text and "<u>20.0</u>" in text and "| n/a |" in text and "Gen One" in text
    assert "Inst. Follow" in text and "Instance Generation" in text
    latex = tex.read_text()
    assert "\\textbf{30.0}" in latex and "\\underline{20.0}" in latex and "n/a" in latex
    assert "\\begin{tabular}{llrrrr}" in latex and "instance_generation" not in latex  # labelled, escaped


def test_paper_table2_renders_with_paper_marks():
    text = to_markdown(paper_table2(), mark_best(paper_table2()))
    # GPT-4o instance generation is best in every column of its block (bold in the paper)
    row = next(line for line in text.splitlines() if line.startswith("| gpt-4o | Instance Generation"))
    assert row.count("**") == 8
    assert len(text.splitlines()) == 2 + len(paper_table2())


def test_latex_escapes_special_characters():
    df = pd.DataFrame({"a_b": [1.0]}, index=pd.Index(["x&y%"], name="model"))
    out = to_latex(df)
    assert "x\\&y\\%" in out and "a\\_b" in out


def test_scores_table_pivots_models_by_benchmark():
    scores = pd.DataFrame(
        {"model": ["m1", "m1", "m2"], "benchmark": ["gsm8k", "mbpp", "gsm8k"], "value": [50.0, 20.0, 40.0]}
    )
    wide = scores_table(scores, benchmarks=["gsm8k", "mbpp", "humaneval"])
    assert wide.loc["m1"].tolist()[:2] == [50.0, 20.0]
    assert np.isnan(wide.at["m2", "mbpp"]) and wide["humaneval"].isna().all()
    assert "| m2 | 40.0 | n/a | n/a |" in to_markdown(wide)


def long_table(variant_pgrs: dict[str, dict[str, float]]) -> pd.DataFrame:
    """A pgr_table-like frame: domain rows only, one student per generator x method x domain x variant."""
    rows = []
    for variant, by_gen in variant_pgrs.items():
        for gen, value in by_gen.items():
            for method in METHODS:
                for k, domain in enumerate(("math", "code", "instruction_following")):
                    rows.append(
                        {
                            "model": f"{gen}/{variant}/{method}/{domain}",
                            "generator": gen,
                            "domain": domain,
                            "method": method,
                            "variant": variant,
                            "size": 10000,
                            "level": "domain",
                            "benchmark": "mean",
                            "pgr": value + k,
                        }
                    )
    return pd.DataFrame(rows)


def test_meta_prompt_table_table5_layout():
    long = long_table(
        {
            "agorabench": {"a": 10.0, "b": 20.0, "c": 30.0},
            "unoptimized": {"b": 5.0, "c": 6.0},
            "json": {"b": 7.0, "c": 8.0},
        }
    )
    t5 = meta_prompt_table(long, variants=["agorabench", "unoptimized", "json"])
    assert t5.index.names == ["method", "generator", "variant"]
    assert sorted(set(t5.index.get_level_values("generator"))) == ["b", "c"]  # 'a' is not in the ablation
    assert set(t5.index.get_level_values("method")) == {"instance_generation", "quality_enhancement"}
    assert t5.loc[("quality_enhancement", "c", "json")].tolist() == pytest.approx([8.0, 9.0, 10.0, 9.0])
    assert len(t5) == 2 * 2 * 3
    assert "| Quality Enhancement | c | json | 8.0 | 9.0 | 10.0 | 9.0 |" in to_markdown(t5)
