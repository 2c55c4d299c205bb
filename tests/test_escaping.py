"""Model text never runs in a page: `<script>` and Markdown/HTML injection payloads in a generated instance,
in what a provider reports, and in a prediction, rendered through the real sinks (data card, lineage page,
Markdown tables, reST caption text) and then through real renderers (markdown-it's CommonMark with
tables; docutils, which renders Snakemake's report captions)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from agorabench.analysis.tables import to_markdown
from agorabench.evaluation.scorers.code import CodeScorer
from agorabench.provenance import lineage as lin
from agorabench.provenance.datacard import CardInputs, card
from agorabench.textsafe import html_text, md_code, md_fence, md_text, rst_text

PAYLOAD = (
    "<script>alert('x')</script> <img src=x onerror=alert(1)> [click](javascript:alert(1)) "
    "**INJECTED-BOLD** a | INJECTED-CELL | b `` <script>alert(3)</script> ``\n"
    "```\n</details><script>alert(2)</script>\n```\n\n# INJECTED-HEADING\n\n.. raw:: html\n\n   <b>RAW</b>\n"
)


def _render(markdown: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)


def _assert_inert(page: str) -> None:
    """No element or attribute came from the payload, and its text is shown (escaped), not dropped."""
    low = page.lower()
    assert "<script" not in low and "<img" not in low
    assert not re.search(r"<[a-z][^>]*\son\w+=", low)  # no event-handler attribute in any tag
    assert not re.search(r"<a [^>]*href=\"javascript", low)
    assert "<strong>INJECTED-BOLD" not in page and "<td>INJECTED-CELL" not in page
    assert "<h1>INJECTED-HEADING" not in page and "<b>RAW" not in page
    assert "&lt;script&gt;" in page  # shown as text


def test_helpers_render_as_the_literal_text() -> None:
    for helper in (md_text, md_code):
        page = _render(f"| a | b |\n|---|---|\n| {helper(PAYLOAD)} | 2 |\n")
        _assert_inert(page)
        assert page.count("<td>") == 2  # the payload's pipes opened no cell
    _assert_inert(_render(md_fence(PAYLOAD) + "\n\nafter"))
    assert "<p>after</p>" in _render(md_fence(PAYLOAD) + "\n\nafter")  # the fence was not closed early
    assert "<script" not in html_text(PAYLOAD)


def test_rst_caption_text_is_inert() -> None:
    core = pytest.importorskip("docutils.core")
    caption = f"Generator: {rst_text(PAYLOAD)}."
    body = core.publish_parts(caption, writer="html", settings_overrides={"report_level": 5})["html_body"]
    assert "<script" not in body.lower() and "<b>RAW" not in body
    assert "raw:: html" in body  # the directive is plain text


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_data_card_escapes_what_models_and_providers_wrote(tmp_path: Path) -> None:
    instance = {"id": "g1", "instruction": PAYLOAD, "response": PAYLOAD, "demo_ids": ["s1"]}
    pool = _write(tmp_path / "pool.jsonl", json.dumps(instance) + "\n")
    seeds = _write(
        tmp_path / "seeds.jsonl", json.dumps({"id": "s1", "instruction": "q", "response": "a"}) + "\n"
    )
    stats = {
        "n": 1, "valid": 1, "shortfall": 0, "models": [PAYLOAD],
        "finish_reasons": {PAYLOAD: 1}, "rejected": {f"unparsable: {PAYLOAD}": 2},
    }  # fmt: skip
    record = {"models": [{"role": "model", "model_info": {"source": "package", "model": PAYLOAD}}]}
    text = card(
        CardInputs(
            pool_path=str(pool), stats=stats, rows=[instance], record=record, seeds_path=str(seeds),
            seeds_record={}, generator="gen-1", spec={"backend": "transformers", "model": "m"},
            seed_source={"format": "demo"}, setting=("math", "instance_generation", "agorabench"),
        )
    )  # fmt: skip
    _assert_inert(_render(text))


def test_lineage_page_escapes_model_names_and_paths(tmp_path: Path) -> None:
    target = "res/pool.jsonl"
    _write(tmp_path / target, "{}\n")
    record = {
        "rule": "generate_api",
        "wildcards": {"generator": "gen-1"},
        "outputs": [{"path": target, "sha256": "0" * 64}],
        "inputs": [{"path": "src/seeds.jsonl"}],
        "sources": [{"path": f"cfg/{PAYLOAD}"}],
        "models": [{"name": "gen-1", "backend": "openai", "model": PAYLOAD}],
    }
    _write(tmp_path / f"{target}.prov.json", json.dumps(record))
    page = lin.markdown(lin.trace(target, tmp_path))
    _assert_inert(_render(page))


def test_markdown_tables_escape_labels_and_text_cells() -> None:
    table = pd.DataFrame({"score": [50.0, 40.0], "note": [PAYLOAD, "ok"]}, index=[PAYLOAD, "gen-2"])
    table.index.name = "generator"
    page = _render(to_markdown(table))
    _assert_inert(page)
    assert all(row.count("<td") == 3 for row in page.split("<tr>")[2:])


def test_a_prediction_s_text_stays_inert_where_it_is_shown() -> None:
    items = [{"id": "t/1", "prompt": "p", "tests": "assert f() == 1\n", "setup": "", "entry_point": "f",
              "prompt_code": None}]  # fmt: skip
    preds = [{"id": "t/1", "output": f"```python\ndef f():\n    raise ValueError({PAYLOAD!r})\n```"}]
    score = CodeScorer().score(items, preds, workers=1)
    error = score.per_item[0]["error"]
    assert error.startswith("ValueError: <script>")  # stored as written (JSON), bounded
    table = pd.DataFrame({"error": [error]}, index=pd.Index(["t/1"], name="id"))
    _assert_inert(_render(to_markdown(table)))
