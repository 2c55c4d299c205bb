from agorabench.analysis.stage import scores_table
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = scores_table(list(smk.input), csv_path=smk.output.csv, md_path=smk.output.md)
