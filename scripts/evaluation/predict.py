from agorabench.evaluation.predict import predict
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    j.counts = predict(
        model_key=smk.wildcards.model,
        model_dir=smk.input.model,
        items_path=smk.input.benchmark_items,
        out_path=smk.output[0],
        sampling=smk.params.sampling,
        backend=smk.params.backend,
        batch_size=smk.config["evaluation"].get("batch_size", 16),
    )
