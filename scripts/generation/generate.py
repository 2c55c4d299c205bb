from agorabench.generation.stage import GenerationTask, run_generation
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
# What defines the pool is in params.generation; the backend spec's operational settings (concurrency,
# rate limits, batch size) come from the config, so that changing them does not rerun finished pools.
spec = smk.config["generators"][smk.wildcards.generator]
named = [dict(names.items()) for names in (smk.wildcards, smk.input, smk.output)]
with job(smk) as j:
    j.counts = run_generation(GenerationTask.from_rule(*named, smk.params.generation, spec))
