"""Supervised fine-tuning of the student on one synthetic data set (TRL SFTTrainer), resumable.

CLI (what a rule runs, under `accelerate launch` on several GPUs; see launch.py and docs/training.md):
    python -m agorabench.training.sft --train data.jsonl --model base/ --out model/ --hparams-json '{...}'
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from agorabench.errors import AgoraBenchError, ConfigError, DataError
from agorabench.jsonl import sha256_file, sha256_text, write_json, write_jsonl
from agorabench.training import checkpoints, data
from agorabench.training.callbacks import (
    NoFinalCheckpoint,
    StepLogger,
    plot_loss,
    read_log,
    truncate_log,
)
from agorabench.training.distributed import fsdp_on_cpu, sharding_summary, wants_fsdp_on_cpu
from agorabench.training.hparams import SFTHparams, resolve_accumulation, validate_hparams, world_size
from agorabench.training.runinfo import hardware, package_versions

log = logging.getLogger("agorabench.training")
LOG_COPY = "train_log.jsonl"


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _fsdp_activation_checkpointing() -> bool:
    # Set by `accelerate launch --fsdp_activation_checkpointing true`; Trainer refuses both kinds at once.
    return os.environ.get("FSDP_ACTIVATION_CHECKPOINTING", "false") == "true"


def resolve_attention(requested: str, cuda: bool) -> str:
    """The attention to train with. sdpa (the paper config's) ships with torch and, for padding-free
    packed rows, gets a block-diagonal mask from the per-example position_ids (docs/training.md)."""
    if (requested.startswith("flash_attention") or requested == "flex_attention") and not cuda:
        # flex_attention has no backward pass on CPU in torch 2.13; flash kernels are CUDA-only.
        log.info("attention: %s needs a GPU; using sdpa on CPU", requested)
        return "sdpa"
    if requested == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ConfigError(
            "training.attn_implementation",
            "flash_attention_2 needs the flash-attn package, which envs/training.yaml does not install; "
            "use sdpa (it keeps packed examples apart too)",
        )
    return requested


def resolve_liger(requested: bool, cuda: bool) -> bool:
    if not requested:
        return False
    if not cuda:
        log.info("liger_kernel: its Triton kernels need a GPU; training without them on CPU")
        return False
    if importlib.util.find_spec("liger_kernel") is None:
        raise ConfigError("training.liger_kernel", "the liger-kernel package is not installed")
    return True


def _log_packing(hp: SFTHparams, attn: str) -> None:
    if not hp.packing:
        return
    how = (
        "FlashAttention varlen kernels (cu_seq_lens)"
        if attn.startswith("flash")
        else f"a block-diagonal mask that transformers builds from position_ids ({attn}; no varlen kernel)"
    )
    msg = "packing: padding-free BFD packing into %d-token rows; no attention across examples, via %s"
    log.info(msg, hp.max_length, how)


def load_tokenizer(model_dir: str) -> Any:
    from transformers import AutoTokenizer

    _check_model_dir(model_dir)
    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for a broken folder
        raise DataError(model_dir, f"cannot load the tokenizer: {_first_line(exc)}") from None


def load_model(model_dir: str, attn: str, pure_bf16: bool = False) -> Any:
    """fp32 master weights with bf16 autocast (SFTConfig.bf16), or, with `pure_bf16`, bf16 weights, so
    gradients and the AdamW states are bf16 too (llama-recipes --pure_bf16)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if pure_bf16 else torch.float32
    try:
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn)
    except Exception as exc:
        raise DataError(model_dir, f"cannot load the model: {_first_line(exc)}") from None


