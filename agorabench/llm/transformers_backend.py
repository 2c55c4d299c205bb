"""Local batched generation with transformers (the offline demo, student inference, a local judge).

Requests are grouped by sampling settings, sorted by prompt length and cut into batches, so padding
stays small; each batch is generated with left padding and its completions are yielded as it finishes.
The decode loop (`_decode`) drops a row from the batch (and its KV cache) as soon as it ends, so a batch
costs its rows' own lengths instead of every row running to the longest one.

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

    def keep(self, rows: Sequence[int]) -> None:
        """Follow the batch when rows leave it: keep only these rows' generators, in this order."""
        self.generators = [self.generators[i] for i in rows]

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

    def _processors(self, batch: list[tuple[Request, list[int]]]) -> list[Any]:
        """The logits processors of a batch, in the order generate() applies them."""
        from transformers import RepetitionPenaltyLogitsProcessor

        s = batch[0][0].sampling
        procs: list[Any] = []
        if s.repetition_penalty and s.repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(s.repetition_penalty))
        if s.temperature > 0:
            procs.append(_RowSampler([_row_seed(r) for r, _ in batch], s.temperature, s.top_p))
        return procs

    def _generate(self, batch: list[tuple[Request, list[int]]]) -> list[Completion]:
        t0 = time.perf_counter()
        enc = self.tokenizer.pad(
            {"input_ids": [ids for _, ids in batch]}, padding=True, padding_side="left", return_tensors="pt"
        ).to(self.device)
        s = batch[0][0].sampling
        k = max(r.top_logprobs for r, _ in batch)
        new, tops = _decode(
            self.lm, enc["input_ids"], enc["attention_mask"], max_new=s.max_tokens,
            processors=self._processors(batch), stopping=self._stopping(s.stop), ends=self._ends, k=k,
        )  # fmt: skip
        latency = time.perf_counter() - t0
        return [
            self._completion(r, len(ids), toks, latency, top if k else None)
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


def _decode(
    lm: Any,
    ids: Any,
    mask: Any,
    *,
    max_new: int,
    processors: list[Any],
    stopping: Any,
    ends: set[int],
    k: int = 0,
) -> tuple[list[list[int]], list[list[list[tuple[int, float]]]]]:
    """Greedy decoding of a left-padded batch, after `processors` (the seeded sampler forces its draw);
    per row: the new tokens (up to and including the one that ends it) and, when `k`, each step's k most
    likely (token id, log-probability) under the raw logits, as the OpenAI API reports them.

    A row ends at a token in `ends`, at a stop string (`stopping`) or after `max_new` tokens; an ended row
    leaves the batch, its KV cache with it, so the remaining steps compute only the rows still running.
    Row by row this is what generate() computes (the same processors, positions and cache).
    """
    import torch

    rows = ids.shape[0]
    tokens: list[list[int]] = [[] for _ in range(rows)]
    tops: list[list[list[tuple[int, float]]]] = [[] for _ in range(rows)]
    alive = list(range(rows))
    pos = (mask.long().cumsum(-1) - 1).masked_fill_(mask == 0, 1)
    with torch.inference_mode():
        out = lm(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
        cache, seqs, last = out.past_key_values, ids, pos[:, -1:]
        for step in range(max_new):
            logits = out.logits[:, -1, :].float()
            if k:
                values, top_ids = torch.log_softmax(logits, dim=-1).topk(k, dim=-1)
                for j, row in enumerate(alive):
                    tops[row].append(list(zip(top_ids[j].tolist(), values[j].tolist(), strict=True)))
            scores = logits
            for proc in processors:
                scores = proc(seqs, scores)
            nxt = scores.argmax(dim=-1)
            seqs = torch.cat([seqs, nxt[:, None]], dim=-1)
            done = [t in ends for t in nxt.tolist()]
            if stopping is not None:
                done = [d or bool(x) for d, x in zip(done, stopping(seqs, scores).tolist(), strict=True)]
            for row, t in zip(alive, nxt.tolist(), strict=True):
                tokens[row].append(t)
            keep = [j for j, d in enumerate(done) if not d]
            if not keep or step + 1 == max_new:
                break
            if len(keep) < len(alive):
                index = torch.tensor(keep, device=ids.device)
                cache.batch_select_indices(index)
                seqs, mask, last, nxt = seqs[index], mask[index], last[index], nxt[index]
                alive = [alive[j] for j in keep]
                for proc in processors:
                    if isinstance(proc, _RowSampler):
                        proc.keep(keep)
            mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=-1)
            last = last + 1
            out = lm(
                input_ids=nxt[:, None],
                attention_mask=mask,
                position_ids=last,
                past_key_values=cache,
                use_cache=True,
            )
    return tokens, tops


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
