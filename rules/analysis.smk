# Analysis: scores across models, the PGR table (the paper's Table 2 layout), Tables 3 (cost and abilities),
# 4 (PCA contributions), 5 (meta-prompt ablation), 7 (problem solving), 8 (intrinsic metrics), Figures 4-7,
# each beside the paper's numbers. Every table and figure
# is its own target and reads only its own students' score files (rebuilding one rebuilds only its upstream).
# `snakemake --report report.html` collects them with captions (report/*.rst).

from agorabench.analysis import inputs as ai  # which inputs each table and figure reads
from agorabench.analysis import seeds as sv  # seed variance (experiments.<name>.training_seeds)

A = f"{R}/analysis"
FIG = f"{A}/figures"
INTR = f"{A}/intrinsic/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}"
ENABLED = ai.enabled_targets(config)
ai.check_intrinsic(config)
# seed_variance: some student has a second training seed, or a generator entry repeats another's with
# another generation seed (replicate_of)
SEED_STUDY = bool(wf.extra_replicates(config) or wf.generation_replicates(config))
SIZE_PAIRS = ai.has_size_pairs(config)  # figure7_significance


report: "../report/workflow.rst"


rule scores_table:
    input:
        _score_files,
    output:
        csv=report(
            f"{A}/scores.csv", caption="../report/scores.rst", category="Tables", labels=_labels("Scores")
        ),
        md=f"{A}/scores.md",
    log:
        f"{R}/logs/analysis/scores_table.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/analysis/scores_table.py"


rule pgr_table:
    input:
        scores=f"{A}/scores.csv",
    output:
        long=f"{A}/pgr_long.csv",
        csv=report(
            f"{A}/pgr.csv", caption="../report/table2.rst", category="Tables", labels=_labels("Table 2")
        ),
        md=f"{A}/pgr.md",
        tex=f"{A}/pgr.tex",
    log:
        f"{R}/logs/analysis/pgr_table.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=[vars(s) | {"model": s.path} for s in wf.students(config)],
        benchmarks={b: spec["domain"] for b, spec in config["benchmarks"].items()},
        eps=config["analysis"].get("pgr_eps", 1e-6),
        main=wf.main_experiment(config),
        bootstrap=config["analysis"].get("bootstrap"),  # None: no intervals
    script:
        "../scripts/analysis/pgr_table.py"


rule figure_pgr:
    input:
        f"{A}/pgr_long.csv",
    output:
        png=report(
            f"{FIG}/pgr_by_generator.png",
            caption="../report/figure_pgr.rst",
            category="Figures",
            labels=_labels("PGR by generator"),
        ),
        pdf=f"{FIG}/pgr_by_generator.pdf",
    log:
        f"{R}/logs/analysis/figure_pgr.log",
    conda:
        "../envs/analysis.yaml"
    params:
        main=wf.main_experiment(config),
    script:
        "../scripts/analysis/figure_pgr.py"


# Which Table 2 differences are significant: paired bootstrap over benchmark items, Holm-adjusted
# (agorabench/analysis/uncertainty.py; the details.jsonl beside each score file holds the item verdicts).
rule pgr_significance:
    input:
        scores=f"{A}/scores.csv",
    output:
        csv=report(
            f"{A}/pgr_significance.csv",
            caption="../report/pgr_significance.rst",
            category="Tables",
            labels=_labels("Table 2 significance"),
        ),
        md=f"{A}/pgr_significance.md",
    log:
        f"{R}/logs/analysis/pgr_significance.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=[vars(s) | {"model": s.path} for s in wf.students(config)],
        benchmarks={b: spec["domain"] for b, spec in config["benchmarks"].items()},
        eps=config["analysis"].get("pgr_eps", 1e-6),
        main=wf.main_experiment(config),
        bootstrap=config["analysis"].get("bootstrap"),
    script:
        "../scripts/analysis/significance.py"


rule pgr_vs_paper:
    input:
        f"{A}/pgr.csv",
    output:
        csv=report(
            f"{A}/pgr_vs_paper.csv",
            caption="../report/table2_vs_paper.rst",
            category="Tables",
            labels=_labels("Table 2 vs paper"),
        ),
        md=f"{A}/pgr_vs_paper.md",
    log:
        f"{R}/logs/analysis/pgr_vs_paper.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/analysis/pgr_vs_paper.py"


