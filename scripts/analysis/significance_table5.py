from agorabench.analysis.study import StudyInputs
from agorabench.analysis.uncertainty import table5_significance
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
inputs = StudyInputs.from_rule(smk.input, smk.params)
with job(smk) as j:
    j.counts = table5_significance(inputs, ablation=smk.params.ablation, csv_path=smk.output.csv)
