"""Validation mode `official`: data-agora's parser, validators and clean-up, reimplemented.

Sources (neulab/data-agora at d7e66e1): `libs/data-agora/data_agora/agora.py` (finish-reason check, one
parse + validate per attempt), `core/parsers.py` (split on the last `INPUT:` and the last `OUTPUT:`; response
generation takes the instruction from the prompt; the JSON parser is `json.loads` of the whole output),
`core/validators.py` (length in the hard-coded Llama-3 format; placeholder values of run.py's
`placeholder_formats` forbidden in the response, case-insensitively; math: one `[RESULT]`, one `[/RESULT]`,
ends with `[/RESULT]`; code: even fence count, starts and ends with a fence, no forbidden words outside
the fences) and `agora_scripts/upload_to_hf.py` (the clean-up applied to accepted instances before they
were published and trained on).

The official code answers valid / invalid; here the first failing check names the rejection (reason
codes of `parsing.py`, plus `finish_other`, `json_not_object`, `json_not_string`, `code_forbidden_words`,
`code_fence_position`). What it accepts is kept as the official code keeps it, e.g. an output without
`OUTPUT:` (instruction and response are then the same text) or an empty instruction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agorabench.generation.prompts import (
    INPUT_TRIGGER,
    OUTPUT_TRIGGER,
    QE_ANSWER_TRIGGER,
    QE_QUESTION_TRIGGER,
    STOP_PHRASE,
)

CountTokens = Callable[[str, str], int]

# run.py's placeholder_formats values (the validators' forbidden keywords); triggers depend on the method.
_PLACEHOLDERS = ["<input@>", "<output@>", "<input>", "<output>", STOP_PHRASE, "<input_theme>"]
CODE_FORBIDDEN = [
    "example usage",
    "this function",
    "test the function",
    "test cases",
    "this implementation",
    "explanation",
    "this solution",
]
FINISHED = ("stop", "stop_sequence")
LLAMA3_SYSTEM = "You are a helpful assistant"


def triggers(method: str) -> tuple[str, str]:
    """run.py's test_input_trigger / test_output_trigger of a method."""
    if method == "quality_enhancement":
        return QE_QUESTION_TRIGGER, QE_ANSWER_TRIGGER
    return INPUT_TRIGGER, OUTPUT_TRIGGER


def forbidden_placeholders(domain: str, method: str) -> list[str]:
    """run.py's placeholder_formats values for one run (general instance generation adds <first_word>)."""
    values = [*_PLACEHOLDERS[:4], *triggers(method), *_PLACEHOLDERS[4:]]
    if domain == "instruction_following" and method == "instance_generation":
        values.append("<first_word>")
    return values


def finished(text: str, finish_reason: str) -> bool:
    """Agora.validate_finish_reason: a stop, or output that ends with the stop phrase."""
    return finish_reason in FINISHED or text.endswith(STOP_PHRASE)


def split_official(text: str, method: str, prompt: str) -> tuple[str, str]:
    """The official parsers (instance generation, response generation, quality enhancement)."""
    start, end = triggers(method)
    source = prompt if method == "response_generation" else text
    instruction = source.split(start)[-1].split(end)[0].strip()
    response = text.split(end)[-1].split(STOP_PHRASE)[0].strip()
    return instruction, response


def split_json(text: str) -> tuple[Any, Any] | str:
    """JSONParser: `json.loads` of the whole output (values are not stripped)."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return "json_invalid"
    if not isinstance(obj, dict):
        return "json_not_object"
    if "instruction" not in obj or "response" not in obj:
        return "json_missing_key"
    if not isinstance(obj["instruction"], str) or not isinstance(obj["response"], str):
        return "json_not_string"  # the official length check raises on non-strings
    return obj["instruction"], obj["response"]


def _has_any(text: str, keywords: list[str]) -> bool:
    low = text.lower()
    return any(k.lower() in low for k in keywords)


def _check_math(response: str) -> str | None:
    if response.count("[RESULT]") != 1 or response.count("[/RESULT]") != 1:
        return "math_result_count"
    if not response.endswith("[/RESULT]"):
        return "math_result_position"
    return None


def _check_code(response: str) -> str | None:
    if response.count("```") % 2 == 1:
        return "code_fence"
    outside = "".join(response.split("```")[0::2])
    if _has_any(outside, CODE_FORBIDDEN):
        return "code_forbidden_words"
    if not (response.startswith("```") and response.endswith("```")):
        return "code_fence_position"
    return None


def validate_official(
    instruction: str,
    response: str,
    *,
    domain: str,
    method: str,
    count_tokens: CountTokens | None,
    max_tokens: int | None,
) -> str | None:
    """GeneralValidator / MathValidator / CodeValidator: None when valid, else a reason code."""
    if (
        count_tokens is not None
        and max_tokens is not None
        and count_tokens(instruction, response) > max_tokens
    ):
        return "too_long"
    domain_check = {"math": _check_math, "code": _check_code}.get(domain)
    if domain_check is not None and (reason := domain_check(response)):
        return reason
    if _has_any(response, forbidden_placeholders(domain, method)):
        return "leftover_placeholder"
    return None


def official_token_counter(tokenizer: Any) -> CountTokens:
    """validate_length's count: the hard-coded Llama-3 format, `tokenizer.encode` with its defaults."""

    def count(instruction: str, response: str) -> int:
        text = f"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{LLAMA3_SYSTEM}<|eot_id|>"
        text += "<|start_header_id|>user<|end_header_id|>\n\n" + instruction + "<|eot_id|>"
        text += "<|start_header_id|>assistant<|end_header_id|>\n\n"
        return len(tokenizer.encode(text + response + "<|eot_id|>"))

    return count


_INSTRUCTION_TAILS = (
    "Revised Question:",
    "revised Question:",
    "Revised Question",
    "<revised_question>",
    "Revised Instance:",
    "revised instance:",
    "Revised Instance",
)
_CODE_TAILS = ("# Test", "// Test", "# Example", "// Example", "# Output", "// Output")


def cleanup(instruction: str, response: str, *, code: bool) -> tuple[str, str]:
    """upload_to_hf.process_json_files on one accepted instance (code: the code domain's files)."""
    inst, resp = instruction, response
    if inst.startswith("[INPUT]"):
        inst = inst.replace("[INPUT]", "", 1)
    elif inst.startswith("INPUT: "):
        inst = inst.replace("INPUT: ", "", 1)
    if code:
        for tail in _CODE_TAILS:
            if tail in resp:
                resp = resp.split(tail)[0] + "\n```"
    for marker in _INSTRUCTION_TAILS:
        inst = inst.split(marker)[-1]
    inst = inst.split("Revised Answer:")[0].split("revised Answer:")[0]
    inst = inst.replace("revised question", "question").replace("revised answer", "answer")
    inst = inst.replace("Revised Answer", "answer").strip()
    for i in range(20):
        for hashes in ("###", "##", "#"):
            inst = inst.replace(f"{hashes} Step {i}:", "\n")
    resp = resp.split("Note: ")[0].replace("revised question", "question").replace("revised answer", "answer")
    resp = resp.strip()
    if inst.endswith("\n\n"):
        inst = inst[:-2]
    if resp.endswith("\n\n"):
        resp = resp[:-2]
    return inst, resp
