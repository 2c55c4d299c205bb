from agorabench.analysis.seeds import seed_variance
from agorabench.analysis.study import StudyInputs
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
inputs = StudyInputs.from_rule(smk.input, smk.params)
with job(smk) as j:
    out = smk.output
    j.counts = seed_variance(
        inputs,
        csv_path=out.csv,
        per_seed_path=out.per_seed,
        md_path=out.md,
        png_path=out.png,
        pdf_path=out.pdf,
    )
