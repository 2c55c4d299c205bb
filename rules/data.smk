# Data: model weights, seed sets and benchmark items, normalised into the project's record formats.


rule materialize_model:
    output:
        directory(f"{R}/models/{{model_name}}"),
    log:
        f"{R}/logs/materialize_model/{{model_name}}.log",
    conda:
        "../envs/training.yaml"
    params:
        spec=lambda wc: config["models"][wc.model_name],
    script:
        "../scripts/data/materialize_model.py"


rule build_seed_set:
    output:
        seeds=f"{R}/data/seed_sets/{{domain}}/{{method}}.json",
        manifest=f"{R}/data/seed_sets/{{domain}}/{{method}}.manifest.json",
    log:
        f"{R}/logs/build_seed_set/{{domain}}/{{method}}.log",
    conda:
        "../envs/generation.yaml"
    params:
        spec=lambda wc: config["seeds"][wc.domain][wc.method],
    script:
        "../scripts/data/build_seed_set.py"


rule prepare_seeds:
    input:
        unpack(_seed_set_input),
    output:
        f"{R}/data/seeds/{{domain}}/{{method}}.jsonl",
    log:
        f"{R}/logs/prepare_seeds/{{domain}}/{{method}}.log",
    conda:
        "../envs/generation.yaml"
    params:
        source=lambda wc: wf.seed_source(config, wc.domain, wc.method),
    script:
        "../scripts/data/prepare_seeds.py"


rule prepare_reference_data:
    output:
        f"{R}/data/reference/sft.jsonl",
    log:
        f"{R}/logs/prepare_reference_data.log",
    conda:
        "../envs/generation.yaml"
    params:
        source=lambda wc: config["student"]["reference"]["train_on"],
    script:
        "../scripts/data/prepare_seeds.py"


rule prepare_benchmark:
    input:
        assets=lambda wc: wf.asset_inputs(config, config["benchmarks"][wc.benchmark]["source"]),
    output:
        f"{R}/data/benchmarks/{{benchmark}}.jsonl",
    log:
        f"{R}/logs/prepare_benchmark/{{benchmark}}.log",
    conda:
        "../envs/evaluation.yaml"
    params:
        spec=lambda wc: wf.benchmark_spec(config, wc.benchmark),
    script:
        "../scripts/data/prepare_benchmark.py"


# Official judge prompts/configs, alpaca_eval's df_gamed.csv, EvalPlus task files: pinned, sha256-verified
# (agorabench/evaluation/assets.py). Downloads: run it on the submit host or the network partition.
rule obtain_evaluation_asset:
    output:
        f"{R}/data/assets/evaluation/{{asset}}/{{filename}}",
    log:
        f"{R}/logs/obtain_evaluation_asset/{{asset}}/{{filename}}.log",
    wildcard_constraints:
        asset=_alt(config["evaluation"].get("assets") or {}),
        filename="[^/]+",
    conda:
        "../envs/evaluation.yaml"
    params:
        spec=lambda wc: config["evaluation"]["assets"][wc.asset],
    script:
        "../scripts/data/obtain_evaluation_asset.py"


# The official data-agora files the study reads (meta-prompts, run.py's theme lists), at the pinned commit,
# each verified against its sha256 in generation.official.files. Needs the network (or official.local_dir).
rule official_assets:
    output:
        manifest=f"{wf.official_dir(config)}/MANIFEST.json",
        files=wf.official_files(config),
    log:
        f"{R}/logs/official_assets.log",
    conda:
        "../envs/generation.yaml"
    params:
        spec=config["generation"].get("official", {}),
        out_dir=lambda wc, output: os.path.dirname(output.manifest),
    script:
        "../scripts/data/official_assets.py"
