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
    params:
        generation=_generation_params,
    wildcard_constraints:
        generator=_alt(wf.local_generators(config)),
    resources:
        gpu=lambda wc: config["generators"][wc.generator].get("tensor_parallel_size", 1)
        if config["generators"][wc.generator]["backend"] == "vllm"
        else 0,
    threads: 8  # capped at --cores locally; torch uses exactly these
    log:
        f"{R}/logs/generate/{{generator}}/{{domain}}/{{method}}/{{variant}}.log",
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/generation/generate.py"


rule generate_api:
    input:
        unpack(_generation_inputs),
    output:
        data=f"{GEN}/pool.jsonl",
        stats=f"{GEN}/pool.stats.json",
    params:
        generation=_generation_params,
    wildcard_constraints:
        generator=_alt(wf.api_generators(config)),
    log:
        f"{R}/logs/generate/{{generator}}/{{domain}}/{{method}}/{{variant}}.log",
    conda:
        "../envs/generation.yaml"
    script:
        "../scripts/generation/generate.py"


rule take_size:
    input:
        f"{GEN}/pool.jsonl",
    output:
        f"{GEN}/n{{size}}.jsonl",
    log:
        f"{R}/logs/take_size/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}.log",
    conda:
        "../envs/generation.yaml"
    script:
        "../scripts/generation/take_size.py"
