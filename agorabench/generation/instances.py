"""The prompt for index i of a setting: demonstrations, theme, first-word trigger and seed choice.

Every random choice comes from `random.Random` seeded by a hash of (global seed, domain, method, index).
The generator is deliberately left out of that seed: the study gives every generator the same prompts,
and identical prompts across generators (and across runs) need a seed that does not depend on the
generator. (The task text says "seeded per (generator, setting, index)"; we follow its stated purpose.)
The variant is left out too, so the meta-prompt ablation sees the same demonstrations and themes.

Draws happen in a fixed order, whether or not the template uses them: 3 demonstration seeds (instance
generation), then a theme, then a first-word trigger. A template without `<input_theme>` or
`<first_word>` simply does not show (or record) them.

Instance generation shows 3 distinct seeds. (data-agora's loader meant to mix 2 seeds with 1 earlier
generated instance, but its slicing draws that third one from the seed list as well, possibly repeating
a demonstration; distinct seeds keep the intent without the repeat.)

Response generation and quality enhancement use seed i for index i. Asking for more indices than seeds
is an error unless `wrap=True`, which reuses seed i mod len(seeds) (each index still gets its own request
id and sampling seed, so a repeated seed yields an independent sample).

Retries after a rejected output keep the prompt: attempt k changes only the request id and the sampling
seed (`attempt_seed`), never the prompt choice.

Demonstration mode `official` (`build_official_prompt`) follows data-agora instead: each attempt draws its
own demonstrations and theme (RNG seeded by global seed, setting, index and attempt); 2 of the 3
demonstrations come from the seeds plus the instances accepted in earlier rounds, 1 from the seeds alone;
the template is filled by sequential `str.replace` in the official order, so the prompt equals what the
official loader renders for the same demonstrations and theme.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from agorabench.errors import ConfigError, DataError
from agorabench.generation.prompts import DOMAINS, Template, render


@dataclass(frozen=True)
class PromptSpec:
    index: int
    prompt: str
    demo_ids: list[str]
    source_id: str | None
    source: dict | None  # the seed given as input (response generation, quality enhancement)
    theme: str | None
    first_word: str | None


def _hash_int(*parts: object) -> int:
    blob = json.dumps(parts, ensure_ascii=False, default=str).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


def prompt_rng(seed: int, domain: str, method: str, index: int) -> random.Random:
    """The RNG of one prompt: independent of generator, variant and attempt."""
    return random.Random(_hash_int("prompt", seed, domain, method, index))


def attempt_seed(
    seed: int, domain: str, method: str, index: int, attempt: int, base: int | None = None
) -> int:
    """The sampling seed of attempt k of an index (31-bit, as many servers require)."""
    return _hash_int("sampling", seed, base, domain, method, index, attempt) % (2**31 - 1)


def _seed_for_index(seeds: list[dict], index: int, wrap: bool, seeds_name: str) -> dict:
    if not seeds:
        raise DataError(seeds_name, "the seed set is empty")
    if index >= len(seeds) and not wrap:
        raise ConfigError(
            "n",
            f"index {index} needs seed {index} but {seeds_name} has {len(seeds)} (set wrap to reuse seeds)",
        )
    return seeds[index % len(seeds)]


def official_prompt_seed(seed: int, domain: str, method: str, index: int, attempt: int) -> int:
    """The RNG seed of one attempt's prompt in the official mode (demonstrations and theme redrawn per
    attempt); the official loaders draw from `random` seeded with it in tools/official/render_expected.py."""
    return _hash_int("official-prompt", seed, domain, method, index, attempt)


def official_prompt_rng(seed: int, domain: str, method: str, index: int, attempt: int) -> random.Random:
    return random.Random(official_prompt_seed(seed, domain, method, index, attempt))


def official_demonstrations(rng: random.Random, seeds: list[dict], pool: list[dict], k: int) -> list[dict]:
    """data-agora's InstanceGenerationPromptLoader.prepare: k-1 demonstrations from seeds + accepted
    instances (the growing pool), 1 from the seeds alone, shuffled (the two draws may coincide)."""
    from_pool = rng.sample(seeds + pool, k - 1)
    from_seeds = rng.sample(seeds, 1)
    demos = from_pool + from_seeds
    rng.shuffle(demos)
    return demos


def _official_render(
    template: Template,
    rng: random.Random,
    demos: list[dict],
    source: dict | None,
    themes: list[str],
    first_words: list[str],
) -> tuple[str, str | None, str | None]:
    """The official loaders' sequential str.replace, drawing a theme / trigger only when its placeholder is
    still in the prompt after the demonstrations are filled (ThemeBasedInstanceGenerationPromptLoader)."""
    enc = json.dumps if template.json_demos else str
    prompt = template.text
    if template.method == "instance_generation":
        for i, demo in enumerate(demos, 1):
            prompt = prompt.replace(f"<input{i}>", enc(demo["instruction"]))
            prompt = prompt.replace(f"<output{i}>", enc(demo["response"]))
    else:
        prompt = prompt.replace("<input>", source["instruction"])  # type: ignore[index]
        if template.method == "quality_enhancement":
            prompt = prompt.replace("<output>", source["response"])  # type: ignore[index]
    theme = first_word = None
    if template.method == "instance_generation" and not template.json_demos:
        if themes and "<input_theme>" in prompt:
            theme = rng.choice(themes)
            prompt = prompt.replace("<input_theme>", theme)
        if first_words and "<first_word>" in prompt:
            first_word = rng.choice(first_words)
            prompt = prompt.replace("<first_word>", first_word)
    return prompt, theme, first_word


def build_official_prompt(
    template: Template,
    *,
    domain: str,
    method: str,
    index: int,
    attempt: int,
    seeds: list[dict],
    pool: list[dict],
    themes: list[str],
    first_words: list[str],
    seed: int,
    wrap: bool = False,
    seeds_name: str = "seeds",
) -> PromptSpec:
    """Demonstration mode `official`: the prompt of one attempt, drawn from seeds + `pool` (accepted
    instances of earlier rounds) as data-agora's loaders draw it; a pure function of its arguments."""
    if template.method != method:
        raise ConfigError("method", f"{template.path} is a {template.method} template, not {method}")
    rng = official_prompt_rng(seed, domain, method, index, attempt)
    demos: list[dict] = []
    source = None
    if method == "instance_generation":
        if len(seeds) < template.n_demos:
            raise DataError(seeds_name, f"{len(seeds)} seeds, {template.n_demos} demonstrations needed")
        demos = official_demonstrations(rng, seeds, pool, template.n_demos)
    else:
        source = _seed_for_index(seeds, index, wrap, seeds_name)
    if template.has_theme and not themes:
        raise ConfigError(
            f"themes.{domain}", f"{template.path} has <input_theme> but the theme list is empty"
        )
    if template.has_first_word and not first_words:
        raise ConfigError(f"first_words.{domain}", f"{template.path} has <first_word> but the list is empty")
    prompt, theme, first_word = _official_render(template, rng, demos, source, themes, first_words)
    return PromptSpec(
        index=index,
        prompt=prompt,
        demo_ids=[str(d["id"]) for d in demos],
        source_id=None if source is None else str(source["id"]),
        source=source,
        theme=theme,
        first_word=first_word,
    )


