"""`training.one_job`: train_all trains several models in one process into staging folders, each model's
own job links its model; the models equal those trained one per job, and a rerun trains nothing again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agorabench.errors import DataError
from agorabench.jsonl import sha256_file
from agorabench.training.stage import train_all, train_student

HP = {
    "epochs": 1,
    "learning_rate": 1e-4,
    "max_length": 256,
    "per_device_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "seed": 7,
    "bf16": True,
    "lr_scheduler": "constant",
    "max_steps": 1,
    "gradient_checkpointing": False,
    "save_steps": 100,
    "one_job": True,
}


def _data(path: Path, n: int, word: str) -> Path:
    rows = [
        {"id": f"{word}/{i}", "instruction": f"Say {word} {i}.", "response": f"{word} {i}"} for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _outputs(root: Path) -> dict[str, str]:
    return {
        "output_dir": str(root / "model"),
        "log_path": str(root / "train_log.jsonl"),
        "info_path": str(root / "train_info.json"),
        "plot_path": str(root / "loss.png"),
    }


@pytest.fixture(scope="module")
def group(tmp_path_factory, smollm2_dir) -> dict:
    tmp = tmp_path_factory.mktemp("one_job")
    models = []
    for name, n in (("a", 2), ("b", 3), ("empty", 0)):
        models.append({
            "name": name,
            "data": str(_data(tmp / f"{name}.jsonl", n, name)),
            "staged": str(tmp / "staged" / name),
            "output": str(tmp / "final" / name / "model"),
        })  # fmt: skip
    summary = str(tmp / "train_all.json")
    counts = train_all(models=models, model_dir=str(smollm2_dir), hparams=HP, summary_path=summary)
    return {"tmp": tmp, "models": models, "summary": summary, "counts": counts}


@pytest.mark.slow
def test_models_equal_one_job_per_model(group, smollm2_dir):
    assert group["counts"] == {"models": 3, "trained": 3, "kept": 0}
    alone = group["tmp"] / "alone"
    train_student(train_path=group["models"][1]["data"], model_dir=str(smollm2_dir), hparams=HP,
                  **_outputs(alone))  # fmt: skip
    staged = Path(group["models"][1]["staged"], "model", "model.safetensors")
    assert sha256_file(staged) == sha256_file(alone / "model" / "model.safetensors")


@pytest.mark.slow
def test_link_puts_the_staged_model_in_place(group):
    m = group["models"][0]
    out = _outputs(Path(m["output"]).parent)
    counts = train_student(train_path=m["data"], model_dir="unused", hparams=HP, trained_by=group["summary"],
                           **out)  # fmt: skip
    assert counts["trained"] and counts["train_rows"] == 2 and counts["trained_by"] == group["summary"]
    final = Path(out["output_dir"], "model.safetensors")
    assert final.stat().st_ino == Path(m["staged"], "model", "model.safetensors").stat().st_ino
    info = json.loads(Path(out["info_path"]).read_text())
    assert info["output_dir"] == out["output_dir"] and info["trained_by"] == group["summary"]
    assert Path(out["log_path"]).read_text() == Path(m["staged"], "train_log.jsonl").read_text()


@pytest.mark.slow
def test_empty_set_links_the_untrained_base(group, smollm2_dir):
    m = group["models"][2]
    out = _outputs(Path(m["output"]).parent)
    counts = train_student(train_path=m["data"], model_dir="unused", hparams=HP, trained_by=group["summary"],
                           **out)  # fmt: skip
    assert counts["trained"] is False and counts["train_rows"] == 0
    base = sha256_file(Path(smollm2_dir, "model.safetensors"))
    assert sha256_file(Path(out["output_dir"], "model.safetensors")) == base


@pytest.mark.slow
def test_rerun_keeps_every_unchanged_model(group, smollm2_dir):
    before = Path(group["models"][0]["staged"], "model", "model.safetensors").stat().st_mtime_ns
    counts = train_all(models=group["models"], model_dir=str(smollm2_dir), hparams=HP,
                       summary_path=group["summary"])  # fmt: skip
    assert counts == {"models": 3, "trained": 0, "kept": 3}
    assert Path(group["models"][0]["staged"], "model", "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.slow
def test_link_refuses_other_data_and_unknown_models(group, tmp_path):
    m = group["models"][0]
    other = _data(tmp_path / "other.jsonl", 2, "other")
    with pytest.raises(DataError, match="differs from the data train_all trained on"):
        train_student(train_path=str(other), model_dir="unused", hparams=HP, trained_by=group["summary"],
                      **_outputs(Path(m["output"]).parent))  # fmt: skip
    with pytest.raises(DataError, match="train_all trained no model for"):
        train_student(train_path=m["data"], model_dir="unused", hparams=HP, trained_by=group["summary"],
                      **_outputs(tmp_path / "nowhere"))  # fmt: skip


@pytest.mark.slow
def test_link_names_a_missing_staged_model(group, tmp_path):
    summary = json.loads(Path(group["summary"]).read_text())
    summary["models"][0]["staged"] = str(tmp_path / "gone")
    moved = tmp_path / "train_all.json"
    moved.write_text(json.dumps(summary))
    m = group["models"][0]
    with pytest.raises(DataError, match="staged model is missing"):
        train_student(train_path=m["data"], model_dir="unused", hparams=HP, trained_by=str(moved),
                      **_outputs(Path(m["output"]).parent))  # fmt: skip
