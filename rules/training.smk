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
    conda:
        "../envs/training.yaml"
    script:
        "../scripts/training/training_data.py"


rule train_student:
    input:
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
    conda:
        "../envs/training.yaml"
    threads: 8  # capped at --cores locally; torch uses exactly these
    resources:
        gpu=config["training"].get("gpus", 1),
    params:
        **_training_params(),
    script:
        "../scripts/training/train.py"


rule train_reference:
    input:
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
    conda:
        "../envs/training.yaml"
    threads: 8  # capped at --cores locally; torch uses exactly these
    resources:
        gpu=config["training"].get("gpus", 1),
    params:
        **_training_params(),
    script:
        "../scripts/training/train.py"


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
    params:
        hparams=lambda wc: _replicate_hparams(wc),
        chat_template=config["student"].get("chat_template", "model"),
