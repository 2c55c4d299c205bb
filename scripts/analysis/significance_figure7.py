from agorabench.analysis.uncertainty import figure7_significance
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = figure7_significance(
        score_paths=list(smk.input),
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        spec=smk.params.bootstrap,
        csv_path=smk.output.csv,
        md_path=smk.output.md,
    )
