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
import time
from collections import Counter
from collections.abc import Generator, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from agorabench import progress as bars
from agorabench.errors import AgoraBenchError, ConfigError, DataError
from agorabench.generation.instances import PromptSpec, attempt_seed, build_official_prompt, build_prompt
from agorabench.generation.parsing import CountTokens, Parsed, parse_completion
from agorabench.generation.prompts import DEFAULT_SYSTEM_PROMPT, Template, check_setting, load_template
from agorabench.jsonl import read_jsonl, sha256_text, write_json, write_jsonl
from agorabench.llm.base import Backend, Completion, Request, Sampling, request_id
from agorabench.llm.store import CallStore, run_stores
from agorabench.progress import cost_usd

log = logging.getLogger(__name__)

PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "date")
DEMONSTRATION_MODES = ("seeds_only", "official")


@dataclass(frozen=True)
class Setting:
    """Which pool: one generator in one (domain, method, meta-prompt variant)."""

    generator: str
    domain: str
    method: str
    variant: str

    def __str__(self) -> str:
        return f"{self.generator} {self.domain}/{self.method}/{self.variant}"


@dataclass(frozen=True)
class Budget:
    """How many valid instances are asked for, and the calls they may take."""

    n: int
    max_attempts: int  # calls in all
    max_attempts_per_instance: int | None = None  # official mode: an index is dropped after this many
    attempts_per_round: int = 1  # attempts asked at once for every index still missing
    chunk_size: int = 1024  # requests (and prompts) held at once


@dataclass(frozen=True)
class GenerationJob:
    """One pool's generation as one value: the setting, how each request is asked, the budget, the
    validation and demonstration modes, the price and where the pool, its stats and its call store go."""

    setting: Setting
    sampling: Sampling
    seed: int
    budget: Budget
    out_path: str
    stats_path: str
    store_path: str
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT  # None or "": no system message
    max_instance_tokens: int | None = None  # the student's chat-format length limit (with count_tokens)
    validation: str = "strict"
    demonstrations: str = "seeds_only"
    pool_block: int | None = None
    wrap: bool = False  # reuse seeds when n exceeds them (response generation, quality enhancement)
    price: dict | None = None
    labels: dict[str, Any] | None = None  # written into the stats as they are (e.g. the template origin)
    progress: bool = True
    model_identity: str = ""  # what answers (evaluation.predict.model_identity); part of every request id


@dataclass(frozen=True)
class Materials:
    """What a pool is made from: the meta-prompt file, the seeds, the theme lists, the length check."""

    template_path: str | Path
    seeds: list[dict]
    themes: list[str]
    first_words: list[str]
    seeds_name: str = "seeds"  # names the seed source in errors
    count_tokens: CountTokens | None = None


@dataclass(frozen=True)
class _Attempt:
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


def _check_job(job: GenerationJob, materials: Materials) -> None:
    if job.pool_block is not None and (not isinstance(job.pool_block, int) or job.pool_block < 1):
        raise ConfigError("generation.pool_block", f"must be an integer >= 1, got {job.pool_block!r}")
    if job.demonstrations not in DEMONSTRATION_MODES:
        raise ConfigError(
            "generation.demonstrations",
            f"{job.demonstrations!r} is not one of {', '.join(DEMONSTRATION_MODES)}",
        )
    check_setting(job.setting.domain, job.setting.method, job.setting.variant)
    _check_price(job.price)
    _check_seeds(materials.seeds, materials.seeds_name, job.setting.method)
    b = job.budget
    n_seeds = len(materials.seeds)
    _check_counts(
        b.n, b.max_attempts, b.chunk_size, n_seeds, job.setting.method, job.wrap, materials.seeds_name
    )


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
    model_identity: str = "",
) -> Request:
    """The request of attempt `attempt` of a prompt; its id depends only on what is asked and, with
    `model_identity`, on what answers (so a changed model never replays another's stored completions)."""
    messages: list[dict[str, str]] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": spec.prompt})
    samp = dataclasses.replace(
        sampling, seed=attempt_seed(seed, domain, method, spec.index, attempt, sampling.seed)
    )
    prompt_sha = sha256_text(json.dumps(messages, ensure_ascii=False))
    sampling_sha = sha256_text(json.dumps(dataclasses.asdict(samp), sort_keys=True))
    who = (generator, model_identity) if model_identity else (generator,)
    rid = request_id(*who, domain, method, variant, spec.index, attempt, prompt_sha, sampling_sha)
    meta = {"generator": generator, "domain": domain, "method": method, "variant": variant}
    meta |= {"index": spec.index, "attempt": attempt, "prompt_sha": prompt_sha}
    return Request(id=rid, messages=tuple(messages), sampling=samp, meta=meta)


