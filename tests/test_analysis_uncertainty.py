"""Paired bootstrap (agorabench/analysis/uncertainty.py) on synthetic studies whose true PGRs are known:
coverage of the intervals, the false-positive rate of the pairwise tests, and item scores per kind."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agorabench.analysis import uncertainty as u
from agorabench.analysis.study import StudyInputs
from agorabench.errors import DataError
from agorabench.evaluation.scorers.alpaca_eval import win_rate_stats
from agorabench.evaluation.scorers.arena_hard import battles, bradley_terry_winrate
from agorabench.textsafe import md_text

RUNS = 500  # simulated studies per property
NOMINAL = 0.95
MARGIN = 3 * math.sqrt(NOMINAL * (1 - NOMINAL) / RUNS)  # 3 binomial standard errors: 0.029


def correlated_correct(rng: np.random.Generator, p: dict[str, float], n: int, rho: float = 0.6) -> dict:
    """0/1 correctness of several models on the same n items: with probability rho an item is decided by
    a shared difficulty u (correct iff u < p_m), else independently; every model's accuracy is p_m."""
    shared = rng.random(n) < rho
    difficulty = rng.random(n)
    return {m: np.where(shared, difficulty < pm, rng.random(n) < pm).astype(float) for m, pm in p.items()}


def items_of(correct: np.ndarray) -> u.ItemScores:
    n = len(correct)
    return u.ItemScores(tuple(f"i{k}" for k in range(n)), correct, np.ones(n))


def simulate_pgr_interval(rng, p, n, rounds=400):
    """One study: the paired interval of the student's PGR and whether the gap was stable."""
    sims = correlated_correct(rng, p, n)
    idx = u.resample(n, rounds, rng)
    s, b, r = (u.score_draws(items_of(sims[m]), idx) for m in ("student", "base", "reference"))
    return u.interval(u.pgr_draws(s, b, r, 1e-6)), u.excludes_zero(r - b)


def test_pgr_interval_coverage_is_close_to_nominal():
    rng = np.random.default_rng(15)
    p = {"student": 0.5, "base": 0.3, "reference": 0.7}
    true_pgr = (p["student"] - p["base"]) / (p["reference"] - p["base"]) * 100  # 50
    hits = []
    for _ in range(RUNS):
        (lo, hi), stable = simulate_pgr_interval(rng, p, n=400)
        assert stable  # a 40-point gap on 400 items is never within noise
        hits.append(lo <= true_pgr <= hi)
    coverage = float(np.mean(hits))
    print(f"coverage of 95% PGR intervals: {coverage:.3f} +- {MARGIN:.3f} over {RUNS} runs")
    assert abs(coverage - NOMINAL) <= MARGIN


def test_score_interval_coverage_is_close_to_nominal():
    rng = np.random.default_rng(16)
    hits = []
    for _ in range(RUNS):
        correct = correlated_correct(rng, {"m": 0.62}, 300)["m"]
        lo, hi = u.interval(u.score_draws(items_of(correct), u.resample(300, 400, rng)))
        hits.append(lo <= 62.0 <= hi)
    assert abs(float(np.mean(hits)) - NOMINAL) <= MARGIN


def test_a_gap_within_noise_makes_the_pgr_unstable():
    rng = np.random.default_rng(17)
    unstable = [not simulate_pgr_interval(rng, {"student": 0.4, "base": 0.4, "reference": 0.41}, 200)[1]
                for _ in range(50)]  # fmt: skip
    assert np.mean(unstable) > 0.8


def study_items(rng, p: dict[str, float], n: int) -> dict:
    """(model, benchmark) -> ItemScores of a one-benchmark study; models are p's keys."""
    sims = correlated_correct(rng, p, n)
    return {(m, "gsm8k"): items_of(v) for m, v in sims.items()}


