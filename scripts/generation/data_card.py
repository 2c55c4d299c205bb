from agorabench.provenance import job
from agorabench.provenance.datacard import write_data_card

smk = snakemake  # noqa: F821 - injected by Snakemake
wc = smk.wildcards
with job(smk) as j:
    j.counts = write_data_card(
        pool_path=smk.input.pool,
        stats_path=smk.input.stats,
        seeds_path=smk.input.seeds,
        out_path=smk.output[0],
        generator=wc.generator,
        spec=smk.params.generator,
        seed_source=smk.params.seed_source,
        setting=(wc.domain, wc.method, wc.variant),
        seeds_in_training=smk.params.seeds_in_training,
    )
