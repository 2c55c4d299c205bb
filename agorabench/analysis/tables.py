"""Tables as CSV, Markdown and LaTeX: the PGR table (Table 2 layout; best bold, second best underlined per
method block and column, as in the paper), the scores table across models, Table 5 (meta-prompt ablation)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from agorabench.analysis.pgr import DOMAINS, pgr_matrix
from agorabench.jsonl import write_text
from agorabench.textsafe import md_text

NA = "n/a"
BEST, SECOND = "best", "second"
COLUMN_LABELS: dict[str, str] = {
    "math": "Math",
    "code": "Code",
    "instruction_following": "Inst. Follow",
    "average": "Average",
    "gsm8k": "GSM8K",
    "mbpp": "MBPP",
    "humaneval": "HumanEval",
    "alpaca_eval": "AlpacaEval 2.0",
    "arena_hard": "Arena-Hard",
    "generator": "Generator",
    "method": "Method",
    "model": "Model",
    "variant": "Meta-prompt",
}
METHOD_LABELS: dict[str, str] = {
    "instance_generation": "Instance Generation",
    "response_generation": "Response Generation",
    "quality_enhancement": "Quality Enhancement",
}
MD_MARKS = {BEST: "**{}**", SECOND: "<u>{}</u>"}
TEX_MARKS = {BEST: "\\textbf{{{}}}", SECOND: "\\underline{{{}}}"}


def format_value(value: float, digits: int = 1) -> str:
    """A number with `digits` decimals; NaN/None (an undefined PGR) as 'n/a'; text as it is."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    return f"{value:.{digits}f}"


def _column_marks(values: pd.Series) -> pd.Series:
    distinct = sorted(set(values.dropna()), reverse=True)
    marks = pd.Series("", index=values.index, dtype=object)
    if distinct:
        marks[values == distinct[0]] = BEST
    if len(distinct) > 1:
        marks[values == distinct[1]] = SECOND
    return marks


def mark_best(table: pd.DataFrame, group_level: str | None = "method") -> pd.DataFrame:
    """'best' / 'second' / '' per cell: highest and second-highest value of each column within each group of
    rows sharing index level `group_level` (the paper marks per method block); ties share a mark, NaN none."""
    if group_level is None:
        return table.apply(_column_marks)
    parts = [grp.apply(_column_marks) for _, grp in table.groupby(level=group_level, sort=False)]
    return pd.concat(parts).reindex(table.index)


def _label(value: object, labels: Mapping[str, str]) -> str:
    return labels.get(str(value), str(value))


def _cells(
    table: pd.DataFrame,
    marks: pd.DataFrame | None,
    digits: int,
    styles: Mapping[str, str],
    escape: Callable[[str], str] = str,
) -> list[list]:
    rows = []
    for i, (_, row) in enumerate(table.iterrows()):
        cells = []
        for j, value in enumerate(row):
            text = escape(format_value(value, digits))
            mark = "" if marks is None else marks.iat[i, j]
            cells.append(styles[mark].format(text) if mark and text != NA else text)
        rows.append(cells)
    return rows


def _index_cells(table: pd.DataFrame, labels: Mapping[str, str], escape: bool = False) -> list[list[str]]:
    keys = [k if isinstance(k, tuple) else (k,) for k in table.index]
    out = [[_label(v, labels) for v in key] for key in keys]
    return [[_tex_escape(c) for c in row] for row in out] if escape else out


def _header(table: pd.DataFrame, labels: Mapping[str, str]) -> tuple[list[str], list[str]]:
    names = [_label(n or "", labels) for n in table.index.names]
    return names, [_label(c, labels) for c in table.columns]


