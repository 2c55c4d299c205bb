"""AlpacaEval 2.0: length-controlled win rate against the reference outputs, judged pairwise by an LLM.

Judging (alpaca_eval's pairwise annotator): for each item the judge sees the instruction and two outputs,
the reference as `output_1` and the model's as `output_2`, swapped for about half the items to cancel
position bias. Whether an item is swapped is drawn as alpaca_eval's RandomSwitchTwoColumnsProcessor
does: `random.Random("is_switch_output_1_output_2" + instruction + str(seed)).choices([False, True])`.
With seed 123 (alpaca_eval's default) the swaps are the official ones. The verdict is mapped back to a
preference in [1, 2]: 1 = the reference is better, 2 = the model's output is.

Verdicts (setting `verdict`): `logprobs` is the official annotator's (weighted_alpaca_eval_gpt4_turbo):
the judge returns the `top_logprobs` most likely first tokens with their log-probabilities and the
preference is weighted, 2 - P(first identifier) / (P(m) + P(M)) (alpaca_eval's logprob_parser); a reply
whose top tokens hold neither identifier is unparsed. `text` reads the reply and gives a binary
preference (alpaca_eval's `is_binarize` form), parsed leniently: the whole reply, else its first word
when the other identifier is not on the first line, else the only identifier that appears as a word.
Unparsed replies are counted as `judge_unparsed` and left out of the metrics (alpaca_eval drops
unparsable preferences too); `wins`/`losses`/`ties` count preferences above, below and at 1.5. A
missing prediction is a loss (preference 1, length 0) without a judge call, counted as
`missing_prediction`.

Metrics (alpaca_eval 0.6.6, metrics/winrate.py and metrics/glm_winrate.py, reimplemented because its
GLM downloads data from the Hugging Face Hub at run time and uses an sklearn API deprecated in 1.9):
- win rate = mean(preference - 1) x 100 with its standard error (`win_rate`, `standard_error`);
- length-controlled win rate: a logistic GLM of the preference on tanh(standardised length difference)
  (+ instruction difficulty) + a model term, fitted with L1 penalty and the penalty chosen by 5-fold
  grouped cross-validation on soft labels (as `fit_LogisticRegressionCV`), then averaged over the items
  with the length difference set to 0. `length_controlled_minimal` (length + model terms) needs nothing
  else; `length_controlled_noreg` and `length_controlled_v1` (the leaderboard's default: + instruction
  difficulty, regularised towards alpaca_eval's two length-gamed baselines with lambda 0.2) need the
  `df_gamed.csv` file of the tatsu-lab/alpaca_eval dataset on the Hub (setting `glm_data`); items are
  then matched to its `index` column by the position at the end of their id ("alpaca_eval/17").
tests/test_parity_alpaca_eval.py runs alpaca_eval 0.6.6's own get_length_controlled_winrate on the same
annotations (its df_gamed.csv download replaced by a file in that layout): all three GLMs agree to 1e-9.
Two C values tying in CV loss to ~1e-6 could still pick different C (not seen on those annotations).
Instruction difficulties are looked up by df_gamed's `index` column; alpaca_eval looks them up by the row
label of the first row of each index: the same when the file's first rows hold each index once, in
order (assumed; the real file could not be read here).
Edge cases: all length differences equal (e.g. an output judged against itself) gives a length feature
of 0 instead of 0/0; fewer than 5 parsed preferences use as many folds, fewer than 2 no CV (C = 100).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agorabench.errors import ConfigError, DataError
from agorabench.evaluation.judging import (
    JudgeTemplate,
    finite,
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
from agorabench.llm.base import Backend, Sampling

PLACEHOLDERS = ("instruction", "output_1", "output_2")
SWITCH_SEED_PREFIX = "is_switch_output_1_output_2"
# name -> (uses instruction difficulty, regularisation towards the gamed baselines)
GLMS: dict[str, tuple[bool, float | None]] = {
    "length_controlled_v1": (True, 0.2),
    "length_controlled_noreg": (True, None),
    "length_controlled_minimal": (False, None),
}
CS = np.logspace(-4, 4, 10)  # LogisticRegressionCV's default grid (Cs=10)
GAMED_COLUMNS = ("index", "preference", "std_delta_len", "instruction_difficulty", "not_gamed_baseline")
DEFAULTS: dict[str, Any] = {
    "labels": ["m", "M"],  # identifiers of output_1 and output_2 in the template
    "max_tokens": 16,
    "temperature": 0.0,
    "glm": None,  # None: length_controlled_v1 with glm_data, else length_controlled_minimal
    "glm_data": None,
    "verdict": "text",  # or "logprobs": the official weighted preference
    "top_logprobs": 5,  # with verdict "logprobs" (the official value)
}
VERDICTS = ("text", "logprobs")


def is_switched(instruction: str, seed: int) -> bool:
    """alpaca_eval's seeded coin: show the model's output first?"""
    return random.Random(SWITCH_SEED_PREFIX + instruction + str(seed)).choices([False, True], k=1)[0]


def parse_choice(text: str, labels: Sequence[str]) -> int | None:
    """1 or 2: which identifier the judge chose (the first or second of `labels`); None if unclear."""
    stripped = text.strip().strip("\"'`*.:;!()[]{}<> \n\t")
    if stripped in labels:
        return labels.index(stripped) + 1
    words = re.findall(r"[\w']+", text)
    first_line = re.findall(r"[\w']+", text.strip().split("\n", 1)[0])
    if words and words[0] in labels and len(set(first_line) & set(labels)) == 1:
        return labels.index(words[0]) + 1  # "M\n\nbecause ..."
    found = {w for w in words if w in labels}
    if len(found) == 1:
        return labels.index(found.pop()) + 1
    return None


def win_rate_stats(preferences: Sequence[float]) -> dict[str, float]:
    """alpaca_eval's get_winrate on parsed preferences in [1, 2] (1.5 = draw)."""
    p = np.asarray(preferences, dtype=float) - 1
    n = len(p)
    if n == 0:
        return {"win_rate": 0.0, "standard_error": float("nan"), "n_wins": 0, "n_wins_base": 0, "n_draws": 0}
    return {
        "win_rate": float(p.mean() * 100),
        "standard_error": float(p.std(ddof=1) / np.sqrt(n) * 100) if n > 1 else float("nan"),
        "n_wins": int((p > 0.5).sum()),
        "n_wins_base": int((p < 0.5).sum()),
        "n_draws": int((p == 0.5).sum()),
    }


