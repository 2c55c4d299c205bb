"""Math scorer (GSM8K, MATH): final-answer extraction and equivalence.

Extraction, first format found wins:
  strict:   `[RESULT] x [/RESULT]` (the format the students learn; last one; an unclosed last `[RESULT]`
            runs to `[END]` or the end), GSM8K's `#### x` (last), `\\boxed{x}` / `\\fbox{x}` (last, nested
            braces)
  flexible: the strict formats, then "The (final) answer is x" / "Answer: x" (last), then the last number
            (GSM8K calculator annotations `<<48/2=24>>` removed first).
Equivalence: plain numbers (thousands commas, $, %, units, "\\frac{a}{b}", "a/b", decimals) compare exactly
as fractions; anything else goes to math-verify (fractions, radicals, intervals, sets, matrices, LaTeX vs
plain), run in a worker process that is killed and counted when a call hangs.
`value` is strict or flexible accuracy by the `mode` setting; both are always in `secondary`.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from agorabench.childenv import child_env
from agorabench.errors import AgoraBenchError
from agorabench.evaluation.scorers.base import (
    Score,
    Scorer,
    match_predictions,
    mean_ci,
    percent,
    register,
    require_str,
    resolve_settings,
)

STRICT_FORMATS = ("result", "gsm8k", "boxed")


@dataclass(frozen=True)
class Extraction:
    answer: str
    format: str  # result | gsm8k | boxed | answer_is | last_number

    @property
    def strict(self) -> bool:
        return self.format in STRICT_FORMATS


# ---------------------------------------------------------------- extraction

_RESULT_OPEN, _RESULT_CLOSE = "[RESULT]", "[/RESULT]"
_GSM8K_RE = re.compile(r"####\s*([^\n]*)")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*(\{)|\\boxed\s+([^\s${}]+)")
_ANSWER_IS_RE = re.compile(r"answer\s*\**\s*(?:is\b|:)\s*\**\s*:?", re.IGNORECASE)
_CALCULATOR_RE = re.compile(r"<<[^<>]*>>")
_NUMBER_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)")


def extract_answer(text: str, mode: str = "flexible") -> Extraction | None:
    """The final answer of a model output, or None; `mode` "strict" uses only the explicit formats."""
    for fmt, finder in (("result", _find_result), ("gsm8k", _find_gsm8k), ("boxed", _find_boxed)):
        answer = finder(text)
        if answer:
            return Extraction(answer, fmt)
    if mode == "strict":
        return None
    for fmt, finder in (("answer_is", _find_answer_is), ("last_number", _find_last_number)):
        answer = finder(text)
        if answer:
            return Extraction(answer, fmt)
    return None


def _find_result(text: str) -> str | None:
    start = text.rfind(_RESULT_OPEN)
    if start < 0:
        return None
    rest = text[start + len(_RESULT_OPEN) :]
    end = rest.find(_RESULT_CLOSE)
    if end < 0:
        end = rest.find("[END]")
    return rest[: end if end >= 0 else None].strip() or None


def _find_gsm8k(text: str) -> str | None:
    matches = _GSM8K_RE.findall(text)
    return matches[-1].strip() or None if matches else None


def _find_boxed(text: str) -> str | None:
    matches = list(_BOXED_RE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    if last.group(2) is not None:  # \boxed 5
        return last.group(2)
    return _balanced(text, last.end(1) - 1)


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} / \\fbox{...} in `text` (how MATH solutions state the answer)."""
    return _find_boxed(text)


def _balanced(text: str, open_brace: int) -> str | None:
    """The content of the brace group opening at `open_brace`; None when it never closes."""
    depth = 0
    for pos in range(open_brace, len(text)):
        char = text[pos]
        if char == "{" and text[pos - 1] != "\\":
            depth += 1
        elif char == "}" and text[pos - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[open_brace + 1 : pos].strip() or None
    return None


def _find_answer_is(text: str) -> str | None:
    matches = list(_ANSWER_IS_RE.finditer(text))
    if not matches:
        return None
    line = text[matches[-1].end() :].split("\n", 1)[0]
    answer = _SENTENCE_END_RE.split(line, maxsplit=1)[0]
    return answer.strip().strip("*").strip() or None


def _find_last_number(text: str) -> str | None:
    numbers = _NUMBER_RE.findall(_CALCULATOR_RE.sub(" ", text))
    return numbers[-1] if numbers else None


# ---------------------------------------------------------------- normalisation

_SPACING_RE = re.compile(r"(?<!\\)\\[!,;: ]")  # \! \, \; \: "\ " but not a row break "\\"
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|mbox|mathrm|textrm)\s*\{([^{}]*)\}")
_FRAC_RE = re.compile(r"^\\frac\s*(?:\{\s*([-+]?\d+)\s*\}|(\d))\s*(?:\{\s*([-+]?\d+)\s*\}|(\d))$")
_UNIT_TAIL_RE = re.compile(r"^(.*?[\d}.])\s+[a-zA-Z]{2,}\.?(?:\s+[a-zA-Z]+\.?)*(?:\^?[23]|[²³])?$")
_ASSIGNMENT_RE = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*(?=[-+\d.\\])")
_THOUSANDS_RE = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_PLAIN_RE = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)$")
_SLASH_RE = re.compile(r"^([-+]?\d+)\s*/\s*([-+]?\d+)$")


