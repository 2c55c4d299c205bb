from agorabench.analysis.stage import pgr_tables
from agorabench.analysis.study import StudyInputs
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
inputs = StudyInputs.from_rule(smk.input, smk.params)
with job(smk) as j:
    out = smk.output
    j.counts = pgr_tables(inputs, long_path=out.long, csv_path=out.csv, md_path=out.md, tex_path=out.tex)
