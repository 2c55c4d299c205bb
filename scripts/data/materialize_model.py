from agorabench.models import materialize_model
from agorabench.provenance import job

with job(snakemake) as j:  # noqa: F821 - injected by Snakemake
    j.counts = materialize_model(snakemake.wildcards.model_name, snakemake.params.spec, snakemake.output[0])  # noqa: F821
