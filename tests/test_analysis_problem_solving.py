"""Table 7 measured: a generator answers the benchmarks itself through its own backend (here SmolLM2 through
transformers, as the demo's generators are), its predictions land where the scorers read them, and a rerun
asks nothing again."""

from __future__ import annotations

import json
from pathlib import Path

from agorabench.analysis import inputs
from agorabench.analysis.problem_solving import predict_generator
from agorabench.jsonl import read_jsonl


def items(path: Path, prompts: list[str]) -> str:
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": p}) + "\n" for i, p in enumerate(prompts)))
    return str(path)


def test_a_generator_answers_every_benchmark_with_one_backend(tmp_path, smollm2_dir):
    benches = ["gsm8k", "mbpp"]
    paths = [
        items(tmp_path / "gsm8k.jsonl", ["What is 2 + 3?"]),
        items(tmp_path / "mbpp.jsonl", ["def f():", "x"]),
    ]
    root = tmp_path / "evaluation" / inputs.generator_model_key("smollm2-t0.7")
    outs = [str(root / b / "predictions.jsonl") for b in benches]
    spec = {"backend": "transformers", "model": "smollm2", "model_dir": str(smollm2_dir)}
    spec["price"] = {"input_per_mtok": 0.0, "output_per_mtok": 0.0, "date": "local CPU"}  # not a backend key
    sampling = {b: {"temperature": 0.0, "max_tokens": 4} for b in benches}
    kw = {"generator": "smollm2-t0.7", "model_key": "generators/smollm2-t0.7", "backend_spec": spec}
    kw |= {"benchmarks": benches, "items": paths, "outputs": outs, "sampling": sampling}
    counts = predict_generator(**kw, summary_path=str(root / "predictions.json"))
    assert counts["predictions"] == 3 and counts["engine_starts"] == 1 and counts["reused_from_store"] == 0
    rows = read_jsonl(outs[1])
    assert [r["id"] for r in rows] == ["q0", "q1"] and all(isinstance(r["output"], str) for r in rows)
    summary = json.loads((root / "predictions.json").read_text())
    assert summary["model"] == "generators/smollm2-t0.7" and summary["backend"] == "transformers"
    again = predict_generator(**kw, summary_path=str(root / "predictions.json"))
    assert again["reused_from_store"] == 3 and again["engine_starts"] == 0  # nothing is asked twice


def test_problem_solving_source_generators_plans_each_main_generator_on_every_benchmark():
    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "config" / "demo.yaml").read_text())
    config["analysis"]["problem_solving"] = {"source": "generators"}
    spec = inputs.problem_solving_spec(config)
    gens = inputs.main_generators(config)
    assert spec["models"] == {g: f"generators/{g}" for g in gens}
    paths = inputs.problem_solving_score_paths(config)
    assert len(paths) == len(gens) * len(config["benchmarks"])
    assert paths[0] == f"{config['results_dir']}/evaluation/generators/{gens[0]}/gsm8k/score.json"
    assert inputs.problem_solving_missing(config) == []
