"""What a study will cost, before anything runs: API dollars per generator and judge, GPU-hours per stage.

    agorabench plan --config config/config.yaml [--json plan.json]      (or: make plan)

Estimates, not quotes. Every assumption is a named constant below, with where it comes from:

- Tokens are characters / CHARS_PER_TOKEN (OpenAI's rule of thumb for English; code and math run denser,
  so treat the figures as +-25 %).
- Prompt tokens per generation request: the study's own meta-prompts rendered with its seeds (the first
  PROMPT_SAMPLE prompts of each pool, themes and demonstrations drawn as the generation stage draws
  them) when the seed file is readable; otherwise the template's length plus SEED_TOKENS per filled slot.
- Output tokens per request: one generated instance is assumed as long as a seed instance of its setting
  (instance generation and quality enhancement write an instruction and a response, response generation
  a response), measured on the seeds when readable, else SEED_TOKENS.
- Calls per pool follow the configured attempt budget, with an acceptance rate p per call: the rate observed
  in an existing `pool.stats.json` of the study, else `generation.assumed_acceptance_rate` (an assumption,
  documented in the config), else ASSUMED_VALID_RATE. `validation: official` tries each instance until it
  is accepted, at most max_attempts_per_instance (K) times: n x (1 - (1-p)^K) / p expected calls (about
  n / p), at most n x K. `strict` spends at most max_attempts_factor x n calls on the whole pool:
  min(n / p, that cap). The cap (the most a pool can cost) is printed beside the expectation.
- GPU time is FLOPs over (efficiency x H100 peak): SFT 6 x params x tokens at SFT_MFU, once per training
  seed (a seed study's extra seeds are trained too); inference, local generation and local (vLLM,
  transformers) intrinsic judges 2 x params per prompt token at PREFILL_EFFICIENCY and per output token at
  DECODE_EFFICIENCY; plus LOAD_MINUTES per job (x tensor_parallel_size GPUs) for starting an engine and
  loading weights. A mixture of experts named NxMB (Mixtral, Prometheus-2-8x7B) counts N x M parameters
  when decoding (batched decoding reads every expert) and MOE_ACTIVE_EXPERTS x M in prefill (compute).
- An intrinsic judge writes min(INTRINSIC_OUTPUT_TOKENS, its max_tokens) tokens per call; its max_tokens is
  the judge's own `sampling` over `intrinsic.judge.sampling`, as the intrinsic_judge job merges them. One
  judge job (one engine start) per main generated set.
- The generation system prompt is priced as sent: `generation.system_prompt`, or DEFAULT_SYSTEM_PROMPT of
  agorabench/generation/run.py when the key is absent (an empty one sends none).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agorabench import workflow as wf
from agorabench.errors import AgoraBenchError
from agorabench.llm.batch import BATCH_DISCOUNT

CHARS_PER_TOKEN = 4.0
PROMPT_SAMPLE = 32
CHAT_OVERHEAD_TOKENS = 12  # role markers of a system + user chat request
ASSUMED_VALID_RATE = 0.8  # share of generation calls that yield a valid instance, when none was observed
H100_BF16_PEAK_FLOPS = 989e12  # dense bf16, H100 SXM
SFT_MFU = 0.35  # full fine-tuning with packing and gradient checkpointing (recompute lowers model FLOPs use)
PREFILL_EFFICIENCY = 0.40  # vLLM prompt processing: compute bound
DECODE_EFFICIENCY = 0.10  # vLLM batched decoding: memory bound even at large batch
# engine start + weights, per job: student inference, generation, intrinsic models, a local intrinsic judge
LOAD_MINUTES = {"predict": 2.0, "generate": 5.0, "intrinsic": 3.0, "intrinsic_judge": 5.0}
MOE_ACTIVE_EXPERTS = 2  # Mixtral-style NxMB models route each token to 2 of their N experts
# Seed instance length (tokens of instruction, response) per setting, measured on the AgoraBench seed
# samples of neulab/data-agora (libs/data-agora/tests/seed_data, 20 records a file; shared/data/agora-seed).
# Code quality enhancement (CoNaLa) has no sample there: the code instance-generation seeds stand in.
SEED_TOKENS: dict[tuple[str, str], tuple[int, int]] = {
    ("math", "instance_generation"): (53, 100),
    ("math", "response_generation"): (66, 205),
    ("math", "quality_enhancement"): (57, 140),
    ("code", "instance_generation"): (38, 43),
    ("code", "response_generation"): (71, 453),
    ("code", "quality_enhancement"): (38, 43),
    ("instruction_following", "instance_generation"): (65, 466),
    ("instruction_following", "response_generation"): (21, 826),
    ("instruction_following", "quality_enhancement"): (68, 191),
}
THEME_TOKENS = 8  # a theme and a first-word trigger filled into a template
# Benchmarks: items (test split as the paper uses it), prompt and answer tokens per item (answers are
# capped by evaluation max_tokens). Judged benchmarks: calls per item and tokens per judge call.
BENCHMARK_ITEMS = {
    "gsm8k": 1319,
    "math": 500,
    "mbpp": 500,
    "humaneval": 164,
    "alpaca_eval": 805,
    "arena_hard": 500,
}
BENCHMARK_PROMPT_TOKENS = {"math": 120, "code": 150, "alpaca_eval": 60, "arena_hard": 300}
ANSWER_TOKENS = {"math": 300, "code": 250, "instruction_following": 450}
JUDGE_CALLS_PER_ITEM = {"alpaca_eval": 1, "arena_hard": 2}  # Arena-Hard judges both answer orders
JUDGE_OUTPUT_TOKENS = {"alpaca_eval": 8, "arena_hard": 600}  # a verdict letter / a judgment with reasoning
INTRINSIC_ASPECTS = ("instruction_difficulty", "response_quality")  # one judge call each per instance
INTRINSIC_OUTPUT_TOKENS = 40  # the project's rubrics ask for one sentence and "[RESULT] N"
# The paper's Figure 7 caption: GPT-4o-mini costs 1/17 of GPT-4o per token, and 50K instances of it are
# 3.4 times cheaper than 10K of GPT-4o.
PAPER_FIG7 = {"price_ratio": 17.0, "cost_ratio_50k_mini_vs_10k_4o": 3.4}


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _size_of(config: dict[str, Any], model_key: str) -> tuple[int, float]:
    """(experts, parameters per expert) of a `models` entry from its name: Llama-3.1-70B -> (1, 70e9),
    prometheus-8x7b -> (8, 7e9)."""
    spec = config["models"][model_key]
    name = " ".join(str(v) for v in (spec.get("hub"), spec.get("gguf", {}).get("file"), model_key) if v)
    pattern = r"(?:(\d+)\s*x\s*)?(\d+(?:\.\d+)?)\s*([BM])\b"
    m = re.search(pattern, name.replace("-", " ").replace("_", " "), flags=re.I)
    if not m:
        raise AgoraBenchError(f"cannot tell the size of model '{model_key}' from its name ({name})")
    return int(m.group(1) or 1), float(m.group(2)) * (1e9 if m.group(3).upper() == "B" else 1e6)


def params_of(config: dict[str, Any], model_key: str) -> float:
    """Parameters of a `models` entry, read from its name (e.g. Llama-3.1-70B-Instruct -> 70e9; a mixture
    of experts NxMB: all N x M)."""
    experts, size = _size_of(config, model_key)
    return experts * size


def active_params_of(config: dict[str, Any], model_key: str) -> float:
    """Parameters one token goes through: all of a dense model's, MOE_ACTIVE_EXPERTS experts of an NxMB."""
    experts, size = _size_of(config, model_key)
    return min(experts, MOE_ACTIVE_EXPERTS) * size


