"""Arena-Hard v0.1: win rate against the baseline answers (gpt-4-0314) from pairwise LLM judgments.

As arena-hard-auto (v0.1, gen_judgment.py and show_result.py at commit ff46f0ac):
- two games per question: game 1 shows the baseline as assistant A and the model as B, game 2 swaps them;
- the verdict is read with the regex `\\[\\[([AB<>=]+)\\]\\]`: all matches in the judgment must agree
  (one distinct label: that label; none: ask again; several: no verdict). With no label after an
  attempt the conversation continues with a request for the final verdict, up to `attempts` calls
  (2 officially), and the judgments are read together;
- each game becomes battles: A>B / B>A one battle, A>>B / B>>A `weight` battles (3), A=B a tie;
  any other label, or none, gives no battle and is counted as `judge_unparsed`;
- the score is the Bradley-Terry win rate of the model against the baseline (percent), with a 95%
  bootstrap interval (2.5 / 97.5 percentiles over `bootstrap_rounds` resamples of the battles, 100).

Bradley-Terry: show_result fits an Elo-scaled logistic regression on all models' battles with the
baseline, counting a tie as one win for each side. With every battle against the same baseline the
likelihood splits per model, and the maximum-likelihood win rate of a model is exactly its share of
won battles, ties counting one half; `bradley_terry_winrate` computes that (tests check it against the
logistic regression). Bootstrap resamples use numpy's default_rng(seed) and this model's battles only
(show_result resamples all models' battles together with np.random.seed(42)), so intervals match the
official ones in distribution, not digit for digit.

A missing prediction gives, without a judge call, two strong losses (the verdict a blank answer earns).

Weighted verdicts (setting `verdict: logprobs`, a project extension, not arena-hard-auto's): the judge is
asked for the letter of the better assistant only (a template such as config/judges/arena_hard_weighted.txt,
one token), and each game becomes one soft battle, the model's score being the probability of its letter
among the two (`labels`) in the first generated token's top log-probabilities, as AlpacaEval's weighted
annotator reads its verdict. Every game with either letter among the top tokens has a verdict, which makes
a small local judge usable; there are no strong verdicts or ties in that mode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from agorabench.errors import ConfigError
from agorabench.evaluation.judging import (
    JudgeTemplate,
    judge_name,
    judge_request,
    judge_sampling,
    load_template,
    run_judge,
    verdict_logprobs,
    verdict_text,
    weighted_choice,
)
from agorabench.evaluation.scorers.base import Score, Scorer, match_predictions, register, require_str
from agorabench.llm.base import Backend, Completion, Request, Sampling

PLACEHOLDERS = ("question_1", "answer_1", "answer_2")
VERDICT_REGEX = r"\[\[([AB<>=]+)\]\]"
GAMES = ("baseline_first", "model_first")  # game 1: A = baseline; game 2: A = the model
# The model's score in a battle per label and game, and whether the label is a strong one.
_MODEL_AS_B = {"A>>B": 0.0, "A>B": 0.0, "A=B": 0.5, "B>A": 1.0, "B>>A": 1.0}
MODEL_SCORE = {"baseline_first": _MODEL_AS_B, "model_first": {k: 1 - v for k, v in _MODEL_AS_B.items()}}
STRONG = ("A>>B", "B>>A")
CONTINUE_PROMPT = "Please go on with your evaluation and finish with your final verdict label."
DEFAULTS: dict[str, Any] = {
    "max_tokens": 4096,
    "temperature": 0.0,
    "attempts": 2,
    "weight": 3,
    "bootstrap_rounds": 100,
    "verdict_regex": None,  # None: the template's regex_pattern (YAML), else VERDICT_REGEX
    "verdict": "text",  # or "logprobs": one soft battle per game from the verdict letter's probability
    "top_logprobs": 5,  # with verdict "logprobs"
    "labels": ["A", "B"],  # with verdict "logprobs": the letters of assistant A and B
}
VERDICTS = ("text", "logprobs")


def parse_verdict(judgment: str, pattern: re.Pattern[str]) -> tuple[str | None, bool]:
    """(label or None, ask again?) as arena-hard's get_score: all matches must agree."""
    matches = [m for m in pattern.findall(judgment) if m != ""]
    distinct = set(matches)
    if not distinct:
        return None, True
    if len(distinct) == 1:
        return matches[0].strip("\n"), False
    return None, False


def battles(label: str | None, game: str, weight: int) -> list[float]:
    """The model's score in each battle one game yields (empty when the label is not a verdict)."""
    if label not in MODEL_SCORE[game]:
        return []
    return [MODEL_SCORE[game][label]] * (weight if label in STRONG else 1)


