"""Anthropic's native Messages API (`POST {base_url}/v1/messages`) with the shared retry/limit machinery.

System messages go to the top-level `system` field; stop strings become `stop_sequences`. The API has
no seed and no repetition penalty: those sampling fields are not sent. `top_p` is only sent when < 1.
"""

from __future__ import annotations

from typing import Any

from agorabench.llm.base import Request
from agorabench.llm.openai_backend import HTTPChatBackend, resolve_base_url

ANTHROPIC_VERSION = "2023-06-01"
_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicBackend(HTTPChatBackend):
    name = "anthropic"
    path = "/v1/messages"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        base_url_env: str | None = None,
        api_key_env: str | None = None,
        key: str = "backend",
        **limits: Any,
    ):
        base_url = resolve_base_url(base_url, base_url_env, "https://api.anthropic.com", key)
        required = "api.anthropic.com" in base_url
        super().__init__(base_url=base_url, model=model, api_key_env=api_key_env, api_key_required=required,
                         key=key, **limits)  # fmt: skip

    def _headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def build_body(self, request: Request) -> dict[str, Any]:
        s = request.sampling
        system = [m["content"] for m in request.messages if m["role"] == "system"]
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": s.max_tokens,
            "messages": [{"role": m["role"], "content": m["content"]} for m in request.messages
                         if m["role"] != "system"],
            "temperature": s.temperature,
        }  # fmt: skip
        if system:
            body["system"] = "\n\n".join(system)
        if s.top_p < 1.0:
            body["top_p"] = s.top_p
        if s.stop:
            body["stop_sequences"] = list(s.stop)
        return body | self.extra_body

    def parse_body(self, data: Any) -> tuple[str, str, int, int, str]:
        if data.get("type") == "error":
            raise ValueError("error object in a 200 response")
        text = "".join(b["text"] for b in data["content"] if b.get("type") == "text")
        reason = _REASONS.get(data.get("stop_reason"), data.get("stop_reason") or "stop")
        usage = data.get("usage") or {}
        n_in, n_out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
        return text, reason, n_in, n_out, str(data.get("model", ""))
