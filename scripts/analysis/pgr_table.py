from agorabench.analysis.stage import pgr_tables
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = pgr_tables(
        scores_csv=smk.input.scores,
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        main=smk.params.main,
        long_path=smk.output.long,
        csv_path=smk.output.csv,
        md_path=smk.output.md,
        tex_path=smk.output.tex,
        bootstrap=smk.params.bootstrap,
    )