def game_battles(game: dict[str, Any], weight: int) -> list[float]:
    """The battles of one game as details.jsonl records it (a weighted verdict: its one soft battle)."""
    if "model_score" in game:
        return [float(game["model_score"])]
    return battles(game.get("label"), game["game"], weight)


def bradley_terry_winrate(scores: Sequence[float]) -> float:
    """Win rate (percent) of the model against the baseline: the two-player Bradley-Terry MLE."""
    return float(np.mean(scores) * 100) if len(scores) else 0.0


def bootstrap_ci(scores: Sequence[float], rounds: int, seed: int) -> tuple[float, float] | None:
    """95% percentile interval of the win rate over `rounds` resamples of the battles."""
    s = np.asarray(scores, dtype=float)
    if len(s) == 0 or rounds < 1:
        return None
    rng = np.random.default_rng(seed)
    means = s[rng.integers(0, len(s), size=(rounds, len(s)))].mean(axis=1) * 100
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _settings(given: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"arena_hard.{unknown[0]}", f"unknown setting (known: {', '.join(DEFAULTS)})")
    s = {**DEFAULTS, **given}
    for key in ("attempts", "weight", "bootstrap_rounds", "max_tokens"):
        low = 0 if key == "bootstrap_rounds" else 1
        if not isinstance(s[key], int) or isinstance(s[key], bool) or s[key] < low:
            raise ConfigError(f"arena_hard.{key}", f"must be an integer >= {low}, got {s[key]!r}")
    if s["verdict"] not in VERDICTS:
        raise ConfigError("arena_hard.verdict", f"{s['verdict']!r} is not one of {', '.join(VERDICTS)}")
    k = s["top_logprobs"]
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 20:
        raise ConfigError("arena_hard.top_logprobs", f"must be an integer in [1, 20], got {k!r}")
    labels = s["labels"]
    if not (isinstance(labels, list) and len(labels) == 2 and all(isinstance(x, str) and x for x in labels)):
        raise ConfigError("arena_hard.labels", f"must be two non-empty strings, got {labels!r}")
    return s


def _compile(regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except re.error as exc:
        raise ConfigError("arena_hard.verdict_regex", f"invalid regex {regex!r} ({exc})") from None


class _Games:
    """The judge conversations of all games, attempt by attempt, through the call store."""

    def __init__(
        self,
        judge: Backend,
        template: JudgeTemplate,
        sampling: Sampling,
        pattern: re.Pattern[str],
        cache: str,
    ):
        self.judge = judge
        self.template = template
        self.sampling = sampling
        self.pattern = pattern
        self.cache = cache

    def request(self, key: tuple[str, str], values: dict[str, str], history: list[dict[str, str]]) -> Request:
        return judge_request(self.judge, self.template, key[0], key[1], values, self.sampling, history)

    def run(self, games: dict[tuple[str, str], dict[str, str]], attempts: int) -> dict[tuple[str, str], dict]:
        state = {k: {"judgment": "", "history": [], "label": None, "error": False} for k in games}
        todo = list(games)
        for _ in range(attempts):
            reqs = {k: self.request(k, games[k], state[k]["history"]) for k in todo}
            done = run_judge(self.judge, list(reqs.values()), self.cache)
            todo = [k for k in todo if self._update(state[k], done.get(reqs[k].id))]
        return state

    def _update(self, st: dict[str, Any], completion: Completion | None) -> bool:
        """Read one attempt into the game's state; True if the judge should be asked again."""
        text = verdict_text(completion)
        if text is None:
            st["error"] = True
            return False
        st["judgment"] += "\n" + text
        st["label"], again = parse_verdict(st["judgment"], self.pattern)
        st["history"] = [*st["history"], {"role": "assistant", "content": text},
                         {"role": "user", "content": CONTINUE_PROMPT}]  # fmt: skip
        return again


@register
class ArenaHardScorer(Scorer):
    kind = "arena_hard"
    version = "1"  # part of score_judged's params: bump when a change here or in judging.py moves numbers

    def score(
        self,
        items: list[dict[str, Any]],
        predictions: list[dict[str, Any]],
        *,
        judge: Backend,
        cache_path: str,
        judge_template: str | None = None,
        seed: int = 42,
        source: str = "predictions",
        **settings: Any,
    ) -> Score:
        s = _settings(settings)
        template = load_template(judge_template, "arena_hard.txt", PLACEHOLDERS)
        regex = s["verdict_regex"] or template.regex_pattern or VERDICT_REGEX
        rows, games = _games(items, predictions, source)
        sampling = judge_sampling(s["temperature"], s["max_tokens"])
        if s["verdict"] == "logprobs":
            state = _weighted_games(judge, template, sampling, games, cache_path, s)
        else:
            state = _Games(judge, template, sampling, _compile(regex), cache_path).run(games, s["attempts"])
        meta = {"judge": judge_name(judge), "judge_template": template.source,
                "judge_template_sha256": template.sha256, "seed": seed}  # fmt: skip
        return _score(rows, state, s, seed, {**meta, **s, "verdict_regex": regex})


def _weighted_games(
    judge: Backend,
    template: JudgeTemplate,
    sampling: Sampling,
    games: dict[tuple[str, str], dict[str, str]],
    cache: str,
    s: dict[str, Any],
) -> dict[tuple[str, str], dict]:
    """One call per game; `soft` is the model's score in its one battle (absent: no verdict)."""
    reqs = {k: judge_request(judge, template, k[0], k[1], v, sampling, top_logprobs=s["top_logprobs"])
            for k, v in games.items()}  # fmt: skip
    done = run_judge(judge, list(reqs.values()), cache)
    state = {}
    for (item, game), req in reqs.items():
        completion = done.get(req.id)
        text, first = verdict_text(completion), verdict_logprobs(completion)
        shown = None if first is None else weighted_choice(first, s["labels"])  # in [1, 2]: 2 = B
        st: dict[str, Any] = {"judgment": text or "", "label": None, "error": text is None}
        if shown is not None:
            p_b = shown - 1.0
            st["soft"] = p_b if game == "baseline_first" else 1.0 - p_b  # the model is B in game 1
        state[(item, game)] = st
    return state


def _games(
    items: list[dict[str, Any]], predictions: list[dict[str, Any]], source: str
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, str]]]:
    """Rows (id, output or None) and the template values of both games of every item with an output."""
    rows, games = [], {}
    for item, pred in match_predictions(items, predictions, source):
        prompt = require_str(item, "prompt", "benchmark items")
        ref = require_str(item, "reference_output", "benchmark items")
        output = None if pred is None else require_str(pred, "output", source)
        rows.append({"id": item["id"], "output": output})
        if output is not None:
            shown = {"baseline_first": (ref, output), "model_first": (output, ref)}
            for game, (a, b) in shown.items():
                games[(item["id"], game)] = {"question_1": prompt, "answer_1": a, "answer_2": b}
    return rows, games


