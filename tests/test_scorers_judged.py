"""The LLM-judged scorers (AlpacaEval 2.0, Arena-Hard v0.1) with scripted judges, real data and SmolLM2."""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from agorabench.errors import ConfigError, DataError
from agorabench.evaluation.judging import JUDGES_DIR, fill, load_template
from agorabench.evaluation.scorers import get_scorer
from agorabench.evaluation.scorers.alpaca_eval import (
    fit_soft_logistic,
    is_switched,
    length_controlled_winrate,
    parse_choice,
)
from agorabench.evaluation.scorers.arena_hard import (
    battles,
    bootstrap_ci,
    bradley_terry_winrate,
    game_battles,
    parse_verdict,
)
from agorabench.llm.base import Backend, Completion, Request

ARENA_REGEX = re.compile(r"\[\[([AB<>=]+)\]\]")


class ScriptedJudge(Backend):
    """A judge backend whose reply is a rule of the request; counts the calls it serves."""

    def __init__(self, rule: Callable[[Request], str | None], model: str = "scripted-judge"):
        self.rule = rule
        self.model = model
        self.calls = 0

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for r in requests:
            self.calls += 1
            text = self.rule(r)
            if text is None:
                yield Completion(id=r.id, text="", finish_reason="error", error="scripted failure")
            else:
                yield Completion(id=r.id, text=text, finish_reason="stop", model=self.model)


def make_items(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"id": f"t/{i}", "prompt": f"Question {i}: explain topic {rng.randint(0, 10**6)}.",
         "reference_output": "word " * rng.randint(5, 120), "reference_generator": "ref"}
        for i in range(n)
    ]  # fmt: skip


def self_predictions(items: list[dict]) -> list[dict]:
    return [{"id": it["id"], "prompt": it["prompt"], "output": it["reference_output"]} for it in items]


# Pure position bias: always prefer the answer shown first.
FIRST_SHOWN = {"alpaca_eval": "m", "arena_hard": "[[A>B]]"}


def alpaca(items, preds, judge, tmp_path: Path, name: str = "calls.jsonl", **kw):
    return get_scorer("alpaca_eval").score(items, preds, judge=judge, cache_path=str(tmp_path / name), **kw)


def arena(items, preds, judge, tmp_path: Path, name: str = "calls.jsonl", **kw):
    return get_scorer("arena_hard").score(items, preds, judge=judge, cache_path=str(tmp_path / name), **kw)


# ---- AlpacaEval 2.0 ----


def test_alpaca_self_vs_self_is_half_with_position_randomisation(tmp_path: Path) -> None:
    items = make_items(400)
    judge = ScriptedJudge(lambda r: "m")  # always the first shown output
    score = alpaca(items, self_predictions(items), judge, tmp_path)
    switched = np.mean([is_switched(it["prompt"], 42) for it in items])
    # the model wins exactly where its output was shown first, i.e. on the swapped items
    assert score.secondary["win_rate"] == pytest.approx(100 * switched)
    assert abs(score.secondary["win_rate"] - 50) < 7.5  # 3 binomial SDs for n=400
    assert abs(score.value - 50) <= abs(score.secondary["win_rate"] - 50) + 1e-6
    wins = round(400 * switched)
    assert score.counts == {"judged": 400, "judge_unparsed": 0, "judge_error": 0, "missing_prediction": 0,
                            "wins": wins, "losses": 400 - wins, "ties": 0}  # fmt: skip
    assert score.metric == "length_controlled_win_rate" and score.n == 400 and judge.calls == 400


def test_alpaca_swaps_follow_alpaca_eval_recipe() -> None:
    # alpaca_eval: Random("is_switch_output_1_output_2" + instruction + str(seed)).choices([False, True])
    expected = random.Random("is_switch_output_1_output_2" + "Say hi." + "123").choices([False, True], k=1)[0]
    assert is_switched("Say hi.", 123) is expected
    flips = [is_switched(f"instruction {i}", 42) for i in range(2000)]
    assert 0.45 < np.mean(flips) < 0.55


