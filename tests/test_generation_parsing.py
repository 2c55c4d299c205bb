"""Parsing and validating generator outputs: well-formed ones pass, malformed ones get a reason code."""

from __future__ import annotations

import json

import pytest

from agorabench.errors import ConfigError
from agorabench.generation.parsing import Parsed, chat_token_counter, check_code, check_math, parse_completion

IG, RG, QE = "instance_generation", "response_generation", "quality_enhancement"
IF = "instruction_following"
MATH_OK = "We have 2 + 3 = 5.\n[RESULT] 5 [/RESULT]"
CODE_OK = "```python\ndef add(a, b):\n    return a + b\n```"


def parse(text: str, domain: str = IF, method: str = IG, variant: str = "agorabench", **kw) -> Parsed:
    if method == RG:
        kw.setdefault("instruction", "Seed task.")
    return parse_completion(text, domain=domain, method=method, variant=variant, **kw)


# --- well-formed outputs ---


def test_instance_generation_split_and_stop():
    p = parse("  Why is the sky blue?\nOUTPUT: Rayleigh scattering.\n[END]\nINPUT: another one")
    assert p == Parsed("Why is the sky blue?", "Rayleigh scattering.", True, None)


def test_instance_generation_without_stop_phrase_and_echoed_input_trigger():
    # backends that cut at the stop string return no [END]; some models repeat the INPUT: trigger
    p = parse("INPUT: Add 2 and 3.\nOUTPUT: " + MATH_OK, domain="math")
    assert (p.ok, p.instruction, p.response) == (True, "Add 2 and 3.", MATH_OK)


def test_quality_enhancement_split():
    p = parse("What is 2 + 3?\n\nRevised Answer: " + MATH_OK + " [END]", domain="math", method=QE)
    assert (p.ok, p.instruction, p.response) == (True, "What is 2 + 3?", MATH_OK)
    echoed = parse("Revised Question: Q?\nRevised Answer: A. [END]", method=QE)
    assert (echoed.ok, echoed.instruction, echoed.response) == (True, "Q?", "A.")


def test_markers_in_another_case_split_at_a_line_start_only():
    # SmolLM2-135M writes "Output:" for the prompt's "OUTPUT:" in most of its instances
    p = parse(" Add 2 and 3.\nOutput: " + MATH_OK + "\n", domain="math")
    assert (p.ok, p.instruction, p.response) == (True, "Add 2 and 3.", MATH_OK)
    qe = parse("What is 2 + 3?\nrevised answer: " + MATH_OK, domain="math", method=QE)
    assert (qe.ok, qe.instruction, qe.response) == (True, "What is 2 + 3?", MATH_OK)
    # the marker as written wins over an example's "Output:" line; mid-line "output:" is no marker
    examples = parse("Reverse a list.\nInput: [1, 2]\nOutput: [2, 1]\nOUTPUT: Use reversed().")
    assert (examples.instruction, examples.response) == (
        "Reverse a list.\nInput: [1, 2]\nOutput: [2, 1]",
        "Use reversed().",
    )
    assert parse("Print the sample output: 5 and stop.").reason == "missing_trigger"


def test_response_generation_takes_the_whole_completion():
    p = parse(CODE_OK + " [END]", domain="code", method=RG, instruction="Write add.")
    assert (p.ok, p.instruction, p.response) == (True, "Write add.", CODE_OK)
    assert parse("OUTPUT:\nA fine reply. [END]", method=RG).response == "A fine reply."


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"instruction": "Add 2 and 3.", "response": MATH_OK}),
        "```json\n" + json.dumps({"instruction": "Add 2 and 3.", "response": MATH_OK}, indent=2) + "\n```",
        "Here you go:\n" + json.dumps({"instruction": "Add 2 and 3.", "response": MATH_OK}) + "\nThanks",
        json.dumps({"response": MATH_OK, "instruction": " Add 2 and 3. ", "extra": 1}) + "\n[END]",
    ],
)
def test_json_variant_tolerates_fences_and_surrounding_text(text):
    p = parse(text, domain="math", variant="json")
    assert (p.ok, p.instruction, p.response) == (True, "Add 2 and 3.", MATH_OK)


