from agorabench.analysis.inputs import generator_model_key
from agorabench.analysis.problem_solving import predict_generator
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
gen = smk.wildcards.generator
# Operational settings (concurrency, rate limits, batch size) come from the config, not from params.
spec = dict(smk.config["generators"][gen])
if "model" in smk.input.keys():  # noqa: SIM118 - Namedlist `in` tests values, not names
    spec["model_dir"] = smk.input.model

with job(smk) as j:
    j.counts = predict_generator(
        generator=gen,
        model_key=generator_model_key(gen),
        backend_spec=spec,
        benchmarks=smk.params.benchmarks,
        items=list(smk.input.benchmark_items),
        outputs=list(smk.output.predictions),
        sampling=smk.params.sampling,
        summary_path=smk.output.summary,
    )
