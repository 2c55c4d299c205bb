"""Command lines for the SFT entry point: plain Python on 1 GPU or CPU, `accelerate launch` (FSDP) on N.

The N-process command is the same with and without GPUs: `accelerate launch` starts N processes through
torch.distributed.run either way; without CUDA each process trains on CPU over gloo, and
agorabench.training.distributed keeps FSDP engaged there (docs/training.md, "Several GPUs").
"""

from __future__ import annotations

import socket
import sys

SFT_MODULE = "agorabench.training.sft"


def free_port() -> int:
    """A TCP port that is free now on this host (for the rank-0 rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fsdp_flags(activation_checkpointing: bool = True) -> list[str]:
    """FSDP2, fully sharded (reshard after forward), layer-wise wrapping, sharded preemption checkpoints."""
    return [
        "--use_fsdp",
        "--fsdp_version", "2",
        "--fsdp_reshard_after_forward", "true",  # = FULL_SHARD: params, grads and optimizer state sharded
        "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",  # wraps model._no_split_modules (decoder layers)
        "--fsdp_state_dict_type", "SHARDED_STATE_DICT",  # fast checkpoints; the final save gathers a full one
        "--fsdp_cpu_ram_efficient_loading", "true",
        "--fsdp_sync_module_states", "true",
        "--fsdp_offload_params", "false",
        "--fsdp_activation_checkpointing", str(activation_checkpointing).lower(),
    ]  # fmt: skip


def launch_command(
    n_gpus: int,
    script_args: list[str],
    fsdp: bool = True,
    *,
    activation_checkpointing: bool = True,
    main_process_port: int | None = None,
    mixed_precision: str = "bf16",
    python: str = sys.executable,
) -> list[str]:
    """argv that runs `python -m agorabench.training.sft <script_args>` on `n_gpus` GPUs of one node.

    n_gpus <= 1 (one GPU or CPU): a plain Python process. n_gpus > 1: `accelerate launch` with one process
    per GPU, `mixed_precision` ("bf16" or "no", from training.bf16) and, when `fsdp`, FSDP full sharding
    with activation checkpointing (otherwise plain DDP). The SLURM job must be ONE task holding all N GPUs
    (see docs/training.md). Without CUDA the same command runs N CPU processes over gloo.
    """
    if n_gpus <= 1:
        return [python, "-m", SFT_MODULE, *script_args]
    if mixed_precision not in ("bf16", "no"):
        raise ValueError(f"mixed_precision must be 'bf16' or 'no', got {mixed_precision!r}")
    port = main_process_port or free_port()
    cmd = [
        python, "-m", "accelerate.commands.launch",
        "--num_processes", str(n_gpus),
        "--num_machines", "1",
        "--mixed_precision", mixed_precision,
        "--dynamo_backend", "no",
        "--main_process_port", str(port),
    ]  # fmt: skip
    cmd += fsdp_flags(activation_checkpointing) if fsdp else ["--multi_gpu"]
    return [*cmd, "-m", SFT_MODULE, *script_args]
