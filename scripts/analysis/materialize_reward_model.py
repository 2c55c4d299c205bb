from agorabench.models import materialize_model
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = materialize_model(smk.params.name, dict(smk.params.spec), smk.output[0])