def gpu_hours(
    prompt_tokens: float, output_tokens: float, params: float, active: float | None = None
) -> float:
    """Inference GPU-hours: 2 x params FLOPs per token, prefill and decode at their efficiencies. `active`:
    the parameters a prompt token goes through when fewer than `params` (a mixture of experts)."""
    prefill = prompt_tokens * 2 * (params if active is None else active)
    seconds = prefill / (PREFILL_EFFICIENCY * H100_BF16_PEAK_FLOPS)
    seconds += output_tokens * 2 * params / (DECODE_EFFICIENCY * H100_BF16_PEAK_FLOPS)
    return seconds / 3600


def local_gpu_hours(
    config: dict[str, Any], spec: dict[str, Any], prompt_tokens: float, output_tokens: float, load: str
) -> float:
    """GPU-hours of one job of a local model (`spec`: a generator or judge entry): its tokens, and one
    engine start of LOAD_MINUTES[load] on each of its tensor_parallel_size GPUs."""
    key = spec["model"]
    hours = gpu_hours(prompt_tokens, output_tokens, params_of(config, key), active_params_of(config, key))
    return hours + LOAD_MINUTES[load] * spec.get("tensor_parallel_size", 1) / 60


def sft_gpu_hours(train_tokens: float, params: float) -> float:
    return 6 * params * train_tokens / (SFT_MFU * H100_BF16_PEAK_FLOPS) / 3600


def batch_discount(spec: dict[str, Any]) -> float | None:
    """The share a provider batch API takes off this model's price (docs/batch.md); None: no batch API.

    `price.batch_discount` when given; else the provider's published discount for `anthropic` and for
    `openai` at api.openai.com (no base_url: other OpenAI-compatible servers may have no batch API).
    """
    price = spec.get("price") or {}
    if "batch_discount" in price:
        return float(price["batch_discount"])
    own_server = spec.get("base_url") or spec.get("base_url_env")
    if spec.get("backend") == "anthropic" or (spec.get("backend") == "openai" and not own_server):
        return BATCH_DISCOUNT[spec["backend"]]
    return None


