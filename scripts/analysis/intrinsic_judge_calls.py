from agorabench.analysis.stage import intrinsic_judge_calls
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
judge = smk.params.judge
spec = dict(smk.config["judges"][judge["name"]])
if "judge_model" in smk.input.keys():  # noqa: SIM118 - Namedlist `in` tests values
    spec["model_dir"] = smk.input.judge_model

with job(smk) as j:
    j.counts = intrinsic_judge_calls(
        smk.params.sets,
        judge={"name": judge["name"], "spec": spec, "sampling": judge.get("sampling")},
        rubrics={k: smk.input[k] for k in smk.params.rubric_keys},
        official=smk.params.official,
        sampling=smk.params.sampling,
        verdict=smk.params.verdict,
        max_instances=smk.params.max_instances,
        out_path=smk.output[0],
    )
