from agorabench.evaluation.stage import score_benchmark
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
judge = None
if "judge" in smk.params.keys():  # noqa: SIM118 - Namedlist `in` tests values  # judged benchmarks: the judge's operational settings come from config
    judge = dict(smk.config["judges"][smk.params.judge["name"]])
    if "judge_model" in smk.input.keys():  # noqa: SIM118
        judge["model_dir"] = smk.input.judge_model

with job(smk) as j:
    j.counts = score_benchmark(
        model=smk.wildcards.model,
        benchmark=smk.wildcards.benchmark,
        kind=smk.params.kind,
        items_path=smk.input.benchmark_items,
        predictions_path=smk.input.predictions,
        out_path=smk.output[0],
        settings=dict(smk.params.settings),
        judge_spec=judge,
        judge_name=smk.params.judge["name"] if judge else "judge",
    )