def test_alpaca_length_controlled_removes_a_pure_length_preference(tmp_path: Path) -> None:
    items = make_items(300, seed=1)
    rng = random.Random(7)
    preds = []
    for it in items:  # 70% of outputs longer than the reference, 30% shorter
        ref = it["reference_output"]
        out = ref + "more " * rng.randint(5, 60) if rng.random() < 0.7 else ref[: len(ref) // 2]
        preds.append({"id": it["id"], "output": out})
    lengths = {
        it["id"]: (len(p["output"]), len(it["reference_output"])) for it, p in zip(items, preds, strict=True)
    }

    def longer(r: Request) -> str:  # prefers the longer output, more surely the larger the difference
        model_len, ref_len = lengths[r.meta["item_id"]]
        p_model = 1 / (1 + np.exp(-3 * np.tanh((model_len - ref_len) / 200)))
        model_wins = random.Random(r.meta["item_id"]).random() < p_model
        return "m" if model_wins == (r.meta["order"] == "model_first") else "M"

    score = alpaca(items, preds, ScriptedJudge(longer), tmp_path)
    raw = score.secondary["win_rate"]
    assert raw > 60
    assert abs(score.value - 50) < abs(raw - 50) / 2  # LC discounts the length-driven wins
    assert score.secondary["lc_glm"] == "length_controlled_minimal"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("m", 1), (" M\n", 2), ("`M`", 2), ("M.", 2), ("**m**", 1), ("The answer is M.", 2),
        ("The answer that is better is:\n\nM", 2), ("Model m is better.", 1), ("M\n\nm was worse", 2),
        ("m or M", None), ("I'm not sure", None), ("", None), ("The first one", None), ("mM", None),
    ],
)  # fmt: skip
def test_alpaca_verdict_parsing(text: str, expected: int | None) -> None:
    assert parse_choice(text, ["m", "M"]) == expected


def test_alpaca_unparsed_errors_and_missing_are_counted(tmp_path: Path) -> None:
    items = make_items(12)
    preds = self_predictions(items)[:-2]  # two items without a prediction

    def noisy(r: Request) -> str | None:
        i = int(r.meta["item_id"].split("/")[1])
        return None if i == 0 else "both are fine" if i in (1, 2, 3) else "M"

    score = alpaca(items, preds, ScriptedJudge(noisy), tmp_path)
    c = score.counts
    assert (c["judged"], c["judge_unparsed"], c["judge_error"], c["missing_prediction"]) == (10, 4, 1, 2)
    assert c["wins"] + c["losses"] + c["ties"] + c["judge_unparsed"] == c["judged"]
    assert score.secondary["n_preferences"] == 8  # 6 parsed + 2 missing (counted as losses)
    by_id = {p["id"]: p for p in score.per_item}
    assert by_id["t/1"]["verdict"] == "both are fine" and by_id["t/1"]["preference"] is None
    assert by_id["t/11"]["missing_prediction"] and by_id["t/11"]["preference"] == 1.0


def test_alpaca_glm_on_soft_labels_and_equal_lengths() -> None:
    # a constant soft preference p is recovered by the model term alone
    model, c = fit_soft_logistic(np.ones((200, 1)), np.full(200, 0.8))
    assert model.predict_proba(np.ones((1, 1)))[0, 1] == pytest.approx(0.8, abs=0.01) and c > 0
    # equal lengths: nothing to control for, the LC win rate stays at the raw one
    pref = np.where(np.arange(300) % 4 == 0, 1.0, 2.0)  # 75% wins
    lc = length_controlled_winrate(pref, np.full(300, 500), np.full(300, 500))
    assert lc["lc_win_rate"] == pytest.approx(75.0, abs=1.0)
    # unparsed preferences (NaN) are left out of the fit
    lc_nan = length_controlled_winrate(np.r_[pref, [np.nan] * 20], np.full(320, 500), np.full(320, 500))
    assert lc_nan["lc_win_rate"] == pytest.approx(lc["lc_win_rate"], abs=0.5)


def test_alpaca_v1_glm_with_gamed_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 30
    rows = [f"{i},{rng.uniform(0, 1):.3f},{rng.normal():.3f},{d:.3f},{g}"
            for g in (True, False) for i, d in enumerate(rng.normal(size=n))]  # fmt: skip
    gamed = tmp_path / "df_gamed.csv"
    gamed.write_text(
        "index,preference,std_delta_len,instruction_difficulty,not_gamed_baseline\n" + "\n".join(rows)
    )
    items = make_items(n)
    score = alpaca(
        items, self_predictions(items), ScriptedJudge(lambda r: "m"), tmp_path, glm_data=str(gamed)
    )
    assert score.secondary["lc_glm"] == "length_controlled_v1" and 0 <= score.value <= 100
    bad = [{**it, "id": f"x/{it['id']}y"} for it in items[:2]]
    with pytest.raises(DataError, match="instruction difficulty"):
        alpaca(bad, self_predictions(bad), ScriptedJudge(lambda r: "m"), tmp_path, glm_data=str(gamed))


