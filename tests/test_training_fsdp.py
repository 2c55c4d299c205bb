"""2-process FSDP SFT on CPU through the rule's launcher: sharded, same losses as one process, reloadable.

The 2-process run goes through `train_student` with `gpus: 2`, i.e. the `accelerate launch --use_fsdp`
command a 2-GPU SLURM job runs; without CUDA its ranks train on CPU over gloo (docs/training.md).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agorabench.childenv import child_env
from agorabench.training import launch_command

pytestmark = pytest.mark.slow

WORDS = ["apple", "banana", "cherry", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
         "kilo", "lima"]  # fmt: skip
# fp32 on both sides (bf16: false), so the runs differ only in the order of floating-point sums (the
# gradient reduce-scatter over 2 ranks vs. accumulation in one process). Measured: losses 3.2471, 1.6082,
# 1.4368 on both, largest relative difference 7e-8; the bound leaves room for other CPUs' kernels and still
# fails on any change of data order or update.
REL_TOL = 1e-4
HP = {
    "epochs": 1,
    "learning_rate": 2e-4,
    "max_length": 128,
    "per_device_batch_size": 2,
    "global_batch_size": 4,  # accumulation 2 on one process, 1 on each of two
    "seed": 42,
    "bf16": False,
    "lr_scheduler": "constant",
    "warmup_ratio": 0.0,
    "packing": False,
    "gradient_checkpointing": False,  # off to save CPU time (the launcher passes it to FSDP)
    "attn_implementation": "sdpa",
    "save_steps": 100,
}


@pytest.fixture(scope="module")
def data_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    rows = [
        {
            "id": f"memo/{i}",
            "instruction": f"What is secret word number {i}?",
            "response": f"Word {i} is {w}.",
        }
        for i, w in enumerate(WORDS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _outputs(root: Path) -> dict[str, str]:
    return {
        "output_dir": str(root / "model"),
        "log_path": str(root / "log.jsonl"),
        "info_path": str(root / "info.json"),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_path, smollm2_dir) -> dict[str, Path]:
    from agorabench.training.stage import train_student

    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    args = ["--train", str(data_path), "--model", str(smollm2_dir), "--out", str(one / "model")]
    args += [
        "--hparams-json",
        json.dumps(HP),
        "--log",
        str(one / "log.jsonl"),
        "--info",
        str(one / "info.json"),
    ]
    done = subprocess.run(
        launch_command(1, args), env=child_env(), capture_output=True, text=True, timeout=2400
    )
    assert done.returncode == 0, done.stderr[-3000:]
    train_student(
        train_path=str(data_path),
        model_dir=str(smollm2_dir),
        hparams={**HP, "gpus": 2},
        plot_path=None,
        **_outputs(two),
    )
    return {"one": one, "two": two}


def _losses(root: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (root / "log.jsonl").read_text().splitlines()]


def test_two_processes_shard_the_model(runs):
    info = json.loads((runs["two"] / "info.json").read_text())
    assert info["processes"] == 2 and info["gradient_accumulation_steps"] == 1
    assert info["effective_global_batch"] == 4 and info["steps"] == 3
    shard = info["fsdp_sharding"]
    assert shard["dtensor_parameters"] == shard["parameters"] > 0  # every parameter is a DTensor
    assert shard["placements"] == ["Shard(dim=0)"] and shard["local_fraction"] == pytest.approx(0.5, abs=0.01)
    assert json.loads((runs["one"] / "info.json").read_text())["fsdp_sharding"] is None


def test_step_losses_match_one_process(runs):
    one, two = _losses(runs["one"]), _losses(runs["two"])
    assert len(one) == len(two) == 3
    assert one[-1] < one[0]  # the steps train: parity is not of a flat curve
    assert two == pytest.approx(one, rel=REL_TOL), (one, two)


def test_fsdp_model_reloads_with_the_trained_weights(runs, smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM

    def load(path: Path):
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    two, one, base = load(runs["two"] / "model"), load(runs["one"] / "model"), load(smollm2_dir)
    names = ["model.layers.0.mlp.up_proj.weight", "model.layers.29.self_attn.o_proj.weight"]
    for name in names:
        w2, w1, w0 = (dict(m.named_parameters())[name] for m in (two, one, base))
        moved = (w1 - w0).abs().max().item()
        assert moved > 0, f"{name} did not train"
        # Both were saved in bf16 (the base's dtype): they may differ by the bf16 rounding of one value.
        step = w1.abs().max().item() * 2**-7
        assert (w2 - w1).abs().max().item() <= step, name
