# Evaluation: predictions of every student (on its domain's benchmarks), S_0 and S_ref (on all), then one
# score file per (model, benchmark). Judge calls are cached by content beside the score.

EVAL = f"{R}/evaluation/{{model}}/{{benchmark}}"


rule predict:
    input:
        benchmark_items=f"{R}/data/benchmarks/{{benchmark}}.jsonl",
        model=lambda wc: wf.checkpoint_dir(config, wc.model),
    output:
        f"{EVAL}/predictions.jsonl",
    params:
        sampling=lambda wc: wf.eval_sampling(config, config["benchmarks"][wc.benchmark]["domain"]),
        backend=config["evaluation"]["backend"],
    resources:
        # evaluation.gpus when set (either backend); otherwise 1 for vLLM, 0 for transformers on CPU
        gpu=config["evaluation"].get("gpus", 1 if config["evaluation"]["backend"] == "vllm" else 0),
    threads: 8  # capped at --cores locally; torch uses exactly these
    log:
        f"{R}/logs/predict/{{model}}/{{benchmark}}.log",
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/evaluation/predict.py"


rule score:
    input:
        benchmark_items=f"{R}/data/benchmarks/{{benchmark}}.jsonl",
        predictions=f"{EVAL}/predictions.jsonl",
    output:
        f"{EVAL}/score.json",
    params:
        kind=lambda wc: config["benchmarks"][wc.benchmark]["kind"],
        settings=lambda wc: wf.scorer_settings(config, wc.benchmark),
    wildcard_constraints:
        benchmark=_alt(wf.unjudged(config)),
    threads: 8  # capped at --cores locally; torch uses exactly these
    log:
        f"{R}/logs/score/{{model}}/{{benchmark}}.log",
    conda:
        "../envs/evaluation.yaml"
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
        ),
    output:
        f"{EVAL}/score.json",
    params:
        kind=lambda wc: config["benchmarks"][wc.benchmark]["kind"],
        settings=lambda wc: wf.scorer_settings(config, wc.benchmark),
        judge=lambda wc: wf.judge_params(config, wc.benchmark),
    wildcard_constraints:
        benchmark=_alt(wf.judged(config)),
    threads: 8  # capped at --cores locally; torch uses exactly these
    log:
        f"{R}/logs/score/{{model}}/{{benchmark}}.log",
    conda:
        "../envs/evaluation.yaml"
    script:
        "../scripts/evaluation/score.py"
