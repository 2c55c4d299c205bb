from agorabench.analysis.uncertainty import significance_tables
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = significance_tables(
        scores_csv=smk.input.scores,
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        main=smk.params.main,
        spec=smk.params.bootstrap,
        csv_path=smk.output.csv,
        md_path=smk.output.md,
    )
