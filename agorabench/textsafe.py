"""Escaping for text that models, providers or data wrote (instances, predictions, judge outputs, model
names reported by an API, rejection reasons) before it goes into a page: data cards, lineage pages,
Markdown tables, report captions. Each function turns any string into text that renders as itself and
can neither close the markup around it nor open new markup (HTML tags, links, images, emphasis, table
cells, code fences, reST directives).
"""

from __future__ import annotations

import html
import re

_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")  # what can open markup inside a line
_RST_PUNCTUATION = re.compile(r"([\\`*_|\[\]<>:])")
_BACKTICKS = re.compile(r"`+")


def _one_line(text: object) -> str:
    return " ".join(str(text).splitlines())


def md_text(text: object) -> str:
    """Markdown prose or a table cell: one line, Markdown punctuation backslash-escaped, & < > as entities."""
    return html.escape(_MD_PUNCTUATION.sub(r"\\\1", _one_line(text)), quote=False)


def md_code(text: object) -> str:
    """An inline code span holding the text literally (also inside a table cell)."""
    body = _one_line(text).replace("|", "\\|")
    fence = "`" * (1 + max((len(m) for m in _BACKTICKS.findall(body)), default=0))
    pad = " " if body.startswith("`") or body.endswith("`") or not body.strip() else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def md_fence(text: object, info: str = "text") -> str:
    """A fenced code block holding the (multi-line) text literally: its fence is longer than any run of
    backticks in it."""
    body = str(text)
    fence = "`" * max(3, 1 + max((len(m) for m in _BACKTICKS.findall(body)), default=0))
    return f"{fence}{info}\n{body}\n{fence}"


def html_text(text: object) -> str:
    """HTML element content or an attribute value."""
    return html.escape(str(text), quote=True)


def rst_text(text: object) -> str:
    """reST inline text (a report caption): one line, inline-markup characters backslash-escaped, so no
    role, substitution, link or directive can start."""
    return _RST_PUNCTUATION.sub(r"\\\1", _one_line(text))
