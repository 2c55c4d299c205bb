"""The loopback fault server's batch endpoints (OpenAI Batch API and Anthropic Message Batches).

    OpenAI     POST /v1/files (multipart, purpose=batch)   GET /v1/files/{id}/content
               POST /v1/batches   GET /v1/batches[?after=]   GET /v1/batches/{id}   POST .../{id}/cancel
    Anthropic  POST /v1/messages/batches   GET /v1/messages/batches[/{id}[/results]]   POST .../{id}/cancel

A batch moves one step per retrieve: validating -> in_progress -> finalizing -> completed (OpenAI) or
in_progress -> ended (Anthropic) after `polls` retrieves. `BatchFaults` makes the first batches expire
(half their requests done, the rest "batch_expired" / "expired") or fail validation (OpenAI), and a seeded
share of requests fail with a 500 the first time they are seen; "[[400]]" in a message is a 400.
`BatchState.counts` counts uploads, creates, retrieves and downloads; `paid` counts, per custom_id, the
results the server computed: a provider bills each of them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any

from . import fault_server as fs


@dataclass(frozen=True)
class BatchFaults:
    polls: int = 2  # retrieves before a batch ends
    expire_first: int = 0  # the first k batches expire with half their requests done
    fail_first: int = 0  # the first k OpenAI batches fail validation (nothing done)
    error_rate: float = 0.0  # share of requests whose first run ends in a 500
    seed: int = 0


@dataclass
class BatchState:
    faults: BatchFaults = field(default_factory=BatchFaults)
    lock: threading.Lock = field(default_factory=threading.Lock)
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict] = field(default_factory=dict)
    inputs: dict[str, list[dict]] = field(default_factory=dict)  # batch id -> its request lines
    counts: Counter = field(default_factory=Counter)
    paid: Counter = field(default_factory=Counter)
    seen: Counter = field(default_factory=Counter)


def batch_state(server: Any) -> BatchState:
    """The batch state of a FaultServer (or its HTTP server), made on first use."""
    server = getattr(server, "_server", server)
    if not hasattr(server, "batch_state"):
        server.batch_state = BatchState()
    return server.batch_state


def handle(handler: Any, method: str, raw: bytes) -> bool:
    """Answer a batch route; False when the path is not one (the chat routes take it)."""
    path = handler.path.split("?", 1)[0].rstrip("/")
    parts = path.strip("/").split("/")
    if parts[:3] == ["v1", "messages", "batches"]:
        route = _anthropic_route
    elif parts[:2] in (["v1", "files"], ["v1", "batches"]):
        route = _openai_route
    else:
        return False
    state = batch_state(handler.server)
    key, given = handler.server.faults.api_key, handler._given_key(route is _anthropic_route)
    if key is not None and given != key:  # echoes the key it got, as some servers do
        status, body, ctype = 401, {"error": {"message": f"Incorrect API key provided: {given}"}}, _JSON
    else:
        with state.lock:
            status, body, ctype = route(state, handler, method, parts, raw)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
    return True


_JSON = "application/json"


def _missing(what: str) -> tuple[int, Any, str]:
    return 404, {"error": {"message": f"no {what}", "type": "not_found_error"}}, _JSON


def _openai_route(state: BatchState, h: Any, method: str, parts: list[str], raw: bytes):
    if parts == ["v1", "files"] and method == "POST":
        state.counts["uploads"] += 1
        fid = f"file-{len(state.files):06d}"
        state.files[fid] = _multipart_file(h.headers.get("Content-Type", ""), raw)
        return 200, {"id": fid, "object": "file", "purpose": "batch", "bytes": len(state.files[fid])}, _JSON
    if len(parts) == 4 and parts[1] == "files" and parts[3] == "content" and method == "GET":
        state.counts["downloads"] += 1
        return (
            (200, state.files[parts[2]], "application/jsonl") if parts[2] in state.files else _missing("file")
        )
    if parts == ["v1", "batches"] and method == "POST":
        return _openai_create(state, json.loads(raw))
    if parts == ["v1", "batches"]:
        return 200, _openai_list(state, h.path), _JSON
    b = state.batches.get(parts[2]) if len(parts) >= 3 else None
    if b is None:
        return _missing("batch")
    if len(parts) == 4 and parts[3] == "cancel":
        state.counts["cancels"] += 1
        if b["status"] not in ("completed", "expired", "failed", "cancelled"):
            b["status"] = "cancelling"
        return 200, b, _JSON
    state.counts["retrieves"] += 1
    _openai_step(state, b)
    return 200, b, _JSON


def _openai_create(state: BatchState, body: dict):
    lines = state.files.get(body.get("input_file_id", ""))
    if lines is None:
        return 400, {"error": {"message": "input_file_id not found"}}, _JSON
    state.counts["creates"] += 1
    bid = f"batch_{len(state.batches):06d}"
    reqs = [json.loads(x) for x in lines.decode().splitlines() if x.strip()]
    state.inputs[bid] = reqs
    state.batches[bid] = {
        "id": bid, "object": "batch", "endpoint": body.get("endpoint"), "status": "validating",
        "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window"),
        "created_at": int(time.time()), "output_file_id": None, "error_file_id": None,
        "metadata": body.get("metadata"), "request_counts": {"total": len(reqs), "completed": 0, "failed": 0},
        "_polls": 0, "_n": len(state.batches),
    }  # fmt: skip
    return 200, state.batches[bid], _JSON


def _openai_list(state: BatchState, url: str) -> dict:
    after = url.split("after=", 1)[1].split("&")[0] if "after=" in url else None
    ids = sorted(state.batches, reverse=True)  # newest first
    if after in ids:
        ids = ids[ids.index(after) + 1 :]
    return {"object": "list", "data": [state.batches[i] for i in ids[:100]], "has_more": len(ids) > 100}


def _openai_step(state: BatchState, b: dict) -> None:
    if b["status"] in ("completed", "expired", "failed", "cancelled"):
        return
    if b["status"] == "cancelling":
        b["status"] = "cancelled"
        return
    b["_polls"] += 1
    f = state.faults
    if b["_polls"] < f.polls:
        b["status"] = "in_progress" if b["_polls"] < f.polls - 1 else "finalizing"
        return
    if b["_n"] < f.fail_first:
        b["status"] = "failed"
        b["errors"] = {"data": [{"code": "invalid_file", "message": "injected validation failure"}]}
        return
    expired = b["_n"] < f.expire_first
    out, err = [], []
    reqs = state.inputs[b["id"]]
    for i, line in enumerate(reqs):
        rid, body = line["custom_id"], line["body"]
        if expired and i >= len(reqs) // 2:
            err.append({"custom_id": rid, "response": None,
                        "error": {"code": "batch_expired", "message": "not done within 24h"}})  # fmt: skip
            continue
        code, result = _run(state, rid, body, anthropic=False)
        row = {"status_code": code, "request_id": f"req_{rid}", "body": result}
        (out if code == 200 else err).append(
            {"id": f"br_{rid}", "custom_id": rid, "response": row, "error": None}
        )
    b["output_file_id"] = _save(state, out)
    b["error_file_id"] = _save(state, err)
    b["status"] = "expired" if expired else "completed"
    b["request_counts"] |= {"completed": len(out), "failed": len(err)}


def _save(state: BatchState, rows: list[dict]) -> str | None:
    if not rows:
        return None
    fid = f"file-{len(state.files):06d}"
    state.files[fid] = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return fid


def _run(state: BatchState, rid: str, body: dict, anthropic: bool) -> tuple[int, dict]:
    """One request of a batch: (status, body), as the online endpoint would answer it."""
    state.seen[rid] += 1
    if any("[[400]]" in str(m.get("content", "")) for m in body.get("messages", [])):
        return 400, {"error": {"type": "invalid_request_error", "message": "rejected ([[400]])"}}
    h = hashlib.sha256(f"{state.faults.seed}/{rid}".encode()).digest()
    if state.seen[rid] == 1 and int.from_bytes(h[:8], "big") / 2**64 < state.faults.error_rate:
        return 500, {"error": {"type": "api_error", "message": "injected 500"}}
    max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 256)
    stop = body.get("stop_sequences" if anthropic else "stop") or []
    text, reason, n_in, n_out = fs._reply(
        body["messages"], max_tokens, [stop] if isinstance(stop, str) else stop, 0
    )
    state.paid[rid] += 1
    if anthropic:
        n_in += len(str(body.get("system", "")).split())
        return 200, fs._anthropic(body, text, reason, n_in, n_out)
    return 200, fs._openai(body, text, reason, n_in, n_out)


def _multipart_file(content_type: str, raw: bytes) -> bytes:
    msg = BytesParser(policy=email_policy).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    for part in msg.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_payload(decode=True) or b""
    return b""


# --- Anthropic -------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _anthropic_route(state: BatchState, h: Any, method: str, parts: list[str], raw: bytes):
    if len(parts) == 3 and method == "POST":
        return _anthropic_create(state, h, json.loads(raw))
    if len(parts) == 3:
        ids = sorted(state.batches, reverse=True)
        return 200, {"data": [state.batches[i] for i in ids[:100]], "has_more": len(ids) > 100}, _JSON
    b = state.batches.get(parts[3])
    if b is None:
        return _missing("message batch")
    if len(parts) == 5 and parts[4] == "results":
        state.counts["downloads"] += 1
        return 200, state.files.get(b["id"], b""), "application/x-jsonl"
    if len(parts) == 5 and parts[4] == "cancel":
        state.counts["cancels"] += 1
        if b["processing_status"] == "in_progress":
            b["processing_status"], b["cancel_initiated_at"] = "canceling", _now()
        return 200, b, _JSON
    state.counts["retrieves"] += 1
    _anthropic_step(state, b)
    return 200, b, _JSON


def _anthropic_create(state: BatchState, h: Any, body: dict):
    reqs = body.get("requests")
    if not isinstance(reqs, list) or not reqs:
        return (
            400,
            {"type": "error", "error": {"type": "invalid_request_error", "message": "no requests"}},
            _JSON,
        )
    state.counts["creates"] += 1
    bid = f"msgbatch_{len(state.batches):06d}"
    state.inputs[bid] = reqs
    counts = {"processing": len(reqs), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    state.batches[bid] = {
        "id": bid, "type": "message_batch", "processing_status": "in_progress", "request_counts": counts,
        "created_at": _now(), "ended_at": None, "expires_at": None, "cancel_initiated_at": None,
        "results_url": None, "_polls": 0, "_n": len(state.batches),
        "_root": f"http://{h.server.server_address[0]}:{h.server.server_address[1]}",
    }  # fmt: skip
    return 200, state.batches[bid], _JSON


def _anthropic_step(state: BatchState, b: dict) -> None:
    if b["processing_status"] == "ended":
        return
    b["_polls"] += 1
    canceled = b["processing_status"] == "canceling"
    if b["_polls"] < state.faults.polls and not canceled:
        return
    expired = b["_n"] < state.faults.expire_first
    rows, counts = [], Counter()
    reqs = state.inputs[b["id"]]
    for i, line in enumerate(reqs):
        rid = line["custom_id"]
        if canceled or (expired and i >= len(reqs) // 2):
            kind = "canceled" if canceled else "expired"
            rows.append({"custom_id": rid, "result": {"type": kind}})
            counts[kind] += 1
            continue
        code, result = _run(state, rid, line["params"], anthropic=True)
        if code == 200:
            rows.append({"custom_id": rid, "result": {"type": "succeeded", "message": result}})
            counts["succeeded"] += 1
        else:
            rows.append(
                {"custom_id": rid, "result": {"type": "errored", "error": {"type": "error", **result}}}
            )
            counts["errored"] += 1
    state.files[b["id"]] = "".join(json.dumps(r) + "\n" for r in rows).encode()
    b["request_counts"] = {k: counts[k] for k in ("succeeded", "errored", "canceled", "expired")} | {
        "processing": 0
    }
    b["processing_status"], b["ended_at"] = "ended", _now()
    b["results_url"] = f"{b['_root']}/v1/messages/batches/{b['id']}/results"
