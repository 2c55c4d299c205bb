from agorabench.analysis.stage import table8
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = table8(
        list(smk.input),
        domains=smk.params.domains,
        csv_path=smk.output.csv,
        md_path=smk.output.md,
        tex_path=smk.output.tex,
        paper_csv_path=smk.output.paper,
        note=smk.params.note,
    )
