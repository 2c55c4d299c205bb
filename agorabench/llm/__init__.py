"""One interface for every language-model call: generators, judges and student inference share it."""

from agorabench.llm.base import Backend, Completion, Request, Sampling, request_id
from agorabench.llm.factory import make_backend
from agorabench.llm.store import CallStore, cached_complete

__all__ = [
    "Backend",
    "CallStore",
    "Completion",
    "Request",
    "Sampling",
    "cached_complete",
    "make_backend",
    "request_id",
]
