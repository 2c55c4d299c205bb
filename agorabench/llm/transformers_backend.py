"""Local batched generation with transformers (the offline demo, student inference, a local judge).

Requests are grouped by sampling settings, sorted by prompt length and cut into batches, so padding
stays small; each batch is generated with left padding and its completions are yielded as it finishes.

Sampling is done per row by a logits processor that draws from a `torch.Generator` seeded from the
request id and `Sampling.seed`, then forces that token under greedy decoding. A request therefore draws
the same random numbers whatever batch it lands in (after a resume, batches differ); the logits
themselves can still differ slightly with padding in bfloat16.

`output_tokens` counts generated tokens, excluding padding and the end-of-sequence token.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError
from agorabench.llm.base import Backend, Completion, Request, Sampling, TokenLogprobs, cut_at_stop

DTYPES = ("bfloat16", "float16", "float32", "auto")


def _row_seed(request: Request) -> int:
    blob = f"{request.id}\0{request.sampling.seed}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1)


def _group_key(s: Sampling) -> tuple:
    return (s.temperature, s.top_p, s.max_tokens, s.stop, s.repetition_penalty)


class _RowSampler:
    """Logits processor: temperature + top-p sampling with one generator per row (then greedy picks it).

    Vectorised over the batch. The nucleus is read from the `top_k` most probable tokens (one partial
    selection instead of a full-vocabulary sort); only when some row's nucleus is wider than that is
    the full vocabulary sorted, and both give the same token for the same draw. With top_p = 1 the
    inverse CDF runs over the vocabulary in its own order, with no selection at all.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, top_k: int = 1024):
        import torch

        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k

    def _nucleus(self, probs: Any) -> tuple[Any, Any]:
        """(kept probabilities in descending order, their token ids): the smallest prefix reaching top_p."""
        import torch

        k = min(self.top_k, probs.shape[-1])
        sorted_p, order = probs.topk(k, dim=-1)
        if k < probs.shape[-1] and bool((sorted_p.sum(-1) < self.top_p).any()):
            sorted_p, order = torch.sort(probs, descending=True, dim=-1)
        return sorted_p.masked_fill((sorted_p.cumsum(-1) - sorted_p) >= self.top_p, 0.0), order

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        kept, order = self._nucleus(probs) if self.top_p < 1.0 else (probs, None)
        cdf = kept.cumsum(-1)
        # One uniform draw per row and step (inverse CDF): a row's draws do not depend on its batch.
        u = torch.cat([torch.rand(1, generator=g) for g in self.generators]).to(scores.device)
        pos = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None]).clamp_(max=cdf.shape[-1] - 1)
        chosen = pos if order is None else order.gather(-1, pos)
        return torch.full_like(scores, float("-inf")).scatter_(-1, chosen, 0.0)


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(
        self,
        model_dir: str | Path,
        dtype: str = "bfloat16",
        batch_size: int = 16,
        device: str = "auto",
        num_threads: int | None = None,
        model: str | None = None,
        chat_template: str | None = None,
        prompt_format: str = "chat",
        key: str = "backend",
    ):
        _check_args(model_dir, dtype, batch_size, num_threads, key)
        if prompt_format not in ("chat", "raw"):
            raise ConfigError(f"{key}.prompt_format", f"must be 'chat' or 'raw', got {prompt_format!r}")
        self.prompt_format = prompt_format
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.batch_size = batch_size
        self.model = model or Path(model_dir).name
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if chat_template is not None:
            self.tokenizer.chat_template = chat_template
        if prompt_format == "chat" and not self.tokenizer.chat_template:
            raise ConfigError(
                f"{key}.model_dir", f"tokenizer in {model_dir} has no chat template (set chat_template)"
            )
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.lm = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype).to(self.device).eval()
        self.eos_ids = self._eos_ids()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token_id = self.eos_ids[0]
        # A row ends at its end-of-sequence token; rows finished early are padded with pad_token_id.
        self._ends = {*self.eos_ids, self.tokenizer.pad_token_id}
        self._stop_criteria: dict[tuple[str, ...], Any] = {}

    def _eos_ids(self) -> list[int]:
        ids = self.lm.generation_config.eos_token_id
        ids = list(ids) if isinstance(ids, list | tuple) else [ids] if ids is not None else []
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def encode(self, request: Request) -> list[int]:
        """Prompt token ids: the chat template with the generation prompt, or (prompt_format "raw") the
        messages' contents joined by blank lines, for the model to continue as plain text."""
        if self.prompt_format == "raw":
            text = "\n\n".join(m["content"] for m in request.messages)
        else:
            text = self.tokenizer.apply_chat_template(
                [dict(m) for m in request.messages], add_generation_prompt=True, tokenize=False
            )
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for batch in self._batches(requests):
            yield from self._generate(batch)

    def _batches(self, requests: Sequence[Request]) -> Iterator[list[tuple[Request, list[int]]]]:
        groups: dict[tuple, list[tuple[Request, list[int]]]] = {}
        for r in requests:
            groups.setdefault(_group_key(r.sampling), []).append((r, self.encode(r)))
        for rows in groups.values():
            rows.sort(key=lambda row: len(row[1]), reverse=True)  # longest first: memory errors show early
            for i in range(0, len(rows), self.batch_size):
                yield rows[i : i + self.batch_size]

    def _stopping(self, stop: tuple[str, ...]) -> Any:
        from transformers import StoppingCriteriaList, StopStringCriteria

        if not stop:
            return None
        if stop not in self._stop_criteria:
            self._stop_criteria[stop] = StopStringCriteria(self.tokenizer, list(stop))
        return StoppingCriteriaList([self._stop_criteria[stop]])

    def _generation_kwargs(self, batch: list[tuple[Request, list[int]]]) -> dict[str, Any]:
        from transformers import GenerationConfig, LogitsProcessorList

        s = batch[0][0].sampling
        # Every sampling field is set explicitly so a model's generation_config.json cannot leak in.
        config = GenerationConfig(
            max_new_tokens=s.max_tokens, do_sample=False, num_beams=1, temperature=1.0, top_p=1.0,
            repetition_penalty=s.repetition_penalty or 1.0,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.eos_ids,
        )  # fmt: skip
        kwargs: dict[str, Any] = {"generation_config": config, "stopping_criteria": self._stopping(s.stop)}
        if s.temperature > 0:
            seeds = [_row_seed(r) for r, _ in batch]
            kwargs["logits_processor"] = LogitsProcessorList([_RowSampler(seeds, s.temperature, s.top_p)])
        return kwargs

    def _generate(self, batch: list[tuple[Request, list[int]]]) -> list[Completion]:
        import torch

        t0 = time.perf_counter()
        enc = self.tokenizer.pad(
            {"input_ids": [ids for _, ids in batch]}, padding=True, padding_side="left", return_tensors="pt"
        ).to(self.device)
        k = max(r.top_logprobs for r, _ in batch)
        kwargs = self._generation_kwargs(batch)
        if k:  # the raw logits of every step, for the log-probabilities
            kwargs["generation_config"].update(output_logits=True, return_dict_in_generate=True)
        with torch.inference_mode():
            out = self.lm.generate(**enc, **kwargs)
        seqs = out.sequences if k else out
        new = seqs[:, enc["input_ids"].shape[1] :].tolist()
        tops = _top_ids(out.logits, k, len(batch)) if k else [None] * len(batch)
        latency = time.perf_counter() - t0
        return [
            self._completion(r, len(ids), toks, latency, top)
            for (r, ids), toks, top in zip(batch, new, tops, strict=True)
        ]

    def _logprobs(self, steps: list[list[tuple[int, float]]], k: int) -> list[TokenLogprobs]:
        return [{self.tokenizer.decode([t]): lp for t, lp in step[:k]} for step in steps]

    def _completion(
        self, request: Request, n_in: int, tokens: list[int], latency: float, top: list | None = None
    ) -> Completion:
        end = next((i for i, t in enumerate(tokens) if t in self._ends), None)
        gen = tokens if end is None else tokens[:end]
        logprobs = self._logprobs(top[: len(gen)], request.top_logprobs) if request.top_logprobs else None
        text, stopped = cut_at_stop(
            self.tokenizer.decode(gen, skip_special_tokens=True), request.sampling.stop
        )
        reason = "stop" if stopped or end is not None else "length"
        return Completion(
            id=request.id, text=text, finish_reason=reason, input_tokens=n_in, output_tokens=len(gen),
            latency_s=round(latency, 4), attempts=1, model=self.model, top_logprobs=logprobs,
        )  # fmt: skip

    def close(self) -> None:
        self.lm = None  # free the weights


def _top_ids(logits: Sequence[Any], k: int, rows: int) -> list[list[list[tuple[int, float]]]]:
    """Per row, per step: the k most likely (token id, log-probability) under the model's raw logits
    (before temperature, top-p and repetition penalty, as the OpenAI API reports them)."""
    import torch

    steps = [torch.log_softmax(step.float(), dim=-1).topk(k, dim=-1) for step in logits]
    return [
        [list(zip(ids[row].tolist(), values[row].tolist(), strict=True)) for values, ids in steps]
        for row in range(rows)
    ]


def _check_args(
    model_dir: str | Path, dtype: str, batch_size: int, num_threads: int | None, key: str
) -> None:
    if not (Path(model_dir) / "config.json").is_file():
        raise ConfigError(
            f"{key}.model_dir", f"{model_dir} is not a transformers model folder (no config.json)"
        )
    if dtype not in DTYPES:
        raise ConfigError(f"{key}.dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"{key}.batch_size", f"must be an integer >= 1, got {batch_size!r}")
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ConfigError(f"{key}.num_threads", f"must be an integer >= 1 or null, got {num_threads!r}")
