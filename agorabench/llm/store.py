"""A durable call store: never pay twice for the same request.

Each finished completion is appended (and fsynced) to a JSONL file as soon as it arrives, keyed by the
request id. A restart after kill -9 reads the store, skips every request it holds and appends only the
rest. A torn last line (the process died mid-write) is ignored and rewritten on the next append.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from agorabench.llm.base import Backend, Completion, Request


class CallStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.done: dict[str, dict] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        good_end = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn final write
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break
            self.done[row["id"]] = row
            good_end += len(line)
        if good_end != len(raw):  # drop the torn tail so appends start on a clean line
            with self.path.open("r+b") as fh:
                fh.truncate(good_end)

    def __contains__(self, rid: str) -> bool:
        return rid in self.done

    def get(self, rid: str) -> Completion | None:
        row = self.done.get(rid)
        return Completion.from_dict(row) if row is not None else None

    def pending(self, requests: Sequence[Request]) -> list[Request]:
        seen: set[str] = set()
        out = []
        for r in requests:
            if r.id not in self.done and r.id not in seen:
                seen.add(r.id)
                out.append(r)
        return out

    def run(
        self,
        backend: Backend,
        requests: Sequence[Request],
        on_completion: Callable[[Request, Completion], None] | None = None,
    ) -> Iterator[tuple[Request, Completion]]:
        """Complete the pending requests, storing each result before yielding it."""
        todo = self.pending(requests)
        by_id = {r.id: r for r in todo}
        if not todo:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            for comp in backend.complete(todo):
                req = by_id[comp.id]
                row = comp.to_dict() | {"meta": req.meta}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                self.done[comp.id] = row
                if on_completion is not None:
                    on_completion(req, comp)
                yield req, comp


def cached_complete(
    backend: Backend, requests: Sequence[Request], store_path: str | Path
) -> dict[str, Completion]:
    """Complete requests through a durable store; returns every request's completion by id."""
    store = CallStore(store_path)
    for _ in store.run(backend, requests):
        pass
    return {r.id: store.get(r.id) for r in requests}  # type: ignore[misc]
