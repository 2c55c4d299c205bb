from agorabench.analysis.stage import intrinsic_judge
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
# The judges' operational settings (concurrency, keys' variable names) come from the config, as in scoring.
judges = {}
for suffix, judge in smk.params.judges.items():
    spec = dict(smk.config["judges"][judge["name"]])
    if f"judge_model_{suffix}" in smk.input.keys():  # noqa: SIM118 - Namedlist `in` tests values
        spec["model_dir"] = smk.input[f"judge_model_{suffix}"]
    judges[suffix] = {"name": judge["name"], "spec": spec, "sampling": judge.get("sampling")}

with job(smk) as j:
    j.counts = intrinsic_judge(
        smk.input.data,
        set_meta=dict(smk.wildcards.items()),
        judges=judges,
        rubrics={k: smk.input[k] for k in smk.params.rubric_keys},
        official=smk.params.official,
        sampling=smk.params.sampling,
        max_instances=smk.params.max_instances,
        out_path=smk.output[0],
    )
