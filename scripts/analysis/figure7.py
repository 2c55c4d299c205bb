from agorabench.analysis.stage import figure7
from agorabench.analysis.study import StudyInputs
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
inputs = StudyInputs.from_rule(smk.input, smk.params)
with job(smk) as j:
    out = smk.output
    j.counts = figure7(
        inputs, stats_paths=list(smk.input.ledgers), png_path=out.png, pdf_path=out.pdf, csv_path=out.csv
    )
