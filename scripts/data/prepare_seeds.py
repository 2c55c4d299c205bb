from agorabench.data.prepare import prepare_seeds
from agorabench.provenance import job

with job(snakemake) as j:  # noqa: F821 - injected by Snakemake
    j.counts = prepare_seeds(snakemake.params.source, snakemake.output[0])  # noqa: F821
