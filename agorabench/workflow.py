"""The study plan: which generated sets, students and evaluations a config asks for.

Pure functions over the (already schema-validated) config dict; the Snakefile calls them to build the
DAG and tests call them directly. Cross-references between config sections are checked here, so a bad
name fails before any job runs, naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from agorabench.errors import ConfigError
from agorabench.llm.factory import LOCAL_BACKENDS

DOMAINS = ("math", "code", "instruction_following")
METHODS = ("instance_generation", "response_generation", "quality_enhancement")
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


# Seed variance (experiments.<name>.training_seeds): a student is also trained with other training seeds.
# The run with `training.seed` is the student itself (its path, job and numbers unchanged); another seed s
# is a new model key, the student's path + "_seed<s>", trained on the same training data.
SEED_TAG = "_seed"


@dataclass(frozen=True, order=True)
class Replicate:
    """One training run of a student in a seed study: the student trained with `seed`."""

    student: Student
    seed: int
    primary: bool  # trained with training.seed: the student itself

    @property
    def path(self) -> str:
        """The model key: the student's path, or for another seed the student's path + "_seed<seed>"."""
        return self.student.path if self.primary else f"{self.student.path}{SEED_TAG}{self.seed}"


def training_seeds(config: dict[str, Any], student: Student) -> list[int]:
    """The training seeds of a student: training.seed first, then the other seeds that the experiments
    holding it list in `training_seeds` (ascending)."""
    primary = int(config["training"]["seed"])
    extra = {
        int(seed)
        for exp in config["experiments"].values()
        if _in_experiment(student, exp)
        for seed in exp.get("training_seeds", ())
    }
    return [primary, *sorted(extra - {primary})]


def _in_experiment(s: Student, exp: dict[str, Any]) -> bool:
    return (
        s.generator in exp["generators"]
        and s.domain in exp["domains"]
        and s.method in exp["methods"]
        and s.variant in exp["variants"]
        and s.size in {int(n) for n in exp["sizes"]}
    )


def replicates(config: dict[str, Any]) -> list[Replicate]:
    """Every training run of the students with more than one training seed (the primary one included)."""
    out = []
    for s in students(config):
        seeds = training_seeds(config, s)
        if len(seeds) > 1:
            out += [Replicate(s, seed, k == 0) for k, seed in enumerate(seeds)]
    return out


def extra_replicates(config: dict[str, Any]) -> list[Replicate]:
    """The training runs a seed study adds: its students with a seed other than training.seed."""
    return [r for r in replicates(config) if not r.primary]


def generation_seed(config: dict[str, Any], generator: str) -> int:
    """The seed of a generator's pools (its prompt draws and sampling seeds): `generation_seed` of its entry,
    else the study's `seed`, which every other generator shares so that all see the same prompts."""
    return int(config["generators"][generator].get("generation_seed", config["seed"]))


def generation_replicates(config: dict[str, Any]) -> list[tuple[Student, Student]]:
    """(student, its replicate) for every student of a generator entry with `replicate_of`: the same model
    and setting with another generation seed, so the pair measures how much PGR moves with that seed."""
    plan = set(students(config))
    pairs = []
    for s in students(config):
        of = config["generators"][s.generator].get("replicate_of")
        if of is None:
            continue
        primary = replace(s, generator=of)
        if primary not in plan:
            raise ConfigError(
                f"generators.{s.generator}.replicate_of",
                f"the replicate's student {s.path} has no counterpart of '{of}' in any experiment",
            )
        pairs.append((primary, s))
    return pairs


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
    extra = extra_replicates(config)
    return pairs + [(r.path, bench) for r in extra for bench in benchmarks_of(config, r.student.domain)]


# Student inference runs as one job per model (one engine start for all of its benchmarks). A rule's
# outputs cannot depend on a wildcard's value, so there is one `predict_<set>` rule per benchmark set:
# S_0 and S_ref answer every benchmark, a student its domain's.
PREDICT_BASELINES = "baselines"


