from agorabench.provenance import job
from agorabench.training.stage import train_all

smk = snakemake  # noqa: F821 - injected by Snakemake
hparams = dict(smk.params.hparams, chat_template=smk.params.chat_template)
with job(smk) as j:
    j.counts = train_all(
        models=smk.params.models,
        model_dir=smk.input.base,
        hparams=hparams,
        summary_path=smk.output[0],
    )
