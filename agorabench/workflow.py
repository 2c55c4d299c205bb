"""The study plan: which generated sets, students and evaluations a config asks for.

Pure functions over the (already schema-validated) config dict; the Snakefile calls them to build the
DAG and tests call them directly. Cross-references between config sections are checked here, so a bad
name fails before any job runs, naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agorabench.errors import ConfigError

DOMAINS = ("math", "code", "instruction_following")
METHODS = ("instance_generation", "response_generation", "quality_enhancement")
LOCAL_BACKENDS = ("transformers", "vllm")
JUDGED_KINDS = ("alpaca_eval", "arena_hard")
BASELINES = ("base", "reference")


@dataclass(frozen=True, order=True)
class Student:
    generator: str
    domain: str
    method: str
    variant: str
    size: int

    @property
    def setting(self) -> str:
        return f"{self.domain}/{self.method}"

    @property
    def path(self) -> str:
        """The student's path below training/ and evaluation/ (its model key)."""
        return f"students/{self.generator}/{self.domain}/{self.method}/{self.variant}/n{self.size}"


def students(config: dict[str, Any]) -> list[Student]:
    """Every student the experiments ask for, once each, in a stable order."""
    out = {
        Student(g, d, m, v, int(n))
        for exp in config["experiments"].values()
        for g in exp["generators"]
        for d in exp["domains"]
        for m in exp["methods"]
        for v in exp["variants"]
        for n in exp["sizes"]
    }
    return sorted(out)


def pool_size(config: dict[str, Any], generator: str, domain: str, method: str, variant: str) -> int:
    """Instances to generate for one (generator, setting, variant): the largest size asked for.

    Smaller sizes of the cost study are prefixes of this one generated set.
    """
    sizes = [
        s.size
        for s in students(config)
        if (s.generator, s.domain, s.method, s.variant) == (generator, domain, method, variant)
    ]
    if not sizes:
        raise ConfigError("experiments", f"no experiment asks for {generator} {domain}/{method}/{variant}")
    return max(sizes)