# ---- Arena-Hard v0.1 ----


@pytest.mark.parametrize(
    ("judgment", "expected"),
    [
        ("My final verdict is [[A>B]]", ("A>B", False)),
        ("no label here", (None, True)),
        ("[[B>>A]] ... so [[B>>A]]", ("B>>A", False)),
        ("[[A>B]] or maybe [[B>A]]", (None, False)),  # conflicting labels: no verdict, no retry
        ("[[A]]", ("A", False)),  # matches the regex but is no verdict: no battle
    ],
)
def test_arena_verdict_regex_semantics(judgment: str, expected: tuple) -> None:
    assert parse_verdict(judgment, ARENA_REGEX) == expected


def test_arena_battles_per_game_and_weight() -> None:
    assert battles("A>>B", "baseline_first", 3) == [0.0, 0.0, 0.0]
    assert battles("A>>B", "model_first", 3) == [1.0, 1.0, 1.0]
    assert battles("B>A", "baseline_first", 3) == [1.0]
    assert battles("B>A", "model_first", 3) == [0.0]
    assert battles("A=B", "model_first", 3) == [0.5]
    assert battles("A", "model_first", 3) == [] and battles(None, "baseline_first", 3) == []


def test_arena_bradley_terry_equals_official_logistic_fit() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    scores = rng.choice([0.0, 0.5, 1.0], p=[0.5, 0.2, 0.3], size=300)
    # show_result.compute_mle_elo: battles twice, ties one win each, no penalty, Elo scale, baseline 1000
    winner = np.where(scores == 0.0, "model_a", np.where(scores == 1.0, "model_b", "tie"))
    n = len(winner)
    x = np.zeros((2 * n, 2))
    x[:, 0], x[:, 1] = np.log(10), -np.log(10)  # column 0: the baseline (model_a), 1: the model
    y = np.r_[(winner == "model_a") | (winner == "tie"), winner == "model_a"].astype(float)
    coef = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-8).fit(x, y).coef_[0]
    elo = 400 * coef + 1000
    elo += 1000 - elo[0]
    official = 100 / (1 + 10 ** ((elo[0] - elo[1]) / 400))
    assert bradley_terry_winrate(scores.tolist()) == pytest.approx(official, abs=1e-3)


def test_arena_self_vs_self_is_half(tmp_path: Path) -> None:
    items = make_items(50)
    for label in ("[[A>B]]", "[[A>>B]]", "[[B>A]]"):  # pure position bias, mild or strong
        judge = ScriptedJudge(lambda r, lab=label: f"Both answers match. My final verdict: {lab}")
        score = arena(items, self_predictions(items), judge, tmp_path, name=f"{label}.jsonl")
        assert score.value == pytest.approx(50.0)
        assert score.ci is not None and score.ci[0] <= 50 <= score.ci[1]
        assert score.counts["judged"] == 100 and score.counts["judge_unparsed"] == 0
        assert score.counts["wins"] == score.counts["losses"] == 50
        assert score.secondary["battles"] == (300 if ">>" in label else 100)
        assert judge.calls == 100


def test_arena_scores_a_better_model(tmp_path: Path) -> None:
    items = make_items(40)

    def prefers_model(r: Request) -> str:  # the model wins both games, strongly on even items
        strong = int(r.meta["item_id"].split("/")[1]) % 2 == 0
        if r.meta["order"] == "baseline_first":
            return "[[B>>A]]" if strong else "[[B>A]]"
        return "[[A>>B]]" if strong else "[[A=B]]"

    score = arena(items, self_predictions(items), ScriptedJudge(prefers_model), tmp_path)
    # battles: 20 strong items x 2 games x 3 wins, 20 mild items: 1 win + 1 tie
    assert score.value == pytest.approx(100 * (120 + 20 + 10) / (120 + 40))
    assert score.counts["strong_verdicts"] == 40 and score.counts["ties"] == 20


