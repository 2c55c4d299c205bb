from agorabench.analysis.stage import figure4
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = figure4(
        score_paths=list(smk.input.scores),
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        main=smk.params.main,
        problem_solving=smk.params.problem_solving,
        problem_solving_scores=list(smk.input.problem_solving),
        png_path=smk.output.png,
        pdf_path=smk.output.pdf,
        points_csv=smk.output.points,
        fits_csv=smk.output.fits,
        note=smk.params.note,
    )