def api_cost(calls: float, prompt_tokens: float, output_tokens: float, price: dict[str, Any] | None) -> float:
    if not price:
        return 0.0
    return calls * (prompt_tokens * price["input_per_mtok"] + output_tokens * price["output_per_mtok"]) / 1e6


@dataclass
class PoolEstimate:
    """One generated pool: (generator, domain, method, variant) with n instances."""

    generator: str
    domain: str
    method: str
    variant: str
    n: int
    prompt_tokens: float  # per request
    output_tokens: float  # per request
    token_source: str  # "rendered" (templates + seeds) or "assumed" (template length + SEED_TOKENS)
    valid_rate: float
    valid_rate_source: str  # "observed" or "assumed"
    calls: float  # expected
    max_calls: int  # the cap
    usd: float = 0.0
    usd_cap: float = 0.0
    usd_batch: float | None = None  # expected USD in batch mode; None: no batch API for this model
    gpu_hours: float = 0.0
    local: bool = False


@dataclass
class Plan:
    pools: list[PoolEstimate] = field(default_factory=list)
    generators: dict[str, dict[str, float]] = field(default_factory=dict)
    judges: dict[str, dict[str, float]] = field(default_factory=dict)
    gpu_hours: dict[str, float] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    inference: dict[str, float] = field(default_factory=dict)  # per-model jobs against per-benchmark jobs
    paper: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    attempts: str = ""  # the attempt budget the calls follow (attempt_budget)
    assumed_rate: float = ASSUMED_VALID_RATE  # acceptance rate where none was observed or given


def _readable_seeds(source: dict[str, Any]) -> bool:
    fmt = source.get("format")
    if fmt == "demo":
        return True
    return fmt in ("agora_json", "jsonl") and Path(str(source.get("path", ""))).is_file()


def pool_tokens(
    config: dict[str, Any], domain: str, method: str, variant: str, n: int
) -> tuple[float, float, str]:
    """(prompt tokens, output tokens) per request of one pool, and whether they were rendered or assumed."""
    from agorabench.generation.instances import build_prompt, load_themes
    from agorabench.generation.prompts import DEFAULT_SYSTEM_PROMPT, load_template

    gen = config["generation"]
    template = load_template(wf.planning_template(config, variant, domain, method), method)
    system = gen.get("system_prompt", DEFAULT_SYSTEM_PROMPT) or ""  # what the generation stage sends
    overhead = tokens(system) + CHAT_OVERHEAD_TOKENS
    source = config["seeds"][domain][method]
    if _readable_seeds(source):
        from agorabench.data.seeds import load_seeds

        seeds = load_seeds(source, where=f"seeds.{domain}.{method}")
        themes, first_words = load_themes(gen["themes"])
        k = min(n, PROMPT_SAMPLE, len(seeds) if method != "instance_generation" else PROMPT_SAMPLE)
        prompts = [
            build_prompt(
                template,
                domain=domain,
                method=method,
                index=i,
                seeds=seeds,
                themes=themes.get(domain, []),
                first_words=first_words.get(domain, []),
                seed=config["seed"],
                wrap=True,
            ).prompt
            for i in range(max(k, 1))
        ]
        prompt = sum(tokens(p) for p in prompts) / len(prompts) + overhead
        sample = seeds[:200]
        ins = sum(tokens(s["instruction"]) for s in sample) / len(sample)
        res = sum(tokens(s["response"]) for s in sample) / len(sample)
        return prompt, (res if method == "response_generation" else ins + res), "rendered"
    ins, res = SEED_TOKENS[(domain, method)]
    bare = tokens(re.sub(r"<[A-Za-z_][A-Za-z0-9_@]*>", "", template.text))
    if method == "instance_generation":
        filled = template.n_demos * (ins + res)
    elif method == "response_generation":
        filled = ins
    else:
        filled = ins + res
    theme = THEME_TOKENS if (template.has_theme or template.has_first_word) else 0
    output = res if method == "response_generation" else ins + res
    return bare + filled + theme + overhead, output, "assumed"


def observed_valid_rate(
    config: dict[str, Any], generator: str, domain: str, method: str, variant: str
) -> float | None:
    path = Path(config["results_dir"], "generation", generator, domain, method, variant, "pool.stats.json")
    if not path.is_file():
        return None
    stats = json.loads(path.read_text())
    calls = stats.get("calls") or 0
    return stats.get("valid", 0) / calls if calls else None


