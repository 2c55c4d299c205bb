from agorabench.analysis.stage import figure_pgr
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = figure_pgr(
        smk.input[0], main=smk.params.main, png_path=smk.output.png, pdf_path=smk.output.pdf
    )