def normalize_answer(answer: str) -> str:
    """Drop math delimiters, spacing commands, \\left/\\right and trailing periods; \\dfrac -> \\frac."""
    text = answer.strip().rstrip(".").strip()
    for left, right in (("$$", "$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        while text.startswith(left) and text.endswith(right) and len(text) > len(left) + len(right) - 1:
            text = text[len(left) :].rstrip()
            text = text[: -len(right)].strip() if text.endswith(right) else text
    for old, new in (("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\left", ""), ("\\right", "")):
        text = text.replace(old, new)
    text = _SPACING_RE.sub(lambda m: " " if m.group(0) == "\\ " else "", text).replace("~", " ")
    text = text.replace("{,}", ",").replace("−", "-")
    return text.strip().rstrip(".").strip()


def to_number(answer: str) -> Fraction | None:
    """Exact value of a plain-number answer ("1,000", "$18.00", "50%", "-3 cm", "\\frac{1}{2}"), else None."""
    text = _TEXT_CMD_RE.sub(lambda m: " " + m.group(1), normalize_answer(answer))
    for symbol in ("^\\circ", "^{\\circ}", "\\circ", "°", "\\$", "$", "\\%", "%"):
        text = text.replace(symbol, "")
    text = _ASSIGNMENT_RE.sub("", text.strip())
    text = re.sub(r"^[-+]?\s*(?:dollars?|usd|rs\.?|€|£)\s*", "", text, flags=re.IGNORECASE).strip()
    unit = _UNIT_TAIL_RE.match(text)
    if unit:
        text = unit.group(1).strip()
    text = text.strip().rstrip(".")
    return _parse_number(text)


def _parse_number(text: str) -> Fraction | None:
    sign = -1 if text.startswith("-") else 1
    body = text[1:].strip() if text[:1] in "+-" else text
    if _THOUSANDS_RE.match(body):
        body = body.replace(",", "")
    if _PLAIN_RE.match(body):
        return sign * Fraction(body)
    slash = _SLASH_RE.match(body)
    frac = _FRAC_RE.match(body)
    if slash or frac:
        num, den = (
            (slash.group(1), slash.group(2))
            if slash
            else (frac.group(1) or frac.group(2), frac.group(3) or frac.group(4))
        )
        return sign * Fraction(int(num), int(den)) if int(den) != 0 else None
    return None


def _compact(answer: str) -> str:
    return re.sub(r"\s+", "", normalize_answer(answer))


# ---------------------------------------------------------------- math-verify, guarded


class VerifierError(AgoraBenchError):
    """The math-verify worker process could not be started."""


class MathVerifier:
    """math-verify in a worker process; a call that hangs is killed after a hard timeout and counted.

    math-verify's own timeouts use SIGALRM, which only works in the main thread; a worker process works
    from any thread and survives pathological inputs (the worker is restarted after a kill).
    """

    def __init__(self, timeout_s: int = 5, hard_timeout_s: float | None = None):
        self.timeout_s = timeout_s  # math-verify's own per-step timeout (whole seconds)
        self.hard_timeout_s = hard_timeout_s if hard_timeout_s is not None else 4 * timeout_s + 5
        self._proc: subprocess.Popen | None = None
        self._buffer = b""

    def __enter__(self) -> MathVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._proc = None

    def equivalent(self, gold: str, pred: str) -> tuple[bool, str | None]:
        """(verdict, failure) where failure is None, "timeout" or "error" (a failed call is not a match)."""
        proc = self._ensure_started()
        assert proc.stdin is not None
        proc.stdin.write((json.dumps({"gold": gold, "pred": pred}) + "\n").encode())
        proc.stdin.flush()
        reply = self._read_line(self.hard_timeout_s)
        if reply is None:
            self.close()
            return False, "timeout"
        return bool(reply.get("ok")), reply.get("failure")

    def _ensure_started(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self.close()
            cmd = [
                sys.executable,
                "-c",
                f"from {__name__} import _worker_main; _worker_main({self.timeout_s})",
            ]
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=child_env(),  # the worker imports agorabench (not installed in a conda env)
            )
            self._buffer = b""
            if self._read_line(180) != {"ready": True}:
                self.close()
                raise VerifierError(
                    "the math-verify worker process did not start (is math-verify installed?)"
                )
        return self._proc

    def _read_line(self, timeout_s: float) -> dict | None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return None


def _worker_main(timeout_s: int) -> None:
    """Worker loop: one JSON request per stdin line, one reply per stdout line."""
    import logging

    from math_verify import parse, verify

    failures: list[str] = []

    class _Record(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            failures.append("timeout" if record.getMessage().startswith("Timeout") else "error")

    logger = logging.getLogger("math_verify")
    logger.addHandler(_Record(level=logging.DEBUG))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints must not break the protocol
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        failures.clear()
        try:
            gold = _mv_parse(parse, request["gold"], timeout_s)
            pred = _mv_parse(parse, request["pred"], timeout_s)
            ok = bool(gold) and bool(pred) and verify(gold, pred, timeout_seconds=timeout_s)
        except Exception:
            ok, failures[:] = False, ["error"]
        failure = None if ok or not failures else ("timeout" if "timeout" in failures else "error")
        out.write(json.dumps({"ok": ok, "failure": failure}) + "\n")
        out.flush()


def _mv_parse(parse: Any, answer: str, timeout_s: int) -> list:
    return parse(f"${answer}$", parsing_timeout=timeout_s) or parse(answer, parsing_timeout=timeout_s)


def answers_match(gold: str, pred: str, verifier: MathVerifier) -> tuple[bool, str | None]:
    """Whether `pred` is equivalent to `gold`: (verdict, failure of math-verify or None)."""
    gold_num, pred_num = to_number(gold), to_number(pred)
    if gold_num is not None and pred_num is not None:
        return gold_num == pred_num, None
    if _compact(gold) == _compact(pred):
        return True, None
    return verifier.equivalent(normalize_answer(gold), normalize_answer(pred))


# ---------------------------------------------------------------- scorer


@register
class MathScorer(Scorer):
    kind = "math"
    version = "1"  # part of the score rules' params: bump when a change here moves numbers
    defaults: dict[str, Any] = {"mode": "flexible", "verify_timeout_s": 5}  # noqa: RUF012

    def score(
        self,
        items: list[dict[str, Any]],
        predictions: list[dict[str, Any]],
        *,
        source: str = "predictions",
        **settings: Any,
    ) -> Score:
        settings = resolve_settings(
            self.kind,
            self.defaults,
            settings,
            {
                "mode": lambda v: v in ("strict", "flexible"),
                "verify_timeout_s": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
            },
        )
        pairs = match_predictions(items, predictions, source)
        with MathVerifier(settings["verify_timeout_s"]) as verifier:
            rows = [self._score_item(item, pred, source, verifier) for item, pred in pairs]
        return self._summarise(rows, settings)

    def _score_item(
        self, item: dict[str, Any], pred: dict[str, Any] | None, source: str, verifier: MathVerifier
    ) -> dict[str, Any]:
        gold = require_str(item, "answer", "benchmark items")
        row: dict[str, Any] = {
            "id": item["id"],
            "gold": gold,
            "answer": None,
            "format": None,
            "failure": None,
        }
        if pred is None:
            return row | {"correct": False, "strict_correct": False, "missing": True}
        extraction = extract_answer(require_str(pred, "output", source) or "")
        correct = False
        if extraction is not None:
            correct, row["failure"] = answers_match(gold, extraction.answer, verifier)
            row |= {"answer": extraction.answer, "format": extraction.format}
        strict = correct and extraction is not None and extraction.strict
        return row | {"correct": correct, "strict_correct": strict, "missing": False}

    def _summarise(self, rows: list[dict[str, Any]], settings: dict[str, Any]) -> Score:
        flexible = [float(r["correct"]) for r in rows]
        strict = [float(r["strict_correct"]) for r in rows]
        chosen = strict if settings["mode"] == "strict" else flexible
        present = [r for r in rows if not r["missing"]]
        counts = {
            "correct": int(sum(chosen)),
            "missing_prediction": len(rows) - len(present),
            "extraction_failed": sum(r["format"] is None for r in present),
            "strict_extraction_failed": sum(r["format"] not in STRICT_FORMATS for r in present),
            "verify_timeout": sum(r["failure"] == "timeout" for r in rows),
            "verify_error": sum(r["failure"] == "error" for r in rows),
        }
        return Score(
            kind=self.kind,
            metric="accuracy",
            value=percent(chosen),
            n=len(rows),
            ci=mean_ci(chosen),
            counts=counts,
            settings=dict(settings),
            secondary={"strict_accuracy": percent(strict), "flexible_accuracy": percent(flexible)},
            per_item=[{k: v for k, v in r.items() if k != "missing"} for r in rows],
        )
