"""Stage function of the generation rules: one generator writes one pool for one setting and variant."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agorabench.errors import AgoraBenchError, ConfigError
from agorabench.generation.instances import load_themes
from agorabench.generation.run import (
    DEFAULT_SYSTEM_PROMPT,
    Budget,
    GenerationJob,
    Materials,
    Setting,
    generate_pools,
)
from agorabench.jsonl import read_jsonl, write_json
from agorabench.llm.base import Backend, Completion, Request, Sampling
from agorabench.llm.factory import backend_for_stores
from agorabench.llm.identity import model_identity


@functools.cache  # one tokenizer load for all the pools of a generate_settings job
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


@dataclass(frozen=True)
class GenerationTask:
    """One job of the generate rules: the setting (its wildcards), its params, the generator's backend
    spec (operational settings included) and its input and output files."""

    setting: Setting
    params: dict[str, Any]
    backend_spec: dict[str, Any]
    seeds_path: str
    template_path: str
    themes_path: str
    student_dir: str
    out_path: str
    stats_path: str
    replay: str | None = None  # the generate_settings summary whose job made this pool's calls

    @classmethod
    def from_rule(
        cls,
        wildcards: Mapping[str, str],
        inputs: Mapping[str, str],
        outputs: Mapping[str, str],
        params: Mapping[str, Any],
        backend_spec: Mapping[str, Any],
    ) -> GenerationTask:
        """From a rule's named wildcards, inputs and outputs, its `generation` param and the generator's
        config entry; a local generator's model folder (input `model`) joins the backend spec."""
        spec = dict(backend_spec) | ({"model_dir": inputs["model"]} if "model" in inputs else {})
        setting = Setting(
            wildcards["generator"], wildcards["domain"], wildcards["method"], wildcards["variant"]
        )
        return cls(
            setting, dict(params), spec, seeds_path=inputs["seeds"], template_path=inputs["template"],
            themes_path=inputs["themes"], student_dir=inputs["student"], out_path=outputs["data"],
            stats_path=outputs["stats"], replay=inputs.get("settings"),
        )  # fmt: skip

    @classmethod
    def for_settings(
        cls, pools: list[Mapping[str, Any]], inputs: Mapping[str, Any], spec: Mapping[str, Any]
    ) -> list[GenerationTask]:
        """The tasks of a generate_settings job: per pool its wildcards, pool path and params (rule
        param `pools`), with its seeds and meta-prompt from the input lists of the same order."""
        tasks = []
        for k, pool in enumerate(pools):
            inputs_k = dict(inputs) | {"seeds": inputs["seeds"][k], "template": inputs["template"][k]}
            stats = str(Path(pool["data"]).with_name("pool.stats.json"))
            outputs = {"data": pool["data"], "stats": stats}
            tasks.append(cls.from_rule(pool["wildcards"], inputs_k, outputs, pool["generation"], spec))
        return tasks


def generation_job(task: GenerationTask) -> GenerationJob:
    """The job its params define: sampling, seed, system prompt, budget, modes, price; the call store
    lies beside the pool."""
    params = task.params
    n = int(params["n"])
    validation = params.get("validation", "strict")
    per_instance = params.get("max_attempts_per_instance") if validation == "official" else None
    calls = n * int(per_instance) if per_instance else max(n, int(n * float(params["max_attempts_factor"])))
    budget = Budget(n, calls, per_instance, attempts_per_round=int(params.get("attempts_per_round", 1)))
    return GenerationJob(
        setting=task.setting,
        sampling=Sampling.from_config(params["sampling"]),
        seed=int(params["seed"]),
        budget=budget,
        out_path=task.out_path,
        stats_path=task.stats_path,
        store_path=str(Path(task.out_path).with_name("calls.jsonl")),
        system_prompt=params.get("system_prompt", DEFAULT_SYSTEM_PROMPT),
        max_instance_tokens=int(params["max_instance_tokens"]),
        validation=validation,
        demonstrations=params.get("demonstrations", "seeds_only"),
        pool_block=params.get("pool_block"),
        price=params.get("price"),
        labels={"template_origin": params.get("template_origin", "stand-in")} | _list_labels(params),
        model_identity=model_identity(task.backend_spec),
    )


def generation_materials(task: GenerationTask) -> Materials:
    """The seeds, theme lists, meta-prompt and the student's length check of a task."""
    themes, first_words = theme_lists(task.params, task.themes_path)
    domain = task.setting.domain
    if domain not in themes:
        raise ConfigError("generation.themes", f"{task.themes_path} has no theme list for domain '{domain}'")
    return Materials(
        template_path=task.template_path,
        seeds=read_jsonl(task.seeds_path, required=("id", "instruction", "response")),
        themes=themes[domain],
        first_words=first_words.get(domain, []),
        seeds_name=task.seeds_path,
        count_tokens=student_token_counter(task.student_dir, task.params.get("validation", "strict")),
    )


def run_generation(task: GenerationTask) -> dict[str, Any]:
    """Generate `params["n"]` valid instances (or report the shortfall) through a durable call store; a
    local model is loaded only if some call is not stored yet."""
    return _generate([task], write=True)[0]


class _StoredOnly(Backend):
    """The backend of a pool whose calls its generator's generate_settings job made: none is missing."""

    def __init__(self, task: GenerationTask):
        self.name, self.task = "stored calls only", task

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        raise AgoraBenchError(
            f"{self.task.setting}: {len(requests)} call(s) are not in "
            f"{Path(self.task.out_path).with_name('calls.jsonl')}, which the job of {self.task.replay} "
            "fills; rerun it (snakemake -R generate_settings)"
        )


def run_generation_settings(tasks: list[GenerationTask], out_path: str) -> dict[str, Any]:
    """Fill the call stores of all of one generator's pools in one job (their rounds side by side, one
    batch for all on a local model, one model load), then write what each pool would hold to `out_path`.
    The pools themselves are written by their own jobs, which replay the stores without the model."""
    generators = sorted({t.setting.generator for t in tasks})
    if len(generators) != 1:
        raise ConfigError("generation.one_job_per_generator", f"one generator per job, got {generators}")
    stats = _generate(tasks, write=False)
    summary = {"generator": generators[0], "pools": stats}
    write_json(out_path, summary)
    return {"pools": len(stats)} | {k: sum(s[k] for s in stats) for k in ("valid", "calls", "calls_new")}


def _generate(tasks: list[GenerationTask], write: bool) -> list[dict[str, Any]]:
    work = [(generation_job(t), generation_materials(t)) for t in tasks]
    key = f"generators.{tasks[0].setting.generator}"
    replay = tasks[0].replay is not None  # a pool's own job after its generate_settings job
    with _StoredOnly(tasks[0]) if replay else backend_for_stores(tasks[0].backend_spec, key=key) as backend:
        return generate_pools(work, backend, write=write)


def _list_labels(params: dict[str, Any]) -> dict[str, Any]:
    official = params.get("themes_from", "project") == "official"
    return {"themes_from": params.get("themes_from", "project")} | (
        {"theme_lists": params.get("theme_lists", "code_faithful")} if official else {}
    )
