# Training: the student (S_0's weights) fine-tuned by SFT on each generated set; in the demo, S_ref is the
# same base fine-tuned on human-written data.

TRAIN = f"{R}/training/students/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}"


rule training_data:
    input:
        unpack(_training_data_inputs),
    output:
        f"{TRAIN}/train_data.jsonl",
    log:
        f"{R}/logs/training_data/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}.log",
    priority: CHAIN
    conda:
        "../envs/training.yaml"
    script:
        "../scripts/training/training_data.py"


rule train_student:
    input:
        unpack(_trained_by),
        data=f"{TRAIN}/train_data.jsonl",
        base=wf.model_dir(config, config["student"]["base"]),
    output:
        model=directory(f"{TRAIN}/model"),
        log_jsonl=f"{TRAIN}/train_log.jsonl",
        info=f"{TRAIN}/train_info.json",
        plot=f"{TRAIN}/loss.png",
    log:
        f"{R}/logs/train_student/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}.log",
    benchmark:
        f"{R}/benchmarks/train_student/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}.tsv"
    priority: CHAIN
    conda:
        "../envs/training.yaml"
    threads: 8  # capped at --cores locally; torch uses exactly these
    resources:
        gpu=_train_gpus,
    params:
        **_training_params(),
    script:
        "../scripts/training/train.py"


rule train_reference:
    input:
        unpack(_trained_by),
        data=f"{R}/data/reference/sft.jsonl",
        base=wf.model_dir(config, config["student"]["base"]),
    output:
        model=directory(f"{R}/training/reference/model"),
        log_jsonl=f"{R}/training/reference/train_log.jsonl",
        info=f"{R}/training/reference/train_info.json",
        plot=f"{R}/training/reference/loss.png",
    log:
        f"{R}/logs/train_reference.log",
    benchmark:
        f"{R}/benchmarks/train_reference.tsv"
    priority: CHAIN
    conda:
        "../envs/training.yaml"
    threads: 8  # capped at --cores locally; torch uses exactly these
    resources:
        gpu=_train_gpus,
    params:
        **_training_params(),
    script:
        "../scripts/training/train.py"


# With `training.one_job`, one job trains S_ref and every student one after another (one start-up for all)
# into staging folders; each train_student / train_reference job then hard-links its model into place.
rule train_all:
    input:
        data=[m["data"] for m in _train_all_models()],
        base=wf.model_dir(config, config["student"]["base"]),
    output:
        f"{R}/training/train_all.json",
    log:
        f"{R}/logs/train_all.log",
    benchmark:
        f"{R}/benchmarks/train_all.tsv"
    priority: CHAIN
    conda:
        "../envs/training.yaml"
    threads: 8  # capped at --cores locally; torch uses exactly these
    resources:
        gpu=config["training"].get("gpus", 1),
    params:
        **_training_params(),
        models=_train_all_models(),
    script:
        "../scripts/training/train_all.py"


# Seed variance (experiments.<name>.training_seeds): the student trained with another training seed, on
# the training data of the student itself; its model key is the student's path with "_seed<seed>" added.
use rule train_student as train_student_seed with:
    input:
        data=f"{TRAIN}/train_data.jsonl",
        base=wf.model_dir(config, config["student"]["base"]),
    output:
        model=directory(f"{TRAIN}_seed{{train_seed}}/model"),
        log_jsonl=f"{TRAIN}_seed{{train_seed}}/train_log.jsonl",
        info=f"{TRAIN}_seed{{train_seed}}/train_info.json",
        plot=f"{TRAIN}_seed{{train_seed}}/loss.png",
    log:
        f"{R}/logs/train_student/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}_seed{{train_seed}}.log",
    benchmark:
        f"{R}/benchmarks/train_student/{{generator}}/{{domain}}/{{method}}/{{variant}}/n{{size}}_seed{{train_seed}}.tsv"
    wildcard_constraints:
        train_seed=r"\d+",
    resources:
        gpu=config["training"].get("gpus", 1),  # trains in its own job in every mode
    params:
        hparams=lambda wc: _replicate_hparams(wc),
        chat_template=config["student"].get("chat_template", "model"),
