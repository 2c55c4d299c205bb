from agorabench.analysis.stage import pgr_vs_paper
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = pgr_vs_paper(smk.input[0], csv_path=smk.output.csv, md_path=smk.output.md)
