"""The cost planner (agorabench.plan): token estimates, the arithmetic, and the paper's stated ratios."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from agorabench import plan
from agorabench import workflow as wf
from agorabench.generation.prompts import load_template

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "config/config.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "config/demo.yaml").read_text())


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # config paths (prompts, themes) are relative to the repository


def test_tokens_are_characters_over_four():
    assert plan.tokens("") == 0
    assert plan.tokens("abcd") == 1
    assert plan.tokens("abcde") == 2
    assert plan.tokens("x" * 4000) == 1000


def test_model_sizes_are_read_from_names():
    assert plan.params_of(PAPER, "llama-3.1-8b") == 8e9
    assert plan.params_of(PAPER, "llama-3.1-70b-instruct") == 70e9
    assert plan.params_of(DEMO, "smollm2-135m-instruct") == 135e6


def test_api_cost_is_calls_times_tokens_times_price():
    price = {"input_per_mtok": 2.5, "output_per_mtok": 10.0}
    # 1000 calls x (1000 in x 2.5 + 500 out x 10) / 1e6
    assert plan.api_cost(1000, 1000, 500, price) == pytest.approx(7.5)
    assert plan.api_cost(1000, 1000, 500, None) == 0.0


def test_sft_gpu_hours_follow_6_params_tokens_over_mfu_peak():
    # 8B params, 100M tokens: 6 * 8e9 * 1e8 = 4.8e18 FLOPs at SFT_MFU of the H100's peak
    hours = plan.sft_gpu_hours(1e8, 8e9)
    assert hours == pytest.approx(4.8e18 / (plan.SFT_MFU * plan.H100_BF16_PEAK_FLOPS) / 3600)
    assert plan.sft_gpu_hours(2e8, 8e9) == pytest.approx(2 * hours)


def test_inference_gpu_hours_split_prefill_and_decode():
    prefill_only = plan.gpu_hours(1e6, 0, 8e9)
    decode_only = plan.gpu_hours(0, 1e6, 8e9)
    assert decode_only / prefill_only == pytest.approx(plan.PREFILL_EFFICIENCY / plan.DECODE_EFFICIENCY)


def test_prompt_tokens_without_seed_files_come_from_template_and_seed_lengths():
    # The paper's seed files are not in the repository: the fallback is the template plus assumed seeds.
    prompt, output, source = plan.pool_tokens(PAPER, "math", "instance_generation", "agorabench", 10_000)
    assert source == "assumed"
    template = load_template(wf.planning_template(PAPER, "agorabench", "math", "instance_generation"))
    ins, res = plan.SEED_TOKENS[("math", "instance_generation")]
    assert prompt > plan.tokens(template.text) - 20 + template.n_demos * (ins + res)
    assert output == ins + res
    _, rg_output, _ = plan.pool_tokens(PAPER, "code", "response_generation", "agorabench", 10_000)
    assert rg_output == plan.SEED_TOKENS[("code", "response_generation")][1]  # a response only


def test_prompt_tokens_with_seeds_are_rendered_from_the_templates():
    prompt, output, source = plan.pool_tokens(DEMO, "math", "instance_generation", "agorabench", 4)
    assert source == "rendered"
    template = load_template(wf.template_path(DEMO, "agorabench", "math", "instance_generation"))
    assert prompt > plan.tokens(template.text) - 50  # the demonstrations are in
    assert output > 0


def test_calls_use_the_valid_rate_and_stop_at_the_attempt_cap():
    cfg = copy.deepcopy(PAPER)
    cfg["results_dir"] = "results/nonexistent-study"
    pools = plan.estimate_pools(cfg)
    pool = next(p for p in pools if p.generator == "gpt-4o" and p.method == "instance_generation")
    assert pool.valid_rate_source == "assumed"
    assert pool.calls == pytest.approx(pool.n / plan.ASSUMED_VALID_RATE)
    assert pool.max_calls == 2 * pool.n
    low = next(
        p
        for p in plan.estimate_pools(cfg, valid_rate=0.1)
        if (p.generator, p.method) == ("gpt-4o", "instance_generation")
    )
    assert low.calls == low.max_calls  # 10 % valid would need 10x: the cap (2x) binds
    assert pool.usd_cap == pytest.approx(pool.usd * pool.max_calls / pool.calls)


def test_an_observed_valid_rate_is_used(tmp_path):
    cfg = copy.deepcopy(DEMO)
    cfg["results_dir"] = str(tmp_path)
    g, d, m, v = wf.generated_sets(cfg)[0]
    stats = tmp_path / "generation" / g / d / m / v / "pool.stats.json"
    stats.parent.mkdir(parents=True)
    stats.write_text(json.dumps({"valid": 2, "calls": 8}))
    pool = next(
        p for p in plan.estimate_pools(cfg) if (p.generator, p.domain, p.method, p.variant) == (g, d, m, v)
    )
    assert pool.valid_rate == 0.25 and pool.valid_rate_source == "observed"


def test_the_paper_study_matches_table3_and_figure7():
    est = plan.estimate(copy.deepcopy(PAPER))
    prices = est.paper["table3_prices"]
    assert set(prices) == set(PAPER["generators"]) and all(p["same"] for p in prices.values())
    ratio = est.paper["fig7_price_ratio"]
    assert round(ratio["input"]) == round(ratio["output"]) == 17  # "17 times cheaper"
    # "50K instances with GPT-4o-mini are 3.4 times cheaper than 10K with GPT-4o": same tokens per
    # instance, so 16.7 / 5 = 3.33, within the paper's rounding of its own token counts.
    assert est.paper["fig7_cost_ratio"]["estimate"] == pytest.approx(3.4, abs=0.1)


def test_the_paper_study_budget_is_complete_and_plausible():
    est = plan.estimate(copy.deepcopy(PAPER))
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
    est = plan.estimate(cfg)
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
    text = plan.render_text(est, "config/config.yaml")
    total = sum(r.get("usd_batch", r["usd"]) for r in gens.values())
    assert "USD batch mode" in text and f"**{total:,.0f}**" in text


def test_cli_prints_the_plan_and_writes_json(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert plan.main(["--config", "config/config.yaml", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "API dollars per generator" in text and "GPU-hours per stage" in text and "paper: 17x" in text
    data = json.loads(out.read_text())
    assert data["generators"]["gpt-4o"]["usd"] > 0


@pytest.mark.parametrize("rate", ["0", "1.5"])
def test_cli_rejects_a_bad_valid_rate(rate):
    with pytest.raises(SystemExit) as exc:
        plan.main(["--valid-rate", rate])
    assert exc.value.code == 2
