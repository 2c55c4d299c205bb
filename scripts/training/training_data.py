from agorabench.provenance import job
from agorabench.training.data import assemble_training_data

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = assemble_training_data(smk.input.generated, smk.input.get("seeds"), smk.output[0])
