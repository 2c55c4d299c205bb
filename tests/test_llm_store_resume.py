"""kill -9 and resume: the call store never pays twice for a call it has stored.

A child process runs CallStore.run over N requests against the fault server (in this process), and is
SIGKILLed at several moments, once in the middle of writing a row. Definitions used below:

- completed call: a request whose row was durably in the store when the process died;
- calls repeated after a kill: completed calls that reached the server again after the restart.
  This must be 0 at every kill;
- in-flight repeats: requests the server answered before the kill whose answer had not been stored
  yet (at most `concurrency` of them, plus the row being torn); these are asked again, and that is
  the only way a call is paid twice.
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
from servers.fault_server import Faults, FaultServer, request_key

from agorabench.errors import DataError
from agorabench.llm.base import Request, Sampling
from agorabench.llm.openai_backend import OpenAIBackend
from agorabench.llm.store import CallStore, cached_complete, run_stores

N = 40
CONCURRENCY = 4
PAID = ("ok", "client_gone")  # answers the server computed: a provider bills both

DRIVER = textwrap.dedent(
    """
    import json, os, sys, time
    from agorabench.llm.base import Request, Sampling
    from agorabench.llm.openai_backend import OpenAIBackend
    from agorabench.llm.store import CallStore

    url, path = sys.argv[1], sys.argv[2]
    n, tear_at, concurrency = (int(a) for a in sys.argv[3:6])

    class TearingStore(CallStore):
        appended = 0

        def _append(self, fh, row):
            self.appended += 1
            if self.appended != tear_at:
                return super()._append(fh, row)
            data = (json.dumps(row) + "\\n").encode()
            fh.write(data[: len(data) // 2])  # half a row is on disk...
            fh.flush()
            os.fsync(fh.fileno())
            print("TORN", flush=True)
            time.sleep(60)  # ...when the test kills us

    msgs = [({"role": "user", "content": f"resume test {i}"},) for i in range(n)]
    reqs = [Request(f"req-{i:03d}", m, Sampling(max_tokens=16)) for i, m in enumerate(msgs)]
    backend = OpenAIBackend(model="echo", base_url=url, api_key_env=None, concurrency=concurrency,
                            timeout_s=10, max_retries=20, backoff_base_s=0.01, backoff_max_s=0.05)
    for req, comp in TearingStore(path).run(backend, reqs):
        print("STORED", req.id, comp.attempts, flush=True)
    print("DONE", flush=True)
    """
)


def _requests() -> list[Request]:
    msgs = [({"role": "user", "content": f"resume test {i}"},) for i in range(N)]
    return [Request(f"req-{i:03d}", m, Sampling(max_tokens=16)) for i, m in enumerate(msgs)]


def _stored_ids(path: Path) -> list[str]:
    """Ids of the complete rows (a torn last line is not a row)."""
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_bytes().split(b"\n")[:-1]]


def _run_child(driver: Path, url: str, store: Path, *, kill_after: int | None, tear_at: int = 0) -> bool:
    """Run the driver; SIGKILL it once `kill_after` rows are stored (or when it is mid-write)."""
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    args = [sys.executable, str(driver), url, str(store), str(N), str(tear_at), str(CONCURRENCY)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    stored, killed = 0, False
    assert proc.stdout is not None
    for line in proc.stdout:
        stored += line.startswith("STORED")
        if line.startswith("TORN") or (kill_after is not None and stored >= kill_after):
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert killed or proc.returncode == 0
    return killed


@pytest.mark.slow
def test_kill9_resume_never_repeats_completed_calls(tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    store = tmp_path / "calls.jsonl"
    key_of = {request_key([dict(m) for m in r.messages]): r.id for r in _requests()}
    # (rows stored before the kill, which append to tear); the last phase runs to the end.
    phases = [(5, 0), (None, 4), (10, 0), (8, 0), (None, 0)]
    repeated_completed, in_flight_repeats, torn_seen = [], [], False
    with FaultServer(Faults(latency_s=0.08, rate_500=0.1, rate_429=0.05, retry_after_s=0.01, seed=5)) as srv:
        ledger = srv.ledger
        for kill_after, tear_at in phases:
            done_before = set(_stored_ids(store))
            mark = len(ledger.arrivals)
            answered = {key_of[e["key"]] for e in ledger.events if e["outcome"] in PAID}
            killed = _run_child(driver, srv.url, store, kill_after=kill_after, tear_at=tear_at)
            assert ledger.settle()  # answers the dead child never read are in the ledger too
            asked_again = {key_of[k] for k in ledger.arrivals[mark:]}
            repeated_completed.append(len(asked_again & done_before))
            in_flight_repeats.append(len(asked_again & (answered - done_before)))
            if tear_at:
                raw = store.read_bytes()
                torn_seen = not raw.endswith(b"\n")
                assert killed and torn_seen, "the kill must leave half a row on disk"
        outcomes = ledger.snapshot()["outcomes"]
        paid = {k: sum(ledger.count(k, o) for o in PAID) for k in key_of}

    print(f"repeated completed calls per kill: {repeated_completed}; in-flight repeats: {in_flight_repeats}; "
          f"server outcomes: {outcomes}")  # fmt: skip
    ids = _stored_ids(store)
    assert store.read_bytes().endswith(b"\n")
    assert len(ids) == N and len(set(ids)) == N  # every request exactly once, no duplicate rows
    assert repeated_completed == [0] * len(phases)  # calls repeated after a kill: 0
    assert max(in_flight_repeats) <= CONCURRENCY
    assert sum(paid.values()) - N == sum(in_flight_repeats)  # the only double payments
    assert outcomes.get("500", 0) + outcomes.get("429", 0) > 0
    rows = {r["id"]: r for r in map(json.loads, store.read_text().splitlines())}
    for i in range(N):
        assert rows[f"req-{i:03d}"]["text"] == f"echo: resume test {i}"


def test_torn_tail_is_dropped_and_rewritten(tmp_path: Path) -> None:
    store = tmp_path / "calls.jsonl"
    reqs = _requests()[:6]
    with FaultServer(Faults()) as srv:
        backend = OpenAIBackend(model="echo", base_url=srv.url, api_key_env=None)
        cached_complete(backend, reqs[:3], store)
        with store.open("ab") as fh:
            fh.write(b'{"id": "req-003", "text": "ech')  # what a kill mid-write leaves
        s = CallStore(store)
        assert set(s.done) == {"req-000", "req-001", "req-002"}
        out = cached_complete(backend, reqs, store)
        assert [out[r.id].text for r in reqs] == [f"echo: resume test {i}" for i in range(6)]
        assert srv.ledger.snapshot()["received"] == 6
    ids = _stored_ids(store)
    assert sorted(ids[:3]) == ["req-000", "req-001", "req-002"] and sorted(ids) == [r.id for r in reqs]


def test_second_writer_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "calls.jsonl"
    reqs = _requests()[:8]
    with FaultServer(Faults(latency_s=0.05)) as srv:
        backend = OpenAIBackend(model="echo", base_url=srv.url, api_key_env=None, concurrency=2)
        first = CallStore(store).run(backend, reqs)
        next(first)  # holds the lock while it runs
        with pytest.raises(DataError, match="another process is writing"):
            next(CallStore(store).run(backend, reqs))
        rest = list(first)
        assert len(rest) == 7 and len(CallStore(store)) == 8
        assert srv.ledger.snapshot()["received"] == 8


def test_failed_calls_are_kept_then_retried(tmp_path: Path) -> None:
    store = tmp_path / "calls.jsonl"
    reqs = _requests()[:3]
    with FaultServer(Faults(fail_first=1, fail_kind="500")) as srv:
        once = OpenAIBackend(model="echo", base_url=srv.url, api_key_env=None, max_retries=0)
        first = cached_complete(once, reqs, store)
        assert {c.finish_reason for c in first.values()} == {"error"}
        assert {c.attempts for c in first.values()} == {1}
        second = cached_complete(once, reqs, store)  # errors are retried; the server now answers
        assert {c.finish_reason for c in second.values()} == {"stop"}
        assert cached_complete(once, reqs, store) == second  # and nothing is asked a third time
        assert srv.ledger.snapshot()["received"] == 6
    assert len(store.read_text().splitlines()) == 6  # 3 error rows (the ledger of attempts) + 3 results


def test_several_stores_share_one_backend_call(tmp_path: Path) -> None:
    reqs = _requests()[:6]
    a, b = CallStore(tmp_path / "a.jsonl"), CallStore(tmp_path / "b.jsonl")
    with FaultServer(Faults()) as srv:
        backend = OpenAIBackend(model="echo", base_url=srv.url, api_key_env=None)
        cached_complete(backend, reqs[:1], tmp_path / "a.jsonl")  # one already stored in a
        a = CallStore(tmp_path / "a.jsonl")
        got = [
            (store.path.name, req.id) for store, req, _ in run_stores(backend, [(a, reqs[:3]), (b, reqs[3:])])
        ]
        assert sorted(got) == [("a.jsonl", r.id) for r in reqs[1:3]] + [("b.jsonl", r.id) for r in reqs[3:]]
        assert srv.ledger.snapshot()["received"] == 6  # 1 before, then 5: nothing asked twice
        # one request pending in two stores: asked once, stored (and yielded) for each
        shared = list(run_stores(backend, [(CallStore(tmp_path / "c.jsonl"), reqs[:1]),
                                           (CallStore(tmp_path / "d.jsonl"), reqs[:1])]))  # fmt: skip
        names = [(s.path.name, r.id) for s, r, _ in shared]
        assert names == [(f, reqs[0].id) for f in ("c.jsonl", "d.jsonl")]
        assert srv.ledger.snapshot()["received"] == 7
    assert sorted(_stored_ids(tmp_path / "a.jsonl")) == [r.id for r in reqs[:3]]
    assert sorted(_stored_ids(tmp_path / "b.jsonl")) == [r.id for r in reqs[3:]]
