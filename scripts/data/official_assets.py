from agorabench.data.assets import obtain_assets
from agorabench.provenance import job

with job(snakemake) as j:  # noqa: F821 - injected by Snakemake
    j.counts = obtain_assets(snakemake.params.spec, snakemake.params.out_dir)  # noqa: F821