rule table5_meta_prompt:
    input:
        _ablation_score_files,
    output:
        csv=report(
            f"{A}/table5_meta_prompt.csv",
            caption="../report/table5.rst",
            category="Tables",
            labels=_labels("Table 5"),
        ),
        md=f"{A}/table5_meta_prompt.md",
        tex=f"{A}/table5_meta_prompt.tex",
        paper=f"{A}/table5_meta_prompt_vs_paper.csv",
    log:
        f"{R}/logs/analysis/table5_meta_prompt.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=lambda wc: ai.student_records(ai.ablation_students(config)),
        ablation=lambda wc: ai.ablation(config),
        origins=lambda wc: ai.template_origins(config),
        benchmarks=ai.benchmark_domains(config),
        eps=config["analysis"].get("pgr_eps", 1e-6),
    script:
        "../scripts/analysis/table5.py"


rule table5_significance:
    input:
        _ablation_score_files,
    output:
        csv=report(
            f"{A}/table5_significance.csv",
            caption="../report/table5_significance.rst",
            category="Tables",
            labels=_labels("Table 5 significance"),
        ),
    log:
        f"{R}/logs/analysis/table5_significance.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=lambda wc: ai.student_records(ai.ablation_students(config)),
        ablation=lambda wc: ai.ablation(config),
        benchmarks=ai.benchmark_domains(config),
        eps=config["analysis"].get("pgr_eps", 1e-6),
        bootstrap=config["analysis"].get("bootstrap"),
    script:
        "../scripts/analysis/significance_table5.py"


rule figure4_problem_solving:
    input:
        scores=_main_score_files,
        problem_solving=_problem_solving_files,
    output:
        png=report(
            f"{FIG}/figure4_problem_solving_vs_data_generation.png",
            caption="../report/figure4.rst",
            category="Figures",
            labels=_labels("Figure 4"),
        ),
        pdf=f"{FIG}/figure4_problem_solving_vs_data_generation.pdf",
        points=f"{A}/figure4_points.csv",
        fits=report(
            f"{A}/figure4_fits.csv",
            caption="../report/figure4_fits.rst",
            category="Figures",
            labels=_labels("Figure 4 fits"),
        ),
    log:
        f"{R}/logs/analysis/figure4_problem_solving.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=ai.student_records(ai.main_students(config)),
        benchmarks=ai.benchmark_domains(config),
        eps=config["analysis"].get("pgr_eps", 1e-6),
        main=wf.main_experiment(config),
        problem_solving=ai.problem_solving_spec(config),
        note=ai.describe_students(ai.main_students(config)),
    script:
        "../scripts/analysis/figure4.py"


rule table3_cost_and_abilities:
    input:
        scores=_main_score_files,
        problem_solving=_problem_solving_files_if_any,
        ledgers=_main_ledgers,
    output:
        csv=report(
            f"{A}/table3.csv", caption="../report/table3.rst", category="Tables", labels=_labels("Table 3")
        ),
        md=f"{A}/table3.md",
        tex=f"{A}/table3.tex",
        paper=f"{A}/table3_vs_paper.csv",
    log:
        f"{R}/logs/analysis/table3.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=ai.student_records(ai.main_students(config)),
        benchmarks=ai.benchmark_domains(config),
        eps=config["analysis"].get("pgr_eps", 1e-6),
        main=wf.main_experiment(config),
        problem_solving=ai.problem_solving_spec(config) if ENABLED["figure4"] else None,
        prices={g: config["generators"][g].get("price") for g in ai.main_generators(config)},
        domains=list(wf.DOMAINS),
        note=ai.describe_students(ai.main_students(config)),
    script:
        "../scripts/analysis/table3.py"


rule table7_problem_solving:
    input:
        _problem_solving_files,
    output:
        csv=report(
            f"{A}/table7.csv", caption="../report/table7.rst", category="Tables", labels=_labels("Table 7")
        ),
        md=f"{A}/table7.md",
        tex=f"{A}/table7.tex",
        paper=f"{A}/table7_vs_paper.csv",
    log:
        f"{R}/logs/analysis/table7.log",
    conda:
        "../envs/analysis.yaml"
    params:
        problem_solving=ai.problem_solving_spec(config),
        benchmarks=list(config["benchmarks"]),
        generators=ai.main_generators(config),
    script:
        "../scripts/analysis/table7.py"