def _score(
    rows: list[dict[str, Any]],
    state: dict[tuple[str, str], dict],
    s: dict[str, Any],
    seed: int,
    settings: dict,
) -> Score:
    all_battles: list[float] = []
    counts = {"judged": 0, "judge_unparsed": 0, "judge_error": 0, "missing_prediction": 0,
              "wins": 0, "losses": 0, "ties": 0, "strong_verdicts": 0}  # fmt: skip
    per_item = []
    for r in rows:
        if r["output"] is None:
            counts["missing_prediction"] += 1
            all_battles += [0.0] * (2 * s["weight"])
            per_item.append({"id": r["id"], "missing_prediction": True, "games": []})
            continue
        games = []
        for game in GAMES:
            st = state[(r["id"], game)]
            got = [st["soft"]] if "soft" in st else battles(st["label"], game, s["weight"])
            _count(counts, st, got)
            all_battles += got
            games.append({"game": game, "label": st["label"], "judgment": st["judgment"].strip()}
                         | ({"model_score": st["soft"]} if "soft" in st else {}))  # fmt: skip
        per_item.append({"id": r["id"], "missing_prediction": False, "games": games})
    return Score(
        kind="arena_hard", metric="win_rate_vs_baseline",
        # No parsed verdict at all: the score is undefined (null), not a 0% win rate.
        value=round(bradley_terry_winrate(all_battles), 4) if all_battles else None,
        n=len(rows), counts=counts,
        ci=_rounded(bootstrap_ci(all_battles, s["bootstrap_rounds"], seed)) if all_battles else None,
        settings=settings, secondary={"battles": len(all_battles), "avg_length": _avg_length(rows)},
        per_item=per_item,
    )  # fmt: skip


def _count(counts: dict[str, int], st: dict[str, Any], got: list[float]) -> None:
    counts["judged"] += 1
    if st["error"]:
        counts["judge_error"] += 1
    if not got:
        counts["judge_unparsed"] += 1
        return
    counts["strong_verdicts"] += st["label"] in STRONG
    counts["ties" if got[0] == 0.5 else "wins" if got[0] > 0.5 else "losses"] += 1


def _rounded(ci: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if ci is None else (round(ci[0], 4), round(ci[1], 4))


def _avg_length(rows: list[dict[str, Any]]) -> float:
    lengths = [len(r["output"]) for r in rows if r["output"] is not None]
    return float(np.mean(lengths)) if lengths else 0.0
