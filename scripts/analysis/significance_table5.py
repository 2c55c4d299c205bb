from agorabench.analysis.uncertainty import table5_significance
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = table5_significance(
        score_paths=list(smk.input),
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        ablation=smk.params.ablation,
        spec=smk.params.bootstrap,
        csv_path=smk.output.csv,
    )
