from agorabench.evaluation.assets import obtain_asset
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = obtain_asset(smk.params.spec, smk.output[0], f"evaluation.assets.{smk.wildcards.asset}")
