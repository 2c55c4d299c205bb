"""`mode: batch` for a generator or judge: wrap its online backend in a BatchBackend (docs/batch.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agorabench.errors import ConfigError
from agorabench.llm.base import Backend
from agorabench.llm.batch import MODES, BatchBackend, check_batch_options


def make_batch_backend(online: Callable[[], Backend], kind: str, mode: Any, opts: Any, key: str) -> Backend:
    """The `online()` backend for mode online; else the same requests through the provider's batch API."""
    if mode not in MODES:
        raise ConfigError(f"{key}.mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    opts = check_batch_options(opts, f"{key}.batch")
    if mode == "online":
        return online()
    if kind == "openai":
        from agorabench.llm.openai_batch import OpenAIBatch as provider
    elif kind == "anthropic":
        from agorabench.llm.anthropic_batch import AnthropicBatch as provider  # type: ignore[assignment]
    else:
        raise ConfigError(f"{key}.mode", f"batch mode needs backend openai or anthropic, not {kind}")
    return BatchBackend(provider(online()), key=key, **opts)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """`python -m agorabench.llm.batch_factory cancel|status --config C --model generators.NAME STORE...`"""
    import argparse

    import yaml

    p = argparse.ArgumentParser(description="Cancel, or show, the running batches of call stores.")
    p.add_argument("action", choices=("cancel", "status"))
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--model", required=True, help="generators.NAME or judges.NAME")
    p.add_argument("stores", nargs="+", help="call store files (calls.jsonl); their ledgers are beside them")
    a = p.parse_args(argv)
    section, _, name = a.model.partition(".")
    with open(a.config, encoding="utf-8") as fh:
        spec = (yaml.safe_load(fh).get(section) or {}).get(name)
    if spec is None:
        raise ConfigError(a.model, f"not found in {a.config}")
    from agorabench.llm.factory import make_backend

    backend = make_backend(spec | {"mode": "batch"}, key=a.model)
    for store in a.stores:
        backend.use_ledger(store)  # type: ignore[attr-defined]
        done = backend.cancel() if a.action == "cancel" else backend.status()  # type: ignore[attr-defined]
        print(f"{store}: {a.action} {done}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
