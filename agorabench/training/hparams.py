"""Validated SFT hyper-parameters (the `training` section of the config)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from agorabench.errors import ConfigError

SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "warmup_stable_decay",
    "step_per_epoch",  # data-agora's llama-recipes: StepLR(step_size=1 epoch, gamma=lr_gamma), no warmup
)
ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
# Keys the config may carry that train_sft itself does not use (resources and data choices for the rules).
RESOURCE_KEYS = ("gpus", "seeds_in_instance_generation_data", "one_job")


@dataclass(frozen=True)
class SFTHparams:
    epochs: float
    learning_rate: float
    max_length: int
    per_device_batch_size: int
    seed: int
    gradient_accumulation_steps: int | None = None
    global_batch_size: int | None = None
    bf16: bool = True
    pure_bf16: bool = False  # bf16 weights and AdamW states (llama-recipes --pure_bf16), no fp32 copy
    lr_scheduler: str = "linear"
    lr_gamma: float = 0.85  # step_per_epoch: the learning rate is multiplied by this after every epoch
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # gradient clipping norm; 0 turns clipping off (llama-recipes' default)
    max_steps: int | None = None
    packing: bool = False
    gradient_checkpointing: bool = True
    liger_kernel: bool = False
    attn_implementation: str = "sdpa"
    save_steps: int = 500
    chat_template: str = "model"
    truncate: bool = False  # False: a record longer than max_length is an error; True: keep its start
    logging_steps: int = 1
    keep_checkpoints: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _key(name: str) -> str:
    return f"training.{name}"


def _check_type(name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    # bool is an int subclass: reject it where a number is expected, and numbers where a bool is.
    is_bool = isinstance(value, bool)
    wants_bool = kind is bool
    if is_bool != wants_bool or not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(_key(name), f"expected {want}, got {value!r}")


def _positive(name: str, value: Any, kind: type | tuple[type, ...] = int) -> None:
    _check_type(name, value, kind)
    if value <= 0:
        raise ConfigError(_key(name), f"must be > 0, got {value!r}")


def _check_values(hp: dict[str, Any]) -> None:
    for name in ("max_length", "per_device_batch_size", "save_steps", "logging_steps"):
        _positive(name, hp[name])
    for name in ("epochs", "learning_rate"):
        _positive(name, hp[name], (int, float))
    _check_type("seed", hp["seed"], int)
    for name in ("gradient_accumulation_steps", "global_batch_size", "max_steps"):
        if hp[name] is not None:
            _positive(name, hp[name])
    for name in ("bf16", "pure_bf16", "packing", "gradient_checkpointing", "liger_kernel", "truncate"):
        _check_type(name, hp[name], bool)
    _check_type("keep_checkpoints", hp["keep_checkpoints"], bool)
    _check_recipe(hp)
    _check_type("warmup_ratio", hp["warmup_ratio"], (int, float))
    if not 0 <= hp["warmup_ratio"] < 1:
        raise ConfigError(_key("warmup_ratio"), f"must be in [0, 1), got {hp['warmup_ratio']!r}")
    if hp["lr_scheduler"] not in SCHEDULERS:
        raise ConfigError(_key("lr_scheduler"), f"unknown value {hp['lr_scheduler']!r}; one of {SCHEDULERS}")
    attn = hp["attn_implementation"]
    if not isinstance(attn, str) or (attn not in ATTENTION and "/" not in attn):
        raise ConfigError(_key("attn_implementation"), f"unknown value {attn!r}; one of {ATTENTION}")
    _check_type("chat_template", hp["chat_template"], str)


def _check_recipe(hp: dict[str, Any]) -> None:
    """The official recipe's options: pure bf16 needs bf16, the per-epoch StepLR has no warmup."""
    if hp["pure_bf16"] and not hp["bf16"]:
        raise ConfigError(_key("pure_bf16"), "pure_bf16 needs bf16: true")
    _check_type("max_grad_norm", hp["max_grad_norm"], (int, float))
    if hp["max_grad_norm"] < 0:
        raise ConfigError(_key("max_grad_norm"), f"must be >= 0, got {hp['max_grad_norm']!r}")
    _check_type("lr_gamma", hp["lr_gamma"], (int, float))
    if not 0 < hp["lr_gamma"] <= 1:
        raise ConfigError(_key("lr_gamma"), f"must be in (0, 1], got {hp['lr_gamma']!r}")
    if hp["lr_scheduler"] == "step_per_epoch" and hp["warmup_ratio"]:
        raise ConfigError(_key("warmup_ratio"), "step_per_epoch has no warmup; set warmup_ratio: 0.0")


def validate_hparams(raw: dict[str, Any]) -> SFTHparams:
    """Check the config's training section; every problem raises ConfigError naming `training.<key>`."""
    if not isinstance(raw, dict):
        raise ConfigError("training", f"expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(SFTHparams)}
    unknown = sorted(set(raw) - set(fields) - set(RESOURCE_KEYS))
    if unknown:
        raise ConfigError(_key(unknown[0]), f"unknown key; known keys: {', '.join(fields)}")
    hp = {name: f.default for name, f in fields.items() if f.default is not dataclasses.MISSING}
    hp.update({k: v for k, v in raw.items() if k in fields})
    missing = [name for name in fields if name not in hp]
    if missing:
        raise ConfigError(_key(missing[0]), "required key is missing")
    if hp["gradient_accumulation_steps"] is None and hp["global_batch_size"] is None:
        raise ConfigError(
            _key("gradient_accumulation_steps"), "set gradient_accumulation_steps or global_batch_size"
        )
    _check_values(hp)
    return SFTHparams(**hp)


def world_size() -> int:
    """Number of training processes (set by accelerate/torchrun; 1 for a plain run)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_accumulation(hp: SFTHparams, n_processes: int) -> int:
    """Gradient accumulation steps: derived from global_batch_size when it is set."""
    if hp.global_batch_size is None:
        return int(hp.gradient_accumulation_steps or 1)
    per_step = hp.per_device_batch_size * n_processes
    if hp.global_batch_size % per_step:
        raise ConfigError(
            _key("global_batch_size"),
            f"{hp.global_batch_size} is not a multiple of per_device_batch_size x processes "
            f"= {hp.per_device_batch_size} x {n_processes}",
        )
    return hp.global_batch_size // per_step
