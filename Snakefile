# AgoraBench (Kim et al., 2024) as one DAG: data -> generation -> training -> evaluation -> analysis.
#   snakemake --profile profiles/slurm all                      the paper (config/config.yaml)
#   snakemake --profile profiles/demo all                       the offline demo (make demo)
import os
import re

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from agorabench import workflow as wf

min_version("9.0")


# The paper's config is the default; a --configfile on the command line replaces it (it is not merged,
# so the demo does not inherit the paper's generators).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "config/schema.yaml")
wf.check_config(config)

R = config["results_dir"]


include: "rules/common.smk"


wildcard_constraints:
    generator=_alt(config["generators"]),
    domain=_alt(wf.DOMAINS),
    method=_alt(wf.METHODS),
    variant="[a-z0-9_]+",
    size=r"\d+",
    benchmark=_alt(config["benchmarks"]),
    model_name=_alt(config["models"]),
    model=r"base|reference|students/[^/]+/[^/]+/[^/]+/[^/]+/n\d+(?:_seed\d+)?|generators/[^/]+",


include: "rules/data.smk"
include: "rules/generation.smk"
include: "rules/training.smk"
include: "rules/evaluation.smk"
include: "rules/analysis.smk"


localrules:
    all,
    analysis_all,


rule all:
    default_target: True
    input:
        rules.analysis_all.input,
        rules.provenance_all.input,
        rules.lineage_all.input,


# Rules that need the internet can run on the submit host of a cluster (docs/cluster.md), e.g.
#   AGORABENCH_LOCAL_RULES=generate_api,score_judged,intrinsic_judge_api snakemake --profile profiles/slurm all
_local_rules = [r for r in os.environ.get("AGORABENCH_LOCAL_RULES", "").replace(" ", "").split(",") if r]
if _unknown := sorted(set(_local_rules) - {r.name for r in workflow.rules}):
    raise WorkflowError(f"AGORABENCH_LOCAL_RULES names no rule of this workflow: {', '.join(_unknown)}")
workflow.localrules(*_local_rules)