def test_arena_second_attempt_continues_the_conversation(tmp_path: Path) -> None:
    items = make_items(3)

    def late(r: Request) -> str:  # no label at first; asked again, it gives one
        return "[[B>A]]" if r.messages[-1]["role"] == "user" and len(r.messages) > 2 else "Let me think."

    judge = ScriptedJudge(late)
    score = arena(items, self_predictions(items), judge, tmp_path)
    assert judge.calls == 12 and score.counts["judge_unparsed"] == 0 and score.value == pytest.approx(50.0)
    assert score.per_item[0]["games"][0]["judgment"] == "Let me think.\n[[B>A]]"
    judge1 = ScriptedJudge(late)
    one = arena(items, self_predictions(items), judge1, tmp_path, name="one.jsonl", attempts=1)
    assert judge1.calls == 6 and one.counts["judge_unparsed"] == 6 and one.ci is None


class LetterJudge(Backend):
    """A judge that answers one token with fixed top log-probabilities for the letters A and B."""

    def __init__(self, lp_a: float, lp_b: float):
        self.model, self.top = "letter-judge", {"A": lp_a, "B": lp_b, "The": -9.0}

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for r in requests:
            assert r.top_logprobs == 5 and r.sampling.max_tokens == 1
            yield Completion(id=r.id, text="A", finish_reason="stop", top_logprobs=[dict(self.top)])


def test_arena_weighted_verdicts_are_soft_battles(tmp_path: Path) -> None:
    items = make_items(6)
    preds = self_predictions(items)
    # P(A) = 0.8 among the two letters in every game: the model is B in game 1 (score 0.2) and A in game 2
    # (score 0.8); the win rate is their mean, every game has a verdict, and details reproduce the score.
    judge = LetterJudge(math.log(0.8 * 0.9), math.log(0.2 * 0.9))
    s = arena(items, preds, judge, tmp_path, verdict="logprobs", max_tokens=1, attempts=1,
              judge_template=str(JUDGES_DIR / "arena_hard_weighted.txt"))  # fmt: skip
    assert s.counts["judged"] == 12 and s.counts["judge_unparsed"] == 0
    assert s.counts["wins"] == 6 and s.counts["losses"] == 6 and s.counts["strong_verdicts"] == 0
    assert s.value == pytest.approx(50.0) and s.secondary["battles"] == 12
    scores = [g["model_score"] for row in s.per_item for g in row["games"]]
    assert sorted(set(round(x, 9) for x in scores)) == [0.2, 0.8]
    again = [b for row in s.per_item for g in row["games"] for b in game_battles(g, 3)]
    assert np.mean(again) * 100 == pytest.approx(s.value)


def test_arena_weighted_verdict_without_either_letter_is_unparsed(tmp_path: Path) -> None:
    class NoLetters(LetterJudge):
        def __init__(self) -> None:
            self.model, self.top = "no-letters", {"The": -0.1}

    s = arena(make_items(3), self_predictions(make_items(3)), NoLetters(), tmp_path, verdict="logprobs",
              max_tokens=1)  # fmt: skip
    assert s.counts["judge_unparsed"] == 6 and s.value is None


@pytest.mark.parametrize(
    "bad", [{"verdict": "soft"}, {"top_logprobs": 0}, {"labels": ["A"]}, {"labels": "AB"}]
)
def test_arena_weighted_settings_are_checked(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ConfigError, match="arena_hard"):
        arena(make_items(1), self_predictions(make_items(1)), LetterJudge(0.0, 0.0), tmp_path, **bad)


def test_arena_counts_add_up_with_noise_and_missing(tmp_path: Path) -> None:
    items = make_items(10)
    preds = self_predictions(items)[:8]
    verdicts = ["[[A>B]]", "[[B>A]] but [[A>B]]", "nothing", "[[A=B]]", "[[C]]", None]
    rng = random.Random(0)
    judge = ScriptedJudge(lambda r: rng.choice(verdicts))
    score = arena(items, preds, judge, tmp_path, attempts=1)
    c = score.counts
    assert c["judged"] == 16 and c["missing_prediction"] == 2
    assert c["wins"] + c["losses"] + c["ties"] + c["judge_unparsed"] == c["judged"]
    assert c["judge_error"] <= c["judge_unparsed"]
    assert score.per_item[-1]["missing_prediction"] and score.per_item[-1]["games"] == []