def _check_model_dir(model_dir: str) -> None:
    if not Path(model_dir, "config.json").is_file():
        raise DataError(model_dir, "not a model folder (no config.json)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _saved_dtype(model_dir: str) -> str:
    cfg = json.loads(Path(model_dir, "config.json").read_text(encoding="utf-8"))
    return str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")


def sft_config(hp: SFTHparams, *, ckpt_dir: Path, accumulation: int, cuda: bool, liger: bool) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(ckpt_dir),
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps or -1,
        learning_rate=hp.learning_rate,
        # step_per_epoch is not a transformers schedule: the trainer class supplies it (schedule.py).
        lr_scheduler_type="constant" if hp.lr_scheduler == "step_per_epoch" else hp.lr_scheduler,
        warmup_steps=hp.warmup_ratio,  # a float < 1 is a fraction of the total steps
        weight_decay=hp.weight_decay,
        max_grad_norm=hp.max_grad_norm,
        per_device_train_batch_size=hp.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        max_length=hp.max_length,
        truncation_mode="keep_start",
        packing=hp.packing,
        packing_strategy="bfd",  # implies padding_free: per-example position_ids, no cross-example attention
        completion_only_loss=True,
        bf16=hp.bf16,
        use_cpu=not cuda,
        activation_checkpointing=hp.gradient_checkpointing and not _fsdp_activation_checkpointing(),
        use_liger_kernel=liger,
        seed=hp.seed,
        data_seed=hp.seed,
        logging_strategy="steps",
        logging_steps=hp.logging_steps,
        save_strategy="steps",
        save_steps=hp.save_steps,
        save_total_limit=1,  # the older checkpoint is removed only after the new one is complete
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def build_trainer(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    config: Any,
    callbacks=(),
    lr_gamma: float | None = None,
) -> Any:
    """The SFTTrainer; its `train_dataset` holds input_ids and labels (-100 on prompt tokens).

    `lr_gamma` set: the per-epoch StepLR of the official recipe replaces the config's schedule."""
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    from agorabench.training.schedule import with_step_per_epoch

    trainer_cls = SFTTrainer if lr_gamma is None else with_step_per_epoch(SFTTrainer, lr_gamma)
    trainer = trainer_cls(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)  # StepLogger logs instead of printing raw dicts
    return trainer


def save_final(trainer: Any, tokenizer: Any, out_dir: Path, end_of_turn: int, dtype_name: str) -> None:
    """A plain Hugging Face folder (safetensors, config, tokenizer, chat template), written atomically."""
    import torch

    acc = trainer.accelerator
    if trainer.is_fsdp_enabled:
        acc.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    state = acc.get_state_dict(trainer.model)  # collective under FSDP: every rank calls it
    if acc.is_main_process:
        model = acc.unwrap_model(trainer.model)
        model.config.use_cache = True
        _add_stop_token(model.generation_config, end_of_turn)
        tmp = out_dir.with_name(out_dir.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, state_dict=_cast_state(state, getattr(torch, dtype_name)))
        model.config.dtype = dtype_name  # save_pretrained wrote the in-memory (fp32) dtype
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    acc.wait_for_everyone()


def _cast_state(state: dict[str, Any], dtype: Any) -> dict[str, Any]:
    """Cast floating tensors, keeping tied weights (shared storage) shared so they are saved once."""
    cast: dict[tuple, Any] = {}
    out = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            out[name] = tensor
            continue
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key not in cast:
            cast[key] = tensor.to(dtype)
        out[name] = cast[key]
    return out


def _add_stop_token(gen_config: Any, token_id: int) -> None:
    # Generation (transformers, vLLM) must stop where the template ends an assistant turn.
    eos = gen_config.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    if token_id not in eos:
        gen_config.eos_token_id = [*eos, token_id]


def _fingerprint(train_sha: str, model_dir: str, hp: SFTHparams, accumulation: int, procs: int) -> dict:
    # Settings that change the optimisation trajectory; a checkpoint is reused only if they all match.
    ignore = ("save_steps", "logging_steps", "keep_checkpoints")
    keep = {k: v for k, v in hp.as_dict().items() if k not in ignore}
    return {
        "train_sha256": train_sha,
        "model_dir": str(Path(model_dir).resolve()),
        "hparams_sha256": sha256_text(json.dumps(keep, sort_keys=True)),
        "gradient_accumulation_steps": accumulation,
        "processes": procs,
    }


def _start_log(log_path: Path, ckpt_dir: Path, ckpt: Path | None) -> float:
    """Prepare the step log; returns the wall time already spent (from the rows kept on resume).

    The copy in the checkpoint folder is the reference: the workflow may delete `log_path` of a failed job.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    mirror = ckpt_dir / LOG_COPY
    if ckpt is None:
        log_path.write_text("", encoding="utf-8")
        mirror.write_text("", encoding="utf-8")
        return 0.0
    step = checkpoints.checkpoint_step(ckpt)
    rows = truncate_log(mirror, step)
    write_jsonl(log_path, rows)
    log.info("resumed from checkpoint %s at step %d", ckpt, step)
    return float(rows[-1]["elapsed_s"]) if rows else 0.0


def _dataset_info(path: str, sha: str, lengths: list[int], truncated: int) -> dict[str, Any]:
    return {
        "path": str(path),
        "sha256": sha,
        "rows": len(lengths),
        "tokens": sum(lengths),
        "max_tokens": max(lengths),
        "mean_tokens": round(sum(lengths) / len(lengths), 1),
        "truncated_rows": truncated,
    }


def train_sft(
    *,
    train_path: str,
    model_dir: str,
    output_dir: str,
    hparams: dict,
    log_path: str,
    info_path: str,
    plot_path: str | None = None,
    resume: bool = True,
) -> dict:
    """Fine-tune `model_dir` on the JSONL at `train_path`; write the model, step log, info JSON and plot.

    Returns the info dict (also written to `info_path`). See docs/training.md.
    """
    import torch

    t0 = time.monotonic()
    hp = validate_hparams(hparams)
    procs = world_size()
    accumulation = resolve_accumulation(hp, procs)
    records = data.load_records(train_path)
    rows = [data.to_conversation(r) for r in records]
    tokenizer = load_tokenizer(model_dir)
    template = data.set_chat_template(tokenizer, hp.chat_template, model_dir)
    end_of_turn = data.check_template(tokenizer)
    lengths = data.token_lengths(tokenizer, rows)
    truncated = data.check_lengths(train_path, records, lengths, hp.max_length, hp.truncate)

    cuda = torch.cuda.is_available()
    attn = resolve_attention(hp.attn_implementation, cuda)
    liger = resolve_liger(hp.liger_kernel, cuda)
    _log_packing(hp, attn)
    train_sha = sha256_file(train_path)
    ckpt_dir = checkpoints.checkpoint_dir(output_dir)
    fingerprint = _fingerprint(train_sha, model_dir, hp, accumulation, procs)
    ckpt = checkpoints.prepare(ckpt_dir, fingerprint, resume, is_main=_is_main())
    elapsed_before = _start_log(Path(log_path), ckpt_dir, ckpt) if _is_main() else 0.0

    model = load_model(model_dir, attn, hp.pure_bf16)
    config = sft_config(hp, ckpt_dir=ckpt_dir, accumulation=accumulation, cuda=cuda, liger=liger)
    step_log = StepLogger([log_path, ckpt_dir / LOG_COPY], elapsed_before=elapsed_before, is_main=_is_main())
    gamma = hp.lr_gamma if hp.lr_scheduler == "step_per_epoch" else None
    with fsdp_on_cpu(wants_fsdp_on_cpu(cuda)):  # `accelerate launch --use_fsdp` without GPUs
        callbacks = [step_log] if hp.keep_checkpoints else [step_log, NoFinalCheckpoint()]
        trainer = build_trainer(model, tokenizer, rows, config, callbacks=callbacks, lr_gamma=gamma)
    if hp.global_batch_size and hp.gradient_accumulation_steps not in (None, accumulation):
        log.info("gradient accumulation %d (from global_batch_size %d over %d process(es))",
                 accumulation, hp.global_batch_size, procs)  # fmt: skip
    result = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    sharding = sharding_summary(trainer.model)
    save_final(trainer, tokenizer, Path(output_dir), end_of_turn, _saved_dtype(model_dir))
    if not _is_main():
        return {}

    all_rows = read_log(log_path)
    info = {
        "base_model_dir": str(model_dir),
        "output_dir": str(output_dir),
        "dataset": _dataset_info(train_path, train_sha, lengths, truncated),
        "training_data": data.composition(records),
        "hparams": hp.as_dict(),
        "gradient_accumulation_steps": accumulation,
        "processes": procs,
        "fsdp_sharding": sharding,
        "effective_global_batch": hp.per_device_batch_size * accumulation * procs,
        "chat_template": template,
        "end_of_turn_token": tokenizer.convert_ids_to_tokens(end_of_turn),
        "attn_implementation": attn,
        "liger_kernel": liger,
        "packing": hp.packing,
        "precision": data.precision_label(hp.bf16, hp.pure_bf16),
        "saved_dtype": _saved_dtype(model_dir),
        "versions": package_versions(),
        "hardware": hardware(procs),
        "steps": trainer.state.global_step,
        "epochs_done": round(float(trainer.state.epoch or 0.0), 4),
        "final_loss": all_rows[-1]["loss"] if all_rows else None,
        "first_loss": all_rows[0]["loss"] if all_rows else None,
        "train_loss_mean_this_run": result.training_loss,
        "resumed_from": str(ckpt) if ckpt else None,
        "wall_time_s": round(elapsed_before + time.monotonic() - t0, 2),
        "wall_time_this_run_s": round(time.monotonic() - t0, 2),
        "model_bytes": checkpoints.dir_bytes(Path(output_dir)),
    }
    write_json(info_path, info)
    if plot_path:
        plot_loss(all_rows, plot_path, f"SFT {Path(train_path).name}: {info['steps']} steps")
    if not hp.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return info


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m agorabench.training.sft", description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="training JSONL (id, instruction, response)")
    p.add_argument("--model", required=True, help="base model folder (transformers format)")
    p.add_argument("--out", required=True, help="folder for the fine-tuned model")
    p.add_argument("--hparams-json", required=True, help="JSON object (or a path to a JSON file): training.*")
    p.add_argument("--log", help="step log JSONL (default: <out>.train_log.jsonl)")
    p.add_argument("--info", help="run info JSON (default: <out>.train_info.json)")
    p.add_argument("--plot", help="loss-curve PNG (default: none)")
    p.add_argument("--no-resume", action="store_true", help="discard checkpoints of an interrupted run")
    return p.parse_args(argv)


def _load_hparams(text: str) -> dict:
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise ConfigError("training", f"--hparams-json is neither a JSON object nor a file: {text!r}")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("training", f"--hparams-json is not valid JSON ({exc.msg})") from None


def _quiet_progress_bars() -> None:
    # Progress bars fill job logs with carriage returns; StepLogger reports progress instead.
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if _is_main() else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _quiet_progress_bars()
    out = Path(args.out)
    try:
        train_sft(
            train_path=args.train,
            model_dir=args.model,
            output_dir=args.out,
            hparams=_load_hparams(args.hparams_json),
            log_path=args.log or str(out.with_name(out.name + ".train_log.jsonl")),
            info_path=args.info or str(out.with_name(out.name + ".train_info.json")),
            plot_path=args.plot,
            resume=not args.no_resume,
        )
    except AgoraBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
