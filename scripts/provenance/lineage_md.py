from agorabench.provenance import job
from agorabench.provenance.lineage import write_lineage_md

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = write_lineage_md(smk.input[0], out=smk.output[0])