def test_arena_bootstrap_is_seeded_and_configurable() -> None:
    scores = [1.0, 0.0, 0.5, 1.0, 0.0, 0.0, 1.0, 1.0]
    assert bootstrap_ci(scores, 200, seed=1) == bootstrap_ci(scores, 200, seed=1)
    lo, hi = bootstrap_ci(scores, 200, seed=1)
    assert lo <= bradley_terry_winrate(scores) <= hi
    assert bootstrap_ci(scores, 0, seed=1) is None and bootstrap_ci([], 100, seed=1) is None


# ---- shared: the call store, templates, bad input ----


@pytest.mark.parametrize("kind", ["alpaca_eval", "arena_hard"])
def test_second_run_makes_zero_judge_calls(tmp_path: Path, kind: str) -> None:
    items = make_items(20)
    preds = self_predictions(items)
    scorer = get_scorer(kind)
    first = ScriptedJudge(lambda r: FIRST_SHOWN[kind])
    a = scorer.score(items, preds, judge=first, cache_path=str(tmp_path / "c.jsonl"))
    again = ScriptedJudge(lambda r: FIRST_SHOWN[kind])
    b = scorer.score(items, preds, judge=again, cache_path=str(tmp_path / "c.jsonl"))
    assert first.calls > 0 and again.calls == 0
    assert (a.value, a.counts, a.ci) == (b.value, b.counts, b.ci)
    # another judge model or template asks again
    other = ScriptedJudge(lambda r: FIRST_SHOWN[kind], model="other-judge")
    scorer.score(items, preds, judge=other, cache_path=str(tmp_path / "c.jsonl"))
    assert other.calls == first.calls


def test_template_fill_is_one_pass_and_files_are_checked(tmp_path: Path) -> None:
    assert fill("A: {answer_1} B: {answer_2}", {"answer_1": "uses {answer_2}", "answer_2": "x"}) == (
        "A: uses {answer_2} B: x"
    )
    t = load_template(None, "arena_hard.txt", ("question_1", "answer_1", "answer_2"))
    assert [role for role, _ in t.messages] == ["system", "user"]
    bad = tmp_path / "judge.txt"
    bad.write_text("<|im_start|>user\nCompare {output_1} with the reference.\n<|im_end|>\n")
    with pytest.raises(DataError, match=r"judge.txt.*\{instruction\}"):
        load_template(bad, "", ("instruction", "output_1"))
    with pytest.raises(ConfigError, match="not found"):
        load_template(tmp_path / "absent.txt", "", ())


def test_bad_input_names_the_record(tmp_path: Path) -> None:
    items = make_items(3)
    judge = ScriptedJudge(lambda r: "m")
    broken = [*items[:2], {"id": "t/2", "prompt": "Q?"}]
    with pytest.raises(DataError, match=r"t/2.*reference_output|reference_output.*t/2"):
        alpaca(broken, self_predictions(items), judge, tmp_path)
    with pytest.raises(DataError, match="not an item"):
        arena(items, [{"id": "elsewhere/1", "output": "x"}], judge, tmp_path)
    with pytest.raises(ConfigError, match="unknown setting"):
        arena(items, self_predictions(items), judge, tmp_path, bootstrap_round=5)
    with pytest.raises(ConfigError, match="labels"):
        alpaca(items, self_predictions(items), judge, tmp_path, labels=["m", "m"])


# ---- real data ----


@pytest.mark.shared_data
def test_alpaca_real_slice_with_scripted_judge(shared_data: Path, tmp_path: Path) -> None:
    from agorabench.data.benchmarks import load_benchmark

    path = shared_data / "alpaca-eval-2" / "results" / "gpt4_1106_preview" / "model_outputs.json"
    items = load_benchmark(
        "alpaca_eval", "alpaca_eval", {"format": "alpaca_eval_json", "path": str(path)}, limit=20
    )
    seen: list[Request] = []

    def position(r: Request) -> str:
        seen.append(r)
        return "m"

    score = alpaca(items, self_predictions(items), ScriptedJudge(position), tmp_path, seed=123)
    switched = [is_switched(it["prompt"], 123) for it in items]
    assert score.counts["judged"] == 20 and score.counts["judge_unparsed"] == 0
    assert score.secondary["win_rate"] == pytest.approx(100 * np.mean(switched))
    assert abs(score.value - 50) <= abs(score.secondary["win_rate"] - 50) + 1e-6
    by_id = {it["id"]: it for it in items}
    for r in seen:  # the normalised items fill the template: instruction and reference output shown
        text = r.messages[-1]["content"]
        assert (
            by_id[r.meta["item_id"]]["prompt"] in text
            and by_id[r.meta["item_id"]]["reference_output"] in text
        )
        assert "{output_1}" not in text and "{instruction}" not in text


