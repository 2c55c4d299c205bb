"""Per-step training log (JSONL, survives kill -9) and the loss-curve plot."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from agorabench.jsonl import append_jsonl, write_jsonl

log = logging.getLogger(__name__)


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a step log; a torn last line (killed mid-write) is dropped."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def truncate_log(path: str | Path, last_step: int) -> list[dict[str, Any]]:
    """Keep the rows up to `last_step` (the checkpoint a resumed run restarts from)."""
    rows = [r for r in read_log(path) if r.get("step", 0) <= last_step]
    write_jsonl(path, rows)
    return rows


class StepLogger(TrainerCallback):
    """Appends one JSONL row per logged optimizer step (step, epoch, loss, learning_rate, tokens_per_s...)
    to each of `paths`: the requested log and a copy beside the checkpoints that a resumed run trusts."""

    def __init__(self, paths: list[str | Path], elapsed_before: float = 0.0, is_main: bool = True):
        self.paths = [Path(p) for p in paths]
        self.elapsed_before = elapsed_before
        self.is_main = is_main
        self.rows: list[dict[str, Any]] = []
        self._t0 = self._t_last = time.monotonic()
        self._tokens_last = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = self._t_last = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or not self.is_main:
            return
        now = time.monotonic()
        tokens = float(logs.get("num_tokens", 0.0))  # TRL: non-padding tokens seen by this run
        dt = max(now - self._t_last, 1e-9)
        row = {
            "step": state.global_step,
            "epoch": round(float(logs.get("epoch", state.epoch or 0.0)), 4),
            "loss": float(logs["loss"]),
            "learning_rate": float(logs.get("learning_rate", 0.0)),
            "grad_norm": _maybe_float(logs.get("grad_norm")),
            "tokens_per_s": round((tokens - self._tokens_last) / dt, 2),
            "elapsed_s": round(self.elapsed_before + now - self._t0, 2),
            "num_tokens": tokens,
        }
        self._t_last, self._tokens_last = now, tokens
        self.rows.append(row)
        for path in self.paths:
            with path.open("a", encoding="utf-8") as fh:
                append_jsonl(fh, row)
        log.info(
            "step %d/%d epoch %.2f loss %.4f lr %.3g %.0f tok/s",
            row["step"],
            state.max_steps,
            row["epoch"],
            row["loss"],
            row["learning_rate"],
            row["tokens_per_s"],
        )


class NoFinalCheckpoint(TrainerCallback):
    """Cancels the checkpoint the trainer saves after its last step (weights and optimizer states, about
    4x the model's size): `save_final` writes the model right after it and, unless checkpoints are kept,
    the checkpoint folder is then deleted. A job killed before `save_final` resumes from the last
    periodic checkpoint."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_save = False
        return control


def _maybe_float(value: Any) -> float | None:
    return None if value is None else float(value)


def plot_loss(rows: list[dict[str, Any]], path: str | Path, title: str) -> None:
    """Loss per step, learning rate on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["loss"] for r in rows], color="tab:blue", marker="." if len(rows) < 50 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (response tokens)", color="tab:blue")
    lr_ax = ax.twinx()
    lr_ax.plot(steps, [r["learning_rate"] for r in rows], color="tab:gray", linestyle="--", linewidth=1)
    lr_ax.set_ylabel("learning rate", color="tab:gray")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
