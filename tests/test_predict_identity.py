"""A stored prediction is keyed by what answered it: retrained weights under the same model name, or another
backend, never get the old answers back from the call store; operational keys change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from agorabench.errors import DataError
from agorabench.evaluation.predict import BenchmarkTask, predict_benchmark
from agorabench.llm.base import Backend, Completion, Request, Sampling
from agorabench.llm.identity import model_identity, weights_fingerprint


class Echo(Backend):
    """Answers every request with a fixed text and counts the calls it served."""

    def __init__(self, text: str) -> None:
        self.model, self.text, self.calls = "echo", text, 0

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for r in requests:
            self.calls += 1
            yield Completion(id=r.id, text=self.text, finish_reason="stop", output_tokens=1)


def _weights(root: Path, content: bytes) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.safetensors").write_bytes(content)
    (root / "config.json").write_text('{"n_layer": 2}')
    return root


def _task(tmp_path: Path) -> BenchmarkTask:
    items = tmp_path / "items.jsonl"
    items.write_text(
        "".join(json.dumps({"id": f"q/{i}", "prompt": f"What is {i} + 1?"}) + "\n" for i in range(3))
    )
    out = tmp_path / "student" / "gsm8k" / "predictions.jsonl"
    out.parent.mkdir(parents=True)
    return BenchmarkTask("gsm8k", str(items), str(out), {"temperature": 0.0, "max_tokens": 8})


def _outputs(task: BenchmarkTask) -> list[str]:
    return [json.loads(line)["output"] for line in Path(task.out_path).open()]


def test_retrained_weights_under_the_same_name_are_asked_again(tmp_path: Path) -> None:
    task = _task(tmp_path)
    spec = {"backend": "transformers", "model": "student", "batch_size": 16}
    first = _weights(tmp_path / "model", b"weights v1")
    old = Echo("old answer")
    predict_benchmark(task, "student", lambda: old, model_identity(spec | {"model_dir": str(first)}))
    again = Echo("unused")
    predict_benchmark(task, "student", lambda: again, model_identity(spec | {"model_dir": str(first)}))
    assert (old.calls, again.calls) == (3, 0)  # same weights: every answer from the store
    _weights(first, b"weights v2")  # retrained in place
    new = Echo("new answer")
    predict_benchmark(task, "student", lambda: new, model_identity(spec | {"model_dir": str(first)}))
    assert new.calls == 3 and _outputs(task) == ["new answer"] * 3


def test_identity_follows_defining_keys_only(tmp_path: Path) -> None:
    root = _weights(tmp_path / "m", b"w")
    base = {"backend": "vllm", "model": "m", "model_dir": str(root), "batch_size": 16}
    assert model_identity(base) == model_identity(base | {"batch_size": 64, "concurrency": 8})
    assert model_identity(base) != model_identity(base | {"dtype": "float32"})
    assert model_identity(base) != model_identity(base | {"backend": "transformers"})
    api = {"backend": "openai", "model": "gpt-4o-2024-08-06"}
    assert model_identity(api) != model_identity(api | {"model": "gpt-4o-mini-2024-07-18"})


def test_fingerprint_reads_top_level_files_only(tmp_path: Path) -> None:
    root = _weights(tmp_path / "m", b"w")
    before = weights_fingerprint(root)
    (root / "checkpoint-10").mkdir()
    (root / "checkpoint-10" / "optimizer.pt").write_bytes(b"state")
    assert weights_fingerprint(root) == before
    (root / "config.json").write_text('{"n_layer": 3}')
    assert weights_fingerprint(root) != before
    with pytest.raises(DataError, match="model folder not found"):
        weights_fingerprint(tmp_path / "absent")


def test_large_files_are_sampled_yet_any_region_change_is_seen(tmp_path: Path, monkeypatch) -> None:
    from agorabench.llm import identity

    monkeypatch.setattr(identity, "SAMPLED_ABOVE", 1024)
    monkeypatch.setattr(identity, "_SAMPLE", 64)
    root = tmp_path / "m"
    root.mkdir()
    weights = root / "model.safetensors"
    data = bytearray(range(256)) * 20  # 5,120 bytes: sampled at 0, 2,560 and 5,056
    weights.write_bytes(bytes(data))
    before = weights_fingerprint(root)
    for offset in (10, 2_570, 5_100):
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        weights.write_bytes(bytes(changed))
        assert weights_fingerprint(root) != before, offset
    weights.write_bytes(bytes(data))
    assert weights_fingerprint(root) == before


def test_a_changed_generator_model_gets_fresh_generation_ids() -> None:
    from agorabench.generation.run import make_request

    class Spec:
        index, prompt = 0, "Write a problem."

    def rid(identity: str) -> str:
        return make_request(Spec(), 0, generator="g", domain="math", method="instance_generation",
                            variant="agorabench", sampling=Sampling(temperature=1.0), seed=42,
                            system_prompt=None, model_identity=identity).id  # fmt: skip

    a = model_identity({"backend": "openai", "model": "gpt-4o-2024-08-06"})
    b = model_identity({"backend": "openai", "model": "gpt-4o-2024-11-20"})
    assert rid(a) == rid(a) and rid(a) != rid(b)