def expected_attempts(rate: float, cap: int, per_round: int = 1) -> float:
    """Expected calls for one instance tried until accepted, at most `cap` attempts, `per_round` at a time
    (a round's attempts are all paid even when the first is accepted); independent acceptance `rate`."""
    calls, tried = 0.0, 0
    while tried < cap:
        slots = min(per_round, cap - tried)
        calls += (1 - rate) ** tried * slots  # P(still pending after `tried` attempts) x this round's calls
        tried += slots
    return calls


def pool_calls(config: dict[str, Any], n: int, rate: float) -> tuple[float, int]:
    """(expected calls, cap) of one pool of n instances under the configured attempt budget."""
    gen = config["generation"]
    if gen.get("validation", "strict") == "official":
        per_instance = int(gen.get("max_attempts_per_instance", 10))
        per_round = int(gen.get("attempts_per_round", 1))
        return n * expected_attempts(rate, per_instance, per_round), n * per_instance
    cap = max(n, math.ceil(float(gen.get("max_attempts_factor", 2.0)) * n))
    return min(n / rate, cap), cap


def attempt_budget(config: dict[str, Any]) -> str:
    """The attempt budget in words, as the plan's basis prints it."""
    gen = config["generation"]
    if gen.get("validation", "strict") == "official":
        k, r = gen.get("max_attempts_per_instance", 10), gen.get("attempts_per_round", 1)
        return f"official: each instance until accepted, at most {k} attempts ({r} per round); cap n x {k}"
    factor = gen.get("max_attempts_factor", 2.0)
    return f"strict: the pool until n are valid, at most {factor} x n calls (max_attempts_factor)"


def estimate_pools(config: dict[str, Any], valid_rate: float | None = None) -> list[PoolEstimate]:
    assumed = config["generation"].get("assumed_acceptance_rate", ASSUMED_VALID_RATE)
    cache: dict[tuple[str, str, str], tuple[float, float, str]] = {}
    pools = []
    for g, d, m, v in wf.generated_sets(config):
        n = wf.pool_size(config, g, d, m, v)
        if (d, m, v) not in cache:
            cache[(d, m, v)] = pool_tokens(config, d, m, v, n)
        prompt, output, source = cache[(d, m, v)]
        observed = observed_valid_rate(config, g, d, m, v)
        rate = valid_rate or observed or assumed
        rate_source = "given" if valid_rate else ("observed" if observed else "assumed")
        calls, cap = pool_calls(config, n, rate)
        spec = config["generators"][g]
        est = PoolEstimate(g, d, m, v, n, prompt, output, source, rate, rate_source, calls, cap)
        est.local = wf.is_local(spec)
        if est.local:
            est.gpu_hours = local_gpu_hours(config, spec, est.calls * prompt, est.calls * output, "generate")
        else:
            est.usd = api_cost(est.calls, prompt, output, spec.get("price"))
            est.usd_cap = api_cost(cap, prompt, output, spec.get("price"))
            discount = batch_discount(spec)
            est.usd_batch = None if discount is None else est.usd * (1 - discount)
        pools.append(est)
    return pools


def _instance_tokens(config: dict[str, Any], pools: list[PoolEstimate], student: wf.Student) -> float:
    """Tokens of one training instance of a student: instruction + response (+ chat markup)."""
    pool = next(
        p
        for p in pools
        if (p.generator, p.domain, p.method, p.variant)
        == (student.generator, student.domain, student.method, student.variant)
    )
    if pool.method == "response_generation":
        return SEED_TOKENS[(pool.domain, pool.method)][0] + pool.output_tokens + CHAT_OVERHEAD_TOKENS
    return pool.output_tokens + CHAT_OVERHEAD_TOKENS


def _benchmark_items(config: dict[str, Any], name: str) -> int:
    spec = config["benchmarks"][name]
    prepared = Path(config["results_dir"], "data", "benchmarks", f"{name}.jsonl")
    if prepared.is_file():
        items = sum(1 for line in prepared.open() if line.strip())
    else:
        items = BENCHMARK_ITEMS.get(name, 500)
    return min(items, spec["limit"]) if spec.get("limit") else items


def _judge_prompt_tokens(config: dict[str, Any], kind: str, domain: str) -> float:
    template = Path("config/judges", f"{kind}.txt")
    base = tokens(template.read_text()) if template.is_file() else 300
    answers = 2 * min(
        ANSWER_TOKENS[domain], config["evaluation"]["sampling"]["default"].get("max_tokens", 1024)
    )
    return base + BENCHMARK_PROMPT_TOKENS.get(kind, 100) + answers


