"""Progress of long jobs (agorabench.progress): the counts and dollars each bar reports, read from its
`on_update` tallies (not from a terminal), for inference, benchmark judging and intrinsic judging."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from servers.fault_server import Faults, FaultServer

from agorabench import progress
from agorabench.analysis import intrinsic
from agorabench.errors import ConfigError
from agorabench.evaluation.judging import run_judge
from agorabench.evaluation.predict import BenchmarkTask, predict_benchmark
from agorabench.llm.base import Backend, Completion, Request, Sampling
from agorabench.llm.factory import make_backend
from agorabench.llm.store import CallStore
from agorabench.progress import Tally, backend_price, cost_usd, run_with_progress

ROOT = Path(__file__).resolve().parents[1]
PRICE = {"input_per_mtok": 2.5, "output_per_mtok": 10.0, "date": "test"}
CANARY = "sk-canary-progress-5d1e"


class Fixed(Backend):
    """Answers every request with `in_tokens` input and `out_tokens` output tokens; counts its calls."""

    name = "fixed"
    model = "fixed-model"

    def __init__(self, in_tokens: int = 100, out_tokens: int = 7, price: dict | None = None) -> None:
        self.in_tokens, self.out_tokens, self.price, self.calls = in_tokens, out_tokens, price, 0

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for r in requests:
            self.calls += 1
            yield Completion(r.id, "ok", "stop", self.in_tokens, self.out_tokens, model=self.model)


def _requests(n: int, tag: str = "q") -> list[Request]:
    s = Sampling(max_tokens=16)
    return [Request(f"{tag}{i}", ({"role": "user", "content": f"{tag} question {i}"},), s) for i in range(n)]


def test_stored_calls_are_done_at_once_and_cost_nothing(tmp_path: Path) -> None:
    reqs = _requests(8)
    store = CallStore(tmp_path / "calls.jsonl")
    for _ in store.run(Fixed(), reqs[:3]):  # an earlier, killed run paid for three
        pass
    backend, seen = Fixed(price=PRICE), []
    final = run_with_progress(CallStore(store.path), backend, reqs, "test", on_update=seen.append)
    assert seen[0] == Tally(done=3, total=8, calls=0, input_tokens=0, output_tokens=0, usd=0.0)
    assert backend.calls == 5
    assert final == Tally(8, 8, 5, 500, 35, pytest.approx(500 / 1e6 * 2.5 + 35 / 1e6 * 10.0))
    assert [t.done for t in seen] == sorted(t.done for t in seen)  # never goes back
    again = run_with_progress(CallStore(store.path), Fixed(price=PRICE), reqs, "test")
    assert again == Tally(8, 8, 0, 0, 0, 0.0)  # a finished job resumes for free


def test_without_a_price_the_bar_shows_no_dollars(tmp_path: Path) -> None:
    final = run_with_progress(CallStore(tmp_path / "c.jsonl"), Fixed(), _requests(4), "test")
    assert (final.done, final.calls, final.usd) == (4, 4, None)
    assert cost_usd(10, 10, None) is None


def test_batch_mode_counts_the_batch_price(tmp_path: Path) -> None:
    batch = Fixed(price=PRICE)
    batch.mode, batch.batch_discount = "batch", 0.5  # type: ignore[attr-defined]
    batch.use_ledger = lambda path: None  # type: ignore[attr-defined]  # the store hands batches a ledger
    assert backend_price(batch)["input_per_mtok"] == pytest.approx(1.25)
    online = run_with_progress(CallStore(tmp_path / "a.jsonl"), Fixed(price=PRICE), _requests(4), "t")
    halved = run_with_progress(CallStore(tmp_path / "b.jsonl"), batch, _requests(4), "t")
    assert halved.usd == pytest.approx(online.usd / 2) and halved.usd > 0


def test_make_backend_carries_the_configured_price() -> None:
    spec = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_env": None}
    with make_backend(spec | {"price": PRICE}, key="judges.j") as priced, make_backend(spec) as bare:
        assert priced.price == PRICE and bare.price is None
    with make_backend(spec | {"price": PRICE, "mode": "batch"}, key="judges.j") as batch:
        assert backend_price(batch)["output_per_mtok"] == pytest.approx(10.0 * (1 - batch.batch_discount))


def test_a_price_without_its_rates_is_an_error_naming_the_entry(tmp_path: Path) -> None:
    backend = Fixed(price={"date": "2024-12"})
    backend.key = "judges.gpt-4o"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"'judges\.gpt-4o\.price': has no input_per_mtok, output_per_mtok"):
        run_with_progress(CallStore(tmp_path / "c.jsonl"), backend, _requests(1), "t")
    assert backend.calls == 0  # refused before any call is paid


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[list[Tally]]:
    """The tallies of every bar the code under test opens, one list per bar."""
    seen: list[list[Tally]] = []

    class Recording(progress.Progress):
        def __init__(self, *args, **kwargs) -> None:
            seen.append([])
            super().__init__(*args, **(kwargs | {"on_update": seen[-1].append}))

    monkeypatch.setattr(progress, "Progress", Recording)
    return seen


def _paid(store_path: Path) -> float:
    """Dollars at PRICE for every call in a store: what the bar must have shown at the end."""
    rows = [json.loads(line) for line in store_path.read_text().splitlines()]
    tokens_in, tokens_out = sum(r["input_tokens"] for r in rows), sum(r["output_tokens"] for r in rows)
    assert tokens_in > 0 and tokens_out > 0
    return cost_usd(tokens_in, tokens_out, PRICE)  # type: ignore[return-value]


def _inference(backend: Backend, tmp_path: Path) -> Path:
    items = tmp_path / "items.jsonl"
    items.write_text(
        "".join(json.dumps({"id": f"i{k}", "prompt": f"Add {k} and 1."}) + "\n" for k in range(6))
    )
    out = tmp_path / "gsm8k" / "predictions.jsonl"
    out.parent.mkdir()
    task = BenchmarkTask("gsm8k", str(items), str(out), {"max_tokens": 16})
    predict_benchmark(task, "generators/api-model", lambda: backend)
    return out.with_name("predictions.calls.jsonl")


def _judging(backend: Backend, tmp_path: Path) -> Path:
    cache = tmp_path / "alpaca_eval" / "judge_calls.jsonl"
    run_judge(backend, _requests(6, "pair"), cache)
    return cache


def _intrinsic(backend: Backend, tmp_path: Path) -> Path:
    records = [{"id": f"r{k}", "instruction": f"Say {k}.", "response": f"{k}."} for k in range(6)]
    template = intrinsic.load_rubric(ROOT / "config/intrinsic/response_quality.txt", "response_quality")
    store = CallStore(tmp_path / "set.judge_calls.jsonl")
    sampling = Sampling(max_tokens=16)
    intrinsic.judge_aspect(
        backend, records, template, aspect="response_quality", sampling=sampling, store=store
    )
    return store.path


@pytest.mark.parametrize("job", [_inference, _judging, _intrinsic], ids=["inference", "judging", "intrinsic"])
def test_each_long_job_reports_counts_and_dollars(job, bars, tmp_path, monkeypatch, capsys) -> None:
    """Through the fault server (429s and 500s retried) with a priced entry, as a rule builds it."""
    monkeypatch.setenv("PROGRESS_TEST_KEY", CANARY)
    with FaultServer(Faults(rate_429=0.2, rate_500=0.1, retry_after_s=0.01, seed=3, api_key=CANARY)) as srv:
        spec = {"backend": "openai", "model": "api-model", "base_url": srv.url, "price": PRICE,
                "api_key_env": "PROGRESS_TEST_KEY", "backoff_base_s": 0.01, "max_retries": 8}  # fmt: skip
        with make_backend(spec, key="judges.api-model") as backend:
            store_path = job(backend, tmp_path)
    [tallies] = bars
    final = tallies[-1]
    assert (final.done, final.total, final.calls) == (6, 6, 6)
    assert final.usd == pytest.approx(_paid(store_path))
    err = capsys.readouterr().err
    assert "6/6" in err and CANARY not in err  # the bar went to stderr, without the key


def test_generation_counts_accepted_instances_and_the_calls_it_paid(bars, tmp_path) -> None:
    from test_generation_run import PRICE as GEN_PRICE
    from test_generation_run import CannedBackend, flaky_until_attempt, run

    stats = run(tmp_path, CannedBackend(flaky_until_attempt(1)), n=6, price=GEN_PRICE, progress=True)
    final = bars[0][-1]
    assert (final.done, final.total) == (stats["valid"], 6) and stats["calls"] > stats["valid"]
    assert final.calls == stats["calls"] and final.usd == pytest.approx(stats["cost_usd_new"])
    again = run(tmp_path, CannedBackend(flaky_until_attempt(1)), n=6, price=GEN_PRICE, progress=True, tag="b")
    resumed = bars[1][-1]
    assert (resumed.done, resumed.calls, resumed.usd) == (again["valid"], 0, 0.0)  # all from the store
