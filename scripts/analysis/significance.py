from agorabench.analysis.study import StudyInputs
from agorabench.analysis.uncertainty import significance_tables
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
inputs = StudyInputs.from_rule(smk.input, smk.params)
with job(smk) as j:
    j.counts = significance_tables(inputs, csv_path=smk.output.csv, md_path=smk.output.md)
