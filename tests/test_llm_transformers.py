"""TransformersBackend on the real SmolLM2-135M-Instruct (CPU, tiny max_tokens)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from agorabench.errors import ConfigError
from agorabench.llm.base import Backend, Completion, Request, Sampling
from agorabench.llm.factory import make_backend
from agorabench.llm.store import cached_complete
from agorabench.llm.transformers_backend import TransformersBackend

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What is 2+2?",
    "Write a haiku about the sea.",
    "Name three colors.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Say hello.",
]


def _reqs(tag: str, **sampling) -> list[Request]:
    s = Sampling(**({"max_tokens": 12} | sampling))
    return [Request(f"{tag}{i}", ({"role": "user", "content": q},), s) for i, q in enumerate(QUESTIONS)]


@pytest.fixture(scope="module")
def backend(smollm2_dir: Path) -> TransformersBackend:
    b = make_backend({"backend": "transformers", "model_dir": str(smollm2_dir), "batch_size": 4,
                      "num_threads": 1}, key="generators.smol")  # fmt: skip
    assert isinstance(b, TransformersBackend)
    return b


@pytest.fixture(scope="module")
def backend_fp32(smollm2_dir: Path) -> TransformersBackend:
    return TransformersBackend(smollm2_dir, dtype="float32", batch_size=8, num_threads=1)


def test_greedy_batch_counts_and_lengths(backend: TransformersBackend) -> None:
    reqs = _reqs("g")
    out = {c.id: c for c in backend.complete(reqs)}
    assert set(out) == {r.id for r in reqs}
    for r in reqs:
        c = out[r.id]
        assert c.input_tokens == len(backend.encode(r)) and c.model == "smollm2-135m-instruct"
        assert 1 <= c.output_tokens <= 12 and c.text.strip() and c.attempts == 1
        assert c.finish_reason == ("length" if c.output_tokens == 12 else "stop")
    assert out["g3"].finish_reason == "length" and out["g3"].text.startswith("Natalia sold 48 clips")
    assert out["g0"].finish_reason == "stop" and "4" in out["g0"].text  # ended by <|im_end|> before 12
    again = {c.id: c.text for c in backend.complete(reqs)}
    assert again == {k: c.text for k, c in out.items()}  # greedy is deterministic


def test_stop_strings_cut_and_stop_early(backend: TransformersBackend) -> None:
    free = next(iter(backend.complete([_reqs("f", max_tokens=40)[3]])))
    assert "\n" in free.text  # without a stop string it writes past the first line
    [c] = backend.complete([_reqs("s", max_tokens=40, stop=("\n", "####"))[3]])
    first_line = free.text.split("\n")[0]
    assert c.finish_reason == "stop" and c.text == first_line and "\n" not in c.text
    assert c.output_tokens < free.output_tokens  # generation itself stopped at the stop string


def test_sampling_is_seeded_per_request(backend_fp32: TransformersBackend) -> None:
    reqs = _reqs("t", temperature=0.9, top_p=0.95, max_tokens=10, seed=1)
    batch = {c.id: c.text for c in backend_fp32.complete(reqs)}
    alone = {r.id: next(iter(backend_fp32.complete([r]))).text for r in reqs[:2]}
    assert alone == {k: batch[k] for k in alone}  # same draws whatever the batch (fp32: same logits)
    reseeded = _reqs("t", temperature=0.9, top_p=0.95, max_tokens=10, seed=2)
    other = {c.id: c.text for c in backend_fp32.complete(reseeded)}
    assert other != batch  # another seed, other samples
    greedy = {c.id: c.text for c in backend_fp32.complete(_reqs("t", max_tokens=10))}
    assert greedy != batch


def test_repetition_penalty_and_mixed_settings(backend: TransformersBackend) -> None:
    ask = ({"role": "user", "content": "Repeat the word 'cat' twenty times."},)
    plain = Request("p", ask, Sampling(max_tokens=24))
    penalised = Request("q", ask, Sampling(max_tokens=24, repetition_penalty=1.8))
    out = {c.id: c for c in backend.complete([plain, penalised, *_reqs("m", max_tokens=3)])}
    assert out["p"].text != out["q"].text
    assert all(out[f"m{i}"].output_tokens <= 3 for i in range(len(QUESTIONS)))


def test_batching_matches_single_rows_and_store_resumes(
    smollm2_dir: Path, backend_fp32: TransformersBackend, tmp_path: Path
) -> None:
    single = TransformersBackend(smollm2_dir, dtype="float32", batch_size=1, num_threads=1)
    reqs = _reqs("r", max_tokens=6)
    batched = {c.id: (c.text, c.output_tokens, c.finish_reason) for c in backend_fp32.complete(reqs)}
    asked: list[str] = []

    class Recording(Backend):  # the real backend, recording what it is asked to generate
        def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
            asked.extend(r.id for r in requests)
            return single.complete(requests)

    recorder = Recording()
    first = cached_complete(recorder, reqs[:2], tmp_path / "calls.jsonl")
    both = cached_complete(recorder, reqs, tmp_path / "calls.jsonl")
    assert asked == ["r0", "r1", "r2", "r3", "r4"]  # the second call generated only the 3 new ones
    assert {k: (c.text, c.output_tokens, c.finish_reason) for k, c in both.items()} == batched  # padding-free
    assert [both[r.id] for r in reqs[:2]] == [first[r.id] for r in reqs[:2]]


def test_bad_settings_name_the_key(smollm2_dir: Path, tmp_path: Path) -> None:
    for spec, key in [
        ({"model_dir": str(tmp_path)}, "students.s.model_dir"),
        ({"model_dir": str(smollm2_dir), "dtype": "bf16"}, "students.s.dtype"),
        ({"model_dir": str(smollm2_dir), "batch_size": 0}, "students.s.batch_size"),
        ({"model_dir": str(smollm2_dir), "top_k": 5}, "students.s.top_k"),
    ]:
        with pytest.raises(ConfigError) as err:
            make_backend({"backend": "transformers", **spec}, key="students.s")
        assert err.value.key == key


@pytest.mark.parametrize(
    "sampling",
    [{"max_tokens": 40}, {"max_tokens": 40, "temperature": 0.8, "top_p": 0.95, "seed": 3},
     {"max_tokens": 40, "stop": ("\n",)}, {"max_tokens": 24, "repetition_penalty": 1.5}],
)  # fmt: skip
def test_decode_loop_matches_transformers_generate(backend_fp32: TransformersBackend, sampling) -> None:
    """The backend's own decode loop (rows leave the batch as they end) against generate() itself."""
    import torch
    from transformers import GenerationConfig, LogitsProcessorList

    from agorabench.llm.transformers_backend import _row_seed, _RowSampler

    reqs = _reqs("d", **sampling)
    ours = {c.id: (c.text, c.output_tokens, c.finish_reason) for c in backend_fp32.complete(reqs)}
    s, tok = reqs[0].sampling, backend_fp32.tokenizer
    enc = tok.pad({"input_ids": [backend_fp32.encode(r) for r in reqs]}, padding_side="left",
                  return_tensors="pt")  # fmt: skip
    config = GenerationConfig(
        max_new_tokens=s.max_tokens, do_sample=False, repetition_penalty=s.repetition_penalty or 1.0,
        pad_token_id=tok.pad_token_id, eos_token_id=backend_fp32.eos_ids,
    )  # fmt: skip
    procs = [_RowSampler([_row_seed(r) for r in reqs], s.temperature, s.top_p)] if s.temperature else []
    with torch.inference_mode():
        out = backend_fp32.lm.generate(**enc, generation_config=config,
                                       logits_processor=LogitsProcessorList(procs),
                                       stopping_criteria=backend_fp32._stopping(s.stop))  # fmt: skip
    new = out[:, enc["input_ids"].shape[1] :].tolist()
    theirs = {}
    for r, toks in zip(reqs, new, strict=True):
        c = backend_fp32._completion(r, len(backend_fp32.encode(r)), toks, 0.0)
        theirs[r.id] = (c.text, c.output_tokens, c.finish_reason)
    assert ours == theirs
    if "repetition_penalty" not in sampling:  # rows of different lengths: some left the batch early
        assert len({n for _, n, _ in ours.values()}) > 1
