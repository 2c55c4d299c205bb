"""Stage function of the training rules: fine-tune the student on one generated set.

One GPU or CPU trains in this process; N > 1 GPUs run `accelerate launch` (FSDP) as one child command,
as the SLURM job holds one task with N GPUs (without CUDA, N CPU processes with FSDP over gloo).
A generated set with zero valid instances (the generation stats report the shortfall) leaves nothing to
train on: the student is then S_0 itself, copied and marked `trained: false` in its info, so its PGR is
the (zero) gain of no data rather than a crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from agorabench.errors import DataError
from agorabench.jsonl import iter_jsonl, read_json, sha256_file, write_json, write_text

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
    trained_by: str | None = None,
) -> dict[str, Any]:
    """Fine-tune `model_dir` on `train_path`; with `trained_by` (the train_all summary), link the model
    that job trained for `output_dir` instead."""
    if trained_by:
        return link_trained(trained_by, train_path, output_dir, log_path, info_path, plot_path)
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


# One job for all models (`training.one_job`, rule train_all): S_ref and every student are trained one
# after another in one process, which pays the interpreter, library and model start-up once instead of
# once per model. Each model's files go to its staging folder (Snakemake clears a job's outputs before it
# runs, so the job cannot write them in place); each model's own job then hard-links them into place.
STAGED = "staged.json"  # written last in a staging folder: the model there is complete


def _staged_files(staged: Path) -> dict[str, Path]:
    return {
        "model": staged / "model",
        "log": staged / "train_log.jsonl",
        "info": staged / "train_info.json",
        "plot": staged / "loss.png",
    }


def _fingerprint(train_path: str, base_files: dict[str, str], hparams: dict[str, Any]) -> dict[str, Any]:
    return {"data_sha256": sha256_file(train_path), "base": base_files, "hparams": hparams}


def train_all(
    *, models: list[dict[str, str]], model_dir: str, hparams: dict[str, Any], summary_path: str
) -> dict[str, Any]:
    """Train each of `models` ({name, data, staged, output}) on its data, one after another, into its
    staging folder; a folder whose staged.json matches the data, base model and hyper-parameters is kept,
    so a rerun after an interruption trains only what is missing. Writes and returns the summary."""
    from agorabench.provenance.record import hash_path

    base = hash_path(Path(model_dir))["files"]  # the base folder's files and their sha256, as provenance has
    entries, trained = [], 0
    for m in models:
        staged = Path(m["staged"])
        want = _fingerprint(m["data"], base, hparams)
        marker = staged / STAGED
        if not (marker.is_file() and read_json(marker) == want):
            shutil.rmtree(staged, ignore_errors=True)
            files = _staged_files(staged)
            log.info("train_all: %s (%d of %d)", m["name"], len(entries) + 1, len(models))
            train_student(
                train_path=m["data"],
                model_dir=model_dir,
                output_dir=str(files["model"]),
                hparams=hparams,
                log_path=str(files["log"]),
                info_path=str(files["info"]),
                plot_path=str(files["plot"]),
            )
            write_json(marker, want)
            trained += 1
            _release_memory()
        entries.append({"name": m["name"], "output": m["output"], "staged": str(staged), **want})
    summary = {"models": entries, "trained": trained, "kept": len(models) - trained}
    write_json(summary_path, summary)
    return {"models": len(models), "trained": trained, "kept": len(models) - trained}


def _release_memory() -> None:
    """Free the last model's weights and optimizer states, and hand the freed heap back to the system:
    without malloc_trim glibc keeps it, and the job's resident memory grew from 3.1 to 3.6 GB over five
    SmolLM2 models (peak 4.5 GB) against 0.6-0.8 GB between models with it (peak 3.9 GB)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the heap stays with the process
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def link_trained(
    summary_path: str,
    train_path: str,
    output_dir: str,
    log_path: str,
    info_path: str,
    plot_path: str | None,
) -> dict[str, Any]:
    """Hard-link (or copy, across file systems) the model train_all staged for `output_dir`; its
    training data must be the data this job was given."""
    entry = next((e for e in read_json(summary_path)["models"] if e["output"] == output_dir), None)
    if entry is None:
        raise DataError(summary_path, f"train_all trained no model for {output_dir}; rerun rule train_all")
    if sha256_file(train_path) != entry["data_sha256"]:
        raise DataError(
            train_path, f"differs from the data train_all trained on ({summary_path}); rerun rule train_all"
        )
    if not (Path(entry["staged"]) / STAGED).is_file():
        raise DataError(entry["staged"], "the staged model is missing or incomplete; rerun rule train_all")
    files = _staged_files(Path(entry["staged"]))
    _link_tree(files["model"], Path(output_dir))
    _link(files["log"], Path(log_path))
    if plot_path:
        _link(files["plot"], Path(plot_path))
    info = read_json(files["info"])
    info |= {"output_dir": output_dir, "trained_by": summary_path, "staged": entry["staged"]}
    write_json(info_path, info)
    trained = info.get("trained", True)
    return {
        "trained": trained,
        "train_rows": info.get("train_rows", (info.get("dataset") or {}).get("rows")),
        "trained_by": summary_path,
        **{k: info[k] for k in ("steps", "final_loss") if k in info},
    }


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _link_tree(src: Path, dst: Path) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_file():
            _link(path, dst / path.relative_to(src))
