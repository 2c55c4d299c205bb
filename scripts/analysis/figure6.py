from agorabench.analysis.stage import figure6
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = figure6(
        list(smk.input.intrinsic),
        score_paths=list(smk.input.scores),
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        main=smk.params.main,
        problem_solving=smk.params.problem_solving,
        problem_solving_scores=list(smk.input.problem_solving),
        components=smk.params.components,
        png_path=smk.output.png,
        pdf_path=smk.output.pdf,
        fit_csv=smk.output.fit,
        note=smk.params.note,
    )