def build_prompt(
    template: Template,
    *,
    domain: str,
    method: str,
    index: int,
    seeds: list[dict],
    themes: list[str],
    first_words: list[str],
    seed: int,
    wrap: bool = False,
    seeds_name: str = "seeds",
) -> PromptSpec:
    """Demonstration mode `seeds_only`: the prompt of `index`, a pure function of its arguments."""
    if template.method != method:
        raise ConfigError("method", f"{template.path} is a {template.method} template, not {method}")
    rng = prompt_rng(seed, domain, method, index)
    demos: list[dict] = []
    source = None
    if method == "instance_generation":
        if len(seeds) < template.n_demos:
            raise DataError(seeds_name, f"{len(seeds)} seeds, {template.n_demos} demonstrations needed")
        demos = [seeds[j] for j in rng.sample(range(len(seeds)), template.n_demos)]
    else:
        source = _seed_for_index(seeds, index, wrap, seeds_name)
    theme = themes[rng.randrange(len(themes))] if themes else None
    first_word = first_words[rng.randrange(len(first_words))] if first_words else None
    if template.has_theme and theme is None:
        raise ConfigError(
            f"themes.{domain}", f"{template.path} has <input_theme> but the theme list is empty"
        )
    if template.has_first_word and first_word is None:
        raise ConfigError(f"first_words.{domain}", f"{template.path} has <first_word> but the list is empty")
    theme = theme if template.has_theme else None
    first_word = first_word if template.has_first_word else None
    prompt = render(template, demos=demos or None, instance=source, theme=theme, first_word=first_word)
    return PromptSpec(
        index=index,
        prompt=prompt,
        demo_ids=[str(d["id"]) for d in demos],
        source_id=None if source is None else str(source["id"]),
        source=source,
        theme=theme,
        first_word=first_word,
    )


def _string_list(path: Path, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataError(path, f"{key} must be a list of non-empty strings")
    return list(value)


def load_themes(path: str | Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Read config/themes.yaml: (themes by domain, first-word triggers by domain; absent domains get [])."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "themes file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DataError(path, f"invalid YAML ({exc})") from None
    out: list[dict[str, list[str]]] = []
    for section in ("themes", "first_words"):
        table = data.get(section) or {}
        if not isinstance(table, dict):
            raise DataError(path, f"{section} must map domains to lists")
        unknown = sorted(set(table) - set(DOMAINS))
        if unknown:
            raise DataError(path, f"{section}: unknown domain(s) {', '.join(unknown)}")
        out.append({d: _string_list(path, f"{section}.{d}", table[d]) if d in table else [] for d in DOMAINS})
    return out[0], out[1]
