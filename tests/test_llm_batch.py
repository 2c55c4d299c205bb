"""Batch mode (OpenAI Batch API, Anthropic Message Batches) against the loopback fault server.

The kill -9 matrix: a child process runs CallStore.run over N requests in batch mode and is SIGKILLed at
one stage (before upload, after upload, after the provider created the batch but before the ledger knew
its id, after submit, while polling, while downloading); a second child finishes. The server counts
uploads and creates, and, per request, the results it computed (what a provider bills): every request
must be paid exactly once and the batches created must be exactly the parts needed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from servers.batch_server import BatchFaults, batch_state
from servers.fault_server import FaultServer

from agorabench.errors import ConfigError
from agorabench.evaluation.judging import judge_request, judge_sampling, load_template, run_judge
from agorabench.generation.instances import load_themes
from agorabench.generation.prompts import template_path
from agorabench.generation.run import generate_set
from agorabench.jsonl import read_json, read_jsonl
from agorabench.llm.base import Request, Sampling
from agorabench.llm.batch import BatchLedger, BatchPending, batch_price, ledger_path
from agorabench.llm.batch_factory import main as batch_cli
from agorabench.llm.factory import make_backend
from agorabench.llm.store import CallStore

N = 30
PART = 10  # max_requests per batch: 3 parts
ROOT = Path(__file__).resolve().parents[1]

DRIVER = textwrap.dedent(
    """
    import sys, time
    from agorabench.llm.base import Request, Sampling
    from agorabench.llm.batch import BatchBackend
    from agorabench.llm.factory import make_backend
    from agorabench.llm.store import CallStore

    kind, url, store, stage = sys.argv[1:5]
    n, part = int(sys.argv[5]), int(sys.argv[6])

    def checkpoint(self, name, p):
        print("STAGE", name, flush=True)
        if name == stage:
            time.sleep(60)  # the test kills us here

    BatchBackend.checkpoint = checkpoint
    spec = {"backend": kind, "model": "echo", "base_url": url, "mode": "batch", "max_retries": 3,
            "backoff_base_s": 0.01, "batch": {"wait": "poll", "poll_s": 0.02, "max_requests": part}}
    backend = make_backend(spec, key="generators.batch-test")
    backend.use_ledger(store)
    msgs = [({"role": "user", "content": f"batch test {i}"},) for i in range(n)]
    reqs = [Request(f"req-{i:03d}", m, Sampling(max_tokens=16)) for i, m in enumerate(msgs)]
    for req, comp in CallStore(store).run(backend, reqs):
        print("STORED", req.id, flush=True)
    print("DONE", flush=True)
    """
)
STAGES = ("prepared", "uploaded", "created", "submitted", "polled", "downloading")


def _url(srv: FaultServer, kind: str) -> str:
    return srv.url if kind == "openai" else srv.root


def _child(driver: Path, kind: str, url: str, store: Path, stage: str | None) -> bool:
    """Run the driver; SIGKILL it at `stage` (downloading: after 4 rows are stored). True if killed."""
    args = [sys.executable, str(driver), kind, url, str(store), stage or "-", str(N), str(PART)]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"}
    )
    stored, killed = 0, False
    assert proc.stdout is not None
    for line in proc.stdout:
        stored += line.startswith("STORED")
        if line.strip() == f"STAGE {stage}" or (stage == "downloading" and stored >= 4):
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert killed or proc.returncode == 0
    return killed


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("stage", STAGES)
def test_kill9_at_each_stage_pays_once(tmp_path: Path, kind: str, stage: str) -> None:
    if kind == "anthropic" and stage == "uploaded":
        pytest.skip("Anthropic batches take their requests inline: there is no upload stage")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    store = tmp_path / "calls.jsonl"
    with FaultServer() as srv:
        state = batch_state(srv)
        state.faults = BatchFaults(polls=4)
        assert _child(driver, kind, _url(srv, kind), store, stage)
        before = dict(state.counts)
        assert not _child(driver, kind, _url(srv, kind), store, None)
        counts, paid = dict(state.counts), dict(state.paid)
    resumed = {k: counts.get(k, 0) - before.get(k, 0) for k in counts}
    print(f"{kind} killed at {stage}: server counts {counts}; the resumed run made {resumed}")
    rows = [json.loads(x) for x in store.read_text().splitlines()]
    assert len(rows) == N and len({r["id"] for r in rows}) == N  # every request stored once
    assert {r["id"]: r["text"] for r in rows} == {f"req-{i:03d}": f"echo: batch test {i}" for i in range(N)}
    assert counts["creates"] == N // PART  # 0 duplicate submissions
    assert sorted(paid.values()) == [1] * N  # every request computed (billed) exactly once
    if kind == "openai":
        assert counts["uploads"] == N // PART  # an upload is recorded before the batch is made
    ledger = BatchLedger(ledger_path(store))
    assert all(p.collected and p.batch_id for p in ledger.parts.values()) and len(ledger.parts) == N // PART


def _requests(n: int, reject: int | None = None) -> list[Request]:
    return [
        Request(f"r{i:03d}", ({"role": "user", "content": f"hi {i}" + (" [[400]]" if i == reject else "")},),
                Sampling(max_tokens=8))
        for i in range(n)
    ]  # fmt: skip


def _batch(srv: FaultServer, kind: str, store: Path, **opts) -> object:
    spec = {"backend": kind, "model": "echo", "base_url": _url(srv, kind), "mode": "batch", "batch": opts}
    backend = make_backend(spec, key="judges.j")
    backend.use_ledger(store)  # type: ignore[attr-defined]
    return backend


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_wait_exit_names_the_batch_then_resumes(tmp_path: Path, kind: str) -> None:
    store = tmp_path / "calls.jsonl"
    reqs = _requests(12)
    with FaultServer() as srv:
        state = batch_state(srv)
        state.faults = BatchFaults(polls=3)
        backend = _batch(srv, kind, store, wait="exit", max_requests=5)
        runs = 0
        while CallStore(store).pending(reqs):
            runs += 1
            try:
                list(CallStore(store).run(backend, reqs))
            except BatchPending as exc:
                prefix = "batch_" if kind == "openai" else "msgbatch_"
                assert (
                    f"{prefix}000000" in str(exc)
                    and "judges.j" in str(exc)
                    and "run snakemake again" in str(exc)
                )
        assert runs == 3 and state.counts["creates"] == 3 and sorted(state.paid.values()) == [1] * 12


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_expired_and_failed_requests_are_resubmitted_alone(tmp_path: Path, kind: str) -> None:
    store = tmp_path / "calls.jsonl"
    reqs = _requests(20, reject=3)
    with FaultServer() as srv:
        state = batch_state(srv)
        state.faults = BatchFaults(polls=1, expire_first=1, error_rate=0.2, seed=3)
        backend = _batch(srv, kind, store, wait="poll", poll_s=0.01, max_requests=10)
        list(CallStore(store).run(backend, reqs))
        paid, lines = dict(state.paid), sum(len(v) for v in state.inputs.values())
    s = CallStore(store)
    assert len(s) == 20 and sorted(paid.values()) == [1] * 19  # 19 paid once, the rejected one never
    rejected = s.get("r003")
    assert rejected.finish_reason == "error" and "invalid_request_error" in rejected.error
    assert rejected.attempts == 1  # a 400 is not resubmitted
    expired = [f"r{i:03d}" for i in range(5, 10)]  # the second half of the first (expired) batch
    assert all(s.get(r).attempts == 2 and s.get(r).text.startswith("echo:") for r in expired)
    # only failed requests go into later batches: one batch line per attempt, no more
    assert lines == sum(s.get(r.id).attempts for r in reqs) > 20


def test_openai_failed_validation_resubmits_then_gives_up(tmp_path: Path) -> None:
    store = tmp_path / "calls.jsonl"
    with FaultServer() as srv:
        state = batch_state(srv)
        state.faults = BatchFaults(polls=1, fail_first=10)
        backend = _batch(srv, "openai", store, wait="poll", poll_s=0.01, max_resubmits=2)
        out = {c.id: c for _, c in CallStore(store).run(backend, _requests(4))}
        assert state.counts["creates"] == 3 and not state.paid  # the first + 2 resubmissions, none ran
    assert {c.finish_reason for c in out.values()} == {"error"}
    assert all("failed" in c.error and c.attempts == 3 for c in out.values())


def test_cancel_on_request(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "calls.jsonl"
    with FaultServer() as srv:
        state = batch_state(srv)
        state.faults = BatchFaults(polls=5)
        backend = _batch(srv, "anthropic", store, wait="exit")
        with pytest.raises(BatchPending):
            list(CallStore(store).run(backend, _requests(3)))
        cfg = tmp_path / "c.yaml"  # the command line: status, then cancel on request
        cfg.write_text(
            yaml.safe_dump({"judges": {"j": {"backend": "anthropic", "model": "echo", "base_url": srv.root}}})
        )
        for action in ("status", "cancel"):
            assert batch_cli([action, "--config", str(cfg), "--model", "judges.j", str(store)]) == 0
        out = capsys.readouterr().out
        assert "'msgbatch_000000': 'in_progress" in out and "cancel ['msgbatch_000000']" in out
        assert state.counts["cancels"] == 1
        assert backend.cancel() == []  # type: ignore[attr-defined]  # nothing left running
        out = {c.id: c for _, c in CallStore(store).run(backend, _requests(3))}
        assert state.counts["creates"] == 1 and not state.paid
    assert all(c.finish_reason == "error" and "canceled" in c.error for c in out.values())


def test_split_by_requests_and_bytes(tmp_path: Path) -> None:
    with FaultServer() as srv:
        backend = _batch(srv, "openai", tmp_path / "c.jsonl", max_requests=7)
        line = len(json.dumps(backend.provider.entry(_requests(1)[0]))) + 1  # type: ignore[attr-defined]
        assert [len(p) for p in backend._split(_requests(20))] == [7, 7, 6]  # type: ignore[attr-defined]
        by_bytes = _batch(srv, "openai", tmp_path / "c.jsonl", max_bytes=3 * line + 2)
        assert [len(p) for p in by_bytes._split(_requests(8))] == [3, 3, 2]  # type: ignore[attr-defined]
        assert backend.max_requests == 7 and by_bytes.max_requests == 50_000  # type: ignore[attr-defined]


def test_config_errors_name_the_key() -> None:
    base = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"}
    with pytest.raises(ConfigError, match=r"generators.g.mode"):
        make_backend(base | {"mode": "bulk"}, key="generators.g")
    with pytest.raises(ConfigError, match=r"generators.g.batch.wiat"):
        make_backend(base | {"mode": "batch", "batch": {"wiat": "exit"}}, key="generators.g")
    with pytest.raises(ConfigError, match=r"generators.g.batch.wait"):
        make_backend(base | {"mode": "batch", "batch": {"wait": "sleep"}}, key="generators.g")
    with pytest.raises(ConfigError, match=r"needs backend openai or anthropic"):
        make_backend({"backend": "vllm", "model_dir": "x", "mode": "batch"}, key="generators.g")
    with pytest.raises(ConfigError, match=r"price.batch_discount"):
        batch_price({"input_per_mtok": 2.5, "output_per_mtok": 10.0, "batch_discount": 1.5})
    half = batch_price({"input_per_mtok": 2.5, "output_per_mtok": 10.0, "batch_discount": 0.5})
    assert half["input_per_mtok"] == 1.25 and half["output_per_mtok"] == 5.0  # type: ignore[index]


SEEDS = [
    {"id": f"s{i}", "instruction": f"What is {i} + {i}?", "response": f"{2 * i}. [RESULT] {2 * i} [/RESULT]"}
    for i in range(4)
]  # fmt: skip
TEMPLATE = template_path(ROOT / "config" / "prompts", "agorabench", "math", "instance_generation")


def _generate(tmp: Path, backend, tag: str, chunk_size: int = 1024) -> dict:
    themes, first_words = load_themes(ROOT / "config" / "themes.yaml")
    return generate_set(
        generator="gen", backend=backend, sampling=Sampling(temperature=1.0, max_tokens=4096), domain="math",
        method="instance_generation", variant="agorabench", validation="official",
        template_path=str(TEMPLATE),
        seeds=SEEDS, themes=themes["math"], first_words=first_words["math"], n=4, max_attempts=12, seed=0,
        store_path=str(tmp / tag / "calls.jsonl"), out_path=str(tmp / tag / "data.jsonl"),
        stats_path=str(tmp / tag / "stats.json"), progress=False, chunk_size=chunk_size,
        price={"input_per_mtok": 2.5, "output_per_mtok": 10.0, "date": "2024-08-06", "batch_discount": 0.5},
    )  # fmt: skip


def test_generation_and_judging_in_batch_mode_match_online(tmp_path: Path) -> None:
    with FaultServer() as srv:
        batch_state(srv).faults = BatchFaults(polls=2)
        online = make_backend({"backend": "openai", "model": "echo", "base_url": srv.url})
        batch = make_backend({"backend": "openai", "model": "echo", "base_url": srv.url, "mode": "batch",
                              "batch": {"wait": "poll", "poll_s": 0.01}})  # fmt: skip
        a, b = _generate(tmp_path, online, "online"), _generate(tmp_path, batch, "batch", chunk_size=1)
        creates = batch_state(srv).counts["creates"]
        template = load_template(None, "alpaca_eval.txt", ("instruction",))
        vals = [{"instruction": f"q{i}", "output_1": f"a{i}", "output_2": f"b{i}"} for i in range(5)]
        sampling = judge_sampling(0.0, 16)
        reqs = [judge_request(online, template, f"item{i}", "ab", v, sampling) for i, v in enumerate(vals)]
        j_online = run_judge(online, reqs, tmp_path / "j_online.jsonl")
        j_batch = run_judge(batch, reqs, tmp_path / "j_batch.jsonl")
    for key in ("calls", "valid", "rejected", "finish_reasons", "input_tokens", "output_tokens"):
        assert a[key] == b[key], key
    assert b["valid"] == 4  # the echoed meta-prompt passes data-agora's checks
    assert creates == 1  # all valid in round 1: one batch for the round, whatever chunk_size says
    assert read_jsonl(tmp_path / "online" / "data.jsonl") == read_jsonl(tmp_path / "batch" / "data.jsonl")
    assert b["cost_usd"] == pytest.approx(a["cost_usd"] / 2)  # the batch price
    assert read_json(tmp_path / "batch" / "stats.json")["price"]["mode"] == "batch"
    assert {k: (c.text, c.finish_reason) for k, c in j_online.items()} == {
        k: (c.text, c.finish_reason) for k, c in j_batch.items()
    }
    assert (tmp_path / "j_batch.jsonl.batches.jsonl").exists() and not (
        tmp_path / "j_online.jsonl.batches.jsonl"
    ).exists()


def test_the_config_schema_takes_batch_mode() -> None:
    import jsonschema

    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["generators"]["gpt-4o"] |= {"mode": "batch", "batch": {"wait": "poll", "poll_s": 30}}
    config["judges"]["gpt-4o"] |= {"mode": "batch"}
    jsonschema.validate(config, schema)
    config["generators"]["gpt-4o"]["batch"]["wiat"] = "exit"
    with pytest.raises(jsonschema.ValidationError, match="wiat"):
        jsonschema.validate(config, schema)


def test_a_caller_without_a_call_store_runs_online(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with FaultServer() as srv:
        spec = {"backend": "openai", "model": "echo", "base_url": srv.url, "mode": "batch"}
        out = list(make_backend(spec, key="judges.j").complete(_requests(3)))
        assert sorted(c.text for c in out) == ["echo: hi 0", "echo: hi 1", "echo: hi 2"]
        assert srv.ledger.snapshot()["received"] == 3 and not batch_state(srv).counts["creates"]
    assert "judges.j: this caller keeps no batch ledger; its 3 calls run online" in caplog.text


def test_any_caller_of_a_call_store_gets_batch_mode(tmp_path: Path) -> None:
    """Intrinsic-metric judges and Table 7's generator answers call CallStore.run without wiring a ledger:
    the store puts the batch ledger beside itself, so their calls go through the batch API too."""
    store = tmp_path / "calls.jsonl"
    with FaultServer() as srv:
        spec = {
            "backend": "openai",
            "model": "echo",
            "base_url": srv.url,
            "mode": "batch",
            "batch": {"wait": "poll", "poll_s": 0.01},
        }
        backend = make_backend(spec, key="judges.j")
        out = [c for _, c in CallStore(store).run(backend, _requests(4))]
        assert sorted(c.text for c in out) == [f"echo: hi {i}" for i in range(4)]
        assert batch_state(srv).counts["creates"] == 1 and srv.ledger.snapshot()["received"] == 0
    assert backend.ledger_file is not None and backend.ledger_file.parent == tmp_path


def test_every_expired_batch_gets_its_resubmission(tmp_path: Path) -> None:
    store = tmp_path / "calls.jsonl"
    with FaultServer() as srv:
        state = batch_state(srv)
        state.faults = BatchFaults(polls=1, expire_first=3)  # all three first batches expire half-done
        backend = _batch(srv, "openai", store, wait="poll", poll_s=0.01, max_requests=6, max_resubmits=1)
        out = {c.id: c for _, c in CallStore(store).run(backend, _requests(18))}
        assert state.counts["creates"] == 6 and sorted(state.paid.values()) == [1] * 18
    assert {c.finish_reason for c in out.values()} == {"stop"}
    assert sorted(c.attempts for c in out.values()) == [1] * 9 + [2] * 9


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_bad_key_stops_the_run_and_is_never_shown(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers.fault_server import Faults

    from agorabench.llm.base import BackendError

    monkeypatch.setenv("BATCH_TEST_KEY", "sk-wrong-secret-123")
    with FaultServer(Faults(api_key="sk-right")) as srv:
        spec = {"backend": kind, "model": "echo", "base_url": _url(srv, kind), "mode": "batch",
                "api_key_env": "BATCH_TEST_KEY", "max_retries": 0}  # fmt: skip
        backend = make_backend(spec, key="judges.j")
        backend.use_ledger(tmp_path / "calls.jsonl")  # type: ignore[attr-defined]
        with pytest.raises(BackendError, match="HTTP 401") as exc:
            list(CallStore(tmp_path / "calls.jsonl").run(backend, _requests(2)))
    assert "sk-wrong-secret-123" not in str(exc.value) and "[REDACTED]" in str(exc.value)
    assert "sk-wrong-secret-123" not in ledger_path(tmp_path / "calls.jsonl").read_text()
