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
from agorabench.generation.run import generate_set, take_prefix

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
