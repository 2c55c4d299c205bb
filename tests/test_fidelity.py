"""docs/fidelity.md against config/config.yaml: each row's config value is the config's, so neither drifts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "fidelity.md"
CONFIG = ROOT / "config" / "config.yaml"
STAGES = ("Generation", "Validation", "Training", "Evaluation", "Analysis")
HEADER = ["Setting", "Paper / official value", "Source", "Config key", "Config value", "Status"]
NO_KEY = "—"
_MISSING = object()


def _cells(line: str) -> list[str]:
    # Split on pipes that are not inside backticks (values such as `a | b` stay whole).
    cells, current, in_code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
    cells.append(current.strip())
    return cells


def fidelity_rows(text: str) -> list[dict[str, str]]:
    """The table rows of the document, each with its section (`stage`) and line number."""
    rows, stage, header = [], None, None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            stage, header = line[3:].strip(), None
        elif line.startswith("|") and stage:
            cells = _cells(line)
            if header is None:
                header = cells
                assert header == HEADER, f"fidelity.md:{number}: table header {header} != {HEADER}"
            elif not set("".join(cells)) <= set("-: "):
                want = len(header)
                assert len(cells) == want, f"fidelity.md:{number}: {len(cells)} cells, want {want}"
                rows.append({"stage": stage, "line": str(number), **dict(zip(header, cells, strict=True))})
    return rows


def lookup(config: Any, dotted: str) -> Any:
    """Value at a dotted key; a segment may itself contain dots (`models.llama-3.1-8b.hub`)."""
    parts = dotted.split(".")
    node = config
    while parts:
        for width in range(len(parts), 0, -1):
            segment = ".".join(parts[:width])
            if isinstance(node, dict) and segment in node:
                node, parts = node[segment], parts[width:]
                break
            if isinstance(node, list) and width == 1 and segment.isdigit() and int(segment) < len(node):
                node, parts = node[int(segment)], parts[1:]
                break
        else:
            return _MISSING
    return node


def _code(cell: str, where: str) -> str:
    match = re.fullmatch(r"`(.*)`", cell)
    assert match, f"{where}: expected one `backticked` value, got {cell!r}"
    return match.group(1)


ROWS = fidelity_rows(DOC.read_text(encoding="utf-8"))
CONFIG_DATA = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


def test_document_has_every_stage_and_at_least_40_rows():
    stages = {row["stage"] for row in ROWS}
    assert set(STAGES) <= stages, f"missing sections: {sorted(set(STAGES) - stages)}"
    assert len(ROWS) >= 40, f"docs/fidelity.md has {len(ROWS)} rows; the study needs at least 40"


def test_every_row_states_a_source_and_a_status():
    for row in ROWS:
        where = f"docs/fidelity.md:{row['line']}"
        assert row["Source"] and row["Paper / official value"], f"{where}: empty paper value or source"
        status = row["Status"]
        assert status.startswith(("match", "deliberate difference")), (
            f"{where}: status must be `match` or `deliberate difference (why)`, got {status!r}"
        )
        if status.startswith("deliberate difference"):
            assert "(" in status, f"{where}: a deliberate difference must give its reason in parentheses"


@pytest.mark.parametrize("row", [r for r in ROWS if r["Config key"] != NO_KEY], ids=lambda r: r["Config key"])
def test_config_value_column_equals_config_yaml(row):
    where = f"docs/fidelity.md:{row['line']}"
    key = _code(row["Config key"], where)
    expected = yaml.safe_load(_code(row["Config value"], where))
    actual = lookup(CONFIG_DATA, key)
    assert actual is not _MISSING, f"{where}: config/config.yaml has no key {key!r}"
    assert actual == expected, f"{where}: {key} is {actual!r} in config/config.yaml, {expected!r} in the doc"


def test_rows_without_a_key_have_no_value():
    for row in ROWS:
        if row["Config key"] == NO_KEY:
            assert row["Config value"] == NO_KEY, f"docs/fidelity.md:{row['line']}: a value without a key"


def test_lookup_and_parser_catch_drift():
    # The checker itself: a changed value, a missing key and a dotted model name are all told apart.
    config = {"models": {"llama-3.1-8b": {"hub": "x"}}, "a": {"b": [1, 2]}}
    assert lookup(config, "models.llama-3.1-8b.hub") == "x"
    assert lookup(config, "a.b.1") == 2
    assert lookup(config, "a.c") is _MISSING
    doc = "## Training\n\n| " + " | ".join(HEADER) + " |\n|---|---|---|---|---|---|\n"
    doc += "| S | v | src | `a.b` | `[1, 2]` | match |\n| T | `x | y` | src | — | — | match |\n"
    rows = fidelity_rows(doc)
    assert [r["Config value"] for r in rows] == ["`[1, 2]`", "—"]
    assert rows[1]["Paper / official value"] == "`x | y`"
