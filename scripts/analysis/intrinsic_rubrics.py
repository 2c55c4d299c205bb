from agorabench.analysis.intrinsic import obtain_official_rubrics
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = obtain_official_rubrics(smk.params.spec, {k: smk.output[k] for k in ("evaluators", "prompts")})