rule figure7_cost:
    input:
        scores=_cost_score_files,
        ledgers=_cost_ledgers,
    output:
        png=report(
            f"{FIG}/figure7_cost_vs_pgr.png",
            caption="../report/figure7.rst",
            category="Figures",
            labels=_labels("Figure 7"),
        ),
        pdf=f"{FIG}/figure7_cost_vs_pgr.pdf",
        csv=f"{A}/figure7_cost_vs_pgr.csv",
    log:
        f"{R}/logs/analysis/figure7_cost.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=lambda wc: ai.student_records(ai.cost_students(config)),
        benchmarks=ai.benchmark_domains(config),
        eps=config["analysis"].get("pgr_eps", 1e-6),
        note=lambda wc: ai.describe_students(ai.cost_students(config)),
    script:
        "../scripts/analysis/figure7.py"


# Which Figure 7 size differences are significant (paired bootstrap over items, Holm over the figure).
rule figure7_significance:
    input:
        _cost_score_files,
    output:
        csv=report(
            f"{A}/figure7_significance.csv",
            caption="../report/figure7_significance.rst",
            category="Tables",
            labels=_labels("Figure 7 significance"),
        ),
        md=f"{A}/figure7_significance.md",
    log:
        f"{R}/logs/analysis/figure7_significance.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=lambda wc: ai.student_records(ai.cost_students(config)),
        benchmarks=ai.benchmark_domains(config),
        eps=config["analysis"].get("pgr_eps", 1e-6),
        bootstrap=config["analysis"].get("bootstrap"),
    script:
        "../scripts/analysis/significance_figure7.py"


# Seed variance (not in the paper): every seed's PGR of the students trained with several training seeds.
rule seed_variance:
    input:
        _seed_score_files,
    output:
        csv=report(
            f"{A}/seed_variance.csv",
            caption="../report/seed_variance.rst",
            category="Tables",
            labels=_labels("Seed variance"),
        ),
        per_seed=f"{A}/seed_variance_per_seed.csv",
        md=f"{A}/seed_variance.md",
        png=report(
            f"{FIG}/seed_variance.png",
            caption="../report/seed_variance.rst",
            category="Figures",
            labels=_labels("Seed variance"),
        ),
        pdf=f"{FIG}/seed_variance.pdf",
    log:
        f"{R}/logs/analysis/seed_variance.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=lambda wc: sv.replicate_records(config),
        benchmarks=ai.benchmark_domains(config),
        eps=config["analysis"].get("pgr_eps", 1e-6),
        bootstrap=config["analysis"].get("bootstrap"),  # None: no item bootstrap
    script:
        "../scripts/analysis/seed_variance.py"


# Intrinsic metrics of each main generated set: one job per (set, judge) for the LLM-judge scores, placed
# like generation (API judges where the network is, local vLLM/transformers judges on GPUs; wildcard
# `judge`: the metric suffix of `intrinsic.judge.judges`), apart from the local models (perplexity,
# reward model, embeddings), which need a GPU on a cluster.
JUDGE_LOG = "{generator}/{domain}/{method}/{variant}/n{size}.{judge}"


rule intrinsic_judge_api:
    input:
        unpack(_intrinsic_judge_inputs),
    output:
        f"{INTR}.judge.{{judge}}.json",
    log:
        f"{R}/logs/intrinsic_judge/{JUDGE_LOG}.log",
    benchmark:
        f"{R}/benchmarks/intrinsic_judge_api/{JUDGE_LOG}.tsv"
    wildcard_constraints:
        judge=_alt(ai.intrinsic_judge_suffixes(config, local=False)),
    conda:
        "../envs/analysis.yaml"
    threads: config.get("intrinsic", {}).get("threads", 8)
    params:
        judge=lambda wc: ai.intrinsic_judges(config)[wc.judge],
        sampling=ai.judge_sampling(config),
        verdict=ai.judge_verdict(config),
        rubric_keys=list(ai.rubric_paths(config)),
        official=ai.official_rubrics(config),
        max_instances=config.get("intrinsic", {}).get("max_instances"),
    script:
        "../scripts/analysis/intrinsic_judge.py"


