"""The cost planner (agorabench.budget, `agorabench plan`): token estimates, arithmetic, paper ratios."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from agorabench import budget
from agorabench import workflow as wf
from agorabench.generation.prompts import load_template

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "config/config.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "config/demo.yaml").read_text())


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # config paths (prompts, themes) are relative to the repository


def test_tokens_are_characters_over_four():
    assert budget.tokens("") == 0
    assert budget.tokens("abcd") == 1
    assert budget.tokens("abcde") == 2
    assert budget.tokens("x" * 4000) == 1000


def test_model_sizes_are_read_from_names():
    assert budget.params_of(PAPER, "llama-3.1-8b") == 8e9
    assert budget.params_of(PAPER, "llama-3.1-70b-instruct") == 70e9
    assert budget.params_of(DEMO, "smollm2-135m-instruct") == 135e6


def test_api_cost_is_calls_times_tokens_times_price():
    price = {"input_per_mtok": 2.5, "output_per_mtok": 10.0}
    # 1000 calls x (1000 in x 2.5 + 500 out x 10) / 1e6
    assert budget.api_cost(1000, 1000, 500, price) == pytest.approx(7.5)
    assert budget.api_cost(1000, 1000, 500, None) == 0.0


def test_sft_gpu_hours_follow_6_params_tokens_over_mfu_peak():
    # 8B params, 100M tokens: 6 * 8e9 * 1e8 = 4.8e18 FLOPs at SFT_MFU of the H100's peak
    hours = budget.sft_gpu_hours(1e8, 8e9)
    assert hours == pytest.approx(4.8e18 / (budget.SFT_MFU * budget.H100_BF16_PEAK_FLOPS) / 3600)
    assert budget.sft_gpu_hours(2e8, 8e9) == pytest.approx(2 * hours)


def test_inference_gpu_hours_split_prefill_and_decode():
    prefill_only = budget.gpu_hours(1e6, 0, 8e9)
    decode_only = budget.gpu_hours(0, 1e6, 8e9)
    assert decode_only / prefill_only == pytest.approx(budget.PREFILL_EFFICIENCY / budget.DECODE_EFFICIENCY)


def test_prompt_tokens_without_seed_files_come_from_template_and_seed_lengths():
    # The paper's seed files are not in the repository: the fallback is the template plus assumed seeds.
    prompt, output, source = budget.pool_tokens(PAPER, "math", "instance_generation", "agorabench", 10_000)
    assert source == "assumed"
    template = load_template(wf.planning_template(PAPER, "agorabench", "math", "instance_generation"))
    ins, res = budget.SEED_TOKENS[("math", "instance_generation")]
    assert prompt > budget.tokens(template.text) - 20 + template.n_demos * (ins + res)
    assert output == ins + res
    _, rg_output, _ = budget.pool_tokens(PAPER, "code", "response_generation", "agorabench", 10_000)
    assert rg_output == budget.SEED_TOKENS[("code", "response_generation")][1]  # a response only


def test_prompt_tokens_with_seeds_are_rendered_from_the_templates():
    prompt, output, source = budget.pool_tokens(DEMO, "math", "instance_generation", "agorabench", 4)
    assert source == "rendered"
    template = load_template(wf.template_path(DEMO, "agorabench", "math", "instance_generation"))
    assert prompt > budget.tokens(template.text) - 50  # the demonstrations are in
    assert output > 0


def _gpt4o_ig(pools):
    return next(p for p in pools if (p.generator, p.method) == ("gpt-4o", "instance_generation"))


def test_official_attempts_run_until_each_instance_is_accepted_at_most_k_times():
    cfg = copy.deepcopy(PAPER)
    cfg["results_dir"] = "results/nonexistent-study"
    gen = cfg["generation"]
    assert gen["validation"] == "official" and gen["max_attempts_per_instance"] == 10
    p, k = gen["assumed_acceptance_rate"], 10  # the config's documented assumption is what is used
    pool = _gpt4o_ig(budget.estimate_pools(cfg))
    assert pool.valid_rate == p and pool.valid_rate_source == "assumed"
    # Truncated geometric: sum over attempts of P(still pending) = (1 - (1-p)^k) / p per instance.
    assert pool.calls == pytest.approx(pool.n * (1 - (1 - p) ** k) / p)
    assert pool.calls == pytest.approx(pool.n / p, rel=1e-6)  # at p = 0.8 the truncation is negligible
    assert pool.max_calls == k * pool.n
    low = _gpt4o_ig(budget.estimate_pools(cfg, valid_rate=0.1))
    assert low.calls == pytest.approx(low.n * (1 - 0.9**k) / 0.1)  # 6.5 n: well below n / p = 10 n
    assert low.calls < low.max_calls == k * low.n
    assert budget.expected_attempts(0.01, 10) < 10 and budget.expected_attempts(1.0, 10) == 1
    assert pool.usd_cap == pytest.approx(pool.usd * pool.max_calls / pool.calls)


def test_rounds_of_several_attempts_are_paid_whole():
    # 4 attempts a round, cap 10: rounds of 4, 4, 2 attempts, paid while the instance is still pending.
    p = 0.5
    assert budget.expected_attempts(p, 10, per_round=4) == pytest.approx(
        4 + 4 * (1 - p) ** 4 + 2 * (1 - p) ** 8
    )
    assert budget.expected_attempts(p, 10, per_round=4) > budget.expected_attempts(p, 10)


def test_strict_calls_use_the_valid_rate_and_stop_at_the_pool_cap():
    cfg = copy.deepcopy(PAPER)
    cfg["results_dir"] = "results/nonexistent-study"
    cfg["generation"]["validation"] = "strict"
    del cfg["generation"]["assumed_acceptance_rate"]  # absent: the module's default
    pool = _gpt4o_ig(budget.estimate_pools(cfg))
    assert pool.valid_rate == budget.ASSUMED_VALID_RATE
    assert pool.calls == pytest.approx(pool.n / budget.ASSUMED_VALID_RATE)
    assert pool.max_calls == 2 * pool.n  # max_attempts_factor 2.0
    low = _gpt4o_ig(budget.estimate_pools(cfg, valid_rate=0.1))
    assert low.calls == low.max_calls  # 10 % valid would need 10x: the cap (2x) binds


def test_the_plan_prints_the_cap_beside_the_expectation():
    est = budget.estimate(copy.deepcopy(PAPER))
    text = budget.render_text(est, "config/config.yaml")
    header = next(line for line in text.splitlines() if line.startswith("| generator | calls"))
    assert "calls (expected) | calls at attempt cap" in header
    row = next(line for line in text.splitlines() if line.startswith("| gpt-4o |"))
    expected, cap = (int(c.strip().replace(",", "")) for c in row.split("|")[2:4])
    assert cap == sum(p.max_calls for p in est.pools if p.generator == "gpt-4o")
    assert expected == round(est.generators["gpt-4o"]["calls"]) and expected < cap
    assert "official: each instance until accepted, at most 10 attempts" in text
    assert f"(assumed = {PAPER['generation']['assumed_acceptance_rate']})" in text


def test_an_observed_valid_rate_is_used(tmp_path):
    cfg = copy.deepcopy(DEMO)
    cfg["results_dir"] = str(tmp_path)
    g, d, m, v = wf.generated_sets(cfg)[0]
    stats = tmp_path / "generation" / g / d / m / v / "pool.stats.json"
    stats.parent.mkdir(parents=True)
    stats.write_text(json.dumps({"valid": 2, "calls": 8}))
    pool = next(
        p for p in budget.estimate_pools(cfg) if (p.generator, p.domain, p.method, p.variant) == (g, d, m, v)
    )
    assert pool.valid_rate == 0.25 and pool.valid_rate_source == "observed"


def test_the_paper_study_matches_table3_and_figure7():
    est = budget.estimate(copy.deepcopy(PAPER))
    prices = est.paper["table3_prices"]
    assert set(prices) == set(PAPER["generators"]) and all(p["same"] for p in prices.values())
    ratio = est.paper["fig7_price_ratio"]
    assert round(ratio["input"]) == round(ratio["output"]) == 17  # "17 times cheaper"
    # "50K instances with GPT-4o-mini are 3.4 times cheaper than 10K with GPT-4o": same tokens per
    # instance, so 16.7 / 5 = 3.33, within the paper's rounding of its own token counts.
    assert est.paper["fig7_cost_ratio"]["estimate"] == pytest.approx(3.4, abs=0.1)


def test_the_paper_study_budget_is_complete_and_plausible():
    est = budget.estimate(copy.deepcopy(PAPER))
    assert set(est.generators) == set(PAPER["generators"])
    api = [g for g, s in PAPER["generators"].items() if not wf.is_local(s)]
    for g in api:
        assert est.generators[g]["usd"] > 0 and est.generators[g]["gpu_hours"] == 0
    for g in set(PAPER["generators"]) - set(api):
        assert est.generators[g]["usd"] == 0 and est.generators[g]["gpu_hours"] > 0
    # GPT-4o-mini generates 4x more data (Figure 7 sizes) and still costs less than GPT-4o.
    assert est.generators["gpt-4o-mini"]["usd"] < est.generators["gpt-4o"]["usd"]
    assert est.jobs["students"] == len(wf.students(PAPER))
    assert est.gpu_hours["total"] == pytest.approx(sum(v for k, v in est.gpu_hours.items() if k != "total"))
    assert est.judges["gpt-4o"]["usd"] > 0


def test_batch_mode_is_priced_side_by_side():
    cfg = copy.deepcopy(PAPER)
    cfg["generators"]["gpt-4o"]["price"]["batch_discount"] = 0.4  # a price's own discount wins
    est = budget.estimate(cfg)
    gens, judges = est.generators, est.judges
    assert gens["gpt-4o"]["usd_batch"] == pytest.approx(gens["gpt-4o"]["usd"] * 0.6)
    for g in ("gpt-4o-mini", "claude-3.5-sonnet"):  # OpenAI / Anthropic batch APIs: half price
        assert gens[g]["usd_batch"] == pytest.approx(gens[g]["usd"] / 2)
    # a model behind its own OpenAI-compatible server has no known batch API; local ones cost no API
    assert (
        "usd_batch" not in gens["llama-3.1-405b-instruct"]
        and "usd_batch" not in gens["llama-3.1-8b-instruct"]
    )
    assert judges["gpt-4-turbo"]["usd_batch"] == pytest.approx(judges["gpt-4-turbo"]["usd"] / 2)
    # a judge without a price of its own is priced like the generator of the same model, discount included
    assert judges["gpt-4o"]["usd_batch"] == pytest.approx(judges["gpt-4o"]["usd"] * 0.6)
    text = budget.render_text(est, "config/config.yaml")
    total = sum(r.get("usd_batch", r["usd"]) for r in gens.values())
    assert "USD batch mode" in text and f"**{total:,.0f}**" in text


def test_cli_prints_the_plan_and_writes_json(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert budget.main(["--config", "config/config.yaml", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "API dollars per generator" in text and "GPU-hours per stage" in text and "paper: 17x" in text
    data = json.loads(out.read_text())
    assert data["generators"]["gpt-4o"]["usd"] > 0


@pytest.mark.parametrize("rate", ["0", "1.5"])
def test_cli_rejects_a_bad_valid_rate(rate):
    with pytest.raises(SystemExit) as exc:
        budget.main(["--valid-rate", rate])
    assert exc.value.code == 2


def _with_seeds(config: dict, experiment: str, seeds: list[int]) -> dict:
    cfg = copy.deepcopy(config)
    cfg["experiments"][experiment]["training_seeds"] = seeds
    return cfg


def test_extra_training_seeds_are_trained_too():
    one = budget.estimate(copy.deepcopy(PAPER))
    two = budget.estimate(_with_seeds(PAPER, "main", [42, 43]))
    three = budget.estimate(_with_seeds(PAPER, "main", [42, 43, 44]))
    main_only = copy.deepcopy(PAPER)
    main_only["experiments"] = {"main": PAPER["experiments"]["main"]}
    alone = budget.estimate(main_only)  # the main students once: what each extra seed adds
    n_main = alone.jobs["students"]
    assert (
        two.jobs["extra_training_runs"]
        == n_main
        == len(wf.extra_replicates(_with_seeds(PAPER, "main", [42, 43])))
    )
    assert two.jobs["students"] == one.jobs["students"] and one.jobs["extra_training_runs"] == 0
    sft = "sft (students)"
    assert two.gpu_hours[sft] - one.gpu_hours[sft] == pytest.approx(alone.gpu_hours[sft])
    assert three.gpu_hours[sft] - one.gpu_hours[sft] == pytest.approx(2 * alone.gpu_hours[sft])
    assert two.inference["jobs"] == one.inference["jobs"] + n_main  # their inference was counted already
    text = budget.render_text(two, "config/config.yaml")
    assert f"{one.jobs['students']} students (+ {n_main} training runs with other seeds)" in text


def test_a_mixture_of_experts_is_sized_by_all_experts_and_prefills_through_two():
    assert budget.params_of(PAPER, "prometheus-2-8x7b") == 8 * 7e9
    assert budget.active_params_of(PAPER, "prometheus-2-8x7b") == budget.MOE_ACTIVE_EXPERTS * 7e9
    assert budget.active_params_of(PAPER, "llama-3.1-70b-instruct") == 70e9  # dense: every parameter
    moe = budget.gpu_hours(1e6, 1e6, 56e9, active=14e9)
    assert moe == pytest.approx(budget.gpu_hours(1e6, 0, 14e9) + budget.gpu_hours(0, 1e6, 56e9))


def _intrinsic_sets(config: dict) -> int:
    main = config["experiments"]["main"]
    return len(main["generators"]) * len(main["domains"]) * len(main["methods"]) * len(main["variants"])


def test_a_local_intrinsic_judge_costs_gpu_hours_like_a_local_generator():
    judge = "prometheus-2-8x7b"
    spec = PAPER["judges"][judge]
    assert spec["backend"] == "vllm" and judge in PAPER["intrinsic"]["judge"]["judges"].values()
    est = budget.estimate(copy.deepcopy(PAPER))
    row, sets = est.judges[judge], _intrinsic_sets(PAPER)
    tokens = budget.gpu_hours(
        row["prompt_tokens"],
        row["output_tokens"],
        budget.params_of(PAPER, spec["model"]),
        budget.active_params_of(PAPER, spec["model"]),
    )
    load = sets * budget.LOAD_MINUTES["intrinsic_judge"] * spec["tensor_parallel_size"] / 60
    assert row["usd"] == 0 and row["gpu_hours"] == pytest.approx(tokens + load)
    assert est.judges["gpt-4o"]["gpu_hours"] == 0  # an API judge costs dollars, not GPU-hours
    stage = "intrinsic judges (local vLLM, transformers)"
    assert est.gpu_hours[stage] == pytest.approx(row["gpu_hours"])
    assert est.gpu_hours["total"] == pytest.approx(sum(v for k, v in est.gpu_hours.items() if k != "total"))
    # twice the tensor-parallel GPUs: each engine start holds twice the GPUs, the tokens cost the same
    wide = copy.deepcopy(PAPER)
    wide["judges"][judge]["tensor_parallel_size"] = 2 * spec["tensor_parallel_size"]
    assert budget.estimate(wide).judges[judge]["gpu_hours"] == pytest.approx(tokens + 2 * load)
    text = budget.render_text(est, "config/config.yaml")
    assert f"| {judge} | {row['calls']:,.0f} |" in text and f"| {stage} | {row['gpu_hours']:,.1f} |" in text


def test_an_intrinsic_judge_writes_at_most_its_own_max_tokens():
    judge = "prometheus-2-8x7b"
    short = copy.deepcopy(PAPER)
    short["judges"][judge]["sampling"]["max_tokens"] = 16  # the judge's own sampling wins, as in its job
    full, cut = budget.estimate(copy.deepcopy(PAPER)), budget.estimate(short)
    calls = full.judges[judge]["calls"]
    assert full.judges[judge]["output_tokens"] == calls * budget.INTRINSIC_OUTPUT_TOKENS
    assert cut.judges[judge]["output_tokens"] == calls * 16
    assert cut.judges["gpt-4o"]["output_tokens"] == full.judges["gpt-4o"]["output_tokens"]
    assert cut.judges[judge]["gpu_hours"] < full.judges[judge]["gpu_hours"]


def test_the_generation_system_prompt_is_priced_as_sent():
    from agorabench.generation.prompts import DEFAULT_SYSTEM_PROMPT

    setting = ("math", "instance_generation", "agorabench", 10_000)
    absent, default, empty = copy.deepcopy(PAPER), copy.deepcopy(PAPER), copy.deepcopy(PAPER)
    del absent["generation"]["system_prompt"]  # absent: the stage sends DEFAULT_SYSTEM_PROMPT
    default["generation"]["system_prompt"] = DEFAULT_SYSTEM_PROMPT
    empty["generation"]["system_prompt"] = ""  # empty: no system message
    prompt = {
        name: budget.pool_tokens(cfg, *setting)[0]
        for name, cfg in [("absent", absent), ("default", default), ("empty", empty)]
    }
    assert prompt["absent"] == prompt["default"]
    assert prompt["absent"] - prompt["empty"] == budget.tokens(DEFAULT_SYSTEM_PROMPT) > 0
