from agorabench.evaluation.predict import predict, tasks_from
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = predict(
        model_key=smk.wildcards.model,
        model_dir=smk.input.model,
        tasks=tasks_from(
            smk.params.benchmarks,
            list(smk.input.benchmark_items),
            list(smk.output.predictions),
            smk.params.sampling,
        ),
        summary_path=smk.output.summary,
        backend=smk.params.backend,
        batch_size=smk.config["evaluation"].get("batch_size", 16),
        backend_options=smk.config["evaluation"].get("backend_options"),
    )
