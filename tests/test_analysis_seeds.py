"""Seed variance (experiments.<name>.training_seeds): the study plan, the DAG and the statistics on
synthetic students whose seed effect is known."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agorabench import workflow as wf
from agorabench.analysis import seeds
from agorabench.analysis import uncertainty as u
from agorabench.analysis.study import StudyInputs
from agorabench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_analysis_uncertainty import correlated_correct, items_of, write_score  # noqa: E402

DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
PAPER = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
BENCHMARKS = {"gsm8k": "math", "math": "math"}


def with_seeds(config: dict, experiment: str, seeds_: list[int]) -> dict:
    out = copy.deepcopy(config)
    out["experiments"][experiment]["training_seeds"] = seeds_
    return out


# The study plan --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [DEMO, PAPER], ids=["demo", "paper"])
def test_one_seed_plans_exactly_the_students(config):
    assert wf.replicates(config) == [] and wf.extra_replicates(config) == []
    one = with_seeds(config, "main", [config["training"]["seed"]])
    assert wf.evaluations(one) == wf.evaluations(config)
    assert wf.inference_jobs(one) == wf.inference_jobs(config)
    with pytest.raises(ConfigError, match="training_seeds"):
        seeds.replicate_records(config)


def test_two_seeds_add_one_run_per_student_of_the_experiment():
    config = with_seeds(DEMO, "data_volume", [42, 43])
    wf.check_config(config)
    (extra,) = wf.extra_replicates(config)
    assert extra.seed == 43 and extra.path == f"{extra.student.path}_seed43"
    (volume_size,) = DEMO["experiments"]["data_volume"]["sizes"]
    assert extra.student.size == volume_size and [r.primary for r in wf.replicates(config)] == [True, False]
    added = set(wf.evaluations(config)) - set(wf.evaluations(DEMO))
    assert added == {(extra.path, b) for b in wf.benchmarks_of(config, "math")}
    assert wf.checkpoint_dir(config, extra.path).endswith(f"n{volume_size}_seed43/model")
    paths = seeds.score_paths(config)
    assert f"results/demo/evaluation/{extra.path}/gsm8k/score.json" in paths
    assert "results/demo/evaluation/base/gsm8k/score.json" in paths


def test_training_seeds_must_include_the_studys_seed():
    config = with_seeds(DEMO, "main", [7, 8])
    with pytest.raises(ConfigError, match=r"experiments\.main\.training_seeds"):
        wf.check_config(config)


def dry_run(config: dict, tmp_path: Path, target: str = "all") -> dict[str, int]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), "-n", "-F", target, "--configfile", str(path), "--quiet", "rules"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    table = out.stdout.split("Job stats:")[-1].split("Reasons:")[0]
    rows = [line.split() for line in table.splitlines()[3:]]
    return {r[0]: int(r[1]) for r in rows if len(r) == 2 and r[1].isdigit()}


def test_a_second_seed_plans_the_extra_student_trained_evaluated_and_scored(tmp_path):
    before = dry_run(DEMO, tmp_path)
    after = dry_run(with_seeds(DEMO, "data_volume", [42, 43]), tmp_path)
    math_benchmarks = wf.benchmarks_of(DEMO, "math")
    judged = sum(b in wf.judged(DEMO) for b in math_benchmarks)
    changed = {rule: after.get(rule, 0) - before.get(rule, 0) for rule in set(before) | set(after)}
    outputs = 5  # seed_variance's csv, per-seed csv, md, png, pdf: one lineage page each
    assert {rule: d for rule, d in changed.items() if d} == {
        "train_student_seed": 1,
        "predict_math": 1,
        "score": len(math_benchmarks) - judged,
        "seed_variance": 1,
        "lineage_md": outputs,
        "total": 3 + len(math_benchmarks) + outputs,
    }
    assert after["training_data"] == before["training_data"]  # the extra run reuses the student's data


# The statistics: synthetic students whose seed effect is known ----------------------------------------------


def seed_records(accuracy: dict[int, float], generator: str = "g") -> list[dict]:
    """One student (math instance generation, n100) per seed; the first seed is the primary one."""
    path = f"students/{generator}/math/instance_generation/agorabench/n100"
    first = next(iter(accuracy))
    return [{"model": path if s == first else f"{path}_seed{s}", "generator": generator, "domain": "math",
             "method": "instance_generation", "variant": "agorabench", "size": 100, "seed": s,
             "primary": s == first} for s in accuracy]  # fmt: skip


def simulate(rng, records: list[dict], accuracy: dict[int, float], n: int, rounds: int = 400):
    """Scores and item bootstrap of one simulated study: base 30%, S_ref 70%, each seed its accuracy."""
    truth = {"base": 0.3, "reference": 0.7} | {r["model"]: accuracy[r["seed"]] for r in records}
    items, values = {}, []
    for bench in BENCHMARKS:
        for model, correct in correlated_correct(rng, truth, n).items():
            items[(model, bench)] = items_of(correct)
            values.append({"model": model, "benchmark": bench, "value": 100 * float(correct.mean())})
    boot = u.bootstrap_study(items, records, BENCHMARKS, rounds=rounds, seed=int(rng.integers(1 << 30)))
    return pd.DataFrame(values), boot


def domain_summary(rng, accuracy: dict[int, float], n: int) -> pd.Series:
    records = seed_records(accuracy)
    scores, boot = simulate(rng, records, accuracy, n)
    summary = seeds.summarize(seeds.per_seed(scores, records, BENCHMARKS, 1e-6, boot), boot)
    return summary[summary["level"] == "domain"].iloc[0]


def test_a_known_seed_effect_is_recovered_beside_the_item_noise():
    rng = np.random.default_rng(50)
    accuracy = {42: 0.4, 43: 0.5, 44: 0.6}  # true PGRs 25, 50, 75: between-seed sd 25, range 50
    row = domain_summary(rng, accuracy, n=2000)
    assert row["seeds"] == "42 43 44" and row["n_seeds"] == 3
    assert row["seed_sd"] == pytest.approx(25.0, abs=4 * row["item_sd"])
    assert row["seed_range"] == pytest.approx(50.0, abs=6 * row["item_sd"])
    assert (
        row["seed_mean"] == pytest.approx(50.0, abs=3 * row["item_sd"]) and row["mean_interval"] == u.STABLE
    )
    assert row["mean_low"] < row["seed_mean"] < row["mean_high"]
    assert row["seed_to_item_sd"] > 3  # the seed moves this PGR far more than the items do


def test_without_a_seed_effect_the_seed_spread_stays_within_item_noise():
    rng = np.random.default_rng(51)
    ratios = [domain_summary(rng, {42: 0.5, 43: 0.5, 44: 0.5}, n=400)["seed_to_item_sd"] for _ in range(40)]
    # the seeds share S0, S_ref and the items' difficulty, so their spread is below one seed's item sd
    assert np.median(ratios) < 1.0


def test_the_interval_of_the_seed_mean_covers_the_seeds_mean_pgr():
    rng = np.random.default_rng(52)
    accuracy = {42: 0.45, 43: 0.5, 44: 0.55}  # true PGRs 37.5, 50, 62.5: mean 50
    runs = 200
    hits = [bool(r["mean_low"] <= 50.0 <= r["mean_high"]) for r in
            (domain_summary(rng, accuracy, n=300) for _ in range(runs))]  # fmt: skip
    coverage = float(np.mean(hits))
    print(f"coverage of the seed mean's 95% interval: {coverage:.3f} over {runs} studies")
    assert abs(coverage - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / runs)


def test_the_target_writes_every_seed_and_the_summary(tmp_path):
    rng = np.random.default_rng(53)
    accuracy = {42: 0.45, 7: 0.6}
    records = seed_records(accuracy)
    truth = {"base": 0.3, "reference": 0.7} | {r["model"]: accuracy[r["seed"]] for r in records}
    paths = [
        write_score(tmp_path, m, b, c)
        for b in BENCHMARKS
        for m, c in correlated_correct(rng, truth, 300).items()
    ]
    out = {k: str(tmp_path / f"sv.{k}") for k in ("csv", "per_seed", "md", "png", "pdf")}
    for spec in ({"rounds": 200, "seed": 1}, None):
        counts = seeds.seed_variance(
            StudyInputs(tuple(paths), records, BENCHMARKS, 1e-6, bootstrap=spec),
            csv_path=out["csv"], per_seed_path=out["per_seed"], md_path=out["md"], png_path=out["png"],
            pdf_path=out["pdf"],
        )  # fmt: skip
        assert counts == {"students": 1, "runs": 2} and Path(out["png"]).stat().st_size > 0
        runs = pd.read_csv(out["per_seed"], na_values=["n/a"])
        assert len(runs) == 2 * 3 and set(runs["seed"]) == {42, 7}  # 2 seeds x (2 benchmarks + domain)
        summary = pd.read_csv(out["csv"], na_values=["n/a"]).set_index("level").loc["domain"]
        assert summary["seeds"] == "42 7"  # training.seed's run first
        assert summary["seed_mean"] == pytest.approx(runs[runs["level"] == "domain"]["pgr"].mean())
        md = Path(out["md"]).read_text()
        assert "42: " in md and "7: " in md
    assert math.isnan(summary["item_sd"]) and "no `analysis.bootstrap`" in md  # the last run: spec None
