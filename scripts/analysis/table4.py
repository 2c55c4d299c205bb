from agorabench.analysis.stage import table4
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = table4(
        list(smk.input.intrinsic),
        problem_solving=smk.params.problem_solving,
        problem_solving_scores=list(smk.input.problem_solving),
        benchmarks=smk.params.benchmarks,
        components=smk.params.components,
        csv_path=smk.output.csv,
        md_path=smk.output.md,
        note=smk.params.note,
    )
