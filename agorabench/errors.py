"""Errors that name the file, record or config key at fault."""

from __future__ import annotations

from pathlib import Path


class AgoraBenchError(Exception):
    """Base class: every message says what is wrong and where."""


class ConfigError(AgoraBenchError):
    """A config key is missing or has a bad value."""

    def __init__(self, key: str, reason: str):
        self.key = key
        super().__init__(f"config key '{key}': {reason}")


class DataError(AgoraBenchError):
    """A data file or one of its records is missing or malformed."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None, record: str | None = None):
        self.path = str(path)
        self.line = line
        self.record = record
        where = self.path
        if line is not None:
            where += f", line {line}"
        if record is not None:
            where += f", record {record!r}"
        super().__init__(f"{where}: {reason}")
