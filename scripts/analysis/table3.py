from agorabench.analysis.stage import table3
from agorabench.analysis.study import StudyInputs
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
inputs = StudyInputs.from_rule(smk.input, smk.params)
with job(smk) as j:
    j.counts = table3(
        inputs,
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
