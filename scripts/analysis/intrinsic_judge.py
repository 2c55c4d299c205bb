from agorabench.analysis.stage import intrinsic_judge
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
# The judge's operational settings (concurrency, keys' variable names) come from the config, as in scoring.
judge = smk.params.judge
spec = dict(smk.config["judges"][judge["name"]])
if "judge_model" in smk.input.keys():  # noqa: SIM118 - Namedlist `in` tests values
    spec["model_dir"] = smk.input.judge_model

with job(smk) as j:
    j.counts = intrinsic_judge(
        smk.input.data,
        set_meta={k: v for k, v in smk.wildcards.items() if k != "judge"},
        suffix=smk.wildcards.judge,
        judge={"name": judge["name"], "spec": spec, "sampling": judge.get("sampling")},
        rubrics={k: smk.input[k] for k in smk.params.rubric_keys},
        official=smk.params.official,
        sampling=smk.params.sampling,
        verdict=smk.params.verdict,
        max_instances=smk.params.max_instances,
        out_path=smk.output[0],
    )
