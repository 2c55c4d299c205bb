"""The generation orchestrator: one generator, one setting, n valid instances.

Requests go through the durable CallStore, so a restart (even after kill -9) reuses every stored call.
The schedule is deterministic: round r sends, for every index still without a valid output, its next
attempt (in index order, cut to the remaining call budget). Outcomes depend only on each stored
completion, never on arrival order, so a resumed run replays the same rounds and makes no call twice.

Request id = request_id(generator, domain, method, variant, index, attempt, prompt_sha, sampling_sha):
prompt_sha covers the exact messages (system + rendered meta-prompt), sampling_sha the sampling
parameters of the attempt. Keys that do not change what is asked (n, max_attempts, paths, price,
progress) leave stored calls valid.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agorabench.errors import AgoraBenchError, ConfigError, DataError
from agorabench.generation.instances import PromptSpec, attempt_seed, build_official_prompt, build_prompt
from agorabench.generation.parsing import CountTokens, Parsed, parse_completion
from agorabench.generation.prompts import Template, check_setting, load_template
from agorabench.jsonl import read_jsonl, sha256_text, write_json, write_jsonl
from agorabench.llm.base import Backend, Completion, Request, Sampling, request_id
from agorabench.llm.batch import batch_price
from agorabench.llm.store import CallStore

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "You write training data for language models. Follow the guidelines, requirements and examples "
    "you are given and produce exactly one new instance in the requested format."
)
PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "date")
DEMONSTRATION_MODES = ("seeds_only", "official")


@dataclass(frozen=True)
class _Job:
    spec: PromptSpec
    attempt: int
    request: Request


@dataclass
class _Ledger:
    """Running totals for the stats JSON."""

    calls: int = 0
    calls_from_store: int = 0
    retries: int = 0
    tokens: Counter = field(default_factory=Counter)  # input/output, all and new-only
    latency_s: float = 0.0
    rejected: Counter = field(default_factory=Counter)
    finish_reasons: Counter = field(default_factory=Counter)
    models: set = field(default_factory=set)

    def add(self, comp: Completion, from_store: bool) -> None:
        self.calls += 1
        self.calls_from_store += from_store
        self.retries += max(comp.attempts - 1, 0)
        self.latency_s += comp.latency_s
        self.finish_reasons[comp.finish_reason] += 1
        if comp.model:
            self.models.add(comp.model)
        self.tokens["input"] += comp.input_tokens
        self.tokens["output"] += comp.output_tokens
        if not from_store:
            self.tokens["input_new"] += comp.input_tokens
            self.tokens["output_new"] += comp.output_tokens


def cost_usd(input_tokens: int, output_tokens: int, price: dict | None) -> float | None:
    """Dollars for the tokens at `price` ($ per million input / output tokens); None without a price."""
    if price is None:
        return None
    return input_tokens / 1e6 * price["input_per_mtok"] + output_tokens / 1e6 * price["output_per_mtok"]


def _check_price(price: dict | None) -> None:
    if price is None:
        return
    missing = [k for k in PRICE_KEYS if k not in price]
    if missing:
        raise ConfigError("price", f"missing {', '.join(missing)} (needs {', '.join(PRICE_KEYS)})")
    for key in PRICE_KEYS[:2]:
        if not isinstance(price[key], int | float) or price[key] < 0:
            raise ConfigError(f"price.{key}", f"must be a number >= 0, got {price[key]!r}")


def _check_seeds(seeds: list[dict], seeds_name: str, method: str) -> None:
    for i, rec in enumerate(seeds):
        rid = rec.get("id") if isinstance(rec, dict) else None
        for key in ("id", "instruction", "response"):
            if not isinstance(rec, dict) or not isinstance(rec.get(key), str):
                raise DataError(seeds_name, f"seed {i}: field {key!r} missing or not a string", record=rid)
        if not rec["instruction"].strip():
            raise DataError(seeds_name, f"seed {i}: empty instruction", record=rid)
        if method != "response_generation" and not rec["response"].strip():
            raise DataError(seeds_name, f"seed {i}: empty response ({method} needs one)", record=rid)


def _check_counts(
    n: int, max_attempts: int, chunk_size: int, n_seeds: int, method: str, wrap: bool, seeds_name: str
) -> None:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError("chunk_size", f"must be an integer >= 1, got {chunk_size!r}")
    if not isinstance(n, int) or n < 0:
        raise ConfigError("n", f"must be an integer >= 0, got {n!r}")
    if not isinstance(max_attempts, int) or max_attempts < 0:
        raise ConfigError("max_attempts", f"must be an integer >= 0, got {max_attempts!r}")
    if method != "instance_generation" and n > n_seeds and not wrap:
        raise ConfigError(
            "n", f"{n} instances asked but {seeds_name} has {n_seeds} seeds (set wrap to reuse)"
        )


def make_request(
    spec: PromptSpec,
    attempt: int,
    *,
    generator: str,
    domain: str,
    method: str,
    variant: str,
    sampling: Sampling,
    seed: int,
    system_prompt: str | None,
) -> Request:
    """The request of attempt `attempt` of a prompt; its id depends only on what is asked."""
    messages: list[dict[str, str]] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": spec.prompt})
    samp = dataclasses.replace(
        sampling, seed=attempt_seed(seed, domain, method, spec.index, attempt, sampling.seed)
    )
    prompt_sha = sha256_text(json.dumps(messages, ensure_ascii=False))
    sampling_sha = sha256_text(json.dumps(dataclasses.asdict(samp), sort_keys=True))
    rid = request_id(generator, domain, method, variant, spec.index, attempt, prompt_sha, sampling_sha)
    meta = {"generator": generator, "domain": domain, "method": method, "variant": variant}
    meta |= {"index": spec.index, "attempt": attempt, "prompt_sha": prompt_sha}
    return Request(id=rid, messages=tuple(messages), sampling=samp, meta=meta)


def _complete(
    store: CallStore, backend: Backend, jobs: list[_Job]
) -> Iterator[tuple[_Job, Completion, bool]]:
    """Each job with its completion and whether it came from the store (stored ones first)."""
    by_id = {j.request.id: j for j in jobs}
    new_ids = {r.id for r in store.pending([j.request for j in jobs])}
    for job in jobs:
        if job.request.id not in new_ids:
            yield job, store.get(job.request.id), True  # type: ignore[misc]
    for req, comp in store.run(backend, [j.request for j in jobs]):
        yield by_id[req.id], comp, False
    lost = [rid for rid in new_ids if rid not in store]
    if lost:
        raise AgoraBenchError(f"backend {backend.name!r} returned no completion for request(s) {lost[:5]}")


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_rounds(
    ctx: _Context,
    store: CallStore,
    backend: Backend,
    ledger: _Ledger,
    n: int,
    max_attempts: int,
    chunk_size: int,
    bar: tqdm,
    price: dict | None,
    attempts_per_round: int = 1,
    max_attempts_per_instance: int | None = None,
    pool_block: int | None = None,
) -> dict[int, dict]:
    """Retry rounds until every index is valid or the call budget is spent; the valid records by index.

    Each round asks `attempts_per_round` attempts of every pending index at once (better batching when most
    outputs are rejected); an index keeps its lowest valid attempt, so the result depends only on stored
    outcomes and a resumed run replays the same schedule. `max_attempts_per_instance` drops an index after
    that many attempts (the official budget). Accepted instances join `ctx.pool` (the official
    demonstration pool) at the end of each round, in index order. `pool_block` runs the indices in blocks
    of that many, each to completion, so later blocks draw demonstrations from earlier blocks' instances.
    """
    valid: dict[int, dict] = {}
    attempts = [0] * n
    cap = max_attempts_per_instance
    block = pool_block or max(n, 1)
    for first in range(0, n, block):
        pending = list(range(first, min(first + block, n)))
        while pending and ledger.calls < max_attempts:
            slots = [
                (i, attempts[i] + a)
                for a in range(attempts_per_round)
                for i in pending
                if cap is None or attempts[i] + a < cap
            ]
            tried: dict[int, list[tuple[int, Any, _Job]]] = {}
            for chunk in _chunks(slots[: max_attempts - ledger.calls], chunk_size):
                jobs = [ctx.job(i, a) for i, a in chunk]
                for job, comp, from_store in _complete(store, backend, jobs):
                    ledger.add(comp, from_store)
                    parsed = ctx.parse(job, comp)
                    if not parsed.ok:
                        ledger.rejected[parsed.reason] += 1
                    tried.setdefault(job.spec.index, []).append((job.attempt, parsed, job))
                    _postfix(bar, ledger, len(valid), price)
            failed: list[int] = []
            for i in pending:
                outcomes = sorted(tried.get(i, []), key=lambda t: t[0])
                attempts[i] += len(outcomes)
                ok = next((t for t in outcomes if t[1].ok), None)
                if ok is None:
                    if cap is None or attempts[i] < cap:
                        failed.append(i)
                else:
                    valid[i] = ctx.record(ok[2], ok[1])
                    ctx.grow_pool(valid[i], ok[1])
                    bar.update(1)
            _postfix(bar, ledger, len(valid), price)
            bar.refresh()
            pending = failed
    return valid


def generate_set(
    *,
    generator: str,
    backend: Backend,
    sampling: Sampling,
    domain: str,
    method: str,
    variant: str,
    template_path: str | Path,
    seeds: list[dict],
    themes: list[str],
    first_words: list[str],
    n: int,
    max_attempts: int,
    seed: int,
    store_path: str,
    out_path: str,
    stats_path: str,
    count_tokens: CountTokens | None = None,
    max_tokens: int | None = None,
    price: dict | None = None,
    progress: bool = True,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    wrap: bool = False,
    seeds_name: str = "seeds",
    chunk_size: int = 1024,
    attempts_per_round: int = 1,
    validation: str = "strict",
    demonstrations: str = "seeds_only",
    max_attempts_per_instance: int | None = None,
    labels: dict[str, Any] | None = None,
    pool_block: int | None = None,
) -> dict:
    """Generate up to n valid instances with at most `max_attempts` calls; returns the stats ledger.

    `count_tokens`/`max_tokens`: the student's chat-format length check (see parsing). `wrap`: reuse seeds
    when n exceeds them (response generation, quality enhancement). `seeds_name` names the seed source
    in errors. `chunk_size` bounds how many requests (and prompts) are held at once. `validation`
    ("strict" | "official"), `demonstrations` ("seeds_only" | "official") and `max_attempts_per_instance`
    select the modes of config/README.md; `labels` (e.g. the template origin) go into the stats as is.
    """
    if pool_block is not None and (not isinstance(pool_block, int) or pool_block < 1):
        raise ConfigError("generation.pool_block", f"must be an integer >= 1, got {pool_block!r}")
    if demonstrations not in DEMONSTRATION_MODES:
        raise ConfigError(
            "generation.demonstrations", f"{demonstrations!r} is not one of {', '.join(DEMONSTRATION_MODES)}"
        )
    check_setting(domain, method, variant)
    _check_price(price)
    _check_seeds(seeds, seeds_name, method)
    _check_counts(n, max_attempts, chunk_size, len(seeds), method, wrap, seeds_name)
    template = load_template(template_path, method)
    if getattr(backend, "mode", "online") == "batch":  # batch price; CallStore.run keeps the batch ledger
        price = batch_price(price, backend.batch_discount)  # type: ignore[attr-defined]
        chunk_size = max(chunk_size, max_attempts)  # a round is one wait for its batches, not one per chunk
    ctx = _Context(
        generator=generator, domain=domain, method=method, variant=variant, template=template, seeds=seeds,
        themes=themes, first_words=first_words, seed=seed, sampling=sampling, system_prompt=system_prompt,
        wrap=wrap, seeds_name=seeds_name, count_tokens=count_tokens, max_tokens=max_tokens,
        validation=validation, demonstrations=demonstrations,
    )  # fmt: skip
    ledger = _Ledger()
    started = time.monotonic()
    desc = f"{generator} {domain}/{method}/{variant}"
    with tqdm(
        total=n, desc=desc, unit="inst", file=sys.stderr, disable=not progress, dynamic_ncols=True
    ) as bar:
        valid = _run_rounds(
            ctx,
            CallStore(store_path),
            backend,
            ledger,
            n,
            max_attempts,
            chunk_size,
            bar,
            price,
            attempts_per_round,
            max_attempts_per_instance,
            pool_block,
        )

    rows = [valid[i] for i in sorted(valid)]
    write_jsonl(out_path, rows)
    stats = _stats(ctx, ledger, n, max_attempts, len(rows), price, time.monotonic() - started)
    stats |= {"max_attempts_per_instance": max_attempts_per_instance, **(labels or {})}
    write_json(stats_path, stats)
    return stats


@dataclass(frozen=True)
class _Context:
    """Everything that turns an (index, attempt) into a request and a completion into a pair."""

    generator: str
    domain: str
    method: str
    variant: str
    template: Template
    seeds: list[dict]
    themes: list[str]
    first_words: list[str]
    seed: int
    sampling: Sampling
    system_prompt: str | None
    wrap: bool
    seeds_name: str
    count_tokens: CountTokens | None
    max_tokens: int | None
    validation: str = "strict"
    demonstrations: str = "seeds_only"
    pool: list[dict] = field(default_factory=list)  # accepted instances, official demonstration mode

    def job(self, index: int, attempt: int) -> _Job:
        if self.demonstrations == "official":
            spec = build_official_prompt(
                self.template, domain=self.domain, method=self.method, index=index, attempt=attempt,
                seeds=self.seeds, pool=self.pool, themes=self.themes, first_words=self.first_words,
                seed=self.seed, wrap=self.wrap, seeds_name=self.seeds_name,
            )  # fmt: skip
        else:
            spec = build_prompt(
                self.template, domain=self.domain, method=self.method, index=index, seeds=self.seeds,
                themes=self.themes, first_words=self.first_words, seed=self.seed, wrap=self.wrap,
                seeds_name=self.seeds_name,
            )  # fmt: skip
        req = make_request(
            spec, attempt, generator=self.generator, domain=self.domain, method=self.method,
            variant=self.variant, sampling=self.sampling, seed=self.seed, system_prompt=self.system_prompt,
        )  # fmt: skip
        return _Job(spec, attempt, req)

    def record(self, job: _Job, parsed: Parsed) -> dict:
        """A generated-instance record (docs/formats.md)."""
        spec = job.spec
        return {
            "id": f"{self.generator}/{self.domain}/{self.method}/{self.variant}/{spec.index}",
            "instruction": parsed.instruction,
            "response": parsed.response,
            "index": spec.index,
            "request_id": job.request.id,
            "demo_ids": spec.demo_ids,
            "source_id": spec.source_id,
            "theme": spec.theme,
            "first_word": spec.first_word,
        }

    def parse(self, job: _Job, comp: Completion) -> Parsed:
        source = job.spec.source
        return parse_completion(
            comp.text or "", domain=self.domain, method=self.method, variant=self.variant,
            instruction=source["instruction"] if source is not None else None,
            finish_reason=comp.finish_reason, count_tokens=self.count_tokens, max_tokens=self.max_tokens,
            validation=self.validation, prompt=job.spec.prompt,
        )  # fmt: skip

    def grow_pool(self, record: dict, parsed: Parsed) -> None:
        """An accepted instance-generation output joins the demonstration pool (official mode only)."""
        if self.demonstrations == "official" and self.method == "instance_generation":
            instruction, response = parsed.demonstration
            self.pool.append({"id": record["id"], "instruction": instruction, "response": response})


def _postfix(bar: tqdm, ledger: _Ledger, n_valid: int, price: dict | None) -> None:
    post = {"calls": ledger.calls, "valid": f"{n_valid / max(ledger.calls, 1):.0%}"}
    cost = cost_usd(ledger.tokens["input_new"], ledger.tokens["output_new"], price)
    if cost is not None:
        post["$"] = f"{cost:.2f}"
    bar.set_postfix(post, refresh=False)


def _stats(
    ctx: _Context, ledger: _Ledger, n: int, max_attempts: int, n_valid: int, price: dict | None, wall_s: float
) -> dict[str, Any]:
    tok = ledger.tokens
    return {
        "generator": ctx.generator,
        "domain": ctx.domain,
        "method": ctx.method,
        "variant": ctx.variant,
        "template": ctx.template.path,
        "template_sha256": ctx.template.sha,
        "validation": ctx.validation,
        "demonstrations": ctx.demonstrations,
        "models": sorted(ledger.models),
        "n": n,
        "max_attempts": max_attempts,
        "max_tokens": ctx.max_tokens,
        "valid": n_valid,
        "shortfall": n - n_valid,
        "calls": ledger.calls,
        "calls_new": ledger.calls - ledger.calls_from_store,
        "calls_from_store": ledger.calls_from_store,
        "retries": ledger.retries,
        "rejected": dict(sorted(ledger.rejected.items())),
        "finish_reasons": dict(sorted(ledger.finish_reasons.items())),
        "input_tokens": tok["input"],
        "output_tokens": tok["output"],
        "input_tokens_new": tok["input_new"],
        "output_tokens_new": tok["output_new"],
        "price": price,
        "cost_usd": cost_usd(tok["input"], tok["output"], price),
        "cost_usd_new": cost_usd(tok["input_new"], tok["output_new"], price),
        "latency_s_sum": round(ledger.latency_s, 3),
        "wall_s": round(wall_s, 3),
    }


def take_prefix(in_path: str | Path, out_path: str | Path, size: int) -> dict[str, int]:
    """Write the first `size` instances (by index) of a generated set; the cost study's data sizes.

    A pool that fell short (its stats report the shortfall) gives all it has: the count written and the
    shortfall are returned for the job record and logged, never hidden.
    """
    rows = read_jsonl(in_path, required=("index", "instruction", "response"))
    if not isinstance(size, int) or size < 0:
        raise ConfigError("size", f"must be an integer >= 0, got {size!r}")
    if len(rows) < size:
        log.warning("%s has %d instances, fewer than the %d asked for", in_path, len(rows), size)
    rows.sort(key=lambda r: r["index"])
    written = write_jsonl(out_path, rows[:size])
    return {"size": size, "instances": written, "shortfall": size - written}
