from agorabench.analysis.stage import figure7
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = figure7(
        score_paths=list(smk.input.scores),
        students=smk.params.students,
        benchmarks=smk.params.benchmarks,
        eps=smk.params.eps,
        stats_paths=list(smk.input.ledgers),
        png_path=smk.output.png,
        pdf_path=smk.output.pdf,
        csv_path=smk.output.csv,
        note=smk.params.note,
    )