def students_of(generators) -> list[dict]:
    return [{"model": g, "generator": g, "domain": "math", "method": "instance_generation",
             "variant": "default", "size": 100} for g in generators]  # fmt: skip


def equal_pairs(rng, generators, n=300, rounds=400) -> dict:
    """One study in which every generator's student has the same true accuracy: the pairwise table."""
    p = {"base": 0.3, "reference": 0.7} | dict.fromkeys(generators, 0.5)
    study = u.bootstrap_study(
        study_items(rng, p, n), students_of(generators), {"gsm8k": "math"},
        rounds=rounds, seed=int(rng.integers(1 << 30)),
    )  # fmt: skip
    cells = u.table_cells(study, students_of(generators), variant="default", size=100, domains=["math"])
    return u.pairwise(cells, generators=generators, methods=["instance_generation"], columns=["math"])


def test_a_known_equal_pair_is_not_called_different_more_often_than_the_level():
    rng = np.random.default_rng(18)
    rejected = [bool(equal_pairs(rng, ["a", "b"])["p_value"].iloc[0] < 0.05) for _ in range(RUNS)]
    rate = float(np.mean(rejected))
    print(f"false-positive rate of the pairwise test at 0.05: {rate:.3f} over {RUNS} runs")
    assert rate <= 0.05 + MARGIN


def test_holm_keeps_the_family_wise_error_of_equal_generators_at_the_level():
    rng = np.random.default_rng(19)
    any_significant = [bool(equal_pairs(rng, ["a", "b", "c", "d"])["significant"].any()) for _ in range(200)]
    assert np.mean(any_significant) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 200)


def test_a_clear_difference_is_significant_and_ordered():
    rng = np.random.default_rng(20)
    p = {"base": 0.3, "reference": 0.7, "good": 0.65, "poor": 0.35}
    study = u.bootstrap_study(study_items(rng, p, 500), students_of(["good", "poor"]), {"gsm8k": "math"})
    cells = u.table_cells(study, students_of(["good", "poor"]), variant="default", size=100, domains=["math"])
    pairs = u.pairwise(cells, generators=["good", "poor"], methods=["instance_generation"], columns=["math"])
    row = pairs.iloc[0]
    assert row["significant"] and row["p_a_better"] > 0.99 and row["diff_low"] > 0
    assert row["status"] == u.STABLE


def test_unstable_pairs_are_not_tested():
    rng = np.random.default_rng(21)
    p = {"base": 0.5, "reference": 0.5, "a": 0.6, "b": 0.4}  # no gap: every PGR is unstable
    study = u.bootstrap_study(study_items(rng, p, 200), students_of(["a", "b"]), {"gsm8k": "math"})
    cells = u.table_cells(study, students_of(["a", "b"]), variant="default", size=100, domains=["math"])
    pairs = u.pairwise(cells, generators=["a", "b"], methods=["instance_generation"], columns=["math"])
    assert pairs["status"].iloc[0] == u.UNSTABLE and math.isnan(pairs["p_value"].iloc[0])
    assert not pairs["significant"].iloc[0]


