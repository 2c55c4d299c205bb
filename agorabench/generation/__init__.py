"""Synthetic data generation: meta-prompts, prompt construction, output parsing and the orchestrator."""

from agorabench.generation.instances import PromptSpec, build_prompt, load_themes, prompt_rng
from agorabench.generation.parsing import Parsed, chat_token_counter, parse_completion
from agorabench.generation.prompts import (
    DOMAINS,
    METHODS,
    VARIANTS,
    Template,
    load_template,
    render,
    template_path,
)

# The orchestrator (and its tqdm/LLM-backend imports) loads on first use: the workflow imports
# `prompts` while building the DAG, in an environment that may hold only Snakemake (issue 19).
_LAZY = {"generate_set": "agorabench.generation.run", "take_prefix": "agorabench.generation.run"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DOMAINS",
    "METHODS",
    "VARIANTS",
    "Parsed",
    "PromptSpec",
    "Template",
    "build_prompt",
    "chat_token_counter",
    "generate_set",
    "load_template",
    "load_themes",
    "parse_completion",
    "prompt_rng",
    "render",
    "take_prefix",
    "template_path",
]