_Answered = Iterator[tuple[_Attempt, Completion, bool]]
_Rounds = Generator[list[_Attempt], _Answered, dict[int, dict]]


def _stored_and_new(
    store: CallStore, jobs: list[_Attempt]
) -> tuple[list[tuple[_Attempt, Completion, bool]], dict[str, _Attempt]]:
    """The attempts already in the store, with their completions, and the new ones by request id."""
    new_ids = {r.id for r in store.pending([j.request for j in jobs])}
    stored = [(j, store.get(j.request.id), True) for j in jobs if j.request.id not in new_ids]
    return stored, {j.request.id: j for j in jobs if j.request.id in new_ids}  # type: ignore[return-value]


def _check_answered(backend: Backend, missing: Iterable[str]) -> None:
    lost = list(missing)[:5]
    if lost:
        raise AgoraBenchError(f"backend {backend.name!r} returned no completion for request(s) {lost}")


def _complete(store: CallStore, backend: Backend, jobs: list[_Attempt]) -> _Answered:
    """Each attempt with its completion and whether it came from the store (stored ones first), each new
    one as soon as the backend finishes it."""
    stored, new = _stored_and_new(store, jobs)
    yield from stored
    for req, comp in store.run(backend, [j.request for j in new.values()]):
        yield new.pop(req.id), comp, False
    _check_answered(backend, new)


def _complete_stores(
    backend: Backend, work: list[tuple[CallStore, list[_Attempt]]]
) -> list[list[tuple[_Attempt, Completion, bool]]]:
    """The attempts of several pools, the new ones asked in one backend call (a local backend batches
    rows of different settings together); per pool, its attempts with their completions, stored first."""
    answered, new = [], {}
    for k, (store, jobs) in enumerate(work):
        stored, fresh = _stored_and_new(store, jobs)
        answered.append(stored)
        new |= {rid: (k, job) for rid, job in fresh.items()}
    for _, req, comp in run_stores(backend, [(store, [j.request for j in jobs]) for store, jobs in work]):
        k, job = new.pop(req.id)
        answered[k].append((job, comp, False))
    _check_answered(backend, new)
    return answered


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rounds(ctx: _Context, ledger: _Ledger, bar: bars.Progress) -> _Rounds:
    """Retry rounds until every index is valid or the call budget is spent; yields each chunk of attempts
    and is sent their completions; returns the valid records by index.

    Each round asks `attempts_per_round` attempts of every pending index at once (better batching when most
    outputs are rejected); an index keeps its lowest valid attempt, so the result depends only on stored
    outcomes and a resumed run replays the same schedule. `max_attempts_per_instance` drops an index after
    that many attempts (the official budget). Accepted instances join `ctx.pool` (the official
    demonstration pool) at the end of each round, in index order. `pool_block` runs the indices in blocks
    of that many, each to completion, so later blocks draw demonstrations from earlier blocks' instances.
    """
    budget = ctx.job.budget
    n, max_attempts, cap = budget.n, budget.max_attempts, budget.max_attempts_per_instance
    valid: dict[int, dict] = {}
    attempts = [0] * n
    block = ctx.job.pool_block or max(n, 1)
    for first in range(0, n, block):
        pending = list(range(first, min(first + block, n)))
        while pending and ledger.calls < max_attempts:
            slots = [
                (i, attempts[i] + a)
                for a in range(budget.attempts_per_round)
                for i in pending
                if cap is None or attempts[i] + a < cap
            ]
            tried: dict[int, list[tuple[int, Any, _Attempt]]] = {}
            for chunk in _chunks(slots[: max_attempts - ledger.calls], budget.chunk_size):
                answered = yield [ctx.attempt(i, a) for i, a in chunk]
                for att, comp, from_store in answered:
                    ledger.add(comp, from_store)
                    bar.call(comp, from_store)
                    parsed = ctx.parse(att, comp)
                    if not parsed.ok:
                        ledger.rejected[parsed.reason] += 1
                    tried.setdefault(att.spec.index, []).append((att.attempt, parsed, att))
                    _postfix(bar, ledger, len(valid))
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
                    bar.advance()
            _postfix(bar, ledger, len(valid))
            pending = failed
    return valid


