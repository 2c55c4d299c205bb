from agorabench.data.seed_sets import build_seed_set
from agorabench.provenance import job

smk = snakemake  # noqa: F821 - injected by Snakemake
with job(smk) as j:
    manifest = build_seed_set(
        smk.params.spec,
        smk.output.seeds,
        smk.output.manifest,
        where=f"seeds.{smk.wildcards.domain}.{smk.wildcards.method}",
    )
    j.counts = {"records": manifest["records"]}
