from agorabench.analysis.stage import figure5
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = figure5(
        list(smk.input.intrinsic),
        problem_solving=smk.params.problem_solving,
        problem_solving_scores=list(smk.input.problem_solving),
        benchmarks=smk.params.benchmarks,
        components=smk.params.components,
        png_path=smk.output.png,
        pdf_path=smk.output.pdf,
        variance_csv=smk.output.variance,
        loadings_csv=smk.output.loadings,
        note=smk.params.note,
    )