@dataclass
class _Pool:
    """One pool being generated: its context, store, ledger, bar and retry rounds."""

    ctx: _Context
    store: CallStore
    ledger: _Ledger
    bar: bars.Progress
    rounds: _Rounds
    asked: list[_Attempt] | None = None
    valid: dict[int, dict] | None = None

    def send(self, answered: _Answered | None) -> None:
        """Advance the rounds: the next chunk of attempts in `asked`, or the result in `valid`."""
        try:
            self.asked = next(self.rounds) if answered is None else self.rounds.send(answered)
        except StopIteration as done:
            self.asked, self.valid = None, done.value


def _prepared(job: GenerationJob, backend: Backend, materials: Materials) -> tuple[GenerationJob, _Context]:
    """The job checked, at the batch price and chunk size in batch mode, and its context."""
    _check_job(job, materials)
    template = load_template(materials.template_path, job.setting.method)
    if getattr(backend, "mode", "online") == "batch":  # batch price; CallStore.run keeps the batch ledger
        from agorabench.llm.batch import batch_price

        # a round is one wait for its batches, not one per chunk
        chunk_size = max(job.budget.chunk_size, job.budget.max_attempts)
        price = batch_price(job.price, backend.batch_discount)  # type: ignore[attr-defined]
        job = dataclasses.replace(
            job, price=price, budget=dataclasses.replace(job.budget, chunk_size=chunk_size)
        )
    return job, _Context(job, materials, template)


def _finish(pool: _Pool, wall_s: float, write: bool) -> dict:
    """The pool's stats (the ledger); with `write`, the pool and its stats are written."""
    job, valid = pool.ctx.job, pool.valid or {}
    rows = [valid[i] for i in sorted(valid)]
    stats = _stats(pool.ctx, pool.ledger, len(rows), wall_s)
    stats |= {"max_attempts_per_instance": job.budget.max_attempts_per_instance, **(job.labels or {})}
    if write:
        write_jsonl(job.out_path, rows)
        write_json(job.stats_path, stats)
    return stats


def generate(job: GenerationJob, backend: Backend, materials: Materials) -> dict:
    """Generate up to `job.budget.n` valid instances with at most `job.budget.max_attempts` calls; writes
    the pool and its stats (the ledger) and returns the stats.

    `validation` ("strict" | "official"), `demonstrations` ("seeds_only" | "official") and
    `max_attempts_per_instance` select the modes of config/README.md.
    """
    return generate_pools([(job, materials)], backend)[0]


def generate_pools(
    work: list[tuple[GenerationJob, Materials]], backend: Backend, write: bool = True
) -> list[dict]:
    """`generate` for several pools of one generator at once: their retry rounds run side by side, and
    each step's attempts of every pool go to the backend in one call (one batch on a local model). Every
    pool keeps its own call store, schedule and outcome, so each is what `generate` alone writes from
    the same stores; returns the stats of each pool, in order (`write=False`: fill the stores only).
    Each pool's `wall_s` is the wall time of the whole call, which the pools share."""
    started = time.monotonic()
    pools: list[_Pool] = []
    with ExitStack() as stack:
        for job, materials in work:
            job, ctx = _prepared(job, backend, materials)
            bar = bars.Progress(  # instances accepted; calls, tokens and $ of this run
                job.budget.n, str(job.setting), unit="inst", price=job.price, enabled=job.progress
            )
            stack.enter_context(bar)
            ledger = _Ledger()
            pools.append(_Pool(ctx, CallStore(job.store_path), ledger, bar, _rounds(ctx, ledger, bar)))
            pools[-1].send(None)
        while active := [p for p in pools if p.asked is not None]:
            if len(active) == 1:  # one pool: its completions stream into its rounds (and its bar)
                active[0].send(_complete(active[0].store, backend, active[0].asked))  # type: ignore[arg-type]
                continue
            answered = _complete_stores(backend, [(p.store, p.asked) for p in active])  # type: ignore[misc]
            for pool, done in zip(active, answered, strict=True):
                pool.send(iter(done))
    wall_s = time.monotonic() - started
    return [_finish(pool, wall_s, write) for pool in pools]


_KEYWORDS = {cls: {f.name for f in fields(cls)} for cls in (Setting, Budget, GenerationJob, Materials)}


