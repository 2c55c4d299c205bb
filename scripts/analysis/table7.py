from agorabench.analysis.stage import table7
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = table7(
        problem_solving=smk.params.problem_solving,
        problem_solving_scores=list(smk.input),
        benchmarks=smk.params.benchmarks,
        generators=smk.params.generators,
        csv_path=smk.output.csv,
        md_path=smk.output.md,
        tex_path=smk.output.tex,
        paper_csv_path=smk.output.paper,
    )
