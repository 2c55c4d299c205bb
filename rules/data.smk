# Data: model weights, seed sets and benchmark items, normalised into the project's record formats.


rule materialize_model:
    output:
        directory(f"{R}/models/{{model_name}}"),
    params:
        spec=lambda wc: config["models"][wc.model_name],
    log:
        f"{R}/logs/materialize_model/{{model_name}}.log",
    conda:
        "../envs/training.yaml"
    script:
        "../scripts/data/materialize_model.py"


rule prepare_seeds:
    output:
        f"{R}/data/seeds/{{domain}}/{{method}}.jsonl",
    params:
        source=lambda wc: config["seeds"][wc.domain][wc.method],
    log:
        f"{R}/logs/prepare_seeds/{{domain}}/{{method}}.log",
    conda:
        "../envs/generation.yaml"
    script:
        "../scripts/data/prepare_seeds.py"


rule prepare_reference_data:
    output:
        f"{R}/data/reference/sft.jsonl",
    params:
        source=lambda wc: config["student"]["reference"]["train_on"],
    log:
        f"{R}/logs/prepare_reference_data.log",
    conda:
        "../envs/generation.yaml"
    script:
        "../scripts/data/prepare_seeds.py"


rule prepare_benchmark:
    output:
        f"{R}/data/benchmarks/{{benchmark}}.jsonl",
    params:
        spec=lambda wc: config["benchmarks"][wc.benchmark],
    log:
        f"{R}/logs/prepare_benchmark/{{benchmark}}.log",
    conda:
        "../envs/evaluation.yaml"
    script:
        "../scripts/data/prepare_benchmark.py"
