# Input and parameter functions of the rules (kept apart from the rules, as snakemake --lint asks).
from types import SimpleNamespace

from agorabench.evaluation.scorers import get_scorer
from agorabench.generation.parsing import PARSER_VERSION
from agorabench.generation.prompts import DEFAULT_SYSTEM_PROMPT

# Scheduling priorities (local runs start ready jobs by priority; a cluster submits in that order). The
# generation-to-training chain is the DAG's longest path, so its jobs go before the side branches
# (intrinsic metrics, S_0's inference); then the inference that a judge reads, so that a one-job judge runs
# beside the other students' inference instead of after it.
CHAIN = 2
JUDGED = 1


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
    if wc.generator in wf.one_job_generators(config):  # the calls are made, the job replays them
        inputs["settings"] = f"{R}/generation/{wc.generator}/settings.json"
    return inputs


def _generator_gpus(wc):
    spec = config["generators"][wc.generator]
    return spec.get("tensor_parallel_size", 1) if spec["backend"] == "vllm" else 0


def _setting_wildcards(generator):
    return [
        SimpleNamespace(generator=generator, domain=d, method=m, variant=v)
        for d, m, v in wf.generator_settings(config, generator)
    ]


def _generation_settings_inputs(wc):
    """The inputs of every pool of a generator: seeds and meta-prompts (lists, in setting order)."""
    each = [_generation_inputs(s) for s in _setting_wildcards(wc.generator)]
    shared = {k: v for k, v in each[0].items() if k not in ("seeds", "template", "settings")}
    return shared | {"seeds": [i["seeds"] for i in each], "template": [i["template"] for i in each]}


def _generation_settings_params(wc):
    """Per pool, in setting order: its wildcards, its pool path and its `generation` param."""
    return [
        {
            "wildcards": vars(s),
            "data": os.path.join(GEN.format(**vars(s)), "pool.jsonl"),
            "generation": _generation_params(s),
        }
        for s in _setting_wildcards(wc.generator)
    ]


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
        "seed": wf.generation_seed(config, wc.generator),
        "price": spec.get("price"),
        "system_prompt": config["generation"].get("system_prompt", DEFAULT_SYSTEM_PROMPT),
        "attempts_per_round": config["generation"].get("attempts_per_round", 1),  # the stats count its calls
        "parser_version": PARSER_VERSION,
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


def _train_all_models():
    """Each model train_all trains: its name, training data, staging folder and final model folder."""
    models = []
    for name in wf.one_job_training(config):
        root = f"{R}/training/{name}"
        data = f"{R}/data/reference/sft.jsonl" if name == "reference" else f"{root}/train_data.jsonl"
        staged = f"{R}/training/staged/{name}"
        models.append({"name": name, "data": data, "staged": staged, "output": f"{root}/model"})
    return models


def _train_gpus(wc):
    """A job that links what train_all trained needs no GPU."""
    return 0 if wf.one_job_training(config) else config["training"].get("gpus", 1)


def _trained_by(wc):
    """The train_all summary, when one job trains every model (`training.one_job`)."""
    return {"trained_by": f"{R}/training/train_all.json"} if wf.one_job_training(config) else {}


def _replicate_hparams(wc):
    """A seed study's extra training run: the study's hyper-parameters with its own seed."""
    return config["training"] | {"seed": int(wc.train_seed)}


def _scorer_version(wc):
    """The version of the benchmark's scorer kind: bumping it reruns exactly that kind's scores."""
    return get_scorer(config["benchmarks"][wc.benchmark]["kind"]).version


def _judge_calls_input(wc):
    """The judge_calls summary, when one job made this pair's judge calls."""
    judge = config["benchmarks"][wc.benchmark]["judge"]
    if judge in wf.one_job_judges(config) and (wc.model, wc.benchmark) in wf.judged_pairs(config, judge):
        return {"calls": f"{R}/evaluation/judge_calls.{judge}.json"}
    return {}


def _judge_calls_pairs(wc):
    """Every pair the judge scores: what its score_judged job passes to the scorer."""
    pairs = []
    for m, b in wf.judged_pairs(config, wc.judge):
        kind = config["benchmarks"][b]["kind"]
        pairs.append({
            "model": m, "benchmark": b, "kind": kind, "version": get_scorer(kind).version,
            "items": f"{R}/data/benchmarks/{b}.jsonl", "predictions": f"{R}/evaluation/{m}/{b}/predictions.jsonl",
            "out": f"{R}/evaluation/{m}/{b}/score.json", "settings": wf.scorer_settings(config, b),
        })  # fmt: skip
    return pairs