def generated_sets(config: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return sorted({(s.generator, s.domain, s.method, s.variant) for s in students(config)})


def benchmarks_of(config: dict[str, Any], domain: str) -> list[str]:
    return [b for b, spec in config["benchmarks"].items() if spec["domain"] == domain]


def evaluations(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(model key, benchmark) pairs: each student on its domain's benchmarks, S_0 and S_ref on all."""
    pairs = [(b, bench) for b in BASELINES for bench in config["benchmarks"]]
    pairs += [(s.path, bench) for s in students(config) for bench in benchmarks_of(config, s.domain)]
    return pairs


def is_local(llm: dict[str, Any]) -> bool:
    return llm["backend"] in LOCAL_BACKENDS


def local_generators(config: dict[str, Any]) -> list[str]:
    return [g for g, spec in config["generators"].items() if is_local(spec)]


def api_generators(config: dict[str, Any]) -> list[str]:
    return [g for g, spec in config["generators"].items() if not is_local(spec)]


def reference_is_trained(config: dict[str, Any]) -> bool:
    return "train_on" in config["student"]["reference"]


def check_config(config: dict[str, Any]) -> None:
    """Cross-reference checks the JSON schema cannot express; raises ConfigError naming the key."""
    models, generators = config["models"], config["generators"]
    judges = config.get("judges", {})
    for section, entries in (("generators", generators), ("judges", judges)):
        for name, spec in entries.items():
            if is_local(spec) and spec["model"] not in models:
                raise ConfigError(f"{section}.{name}.model", f"'{spec['model']}' is not a key of `models`")
    for exp_name, exp in config["experiments"].items():
        for g in exp["generators"]:
            if g not in generators:
                raise ConfigError(f"experiments.{exp_name}.generators", f"'{g}' is not a key of `generators`")
        for d in exp["domains"]:
            if not benchmarks_of(config, d):
                raise ConfigError(f"experiments.{exp_name}.domains", f"no benchmark has domain '{d}'")
    student = config["student"]
    if student["base"] not in models:
        raise ConfigError("student.base", f"'{student['base']}' is not a key of `models`")
    ref = student["reference"].get("model")
    if ref is not None and ref not in models:
        raise ConfigError("student.reference.model", f"'{ref}' is not a key of `models`")
    for b, spec in config["benchmarks"].items():
        if spec["kind"] in JUDGED_KINDS:
            if "judge" not in spec:
                raise ConfigError(f"benchmarks.{b}.judge", f"kind '{spec['kind']}' needs a judge")
            if spec["judge"] not in judges:
                raise ConfigError(f"benchmarks.{b}.judge", f"'{spec['judge']}' is not a key of `judges`")


def llm_spec(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """A generator's or judge's backend spec with local model keys resolved to their folders."""
    spec = dict(config[section][name])
    if is_local(spec):
        spec["model_dir"] = model_dir(config, spec["model"])
    return spec


def model_dir(config: dict[str, Any], model_name: str) -> str:
    return f"{config['results_dir']}/models/{model_name}"


def checkpoint_dir(config: dict[str, Any], model_key: str) -> str:
    """The weights folder of an evaluated model: S_0, S_ref or a student."""
    root = config["results_dir"]
    if model_key == "base":
        return model_dir(config, config["student"]["base"])
    if model_key == "reference":
        if reference_is_trained(config):
            return f"{root}/training/reference/model"
        return model_dir(config, config["student"]["reference"]["model"])
    return f"{root}/training/{model_key}/model"


def sampling_for(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """Generation sampling: the study's defaults overridden by the generator's own."""
    return {**config["generation"]["sampling"], **config[section][name].get("sampling", {})}


def eval_sampling(config: dict[str, Any], domain: str) -> dict[str, Any]:
    s = config["evaluation"]["sampling"]
    return {**s["default"], **s.get(domain, {})}


def template_path(config: dict[str, Any], variant: str, domain: str, method: str) -> str:
    """The meta-prompt file of one setting and variant (project layout or the official file names)."""
    from agorabench.generation.prompts import template_path as resolve

    gen = config["generation"]
    return str(
        resolve(gen["prompts_dir"], variant, domain, method, layout=gen.get("prompts_layout", "agorabench"))
    )


def judged(config: dict[str, Any]) -> list[str]:
    return [b for b, spec in config["benchmarks"].items() if spec["kind"] in JUDGED_KINDS]


def unjudged(config: dict[str, Any]) -> list[str]:
    return [b for b, spec in config["benchmarks"].items() if spec["kind"] not in JUDGED_KINDS]


def scorer_settings(config: dict[str, Any], benchmark: str) -> dict[str, Any]:
    """Scorer settings that define a score (recorded in the score file): the benchmark's own `settings`
    over the study's defaults."""
    spec = config["benchmarks"][benchmark]
    ev = config["evaluation"]
    defaults: dict[str, Any] = {}
    if spec["kind"] == "code":
        defaults = {"timeout_s": ev.get("code_timeout_s", 10), "workers": ev.get("code_workers", 2)}
    elif spec["kind"] in JUDGED_KINDS:
        defaults = {"seed": config["seed"]}
    return {**defaults, **spec.get("settings", {})}


def judge_params(config: dict[str, Any], benchmark: str) -> dict[str, Any]:
    name = config["benchmarks"][benchmark]["judge"]
    spec = config["judges"][name]
    return {"name": name, "backend": spec["backend"], "model": spec["model"]}


def judge_inputs(config: dict[str, Any], benchmark: str) -> dict[str, str]:
    spec = config["judges"][config["benchmarks"][benchmark]["judge"]]
    return {"judge_model": model_dir(config, spec["model"])} if is_local(spec) else {}


def main_experiment(config: dict[str, Any]) -> dict[str, Any]:
    """The (variant, size) of the main table: experiment `main` if present, else the first experiment."""
    exps = config["experiments"]
    exp = exps.get("main") or next(iter(exps.values()))
    return {"variant": exp["variants"][0], "size": int(exp["sizes"][0])}
