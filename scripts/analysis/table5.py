from agorabench.analysis.stage import table5
from agorabench.analysis.study import StudyInputs
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
inputs = StudyInputs.from_rule(smk.input, smk.params)
with job(smk) as j:
    j.counts = table5(
        inputs,
        ablation=smk.params.ablation,
        origins=smk.params.origins,
        csv_path=smk.output.csv,
        md_path=smk.output.md,
        tex_path=smk.output.tex,
        paper_csv_path=smk.output.paper,
    )
