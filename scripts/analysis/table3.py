from agorabench.analysis.stage import table3
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = table3(
        score_paths=list(smk.input.scores),
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        main=smk.params.main,
        problem_solving=smk.params.problem_solving,
        problem_solving_scores=list(smk.input.problem_solving),
        stats_paths=list(smk.input.ledgers),
        prices=smk.params.prices,
        domains=smk.params.domains,
        csv_path=smk.output.csv,
        md_path=smk.output.md,
        tex_path=smk.output.tex,
        paper_csv_path=smk.output.paper,
    )