def generate_set(*, backend: Backend, **keywords: Any) -> dict:
    """`generate` with the fields of the job's parts as keywords (generator, domain, method, variant,
    sampling, seed, n, max_attempts, out_path, ..., template_path, seeds, themes, first_words, ...;
    `max_tokens` is `max_instance_tokens`), for callers that build one set by hand."""
    if "max_tokens" in keywords:
        keywords["max_instance_tokens"] = keywords.pop("max_tokens")
    unknown = sorted(set(keywords) - set().union(*_KEYWORDS.values()))
    if unknown:
        raise TypeError(f"generate_set() got unexpected keyword argument(s) {', '.join(unknown)}")

    def part(cls: type) -> dict[str, Any]:
        return {k: v for k, v in keywords.items() if k in _KEYWORDS[cls]}

    job = GenerationJob(
        setting=Setting(**part(Setting)), budget=Budget(**part(Budget)), **part(GenerationJob)
    )
    return generate(job, backend, Materials(**part(Materials)))


@dataclass(frozen=True)
class _Context:
    """Everything that turns an (index, attempt) into a request and a completion into a pair."""

    job: GenerationJob
    materials: Materials
    template: Template
    pool: list[dict] = field(default_factory=list)  # accepted instances, official demonstration mode

    def attempt(self, index: int, attempt: int) -> _Attempt:
        job, m, s = self.job, self.materials, self.job.setting
        if job.demonstrations == "official":
            spec = build_official_prompt(
                self.template, domain=s.domain, method=s.method, index=index, attempt=attempt, seeds=m.seeds,
                pool=self.pool, themes=m.themes, first_words=m.first_words, seed=job.seed, wrap=job.wrap,
                seeds_name=m.seeds_name,
            )  # fmt: skip
        else:
            spec = build_prompt(
                self.template, domain=s.domain, method=s.method, index=index, seeds=m.seeds, themes=m.themes,
                first_words=m.first_words, seed=job.seed, wrap=job.wrap, seeds_name=m.seeds_name,
            )  # fmt: skip
        req = make_request(
            spec, attempt, generator=s.generator, domain=s.domain, method=s.method, variant=s.variant,
            sampling=job.sampling, seed=job.seed, system_prompt=job.system_prompt,
            model_identity=job.model_identity,
        )  # fmt: skip
        return _Attempt(spec, attempt, req)

    def record(self, att: _Attempt, parsed: Parsed) -> dict:
        """A generated-instance record (docs/formats.md)."""
        spec, s = att.spec, self.job.setting
        return {
            "id": f"{s.generator}/{s.domain}/{s.method}/{s.variant}/{spec.index}",
            "instruction": parsed.instruction,
            "response": parsed.response,
            "index": spec.index,
            "request_id": att.request.id,
            "demo_ids": spec.demo_ids,
            "source_id": spec.source_id,
            "theme": spec.theme,
            "first_word": spec.first_word,
        }

    def parse(self, att: _Attempt, comp: Completion) -> Parsed:
        source, s = att.spec.source, self.job.setting
        return parse_completion(
            comp.text or "", domain=s.domain, method=s.method, variant=s.variant,
            instruction=source["instruction"] if source is not None else None,
            finish_reason=comp.finish_reason, count_tokens=self.materials.count_tokens,
            max_tokens=self.job.max_instance_tokens, validation=self.job.validation, prompt=att.spec.prompt,
        )  # fmt: skip

    def grow_pool(self, record: dict, parsed: Parsed) -> None:
        """An accepted instance-generation output joins the demonstration pool (official mode only)."""
        if self.job.demonstrations == "official" and self.job.setting.method == "instance_generation":
            instruction, response = parsed.demonstration
            self.pool.append({"id": record["id"], "instruction": instruction, "response": response})


def _postfix(bar: bars.Progress, ledger: _Ledger, n_valid: int) -> None:
    bar.note(valid=f"{n_valid / max(ledger.calls, 1):.0%}")  # accepted share of every call, stored ones too


def _stats(ctx: _Context, ledger: _Ledger, n_valid: int, wall_s: float) -> dict[str, Any]:
    tok, job = ledger.tokens, ctx.job
    n, price = job.budget.n, job.price
    return {
        "generator": job.setting.generator,
        "domain": job.setting.domain,
        "method": job.setting.method,
        "variant": job.setting.variant,
        "template": ctx.template.path,
        "template_sha256": ctx.template.sha,
        "validation": job.validation,
        "demonstrations": job.demonstrations,
        "seed": job.seed,  # the generation seed: prompt draws and sampling seeds
        "models": sorted(ledger.models),
        "n": n,
        "max_attempts": job.budget.max_attempts,
        "max_tokens": job.max_instance_tokens,
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
