"""A durable call store: never pay twice for the same request.

Each finished completion is appended (and fsynced) to a JSONL file as soon as it arrives, keyed by the
request id. A restart after kill -9 reads the store, skips every request it holds and appends only the
rest. A torn last line (the process died mid-write) is dropped and rewritten on the next run.

`run` holds an exclusive lock (flock) on the file while it appends, so two processes cannot pay for
the same requests at once; the second one fails with DataError. The kernel drops the lock when a
process dies, so kill -9 never leaves a stale lock.

Failed calls (finish_reason "error") are stored too (they record the attempts spent), but by default a
later run retries them; a later row for an id supersedes an earlier error row for it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from agorabench.errors import DataError
from agorabench.llm.base import Backend, Completion, Request


def _parse(raw: bytes) -> tuple[list[dict[str, Any]], int]:
    """The complete rows of a store file and the byte length they span (a torn tail is left out)."""
    rows, good_end = [], 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # torn final write
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            break
        rows.append(row)
        good_end += len(line)
    return rows, good_end


class CallStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.done: dict[str, dict] = {}
        if self.path.exists():
            self._absorb(_parse(self.path.read_bytes())[0])

    def _absorb(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            old = self.done.get(row["id"])
            if old is None or old.get("finish_reason") == "error" or row.get("finish_reason") != "error":
                self.done[row["id"]] = row

    def __contains__(self, rid: str) -> bool:
        return rid in self.done

    def __len__(self) -> int:
        return len(self.done)

    def get(self, rid: str) -> Completion | None:
        row = self.done.get(rid)
        return Completion.from_dict(row) if row is not None else None

    def pending(self, requests: Sequence[Request], retry_errors: bool = True) -> list[Request]:
        """The requests still to call, each id once, in the given order."""
        seen: set[str] = set()
        out = []
        for r in requests:
            row = self.done.get(r.id)
            stale = row is None or (retry_errors and row.get("finish_reason") == "error")
            if stale and r.id not in seen:
                seen.add(r.id)
                out.append(r)
        return out

    def _lock_and_reload(self, fh: IO[bytes]) -> None:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(self.path, "another process is writing this call store; wait for it") from None
        fh.seek(0)
        raw = fh.read()
        rows, good_end = _parse(raw)
        if good_end != len(raw):  # drop the torn tail so appends start on a clean line
            fh.truncate(good_end)
            os.fsync(fh.fileno())
        fh.seek(0, os.SEEK_END)
        self._absorb(rows)

    def _append(self, fh: IO[bytes], row: dict[str, Any]) -> None:
        """Write one row and force it to disk before anyone sees the completion."""
        fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())

    def run(
        self,
        backend: Backend,
        requests: Sequence[Request],
        on_completion: Callable[[Request, Completion], None] | None = None,
        retry_errors: bool = True,
    ) -> Iterator[tuple[Request, Completion]]:
        """Complete the pending requests, storing each result before yielding it."""
        for _, req, comp in run_stores(backend, [(self, requests)], retry_errors):
            if on_completion is not None:
                on_completion(req, comp)
            yield req, comp


def run_stores(
    backend: Backend, work: Sequence[tuple[CallStore, Sequence[Request]]], retry_errors: bool = True
) -> Iterator[tuple[CallStore, Request, Completion]]:
    """Complete the pending requests of several stores with one backend call, so a local backend batches
    rows of different stores together; each result goes into its own store before it is yielded.

    Every store is locked for the whole call. A request pending in several stores (the same id: the same
    question, e.g. one instruction judged in two sets) is asked once and stored in each. A batch-API
    backend keeps one ledger per store, so it runs the stores one after another.
    """
    work = [(store, reqs) for store, reqs in work if store.pending(reqs, retry_errors)]
    if getattr(backend, "mode", "online") == "batch" and len(work) > 1:
        for store, reqs in work:
            yield from run_stores(backend, [(store, reqs)], retry_errors)
        return
    with ExitStack() as stack:
        owners: dict[str, list[tuple[CallStore, IO[bytes], Request]]] = {}
        for store, reqs in work:
            store.path.parent.mkdir(parents=True, exist_ok=True)
            if getattr(backend, "mode", "online") == "batch":  # each store keeps its batch ledger beside it
                backend.use_ledger(store.path)  # type: ignore[attr-defined]
            fh = stack.enter_context(store.path.open("a+b"))
            store._lock_and_reload(fh)  # another process may have finished some since __init__
            for r in store.pending(reqs, retry_errors):
                owners.setdefault(r.id, [])
                if all(owner is not store for owner, _, _ in owners[r.id]):
                    owners[r.id].append((store, fh, r))
        todo = [entries[0][2] for entries in owners.values()]
        completions = backend.complete(todo) if todo else iter(())
        try:
            for comp in completions:
                for store, fh, req in owners[comp.id]:
                    row = comp.to_dict() | {"meta": req.meta}
                    store._append(fh, row)
                    store._absorb([row])
                    yield store, req, comp
        finally:
            close = getattr(completions, "close", None)
            if close is not None:  # stop the backend's in-flight work before the locks go
                close()


def cached_complete(
    backend: Backend, requests: Sequence[Request], store_path: str | Path
) -> dict[str, Completion]:
    """Complete requests through a durable store; returns every request's completion by id."""
    store = CallStore(store_path)
    for _ in store.run(backend, requests):
        pass
    return {r.id: store.get(r.id) for r in requests}  # type: ignore[misc]
