from agorabench.analysis.seeds import seed_variance
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = seed_variance(
        score_paths=list(smk.input),
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        spec=smk.params.bootstrap,
        csv_path=smk.output.csv,
        per_seed_path=smk.output.per_seed,
        md_path=smk.output.md,
        png_path=smk.output.png,
        pdf_path=smk.output.pdf,
    )
