# Generation: each generator writes one pool of instances per (setting, meta-prompt variant); the sizes of
# the cost study are prefixes of that pool. Calls go through a durable store beside the pool
# (calls.jsonl, deliberately not a declared output, so a failed or killed job keeps what it paid for).
# Only prompt-defining values are params: changing concurrency or rate limits reruns nothing.

GEN = f"{R}/generation/{{generator}}/{{domain}}/{{method}}/{{variant}}"


rule generate_local:
    input:
        unpack(_generation_inputs),
    output:
        data=f"{GEN}/pool.jsonl",
        stats=f"{GEN}/pool.stats.json",
    log:
        f"{R}/logs/generate/{{generator}}/{{domain}}/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/generate_local/{{generator}}/{{domain}}/{{method}}/{{variant}}.tsv"
    wildcard_constraints:
        generator=_alt(wf.local_generators(config)),
    priority: CHAIN
    conda:
        "../envs/vllm.yaml"
    threads: 8  # capped at --cores locally; torch uses exactly these
    resources:
        gpu=lambda wc: (0 if wc.generator in wf.one_job_generators(config) else _generator_gpus(wc)),
    params:
        generation=_generation_params,
    script:
        "../scripts/generation/generate.py"


# With `generation.one_job_per_generator`, one job per local generator makes the calls of all its pools
# (their retry rounds side by side, one batch, one model load) into each pool's call store; each pool's
# generate_local job then replays its store without loading the model.
rule generate_settings:
    input:
        unpack(_generation_settings_inputs),
    output:
        f"{R}/generation/{{generator}}/settings.json",
    log:
        f"{R}/logs/generate_settings/{{generator}}.log",
    benchmark:
        f"{R}/benchmarks/generate_settings/{{generator}}.tsv"
    wildcard_constraints:
        generator=_alt(wf.one_job_generators(config)),
    priority: CHAIN
    conda:
        "../envs/vllm.yaml"
    threads: 8
    resources:
        gpu=_generator_gpus,
    params:
        pools=_generation_settings_params,
    script:
        "../scripts/generation/generate_settings.py"


rule generate_api:
    input:
        unpack(_generation_inputs),
    output:
        data=f"{GEN}/pool.jsonl",
        stats=f"{GEN}/pool.stats.json",
    log:
        f"{R}/logs/generate/{{generator}}/{{domain}}/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/generate_api/{{generator}}/{{domain}}/{{method}}/{{variant}}.tsv"
    wildcard_constraints:
        generator=_alt(wf.api_generators(config)),
    conda:
        "../envs/generation.yaml"
    params:
        generation=_generation_params,
    script:
        "../scripts/generation/generate.py"


rule take_size:
    input:
        f"{GEN}/pool.jsonl",
    output:
        f"{GEN}/n{{size}}.jsonl",
    log:
        f"{R}/logs/take_size/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}.log",
    priority: CHAIN
    conda:
        "../envs/generation.yaml"
    script:
        "../scripts/generation/take_size.py"


# Provenance pages built from the jobs' records: a data card per generated set (DATACARD.md beside the
# pool) and, for tables and figures, `<output>.lineage.md` (every upstream job and file). `all` builds
# the cards through `provenance_all`; `lineage_all` (or any `<output>.lineage.md` target) the pages.


rule data_card:
    input:
        pool=f"{GEN}/pool.jsonl",
        stats=f"{GEN}/pool.stats.json",
        seeds=f"{R}/data/seeds/{{domain}}/{{method}}.jsonl",
    output:
        f"{GEN}/DATACARD.md",
    log:
        f"{R}/logs/data_card/{{generator}}/{{domain}}/{{method}}/{{variant}}.log",
    conda:
        "../envs/generation.yaml"
    params:
        generator=lambda wc: config["generators"][wc.generator],
        seed_source=lambda wc: config["seeds"][wc.domain][wc.method],
        seeds_in_training=lambda wc: wf.seeds_in_training(config, wc.method),
    script:
        "../scripts/generation/data_card.py"


rule lineage_md:
    input:
        f"{R}/analysis/{{artifact}}",
    output:
        f"{R}/analysis/{{artifact}}.lineage.md",
    log:
        f"{R}/logs/lineage_md/{{artifact}}.log",
    wildcard_constraints:
        artifact=r".+\.(csv|md|tex|json|png|pdf|svg)",
    conda:
        "../envs/generation.yaml"
    script:
        "../scripts/provenance/lineage_md.py"


rule provenance_all:
    input:
        [f"{R}/generation/{g}/{d}/{m}/{v}/DATACARD.md" for g, d, m, v in wf.generated_sets(config)],


rule lineage_all:
    input:
        lambda wc: [f"{path}.lineage.md" for path in rules.analysis_all.input],


localrules:
    data_card,
    lineage_md,
    provenance_all,
    lineage_all,
