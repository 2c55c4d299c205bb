"""Stage function of the generation rules: one generator writes one pool for one setting and variant."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError
from agorabench.generation.instances import load_themes
from agorabench.jsonl import read_jsonl
from agorabench.llm.base import Sampling
from agorabench.llm.factory import make_backend


def student_token_counter(student_dir: str, validation: str = "strict") -> Callable[[str, str], int]:
    """Length of an (instruction, response) pair in the student's tokenizer: its chat format (strict) or
    the official validator's hard-coded Llama-3 format (official)."""
    from transformers import AutoTokenizer

    from agorabench.generation.official import official_token_counter
    from agorabench.generation.parsing import chat_token_counter

    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    return official_token_counter(tokenizer) if validation == "official" else chat_token_counter(tokenizer)


def theme_lists(
    params: dict[str, Any], themes_path: str
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(themes, first-word triggers) by domain: from the official run.py or the project's themes file."""
    if params.get("themes_from", "project") == "official":
        from agorabench.data.assets import official_lists

        return official_lists(themes_path, params.get("theme_lists", "code_faithful"))
    return load_themes(themes_path)


def run_generation(
    *,
    generator: str,
    backend_spec: dict[str, Any],
    params: dict[str, Any],
    domain: str,
    method: str,
    variant: str,
    seeds_path: str,
    template_path: str,
    themes_path: str,
    student_dir: str,
    out_path: str,
    stats_path: str,
    system_prompt: str | None = None,
    attempts_per_round: int = 1,
) -> dict[str, Any]:
    # system_prompt None keeps generate_set's default system message.
    """Generate `params["n"]` valid instances (or report the shortfall) through a durable call store."""
    from agorabench.generation.run import generate_set

    themes, first_words = theme_lists(params, themes_path)
    if domain not in themes:
        raise ConfigError("generation.themes", f"{themes_path} has no theme list for domain '{domain}'")
    n = int(params["n"])
    validation = params.get("validation", "strict")
    per_instance = params.get("max_attempts_per_instance") if validation == "official" else None
    budget = n * int(per_instance) if per_instance else max(n, int(n * float(params["max_attempts_factor"])))
    backend = make_backend(backend_spec, key=f"generators.{generator}")
    with backend:
        return generate_set(
            generator=generator,
            backend=backend,
            sampling=Sampling.from_config(params["sampling"]),
            domain=domain,
            method=method,
            variant=variant,
            template_path=template_path,
            seeds=read_jsonl(seeds_path, required=("id", "instruction", "response")),
            themes=themes[domain],
            first_words=first_words.get(domain, []),
            n=n,
            max_attempts=budget,
            seed=int(params["seed"]),
            store_path=str(Path(out_path).with_name("calls.jsonl")),
            out_path=out_path,
            stats_path=stats_path,
            count_tokens=student_token_counter(student_dir, validation),
            max_tokens=int(params["max_instance_tokens"]),
            price=params.get("price"),
            **({"system_prompt": system_prompt} if system_prompt is not None else {}),
            seeds_name=seeds_path,
            attempts_per_round=attempts_per_round,
            validation=validation,
            demonstrations=params.get("demonstrations", "seeds_only"),
            max_attempts_per_instance=per_instance,
            pool_block=params.get("pool_block"),
            labels={"template_origin": params.get("template_origin", "stand-in")} | _list_labels(params),
        )


def _list_labels(params: dict[str, Any]) -> dict[str, Any]:
    official = params.get("themes_from", "project") == "official"
    return {"themes_from": params.get("themes_from", "project")} | (
        {"theme_lists": params.get("theme_lists", "code_faithful")} if official else {}
    )
