"""Anthropic Message Batches wire format (`POST /v1/messages/batches` with [{custom_id, params}],
`GET /v1/messages/batches/{id}`, the JSONL at its `results_url`). Limits: 100,000 requests or 256 MB
per batch. Batches carry no metadata: a batch whose id the ledger missed (kill right after create) is
found as the one unclaimed batch created since the part was prepared with the same number of requests;
two such candidates stop the run rather than risk paying twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from agorabench.llm.base import BackendError, Request
from agorabench.llm.batch import Http, Outcome, Part, Provider

NOT_RETRIED = frozenset(
    {"invalid_request_error", "authentication_error", "permission_error", "not_found_error"}
)


def _epoch(stamp: Any) -> float:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class AnthropicBatch(Provider):
    name = "anthropic"
    max_requests = 100_000
    max_bytes = 256_000_000

    def entry(self, req: Request) -> dict[str, Any]:
        return {"custom_id": req.id, "params": self.online.build_body(req)}

    def create(self, http: Http, part: str, entries: list[dict], file_id: str | None) -> dict:
        return http.json("POST", "/v1/messages/batches", json={"requests": entries})

    def find(self, http: Http, part: Part, claimed: set[str]) -> str | None:
        page = http.json("GET", "/v1/messages/batches", params={"limit": 100})
        hits = [
            b["id"] for b in page.get("data") or []
            if b["id"] not in claimed and _epoch(b.get("created_at")) >= part.t - 60
            and sum((b.get("request_counts") or {}).values()) == len(part.ids)
        ]  # fmt: skip
        if len(hits) > 1:
            raise BackendError(
                f"{self.online.key}: part {part.part} may have been submitted as any of {hits}; check them "
                "in the Anthropic console and cancel the extra one before rerunning"
            )
        return hits[0] if hits else None

    def retrieve(self, http: Http, batch_id: str) -> dict:
        return http.json("GET", f"/v1/messages/batches/{batch_id}")

    def ended(self, batch: dict) -> bool:
        return batch.get("processing_status") == "ended"

    def describe(self, batch: dict) -> str:
        counts = batch.get("request_counts") or {}
        done = sum(v for k, v in counts.items() if k != "processing")
        return f"{batch.get('processing_status')}, {done}/{sum(counts.values())} done"

    def results(self, http: Http, batch: dict) -> Iterator[Outcome]:
        import json

        if not batch.get("results_url"):
            return
        for line in http.call("GET", batch["results_url"]).text.splitlines():
            if line.strip():
                yield self._outcome(json.loads(line))

    def _outcome(self, row: dict) -> Outcome:
        rid, result = str(row.get("custom_id")), row.get("result") or {}
        kind = result.get("type")
        if kind == "succeeded":
            try:
                return Outcome(rid, self.completion(rid, result["message"], 1, 0.0))
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                return Outcome(rid, retryable=True, error=f"malformed result ({type(exc).__name__})")
        if kind == "errored":
            err = (result.get("error") or {}).get("error") or result.get("error") or {}
            etype = str(err.get("type", ""))
            return Outcome(
                rid, retryable=etype not in NOT_RETRIED, error=f"{etype}: {err.get('message', '')}"
            )
        return Outcome(rid, retryable=kind == "expired", error=f"request {kind}")

    def cancel(self, http: Http, batch_id: str) -> dict:
        return http.json("POST", f"/v1/messages/batches/{batch_id}/cancel")
