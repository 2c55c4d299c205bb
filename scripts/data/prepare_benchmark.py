from agorabench.data.prepare import prepare_benchmark
from agorabench.provenance import job

with job(snakemake) as j:  # noqa: F821 - injected by Snakemake
    j.counts = prepare_benchmark(snakemake.wildcards.benchmark, snakemake.params.spec, snakemake.output[0])  # noqa: F821
