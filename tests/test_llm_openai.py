"""Remote backends against the project's fault-injecting server over real loopback sockets."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from servers.fault_server import Faults, FaultServer, request_key

from agorabench.errors import ConfigError
from agorabench.llm.anthropic_backend import AnthropicBackend
from agorabench.llm.base import BackendError, Request, Sampling
from agorabench.llm.factory import make_backend
from agorabench.llm.openai_backend import OpenAIBackend
from agorabench.llm.retry import RateLimiter, RetryPolicy, parse_retry_after
from agorabench.llm.store import CallStore

CANARY = "sk-canary-7f3e9b1d2c4a"
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}


def _requests(n: int, tag: str = "q", **sampling) -> list[Request]:
    s = Sampling(**({"max_tokens": 32} | sampling))
    return [Request(f"{tag}{i}", ({"role": "user", "content": f"{tag} question {i}"},), s) for i in range(n)]


def _key(req: Request) -> str:
    return request_key([dict(m) for m in req.messages])


@pytest.fixture
def canary_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AGB_TEST_KEY", CANARY)
    return "AGB_TEST_KEY"


def test_faulty_run_completes_with_exact_ledger(tmp_path: Path, canary_env: str) -> None:
    faults = Faults(rate_429=0.08, rate_500=0.05, rate_503=0.04, rate_slow=0.03, rate_truncated=0.03,
                    rate_malformed=0.04, retry_after_s=0.02, slow_s=0.6, latency_s=0.005, seed=7,
                    api_key=CANARY)  # fmt: skip
    reqs = _requests(200, max_tokens=8)
    with FaultServer(faults) as srv:
        backend = OpenAIBackend(model="echo", base_url=srv.url, api_key_env=canary_env, concurrency=16,
                                timeout_s=0.4, max_retries=9, key="generators.echo", **FAST)  # fmt: skip
        store = CallStore(tmp_path / "calls.jsonl")
        results = {c.id: c for _, c in store.run(backend, reqs)}
        ledger = srv.ledger
        assert len(results) == 200 and set(results) == {r.id for r in reqs}
        assert all(c.finish_reason in ("stop", "length") for c in results.values())
        faulted = ledger.snapshot()["received"] - 200
        assert faulted >= 40, "the server must really have injected faults"
        for r in reqs:
            c, k = results[r.id], _key(r)
            assert c.text == " ".join(f"echo: {r.messages[0]['content']}".split()[:8])
            assert 1 <= c.attempts <= 10
            # Every attempt the server saw was counted by the client; on a loaded machine an attempt can
            # also time out before the server's handler reads it, so the client may count a few more.
            assert ledger.received[k] <= c.attempts
            assert ledger.count(k, "ok") == 1  # each request was answered (paid) exactly once
        assert ledger.settle()  # slow answers finish after the client gave up on them
        outcomes = ledger.snapshot()["outcomes"]
        received = sum(ledger.received.values())
        assert received == sum(outcomes.values())  # every attempt that arrived has one outcome
        unseen = sum(c.attempts for c in results.values()) - received
        assert 0 <= unseen <= 0.02 * received, f"{unseen} attempts never reached the server"
        assert {"429", "500", "503", "slow", "truncated", "malformed"} <= set(outcomes)
    text = (tmp_path / "calls.jsonl").read_text()
    assert text.count("\n") == 200
    assert CANARY not in text and CANARY not in repr(backend) and CANARY not in repr(faults)


def test_attempt_cap_gives_error_completion_without_secret(canary_env: str) -> None:
    with FaultServer(Faults(rate_500=1.0, api_key=CANARY)) as srv:
        backend = OpenAIBackend(model="m", base_url=srv.url, api_key_env=canary_env, max_retries=3, **FAST)
        [c] = list(backend.complete(_requests(1)))
        assert c.finish_reason == "error" and c.text == ""
        assert c.attempts == 4 and srv.ledger.snapshot()["received"] == 4
        assert "gave up after 4 attempts" in c.error and "HTTP 500" in c.error
        assert CANARY not in str(c.to_dict())


def test_retry_after_is_honoured() -> None:
    with FaultServer(Faults(fail_first=2, fail_kind="429", retry_after_s=0.3)) as srv:
        backend = OpenAIBackend(model="m", base_url=srv.url, api_key_env=None, max_retries=5, **FAST)
        t0 = time.monotonic()
        [c] = list(backend.complete(_requests(1)))
        elapsed = time.monotonic() - t0
        assert c.finish_reason == "stop" and c.attempts == 3
        assert elapsed >= 0.6  # two waits of Retry-After (0.3 s); jittered backoff alone is <= 0.05 s


def test_bad_key_stops_the_run_and_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGB_WRONG_KEY", "sk-wrong-secret-5555")
    with FaultServer(Faults(api_key=CANARY)) as srv:  # its 401 body echoes the key it received
        spec = {"backend": "openai", "model": "m", "base_url": srv.url, "api_key_env": "AGB_WRONG_KEY"}
        backend = make_backend(spec, key="generators.gpt")
        with pytest.raises(BackendError) as err:
            list(backend.complete(_requests(3)))
        assert "401" in str(err.value) and "generators.gpt.api_key_env" in str(err.value)
        assert "sk-wrong-secret-5555" not in str(err.value) and "[REDACTED]" in str(err.value)


def test_rejected_request_is_not_retried() -> None:
    with FaultServer(Faults()) as srv:
        backend = OpenAIBackend(model="m", base_url=srv.url, api_key_env=None, max_retries=5, **FAST)
        bad = Request("bad", ({"role": "user", "content": "please [[400]]"},), Sampling(max_tokens=4))
        out = {c.id: c for c in backend.complete([bad, *_requests(3)])}
        assert (
            out["bad"].finish_reason == "error"
            and out["bad"].attempts == 1
            and "HTTP 400" in out["bad"].error
        )
        assert srv.ledger.received[_key(bad)] == 1
        assert [out[f"q{i}"].finish_reason for i in range(3)] == ["stop"] * 3


def test_request_body_and_stop_strings() -> None:
    with FaultServer(Faults()) as srv:
        backend = OpenAIBackend(
            model="m", base_url=srv.url, api_key_env=None, extra_body={"repeat_penalty": 1.0}
        )
        s = Sampling(
            temperature=0.7, top_p=0.9, max_tokens=50, stop=("STOP",), seed=3, repetition_penalty=1.1
        )
        req = Request("a", ({"role": "user", "content": "one two STOP three"},), s)
        body = backend.build_body(req)
        assert body == {"model": "m", "messages": [{"role": "user", "content": "one two STOP three"}],
                        "temperature": 0.7, "top_p": 0.9, "max_tokens": 50, "stop": ["STOP"], "seed": 3,
                        "repetition_penalty": 1.1, "repeat_penalty": 1.0}  # fmt: skip
        [c] = list(backend.complete([req]))
        assert (c.text, c.finish_reason, c.input_tokens, c.output_tokens) == ("echo: one two ", "stop", 4, 3)


def test_anthropic_messages_shape() -> None:
    with FaultServer(Faults(rate_503=0.3, seed=2)) as srv:
        backend = AnthropicBackend(
            model="claude-x", base_url=srv.root, api_key_env=None, max_retries=8, **FAST
        )
        msgs = (
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "alpha beta END gamma"},
        )
        stop = Request("s", msgs, Sampling(max_tokens=20, stop=("END",), seed=1))
        body = backend.build_body(stop)
        assert body["system"] == "be brief" and body["messages"] == [dict(msgs[1])]
        assert body["stop_sequences"] == ["END"] and "top_p" not in body and "seed" not in body
        long = Request("l", msgs[1:], Sampling(max_tokens=2))
        out = {c.id: c for c in backend.complete([stop, long, *_requests(20)])}
        assert (out["s"].text, out["s"].finish_reason) == ("echo: alpha beta ", "stop")
        assert (out["l"].text, out["l"].finish_reason, out["l"].output_tokens) == ("echo: alpha", "length", 2)
        assert out["s"].model == "claude-x" and out["s"].input_tokens == 6
        assert all(c.finish_reason != "error" for c in out.values())
        assert sum(c.attempts for c in out.values()) == srv.ledger.snapshot()["received"] > 22


def test_requests_per_minute_limit() -> None:
    with FaultServer(Faults()) as srv:
        backend = OpenAIBackend(model="m", base_url=srv.url, api_key_env=None, concurrency=8,
                                requests_per_minute=1200)  # fmt: skip
        t0 = time.monotonic()
        out = list(backend.complete(_requests(41)))
        elapsed = time.monotonic() - t0
    assert len(out) == 41
    assert elapsed >= 0.9  # 1 s of burst (~21) admitted at once, then 20 more at 20/s


def test_rate_limiter_tokens_and_pause() -> None:
    async def tokens() -> float:
        limiter = RateLimiter(tokens_per_minute=6000)  # 100 tokens/s with 100 of burst
        t0 = time.monotonic()
        for _ in range(4):  # 50 + 50 from the burst, the 3rd runs into debt, the 4th waits for it
            await limiter.acquire(50)
        await limiter.acquire(1)
        return time.monotonic() - t0

    async def pause() -> float:
        limiter = RateLimiter()
        limiter.pause(0.3)  # what a 429 with Retry-After does to every caller
        t0 = time.monotonic()
        await limiter.acquire(1)
        return time.monotonic() - t0

    assert 0.95 <= asyncio.run(tokens()) < 1.5
    assert 0.28 <= asyncio.run(pause()) < 0.6


def test_closing_the_iterator_cancels_in_flight_work() -> None:
    with FaultServer(Faults(latency_s=0.3)) as srv:
        backend = OpenAIBackend(model="m", base_url=srv.url, api_key_env=None, concurrency=4)
        it = backend.complete(_requests(40))
        first = next(it)
        t0 = time.monotonic()
        it.close()
        assert time.monotonic() - t0 < 1.0 and first.finish_reason == "stop"
        time.sleep(0.4)
        assert srv.ledger.snapshot()["received"] <= 8  # the other 32+ were never sent


def test_retry_helpers() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a past date
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None
    import random

    policy, rng = RetryPolicy(max_attempts=5, base_s=1.0, max_s=8.0), random.Random(0)
    delays = [policy.delay(a, None, rng) for a in (1, 2, 3, 4, 5, 6) for _ in range(200)]
    assert min(delays) >= 0 and max(delays) <= 8.0 and max(delays[:200]) <= 1.0
    assert policy.delay(1, 500.0, rng) == 300.0  # Retry-After wins but is capped


def test_factory_errors_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGB_ABSENT", raising=False)
    cases = [
        ({"backend": "gpt"}, "generators.x.backend"),
        ({"model": "m"}, "generators.x.backend"),
        ({"backend": "openai"}, "generators.x.model"),
        ({"backend": "openai", "model": "m", "concurency": 4}, "generators.x.concurency"),
        ({"backend": "openai", "model": "m", "concurrency": 0}, "generators.x.concurrency"),
        ({"backend": "openai", "model": "m", "api_key_env": "AGB_ABSENT"}, "generators.x.api_key_env"),
        ({"backend": "openai", "model": "gpt-4o", "api_key_env": None}, "generators.x.api_key_env"),
        ({"backend": "anthropic", "model": "c", "max_retries": -1}, "generators.x.max_retries"),
        ({"backend": "transformers", "model_dir": str(tmp_path)}, "generators.x.model_dir"),
        (
            {"backend": "vllm", "model_dir": str(tmp_path), "tensor_parallel_size": 0},
            "generators.x.model_dir",
        ),
    ]
    for spec, bad_key in cases:
        with pytest.raises(ConfigError) as err:
            make_backend(spec, key="generators.x")
        assert err.value.key == bad_key, (spec, str(err.value))
    with pytest.raises(ConfigError) as err:  # a key pasted where the variable name belongs is not echoed
        make_backend({"backend": "openai", "model": "m", "api_key_env": "sk-live-abc123"}, key="g")
    assert "sk-live-abc123" not in str(err.value)


def test_factory_builds_configured_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGB_K", CANARY)
    spec = {"backend": "openai", "model": "gpt-4o", "api_key_env": "AGB_K", "concurrency": 3,
            "max_retries": 2, "requests_per_minute": 500, "tokens_per_minute": 30000, "timeout_s": 9,
            "label": "GPT-4o"}  # fmt: skip
    b = make_backend(spec, key="generators.gpt-4o")
    assert isinstance(b, OpenAIBackend) and b.base_url == "https://api.openai.com/v1"
    assert (b.concurrency, b.policy.max_attempts, b.timeout_s) == (3, 3, 9)
    a = make_backend({"backend": "anthropic", "model": "claude-3-5-sonnet-20240620", "api_key_env": "AGB_K"})
    assert isinstance(a, AnthropicBackend) and CANARY not in repr(a) and CANARY not in repr(vars(a))


def test_vllm_is_imported_lazily(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys, agorabench.llm.vllm_backend, agorabench.llm.factory; print('vllm' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        == "False\n"
    )
    (tmp_path / "config.json").write_text("{}")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match=r"vllm is not installed.*envs/vllm\.yaml"):
            make_backend({"backend": "vllm", "model_dir": str(tmp_path)}, key="students.s")
    else:
        pytest.skip("vllm is installed here; its engine is exercised on GPU machines")


def test_outcome_mix_is_reproducible() -> None:
    faults = Faults(rate_429=0.2, rate_500=0.1, seed=11)
    mixes = []
    for _ in range(2):
        with FaultServer(faults) as srv:
            backend = OpenAIBackend(model="m", base_url=srv.url, api_key_env=None, max_retries=9, **FAST)
            out = sorted((c.id, c.attempts) for c in backend.complete(_requests(30)))
            mixes.append((out, Counter(srv.ledger.snapshot()["outcomes"])))
    assert mixes[0] == mixes[1]


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with FaultServer(Faults()) as srv:
        monkeypatch.setenv("AGB_BASE_URL", srv.url)
        spec = {"backend": "openai", "model": "llama", "base_url_env": "AGB_BASE_URL", "price": {"x": 1}}
        [c] = make_backend(spec, key="generators.llama").complete(_requests(1))
        assert c.finish_reason == "stop" and c.text == "echo: q question 0"
    monkeypatch.delenv("AGB_BASE_URL")
    with pytest.raises(ConfigError) as err:
        make_backend(spec, key="generators.llama")
    assert err.value.key == "generators.llama.base_url_env"


def test_project_configs_are_accepted() -> None:
    import yaml

    from agorabench.llm.factory import NON_BACKEND_KEYS, allowed_keys

    root = Path(__file__).resolve().parents[1] / "config"
    checked = 0
    for name in ("config.yaml", "demo.yaml"):
        cfg = yaml.safe_load((root / name).read_text())
        for section in ("generators", "judges"):
            for model, spec in (cfg.get(section) or {}).items():
                local = spec["backend"] in ("transformers", "vllm")  # the workflow adds model_dir
                keys = set(spec) - {"backend"} - NON_BACKEND_KEYS | ({"model_dir"} if local else set())
                assert keys <= allowed_keys(spec["backend"]), f"{name}: {section}.{model}"
                checked += 1
    assert checked >= 5
