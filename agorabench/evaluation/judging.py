"""Shared plumbing of the LLM-judged scorers (AlpacaEval 2.0, Arena-Hard v0.1).

Judge prompts are template files made of chat-ML blocks, the layout of alpaca_eval's prompt files:

    <|im_start|>system
    ...
    <|im_end|>
    <|im_start|>user
    ... {placeholder} ...
    <|im_end|>

A file without blocks is one user message. An Arena-Hard judge config in YAML (`system_prompt`,
`prompt_template`, optional `regex_pattern`) is read as well, so the official files work as they are.
Placeholders are filled in one pass: an answer that itself contains "{answer_2}" stays as written.

Every judge call goes through the durable call store, under an id made of the judge model, the template's
hash, the item, the order shown, both texts and the sampling, so re-running an evaluation pays for nothing
already judged, and changing any of these asks again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import sha256_text
from agorabench.llm.base import Backend, Completion, Request, Sampling, TokenLogprobs, request_id
from agorabench.llm.store import CallStore
from agorabench.progress import run_with_progress

ROOT = Path(__file__).resolve().parents[2]
JUDGES_DIR = ROOT / "config" / "judges"
ROLES = ("system", "user", "assistant")
_BLOCK = re.compile(r"<\|im_start\|>(.*?)<\|im_end\|>", re.DOTALL)


@dataclass(frozen=True)
class JudgeTemplate:
    messages: tuple[tuple[str, str], ...]  # (role, text with placeholders)
    source: str  # the file it was read from
    sha256: str  # hash of the messages: part of every request id
    regex_pattern: str | None = None  # verdict regex, when the file names one (Arena-Hard YAML)

    def render(self, values: Mapping[str, str]) -> tuple[dict[str, str], ...]:
        return tuple({"role": role, "content": fill(text, values)} for role, text in self.messages)


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace each {name} of `values` in one pass (inserted text is never scanned again)."""
    pattern = re.compile("{(" + "|".join(re.escape(k) for k in values) + ")}")
    return pattern.sub(lambda m: values[m.group(1)], text)


def parse_chatml(text: str, where: str) -> tuple[tuple[str, str], ...]:
    """Chat-ML blocks -> ((role, content), ...); text without blocks is a single user message."""
    if "<|im_start|>" not in text:
        return (("user", text.strip()),)
    messages = []
    for block in _BLOCK.findall(text):
        role, _, content = block.partition("\n")
        role = role.strip()
        if role not in ROLES:
            raise DataError(where, f"chat-ML block with role {role!r}; expected one of {', '.join(ROLES)}")
        messages.append((role, content.strip()))
    if not messages or text.count("<|im_start|>") != len(messages):
        raise DataError(where, "every <|im_start|> block must end with <|im_end|>")
    return tuple(messages)


def _yaml_messages(path: Path) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """An Arena-Hard judge config: (system prompt, the one user template) and its verdict regex."""
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(path, f"invalid YAML ({exc})") from None
    templates = cfg.get("prompt_template") if isinstance(cfg, dict) else None
    if isinstance(templates, str):
        templates = [templates]
    if not isinstance(templates, list) or len(templates) != 1 or not isinstance(templates[0], str):
        raise DataError(path, "needs `prompt_template`: one string (or a list of exactly one)")
    system = cfg.get("system_prompt")
    head = (("system", system),) if isinstance(system, str) and system else ()
    return (*head, ("user", templates[0])), cfg.get("regex_pattern")


def load_template(path: str | Path | None, default_name: str, placeholders: Sequence[str]) -> JudgeTemplate:
    """Read a judge template (None: config/judges/<default_name>); every placeholder must appear."""
    path = Path(path) if path is not None else JUDGES_DIR / default_name
    if not path.is_file():
        raise ConfigError("judge_template", f"judge template {path} not found")
    if path.suffix in (".yaml", ".yml"):
        messages, regex = _yaml_messages(path)
    else:
        messages, regex = parse_chatml(path.read_text(encoding="utf-8"), str(path)), None
    body = "\n".join(text for _, text in messages)
    missing = [p for p in placeholders if "{" + p + "}" not in body]
    if missing:
        names = ", ".join("{" + p + "}" for p in missing)
        raise DataError(path, f"judge template lacks placeholder(s) {names}")
    digest = sha256_text(repr(messages))
    return JudgeTemplate(messages=messages, source=_display(path), sha256=digest, regex_pattern=regex)


def _display(path: Path) -> str:
    """The path relative to the project when it lies inside it (score files stay portable)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def judge_sampling(temperature: float, max_tokens: int) -> Sampling:
    return Sampling(temperature=temperature, top_p=1.0, max_tokens=max_tokens)


def judge_name(judge: Backend) -> str:
    return judge.model or type(judge).__name__


def judge_request(
    judge: Backend,
    template: JudgeTemplate,
    item_id: str,
    order: str,
    values: Mapping[str, str],
    sampling: Sampling,
    history: Sequence[dict[str, str]] = (),
    top_logprobs: int = 0,
) -> Request:
    """One judge call; `history` continues an earlier conversation (e.g. a second attempt);
    `top_logprobs` > 0 asks for the verdict tokens' log-probabilities (part of the id only then)."""
    messages = template.render(values) + tuple(history)
    parts = [
        "judge",
        judge_name(judge),
        template.sha256,
        item_id,
        order,
        dict(values),
        sampling,
        list(history),
    ]
    rid = request_id(*parts, *(["top_logprobs", top_logprobs] if top_logprobs else []))
    meta = {"item_id": item_id, "order": order}
    return Request(id=rid, messages=messages, sampling=sampling, meta=meta, top_logprobs=top_logprobs)


def run_judge(judge: Backend, requests: Sequence[Request], cache_path: str | Path) -> dict[str, Completion]:
    """Complete requests through the durable store (already stored ones cost nothing), behind a progress
    bar named after the judge and the folder of the store (the benchmark)."""
    if not requests:
        return {}
    store = CallStore(cache_path)
    desc = f"judge {judge_name(judge)} {Path(cache_path).parent.name}"
    run_with_progress(store, judge, requests, desc=desc)
    return {r.id: store.get(r.id) for r in requests}  # type: ignore[misc]


def verdict_text(completion: Completion | None) -> str | None:
    """The judge's text, or None when the call failed."""
    if completion is None or completion.finish_reason == "error":
        return None
    return completion.text


def weighted_choice(first_token: TokenLogprobs, labels: Sequence[str]) -> float | None:
    """alpaca_eval's logprob_parser (is_binarize false): 2 - P(labels[0]) / (P(labels[0]) + P(labels[1]))
    over the first generated token's top log-probabilities, so 1 = the first output surely, 2 = the second;
    a label missing from the top tokens has probability 0; None when neither label is among them."""
    found = [first_token.get(label) for label in labels[:2]]
    if all(lp is None for lp in found):
        return None
    lp1, lp2 = (-math.inf if lp is None else lp for lp in found)
    top = max(lp1, lp2)
    p1 = math.exp(lp1 - top) / (math.exp(lp1 - top) + math.exp(lp2 - top))
    return 2.0 - p1


def verdict_logprobs(completion: Completion | None) -> TokenLogprobs | None:
    """The first generated token's top log-probabilities, or None (failed call, none returned)."""
    if completion is None or completion.finish_reason == "error" or not completion.top_logprobs:
        return None
    return completion.top_logprobs[0]


def finite(x: float | None) -> float | None:
    """x, or None where it is missing or not finite (score files are strict JSON)."""
    return None if x is None or not math.isfinite(x) else float(x)
