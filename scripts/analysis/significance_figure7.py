from agorabench.analysis.study import StudyInputs
from agorabench.analysis.uncertainty import figure7_significance
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
inputs = StudyInputs.from_rule(smk.input, smk.params)
with job(smk) as j:
    j.counts = figure7_significance(inputs, csv_path=smk.output.csv, md_path=smk.output.md)