def estimate(config: dict[str, Any], valid_rate: float | None = None) -> Plan:
    """The whole study's estimate; `valid_rate` overrides observed and assumed valid rates."""
    wf.check_config(config)
    plan = Plan(pools=estimate_pools(config, valid_rate), attempts=attempt_budget(config))
    plan.assumed_rate = config["generation"].get("assumed_acceptance_rate", ASSUMED_VALID_RATE)
    for p in plan.pools:
        row = plan.generators.setdefault(
            p.generator, {"usd": 0.0, "usd_cap": 0.0, "gpu_hours": 0.0, "calls": 0.0, "calls_cap": 0}
        )
        row["usd"] += p.usd
        row["usd_cap"] += p.usd_cap
        if p.usd_batch is not None:
            row["usd_batch"] = row.get("usd_batch", 0.0) + p.usd_batch
        row["gpu_hours"] += p.gpu_hours
        row["calls"] += p.calls
        row["calls_cap"] += p.max_calls
        if p.local:  # what the paper's Table 3 API-equivalent price would charge for the same tokens
            price = config["generators"][p.generator].get("price")
            row["usd_api_equivalent"] = row.get("usd_api_equivalent", 0.0) + api_cost(
                p.calls, p.prompt_tokens, p.output_tokens, price
            )
    students = wf.students(config)
    student_params = params_of(config, config["student"]["base"])
    epochs = config["training"]["epochs"]
    runs = [*students, *(r.student for r in wf.extra_replicates(config))]  # one SFT per training seed
    sft = sum(
        sft_gpu_hours(s.size * _instance_tokens(config, plan.pools, s) * epochs, student_params) for s in runs
    )
    if wf.reference_is_trained(config):
        plan.notes.append("S_ref is trained: its SFT is not included (its data size is not known in advance)")
    evals = wf.evaluations(config)
    infer = 0.0
    judge_calls: dict[str, list[float]] = {}
    for _model, bench in evals:
        spec = config["benchmarks"][bench]
        items = _benchmark_items(config, bench)
        domain = spec["domain"]
        answer = min(ANSWER_TOKENS[domain], wf.eval_sampling(config, domain).get("max_tokens", 1024))
        prompt = BENCHMARK_PROMPT_TOKENS.get(spec["kind"], BENCHMARK_PROMPT_TOKENS.get(domain, 150))
        infer += gpu_hours(items * prompt, items * answer, student_params)
        if spec["kind"] in wf.JUDGED_KINDS:
            calls = items * JUDGE_CALLS_PER_ITEM[spec["kind"]]
            out = spec.get("settings", {}).get("max_tokens", JUDGE_OUTPUT_TOKENS[spec["kind"]])
            acc = judge_calls.setdefault(spec["judge"], [0.0, 0.0, 0.0])
            acc[0] += calls
            acc[1] += calls * _judge_prompt_tokens(config, spec["kind"], domain)
            acc[2] += calls * min(out, JUDGE_OUTPUT_TOKENS[spec["kind"]])
    # One engine start per inference job: one job per model (all of its benchmarks), not per benchmark.
    plan.inference = _inference_jobs(config, infer)
    infer = plan.inference["gpu_hours"]
    intrinsic_hours, judge_hours = _intrinsic(config, plan, judge_calls, student_params)
    for judge, (calls, tin, tout) in judge_calls.items():
        spec = config["judges"][judge]
        usd = api_cost(1, tin, tout, spec.get("price") or _judge_price(config, spec))
        plan.judges[judge] = {"calls": calls, "prompt_tokens": tin, "output_tokens": tout, "usd": usd}
        plan.judges[judge]["gpu_hours"] = judge_hours.get(judge, 0.0)
        discount = batch_discount(spec | {"price": spec.get("price") or _judge_price(config, spec)})
        if discount is not None:
            plan.judges[judge]["usd_batch"] = usd * (1 - discount)
    gen_hours = sum(p.gpu_hours for p in plan.pools)
    plan.gpu_hours = {
        "generation (local generators)": gen_hours,
        "sft (students)": sft,
        "inference (students, S_0, S_ref)": infer,
        "intrinsic metrics (perplexity, reward model)": intrinsic_hours,
        "intrinsic judges (local vLLM, transformers)": sum(judge_hours.values()),
    }
    plan.gpu_hours["total"] = sum(plan.gpu_hours.values())
    plan.jobs = {
        "students": len(students),
        "extra_training_runs": len(runs) - len(students),  # a seed study's other training seeds
        "evaluations": len(evals),
        "generated_sets": len(plan.pools),
        "inference_jobs": int(plan.inference["jobs"]),
    }
    plan.paper = paper_comparison(config, plan)
    return plan


def _inference_jobs(config: dict[str, Any], token_hours: float) -> dict[str, float]:
    """Inference jobs and GPU-hours (tokens + one engine start per job): one job per model as the workflow
    runs it, against one job per (model, benchmark) as it ran before."""
    load = LOAD_MINUTES["predict"] / 60
    per_model = len(wf.inference_jobs(config))
    per_benchmark = len(wf.evaluations(config))
    return {
        "jobs": per_model,
        "gpu_hours": token_hours + per_model * load,
        "jobs_per_benchmark": per_benchmark,
        "gpu_hours_per_benchmark": token_hours + per_benchmark * load,
    }