def prediction_sets(config: dict[str, Any]) -> dict[str, list[str]]:
    """Benchmark set name -> the benchmarks one inference job of that set answers."""
    sets = {PREDICT_BASELINES: list(config["benchmarks"])}
    sets |= {d: benchmarks_of(config, d) for d in DOMAINS if benchmarks_of(config, d)}
    return sets


def prediction_models_regex(benchmark_set: str) -> str:
    """The model-key wildcard regex of one benchmark set's inference rule."""
    if benchmark_set == PREDICT_BASELINES:
        return "|".join(BASELINES)
    return rf"students/[^/]+/{benchmark_set}/[^/]+/[^/]+/n\d+(?:{SEED_TAG}\d+)?"


def inference_jobs(config: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(model key, its benchmarks): one inference job each, covering exactly `evaluations(config)`."""
    sets = prediction_sets(config)
    jobs = [(b, sets[PREDICT_BASELINES]) for b in BASELINES]
    jobs += [(s.path, sets[s.domain]) for s in students(config)]
    return jobs + [(r.path, sets[r.student.domain]) for r in extra_replicates(config)]


def is_local(llm: dict[str, Any]) -> bool:
    return llm["backend"] in LOCAL_BACKENDS


def local_generators(config: dict[str, Any]) -> list[str]:
    return [g for g, spec in config["generators"].items() if is_local(spec)]


def one_job_generators(config: dict[str, Any]) -> list[str]:
    """Local generators whose pools are generated by one job for all their settings (rule
    generate_settings; `generation.one_job_per_generator`), each pool's own job replaying its calls."""
    if not config["generation"].get("one_job_per_generator", False):
        return []
    used = {g for g, *_ in generated_sets(config)}
    return [g for g in local_generators(config) if g in used]


def one_job_training(config: dict[str, Any]) -> list[str]:
    """With `training.one_job`, the training paths (under training/) of the models that one job (rule
    train_all) trains one after another: S_ref when it is trained, then every student. Their own jobs
    link the models; replicate runs of a seed study train in their own jobs."""
    if not config["training"].get("one_job", False):
        return []
    ref = ["reference"] if reference_is_trained(config) else []
    return ref + [s.path for s in students(config)]


def generator_settings(config: dict[str, Any], generator: str) -> list[tuple[str, str, str]]:
    """The (domain, method, variant) of every pool of `generator`, in a fixed order."""
    return [(d, m, v) for g, d, m, v in generated_sets(config) if g == generator]


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
    for name, spec in judges.items():
        for key in ("generation_seed", "replicate_of"):
            if key in spec:
                raise ConfigError(f"judges.{name}.{key}", "only a generator entry takes this key")
    for name, spec in generators.items():
        _check_replicate(generators, name, spec, int(config["seed"]))
    for exp_name, exp in config["experiments"].items():
        for g in exp["generators"]:
            if g not in generators:
                raise ConfigError(f"experiments.{exp_name}.generators", f"'{g}' is not a key of `generators`")
        for d in exp["domains"]:
            if not benchmarks_of(config, d):
                raise ConfigError(f"experiments.{exp_name}.domains", f"no benchmark has domain '{d}'")
        seeds = exp.get("training_seeds")
        if seeds is not None and int(config["training"]["seed"]) not in seeds:
            raise ConfigError(
                f"experiments.{exp_name}.training_seeds",
                f"must include training.seed ({config['training']['seed']}): its run is the student itself",
            )
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
    generation_replicates(config)  # every replicate's student has its counterpart


def _check_replicate(generators: dict[str, Any], name: str, spec: dict[str, Any], seed: int) -> None:
    of = spec.get("replicate_of")
    if of is None:
        return
    key = f"generators.{name}.replicate_of"
    if of not in generators or of == name:
        raise ConfigError(key, f"'{of}' is not another key of `generators`")
    if "replicate_of" in generators[of]:
        raise ConfigError(key, f"'{of}' is itself a replicate: name the generator it repeats")
    for field in ("backend", "model"):
        if spec[field] != generators[of][field]:
            raise ConfigError(key, f"'{of}' has another {field}: a replicate repeats the same model")
    if int(spec.get("generation_seed", seed)) == int(generators[of].get("generation_seed", seed)):
        raise ConfigError(f"generators.{name}.generation_seed", f"must differ from the seed of '{of}'")


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


# Official data-agora files (rule official_assets): obtained into one folder and verified by sha256.
# `generation.templates: official` takes every (variant, setting) the official repository has from there;
# the others (the unoptimized prompts, JSON quality enhancement) use the project's stand-ins.


def official_dir(config: dict[str, Any]) -> str:
    return f"{config['results_dir']}/assets/data-agora"


def official_files(config: dict[str, Any]) -> list[str]:
    """The obtained official files (the outputs of rule official_assets, MANIFEST.json excluded)."""
    files = config["generation"].get("official", {}).get("files", {})
    return [f"{official_dir(config)}/{p}" for p in sorted(files)]


def _official_template(config: dict[str, Any], variant: str, domain: str, method: str) -> str | None:
    from agorabench.data.assets import official_template

    gen = config["generation"]
    if gen.get("templates", "project") != "official":
        return None
    rel = official_template(variant, domain, method)
    if rel is None:
        return None
    if rel not in gen.get("official", {}).get("files", {}):
        raise ConfigError(
            "generation.official.files", f"{rel} (the {variant} {domain}/{method} template) is not listed"
        )
    return f"{official_dir(config)}/{rel}"


def template_origin(config: dict[str, Any], variant: str, domain: str, method: str) -> str:
    """ "official" when the setting's meta-prompt is the official data-agora file, else "stand-in"."""
    return "official" if _official_template(config, variant, domain, method) else "stand-in"


def _project_template(config: dict[str, Any], variant: str, domain: str, method: str) -> str:
    from agorabench.generation.prompts import template_path as resolve

    gen = config["generation"]
    return str(
        resolve(gen["prompts_dir"], variant, domain, method, layout=gen.get("prompts_layout", "agorabench"))
    )


def template_path(config: dict[str, Any], variant: str, domain: str, method: str) -> str:
    """The meta-prompt file of one setting and variant: the obtained official file or the project's."""
    official = _official_template(config, variant, domain, method)
    return official or _project_template(config, variant, domain, method)


def planning_template(config: dict[str, Any], variant: str, domain: str, method: str) -> str:
    """A readable template for estimates before rule official_assets ran: the project file until then."""
    path = template_path(config, variant, domain, method)
    from pathlib import Path

    return path if Path(path).is_file() else _project_template(config, variant, domain, method)


def generation_modes(config: dict[str, Any], variant: str, domain: str, method: str) -> dict[str, Any]:
    """The prompt-defining generation modes of one set (rule params; defaults are the project's)."""
    gen = config["generation"]
    validation = gen.get("validation", "strict")
    return {
        "template_origin": template_origin(config, variant, domain, method),
        "themes_from": gen.get("themes_from", "project"),
        "theme_lists": gen.get("theme_lists", "code_faithful"),
        "validation": validation,
        "max_attempts_per_instance": gen.get("max_attempts_per_instance", 10)
        if validation == "official"
        else None,
        "demonstrations": gen.get("demonstrations", "seeds_only"),
        "pool_block": gen.get("pool_block") if gen.get("demonstrations") == "official" else None,
    }


def themes_input(config: dict[str, Any]) -> str:
    """Where the theme and first-word lists come from: official run.py or the project's themes file."""
    gen = config["generation"]
    if gen.get("themes_from", "project") == "official":
        from agorabench.data.assets import RUN_PY

        if RUN_PY not in gen.get("official", {}).get("files", {}):
            raise ConfigError("generation.official.files", f"themes_from official needs {RUN_PY} listed")
        return f"{official_dir(config)}/{RUN_PY}"
    return gen["themes"]


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
        if ev.get("code_allow_no_isolation"):  # recorded only when set: scores that kept isolation unchanged
            defaults["allow_no_isolation"] = True
    elif spec["kind"] in JUDGED_KINDS:
        defaults = {"seed": config["seed"]}
    settings = {**defaults, **spec.get("settings", {})}
    return resolve_assets(settings, asset_paths(config), f"benchmarks.{benchmark}.settings")


def asset_paths(config: dict[str, Any]) -> dict[str, str]:
    """Evaluation asset name -> the verified file rule obtain_evaluation_asset writes."""
    from agorabench.evaluation.assets import asset_file

    assets = config.get("evaluation", {}).get("assets") or {}
    root = f"{config['results_dir']}/data/assets/evaluation"
    return {n: f"{root}/{n}/{asset_file(a, f'evaluation.assets.{n}')}" for n, a in assets.items()}


def resolve_assets(value: Any, paths: dict[str, str], where: str) -> Any:
    from agorabench.evaluation.assets import resolve_assets as resolve

    return resolve(value, paths, where)


def asset_inputs(config: dict[str, Any], value: Any) -> list[str]:
    """The asset files that a benchmark's source or settings name (inputs of its jobs)."""
    from agorabench.evaluation.assets import asset_refs

    paths = asset_paths(config)
    return [paths[n] for n in asset_refs(value) if n in paths]


def benchmark_spec(config: dict[str, Any], benchmark: str) -> dict[str, Any]:
    """A benchmark's config entry with its source's {asset: name} references resolved to files."""
    return resolve_assets(config["benchmarks"][benchmark], asset_paths(config), f"benchmarks.{benchmark}")


def judge_params(config: dict[str, Any], benchmark: str) -> dict[str, Any]:
    name = config["benchmarks"][benchmark]["judge"]
    spec = config["judges"][name]
    return {"name": name, "backend": spec["backend"], "model": spec["model"]}


def one_job_judges(config: dict[str, Any]) -> list[str]:
    """Local judges whose calls for every judged (model, benchmark) of `evaluations` one job makes (rule
    judge_calls; `evaluation.one_job_per_judge`); each score_judged job then reads its call store."""
    if not config["evaluation"].get("one_job_per_judge", False):
        return []
    used = {config["benchmarks"][b]["judge"] for b in judged(config)}
    return [j for j in config.get("judges", {}) if j in used and is_local(config["judges"][j])]


def judged_pairs(config: dict[str, Any], judge: str) -> list[tuple[str, str]]:
    """The (model, benchmark) pairs of `evaluations` that `judge` scores."""
    mine = {b for b in judged(config) if config["benchmarks"][b]["judge"] == judge}
    return [(m, b) for m, b in evaluations(config) if b in mine]


def judge_inputs(config: dict[str, Any], benchmark: str) -> dict[str, Any]:
    spec = config["judges"][config["benchmarks"][benchmark]["judge"]]
    inputs: dict[str, Any] = {"judge_model": model_dir(config, spec["model"])} if is_local(spec) else {}
    assets = asset_inputs(config, config["benchmarks"][benchmark].get("settings", {}))
    return inputs | ({"judge_assets": assets} if assets else {})


def main_experiment(config: dict[str, Any]) -> dict[str, Any]:
    """The (variant, size) of the main table: experiment `main` if present, else the first experiment."""
    exps = config["experiments"]
    exp = exps.get("main") or next(iter(exps.values()))
    return {"variant": exp["variants"][0], "size": int(exp["sizes"][0])}


# Seed sets (rules/data.smk): a `format: build` setting is made by rule build_seed_set; the others are read
# as configured. Instance-generation students also train on the seed set (Table 1 caption) when
# training.seeds_in_instance_generation_data is true.


def seed_set_path(config: dict[str, Any], domain: str, method: str) -> str:
    return f"{config['results_dir']}/data/seed_sets/{domain}/{method}.json"


def seed_source(config: dict[str, Any], domain: str, method: str) -> dict[str, Any]:
    """The source rule prepare_seeds reads: the built set for `format: build`, else the configured one."""
    spec = config["seeds"][domain][method]
    if spec["format"] == "build":
        return {"format": "agora_json", "path": seed_set_path(config, domain, method)}
    return spec


def seeds_in_training(config: dict[str, Any], method: str) -> bool:
    flag = config["training"].get("seeds_in_instance_generation_data", False)
    return bool(flag) and method == "instance_generation"