def _judge_calls_inputs(wc):
    pairs = _judge_calls_pairs(wc)
    inputs = {"benchmark_items": sorted({p["items"] for p in pairs})}
    inputs["predictions"] = [p["predictions"] for p in pairs]
    assets = set()
    for b in sorted({p["benchmark"] for p in pairs}):
        extra = wf.judge_inputs(config, b)  # the judge's weights and any judge assets
        assets |= set(extra.pop("judge_assets", []))
        inputs |= extra
    return inputs | ({"judge_assets": sorted(assets)} if assets else {})


def _score_files(wildcards=None):
    return [f"{R}/evaluation/{m}/{b}/score.json" for m, b in wf.evaluations(config)]


# Analysis (rules/analysis.smk): each table and figure reads the score files of its own students only.


def _main_score_files(wildcards=None):
    return ai.score_paths(config, ai.main_students(config))


def _ablation_score_files(wildcards=None):
    return ai.score_paths(config, ai.ablation_students(config))


def _cost_score_files(wildcards=None):
    return ai.score_paths(config, ai.cost_students(config))


def _seed_score_files(wildcards=None):
    return sv.score_paths(config)


def _cost_ledgers(wildcards=None):
    return ai.stats_paths(config, ai.cost_students(config))


def _main_ledgers(wildcards=None):
    return ai.stats_paths(config, ai.main_students(config))


def _problem_solving_files(wildcards=None):
    ai.check_problem_solving(config)
    return ai.problem_solving_score_paths(config)


def _problem_solving_files_if_any(wildcards=None):
    return ai.problem_solving_score_paths(config) if not ai.problem_solving_missing(config) else []


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
    return ai.intrinsic_paths(config)


def _intrinsic_set(wc):
    return f"{R}/generation/{wc.generator}/{wc.domain}/{wc.method}/{wc.variant}/n{wc.size}.jsonl"


def _intrinsic_judge_spec(wc):
    return config["judges"][ai.intrinsic_judges(config)[wc.judge]["name"]]


def _intrinsic_judge_inputs(wc):
    """A generated set, the rubrics and, for a local judge (wildcard `judge`: its metric suffix), its weights."""
    inputs = {"data": _intrinsic_set(wc)} | ai.rubric_paths(config)
    spec = _intrinsic_judge_spec(wc)
    if wf.is_local(spec):
        inputs["judge_model"] = wf.model_dir(config, spec["model"])
    if wc.judge in ai.one_job_judges(config):  # the calls are made, the job reads them from its store
        inputs["calls"] = f"{A}/intrinsic/judge_calls.{wc.judge}.json"
    return inputs


def _intrinsic_judge_sets(wc):
    """Every set an intrinsic judge grades: its data, wildcards and the output of its own job."""
    sets = []
    for s in ai.intrinsic_sets(config):
        names = vars(s) | {"judge": wc.judge}
        out = INTR.format(**names) + f".judge.{wc.judge}.json"
        sets.append({"data": _intrinsic_set(s), "set_meta": vars(s), "out": out})
    return sets


def _intrinsic_judge_calls_inputs(wc):
    """Every set's data, the rubrics and the local judge's weights."""
    spec = _intrinsic_judge_spec(wc)
    inputs = {"data": [s["data"] for s in _intrinsic_judge_sets(wc)]} | ai.rubric_paths(config)
    return inputs | {"judge_model": wf.model_dir(config, spec["model"])}


def _intrinsic_judge_gpus(wc):
    """A vLLM judge's tensor-parallel GPUs; a transformers judge asks for none (it runs where it lands)."""
    spec = _intrinsic_judge_spec(wc)
    return spec.get("tensor_parallel_size", 1) if spec["backend"] == "vllm" else 0


def _intrinsic_model_inputs(wc):
    inputs = {"data": _intrinsic_set(wc)}
    params = ai.intrinsic_model_params(config)
    if params["perplexity"]:
        inputs["perplexity_model"] = wf.model_dir(config, params["perplexity"]["model"])
    if params["reward"]:
        inputs["reward_model"] = ai.reward_model_dir(config)
    return inputs


def _labels(item):
    """Report labels of a table or figure: its name and its lineage record, when one was written."""

    def labels(wildcards, output):
        import os

        lineage = f"{output[0]}.lineage.md"
        return {"item": item, "lineage": lineage if os.path.exists(lineage) else "none"}

    return labels
