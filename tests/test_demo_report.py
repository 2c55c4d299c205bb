"""The README's demo section: item scores, the paired bootstrap of generator PGRs, the marker block."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agorabench import workflow as wf
from agorabench.demo_report import BEGIN, END, item_scores, paired_bootstrap, replace_section
from agorabench.errors import DataError
from agorabench.jsonl import write_jsonl

CONFIG = {
    "analysis": {"pgr_eps": 1e-6},
    "benchmarks": {"gsm8k": {"domain": "math", "kind": "math"}},
    "experiments": {
        "main": {
            "generators": ["same-as-ref", "same-as-base"],
            "domains": ["math"],
            "methods": ["instance_generation"],
            "variants": ["agorabench"],
            "sizes": [8],
        }
    },
    "training": {"seed": 42},
}
N = 10


def _details(root: Path, model: str, correct: list[bool]) -> None:
    rows = [{"id": f"q{i}", "correct": c} for i, c in enumerate(correct)]
    write_jsonl(root / "evaluation" / model / "gsm8k" / "details.jsonl", rows)


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    base = [i < 3 for i in range(N)]  # 30%
    ref = [i < 7 for i in range(N)]  # 70%: S_ref solves every item S_0 solves, and four more
    _details(tmp_path, "base", base)
    _details(tmp_path, "reference", ref)
    for s in wf.students(CONFIG):
        _details(tmp_path, s.path, ref if s.generator == "same-as-ref" else base)
    return tmp_path


def test_paired_bootstrap_pgr_of_students_equal_to_s_ref_and_s0(results: Path) -> None:
    table = paired_bootstrap(results, CONFIG, rounds=200, seed=1).set_index("generator")
    # Paired: a student answering exactly as S_ref has PGR 100 on every resample of the items, one
    # answering as S_0 has 0 (rounds whose resample has no item separating S_ref from S_0 are undefined).
    assert table.loc["same-as-ref", "mean_pgr"] == 100.0
    assert table.loc["same-as-ref", ["ci_low", "ci_high"]].tolist() == [100.0, 100.0]
    assert table.loc["same-as-base", ["mean_pgr", "ci_low", "ci_high"]].tolist() == [0.0, 0.0, 0.0]
    assert table.index.tolist() == ["same-as-ref", "same-as-base"]  # ranked by mean PGR
    assert (table["defined"] == 1).all()


def test_gain_over_s0_is_in_points_and_needs_no_gap(results: Path) -> None:
    table = paired_bootstrap(results, CONFIG, rounds=200, seed=1).set_index("generator")
    # The S_ref-like student solves 4 of 10 items more than S_0: +40 points. Its resamples vary (which
    # items were drawn), so the interval surrounds the point and stays above 0; S_0's copy gains 0 always.
    gain, lo, hi = table.loc["same-as-ref", ["mean_gain", "gain_low", "gain_high"]].tolist()
    assert gain == pytest.approx(40.0) and 0.0 < lo < gain < hi <= 100.0
    assert table.loc["same-as-base", ["mean_gain", "gain_low", "gain_high"]].tolist() == [0.0, 0.0, 0.0]
    _details(results, "reference", [i < 3 for i in range(N)])  # S_ref = S_0: PGR undefined, gain is not
    again = paired_bootstrap(results, CONFIG, rounds=50).set_index("generator")
    assert again.loc["same-as-ref", "mean_gain"] == pytest.approx(40.0)


def test_no_gap_between_s_ref_and_s0_is_undefined(results: Path) -> None:
    _details(results, "reference", [i < 3 for i in range(N)])  # S_ref = S_0
    table = paired_bootstrap(results, CONFIG, rounds=50).set_index("generator")
    assert math.isnan(table.loc["same-as-ref", "mean_pgr"]) and (table["defined"] == 0).all()


def test_item_scores_per_kind() -> None:
    assert item_scores([{"id": 1, "passed": True}, {"id": 2, "passed": False}], "code") == {
        "1": 100.0,
        "2": 0.0,
    }
    pref = item_scores([{"id": "a", "preference": 1.75}, {"id": "b", "preference": None}], "alpaca_eval")
    assert pref["a"] == 75.0 and math.isnan(pref["b"])
    # Arena-Hard: labelled verdicts count as battles (a strong one `weight` times); a weighted verdict
    # (the letter's probability, no label) is its one soft battle
    games = [{"game": "model_first", "label": "A>>B"}, {"game": "baseline_first", "label": "A=B"}]
    soft = [
        {"game": "model_first", "label": None, "model_score": 0.9},
        {"game": "baseline_first", "label": None, "model_score": 0.2},
    ]
    arena = item_scores(
        [{"id": "h", "games": games}, {"id": "s", "games": soft}, {"id": "x", "games": []}], "arena_hard"
    )
    assert arena["h"] == pytest.approx(100.0 * 3.5 / 4) and arena["s"] == pytest.approx(55.0)
    assert math.isnan(arena["x"])
    with pytest.raises(DataError, match="unknown benchmark kind"):
        item_scores([{"id": "a"}], "bleu")


def test_replace_section_needs_both_markers_once() -> None:
    text = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert replace_section(text, f"{BEGIN}\nnew\n{END}") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    with pytest.raises(DataError, match="DEMO-RESULTS"):
        replace_section("no markers", "x")


def test_render_reads_a_finished_run(results: Path) -> None:
    import json

    import pandas as pd

    from agorabench.demo_report import render

    for g, d, m, v in wf.generated_sets(CONFIG):
        stats = results / "generation" / g / d / m / v / "pool.stats.json"
        stats.parent.mkdir(parents=True)
        stats.write_text(json.dumps({"valid": 8 if g == "same-as-ref" else 5}))
    for s in wf.students(CONFIG):
        (results / "training" / s.path).mkdir(parents=True)
        (results / "training" / s.path / "train_info.json").write_text(
            json.dumps({"dataset": {"rows": 8}})
        )  # as sft.py writes it
    (results / "analysis").mkdir()
    pd.DataFrame({"level": ["benchmark", "benchmark"], "pgr": [100.0, None]}).to_csv(
        results / "analysis/pgr_long.csv", index=False
    )
    (results / "analysis/pgr.md").write_text("| Generator | Math |\n|---|---:|\n| same-as-ref | 100.0 |\n")
    (results / "analysis/scores.md").write_text("| Model | GSM8K |\n|---|---:|\n| base | 30.0 |\n| x | 1 |\n")
    measure = {"command": "make demo", "date": "today", "cpus": 2, "wall_s": 600.0, "peak_tree_rss_gib": 2.5}
    text = render(results, CONFIG, measure | {"jobs": 9, "returncode": 0}, "docs/img/x.png")
    assert text.startswith(BEGIN) and text.endswith(END)
    assert "**10.0 min wall, 2.50 GiB peak memory**" in text and "9 jobs" in text
    assert "1 of 2 (fewest: 5)" in text and "PGRs defined: 1 of 2" in text
    assert "| same-as-ref | 100.0 | [100.0, 100.0] | 1 of 1 |" in text
    assert "| base | 30.0 |" in text and "| x | 1 |" not in text  # only S_0 and S_ref's scores
    assert ".venv" not in text  # not recorded: nothing said
    built = render(results, CONFIG, measure | {"returncode": 0, "absent_before": {".venv": True}}, "x.png")
    assert "exit status 0; `.venv` was absent, so the time includes building it." in built


def test_verdict_says_whether_the_weaker_generator_came_out_below() -> None:
    import pandas as pd

    from agorabench.demo_report import _verdict

    config = {"generation": {"sampling": {"max_tokens": 128}},
              "generators": {"full": {"sampling": {}}, "cut": {"sampling": {"max_tokens": 64}}}}  # fmt: skip

    def ranking(cut: tuple[float, float, float]) -> pd.DataFrame:
        rows = [("full", 10.0, 5.0, 15.0), ("cut", *cut)]
        return pd.DataFrame(rows, columns=["generator", "mean_gain", "gain_low", "gain_high"])

    assert "do not overlap" in _verdict(ranking((-20.0, -30.0, -10.0)), config)
    assert "is below the others" in _verdict(ranking((-20.0, -30.0, -10.0)), config)
    assert "is not below the others" in _verdict(ranking((12.0, 2.0, 20.0)), config)
    assert "is below the others on the gain over S_0 and the intervals overlap" in _verdict(
        ranking((8.0, 1.0, 14.0)), config
    )
