from agorabench.provenance import job
from agorabench.training.stage import train_student

smk = snakemake  # noqa: F821 - injected by Snakemake
hparams = dict(smk.params.hparams, chat_template=smk.params.chat_template)
with job(smk) as j:
    j.counts = train_student(
        train_path=smk.input.data,
        model_dir=smk.input.base,
        output_dir=smk.output.model,
        hparams=hparams,
        log_path=smk.output.log_jsonl,
        info_path=smk.output.info,
        plot_path=smk.output.plot,
        trained_by=smk.input.get("trained_by"),
    )
