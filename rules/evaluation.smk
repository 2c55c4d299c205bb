# Evaluation: predictions of every student (on its domain's benchmarks), S_0 and S_ref (on all), then one
# score file per (model, benchmark). Judge calls are cached by content beside the score.

EVAL = f"{R}/evaluation/{{model}}/{{benchmark}}"


# One inference job per model (all of its benchmarks, one engine start): a rule per benchmark set, as a
# rule's outputs cannot depend on a wildcard (agorabench.workflow.prediction_sets). The first output,
# predictions.json (counts per benchmark), holds the job record; each benchmark keeps predictions.jsonl
# and its call store beside it, so a killed job resumes without repeating a finished answer.
for _set, _benches in wf.prediction_sets(config).items():

    rule:
        name:
            f"predict_{_set}"
        input:
            benchmark_items=[f"{R}/data/benchmarks/{b}.jsonl" for b in _benches],
            model=lambda wc: wf.checkpoint_dir(config, wc.model),
        output:
            summary=f"{R}/evaluation/{{model}}/predictions.json",
            predictions=[f"{R}/evaluation/{{model}}/{b}/predictions.jsonl" for b in _benches],
        log:
            f"{R}/logs/predict/{{model}}.log",
        benchmark:
            f"{R}/benchmarks/predict_{_set}/{{model}}.tsv"
        wildcard_constraints:
            model=wf.prediction_models_regex(_set),
        priority: JUDGED if set(_benches) & set(wf.judged(config)) else 0
        conda:
            "../envs/vllm.yaml"
        threads: 8  # capped at --cores locally; torch uses exactly these
        resources:
            # evaluation.gpus when set (either backend); otherwise 1 for vLLM, 0 for transformers on CPU
            gpu=config["evaluation"].get("gpus", 1 if config["evaluation"]["backend"] == "vllm" else 0),
        params:
            benchmarks=_benches,
            sampling={b: wf.eval_sampling(config, config["benchmarks"][b]["domain"]) for b in _benches},
            backend=config["evaluation"]["backend"],
        script:
            "../scripts/evaluation/predict.py"


rule score:
    input:
        benchmark_items=f"{R}/data/benchmarks/{{benchmark}}.jsonl",
        predictions=f"{EVAL}/predictions.jsonl",
    output:
        f"{EVAL}/score.json",
    log:
        f"{R}/logs/score/{{model}}/{{benchmark}}.log",
    wildcard_constraints:
        benchmark=_alt(wf.unjudged(config)),
    conda:
        "../envs/evaluation.yaml"
    threads: 8  # capped at --cores locally; torch uses exactly these
    params:
        kind=lambda wc: config["benchmarks"][wc.benchmark]["kind"],
        scorer_version=_scorer_version,
        settings=lambda wc: wf.scorer_settings(config, wc.benchmark),
    script:
        "../scripts/evaluation/score.py"


rule score_judged:
    input:
        unpack(
            lambda wc: {
                "benchmark_items": f"{R}/data/benchmarks/{wc.benchmark}.jsonl",
                "predictions": f"{R}/evaluation/{wc.model}/{wc.benchmark}/predictions.jsonl",
            }
            | wf.judge_inputs(config, wc.benchmark)
            | _judge_calls_input(wc)
        ),
    output:
        f"{EVAL}/score.json",
    log:
        f"{R}/logs/score/{{model}}/{{benchmark}}.log",
    benchmark:
        f"{R}/benchmarks/score_judged/{{model}}/{{benchmark}}.tsv"
    wildcard_constraints:
        benchmark=_alt(wf.judged(config)),
    conda:
        "../envs/evaluation.yaml"
    threads: 8  # capped at --cores locally; torch uses exactly these
    params:
        kind=lambda wc: config["benchmarks"][wc.benchmark]["kind"],
        scorer_version=_scorer_version,
        settings=lambda wc: wf.scorer_settings(config, wc.benchmark),
        judge=lambda wc: wf.judge_params(config, wc.benchmark),
    script:
        "../scripts/evaluation/score.py"


# With `evaluation.one_job_per_judge`, one job per local judge makes its calls for every judged (model,
# benchmark) pair (one model load) into each pair's call store; each score_judged job then reads them.
rule judge_calls:
    input:
        unpack(_judge_calls_inputs),
    output:
        f"{R}/evaluation/judge_calls.{{judge}}.json",
    log:
        f"{R}/logs/judge_calls/{{judge}}.log",
    benchmark:
        f"{R}/benchmarks/judge_calls/{{judge}}.tsv"
    wildcard_constraints:
        judge=_alt(wf.one_job_judges(config)),
    priority: JUDGED
    conda:
        "../envs/evaluation.yaml"
    threads: 8  # capped at --cores locally; torch uses exactly these
    params:
        pairs=_judge_calls_pairs,
        scorer_versions=lambda wc: sorted({p["kind"] + p["version"] for p in _judge_calls_pairs(wc)}),
    script:
        "../scripts/evaluation/judge_calls.py"


# Table 7 measured (analysis.problem_solving.source: generators): each generator answers every benchmark
# itself, through its own backend, with the students' prompts and sampling; `score` / `score_judged` score
# it as model `generators/<generator>`. One rule for API generators (network), one for local ones (GPUs).
for _kind, _gens in (("api", wf.api_generators(config)), ("local", wf.local_generators(config))):

    rule:
        name:
            f"predict_generator_{_kind}"
        input:
            unpack(_generator_eval_inputs),
        output:
            summary=f"{R}/evaluation/generators/{{generator}}/predictions.json",
            predictions=[
                f"{R}/evaluation/generators/{{generator}}/{b}/predictions.jsonl"
                for b in config["benchmarks"]
            ],
        log:
            f"{R}/logs/predict/generators/{{generator}}.log",
        benchmark:
            f"{R}/benchmarks/predict_generator_{_kind}/{{generator}}.tsv"
        wildcard_constraints:
            generator=_alt(_gens),
        conda:
            "../envs/vllm.yaml"
        threads: 8  # capped at --cores locally; torch uses exactly these
        resources:
            gpu=lambda wc: _generator_eval_gpus(wc.generator),
        params:
            benchmarks=list(config["benchmarks"]),
            sampling={b: wf.eval_sampling(config, spec["domain"]) for b, spec in config["benchmarks"].items()},
            llm=lambda wc: {k: config["generators"][wc.generator][k] for k in ("backend", "model")},
        script:
            "../scripts/analysis/predict_generator.py"