def test_code_blocks_in_other_languages_and_untagged_python():
    assert check_code("```java\nclass A { }\n```") is None  # accepted, cannot be parsed here
    assert check_code("```\nx = 1\nassert x == 1\n```") is None
    assert check_code("```python\r\nclass P: \r\n\tpass\r\n```") is None
    assert check_math("Proof follows.\n[RESULT] Q.E.D. [/RESULT]") is None


# --- malformed outputs ---

MALFORMED = [
    # (text, domain, method, variant, reason)
    ("Why is the sky blue? Because of scattering.", IF, IG, "agorabench", "missing_trigger"),
    ("\nOUTPUT: An answer to nothing.\n[END]", IF, IG, "agorabench", "empty"),
    ("A question?\nOUTPUT:   \n[END]", IF, IG, "agorabench", "empty"),
    ("", IF, RG, "agorabench", "empty"),
    (" [END]", IF, RG, "agorabench", "empty"),
    ("Q?\nOUTPUT: A.\nINPUT: Q2?\nOUTPUT: A2.", IF, IG, "agorabench", "leftover_placeholder"),
    ("Explain <input_theme>.\nOUTPUT: Sure.", IF, IG, "agorabench", "leftover_placeholder"),
    ("Q?\nOUTPUT: As in <output1>, yes.", IF, IG, "agorabench", "leftover_placeholder"),
    ("Q?\nOUTPUT: A.\n\n[EXAMPLE 4]\nMore", IF, IG, "agorabench", "leftover_placeholder"),
    ("Q?\nOUTPUT: A.\n[NEW INSTANCE]", IF, IG, "agorabench", "leftover_placeholder"),
    ("<first_word> do this\nOUTPUT: Done.", IF, IG, "agorabench", "leftover_placeholder"),
    ("A reply that quotes <input>.", IF, RG, "agorabench", "leftover_placeholder"),
    (
        "Q?\nRevised Answer: A.\nRevised Question: Q2?\nRevised Answer: A2.",
        IF,
        QE,
        "agorabench",
        "leftover_placeholder",
    ),
    (
        "<revised_question>\n\nRevised Answer: <revised_answer> [END]",
        IF,
        QE,
        "agorabench",
        "leftover_placeholder",
    ),
    ("Q? A. [END]", IF, QE, "agorabench", "missing_trigger"),
    # math: exactly one [RESULT] ... [/RESULT] closing the response
    ("Q?\nOUTPUT: The answer is 5.", "math", IG, "agorabench", "math_result_count"),
    (
        "Q?\nOUTPUT: [RESULT] 2 [/RESULT] then [RESULT] 5 [/RESULT]",
        "math",
        IG,
        "agorabench",
        "math_result_count",
    ),
    ("Q?\nOUTPUT: So 5.\n[RESULT] 5", "math", IG, "agorabench", "math_result_count"),
    ("Q?\nOUTPUT: [RESULT] 5 [/RESULT]\nThat is all.", "math", IG, "agorabench", "math_result_position"),
    ("Q?\nOUTPUT: [/RESULT] 5 [RESULT]", "math", IG, "agorabench", "math_result_position"),
    ("So 5.\n[/RESULT] x [RESULT] y [/RESULT]", "math", RG, "agorabench", "math_result_count"),
    (
        "Q\nRevised Answer: 5 \\([RESULT] 5 [/RESULT]\\) [END]",
        "math",
        QE,
        "agorabench",
        "math_result_position",
    ),
    # code: one fenced block, nothing outside it, Python must parse
    ("Task\nOUTPUT: def add(a, b):\n    return a + b", "code", IG, "agorabench", "code_fence"),
    ("Task\nOUTPUT: ```python\ndef add(a, b):\n    return a + b", "code", IG, "agorabench", "code_fence"),
    ("Task\nOUTPUT: Here is the code:\n" + CODE_OK, "code", IG, "agorabench", "code_prose"),
    (
        "Task\nOUTPUT: " + CODE_OK + "\nThis function adds two numbers.",
        "code",
        IG,
        "agorabench",
        "code_prose",
    ),
    (
        CODE_OK + "\n\n# Example usage:\n```python\nprint(add(1, 2))\n```",
        "code",
        RG,
        "agorabench",
        "code_prose",
    ),
    (CODE_OK + "\nprint(add(1, 2))", "code", RG, "agorabench", "code_prose"),
    ("```python\ndef add(a, b)\n    return a + b\n```", "code", RG, "agorabench", "code_syntax"),
    ("```py\nfor i in range(3) print(i)\n```", "code", RG, "agorabench", "code_syntax"),
    ("```python def add(a, b): return a + b```", "code", RG, "agorabench", "code_prose"),
    ("```python\n\n```", "code", RG, "agorabench", "empty"),
    ("Task\n\nRevised Answer: ``` broken", "code", QE, "agorabench", "code_fence"),
    # JSON variant
    ('{"instruction": "Q", "response": "A"', IF, IG, "json", "json_invalid"),
    ("INPUT: Q\nOUTPUT: A", IF, IG, "json", "json_invalid"),
    ('["Q", "A"]', IF, IG, "json", "json_invalid"),
    ('{"question": "Q", "answer": "A"}', IF, IG, "json", "json_missing_key"),
    ('{"instruction": "Q", "response": {"text": "A"}}', IF, QE, "json", "json_missing_key"),
    ('{"instruction": "", "response": "A"}', IF, IG, "json", "empty"),
    ('{"instruction": "Q <input1>", "response": "A"}', IF, IG, "json", "leftover_placeholder"),
    ('{"instruction": "Q", "response": "Just 5."}', "math", IG, "json", "math_result_count"),
    ('{"instruction": "Q", "response": "def f(): pass"}', "code", QE, "json", "code_fence"),
]


