"""Log-probability verdicts through the backend interface (Request.top_logprobs -> Completion.top_logprobs),
and the clear error for a retired judge model.

transformers: the real SmolLM2-135M, checked against its own forward pass. OpenAI-compatible: a small
HTTP server on a loopback port answering in the chat-completions format (logprobs.content[*].top_logprobs).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agorabench.evaluation.judging import load_template, weighted_choice
from agorabench.evaluation.scorers import get_scorer
from agorabench.llm.anthropic_backend import AnthropicBackend
from agorabench.llm.base import BackendError, Request, Sampling
from agorabench.llm.openai_backend import OpenAIBackend
from agorabench.llm.transformers_backend import TransformersBackend

TOP = [{"token": "M", "logprob": -0.05}, {"token": "m", "logprob": -3.1}, {"token": "The", "logprob": -6.0}]


class _Handler(BaseHTTPRequestHandler):
    bodies: list[dict] = []  # noqa: RUF012 - shared by the test server's threads

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        if body["model"] == "gpt-4-1106-preview":
            message = "The model `gpt-4-1106-preview` does not exist or you do not have access to it."
            err = {"error": {"message": message, "type": "invalid_request_error", "code": "model_not_found"}}
            return self._send(404, err)
        choice = {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "M"}}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [{"token": "M", "logprob": -0.05, "top_logprobs": TOP}]}
        usage = {"prompt_tokens": 12, "completion_tokens": 1}
        self._send(200, {"model": body["model"], "choices": [choice], "usage": usage})

    def _send(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _ask(rid: str, text: str, top_logprobs: int = 0, max_tokens: int = 1) -> Request:
    return Request(
        rid, ({"role": "user", "content": text},), Sampling(max_tokens=max_tokens), top_logprobs=top_logprobs
    )


def test_openai_backend_asks_for_and_reads_top_logprobs(server: str) -> None:
    backend = OpenAIBackend(model="judge", base_url=server, key="judges.j", max_retries=0)
    _Handler.bodies.clear()
    got = {c.id: c for c in backend.complete([_ask("a", "x", top_logprobs=5), _ask("b", "y")])}
    assert got["a"].top_logprobs == [{t["token"]: t["logprob"] for t in TOP}]
    assert got["b"].top_logprobs is None
    asked = {b["messages"][0]["content"]: b for b in _Handler.bodies}
    assert asked["x"]["logprobs"] is True and asked["x"]["top_logprobs"] == 5
    assert "logprobs" not in asked["y"] and "top_logprobs" not in asked["y"]


def test_retired_judge_model_names_the_key_and_the_replacement(server: str) -> None:
    backend = OpenAIBackend(
        model="gpt-4-1106-preview", base_url=server, key="judges.gpt-4-turbo", max_retries=3
    )
    with pytest.raises(BackendError) as err:
        list(backend.complete([_ask("a", "x")]))
    message = str(err.value)
    assert "judges.gpt-4-turbo.model" in message and "'gpt-4o-2024-08-06'" in message
    assert "model_not_found" in message and "retired" in message


def test_a_backend_without_logprobs_refuses_instead_of_guessing() -> None:
    backend = AnthropicBackend(model="claude", base_url="http://127.0.0.1:9", key="judges.c")
    with pytest.raises(BackendError, match=r"judges\.c: backend anthropic returns no log-probabilities"):
        list(backend.complete([_ask("a", "x", top_logprobs=5)]))


def test_request_rejects_a_bad_top_logprobs() -> None:
    with pytest.raises(Exception, match=r"top_logprobs.*\[0, 20\]"):
        _ask("a", "x", top_logprobs=21)


@pytest.fixture(scope="module")
def smol(smollm2_dir: Path) -> TransformersBackend:
    return TransformersBackend(smollm2_dir, dtype="float32", batch_size=4, num_threads=1)


def test_transformers_top_logprobs_equal_the_models_own_distribution(smol: TransformersBackend) -> None:
    import torch

    req = _ask(
        "a", "Which letter is uppercase, m or M? Answer with the letter.", top_logprobs=5, max_tokens=3
    )
    plain = _ask("b", "Say hi.", max_tokens=3)
    got = {c.id: c for c in smol.complete([req, plain])}
    steps = got["a"].top_logprobs
    assert got["b"].top_logprobs is None
    assert steps is not None and len(steps) == got["a"].output_tokens and all(len(s) == 5 for s in steps)
    ids = torch.tensor([smol.encode(req)])
    with torch.inference_mode():
        logits = smol.lm(ids).logits[0, -1].float()
    values, tokens = torch.log_softmax(logits, -1).topk(5)
    expected = {smol.tokenizer.decode([t]): v for t, v in zip(tokens.tolist(), values.tolist(), strict=True)}
    assert steps[0].keys() == expected.keys()
    assert all(math.isclose(steps[0][k], expected[k], abs_tol=1e-4) for k in expected)
    assert max(steps[0], key=steps[0].get) == smol.tokenizer.decode([int(tokens[0])])  # greedy took the top


def test_weighted_alpaca_eval_verdicts_with_a_local_judge(
    smol: TransformersBackend, shared_data: Path, tmp_path: Path
) -> None:
    template = shared_data / "alpaca-eval-2/evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt"
    load_template(template, "alpaca_eval.txt", ("instruction", "output_1", "output_2"))
    items = [
        {"id": f"alpaca_eval/{i}", "prompt": q, "reference_output": ref}
        for i, (q, ref) in enumerate([("Name a primary colour.", "Red."), ("What is 2 + 2?", "4"),
                                      ("Say hello in French.", "Bonjour."), ("Capital of Italy?", "Rome.")])
    ]  # fmt: skip
    preds = [
        {"id": it["id"], "output": a} for it, a in zip(items, ["Blue.", "5", "Salut !", "Rome"], strict=True)
    ]
    calls = tmp_path / "calls.jsonl"
    score = get_scorer("alpaca_eval").score(
        items, preds, judge=smol, cache_path=str(calls), judge_template=str(template),
        verdict="logprobs", top_logprobs=20, max_tokens=1, temperature=1.0, seed=123,
    )  # fmt: skip
    # Every verdict is parsed (the 135M model rarely answers with the identifier, but its top tokens hold
    # one), and each preference is the weighted formula on the stored log-probabilities, mapped back
    # through the item's swap.
    stored = {row["meta"]["item_id"]: row["top_logprobs"][0] for row in map(json.loads, calls.open())}
    assert score.counts["judged"] == 4 and score.counts["judge_unparsed"] == 0
    for row in score.per_item:
        shown = weighted_choice(stored[row["id"]], ["m", "M"])
        assert shown is not None
        assert row["preference"] == pytest.approx(3 - shown if row["switched"] else shown, abs=1e-12)
    assert any(r["preference"] not in (1.0, 2.0) for r in score.per_item), "weighted, not binary"