def test_holm_matches_the_step_down_definition():
    p = [0.01, 0.04, 0.03, math.nan, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 with m = 4: x4, x3, x2, x1, running maximum
    assert u.holm(p).tolist()[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(u.holm(p)[3]) and u.holm(p)[4] == pytest.approx(0.02)


def test_two_sided_p_is_uniform_like_for_a_symmetric_null():
    rng = np.random.default_rng(22)
    ps = np.array([u.two_sided_p(rng.normal(rng.normal(), 1.0, 400)) for _ in range(RUNS)])
    assert abs(float((ps < 0.05).mean()) - 0.05) <= MARGIN


# Item scores from details.jsonl rows, as each scorer writes them -------------------------------------


def test_math_and_code_item_scores_reproduce_the_value():
    math_rows = [{"id": "a", "correct": True, "strict_correct": False}, {"id": "b", "correct": False,
                 "strict_correct": False}]  # fmt: skip
    items = u.item_scores({"kind": "math", "value": 50.0, "settings": {}}, math_rows, "d.jsonl")
    assert items.point() == pytest.approx(50.0)
    strict = u.item_scores({"kind": "math", "value": 0.0, "settings": {"mode": "strict"}}, math_rows, "d")
    assert strict.point() == 0.0
    code_rows = [{"id": "a", "n_passed": 1, "n_samples": 4}, {"id": "b", "n_passed": 0, "n_samples": 0}]
    assert u.item_scores({"kind": "code", "value": 12.5}, code_rows, "d").point() == pytest.approx(12.5)


def test_arena_hard_item_scores_recompute_the_win_rate():
    games = [("A>>B", "B>A"), ("A=B", "A>B"), (None, "B>>A")]
    rows = [{"id": f"q{k}", "missing_prediction": False,
             "games": [{"game": "baseline_first", "label": a}, {"game": "model_first", "label": b}]}
            for k, (a, b) in enumerate(games)]  # fmt: skip
    rows.append({"id": "q9", "missing_prediction": True, "games": []})
    all_battles = [
        x for a, b in games for x in battles(a, "baseline_first", 3) + battles(b, "model_first", 3)
    ]
    all_battles += [0.0] * 6
    value = round(bradley_terry_winrate(all_battles), 4)
    items = u.item_scores({"kind": "arena_hard", "value": value, "settings": {"weight": 3}}, rows, "d")
    assert items.point() == pytest.approx(value, abs=1e-4)
    idx = np.array([[0, 0, 0, 0]])  # a round holding only the first item: its own battles' mean
    first = battles("A>>B", "baseline_first", 3) + battles("B>A", "model_first", 3)
    assert u.score_draws(items, idx)[0] == pytest.approx(100 * np.mean(first) + items.shift)


def test_alpaca_eval_holds_the_length_control_fixed():
    rows = [{"id": "a", "preference": 2.0}, {"id": "b", "preference": 1.0}, {"id": "c", "preference": None}]
    raw = win_rate_stats([2.0, 1.0])["win_rate"]
    items = u.item_scores({"kind": "alpaca_eval", "value": 47.0}, rows, "d")
    assert items.shift == pytest.approx(47.0 - raw)
    assert u.score_draws(items, np.array([[0, 0, 2]]))[0] == pytest.approx(100 + 47.0 - raw)


def test_item_scores_that_disagree_with_the_score_file_raise():
    rows = [{"id": "a", "correct": True}]
    with pytest.raises(DataError, match=r"d\.jsonl.*score\.json says 0"):
        u.item_scores({"kind": "math", "value": 0.0}, rows, "d.jsonl")
    with pytest.raises(DataError, match="lacks a field"):
        u.item_scores({"kind": "code", "value": 0.0}, rows, "d.jsonl")


def test_models_must_answer_the_same_items():
    a = u.ItemScores(("x", "y"), np.ones(2), np.ones(2))
    b = u.ItemScores(("y", "x"), np.array([1.0, 0.0]), np.ones(2))
    assert b.take(a.ids, "b").num.tolist() == [0.0, 1.0]
    with pytest.raises(DataError, match="items differ"):
        u.ItemScores(("x", "z"), np.ones(2), np.ones(2)).take(a.ids, "student/gsm8k")


# The targets on files: score.json + details.jsonl as the score job writes them -----------------------


def write_score(root, model: str, bench: str, correct: np.ndarray) -> str:
    """A math score file (value = accuracy) with its details.jsonl beside it."""
    import json

    from agorabench.jsonl import write_jsonl

    folder = root / "evaluation" / model / bench
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": f"{bench}-{k}", "correct": bool(c), "strict_correct": bool(c)} for k, c in enumerate(correct)
    ]
    write_jsonl(folder / "details.jsonl", rows)
    value = round(100 * float(np.mean(correct)), 4)
    rec = {"model": model, "benchmark": bench, "kind": "math", "metric": "accuracy", "value": value,
           "n": len(rows), "settings": {"mode": "flexible"}}  # fmt: skip
    (folder / "score.json").write_text(json.dumps(rec))
    return str(folder / "score.json")


@pytest.fixture
def file_study(tmp_path):
    """Two generators x one method on math (gsm8k, math): 'strong' clearly above 'weak'; 'tied' as 'weak'."""
    rng = np.random.default_rng(30)
    benches = {"gsm8k": "math", "math": "math"}
    gens = {"strong": 0.62, "weak": 0.4, "tied": 0.4}
    students = [{"model": f"students/{g}/math/instance_generation/agorabench/n100", "generator": g,
                 "domain": "math", "method": "instance_generation", "variant": "agorabench", "size": 100}
                for g in gens]  # fmt: skip
    paths = []
    for bench in benches:
        p = {"base": 0.3, "reference": 0.7} | {s["model"]: gens[s["generator"]] for s in students}
        sims = correlated_correct(rng, p, 400)
        paths += [write_score(tmp_path, m, bench, c) for m, c in sims.items()]
    from agorabench.analysis import stage

    scores_csv = str(tmp_path / "scores.csv")
    stage.scores_table(paths, csv_path=scores_csv, md_path=str(tmp_path / "scores.md"))
    return {"root": tmp_path, "scores": scores_csv, "students": students, "benchmarks": benches}


SPEC = {"rounds": 300, "seed": 1}
MAIN = {"variant": "agorabench", "size": 100}


def study_inputs(file_study: dict, bootstrap: dict | None) -> StudyInputs:
    """The file study's inputs as the pgr_table and pgr_significance rules build them (scores.csv)."""
    return StudyInputs(
        file_study["scores"], file_study["students"], file_study["benchmarks"], 1e-6, MAIN, bootstrap
    )


def test_pgr_tables_carry_intervals_and_stay_comparable_with_the_paper(file_study, tmp_path):
    import pandas as pd

    from agorabench.analysis import stage

    out = {k: str(tmp_path / f"pgr.{k}") for k in ("long", "csv", "md", "tex")}
    stage.pgr_tables(
        study_inputs(file_study, bootstrap=SPEC), long_path=out["long"], csv_path=out["csv"],
        md_path=out["md"], tex_path=out["tex"],
    )  # fmt: skip
    table = pd.read_csv(out["csv"], index_col=[0, 1], na_values=["n/a"])
    row = table.loc[("strong", "instance_generation")]
    assert row["math_interval"] == u.STABLE and row["math_low"] < row["math"] < row["math_high"]
    assert row["math_low"] > 0 and math.isnan(row["code"])  # a domain the study did not train
    md = (tmp_path / "pgr.md").read_text()
    cell = u.interval_text(row["math"], row["math_low"], row["math_high"], u.STABLE)
    assert md_text(cell) in md and cell.startswith(f"{row['math']:.1f} [")  # Markdown escapes brackets
    long = pd.read_csv(out["long"])
    assert set(u.INTERVAL_COLUMNS) <= set(long.columns) and long["pgr_interval"].eq(u.STABLE).all()
    vs = stage.pgr_vs_paper(out["csv"], csv_path=str(tmp_path / "vs.csv"), md_path=str(tmp_path / "vs.md"))
    assert vs["rows"] == 3 * 4 * 3  # generators x columns x methods: no interval column compared
    figure = stage.figure_pgr(
        out["long"], main=MAIN, png_path=str(tmp_path / "f.png"), pdf_path=str(tmp_path / "f.pdf")
    )
    assert figure["generators"] == 3 and (tmp_path / "f.png").stat().st_size > 0


def test_significance_view_names_the_real_difference_only(file_study, tmp_path):
    import pandas as pd

    counts = u.significance_tables(
        study_inputs(file_study, bootstrap=SPEC), csv_path=str(tmp_path / "s.csv"),
        md_path=str(tmp_path / "s.md"),
    )  # fmt: skip
    assert counts == {"pairs": 3, "tested": 3, "significant": 2}
    pairs = pd.read_csv(tmp_path / "s.csv", na_values=["n/a"]).set_index(["generator_a", "generator_b"])
    assert not pairs.at[("weak", "tied"), "significant"]
    assert pairs.at[("strong", "weak"), "significant"] and pairs.at[("strong", "tied"), "significant"]
    assert "strong beats weak" in (tmp_path / "s.md").read_text()


def test_missing_details_name_the_file(file_study):
    import pandas as pd

    scores = pd.read_csv(file_study["scores"])
    (file_study["root"] / "evaluation" / "base" / "gsm8k" / "details.jsonl").unlink()
    with pytest.raises(DataError, match=r"base/gsm8k/details\.jsonl"):
        u.study_items(scores, file_study["students"], file_study["benchmarks"])


def test_bootstrap_settings_reject_bad_config():
    from agorabench.errors import ConfigError

    assert u.bootstrap_settings(None)["rounds"] == 1000
    with pytest.raises(ConfigError, match=r"analysis\.bootstrap\.rounds"):
        u.bootstrap_settings({"rounds": 5})
    with pytest.raises(ConfigError, match=r"analysis\.bootstrap\.levels"):
        u.bootstrap_settings({"levels": 0.9})


def test_binomial_approximation_matches_the_bootstrap_of_independent_students():
    rng = np.random.default_rng(40)
    n, p = 1319, {"base": 0.3, "reference": 0.5, "a": 0.4, "b": 0.4}  # gap 20 points
    sims = {m: (rng.random(n) < q).astype(float) for m, q in p.items()}  # independent students
    idx = u.resample(n, 2000, rng)
    b, r = (u.score_draws(items_of(sims[m]), idx) for m in ("base", "reference"))
    diff = u.pgr_draws(u.score_draws(items_of(sims["a"]), idx), b, r, 1e-6) - u.pgr_draws(
        u.score_draws(items_of(sims["b"]), idx), b, r, 1e-6
    )
    approx = u.binomial_difference_se(n, 20.0, 40.0)
    assert np.nanstd(diff) == pytest.approx(approx, rel=0.15)
    assert u.domain_difference_se([approx, approx]) == pytest.approx(approx / math.sqrt(2))


def test_arena_hard_items_reproduce_the_scorers_own_score():
    from agorabench.evaluation.scorers import arena_hard

    rng = np.random.default_rng(41)
    labels = [*arena_hard.MODEL_SCORE["baseline_first"], None]
    rows = [{"id": f"q{k}", "output": None if k % 7 == 0 else "answer"} for k in range(60)]
    state = {(r["id"], g): {"label": labels[rng.integers(len(labels))], "judgment": "", "error": False}
             for r in rows if r["output"] is not None for g in arena_hard.GAMES}  # fmt: skip
    s = arena_hard._settings({"bootstrap_rounds": 0})
    score = arena_hard._score(rows, state, s, 0, dict(s))
    record = score.to_dict("m", "arena_hard")
    items = u.item_scores(record, score.per_item, "details.jsonl")
    assert abs(items.shift) < 1e-3 and items.point() == pytest.approx(score.value)


def test_alpaca_eval_items_give_the_scorers_raw_win_rate():
    from agorabench.evaluation.scorers import alpaca_eval

    rng = np.random.default_rng(42)
    prefs = [None, 1.0, 1.5, 2.0, 1.2, 1.9]
    rows = [{"id": f"a{k}", "output": None if k % 9 == 0 else "x" * int(rng.integers(5, 400)),
             "reference": "y" * 200, "preference": prefs[rng.integers(len(prefs))], "switched": False,
             "judge_error": False, "verdict": None} for k in range(80)]  # fmt: skip
    s = alpaca_eval._settings({})
    score = alpaca_eval._score(rows, s, None)
    items = u.item_scores(score.to_dict("m", "alpaca_eval"), score.per_item, "details.jsonl")
    assert items.point() == pytest.approx(score.value)
    assert items.point() - items.shift == pytest.approx(score.secondary["win_rate"], abs=1e-3)


def test_code_items_reproduce_the_scorers_pass_at_1():
    from agorabench.evaluation.scorers.code import CodeScorer

    rng = np.random.default_rng(43)
    statuses = ("passed", "failed", "error", "timeout", "extraction_failed")
    pairs = [({"id": f"c{k}"}, None) for k in range(40)]
    outcomes = [[{"status": statuses[rng.integers(5)], "rule": "fenced", "error": None}
                 for _ in range(int(rng.integers(0, 4)))] for _ in pairs]  # fmt: skip
    score = CodeScorer()._summarise(pairs, outcomes, {"k": [1]})
    items = u.item_scores(score.to_dict("m", "mbpp"), score.per_item, "details.jsonl")
    assert abs(items.shift) < 1e-3 and items.point() == pytest.approx(score.value)


def test_table5_view_compares_the_variants_of_each_generator(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(44)
    truth = {("g", "agorabench"): 0.6, ("g", "json"): 0.35, ("h", "agorabench"): 0.5, ("h", "json"): 0.5}
    students = [{"model": f"students/{g}/math/instance_generation/{v}/n100", "generator": g, "domain": "math",
                 "method": "instance_generation", "variant": v, "size": 100} for g, v in truth]  # fmt: skip
    paths = []
    for bench in ("gsm8k", "math"):
        p = {"base": 0.3, "reference": 0.7} | {
            s["model"]: truth[(s["generator"], s["variant"])] for s in students
        }
        paths += [write_score(tmp_path, m, bench, c) for m, c in correlated_correct(rng, p, 400).items()]
    ablation = {"variants": ["agorabench", "json"], "generators": ["g", "h"],
                "methods": ["instance_generation"], "size": 100}  # fmt: skip
    counts = u.table5_significance(
        StudyInputs(tuple(paths), students, {"gsm8k": "math", "math": "math"}, 1e-6, bootstrap=SPEC),
        ablation=ablation, csv_path=str(tmp_path / "t5.csv"),
    )  # fmt: skip
    assert counts == {"pairs": 2, "tested": 2, "significant": 1}
    pairs = pd.read_csv(tmp_path / "t5.csv").set_index("generator")
    assert pairs.at["g", "significant"] and not pairs.at["h", "significant"]
    assert pairs.at["g", "variant_a"] == "agorabench" and pairs.at["g", "difference"] > 0


# Figure 7: which size differences are significant -------------------------------------------------------


def volume_students(truth: dict) -> list[dict]:
    """Student records of a volume study: truth maps (generator, domain, size) -> true accuracy."""
    return [{"model": f"students/{g}/{d}/instance_generation/agorabench/n{n}", "generator": g, "domain": d,
             "method": "instance_generation", "variant": "agorabench", "size": n}
            for g, d, n in truth]  # fmt: skip


VOLUME_BENCHMARKS = {"gsm8k": "math", "math": "math", "mbpp": "code"}


def test_figure7_view_finds_the_size_that_helps_and_only_it(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(45)
    # g: 100 and 200 instances equal, 400 clearly better in both domains; h: the size does not matter
    truth = {(g, d, n): 0.4 + (0.2 if (g, n) == ("g", 400) else 0.0)
             for g in ("g", "h") for d in ("math", "code") for n in (100, 200, 400)}  # fmt: skip
    students = volume_students(truth)
    paths = []
    for bench, domain in VOLUME_BENCHMARKS.items():
        p = {"base": 0.3, "reference": 0.7} | {
            s["model"]: truth[(s["generator"], s["domain"], s["size"])]
            for s in students
            if s["domain"] == domain
        }
        paths += [write_score(tmp_path, m, bench, c) for m, c in correlated_correct(rng, p, 500).items()]
    # 18 pairs need >= 720 rounds for a Holm-adjusted p below 0.05 (the bootstrap p is >= 2 / (rounds + 1))
    few = u.figure7_significance(
        StudyInputs(tuple(paths), students, VOLUME_BENCHMARKS, 1e-6, bootstrap=SPEC),
        csv_path=str(tmp_path / "f7.csv"), md_path=str(tmp_path / "f7.md"),
    )  # fmt: skip
    assert (
        few["significant"] == 0
        and "set analysis.bootstrap.rounds to at least 720" in (tmp_path / "f7.md").read_text()
    )
    counts = u.figure7_significance(
        StudyInputs(tuple(paths), students, VOLUME_BENCHMARKS, 1e-6, bootstrap=SPEC | {"rounds": 720}),
        csv_path=str(tmp_path / "f7.csv"), md_path=str(tmp_path / "f7.md"),
    )  # fmt: skip
    # 2 generators x 3 columns (math, code, average) x 3 pairs of sizes, one Holm family
    assert counts["pairs"] == counts["tested"] == 18
    pairs = pd.read_csv(tmp_path / "f7.csv", na_values=["n/a"])
    called = pairs[pairs["significant"]]
    expected = {("g", col, 400, small) for col in ("math", "code", "average") for small in (100, 200)}
    got = zip(called["generator"], called["column"], called["size_a"], called["size_b"], strict=True)
    assert set(got) == expected
    assert (called["difference"] > 0).all() and (called["p_a_better"] > 0.99).all()
    assert (pairs["size_a"] > pairs["size_b"]).all()  # A is the larger set: the difference is the gain
    md = (tmp_path / "f7.md").read_text()
    assert "n400 beats n100" in md and "Holm over all 18 tested pairs" in md and "no pair can be" not in md


def test_the_rounds_bound_the_smallest_holm_p():
    rng = np.random.default_rng(47)
    tested, alpha = 18, 0.05
    need = u.rounds_for(tested, alpha)
    assert u.smallest_holm_p(tested, need) < alpha <= u.smallest_holm_p(tested, need - 1)
    # the bound is attained: a difference that never crosses 0 gets exactly 2 / (rounds + 1)
    assert u.two_sided_p(rng.random(need) + 1.0) * tested == pytest.approx(u.smallest_holm_p(tested, need))
    assert u.rounds_for(180, 0.05) == 7200  # the paper config's Table 2 family (6 generators)


def test_figure7_holm_keeps_equal_sizes_at_the_level():
    rng = np.random.default_rng(46)
    truth = {("g", "math", n): 0.5 for n in (100, 200, 400)}
    students = volume_students(truth)
    any_significant = []
    for _ in range(200):
        p = {"base": 0.3, "reference": 0.7} | dict.fromkeys((s["model"] for s in students), 0.5)
        items = study_items(rng, p, 300)
        study = u.bootstrap_study(
            items, students, {"gsm8k": "math"}, rounds=400, seed=int(rng.integers(1 << 30))
        )
        any_significant.append(bool(u.size_pairwise(study, students)["significant"].any()))
    rate = float(np.mean(any_significant))
    print(f"family-wise error of Figure 7's view (3 equal sizes, 3 pairs): {rate:.3f} over 200 studies")
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 200)


def test_size_pairs_need_two_sizes_of_one_setting():
    one = volume_students({("g", "math", 100): 0.5, ("h", "math", 200): 0.5})
    assert not u.has_size_pairs(one)
    assert u.has_size_pairs(volume_students({("g", "math", 100): 0.5, ("g", "math", 200): 0.5}))
