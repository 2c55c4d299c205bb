"""The OpenAI Batch API wire format (`POST /files` purpose=batch, `POST /batches`, `GET /batches/{id}`,
`GET /files/{id}/content`), relative to the backend's base_url (`https://api.openai.com/v1`).

Input lines are {custom_id, method, url, body} with the body the online backend would send; output and
error files hold {custom_id, response: {status_code, body}, error}. Limits: 50,000 requests and 200 MB
per input file. The batch's metadata names the ledger part, so a batch whose id the ledger missed (kill
right after create) is found again by listing batches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from agorabench.llm.base import Request
from agorabench.llm.batch import Http, Outcome, Part, Provider, retryable_status

ENDED = frozenset({"completed", "expired", "failed", "cancelled"})
ENDPOINT = "/v1/chat/completions"
PART_KEY = "agorabench_part"


class OpenAIBatch(Provider):
    name = "openai"
    max_requests = 50_000
    max_bytes = 200_000_000

    def entry(self, req: Request) -> dict[str, Any]:
        return {"custom_id": req.id, "method": "POST", "url": ENDPOINT, "body": self.online.build_body(req)}

    def upload(self, http: Http, part: str, data: bytes) -> str | None:
        files = {"file": (f"{part}.jsonl", data, "application/jsonl")}
        return str(http.json("POST", "/files", data={"purpose": "batch"}, files=files)["id"])

    def create(self, http: Http, part: str, entries: list[dict], file_id: str | None) -> dict:
        body = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h",
                "metadata": {PART_KEY: part}}  # fmt: skip
        return http.json("POST", "/batches", json=body)

    def find(self, http: Http, part: Part, claimed: set[str]) -> str | None:
        after: str | None = None
        while True:
            page = http.json("GET", "/batches", params={"limit": 100} | ({"after": after} if after else {}))
            for b in page.get("data") or []:
                if (b.get("metadata") or {}).get(PART_KEY) == part.part and b["id"] not in claimed:
                    return str(b["id"])
                if float(b.get("created_at") or 0) < part.t - 60:
                    return None  # listed newest first: older batches cannot be this part's
            if not page.get("has_more") or not page.get("data"):
                return None
            after = page["data"][-1]["id"]

    def retrieve(self, http: Http, batch_id: str) -> dict:
        return http.json("GET", f"/batches/{batch_id}")

    def ended(self, batch: dict) -> bool:
        return batch.get("status") in ENDED

    def describe(self, batch: dict) -> str:
        counts = batch.get("request_counts") or {}
        return f"{batch.get('status')}, {counts.get('completed', 0)}/{counts.get('total', 0)} done"

    def results(self, http: Http, batch: dict) -> Iterator[Outcome]:
        for key in ("output_file_id", "error_file_id"):
            if batch.get(key):
                text = http.call("GET", f"/files/{batch[key]}/content").text
                for line in text.splitlines():
                    if line.strip():
                        yield self._outcome(json.loads(line))

    def _outcome(self, row: dict) -> Outcome:
        rid, resp, err = str(row.get("custom_id")), row.get("response") or {}, row.get("error") or {}
        status = int(resp.get("status_code") or 0)
        if status == 200:
            try:
                return Outcome(rid, self.completion(rid, resp["body"], 1, 0.0))
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                return Outcome(rid, retryable=True, error=f"malformed result ({type(exc).__name__})")
        message = err.get("message") or json.dumps(resp.get("body"))[:300]
        retryable = (
            err.get("code") == "batch_expired" or (status == 0 and not err) or retryable_status(status)
        )
        return Outcome(
            rid, retryable=retryable, error=f"HTTP {status or '-'} {err.get('code', '')}: {message}"
        )

    def cancel(self, http: Http, batch_id: str) -> dict:
        return http.json("POST", f"/batches/{batch_id}/cancel")
