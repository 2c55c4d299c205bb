"""Student fine-tuning (SFT with TRL) and the commands that launch it; see docs/training.md.

`launch_command` and `validate_hparams` import nothing heavy (safe in a Snakefile); `train_sft` loads
torch/transformers/TRL on first use.
"""

from __future__ import annotations

from typing import Any

from agorabench.training.hparams import SFTHparams, resolve_accumulation, validate_hparams
from agorabench.training.launch import launch_command

__all__ = ["SFTHparams", "launch_command", "resolve_accumulation", "train_sft", "validate_hparams"]


def __getattr__(name: str) -> Any:
    if name == "train_sft":
        from agorabench.training.sft import train_sft

        return train_sft
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
