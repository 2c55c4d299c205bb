# Input and parameter functions of the rules (kept apart from the rules, as snakemake --lint asks).


def _alt(names):
    """A wildcard regex matching exactly these names (or nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def _generation_inputs(wc):
    spec = config["generators"][wc.generator]
    inputs = {
        "seeds": f"{R}/data/seeds/{wc.domain}/{wc.method}.jsonl",
        "template": wf.template_path(config, wc.variant, wc.domain, wc.method),
        "themes": wf.themes_input(config),
        "student": wf.model_dir(config, config["student"]["base"]),
    }
    if wf.is_local(spec):
        inputs["model"] = wf.model_dir(config, spec["model"])
    return inputs


def _generation_params(wc):
    """What defines the generated instances (and nothing operational)."""
    spec = config["generators"][wc.generator]
    return {
        "backend": spec["backend"],
        "model": spec["model"],
        "sampling": wf.sampling_for(config, "generators", wc.generator),
        "n": wf.pool_size(config, wc.generator, wc.domain, wc.method, wc.variant),
        "max_attempts_factor": config["generation"].get("max_attempts_factor", 2.0),
        "max_instance_tokens": config["generation"].get("max_instance_tokens", 4096),
        "seed": config["seed"],
        "price": spec.get("price"),
    } | wf.generation_modes(config, wc.variant, wc.domain, wc.method)


def _seed_set_input(wc):
    """The built seed set when the setting is `format: build` (rule build_seed_set), else nothing."""
    if config["seeds"][wc.domain][wc.method]["format"] != "build":
        return {}
    return {"built": wf.seed_set_path(config, wc.domain, wc.method)}


def _training_data_inputs(wc):
    """The generated set, plus the seed set for instance generation when the config says so."""
    inputs = {"generated": os.path.join(GEN.format(**dict(wc.items())), f"n{wc.size}.jsonl")}
    if wf.seeds_in_training(config, wc.method):
        inputs["seeds"] = f"{R}/data/seeds/{wc.domain}/{wc.method}.jsonl"
    return inputs


def _training_params():
    return {"hparams": config["training"], "chat_template": config["student"].get("chat_template", "model")}


def _score_files(wildcards=None):
    return [f"{R}/evaluation/{m}/{b}/score.json" for m, b in wf.evaluations(config)]


# Analysis (rules/analysis.smk): each table and figure reads the score files of its own students only.


def _main_score_files(wildcards=None):
    return ap.score_paths(config, ap.main_students(config))


def _ablation_score_files(wildcards=None):
    return ap.score_paths(config, ap.ablation_students(config))


def _cost_score_files(wildcards=None):
    return ap.score_paths(config, ap.cost_students(config))


def _cost_ledgers(wildcards=None):
    return ap.stats_paths(config, ap.cost_students(config))


def _main_ledgers(wildcards=None):
    return ap.stats_paths(config, ap.main_students(config))


def _problem_solving_files(wildcards=None):
    ap.check_problem_solving(config)
    return ap.problem_solving_score_paths(config)


def _problem_solving_files_if_any(wildcards=None):
    return ap.problem_solving_score_paths(config) if not ap.problem_solving_missing(config) else []


def _generator_eval_inputs(wc):
    """Table 7 measured: the benchmark items and, for a local generator, its weights."""
    inputs = {"benchmark_items": [f"{R}/data/benchmarks/{b}.jsonl" for b in config["benchmarks"]]}
    spec = config["generators"][wc.generator]
    if wf.is_local(spec):
        inputs["model"] = wf.model_dir(config, spec["model"])
    return inputs


def _generator_eval_gpus(generator):
    spec = config["generators"][generator]
    return spec.get("tensor_parallel_size", 1) if spec["backend"] == "vllm" else 0


def _intrinsic_files(wildcards=None):
    return ap.intrinsic_paths(config)


def _intrinsic_set(wc):
    return f"{R}/generation/{wc.generator}/{wc.domain}/{wc.method}/{wc.variant}/n{wc.size}.jsonl"


def _intrinsic_judge_inputs(wc):
    inputs = {"data": _intrinsic_set(wc)} | ap.rubric_paths(config)
    for suffix, judge in ap.intrinsic_judges(config).items():
        spec = config["judges"][judge["name"]]
        if wf.is_local(spec):
            inputs[f"judge_model_{suffix}"] = wf.model_dir(config, spec["model"])
    return inputs


def _intrinsic_model_inputs(wc):
    inputs = {"data": _intrinsic_set(wc)}
    params = ap.intrinsic_model_params(config)
    if params["perplexity"]:
        inputs["perplexity_model"] = wf.model_dir(config, params["perplexity"]["model"])
    if params["reward"]:
        inputs["reward_model"] = ap.reward_model_dir(config)
    return inputs


def _labels(item):
    """Report labels of a table or figure: its name and its lineage record, when one was written."""

    def labels(wildcards, output):
        import os

        lineage = f"{output[0]}.lineage.md"
        return {"item": item, "lineage": lineage if os.path.exists(lineage) else "none"}

    return labels
