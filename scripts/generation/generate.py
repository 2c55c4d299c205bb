from agorabench.generation.stage import run_generation
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
wc = smk.wildcards
# Operational settings (concurrency, rate limits, batch size) come from the config, not from params,
# so that changing them does not rerun finished generations.
spec = dict(smk.config["generators"][wc.generator])
if "model" in smk.input.keys():  # noqa: SIM118 - Namedlist `in` tests values, not names
    spec["model_dir"] = smk.input.model

with job(smk) as j:
    j.counts = run_generation(
        generator=wc.generator,
        backend_spec=spec,
        params=smk.params.generation,
        domain=wc.domain,
        method=wc.method,
        variant=wc.variant,
        seeds_path=smk.input.seeds,
        template_path=smk.input.template,
        themes_path=smk.input.themes,
        student_dir=smk.input.student,
        out_path=smk.output.data,
        stats_path=smk.output.stats,
        system_prompt=smk.config["generation"].get("system_prompt"),
        attempts_per_round=smk.config["generation"].get("attempts_per_round", 1),
    )
