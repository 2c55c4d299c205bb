"""The official recipe's learning-rate schedule: StepLR stepped once per epoch (data-agora's llama-recipes).

llama-recipes builds `StepLR(optimizer, step_size=1, gamma=0.85)` and calls `scheduler.step()` after each
epoch (train/src/llama_recipes/finetuning.py:268, utils/train_utils.py:221): every optimizer step of epoch
e (from 0) runs at lr x gamma**e, with no warmup. The Trainer steps its scheduler after every optimizer
step, so the same schedule is a LambdaLR of the optimizer-step count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def epoch_step_factor(steps_per_epoch: int, gamma: float) -> Callable[[int], float]:
    """lr multiplier for optimizer step `k` (from 0): gamma ** (the epoch that step belongs to)."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")

    def factor(step: int) -> float:
        return gamma ** (step // steps_per_epoch)

    return factor


def with_step_per_epoch(trainer_cls: type, gamma: float) -> type:
    """A subclass of a transformers Trainer class whose scheduler is the per-epoch StepLR.

    It takes the optimizer steps per epoch from the Trainer's own count (`set_initial_training_values`),
    so a short last accumulation window is counted as the Trainer counts it. The schedule is a pure
    function of the step count, so a resumed run (which restores the step count) continues it exactly.
    """
    from torch.optim.lr_scheduler import LambdaLR

    class StepPerEpochTrainer(trainer_cls):
        _steps_per_epoch: int | None = None

        def set_initial_training_values(self, args: Any, dataloader: Any) -> Any:
            values = super().set_initial_training_values(args, dataloader)
            self._steps_per_epoch = int(values[1])  # num_update_steps_per_epoch
            return values

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if self.lr_scheduler is None:
                if self._steps_per_epoch is None:
                    raise RuntimeError("step_per_epoch: the Trainer did not report its steps per epoch")
                factor = epoch_step_factor(self._steps_per_epoch, gamma)
                self.lr_scheduler = LambdaLR(optimizer or self.optimizer, factor)
                self._created_lr_scheduler = True
            return self.lr_scheduler

    StepPerEpochTrainer.__name__ = f"StepPerEpoch{trainer_cls.__name__}"
    return StepPerEpochTrainer
