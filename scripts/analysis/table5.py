from agorabench.analysis.stage import table5
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = table5(
        score_paths=list(smk.input),
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        ablation=smk.params.ablation,
        csv_path=smk.output.csv,
        md_path=smk.output.md,
        tex_path=smk.output.tex,
        paper_csv_path=smk.output.paper,
        origins=smk.params.origins,
    )
