"""Parsing and validating generator outputs into (instruction, response) pairs.

A malformed output never raises: it comes back as `Parsed(ok=False, reason=<code>)`. Reason codes:

- `backend_error`: the backend returned an error instead of text.
- `finish_length`: generation stopped at the token limit before the `[END]` stop phrase.
- `missing_trigger`: the split marker is absent (`OUTPUT:` for instance generation, `Revised Answer:`
  for quality enhancement). Without the marker as written, one in another letter case at a line start
  (`Output:`, `Revised answer:`) splits: small models often write the label in their own case.
- `json_invalid`: no JSON object could be decoded (JSON variant); `json_missing_key`: it lacks a string
  `instruction` or `response`.
- `empty`: instruction or response is empty after stripping.
- `leftover_placeholder`: template residue in a generated field (`<input1>`, `<output>`, `<input_theme>`,
  `INPUT:`, `OUTPUT:`, `[EXAMPLE ...`, `[NEW INSTANCE]`, `Revised Question:`, ...), e.g. a second
  instance written after the first.
- `math_result_count`: the response has not exactly one `[RESULT]` and one `[/RESULT]`;
  `math_result_position`: the tag pair is not at the end (`[RESULT] ... [/RESULT]` must close it).
- `code_fence`: no fenced block or unbalanced fences; `code_prose`: anything outside one fenced block
  (explanations, a second block, test code or "Example usage" after the fence); `code_syntax`: a Python
  block (tag `python`, `py` or none) that `ast.parse` rejects. Blocks tagged with another language are
  accepted as the study's prompts allow them; they cannot be parsed here.
- `too_long`: the chat-formatted pair exceeds the student's `max_tokens` (via `count_tokens`).

As in the study (data-agora's validators), the domain checks apply to the response; the placeholder
check applies to every generated field (the seed instruction of response generation is not checked).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agorabench.errors import ConfigError
from agorabench.generation import official
from agorabench.generation.prompts import (
    INPUT_TRIGGER,
    OUTPUT_TRIGGER,
    QE_ANSWER_TRIGGER,
    QE_QUESTION_TRIGGER,
    STOP_PHRASE,
    check_setting,
)

CountTokens = Callable[[str, str], int]

_LEFTOVER_RE = re.compile(
    r"<(?:input|output)\d*>|<input_theme>|<first_word>|<revised_question>|<revised_answer>|<final_result>"
    r"|\bINPUT:|\bOUTPUT:|\[EXAMPLE\b|\[NEW INSTANCE\]|Revised Question:|Revised Answer:",
)
_FENCED_JSON_RE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)\n?```", re.DOTALL)
_CODE_RE = re.compile(r"\A```([A-Za-z0-9_+#.-]*)[ \t]*\r?\n(.*?)\r?\n?[ \t]*```\Z", re.DOTALL)
_PYTHON_TAGS = {"", "python", "py", "python3"}


VALIDATION_MODES = ("strict", "official")
# Part of the generation rules' params (rules/common.smk): bump when a change to the parser or validators
# here or in official.py moves numbers (which outputs are accepted, or how they are cleaned).
PARSER_VERSION = "2"  # 2: strict mode also splits at a marker in another letter case at a line start


@dataclass(frozen=True)
class Parsed:
    instruction: str
    response: str
    ok: bool
    reason: str | None = None  # None when ok
    raw: tuple[str, str] | None = None  # official mode: the parsed pair before clean-up

    @property
    def demonstration(self) -> tuple[str, str]:
        """The pair as it joins the official demonstration pool (before clean-up, as data-agora's)."""
        return self.raw or (self.instruction, self.response)


def _reject(reason: str, instruction: str = "", response: str = "") -> Parsed:
    return Parsed(instruction, response, False, reason)


def _strip_echo(text: str, trigger: str) -> str:
    """Drop an echoed trigger the prompt already ended with (keep what follows its last occurrence)."""
    text = text.strip()
    return text.rsplit(trigger, 1)[-1].strip() if text.startswith(trigger) else text


def _split_at(text: str, trigger: str) -> tuple[str, str] | None:
    """(before, after) the trigger as written, else its first line-start occurrence in another case."""
    if trigger in text:
        before, after = text.split(trigger, 1)
        return before, after
    m = re.search(rf"^[ \t]*{re.escape(trigger)}", text, re.IGNORECASE | re.MULTILINE)
    return (text[: m.start()], text[m.end() :]) if m else None


def _split_instance(text: str) -> tuple[str, str] | None:
    parts = _split_at(text, OUTPUT_TRIGGER)
    if parts is None:
        return None
    instruction, response = parts
    if INPUT_TRIGGER in instruction:  # echoed "INPUT:" before the instruction
        instruction = instruction.rsplit(INPUT_TRIGGER, 1)[-1]
    return instruction.strip(), response.strip()


def _split_revision(text: str) -> tuple[str, str] | None:
    parts = _split_at(text, QE_ANSWER_TRIGGER)
    if parts is None:
        return None
    instruction, response = parts
    return _strip_echo(instruction, QE_QUESTION_TRIGGER), response.strip()


def _json_object(text: str) -> Any:
    """The first JSON object in text: whole text, a fenced ```json block, or from the first '{'."""
    candidates = [text.strip()]
    candidates += [m.group(1) for m in _FENCED_JSON_RE.finditer(text)]
    if "{" in text:
        candidates.append(text[text.index("{") :])
    decoder = json.JSONDecoder()
    for cand in candidates:
        try:
            obj, _ = decoder.raw_decode(cand.strip())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _split_json(text: str) -> tuple[str, str] | str:
    obj = _json_object(text)
    if obj is None:
        return "json_invalid"
    instruction, response = obj.get("instruction"), obj.get("response")
    if not isinstance(instruction, str) or not isinstance(response, str):
        return "json_missing_key"
    return instruction.strip(), response.strip()


def check_math(response: str) -> str | None:
    if response.count("[RESULT]") != 1 or response.count("[/RESULT]") != 1:
        return "math_result_count"
    if not response.endswith("[/RESULT]") or response.index("[RESULT]") > response.index("[/RESULT]"):
        return "math_result_position"
    return None


def check_code(response: str) -> str | None:
    """One fenced block and nothing outside it; Python blocks must parse."""
    n_fences = response.count("```")
    if n_fences == 0 or n_fences % 2:
        return "code_fence"
    m = _CODE_RE.match(response)
    if m is None or "```" in m.group(2):
        return "code_prose"
    lang, code = m.group(1).lower(), m.group(2)
    if not code.strip():
        return "empty"
    if lang in _PYTHON_TAGS:
        try:
            ast.parse(code)
        except (SyntaxError, ValueError):
            return "code_syntax"
    return None


def _split(text: str, method: str, variant: str, instruction: str | None) -> tuple[str, str] | str:
    if variant == "json":
        return _split_json(text)
    if method == "instance_generation":
        return _split_instance(text) or "missing_trigger"
    if method == "quality_enhancement":
        return _split_revision(text) or "missing_trigger"
    return (instruction or "").strip(), _strip_echo(text, OUTPUT_TRIGGER)


def parse_completion(
    text: str,
    *,
    domain: str,
    method: str,
    variant: str,
    instruction: str | None = None,
    finish_reason: str = "stop",
    count_tokens: CountTokens | None = None,
    max_tokens: int | None = None,
    validation: str = "strict",
    prompt: str | None = None,
) -> Parsed:
    """Turn one completion into a validated pair.

    `instruction` is the seed instruction (response generation only: the generator writes just the
    response). `count_tokens(instruction, response)` gives the chat-format length in the student's
    tokenizer; pairs longer than `max_tokens` are rejected. `validation`: "strict" (this module's checks)
    or "official" (data-agora's, see official.py; response generation then reads the instruction from
    `prompt`, the rendered meta-prompt, as the official parser does).
    """
    check_setting(domain, method, variant)
    if method == "response_generation" and instruction is None:
        raise ValueError("response_generation needs the seed instruction")
    if variant == "json" and method == "response_generation":
        raise ConfigError("variant", "the json variant covers instance generation and quality enhancement")
    if count_tokens is not None and max_tokens is None:
        raise ValueError("count_tokens needs max_tokens")
    if validation not in VALIDATION_MODES:
        raise ConfigError(
            "generation.validation", f"{validation!r} is not one of {', '.join(VALIDATION_MODES)}"
        )
    if finish_reason == "error":
        return _reject("backend_error")
    if validation == "official":
        if method == "response_generation" and prompt is None:
            raise ValueError("official response_generation parsing needs the prompt")
        return _parse_official(
            text, domain, method, variant, prompt or "", finish_reason, count_tokens, max_tokens
        )
    if finish_reason == "length" and STOP_PHRASE not in text:
        return _reject("finish_length")
    split = _split(text.split(STOP_PHRASE, 1)[0], method, variant, instruction)
    if isinstance(split, str):
        return _reject(split)
    instr, resp = split
    reason = _validate(
        instr, resp, domain=domain, method=method, count_tokens=count_tokens, max_tokens=max_tokens
    )
    return Parsed(instr, resp, reason is None, reason)


def _validate(
    instr: str,
    resp: str,
    *,
    domain: str,
    method: str,
    count_tokens: CountTokens | None,
    max_tokens: int | None,
) -> str | None:
    if not instr or not resp:
        return "empty"
    generated = [resp] if method == "response_generation" else [instr, resp]
    if any(_LEFTOVER_RE.search(field) for field in generated):
        return "leftover_placeholder"
    domain_check = {"math": check_math, "code": check_code}.get(domain)
    if domain_check is not None and (reason := domain_check(resp)):
        return reason
    if count_tokens is not None and max_tokens is not None and count_tokens(instr, resp) > max_tokens:
        return "too_long"
    return None


def _parse_official(
    text: str,
    domain: str,
    method: str,
    variant: str,
    prompt: str,
    finish_reason: str,
    count_tokens: CountTokens | None,
    max_tokens: int | None,
) -> Parsed:
    """One attempt as data-agora's Agora.run_single judges it; accepted pairs get upload_to_hf's clean-up."""
    if not official.finished(text, finish_reason):
        return _reject("finish_length" if finish_reason == "length" else "finish_other")
    if variant == "json":
        split = official.split_json(text)
        if isinstance(split, str):
            return _reject(split)
    else:
        split = official.split_official(text, method, prompt)
    instr, resp = split
    reason = official.validate_official(
        instr, resp, domain=domain, method=method, count_tokens=count_tokens, max_tokens=max_tokens
    )
    if reason is not None:
        return _reject(reason, instr, resp)
    clean_instr, clean_resp = official.cleanup(instr, resp, code=domain == "code")
    return Parsed(clean_instr, clean_resp, True, None, raw=(instr, resp))


def chat_token_counter(tokenizer: Any, system: str | None = None) -> CountTokens:
    """count_tokens for a Hugging Face tokenizer: the pair as a user/assistant chat in its template."""

    def count(instruction: str, response: str) -> int:
        messages = [{"role": "system", "content": system}] if system else []
        messages += [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count
