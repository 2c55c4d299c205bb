from agorabench.generation.stage import GenerationTask, run_generation_settings
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
# One task per pool of the generator, from the pool's wildcards, path and params and the shared inputs.
spec = smk.config["generators"][smk.wildcards.generator]
with job(smk) as j:
    tasks = GenerationTask.for_settings(smk.params.pools, dict(smk.input.items()), spec)
    j.counts = run_generation_settings(tasks, smk.output[0])
