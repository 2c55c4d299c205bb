from agorabench.analysis.stage import intrinsic_models
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
perplexity, reward = smk.params.perplexity, smk.params.reward
if perplexity:
    perplexity = dict(perplexity) | {"model_dir": smk.input.perplexity_model}
if reward:
    reward = dict(reward) | {"model_dir": smk.input.reward_model}

with job(smk) as j:
    j.counts = intrinsic_models(
        smk.input.data,
        set_meta=dict(smk.wildcards.items()),
        perplexity=perplexity,
        reward=reward,
        diversity=smk.params.diversity,
        disabled=smk.params.disabled,
        max_instances=smk.params.max_instances,
        out_path=smk.output[0],
    )
