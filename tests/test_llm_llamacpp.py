"""OpenAIBackend and generate_set against a real llama.cpp server (llama-cpp-python, SmolLM2-135M, CPU).

The server is started once per module on a free loopback port by `servers.llamacpp_server`
(tests/servers/) and stopped by its PID. Every test skips, naming what to install, when
llama-cpp-python[server] is absent (`pip install -r requirements-llamacpp.txt`).
`AGORABENCH_LLAMACPP_THREADS` sets the server's threads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers.llamacpp_server import LlamaCppServer, LlamaCppServerError, missing_reason

from agorabench.generation.instances import load_themes
from agorabench.generation.prompts import template_path
from agorabench.generation.run import generate_set
from agorabench.jsonl import read_jsonl
from agorabench.llm.base import Request, Sampling
from agorabench.llm.factory import make_backend
from agorabench.llm.store import CallStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
PROMPTS = ROOT / "config" / "prompts"
THEMES, FIRST_WORDS = load_themes(ROOT / "config" / "themes.yaml")
# One thread by default: on a busy 2-core machine two spin-waiting threads ran up to 10x slower.
THREADS = int(os.environ.get("AGORABENCH_LLAMACPP_THREADS", "1"))
ALIAS = "smollm2-135m"

# A setting the 135M model passes often enough for exact counts within a small call budget.
SETTING = {"domain": "instruction_following", "method": "response_generation", "variant": "agorabench"}
SEEDS = [
    {"id": f"seed/{i}", "instruction": q, "response": ""}
    for i, q in enumerate(
        [
            "Name three primary colours.",
            "Say hello in French.",
            "What is the capital of Italy?",
            "Give one synonym for happy.",
            "What colour is the sky on a clear day?",
            "Name a fruit that is yellow.",
        ]
    )
]
GEN_SAMPLING = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 96, "stop": ["[END]"]}
POST_RE = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" (\d{3})')
COMPUTED = "llama_perf_context_print:       total time ="  # printed once per generation (verbose server)
DROPPED = "Disconnected from client"  # a queued request whose client had gone: answered 400, not computed


def require_server() -> None:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaCppServer]:
    require_server()
    with LlamaCppServer(alias=ALIAS, n_threads=THREADS) as srv:
        yield srv


def backend_spec(url: str, concurrency: int = 2) -> dict[str, Any]:
    return {"backend": "openai", "base_url": url, "model": ALIAS, "extra_body": {"repeat_penalty": 1.0},
            "concurrency": concurrency, "timeout_s": 300}  # fmt: skip


def ask(rid: str, question: str, **sampling: Any) -> Request:
    return Request(rid, ({"role": "user", "content": question},), Sampling(**sampling))


def posts(srv: LlamaCppServer) -> list[int]:
    """HTTP status of every chat completion the server sent to a live client, in order (its access log)."""
    return [int(m.group(1)) for m in POST_RE.finditer(srv.log_text())]


def server_counts(srv: LlamaCppServer) -> Counter:
    """What the server did so far: completions sent (200), generations computed (paid), requests dropped.

    A completion computed for a client that has died is not in the access log, but is computed.
    """
    log = srv.log_text()
    return Counter(sent=len(posts(srv)), computed=log.count(COMPUTED), dropped=log.count(DROPPED))


def generate(args: dict[str, Any]) -> dict:
    """generate_set through the server at args["url"]; also what the killed child process runs."""
    tmp = Path(args["dir"])
    backend = make_backend(backend_spec(args["url"], args.get("concurrency", 2)), key="generators.smollm2")
    domain = SETTING["domain"]
    return generate_set(
        generator=ALIAS, backend=backend, sampling=Sampling(**GEN_SAMPLING), **SETTING,
        template_path=str(template_path(PROMPTS, SETTING["variant"], domain, SETTING["method"])),
        seeds=SEEDS, themes=THEMES[domain], first_words=FIRST_WORDS[domain], n=args["n"],
        max_attempts=args["max_attempts"], seed=0, store_path=str(tmp / "calls.jsonl"),
        out_path=str(tmp / f"data_{args['tag']}.jsonl"), stats_path=str(tmp / f"stats_{args['tag']}.json"),
        progress=False,
    )  # fmt: skip


def check_ledger(stats: dict, tmp: Path, tag: str, n: int) -> list[dict]:
    """The stats agree with the data file and the call store row for row; returns the store rows."""
    rows = read_jsonl(tmp / f"data_{tag}.jsonl")
    store = read_jsonl(tmp / "calls.jsonl")
    ids = [r["id"] for r in store]
    assert len(ids) == len(set(ids)), "a request was stored twice"
    assert stats["valid"] == len(rows) == n and stats["shortfall"] == 0
    assert [r["index"] for r in rows] == list(range(n))
    assert stats["calls"] == len(store) == stats["calls_new"] + stats["calls_from_store"]
    assert sum(stats["finish_reasons"].values()) == stats["calls"]
    assert sum(stats["rejected"].values()) == stats["calls"] - stats["valid"]
    assert stats["input_tokens"] == sum(r["input_tokens"] for r in store) > 50 * stats["calls"]
    assert stats["output_tokens"] == sum(r["output_tokens"] for r in store) > 0
    assert stats["models"] == [ALIAS] and {r["model"] for r in store} == {ALIAS}
    assert {r["request_id"] for r in rows} <= set(ids)
    return store


def test_helper_starts_and_stops_a_server_by_pid(tmp_path: Path) -> None:
    require_server()
    with pytest.raises(LlamaCppServerError, match="model file not found"):
        LlamaCppServer(tmp_path / "absent.gguf").start()
    srv = LlamaCppServer(alias="probe", n_threads=1).start()
    pid, url = srv.pid, srv.url
    try:
        assert pid is not None and srv.startup_s is not None and url.startswith("http://127.0.0.1:")
        models = httpx.get(f"{url}/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["probe"]
    finally:
        srv.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models", timeout=5)


def test_backend_completes_with_usage_and_finish_reasons(server: LlamaCppServer) -> None:
    backend = make_backend(backend_spec(server.url), key="generators.smollm2")
    reqs = [
        ask("short", "What is 2 + 2?", max_tokens=48),
        ask("long", "Write a long story about a dragon.", max_tokens=12),
        ask("stop", "Count from 1 to 20, separated by commas.", max_tokens=48, stop=("5",)),
        ask("seeded", "Name a colour.", temperature=1.0, top_p=0.9, max_tokens=16, seed=3),
    ]
    before = len(posts(server))
    out = {c.id: c for c in backend.complete(reqs)}
    assert set(out) == {r.id for r in reqs} and len(posts(server)) - before == 4
    for c in out.values():
        assert c.finish_reason in ("stop", "length") and c.error is None and c.attempts == 1
        assert c.input_tokens > 30 and c.output_tokens >= 1 and c.model == ALIAS and c.text
    # "stop": the model's end-of-turn token; "length": cut at max_tokens; a stop string is left out.
    assert out["short"].finish_reason == "stop" and "4" in out["short"].text
    assert out["short"].output_tokens < 48
    assert out["long"].finish_reason == "length" and out["long"].output_tokens == 12
    assert out["stop"].finish_reason == "stop" and "5" not in out["stop"].text and "4" in out["stop"].text


def test_greedy_output_against_transformers_float32(server: LlamaCppServer, smollm2_dir: Path) -> None:
    """Same prompt tokens; the same greedy text unless the top two logits nearly tie.

    llama.cpp multiplies the Q4_1 weights with activations quantized to 8 bits, transformers the
    dequantized weights in float32: logits differ by up to ~0.6. Where the top two tokens are that close
    greedy decoding diverges: for "What is the capital of France?" float32 has 'The' 25.36 > 'L' 25.26,
    llama.cpp 'L' 24.74 > 'The' 24.65 (and then writes French). Prompts with a clear margin match.
    """
    from agorabench.llm.transformers_backend import TransformersBackend

    prompts = ["Give me one tip for staying healthy.", "What is 2 + 2?"]
    reqs = [ask(f"p{i}", p, temperature=0.0, max_tokens=24) for i, p in enumerate(prompts)]
    served = {c.id: c for c in make_backend(backend_spec(server.url)).complete(reqs)}
    local = TransformersBackend(smollm2_dir, dtype="float32", batch_size=1, num_threads=1)
    try:
        ref = {c.id: c for c in local.complete(reqs)}
    finally:
        local.close()
    assert [served[r.id].input_tokens for r in reqs] == [ref[r.id].input_tokens for r in reqs] == [38, 38]
    assert served["p0"].text == ref["p0"].text, (served["p0"].text, ref["p0"].text)
    assert served["p0"].output_tokens == ref["p0"].output_tokens == 24
    assert served["p0"].finish_reason == ref["p0"].finish_reason == "length"
    # A near tie at the second token ("answer is" / "answer to"): different words, the same answer.
    assert served["p1"].text.startswith("The answer") and ref["p1"].text.startswith("The answer")
    assert "4" in served["p1"].text and "4" in ref["p1"].text


def test_top_logprobs_through_the_server(server: LlamaCppServer, smollm2_dir: Path) -> None:
    """llama.cpp's OpenAI-compatible `logprobs`/`top_logprobs`: one entry per generated token, the chosen
    token among the top ones, and the same top token as transformers' float32 distribution (the prompt
    has a clear margin; the quantized weights shift log-probabilities by up to ~0.6, so values are not
    compared exactly)."""
    from agorabench.llm.transformers_backend import TransformersBackend

    req = Request(
        "lp", ({"role": "user", "content": "What is 2 + 2?"},), Sampling(max_tokens=4), top_logprobs=5
    )
    [served] = make_backend(backend_spec(server.url)).complete([req])
    assert served.top_logprobs is not None and len(served.top_logprobs) == served.output_tokens
    assert all(0 < len(step) <= 6 and all(lp <= 0 for lp in step.values()) for step in served.top_logprobs)
    local = TransformersBackend(smollm2_dir, dtype="float32", batch_size=1, num_threads=1)
    try:
        [ref] = local.complete([req])
    finally:
        local.close()
    top = [max(step, key=step.get) for step in (served.top_logprobs[0], ref.top_logprobs[0])]
    assert top[0] == top[1]


def test_generate_set_through_the_server_then_resumes_with_zero_calls(
    server: LlamaCppServer, tmp_path: Path
) -> None:
    args = {"url": server.url, "dir": str(tmp_path), "n": 3, "max_attempts": 12, "tag": "a"}
    before = len(posts(server))
    stats = generate(args)
    store = check_ledger(stats, tmp_path, "a", 3)
    assert stats["calls_new"] == stats["calls"] == len(posts(server)) - before  # every call reached it
    assert stats["finish_reasons"].keys() <= {"stop", "length"} and stats["retries"] == 0
    assert stats["output_tokens"] <= GEN_SAMPLING["max_tokens"] * stats["calls"]
    mark = len(posts(server))
    again = generate(args | {"tag": "b"})
    assert len(posts(server)) == mark, "a resumed run sent requests to the server"
    assert (again["calls"], again["calls_new"], again["calls_from_store"]) == (stats["calls"], 0, len(store))
    assert again["output_tokens_new"] == 0 and again["output_tokens"] == stats["output_tokens"]
    assert (tmp_path / "data_a.jsonl").read_bytes() == (tmp_path / "data_b.jsonl").read_bytes()


def drain(srv: LlamaCppServer) -> Counter:
    """Wait until the server has dealt with every queued request (its lock is FIFO): the counts before
    this probe request."""
    with httpx.Client(timeout=300) as client:
        body = {"model": ALIAS, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
        assert client.post(f"{srv.url}/chat/completions", json=body).status_code == 200
    counts = server_counts(srv)
    counts.subtract(sent=1, computed=1)
    return counts


def test_kill_9_mid_run_then_restart_gives_exact_counts(server: LlamaCppServer, tmp_path: Path) -> None:
    n, kill_at = 6, 3
    args = {"url": server.url, "dir": str(tmp_path), "n": n, "max_attempts": 24, "tag": "a"}
    code = f"import json, sys; sys.path.insert(0, {str(TESTS)!r}); import test_llm_llamacpp as t; " \
           "t.generate(json.loads(sys.argv[1]))"  # fmt: skip
    store_file = tmp_path / "calls.jsonl"
    start = server_counts(server)
    child = subprocess.Popen([sys.executable, "-c", code, json.dumps(args)], cwd=ROOT)
    deadline = time.monotonic() + 300
    try:
        while not (store_file.exists() and store_file.read_bytes().count(b"\n") >= kill_at):
            assert child.poll() is None, "the child finished before it could be killed"
            assert time.monotonic() < deadline, "the child stored too few rows in time"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (tmp_path / "data_a.jsonl").exists()
    stored_at_kill = len(CallStore(store_file))  # a row torn by the kill is not counted
    assert stored_at_kill >= kill_at
    killed = drain(server) - start  # what the server did for the killed child
    assert stored_at_kill <= killed["sent"] <= killed["computed"]  # a reply goes to a live client only
    # Requests the child had sent whose rows were not stored: the one being computed when it died (paid
    # for, lost) and those still queued (dropped unpaid). At most the concurrency (2), as slots are only
    # freed once a row is stored.
    lost_in_flight = killed["computed"] - stored_at_kill
    assert lost_in_flight + killed["dropped"] <= 2

    mark = server_counts(server)
    stats = generate(args | {"tag": "b"})
    store = check_ledger(stats, tmp_path, "b", n)
    restart = server_counts(server) - mark
    # The restart computed exactly the calls the store did not hold: none stored before the kill again.
    assert stats["calls_from_store"] == stored_at_kill and stats["calls_new"] == len(store) - stored_at_kill
    assert restart["computed"] == restart["sent"] == stats["calls_new"] and restart["dropped"] == 0
    assert posts(server)[-stats["calls_new"] :] == [200] * stats["calls_new"]
