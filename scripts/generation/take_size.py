from agorabench.generation.run import take_prefix
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = take_prefix(smk.input[0], smk.output[0], int(smk.wildcards.size))
