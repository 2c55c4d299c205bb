"""Progress of a long job: one tqdm bar on stderr with done/total, the rate, the ETA and $ so far.

Generation, student and generator inference, benchmark judging and intrinsic judging show the same bar.
Dollars count only calls made in this run (a completion read back from the call store was paid before),
at the model's price (`price:` of its config entry, $ per million input / output tokens; the batch price
in batch mode); without a price the bar shows no dollars. Under SLURM stderr is the job's log, so the bar
redraws at most every `LOG_INTERVAL_S` there. `on_update` receives a `Tally` after every change (tests
read the counts from it, not from a terminal). The bar shows counts and model names only, never a key.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from agorabench.errors import ConfigError
from agorabench.llm.base import Backend, Completion, Request
from agorabench.llm.store import CallStore, run_stores

TTY_INTERVAL_S = 0.5
LOG_INTERVAL_S = 30.0  # a redraw is one more line fragment in a log file
PRICE_KEYS = ("input_per_mtok", "output_per_mtok")


@dataclass(frozen=True)
class Tally:
    """What a job has done so far: units done of total, calls made in this run and what they cost."""

    done: int
    total: int
    calls: int  # completions received from the backend in this run (not read from the store)
    input_tokens: int  # of those calls
    output_tokens: int
    usd: float | None  # None without a price


def cost_usd(input_tokens: int, output_tokens: int, price: dict[str, Any] | None) -> float | None:
    """Dollars for the tokens at `price` ($ per million input / output tokens); None without a price."""
    if not price:
        return None
    return input_tokens / 1e6 * price["input_per_mtok"] + output_tokens / 1e6 * price["output_per_mtok"]


def backend_price(backend: Backend) -> dict[str, Any] | None:
    """The price of `backend`'s calls: its config entry's `price`, at the batch price in batch mode."""
    price = getattr(backend, "price", None)
    missing = [k for k in PRICE_KEYS if price and k not in price]
    if missing:
        key = getattr(backend, "key", "<model>")
        raise ConfigError(f"{key}.price", f"has no {', '.join(missing)} (needs {', '.join(PRICE_KEYS)})")
    if price and getattr(backend, "mode", "online") == "batch":
        from agorabench.llm.batch import batch_price

        return batch_price(price, getattr(backend, "batch_discount", 0.0))
    return price


class Progress:
    """A progress bar counting `unit`s done of `total`, with the tokens and dollars of new calls."""

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        unit: str = "call",
        price: dict[str, Any] | None = None,
        enabled: bool = True,
        on_update: Callable[[Tally], None] | None = None,
        file: TextIO | None = None,
    ) -> None:
        self.total, self.price, self.on_update = total, price, on_update
        self.done = self.calls = self.input_tokens = self.output_tokens = 0
        self.extra: dict[str, str] = {}
        from tqdm import tqdm  # here, not at the top: scorers import this module when the DAG is planned

        out = file or sys.stderr
        interval = TTY_INTERVAL_S if out.isatty() else LOG_INTERVAL_S
        self.bar = tqdm(
            total=total, desc=desc, unit=unit, file=out, disable=not enabled, mininterval=interval,
            dynamic_ncols=True,
        )  # fmt: skip

    def tally(self) -> Tally:
        usd = cost_usd(self.input_tokens, self.output_tokens, self.price)
        return Tally(self.done, self.total, self.calls, self.input_tokens, self.output_tokens, usd)

    def call(self, completion: Completion, from_store: bool = False) -> None:
        """A completion arrived; only a new one (not from the store) adds calls, tokens and dollars."""
        if not from_store:
            self.calls += 1
            self.input_tokens += completion.input_tokens
            self.output_tokens += completion.output_tokens
        self._changed()

    def advance(self, n: int = 1) -> None:
        """`n` more units done (a call answered, an instance accepted)."""
        self.done += n
        self.bar.update(n)
        self._changed()

    def note(self, **fields: str) -> None:
        """Further fields shown on the bar (e.g. the share of valid outputs)."""
        self.extra.update(fields)
        self._changed()

    def _changed(self) -> None:
        t = self.tally()
        post = {"calls": str(t.calls), **self.extra}
        if t.usd is not None:
            post["$"] = f"{t.usd:.2f}" if t.usd >= 1 else f"{t.usd:.4f}"
        self.bar.set_postfix(post, refresh=False)
        if self.on_update is not None:
            self.on_update(t)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_with_progress(
    store: CallStore,
    backend: Backend,
    requests: Sequence[Request],
    desc: str,
    on_update: Callable[[Tally], None] | None = None,
) -> Tally:
    """`store.run(backend, requests)` behind a bar of calls: the stored ones count as done at once."""
    return run_stores_with_progress(backend, [(store, requests)], desc, on_update)


def run_stores_with_progress(
    backend: Backend,
    work: Sequence[tuple[CallStore, Sequence[Request]]],
    desc: str,
    on_update: Callable[[Tally], None] | None = None,
) -> Tally:
    """`run_stores(backend, work)` (one backend call for several stores) behind one bar of calls."""
    wanted = sum(len(dict.fromkeys(r.id for r in reqs)) for _, reqs in work)
    with Progress(wanted, desc, price=backend_price(backend), on_update=on_update) as bar:
        bar.advance(wanted - sum(len(store.pending(reqs)) for store, reqs in work))
        for _, _, comp in run_stores(backend, work):
            bar.call(comp)
            bar.advance()
        return bar.tally()
