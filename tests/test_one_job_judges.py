"""One job per judge (rules judge_calls, intrinsic_judge_calls): it makes the judge calls of every pair or
set into their own call stores, and each pair's or set's job then scores from its store alone. The judge
is a real OpenAI-compatible HTTP server (tests/servers/fault_server.py), whose ledger counts every call."""

from __future__ import annotations

from pathlib import Path

from servers.fault_server import Faults, FaultServer
from test_scorers_judged import make_items, self_predictions

from agorabench.analysis.stage import intrinsic_judge, intrinsic_judge_calls
from agorabench.evaluation.stage import judge_calls, score_benchmark
from agorabench.jsonl import read_json, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
RUBRICS = {
    a: str(ROOT / "config/intrinsic/weighted" / f"{a}.txt")
    for a in ("instruction_difficulty", "response_quality")
}


def _spec(srv: FaultServer) -> dict:
    return {"backend": "openai", "model": "echo", "base_url": srv.url, "api_key_env": None}


def _pairs(tmp: Path) -> list[dict]:
    items = make_items(4)
    write_jsonl(tmp / "items.jsonl", items)
    pairs = []
    for model, cut in (("base", 3), ("student", 9)):
        preds = [p | {"output": " ".join(p["output"].split()[:cut])} for p in self_predictions(items)]
        write_jsonl(tmp / model / "predictions.jsonl", preds)
        for kind in ("alpaca_eval", "arena_hard"):
            out = tmp / model / kind / "score.json"
            pairs.append({"model": model, "benchmark": kind, "kind": kind, "items": str(tmp / "items.jsonl"),
                          "predictions": str(tmp / model / "predictions.jsonl"), "out": str(out),
                          "settings": {"seed": 42}})  # fmt: skip
    return pairs


def _score(p: dict, spec: dict) -> dict:
    score_benchmark(model=p["model"], benchmark=p["benchmark"], kind=p["kind"], items_path=p["items"],
                    predictions_path=p["predictions"], out_path=p["out"], settings=p["settings"],
                    judge_spec=spec, judge_name="j")  # fmt: skip
    return read_json(p["out"])


def test_one_judge_job_makes_the_calls_of_every_pair(tmp_path: Path) -> None:
    with FaultServer(Faults()) as srv:
        alone = [_score(p, _spec(srv)) for p in _pairs(tmp_path / "alone")]
        asked = srv.ledger.snapshot()["received"]
        summary = judge_calls(_pairs(tmp_path / "one"), judge_spec=_spec(srv), judge_name="j",
                              out_path=str(tmp_path / "judge_calls.json"))  # fmt: skip
        assert srv.ledger.snapshot()["received"] == 2 * asked and summary["pairs"] == 4
        replayed = [_score(p, _spec(srv)) for p in _pairs(tmp_path / "one")]
        assert srv.ledger.snapshot()["received"] == 2 * asked  # every pair's job read its store: no call
    assert replayed == alone and asked > 0


def _sets(tmp: Path) -> list[dict]:
    sets = []
    for name in ("a", "b"):  # the two sets share their instructions, not their responses
        rows = [{"id": f"{name}/{i}", "instruction": f"Add {i} and {i}.", "response": f"{2 * i} ({name})"}
                for i in range(3)]  # fmt: skip
        write_jsonl(tmp / f"{name}.jsonl", rows)
        meta = {"generator": name, "domain": "math", "method": "instance_generation", "variant": "v"}
        out = str(tmp / f"{name}.judge.j.json")
        sets.append({"data": str(tmp / f"{name}.jsonl"), "set_meta": meta | {"size": 3}, "out": out})
    return sets


def test_one_intrinsic_judge_job_makes_the_calls_of_every_set(tmp_path: Path) -> None:
    kw = {"rubrics": RUBRICS, "sampling": {"temperature": 0.0, "max_tokens": 4}, "max_instances": None}
    with FaultServer(Faults()) as srv:
        judge = {"name": "j", "spec": _spec(srv)}
        summary = intrinsic_judge_calls(
            _sets(tmp_path), judge=judge, out_path=str(tmp_path / "calls.json"), **kw
        )
        # 2 sets x 3 records x 2 aspects, but the shared instructions' difficulty is asked once
        assert (summary["calls"], srv.ledger.snapshot()["received"]) == (12, 9)
        for s in _sets(tmp_path):
            intrinsic_judge(
                s["data"], set_meta=s["set_meta"], suffix="j", judge=judge, out_path=s["out"], **kw
            )
            metrics = read_json(s["out"])["metrics"]
            assert metrics["instruction_difficulty_j"]["n"] == metrics["response_quality_j"]["n"] == 3
        assert srv.ledger.snapshot()["received"] == 9  # every set's job read its store: no call