@pytest.mark.parametrize(("text", "domain", "method", "variant", "reason"), MALFORMED)
def test_malformed_outputs_are_rejected_with_a_reason(text, domain, method, variant, reason):
    p = parse(text, domain=domain, method=method, variant=variant)
    assert (p.ok, p.reason) == (False, reason)


def test_finish_reasons():
    cut = "Q?\nOUTPUT: A long answer that never ends"
    assert parse(cut, finish_reason="length").reason == "finish_length"
    # the stop phrase arrived even though the backend reports the token limit: keep it (as data-agora)
    assert parse(cut + "\n[END]", finish_reason="length").ok
    assert parse("whatever", finish_reason="error").reason == "backend_error"


def test_length_limit_uses_the_callable():
    def count(instruction: str, response: str) -> int:
        return len(instruction.split()) + len(response.split())

    text = "one two three\nOUTPUT: four five"
    assert parse(text, count_tokens=count, max_tokens=5).ok
    assert parse(text, count_tokens=count, max_tokens=4).reason == "too_long"
    with pytest.raises(ValueError, match="count_tokens needs max_tokens"):
        parse(text, count_tokens=count)


def test_bad_arguments_raise():
    with pytest.raises(ConfigError, match="config key 'domain'"):
        parse("x", domain="general")
    with pytest.raises(ValueError, match="needs the seed instruction"):
        parse_completion("x", domain=IF, method=RG, variant="agorabench")
    with pytest.raises(ConfigError, match="config key 'variant'"):
        parse("{}", method=RG, variant="json")


@pytest.mark.slow
def test_chat_token_counter_with_the_student_tokenizer(smollm2_dir):
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(smollm2_dir)
    count = chat_token_counter(tok)
    short, longer = count("Hi", "Hello!"), count("Hi", "Hello! " * 50)
    assert 5 < short < longer
    assert longer - short >= 50
    assert (
        parse("Hi\nOUTPUT: " + "Hello! " * 50, count_tokens=count, max_tokens=short + 10).reason == "too_long"
    )
