"""Meta-prompt templates: loading, placeholder checks and rendering.

One renderer serves the project's meta-prompts (config/prompts/<variant>/<domain>_<method>.txt) and the
official AgoraBench files (neulab/data-agora), which share these conventions:

- demonstrations: `<input1>` .. `<inputK>` / `<output1>` .. `<outputK>` (instance generation). The README's
  `<input@>` / `<output@>` is a format spec whose `@` stands for the example number; templates hold the
  numbered form. Where a placeholder is a JSON value (`"instruction": <input1>`), demos are filled
  JSON-encoded (`json.dumps`), as the official JSON-format loader does.
- `<input_theme>`, `<first_word>`: the theme and first-word trigger drawn for the prompt.
- `<input>` (response generation, quality enhancement) and `<output>` (quality enhancement): the seed.
- `<revised_question>`, `<revised_answer>`, `<final_result>`: literal markers that describe the answer
  layout to the model; they are kept verbatim, never filled.
- triggers `INPUT:` / `OUTPUT:` (`Revised Question:` / `Revised Answer:` for quality enhancement) and the
  `[END]` stop phrase are plain text of the template.

Rendering substitutes all placeholders in a single pass, so seed text that happens to contain a
placeholder is never substituted again (the official loader's sequential `str.replace` would); for seeds
without such text the two give identical prompts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import sha256_text

DOMAINS = ("math", "code", "instruction_following")
METHODS = ("instance_generation", "response_generation", "quality_enhancement")
VARIANTS = ("agorabench", "unoptimized", "json")
LAYOUTS = ("agorabench", "official")
# The generation system message (generation.system_prompt overrides it; None or "" sends none).
DEFAULT_SYSTEM_PROMPT = (
    "You write training data for language models. Follow the guidelines, requirements and examples "
    "you are given and produce exactly one new instance in the requested format."
)

INPUT_TRIGGER = "INPUT:"
OUTPUT_TRIGGER = "OUTPUT:"
QE_QUESTION_TRIGGER = "Revised Question:"
QE_ANSWER_TRIGGER = "Revised Answer:"
STOP_PHRASE = "[END]"

FORMAT_MARKERS = frozenset({"revised_question", "revised_answer", "final_result"})
_PLACEHOLDER_RE = re.compile(r"<([A-Za-z_][A-Za-z0-9_@]*)>")
_DEMO_RE = re.compile(r"(input|output)(\d+)")
_JSON_DEMO_RE = re.compile(r"\":\s*<(?:input|output)\d+>")
_OFFICIAL_DOMAIN = {"math": "math", "code": "code", "instruction_following": "general"}


@dataclass(frozen=True)
class Template:
    path: str
    text: str
    method: str
    placeholders: frozenset[str]  # fillable names found, without brackets (e.g. "input1", "input_theme")
    n_demos: int  # K of <input1>..<inputK> (0 outside instance generation)
    json_demos: bool  # demonstrations are JSON values, filled JSON-encoded
    sha: str  # sha256 of the text

    @property
    def has_theme(self) -> bool:
        return "input_theme" in self.placeholders

    @property
    def has_first_word(self) -> bool:
        return "first_word" in self.placeholders


def check_setting(domain: str, method: str, variant: str | None = None) -> None:
    if domain not in DOMAINS:
        raise ConfigError("domain", f"{domain!r} is not one of {', '.join(DOMAINS)}")
    if method not in METHODS:
        raise ConfigError("method", f"{method!r} is not one of {', '.join(METHODS)}")
    if variant is not None and variant not in VARIANTS:
        raise ConfigError("variant", f"{variant!r} is not one of {', '.join(VARIANTS)}")


def template_path(
    root: str | Path, variant: str, domain: str, method: str, layout: str = "agorabench"
) -> Path:
    """Where the meta-prompt of a setting lives under `root`.

    layout "agorabench": <root>/<variant>/<domain>_<method>.txt (config/prompts).
    layout "official": the flat neulab/data-agora file names (`<method>_<math|code|general>_prompt.txt`,
    `instance_generation_<d>_prompt_json_formatted.txt` for the JSON variant, which the official
    repository has for instance generation only; it has no unoptimized prompts).
    """
    check_setting(domain, method, variant)
    root = Path(root)
    if layout == "agorabench":
        path = root / variant / f"{domain}_{method}.txt"
    elif layout == "official":
        d = _OFFICIAL_DOMAIN[domain]
        if variant == "agorabench":
            path = root / f"{method}_{d}_prompt.txt"
        elif variant == "json" and method == "instance_generation":
            path = root / f"instance_generation_{d}_prompt_json_formatted.txt"
        else:
            raise ConfigError("variant", f"the official prompts have no {variant!r} template for {method}")
    else:
        raise ConfigError("layout", f"{layout!r} is not one of {', '.join(LAYOUTS)}")
    if not path.is_file():
        raise DataError(path, f"no meta-prompt for {domain}/{method}/{variant} (layout {layout!r})")
    return path


def _infer_method(found: set[str]) -> str | None:
    if any(_DEMO_RE.fullmatch(p) for p in found):
        return "instance_generation"
    if "input" in found and "output" in found:
        return "quality_enhancement"
    if "input" in found:
        return "response_generation"
    return None


def _check_placeholders(path: str, method: str, found: set[str]) -> int:
    """Raise DataError for unknown or missing placeholders; return the number of demonstrations."""
    demo_nums = {int(m.group(2)) for p in found if (m := _DEMO_RE.fullmatch(p))}
    allowed = {"input_theme", "first_word"}
    if method == "instance_generation":
        k = max(demo_nums, default=0)
        allowed |= {f"{io}{i}" for io in ("input", "output") for i in range(1, k + 1)}
        required = allowed - {"input_theme", "first_word"}
    else:
        k = 0
        required = {"input"} if method == "response_generation" else {"input", "output"}
        allowed |= required
    unknown = sorted(found - allowed)
    if unknown:
        raise DataError(path, f"unknown placeholder(s) for {method}: {', '.join(f'<{u}>' for u in unknown)}")
    missing = sorted(required - found)
    if missing or (method == "instance_generation" and k == 0):
        names = ", ".join(f"<{m}>" for m in missing) or "<input1>, <output1>"
        raise DataError(path, f"missing placeholder(s) for {method}: {names}")
    return k


def load_template(path: str | Path, method: str | None = None) -> Template:
    """Read a meta-prompt and check its placeholders against `method` (inferred when None)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "meta-prompt file not found")
    text = path.read_text(encoding="utf-8")
    found = {m.group(1) for m in _PLACEHOLDER_RE.finditer(text)} - FORMAT_MARKERS
    if method is None:
        method = _infer_method(found)
        if method is None:
            raise DataError(path, "no <input>, <output> or <input1> placeholder: cannot tell the method")
    elif method not in METHODS:
        raise ConfigError("method", f"{method!r} is not one of {', '.join(METHODS)}")
    k = _check_placeholders(str(path), method, found)
    return Template(
        path=str(path),
        text=text,
        method=method,
        placeholders=frozenset(found),
        n_demos=k,
        json_demos=bool(_JSON_DEMO_RE.search(text)),
        sha=sha256_text(text),
    )


