"""PGR on hand-made scores: the formula, undefined gaps, score files, the long table, the Table 2 matrix."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from agorabench.analysis.pgr import (
    BENCHMARK_DOMAINS,
    DOMAINS,
    METHODS,
    UndefinedPGRWarning,
    collect_scores,
    pgr,
    pgr_matrix,
    pgr_table,
)
from agorabench.errors import ConfigError, DataError

BASE, REF = "llama-3.1-8b", "llama-3.1-8b-instruct"


def score(model: str, benchmark: str, value: float) -> dict:
    """A score record as docs/formats.md describes it."""
    return {
        "model": model,
        "benchmark": benchmark,
        "kind": "math",
        "metric": "accuracy",
        "value": value,
        "n": 100,
        "ci": None,
        "counts": {},
        "settings": {},
        "secondary": {},
    }


def write_scores(tmp_path: Path, records: list[dict]) -> list[str]:
    paths = []
    for rec in records:
        path = tmp_path / "evaluation" / rec["model"] / rec["benchmark"] / "score.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
        paths.append(str(path))
    return paths


def student(model: str, generator: str, domain: str, method: str = "instance_generation", **kw) -> dict:
    return {
        "model": model,
        "generator": generator,
        "domain": domain,
        "method": method,
        "variant": kw.get("variant", "agorabench"),
        "size": kw.get("size", 10000),
    }


# S0 and S_ref on all six benchmarks; gap 40 everywhere except arena_hard (gap 0: PGR undefined).
BASE_SCORES = {
    "gsm8k": 20.0,
    "math": 10.0,
    "mbpp": 30.0,
    "humaneval": 30.0,
    "alpaca_eval": 5.0,
    "arena_hard": 7.0,
}
REF_SCORES = {
    "gsm8k": 60.0,
    "math": 50.0,
    "mbpp": 70.0,
    "humaneval": 70.0,
    "alpaca_eval": 45.0,
    "arena_hard": 7.0,
}


def synthetic(tmp_path: Path, student_scores: dict[str, dict[str, float]]) -> pd.DataFrame:
    records = [score(BASE, b, v) for b, v in BASE_SCORES.items()]
    records += [score(REF, b, v) for b, v in REF_SCORES.items()]
    records += [score(m, b, v) for m, by_b in student_scores.items() for b, v in by_b.items()]
    return collect_scores(write_scores(tmp_path, records))


def test_pgr_formula():
    # student halfway between S0 and S_ref recovers 50% of the gap; below S0 is negative
    assert pgr(40.0, 20.0, 60.0) == pytest.approx(50.0)
    assert pgr(10.0, 20.0, 60.0) == pytest.approx(-25.0)
    assert pgr(60.0, 20.0, 60.0) == pytest.approx(100.0)


def test_pgr_undefined_when_gap_is_zero_warns_and_returns_none():
    with pytest.warns(UndefinedPGRWarning, match="arena_hard"):
        assert pgr(30.0, 25.0, 25.0, label="arena_hard") is None
    with pytest.warns(UndefinedPGRWarning):
        assert pgr(30.0, 25.0, 25.0 + 1e-9) is None  # below the default eps
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pgr(30.0, 25.0, 25.5, eps=0.1) == pytest.approx(1000.0)  # gap above eps: defined


def test_pgr_rejects_non_finite_scores():
    with pytest.raises(ValueError, match="finite"):
        pgr(float("nan"), 1.0, 2.0)


def test_collect_scores_reads_records(tmp_path):
    paths = write_scores(tmp_path, [score("m1", "gsm8k", 12.5), score("m1", "mbpp", 40)])
    df = collect_scores(paths)
    assert list(df["benchmark"]) == ["gsm8k", "mbpp"]
    assert df["value"].tolist() == [12.5, 40.0]
    assert df["path"].tolist() == paths


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"model": "m", "benchmark": "gsm8k", "metric": "acc", "n": 1}, "missing key.*value"),
        ({**score("m", "gsm8k", 0), "value": "high"}, "'value' must be a finite number"),
        ({**score("m", "gsm8k", 0), "value": 130.0}, r"percentage in \[0, 100\]"),
        ({**score("m", "gsm8k", 0), "model": ""}, "'model' must be a non-empty string"),
    ],
)
def test_collect_scores_bad_record_names_file_and_key(tmp_path, record, message):
    path = tmp_path / "score.json"
    path.write_text(json.dumps(record))
    with pytest.raises(DataError, match=message) as err:
        collect_scores([path])
    assert str(path) in str(err.value)


def test_collect_scores_duplicate_names_both_files(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(score("m", "gsm8k", 1)))
    b.write_text(json.dumps(score("m", "gsm8k", 2)))
    with pytest.raises(DataError, match="duplicate score") as err:
        collect_scores([a, b])
    assert str(a) in str(err.value) and str(b) in str(err.value)


def test_pgr_table_scores_each_student_on_its_domain_only(tmp_path):
    scores = synthetic(tmp_path, {"s-math": {"gsm8k": 40.0, "math": 20.0, "mbpp": 0.0}})
    out = pgr_table(
        scores,
        [student("s-math", "gpt-4o", "math")],
        base_model=BASE,
        reference_model=REF,
        benchmarks=BENCHMARK_DOMAINS,
    )
    bench = out[out["level"] == "benchmark"].set_index("benchmark")
    assert sorted(bench.index) == ["gsm8k", "math"]  # mbpp is code: not scored for a math student
    assert bench.at["gsm8k", "pgr"] == pytest.approx((40 - 20) / (60 - 20) * 100)
    assert bench.at["math", "pgr"] == pytest.approx((20 - 10) / (50 - 10) * 100)
    domain = out[out["level"] == "domain"].iloc[0]
    assert domain["pgr"] == pytest.approx((50.0 + 25.0) / 2)
    assert out["generator"].eq("gpt-4o").all() and out["size"].eq(10000).all()


def test_pgr_table_undefined_gap_is_nan_with_warning_naming_benchmark(tmp_path):
    scores = synthetic(tmp_path, {"s-if": {"alpaca_eval": 25.0, "arena_hard": 9.0}})
    with pytest.warns(UndefinedPGRWarning, match="arena_hard"):
        out = pgr_table(
            scores,
            [student("s-if", "gpt-4o", "instruction_following")],
            base_model=BASE,
            reference_model=REF,
            benchmarks=BENCHMARK_DOMAINS,
        )
    rows = out.set_index("benchmark")
    assert rows.at["alpaca_eval", "pgr"] == pytest.approx(50.0)
    assert math.isnan(rows.at["arena_hard", "pgr"]) and "arena_hard" in rows.at["arena_hard", "note"]
    assert math.isnan(rows.at["mean", "pgr"]) and "arena_hard" in rows.at["mean", "note"]
    assert not out["pgr"].isin([math.inf, -math.inf]).any()


def test_pgr_table_missing_score_names_model_and_benchmark(tmp_path):
    scores = synthetic(tmp_path, {"s-code": {"mbpp": 50.0}})  # no humaneval score
    with pytest.raises(DataError, match="model 's-code' on benchmark 'humaneval'"):
        pgr_table(
            scores,
            [student("s-code", "gpt-4o", "code")],
            base_model=BASE,
            reference_model=REF,
            benchmarks=BENCHMARK_DOMAINS,
        )


def test_pgr_table_missing_reference_score_says_reference(tmp_path):
    scores = synthetic(tmp_path, {"s-code": {"mbpp": 50.0, "humaneval": 50.0}})
    scores = scores[~((scores["model"] == REF) & (scores["benchmark"] == "mbpp"))]
    with pytest.raises(DataError, match=f"model '{REF}' on benchmark 'mbpp'.*reference"):
        pgr_table(
            scores,
            [student("s-code", "gpt-4o", "code")],
            base_model=BASE,
            reference_model=REF,
            benchmarks=BENCHMARK_DOMAINS,
        )


def test_pgr_table_bad_student_config(tmp_path):
    scores = synthetic(tmp_path, {})
    bad = {k: v for k, v in student("s", "g", "math").items() if k != "method"}
    with pytest.raises(ConfigError, match=r"students\[0\].*method"):
        pgr_table(scores, [bad], base_model=BASE, reference_model=REF, benchmarks=BENCHMARK_DOMAINS)
    with pytest.raises(ConfigError, match=r"students\[0\]\.domain.*'poetry'"):
        pgr_table(
            scores,
            [student("s", "g", "poetry")],
            base_model=BASE,
            reference_model=REF,
            benchmarks=BENCHMARK_DOMAINS,
        )


def full_table(tmp_path: Path) -> pd.DataFrame:
    """2 generators x 3 methods x 2 domains; student k (in creation order) scores S0 + gap * k / 20."""
    students, student_scores = [], {}
    for k, (gen, method, domain) in enumerate(
        (g, m, d) for g in ("gen-a", "gen-b") for m in METHODS for d in ("math", "code")
    ):
        name = f"{gen}/{method}/{domain}"
        students.append(student(name, gen, domain, method))
        student_scores[name] = {
            b: BASE_SCORES[b] + (REF_SCORES[b] - BASE_SCORES[b]) * k / 20
            for b, d in BENCHMARK_DOMAINS.items()
            if d == domain
        }
    scores = synthetic(tmp_path, student_scores)
    return pgr_table(scores, students, base_model=BASE, reference_model=REF, benchmarks=BENCHMARK_DOMAINS)


def test_pgr_matrix_table2_layout(tmp_path):
    table = full_table(tmp_path)
    m = pgr_matrix(table)
    assert list(m.columns) == [*DOMAINS, "average"]
    assert list(m.index) == [(g, meth) for g in ("gen-a", "gen-b") for meth in METHODS]
    # k counts students in creation order: gen-b / response_generation / code is k = 9 -> 45 %
    assert m.at[("gen-b", "response_generation"), "code"] == pytest.approx(45.0)
    assert m["instruction_following"].isna().all()  # no students there -> n/a, and so is the average
    assert m["average"].isna().all()
    three = pgr_matrix(table, domains=("math", "code"))
    assert three["average"].to_numpy() == pytest.approx(three[["math", "code"]].mean(axis=1).to_numpy())


def test_pgr_matrix_needs_a_choice_between_variants_and_sizes(tmp_path):
    table = full_table(tmp_path)
    other = table.assign(variant="json")
    both = pd.concat([table, other])
    with pytest.raises(DataError, match="several variants"):
        pgr_matrix(both)
    assert pgr_matrix(both, variant="json").equals(pgr_matrix(table))
    with pytest.raises(DataError, match="no rows with size = 5"):
        pgr_matrix(table, size=5)


def test_an_undefined_score_makes_the_pgr_undefined_not_a_crash(tmp_path):
    """A judged score with no parsed verdict is null in its score file; its PGR is n/a with a note."""
    import json as _json

    from agorabench.analysis.pgr import collect_scores as _collect
    from agorabench.analysis.pgr import pgr_table as _table

    paths = []
    for model, value in (("base", 10.0), ("reference", 30.0), ("s", None)):
        p = tmp_path / f"{model}.json"
        p.write_text(
            _json.dumps(
                {
                    "model": model,
                    "benchmark": "arena_hard",
                    "kind": "arena_hard",
                    "metric": "win_rate",
                    "value": value,
                    "n": 8,
                    "ci": None,
                    "counts": {},
                    "settings": {},
                }
            )
        )
        paths.append(p)
    scores = _collect(paths)
    student = {
        "model": "s",
        "generator": "g",
        "domain": "instruction_following",
        "method": "instance_generation",
        "variant": "agorabench",
        "size": 4,
    }
    with pytest.warns(UserWarning, match="undefined"):
        table = _table(
            scores,
            [student],
            base_model="base",
            reference_model="reference",
            benchmarks={"arena_hard": "instruction_following"},
        )
    row = table[table["benchmark"] == "arena_hard"].iloc[0]
    assert math.isnan(row["pgr"]) and "undefined" in row["note"]
