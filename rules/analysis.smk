# Analysis: scores across models, the PGR table (the paper's Table 2 layout) and figures.

A = f"{R}/analysis"


rule scores_table:
    input:
        _score_files,
    output:
        csv=f"{A}/scores.csv",
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
        csv=f"{A}/pgr.csv",
        md=f"{A}/pgr.md",
        tex=f"{A}/pgr.tex",
    params:
        students=[vars(s) | {"model": s.path} for s in wf.students(config)],
        benchmarks={b: spec["domain"] for b, spec in config["benchmarks"].items()},
        eps=config["analysis"].get("pgr_eps", 1e-6),
        main=wf.main_experiment(config),
    log:
        f"{R}/logs/analysis/pgr_table.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/analysis/pgr_table.py"


rule figure_pgr:
    input:
        f"{A}/pgr_long.csv",
    output:
        png=f"{A}/figures/pgr_by_generator.png",
        pdf=f"{A}/figures/pgr_by_generator.pdf",
    params:
        main=wf.main_experiment(config),
    log:
        f"{R}/logs/analysis/figure_pgr.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/analysis/figure_pgr.py"


rule analysis_all:
    input:
        rules.scores_table.output,
        rules.pgr_table.output,
        rules.figure_pgr.output,