def _demo_values(template: Template, demos: list[dict] | None) -> dict[str, str]:
    if template.n_demos == 0:
        return {}
    if demos is None or len(demos) != template.n_demos:
        got = 0 if demos is None else len(demos)
        raise ValueError(f"{template.path}: needs {template.n_demos} demonstrations, got {got}")
    enc = json.dumps if template.json_demos else str
    values = {}
    for i, demo in enumerate(demos, 1):
        values[f"input{i}"] = enc(demo["instruction"])
        values[f"output{i}"] = enc(demo["response"])
    return values


def _named(template: Template, name: str, value: str | None) -> dict[str, str]:
    if name not in template.placeholders:
        return {}
    if value is None:
        raise ValueError(f"{template.path}: <{name}> needs a value")
    return {name: value}


def render(
    template: Template,
    *,
    demos: list[dict] | None = None,
    instance: dict | None = None,
    theme: str | None = None,
    first_word: str | None = None,
) -> str:
    """Fill a template: `demos` (instance generation), `instance` (the seed of response generation /
    quality enhancement), `theme`, `first_word`. Values for placeholders the template lacks are ignored."""
    values = _demo_values(template, demos)
    values |= _named(template, "input_theme", theme)
    values |= _named(template, "first_word", first_word)
    if "input" in template.placeholders or "output" in template.placeholders:
        if instance is None:
            raise ValueError(f"{template.path}: needs an instance for <input>/<output>")
        values |= _named(template, "input", instance.get("instruction"))
        values |= _named(template, "output", instance.get("response"))

    def fill(m: re.Match) -> str:
        return values.get(m.group(1), m.group(0))

    return _PLACEHOLDER_RE.sub(fill, template.text)
