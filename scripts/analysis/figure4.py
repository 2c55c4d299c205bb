from agorabench.analysis.stage import figure4
from agorabench.analysis.study import StudyInputs
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
inputs = StudyInputs.from_rule(smk.input, smk.params)
with job(smk) as j:
    j.counts = figure4(
        inputs,
        problem_solving=smk.params.problem_solving,
        problem_solving_scores=list(smk.input.problem_solving),
        png_path=smk.output.png,
        pdf_path=smk.output.pdf,
        points_csv=smk.output.points,
        fits_csv=smk.output.fits,
    )
