"""Parity: the AlpacaEval 2.0 metrics of the project equal alpaca_eval 0.6.6's own on the same annotations.

alpaca_eval's GLM downloads `df_gamed.csv` from the Hugging Face Hub; the test replaces that one download
with a project-written file in the same layout (two length-gamed baselines over the same instructions),
drawn from a seeded generator. Everything else is alpaca_eval's code as released.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agorabench.evaluation.judging import weighted_choice
from agorabench.evaluation.scorers.alpaca_eval import (
    _difficulties,
    length_controlled_winrate,
    load_gamed,
    standardised_length_delta,
    win_rate_stats,
)

glm_winrate = pytest.importorskip(
    "alpaca_eval.metrics.glm_winrate", reason="alpaca-eval==0.6.6 not installed"
)
completion_parsers = pytest.importorskip("alpaca_eval.completion_parsers")

N = 240  # instructions


def _df_gamed(path: Path, rng: np.random.Generator) -> Path:
    """The layout of tatsu-lab/alpaca_eval's df_gamed.csv: per gamed model, one row per instruction."""
    difficulty = rng.normal(0, 1, N)
    frames = []
    for model, shift in (("gamed_verbose", -1.5), ("gamed_concise", 1.5)):
        std_delta = rng.normal(shift, 0.5, N)
        pref = 1 / (1 + np.exp(-(0.8 * np.tanh(std_delta) + difficulty + rng.normal(0, 0.3, N))))
        frames.append(pd.DataFrame({
            "index": np.arange(N), "preference": pref, "std_delta_len": std_delta,
            "instruction_difficulty": difficulty, "not_gamed_baseline": False, "model": model,
        }))  # fmt: skip
    pd.concat(frames).to_csv(path, index=False)
    return path


def _annotations(rng: np.random.Generator) -> pd.DataFrame:
    """Weighted preferences in [1, 2] of one model against the reference, with some unparsed (NaN)."""
    len_ref = rng.integers(200, 2000, N)
    len_model = (len_ref * rng.uniform(0.5, 2.0, N)).astype(int)
    pref = np.clip(1 + rng.beta(2, 2, N) + 0.1 * np.tanh((len_model - len_ref) / 500), 1, 2)
    pref[rng.choice(N, 7, replace=False)] = np.nan
    return pd.DataFrame({
        "instruction": [f"instruction {i}" for i in range(N)],
        "output_1": ["x" * n for n in len_ref], "output_2": ["y" * n for n in len_model],
        "generator_1": "gpt4_1106_preview", "generator_2": "student", "annotator": "judge",
        "preference": pref,
    })  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    rng = np.random.default_rng(20241204)
    gamed = _df_gamed(tmp_path_factory.mktemp("alpaca") / "df_gamed.csv", rng)
    return _annotations(rng), gamed


def _official(annotations: pd.DataFrame, gamed: Path, glm: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setattr(glm_winrate, "hf_hub_download", lambda **kwargs: str(gamed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's deprecation of `penalty`, pandas' future warnings
        return glm_winrate.get_length_controlled_winrate(
            annotations.copy(), glm_name=glm, save_weights_dir=None, is_warn_extreme_changes=False
        )


@pytest.mark.parametrize(
    "glm", ["length_controlled_v1", "length_controlled_noreg", "length_controlled_minimal"]
)
def test_lc_win_rate_equals_alpaca_eval(
    data: tuple[pd.DataFrame, Path], glm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    annotations, gamed_path = data
    official = _official(annotations, gamed_path, glm, monkeypatch)
    gamed = load_gamed(gamed_path)
    ids = [f"alpaca_eval/{i}" for i in range(N)]
    ours = length_controlled_winrate(
        annotations["preference"].to_numpy(),
        annotations["output_1"].str.len().to_numpy(),
        annotations["output_2"].str.len().to_numpy(),
        glm,
        _difficulties(gamed, ids, str(gamed_path)),
        gamed,
    )
    assert ours["lc_win_rate"] == pytest.approx(official["length_controlled_winrate"], abs=1e-9)
    assert ours["lc_standard_error"] == pytest.approx(official["lc_standard_error"], abs=1e-9)


def test_raw_win_rate_equals_alpaca_eval(data: tuple[pd.DataFrame, Path]) -> None:
    annotations, _ = data
    official = glm_winrate.get_winrate(annotations)
    ours = win_rate_stats(annotations["preference"].dropna().to_numpy())
    assert ours["win_rate"] == pytest.approx(official["win_rate"], abs=1e-9)
    assert ours["standard_error"] == pytest.approx(official["standard_error"], abs=1e-9)
    assert (ours["n_wins"], ours["n_wins_base"]) == (official["n_wins"], official["n_wins_base"])


def test_length_feature_equals_alpaca_eval(data: tuple[pd.DataFrame, Path]) -> None:
    annotations, _ = data
    delta = annotations["output_1"].str.len() - annotations["output_2"].str.len()
    ours = standardised_length_delta(annotations["output_1"].str.len(), annotations["output_2"].str.len())
    np.testing.assert_allclose(ours, delta / delta.std(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "tops",
    [
        {"M": -0.017597131, "m": -4.048847, "Both": -14.9},  # the example in alpaca_eval's docstring
        {"m": -0.3, "M": -1.4},
        {"m": -0.2, "The": -1.0},  # M missing from the top tokens: probability 0
        {"M": -2.0, "I": -0.1},
    ],
)
def test_weighted_preference_equals_logprob_parser(tops: dict[str, float]) -> None:
    completion = {
        "logprobs": {"content": [{"top_logprobs": [{"token": t, "logprob": lp} for t, lp in tops.items()]}]}
    }
    official = completion_parsers.logprob_parser(
        completion, numerator_token="m", denominator_tokens=["m", "M"], is_binarize=False
    )
    assert weighted_choice(tops, ["m", "M"]) == pytest.approx(official[0], abs=1e-12)


def test_no_identifier_is_unparsed_as_in_alpaca_eval() -> None:
    completion = {"logprobs": {"content": [{"top_logprobs": [{"token": "The", "logprob": -0.1}]}]}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official = completion_parsers.logprob_parser(
            completion, numerator_token="m", denominator_tokens=["m", "M"], is_binarize=False
        )
    assert math.isnan(official[0]) and weighted_choice({"The": -0.1}, ["m", "M"]) is None