def _logreg(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    # penalty="l1" of alpaca_eval, written as l1_ratio=1 (sklearn >= 1.8)
    return LogisticRegression(C=c, l1_ratio=1.0, solver="liblinear", fit_intercept=False, random_state=123)


def _soft_logloss(target: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> float:
    """alpaca_eval's logloss_continuous: mean (weighted) cross-entropy against soft targets."""
    pred = np.clip(pred, 1e-15, 1 - 1e-15)
    loss = target * np.log(pred) + (1 - target) * np.log(1 - pred)
    return float(-np.mean(loss if weight is None else loss * weight))


def fit_soft_logistic(
    x: np.ndarray, p: np.ndarray, weight: np.ndarray | None = None, n_splits: int = 5
) -> tuple[Any, float]:
    """L1 logistic regression on soft labels p in [0, 1]; C chosen by grouped CV. Returns (model, C).

    As alpaca_eval's fit_LogisticRegressionCV(is_ytrue_proba=True): every row appears twice, with label
    1 weighted p and label 0 weighted 1 - p (times `weight`); both copies share a CV group. With fewer
    than 2 rows there is no CV and C = 100 (its n_splits=0 branch).
    """
    from sklearn.model_selection import GroupKFold

    n = len(p)
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    xd, yd = np.vstack([x, x]), np.r_[np.ones(n), np.zeros(n)]
    sw, groups, target = np.r_[p * w, (1 - p) * w], np.r_[np.arange(n), np.arange(n)], np.r_[p, p]
    true_w = None if weight is None else np.r_[w, w]
    n_splits = min(n_splits, n)
    best = 100.0
    if n_splits >= 2:
        scores = np.zeros(len(CS))
        for train, test in GroupKFold(n_splits=n_splits).split(xd, yd, groups):
            for j, c in enumerate(CS):
                model = _logreg(c).fit(xd[train], yd[train], sample_weight=sw[train])
                tw = None if true_w is None else true_w[test]
                scores[j] -= _soft_logloss(target[test], model.predict_proba(xd[test])[:, 1], tw)
        best = float(CS[int(np.argmax(scores))])
    return _logreg(best).fit(xd, yd, sample_weight=sw), best


def _design(std_delta: np.ndarray, difficulty: np.ndarray | None, not_gamed: np.ndarray) -> np.ndarray:
    """Columns of alpaca_eval's formula: np.tanh(std_delta_len) [+ instruction_difficulty] + not_gamed."""
    cols = [np.tanh(std_delta)] + ([difficulty] if difficulty is not None else []) + [not_gamed]
    return np.column_stack([np.asarray(c, dtype=float) for c in cols])


def standardised_length_delta(len_reference: np.ndarray, len_model: np.ndarray) -> np.ndarray:
    """(len(output_1) - len(output_2)) / its standard deviation; 0 where all differences are equal."""
    delta = np.asarray(len_reference, dtype=float) - np.asarray(len_model, dtype=float)
    std = delta.std(ddof=1) if len(delta) > 1 else 0.0
    return delta / std if std > 0 else np.zeros_like(delta)


def length_controlled_winrate(
    preference: np.ndarray,
    len_reference: np.ndarray,
    len_model: np.ndarray,
    glm: str = "length_controlled_minimal",
    difficulty: np.ndarray | None = None,
    gamed: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """LC win rate (percent) and its standard error; `preference` in [1, 2], NaN where unparsed."""
    uses_difficulty, reg = GLMS[glm]
    if uses_difficulty and difficulty is None:
        raise ConfigError("glm_data", f"{glm} needs the instruction difficulties (df_gamed.csv)")
    p = np.where(np.asarray(preference, dtype=float) == 0, 1.5, preference) - 1
    std_delta = standardised_length_delta(len_reference, len_model)
    diff = difficulty if uses_difficulty else None
    x = _design(std_delta, diff, np.ones(len(p)))
    x_test = _design(np.zeros(len(p)), diff, np.ones(len(p)))
    weight = None
    if reg is not None:
        assert gamed is not None
        g = gamed
        x = np.vstack([x, _design(g["std_delta_len"], g["instruction_difficulty"], g["not_gamed_baseline"])])
        p = np.r_[p, g["preference"]]
        not_gamed = np.r_[np.ones(len(std_delta)), g["not_gamed_baseline"]]
        weight = not_gamed + reg * (1 - not_gamed) / 2  # two gamed baselines share the weight
    keep = ~np.isnan(p)
    if not keep.any():
        return {"lc_win_rate": 0.0, "lc_standard_error": float("nan"), "lc_C": None}
    model, c = fit_soft_logistic(x[keep], p[keep], None if weight is None else weight[keep])
    pred = model.predict_proba(x_test)[:, 1]
    sem = float(pred.std(ddof=1) / np.sqrt(len(pred)) * 100) if len(pred) > 1 else float("nan")
    return {"lc_win_rate": float(pred.mean() * 100), "lc_standard_error": sem, "lc_C": c}


def is_extreme_change(raw: float, lc: float, abs_diff: float = 10, rel_diff: float = 4) -> bool:
    """alpaca_eval's warning: the LC win rate moved far from the raw one (a sign the GLM failed)."""
    too_small = lc < min(raw - raw / rel_diff, raw - abs_diff)
    too_large = lc > max(raw + (100 - raw) / rel_diff, raw + abs_diff)
    return bool(too_small or too_large)


def load_gamed(path: str | Path) -> dict[str, np.ndarray]:
    """alpaca_eval's df_gamed.csv: the length-gamed baselines' annotations and instruction difficulties."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ConfigError("glm_data", f"{path} not found")
    df = pd.read_csv(path)
    missing = [c for c in GAMED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}")
    pref = df["preference"].astype(float)
    if ((pref < 0) | (pref > 1)).any():
        raise DataError(path, "column 'preference' must lie in [0, 1]")
    out = {c: df[c].to_numpy() for c in GAMED_COLUMNS}
    out["not_gamed_baseline"] = df["not_gamed_baseline"].astype(bool).to_numpy().astype(float)
    return out


def _difficulties(gamed: dict[str, np.ndarray], item_ids: Sequence[str], path: str) -> np.ndarray:
    """Instruction difficulty per item, by the position that ends its id."""
    table: dict[int, float] = {}
    for idx, d in zip(gamed["index"], gamed["instruction_difficulty"], strict=True):
        table.setdefault(int(idx), float(d))
    out = []
    for item_id in item_ids:
        tail = item_id.rsplit("/", 1)[-1]
        if not tail.isdigit() or int(tail) not in table:
            raise DataError(
                path, "no instruction difficulty for this item (ids must end in /<index>)", record=item_id
            )
        out.append(table[int(tail)])
    return np.array(out)


def _settings(given: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"alpaca_eval.{unknown[0]}", f"unknown setting (known: {', '.join(DEFAULTS)})")
    s = {**DEFAULTS, **given}
    labels = s["labels"]
    if not (
        isinstance(labels, list | tuple)
        and len(labels) == 2
        and all(isinstance(x, str) and x for x in labels)
    ):
        raise ConfigError("alpaca_eval.labels", f"must be two non-empty strings, got {labels!r}")
    if labels[0] == labels[1]:
        raise ConfigError("alpaca_eval.labels", "the two identifiers must differ")
    if s["verdict"] not in VERDICTS:
        raise ConfigError(
            "alpaca_eval.verdict", f"must be one of {', '.join(VERDICTS)}, got {s['verdict']!r}"
        )
    k = s["top_logprobs"]
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 20:
        raise ConfigError("alpaca_eval.top_logprobs", f"must be an integer in [1, 20], got {k!r}")
    if s["glm"] is None:
        s["glm"] = "length_controlled_v1" if s["glm_data"] else "length_controlled_minimal"
    if s["glm"] not in GLMS:
        raise ConfigError("alpaca_eval.glm", f"must be one of {', '.join(GLMS)}, got {s['glm']!r}")
    if GLMS[s["glm"]][0] and not s["glm_data"]:
        raise ConfigError("alpaca_eval.glm_data", f"{s['glm']} needs alpaca_eval's df_gamed.csv")
    s["labels"] = list(labels)
    return s


@register
class AlpacaEvalScorer(Scorer):
    kind = "alpaca_eval"
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
        template = load_template(judge_template, "alpaca_eval.txt", PLACEHOLDERS)
        rows = _rows(items, predictions, source, seed)
        sampling = judge_sampling(s["temperature"], s["max_tokens"])
        _judge_rows(rows, judge, template, sampling, cache_path, s)
        gamed = load_gamed(s["glm_data"]) if s["glm_data"] else None
        meta = {"judge": judge_name(judge), "judge_template": template.source,
                "judge_template_sha256": template.sha256, "seed": seed}  # fmt: skip
        return _score(rows, {**meta, **s}, gamed)


def _rows(
    items: list[dict[str, Any]], predictions: list[dict[str, Any]], source: str, seed: int
) -> list[dict]:
    """One row per item: prompt, reference, the model's output (None if missing), swapped or not."""
    rows = []
    for item, pred in match_predictions(items, predictions, source):
        prompt = require_str(item, "prompt", "benchmark items")
        ref = require_str(item, "reference_output", "benchmark items")
        output = None if pred is None else require_str(pred, "output", source)
        row = {"id": item["id"], "prompt": prompt, "reference": ref, "output": output}
        rows.append(row | {"switched": is_switched(prompt, seed), "verdict": None, "judge_error": False})
    return rows


def _judge_rows(
    rows: list[dict[str, Any]],
    judge: Backend,
    template: JudgeTemplate,
    sampling: Sampling,
    cache_path: str,
    s: dict[str, Any],
) -> None:
    """Ask the judge about every row with an output; sets verdict, judge_error and preference."""
    top_logprobs = s["top_logprobs"] if s["verdict"] == "logprobs" else 0
    requests = {}
    for r in rows:
        if r["output"] is None:
            continue
        first, second = (r["output"], r["reference"]) if r["switched"] else (r["reference"], r["output"])
        values = {"instruction": r["prompt"], "output_1": first, "output_2": second}
        order = "model_first" if r["switched"] else "reference_first"
        requests[r["id"]] = judge_request(
            judge, template, r["id"], order, values, sampling, top_logprobs=top_logprobs
        )
    done = run_judge(judge, list(requests.values()), cache_path)
    for r in rows:
        req = requests.get(r["id"])
        completion = None if req is None else done.get(req.id)
        r["verdict"] = verdict_text(completion)
        r["judge_error"] = req is not None and r["verdict"] is None
        shown = _shown_preference(completion, r["verdict"], s)
        r["preference"] = None if shown is None else float(3 - shown if r["switched"] else shown)


def _shown_preference(completion: Any, verdict: str | None, s: dict[str, Any]) -> float | None:
    """Preference in [1, 2] for the outputs in the order shown (None: unparsed or failed)."""
    if verdict is None:
        return None
    if s["verdict"] == "logprobs":
        first = verdict_logprobs(completion)
        return None if first is None else weighted_choice(first, s["labels"])
    choice = parse_choice(verdict, s["labels"])
    return None if choice is None else float(choice)


def _score(rows: list[dict[str, Any]], s: dict[str, Any], gamed: dict[str, np.ndarray] | None) -> Score:
    """Win rates from the per-item preferences; a missing prediction counts as a loss (preference 1)."""
    for r in rows:
        if r["output"] is None:
            r["preference"] = 1.0
    judged = [r for r in rows if r["output"] is not None]
    parsed = [r["preference"] for r in rows if r["preference"] is not None]
    stats = win_rate_stats(parsed)
    pref = np.array([np.nan if r["preference"] is None else r["preference"] for r in rows])
    len_ref = np.array([len(r["reference"]) for r in rows])
    len_model = np.array([len(r["output"] or "") for r in rows])
    difficulty = _difficulties(gamed, [r["id"] for r in rows], s["glm_data"]) if gamed is not None else None
    lc = length_controlled_winrate(pref, len_ref, len_model, s["glm"], difficulty, gamed)
    counts = {
        "judged": len(judged),
        "judge_unparsed": sum(r["preference"] is None for r in judged),
        "judge_error": sum(r["judge_error"] for r in judged),
        "missing_prediction": len(rows) - len(judged),
        "wins": sum(r["preference"] is not None and r["preference"] > 1.5 for r in judged),
        "losses": sum(r["preference"] is not None and r["preference"] < 1.5 for r in judged),
        "ties": sum(r["preference"] == 1.5 for r in judged),
    }
    secondary = {
        "win_rate": round(stats["win_rate"], 4),
        "standard_error": finite(stats["standard_error"]),
        "lc_standard_error": finite(lc["lc_standard_error"]),
        "lc_glm": s["glm"],
        "lc_C": lc["lc_C"],
        "lc_extreme_change": is_extreme_change(stats["win_rate"], lc["lc_win_rate"]) if parsed else False,
        "avg_length": float(len_model.mean()) if len(rows) else 0.0,
        "n_preferences": len(parsed),
    }
    per_item = [
        {"id": r["id"], "switched": r["switched"], "verdict": r.get("verdict"), "preference": r["preference"],
         "missing_prediction": r["output"] is None}
        for r in rows
    ]  # fmt: skip
    return Score(
        kind="alpaca_eval", metric="length_controlled_win_rate",
        # No parsed preference at all: the score is undefined (null), not a number.
        value=round(lc["lc_win_rate"], 4) if parsed else None,
        n=len(rows), ci=None, counts=counts, settings=s, secondary=secondary, per_item=per_item,
    )  # fmt: skip