rule intrinsic_judge_local:
    input:
        unpack(_intrinsic_judge_inputs),
    output:
        f"{INTR}.judge.{{judge}}.json",
    log:
        f"{R}/logs/intrinsic_judge/{JUDGE_LOG}.log",
    benchmark:
        f"{R}/benchmarks/intrinsic_judge_local/{JUDGE_LOG}.tsv"
    wildcard_constraints:
        judge=_alt(ai.intrinsic_judge_suffixes(config, local=True)),
    conda:
        "../envs/analysis.yaml"
    threads: config.get("intrinsic", {}).get("threads", 8)
    resources:
        gpu=_intrinsic_judge_gpus,
    params:
        judge=lambda wc: ai.intrinsic_judges(config)[wc.judge],
        sampling=ai.judge_sampling(config),
        verdict=ai.judge_verdict(config),
        rubric_keys=list(ai.rubric_paths(config)),
        official=ai.official_rubrics(config),
        max_instances=config.get("intrinsic", {}).get("max_instances"),
    script:
        "../scripts/analysis/intrinsic_judge.py"


# With `intrinsic.judge.one_job_per_judge`, one job per local judge makes its calls for every set (one
# model load, batches that mix sets) into each set's call store; each set's intrinsic_judge_local job then
# reads them without loading the judge.
rule intrinsic_judge_calls:
    input:
        unpack(_intrinsic_judge_calls_inputs),
    output:
        f"{A}/intrinsic/judge_calls.{{judge}}.json",
    log:
        f"{R}/logs/intrinsic_judge_calls/{{judge}}.log",
    benchmark:
        f"{R}/benchmarks/intrinsic_judge_calls/{{judge}}.tsv"
    wildcard_constraints:
        judge=_alt(ai.one_job_judges(config)),
    conda:
        "../envs/analysis.yaml"
    threads: config.get("intrinsic", {}).get("threads", 8)
    resources:
        gpu=_intrinsic_judge_gpus,
    params:
        judge=lambda wc: ai.intrinsic_judges(config)[wc.judge],
        sampling=ai.judge_sampling(config),
        verdict=ai.judge_verdict(config),
        rubric_keys=list(ai.rubric_paths(config)),
        official=ai.official_rubrics(config),
        max_instances=config.get("intrinsic", {}).get("max_instances"),
        sets=_intrinsic_judge_sets,
    script:
        "../scripts/analysis/intrinsic_judge_calls.py"


if ai.official_rubrics(config):

    rule intrinsic_rubrics:
        output:
            **ai.official_rubric_paths(config),
        log:
            f"{R}/logs/intrinsic_rubrics.log",
        conda:
            "../envs/analysis.yaml"
        params:
            spec=ai.official_rubrics(config),
        script:
            "../scripts/analysis/intrinsic_rubrics.py"


rule intrinsic_models:
    input:
        unpack(_intrinsic_model_inputs),
    output:
        f"{INTR}.models.json",
    log:
        f"{R}/logs/intrinsic_models/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}.log",
    benchmark:
        f"{R}/benchmarks/intrinsic_models/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: config.get("intrinsic", {}).get("threads", 8)
    resources:
        gpu=config.get("intrinsic", {}).get("gpus", 0),
    params:
        **ai.intrinsic_model_params(config),
        max_instances=config.get("intrinsic", {}).get("max_instances"),
    script:
        "../scripts/analysis/intrinsic_models.py"


if ai.reward_needs_download(config):

    rule materialize_reward_model:
        output:
            directory(ai.reward_model_dir(config)),
        log:
            f"{R}/logs/materialize_reward_model.log",
        conda:
            "../envs/training.yaml"
        params:
            name=config["intrinsic"]["reward_model"]["name"],
            spec={k: config["intrinsic"]["reward_model"][k] for k in ("hub", "revision")},
        script:
            "../scripts/analysis/materialize_reward_model.py"


rule table8_intrinsic:
    input:
        _intrinsic_files,
    output:
        csv=report(
            f"{A}/table8_intrinsic.csv",
            caption="../report/table8.rst",
            category="Tables",
            labels=_labels("Table 8"),
        ),
        md=f"{A}/table8_intrinsic.md",
        tex=f"{A}/table8_intrinsic.tex",
        paper=f"{A}/table8_intrinsic_vs_paper.csv",
    log:
        f"{R}/logs/analysis/table8_intrinsic.log",
    conda:
        "../envs/analysis.yaml"
    params:
        domains=list(wf.DOMAINS),
        note=ai.describe_intrinsic(config),
    script:
        "../scripts/analysis/table8.py"


