"""Stage function of the training rules: fine-tune the student on one generated set.

One GPU or CPU trains in this process; N > 1 GPUs run `accelerate launch` (FSDP) as one child command,
as the SLURM job holds one task with N GPUs (without CUDA, N CPU processes with FSDP over gloo).
A generated set with zero valid instances (the generation stats report the shortfall) leaves nothing to
train on: the student is then S_0 itself, copied and marked `trained: false` in its info, so its PGR is
the (zero) gain of no data rather than a crash.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

from agorabench.jsonl import iter_jsonl, read_json, write_json, write_text

log = logging.getLogger(__name__)


def _untrained(
    model_dir: str, output_dir: str, log_path: str, info_path: str, plot_path: str | None, train_path: str
) -> dict[str, Any]:
    log.warning("%s has no valid instances: the student is the base model, untrained", train_path)
    out = Path(output_dir)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model_dir, out)
    write_text(Path(log_path), "")
    info = {
        "trained": False,
        "reason": f"{train_path} has 0 instances",
        "train_rows": 0,
        "base_model": model_dir,
    }
    write_json(info_path, info)
    if plot_path:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4, 2.5))
        fig.text(0.5, 0.5, "no training: 0 valid instances", ha="center", va="center")
        fig.savefig(plot_path)
    return info


def train_student(
    *,
    train_path: str,
    model_dir: str,
    output_dir: str,
    hparams: dict[str, Any],
    log_path: str,
    info_path: str,
    plot_path: str | None,
) -> dict[str, Any]:
    rows = sum(1 for _ in iter_jsonl(train_path))
    if rows == 0:
        return _untrained(model_dir, output_dir, log_path, info_path, plot_path, train_path)
    gpus = int(hparams.get("gpus", 0) or 0)
    if gpus <= 1:
        from agorabench.training.sft import train_sft

        info = train_sft(
            train_path=train_path,
            model_dir=model_dir,
            output_dir=output_dir,
            hparams=hparams,
            log_path=log_path,
            info_path=info_path,
            plot_path=plot_path,
        )
    else:
        from agorabench.childenv import child_env
        from agorabench.training.launch import launch_command

        args = [
            "--train",
            train_path,
            "--model",
            model_dir,
            "--out",
            output_dir,
            "--hparams-json",
            json.dumps(hparams),
            "--log",
            log_path,
            "--info",
            info_path,
        ]
        if plot_path:
            args += ["--plot", plot_path]
        precision = "bf16" if hparams.get("bf16", True) else "no"
        checkpointing = bool(hparams.get("gradient_checkpointing", True))  # FSDP's own under accelerate
        cmd = launch_command(gpus, args, mixed_precision=precision, activation_checkpointing=checkpointing)
        log.info("launching %d-process training: %s", gpus, " ".join(cmd))
        subprocess.run(cmd, check=True, env=child_env())  # the ranks import agorabench like this process
        info = read_json(info_path)
    return {
        "trained": True,
        "train_rows": rows,
        **{k: info[k] for k in ("steps", "final_loss", "wall_s") if k in info},
    }