def to_markdown(
    table: pd.DataFrame,
    marks: pd.DataFrame | None = None,
    *,
    digits: int = 1,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Markdown pipe table; marked cells bold (best) / underlined with <u> (second best). Every label and
    text cell is escaped (`md_text`): names can come from models and providers."""
    labels = {**COLUMN_LABELS, **METHOD_LABELS, **(labels or {})}
    names, cols = _header(table, labels)
    header = [md_text(x) for x in names + cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(names) + "---:|" * len(cols)]
    rows = _cells(table, marks, digits, MD_MARKS, escape=md_text)
    for idx, cells in zip(_index_cells(table, labels), rows, strict=True):
        lines.append("| " + " | ".join([md_text(x) for x in idx] + cells) + " |")
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for char in ("\\", "&", "%", "$", "#", "_", "{", "}"):
        text = text.replace(char, "\\" + char if char != "\\" else "\\textbackslash{}")
    return text


def to_latex(
    table: pd.DataFrame,
    marks: pd.DataFrame | None = None,
    *,
    digits: int = 1,
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
) -> str:
    """booktabs tabular (in a table float when `caption` is given); best \\textbf, second \\underline."""
    labels = {**COLUMN_LABELS, **METHOD_LABELS, **(labels or {})}
    names, cols = _header(table, labels)
    spec = "l" * len(names) + "r" * len(cols)
    body = [
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(_tex_escape(c) for c in names + cols) + " \\\\",
        "\\midrule",
    ]
    previous = None
    for key, idx, cells in zip(
        table.index,
        _index_cells(table, labels, escape=True),
        _cells(table, marks, digits, TEX_MARKS),
        strict=True,
    ):
        first = key[0] if isinstance(key, tuple) else None
        if previous is not None and first != previous:
            body.append("\\midrule")
        previous = first
        body.append(" & ".join(idx + cells) + " \\\\")
    body += ["\\bottomrule", "\\end{tabular}"]
    if caption:
        body = [
            "\\begin{table}[t]",
            "\\centering",
            f"\\caption{{{_tex_escape(caption)}}}",
            *body,
            "\\end{table}",
        ]
    return "\n".join(body) + "\n"


def to_csv(table: pd.DataFrame) -> str:
    """CSV with the index as leading columns and 'n/a' for undefined values (full precision)."""
    return table.to_csv(na_rep=NA)


def write_table(
    table: pd.DataFrame,
    csv_path: str | Path,
    md_path: str | Path,
    tex_path: str | Path | None = None,
    *,
    marks: pd.DataFrame | None = None,
    digits: int = 1,
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
) -> None:
    """Write one table as CSV, Markdown and (optionally) LaTeX, each atomically."""
    write_text(Path(csv_path), to_csv(table))
    write_text(Path(md_path), to_markdown(table, marks, digits=digits, labels=labels))
    if tex_path is not None:
        write_text(Path(tex_path), to_latex(table, marks, digits=digits, labels=labels, caption=caption))


def write_pgr_tables(
    df: pd.DataFrame,
    csv_path: str | Path,
    md_path: str | Path,
    tex_path: str | Path,
    *,
    digits: int = 1,
    labels: Mapping[str, str] | None = None,
    intervals: pd.DataFrame | None = None,
) -> None:
    """The PGR table (a `pgr_matrix` frame, Table 2 layout) with best / second-best marks per method block.

    `intervals` (uncertainty.interval_matrix): the CSV gains `<column>_low/_high/_interval` columns and the
    Markdown / LaTeX cells read 'PGR [low, high]' or 'PGR (unstable)'; marks stay on the point values."""
    caption = "PGR (%) per generator and data generation method (n/a: undefined PGR)."
    if intervals is None:
        write_table(
            df,
            csv_path,
            md_path,
            tex_path,
            marks=mark_best(df, "method"),
            digits=digits,
            labels=labels,
            caption=caption,
        )
        return
    text = _interval_cells(df, intervals, digits)
    marks = mark_best(df, "method")
    caption += (
        " Brackets: paired-bootstrap interval over benchmark items;"
        " unstable: the interval of the gap S_ref - S0 includes 0."
    )
    write_text(Path(csv_path), to_csv(pd.concat([df, intervals], axis=1)))
    write_text(Path(md_path), to_markdown(text, marks, digits=digits, labels=labels))
    write_text(Path(tex_path), to_latex(text, marks, digits=digits, labels=labels, caption=caption))


def _interval_cells(df: pd.DataFrame, intervals: pd.DataFrame, digits: int) -> pd.DataFrame:
    from agorabench.analysis.uncertainty import interval_text

    text = df.astype(object).copy()
    for col in df.columns:
        lo, hi, st = (intervals[f"{col}_{k}"] for k in ("low", "high", "interval"))
        text[col] = [
            interval_text(float(v), a, b, s, digits) for v, a, b, s in zip(df[col], lo, hi, st, strict=True)
        ]
    return text


def scores_table(
    scores: pd.DataFrame, models: Sequence[str] | None = None, benchmarks: Sequence[str] | None = None
) -> pd.DataFrame:
    """Scores across models (`collect_scores` frame): index model, one column per benchmark; absent: NaN."""
    wide = scores.pivot(index="model", columns="benchmark", values="value")
    wide = wide.reindex(
        index=list(models) if models is not None else list(dict.fromkeys(scores["model"])),
        columns=list(benchmarks) if benchmarks is not None else list(dict.fromkeys(scores["benchmark"])),
    )
    wide.columns.name = None
    return wide.astype(float)


def _common_generators(table: pd.DataFrame, variants: Sequence[str], methods: Sequence[str]) -> list[str]:
    """Generators with students for every variant (in order of appearance): those of the ablation."""
    rows = table[table["method"].isin(methods)]
    have = [set(rows.loc[rows["variant"] == v, "generator"]) for v in variants]
    common = set.intersection(*have) if have else set()
    return [g for g in dict.fromkeys(rows["generator"]) if g in common]


def meta_prompt_table(
    table: pd.DataFrame,
    *,
    variants: Sequence[str],
    methods: Sequence[str] = ("instance_generation", "quality_enhancement"),
    generators: Sequence[str] | None = None,
    size: int | None = None,
    domains: Sequence[str] = DOMAINS,
) -> pd.DataFrame:
    """Table 5 layout from a long `pgr_table` frame: index (method, generator, variant), columns domains +
    average; one Table 2 matrix per meta-prompt variant, restricted to the generators of the ablation."""
    if generators is None:
        generators = _common_generators(table, variants, methods)
    parts = []
    for variant in variants:
        m = pgr_matrix(
            table, variant=variant, size=size, generators=generators, methods=methods, domains=domains
        )
        parts.append(m.assign(variant=variant).set_index("variant", append=True))
    out = pd.concat(parts).reorder_levels(["method", "generator", "variant"])
    gens = list(dict.fromkeys(out.index.get_level_values("generator")))
    order = [(m, g, v) for m in methods for g in gens for v in variants]
    return out.reindex(order)