rule figure5_pca:
    input:
        intrinsic=_intrinsic_files,
        problem_solving=_problem_solving_files_if_any,
    output:
        png=report(
            f"{FIG}/figure5_pca_intrinsic_metrics.png",
            caption="../report/figure5.rst",
            category="Figures",
            labels=_labels("Figure 5"),
        ),
        pdf=f"{FIG}/figure5_pca_intrinsic_metrics.pdf",
        variance=f"{A}/figure5_pca_variance.csv",
        loadings=f"{A}/figure5_pca_loadings.csv",
    log:
        f"{R}/logs/analysis/figure5_pca.log",
    conda:
        "../envs/analysis.yaml"
    params:
        problem_solving=ai.problem_solving_spec(config) if ENABLED["figure4"] else None,
        benchmarks=ai.benchmark_domains(config),
        components=config["analysis"].get("pca_components", 5),
        note=ai.describe_intrinsic(config),
    script:
        "../scripts/analysis/figure5.py"


rule table4_pca_contributions:
    input:
        intrinsic=_intrinsic_files,
        problem_solving=_problem_solving_files_if_any,
    output:
        csv=report(
            f"{A}/table4_pca_contributions.csv",
            caption="../report/table4.rst",
            category="Tables",
            labels=_labels("Table 4"),
        ),
        md=f"{A}/table4_pca_contributions.md",
    log:
        f"{R}/logs/analysis/table4.log",
    conda:
        "../envs/analysis.yaml"
    params:
        problem_solving=ai.problem_solving_spec(config) if ENABLED["figure4"] else None,
        benchmarks=ai.benchmark_domains(config),
        components=config["analysis"].get("pca_components", 5),
        note=ai.describe_intrinsic(config),
    script:
        "../scripts/analysis/table4.py"


rule figure6_pgr_on_pcs:
    input:
        intrinsic=_intrinsic_files,
        scores=_main_score_files,
        problem_solving=_problem_solving_files_if_any,
    output:
        png=report(
            f"{FIG}/figure6_pgr_on_top_pcs.png",
            caption="../report/figure6.rst",
            category="Figures",
            labels=_labels("Figure 6"),
        ),
        pdf=f"{FIG}/figure6_pgr_on_top_pcs.pdf",
        fit=f"{A}/figure6_fit.csv",
    log:
        f"{R}/logs/analysis/figure6_pgr_on_pcs.log",
    conda:
        "../envs/analysis.yaml"
    params:
        students=ai.student_records(ai.main_students(config)),
        benchmarks=ai.benchmark_domains(config),
        eps=config["analysis"].get("pgr_eps", 1e-6),
        main=wf.main_experiment(config),
        problem_solving=ai.problem_solving_spec(config) if ENABLED["figure4"] else None,
        components=config["analysis"].get("pca_components", 5),
        note=ai.describe_intrinsic(config),
    script:
        "../scripts/analysis/figure6.py"


rule analysis_all:
    input:
        rules.scores_table.output,
        rules.pgr_table.output,
        rules.figure_pgr.output,
        rules.pgr_vs_paper.output,
        rules.pgr_significance.output,
        rules.figure7_cost.output,
        rules.figure7_significance.output if SIZE_PAIRS else [],
        rules.seed_variance.output if SEED_STUDY else [],
        rules.figure4_problem_solving.output if ENABLED["figure4"] else [],
        rules.table3_cost_and_abilities.output,
        rules.table7_problem_solving.output if ENABLED["table7"] else [],
        rules.table4_pca_contributions.output if ENABLED["intrinsic"] else [],
        rules.table5_meta_prompt.output if ENABLED["table5"] else [],
        rules.table5_significance.output if ENABLED["table5"] else [],
        rules.table8_intrinsic.output if ENABLED["intrinsic"] else [],
        rules.figure5_pca.output if ENABLED["intrinsic"] else [],
        rules.figure6_pgr_on_pcs.output if ENABLED["intrinsic"] else [],