@pytest.mark.shared_data
def test_arena_real_slice_baseline_vs_itself(shared_data: Path, tmp_path: Path) -> None:
    from agorabench.data.benchmarks import load_benchmark

    root = shared_data / "arena-hard-v0.1"
    source = {"format": "arena_hard_jsonl", "questions": str(root / "question.jsonl"),
              "baseline": str(root / "model_answer" / "gpt-4-0314.jsonl")}  # fmt: skip
    items = load_benchmark("arena_hard", "arena_hard", source, limit=10)
    score = arena(items, self_predictions(items), ScriptedJudge(lambda r: "[[A>B]]"), tmp_path)
    assert score.value == pytest.approx(50.0) and score.counts["judged"] == 20


@pytest.mark.shared_data
def test_official_judge_files_load_as_templates(shared_data: Path) -> None:
    clf = shared_data / "alpaca-eval-2/evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt"
    t = load_template(clf, "", ("instruction", "output_1", "output_2"))
    assert [role for role, _ in t.messages] == ["system", "user"] and t.regex_pattern is None
    cfg = shared_data / "arena-hard-v0.1/config/judge_config.yaml"
    t = load_template(cfg, "", ("question_1", "answer_1", "answer_2"))
    assert [role for role, _ in t.messages] == ["system", "user"]
    assert t.regex_pattern == r"\[\[([AB<>=]+)\]\]"


# ---- a real small judge ----


class CountingBackend(Backend):
    def __init__(self, inner: Backend):
        self.inner, self.model, self.calls = inner, inner.model, 0

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        self.calls += len(requests)
        yield from self.inner.complete(requests)


DEMO_ITEMS = [
    ("What is the capital of France?", "The capital of France is Paris.", "Paris."),
    ("Give two synonyms for 'happy'.", "Joyful and cheerful.", "glad, content"),
    (
        "Write a haiku about rain.",
        "Soft rain on the roof\nwhispers to the town\npuddles hold the sky",
        "Rain falls.",
    ),
    ("How many legs does a spider have?", "A spider has eight legs.", "Eight."),
]


@pytest.mark.slow
def test_smollm2_as_judge(smollm2_dir: Path, tmp_path: Path) -> None:
    try:
        from agorabench.llm.transformers_backend import TransformersBackend
    except ImportError as exc:
        pytest.skip(f"TransformersBackend not available: {exc}")
    t0 = time.perf_counter()
    items = [
        {"id": f"demo/{i}", "prompt": q, "reference_output": ref} for i, (q, ref, _) in enumerate(DEMO_ITEMS)
    ]
    preds = [{"id": f"demo/{i}", "output": out} for i, (_, _, out) in enumerate(DEMO_ITEMS)]
    judge = CountingBackend(TransformersBackend(smollm2_dir, dtype="float32", batch_size=8, num_threads=1))
    a = alpaca(items, preds, judge, tmp_path, name="a.jsonl", max_tokens=8)
    unparsed = sum(p["preference"] is None for p in a.per_item)
    assert a.counts["judged"] == 4 and a.counts["judge_unparsed"] == unparsed
    assert a.counts["wins"] + a.counts["losses"] + a.counts["ties"] + unparsed == 4
    h = arena(items, preds, judge, tmp_path, name="h.jsonl", max_tokens=24, attempts=1)
    labels = [g["label"] for p in h.per_item for g in p["games"]]
    assert h.counts["judged"] == 8 and len(labels) == 8
    assert h.counts["wins"] + h.counts["losses"] + h.counts["ties"] + h.counts["judge_unparsed"] == 8
    assert judge.calls == 12
    arena(items, preds, judge, tmp_path, name="h.jsonl", max_tokens=24, attempts=1)
    assert judge.calls == 12  # the re-run is served from the call store
    print(f"smollm2 judge: alpaca {a.counts}, arena {h.counts}, {time.perf_counter() - t0:.1f}s")
    (tmp_path / "verdicts.json").write_text(json.dumps([a.per_item, h.per_item]))