def _judge_price(config: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
    """A judge without a price of its own is priced like the generator that calls the same model."""
    for gen in config["generators"].values():
        if gen.get("model") == spec.get("model") and gen.get("backend") == spec.get("backend"):
            return gen.get("price")
    return None


def _judge_max_tokens(config: dict[str, Any], judge: str) -> int:
    """An intrinsic judge's max_tokens as its job runs it: its own sampling over the section's."""
    from agorabench.analysis.inputs import judge_sampling

    own = config["judges"][judge].get("sampling") or {}
    return int({**judge_sampling(config), **own}["max_tokens"])


def _intrinsic(
    config: dict[str, Any], plan: Plan, judge_calls: dict[str, list[float]], student_params: float
) -> tuple[float, dict[str, float]]:
    """Intrinsic metrics of the main sets: judge calls (added to judge_calls), GPU-hours of the models, and
    GPU-hours per local judge (one job per set and judge)."""
    section = config.get("intrinsic")
    main = config["experiments"].get("main")
    judge_hours: dict[str, float] = {}
    if not section or not main:
        return 0.0, judge_hours
    mv, ms = main["variants"][0], int(main["sizes"][0])
    pools = [p for p in plan.pools if p.generator in main["generators"] and p.variant == mv]
    rubrics = Path(section.get("rubrics_dir", "config/intrinsic"))
    rubric_tokens = sum(
        tokens(f.read_text()) if (f := rubrics / f"{a}.txt").is_file() else 200 for a in INTRINSIC_ASPECTS
    )
    judges = list((section.get("judge") or {}).get("judges", {}).values())  # one job per suffix
    out = {j: min(INTRINSIC_OUTPUT_TOKENS, _judge_max_tokens(config, j)) for j in judges}
    hours = 0.0
    for pool in pools:
        n = min(section.get("max_instances") or ms, ms)
        student = wf.Student(pool.generator, pool.domain, pool.method, pool.variant, ms)
        per_instance = _instance_tokens(config, plan.pools, student)
        for judge in judges:
            acc = judge_calls.setdefault(judge, [0.0, 0.0, 0.0])
            calls = len(INTRINSIC_ASPECTS) * n
            prompt = calls * (per_instance + CHAT_OVERHEAD_TOKENS) + n * rubric_tokens
            acc[0] += calls
            acc[1] += prompt
            acc[2] += calls * out[judge]
            spec = config["judges"][judge]
            if wf.is_local(spec):
                job = local_gpu_hours(config, spec, prompt, calls * out[judge], "intrinsic_judge")
                judge_hours[judge] = judge_hours.get(judge, 0.0) + job
        models = 1 + (0 if section.get("reward_model", {}).get("disabled") else 1)  # perplexity LM + RM
        hours += models * gpu_hours(n * per_instance, 0, student_params) + LOAD_MINUTES["intrinsic"] / 60
    return hours, judge_hours


def paper_comparison(config: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Config prices against the paper's Table 3, and the Figure 7 caption's cost ratios."""
    from importlib.resources import files

    paper = yaml.safe_load(files("agorabench.analysis").joinpath("paper_results.yaml").read_text())
    table3 = paper["table3"]["rows"]
    prices = {}
    for g, spec in config["generators"].items():
        if g in table3 and spec.get("price"):
            ours = (spec["price"]["input_per_mtok"], spec["price"]["output_per_mtok"])
            prices[g] = {"config": list(ours), "paper": table3[g][:2], "same": list(ours) == table3[g][:2]}
    out: dict[str, Any] = {"table3_prices": prices}
    gens = config["generators"]
    if {"gpt-4o", "gpt-4o-mini"} <= set(gens) and all(
        gens[g].get("price") for g in ("gpt-4o", "gpt-4o-mini")
    ):
        big, small = gens["gpt-4o"]["price"], gens["gpt-4o-mini"]["price"]
        out["fig7_price_ratio"] = {
            "paper": PAPER_FIG7["price_ratio"],
            "input": big["input_per_mtok"] / small["input_per_mtok"],
            "output": big["output_per_mtok"] / small["output_per_mtok"],
        }
        ig = {
            (p.generator, p.domain): p
            for p in plan.pools
            if p.method == "instance_generation" and p.variant == "agorabench"
        }
        domains = [d for d in wf.DOMAINS if ("gpt-4o", d) in ig and ("gpt-4o-mini", d) in ig]
        if domains:
            # per-instance cost x instances: GPT-4o at 10K against GPT-4o-mini at 50K (Figure 7)
            per = {g: sum(ig[(g, d)].usd / ig[(g, d)].n for d in domains) for g in ("gpt-4o", "gpt-4o-mini")}
            if per["gpt-4o-mini"] > 0:
                out["fig7_cost_ratio"] = {
                    "paper": PAPER_FIG7["cost_ratio_50k_mini_vs_10k_4o"],
                    "estimate": (10_000 * per["gpt-4o"]) / (50_000 * per["gpt-4o-mini"]),
                }
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(r) + " |" for r in [header, align, *rows]] + [""]


def _batch_usd(row: dict[str, Any]) -> str:
    return f"{row['usd_batch']:,.0f}" if "usd_batch" in row else "—"


def _batch_total(rows: Any) -> float:
    """Every API cost in batch mode: batch price where there is a batch API, else the online price."""
    return sum(r.get("usd_batch", r["usd"]) for r in rows)


def render_text(plan: Plan, config_path: str) -> str:
    lines = [f"# Cost plan of {config_path}", "", "## API dollars per generator (generation)", ""]
    rows = []
    for g, r in plan.generators.items():
        equivalent = f"{r['usd_api_equivalent']:,.0f}" if "usd_api_equivalent" in r else ""
        money = [f"{r['usd']:,.0f}", _batch_usd(r), f"{r['usd_cap']:,.0f}"]
        calls = [f"{r['calls']:,.0f}", f"{r['calls_cap']:,.0f}"]
        rows.append([g, *calls, *money, f"{r['gpu_hours']:,.1f}", equivalent])
    total = sum(r["usd"] for r in plan.generators.values())
    cap = sum(r["usd_cap"] for r in plan.generators.values())
    batch = _batch_total(plan.generators.values())
    rows.append(["**total**", "", "", f"**{total:,.0f}**", f"**{batch:,.0f}**", f"{cap:,.0f}", "", ""])
    header = ["generator", "calls (expected)", "calls at attempt cap", "USD expected", "USD batch mode"]
    header.append("USD at attempt cap")
    header.append("GPU-hours")
    lines += _table([*header, "API-equivalent USD"], rows)
    if plan.judges:
        lines += ["## API dollars per judge (benchmarks and intrinsic metrics)", ""]
        rows = []
        for j, r in plan.judges.items():
            mtok = [f"{r['prompt_tokens'] / 1e6:,.1f}", f"{r['output_tokens'] / 1e6:,.1f}"]
            money = [f"{r['usd']:,.0f}", _batch_usd(r), f"{r['gpu_hours']:,.1f}"]
            rows.append([j, f"{r['calls']:,.0f}", *mtok, *money])
        header = ["judge", "calls", "prompt Mtok", "output Mtok", "USD", "USD batch mode", "GPU-hours"]
        lines += _table(header, rows)
        lines += [
            "Batch mode (`mode: batch`, docs/batch.md): the same calls through the provider's batch API at "
            "its batch price, results within 24 h; a model without a batch API (—) keeps its online price.",
            "",
        ]
    lines += ["## H100 GPU-hours per stage", ""]
    lines += _table(["stage", "GPU-hours"], [[k, f"{v:,.1f}"] for k, v in plan.gpu_hours.items()])
    if plan.inference:
        inf = plan.inference
        lines += ["## Student inference jobs (one per model: all of its benchmarks, one engine start)", ""]
        per_benchmark = [f"{inf['jobs_per_benchmark']:,.0f}", f"{inf['gpu_hours_per_benchmark']:,.1f}"]
        rows = [
            ["one job per model", f"{inf['jobs']:,.0f}", f"{inf['gpu_hours']:,.1f}"],
            ["one job per (model, benchmark)", *per_benchmark],
        ]
        lines += _table(["inference jobs", "jobs", "GPU-hours"], rows)
    lines += ["## Against the paper", ""]
    if not plan.paper.get("table3_prices"):
        lines.append("- no generator of this config is in the paper's Table 3")
    for g, p in plan.paper.get("table3_prices", {}).items():
        mark = "same" if p["same"] else "DIFFERENT"
        lines.append(f"- {g}: config {p['config']} USD/Mtok in/out, paper Table 3 {p['paper']}: {mark}")
    if "fig7_price_ratio" in plan.paper:
        r = plan.paper["fig7_price_ratio"]
        lines.append(
            f"- Figure 7: GPT-4o / GPT-4o-mini price per token {r['input']:.1f}x (input), "
            f"{r['output']:.1f}x (output); paper: {r['paper']:.0f}x"
        )
    if "fig7_cost_ratio" in plan.paper:
        r = plan.paper["fig7_cost_ratio"]
        lines.append(
            f"- Figure 7: 10K instances of GPT-4o cost {r['estimate']:.2f}x 50K of GPT-4o-mini; "
            f"paper: {r['paper']}x"
        )
    settings = {
        src: sorted({f"{p.domain}/{p.method}/{p.variant}" for p in plan.pools if p.token_source == src})
        for src in ("rendered", "assumed")
    }
    rates = sorted({p.valid_rate_source for p in plan.pools})
    lines += ["", "## Basis", ""]
    lines.append(
        f"- prompt tokens rendered from templates and seeds: {', '.join(settings['rendered']) or 'none'}"
    )
    lines.append(
        f"- prompt tokens from template length + SEED_TOKENS: {', '.join(settings['assumed']) or 'none'}"
    )
    lines.append(f"- acceptance rate per call: {', '.join(rates)} (assumed = {plan.assumed_rate})")
    lines.append(f"- attempt budget: {plan.attempts}")
    extra = plan.jobs.get("extra_training_runs", 0)
    seeds = f" (+ {extra} training runs with other seeds)" if extra else ""
    lines.append(
        f"- {plan.jobs['generated_sets']} generated sets, {plan.jobs['students']} students{seeds}, "
        f"{plan.jobs['evaluations']} evaluations; constants in agorabench/budget.py"
    )
    if any(r.get("gpu_hours") for r in plan.judges.values()):
        lines.append(
            f"- local intrinsic judges: throughput as for local generation, min({INTRINSIC_OUTPUT_TOKENS}, "
            "max_tokens) output tokens per call, one engine start per generated set on its "
            "tensor_parallel_size GPUs"
        )
    lines += [f"- {n}" for n in plan.notes]
    return "\n".join(lines) + "\n"


def local_rules(root: str | Path = ".") -> set[str]:
    """Rules run on the submit host: in `localrules:` (Snakefile, rules/*.smk) or with `localrule: True`."""
    names: set[str] = set()
    for path in [Path(root, "Snakefile"), *sorted(Path(root, "rules").glob("*.smk"))]:
        in_block, rule = False, None
        for line in path.read_text().splitlines():
            indented = line[:1].isspace()
            if line.startswith("localrules:"):
                in_block = True
                names |= set(re.findall(r"\w+", line.removeprefix("localrules:")))
            elif in_block and indented:
                names |= set(re.findall(r"\w+", line))
            else:
                in_block = False
            if m := re.match(r"rule (\w+):", line):
                rule = m.group(1)
            elif rule and re.match(r"\s+localrule:\s*True", line):
                names.add(rule)
    return names


def summarize_dry_run(text: str, local: set[str] | None = None) -> dict[str, Any]:
    """Jobs (rule, wildcards, resources, grouped) and group jobs from `snakemake -n` output, and the
    number of SLURM submissions: one per group job and one per ungrouped job whose rule is not local."""
    jobs: list[dict[str, Any]] = []
    groups: list[str] = []
    for line in text.splitlines():
        if m := re.search(r"Group job (\w+) \(jobs in lexicogr\. order\)", line):
            groups.append(m.group(1))
        elif m := re.match(r"(\s*)rule (\w+):$", line):
            jobs.append({"rule": m.group(2), "wildcards": {}, "resources": {}, "grouped": bool(m.group(1))})
        elif jobs and (m := re.match(r"\s*(wildcards|resources): (.*)$", line)):
            pairs = (item.split("=", 1) for item in m.group(2).split(", ") if "=" in item)
            jobs[-1][m.group(1)] = {k: int(v) if v.isdigit() else v for k, v in pairs}
    total = re.search(r"^total\s+(\d+)$", text, flags=re.MULTILINE)
    local = local_rules() if local is None else local
    single = [j for j in jobs if not j["grouped"] and j["rule"] not in local]
    return {
        "jobs": jobs,
        "groups": groups,
        "total": int(total.group(1)) if total else len(jobs),
        "submissions": len(groups) + len(single),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agorabench.budget", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/config.yaml", help="the study config (default: the paper's)")
    ap.add_argument("--json", help="also write the estimate as JSON here")
    ap.add_argument("--valid-rate", type=float, help="share of generation calls that give a valid instance")
    args = ap.parse_args(argv)
    if args.valid_rate is not None and not 0 < args.valid_rate <= 1:
        ap.error("--valid-rate must be in (0, 1]")
    try:
        config = yaml.safe_load(Path(args.config).read_text())
        plan = estimate(config, args.valid_rate)
    except (OSError, AgoraBenchError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(render_text(plan, args.config))
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(plan), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


SLURM_TOOLS = {
    "sinfo",
    "sbatch",
    "squeue",
    "sacct",
    "scontrol",
    "sacctmgr",
    "sshare",
    "srun",
    "scancel",
    "salloc",
}


def path_without_slurm(bin_dir: Path) -> str:
    """A PATH with every program of the current PATH except the SLURM clients (links in bin_dir): proves
    that planning needs no scheduler installed."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            link = bin_dir / entry.name
            if entry.name in SLURM_TOOLS or link.exists() or link.is_symlink():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                link.symlink_to(entry.path)
    return str(bin_dir)
