"""Generation-seed replicates (`generators.<g>.replicate_of` + `generation_seed`): the config checks, the
study plan, the DAG and the seed-variance records of the pair."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from agorabench import workflow as wf
from agorabench.analysis import seeds
from agorabench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
BASE = "smollm2-t0.7"
REPLICATE = "smollm2-t0.7-gseed7"


def with_replicate(config: dict = DEMO, **entry) -> dict:
    """The demo plus a replicate of BASE with generation seed 7, in the data-volume experiment's setting."""
    out = copy.deepcopy(config)
    out["generators"][REPLICATE] = out["generators"][BASE] | {"generation_seed": 7, "replicate_of": BASE}
    out["generators"][REPLICATE] |= entry
    out["experiments"]["generation_seeds"] = copy.deepcopy(out["experiments"]["data_volume"])
    out["experiments"]["generation_seeds"]["generators"] = [REPLICATE]
    return out


def test_a_replicate_pairs_each_of_its_students_with_the_same_setting_of_the_generator_it_repeats():
    config = with_replicate()
    wf.check_config(config)
    pairs = wf.generation_replicates(config)
    assert pairs and all(p.generator == BASE and r.generator == REPLICATE for p, r in pairs)
    assert all(
        (p.domain, p.method, p.variant, p.size) == (r.domain, r.method, r.variant, r.size) for p, r in pairs
    )
    assert wf.generation_seed(config, REPLICATE) == 7
    assert wf.generation_seed(config, BASE) == config["seed"]
    assert wf.generation_replicates(DEMO) == [] and wf.extra_replicates(config) == []  # no training replicate


def test_the_replicates_records_group_under_the_generator_they_repeat():
    config = with_replicate()
    records = [r for r in seeds.replicate_records(config) if r["varies"] == seeds.GENERATION_SEED]
    (primary,) = [r for r in records if r["primary"]]
    (other,) = [r for r in records if not r["primary"]]
    assert primary["generator"] == other["generator"] == BASE
    assert (primary["seed"], other["seed"]) == (config["seed"], 7)
    assert other["model"].startswith(f"students/{REPLICATE}/")
    assert f"results/demo/evaluation/{other['model']}/gsm8k/score.json" in seeds.score_paths(config)


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"replicate_of": "nobody"}, rf"generators\.{REPLICATE}\.replicate_of"),
        ({"replicate_of": REPLICATE}, rf"generators\.{REPLICATE}\.replicate_of"),
        ({"model": "other"}, rf"generators\.{REPLICATE}\.(model|replicate_of)"),
        ({"generation_seed": DEMO["seed"]}, rf"generators\.{REPLICATE}\.generation_seed"),
    ],
)
def test_a_wrong_replicate_is_refused_naming_its_key(entry, key):
    with pytest.raises(ConfigError, match=key):
        wf.check_config(with_replicate(**entry))


def test_a_judge_takes_no_generation_seed():
    config = copy.deepcopy(DEMO)
    judge = next(iter(config["judges"]))
    config["judges"][judge]["generation_seed"] = 3
    with pytest.raises(ConfigError, match=rf"judges\.{judge}\.generation_seed"):
        wf.check_config(config)


def test_a_replicate_without_a_counterpart_student_is_refused():
    config = with_replicate()
    config["experiments"]["generation_seeds"]["sizes"] = [3]  # BASE has no n3 student
    with pytest.raises(ConfigError, match=rf"generators\.{REPLICATE}\.replicate_of"):
        wf.check_config(config)  # what `agorabench check-config` runs


def test_the_replicate_adds_its_own_pool_and_the_seed_variance_target(tmp_path):
    from test_analysis_seeds import dry_run

    before, after = dry_run(DEMO, tmp_path), dry_run(with_replicate(), tmp_path)
    assert "seed_variance" not in before and after["seed_variance"] == 1
    gen = [r for r in after if r in ("generate_local", "generate_api")]  # one job per pool
    assert gen and sum(after[r] for r in gen) == sum(before.get(r, 0) for r in gen) + len(
        {(p.domain, p.method, p.variant) for p, _ in wf.generation_replicates(with_replicate())}
    )
    # one_job_per_generator: the replicate is one more generator, so one more generate_settings job
    assert after["generate_settings"] == before["generate_settings"] + 1
    assert after["train_student"] == before["train_student"] + len(wf.generation_replicates(with_replicate()))


def test_a_students_training_and_generation_seed_studies_are_summarized_apart():
    from test_analysis_seeds import BENCHMARKS, seed_records, simulate

    training = [r | {"varies": seeds.TRAINING_SEED} for r in seed_records({42: 0.5, 43: 0.5})]
    replicate = "students/g-gseed7/math/instance_generation/agorabench/n100"
    generation = [
        training[0] | {"varies": seeds.GENERATION_SEED},
        training[0] | {"model": replicate, "seed": 7, "primary": False, "varies": seeds.GENERATION_SEED},
    ]
    accuracy = {42: 0.5, 43: 0.5, 7: 0.6}  # true PGRs: 50 for both training seeds, 75 for generation seed 7
    records = training + generation
    scores, boot = simulate(np.random.default_rng(7), records, accuracy, n=2000)
    runs = seeds.per_seed(scores, records, BENCHMARKS, 1e-6, boot)
    summary = seeds.summarize(runs, boot)
    domain = summary[summary["level"] == "domain"].set_index("varies")
    assert set(domain.index) == {seeds.TRAINING_SEED, seeds.GENERATION_SEED}
    assert (domain["generator"] == "g").all() and (domain["n_seeds"] == 2).all()
    gen, train = domain.loc[seeds.GENERATION_SEED], domain.loc[seeds.TRAINING_SEED]
    assert gen["seeds"] == "42 7" and gen["seed_range"] == pytest.approx(25.0, abs=6 * gen["item_sd"])
    assert train["seed_range"] == pytest.approx(0.0, abs=6 * train["item_sd"])
    assert "generation seed" in seeds.markdown(summary, runs, None)
