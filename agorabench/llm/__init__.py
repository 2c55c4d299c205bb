"""One interface for every language-model call: generators, judges and student inference share it."""

from agorabench.llm.base import Backend, Completion, Request, Sampling

__all__ = ["Backend", "Completion", "Request", "Sampling"]
