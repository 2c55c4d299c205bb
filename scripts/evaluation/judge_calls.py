from agorabench.evaluation.stage import judge_calls
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
# The judge's operational settings come from the config, as in score_judged.
judge = dict(smk.config["judges"][smk.wildcards.judge])
if "judge_model" in smk.input.keys():  # noqa: SIM118 - Namedlist `in` tests values
    judge["model_dir"] = smk.input.judge_model

with job(smk) as j:
    j.counts = judge_calls(
        list(smk.params.pairs), judge_spec=judge, judge_name=smk.wildcards.judge, out_path=smk.output[0]
    )
