"""Shared machinery of the seed and benchmark loaders: located records, field checks, sources."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError, DataError

DEMO_PACKAGE = "agorabench.data.demo"


class RecordError(Exception):
    """A record is malformed; the caller adds the file and line / record that it came from."""


@dataclass(frozen=True)
class Located:
    """One raw record and where it came from (for error messages)."""

    row: Any
    path: str
    index: int  # position among the records, 0-based
    line: int | None = None  # 1-based line of a JSONL file

    def error(self, reason: str) -> DataError:
        if self.line is not None:
            return DataError(self.path, reason, line=self.line)
        return DataError(self.path, reason, record=f"#{self.index}")


def normalise_all(
    records: Iterable[Located], fn: Callable[[dict[str, Any], int], dict[str, Any]]
) -> list[dict]:
    """Apply `fn(row, index)` to every record, turning a RecordError into a DataError that names it."""
    out = []
    for rec in records:
        if not isinstance(rec.row, dict):
            raise rec.error(f"expected a JSON object, got {type(rec.row).__name__}")
        try:
            out.append(fn(rec.row, rec.index))
        except RecordError as exc:
            raise rec.error(str(exc)) from None
    return out


def field(row: dict[str, Any], key: str, types: type | tuple[type, ...] = str, nonempty: bool = False) -> Any:
    """row[key], checked for presence, type and (optionally) non-blank text."""
    if key not in row:
        raise RecordError(f"missing field '{key}'")
    value = row[key]
    if not isinstance(value, types) or (isinstance(value, bool) and types is not bool):
        raise RecordError(f"field '{key}' must be {_type_names(types)}, got {type(value).__name__}")
    if nonempty and isinstance(value, str) and not value.strip():
        raise RecordError(f"field '{key}' is empty")
    return value


def jsonl_records(path: str | Path) -> Iterator[Located]:
    """The records of a JSONL file (gzip if it ends in .gz) with their line numbers; blank lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    index = 0
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    path, f"invalid JSON ({exc.msg} at column {exc.colno})", line=lineno
                ) from None
            yield Located(row, str(path), index, lineno)
            index += 1


def json_array_records(path: str | Path) -> Iterator[Located]:
    """The records of a file holding one JSON array."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON array of records, got {type(data).__name__}")
    for i, row in enumerate(data):
        yield Located(row, str(path), i)


PATH_TYPES = (str, Path)


def _type_names(types: type | tuple[type, ...]) -> str:
    return types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)


def require(source: dict[str, Any], key: str, where: str, types: type | tuple[type, ...] = str) -> Any:
    """A required key of a source config; absent or mistyped -> ConfigError naming `where.key`."""
    if not isinstance(source, dict):
        raise ConfigError(where, f"must be a mapping, got {type(source).__name__}")
    value = source.get(key)
    if value is None or value == "":
        hint = ": pin the dataset to a commit so that results are reproducible" if key == "revision" else ""
        raise ConfigError(f"{where}.{key}", f"is required{hint}")
    if not isinstance(value, types):
        raise ConfigError(f"{where}.{key}", f"must be {_type_names(types)}, got {value!r}")
    return value


def source_format(source: Any, where: str, known: Iterable[str]) -> str:
    known = sorted(known)
    fmt = require(source, "format", where)
    if fmt not in known:
        raise ConfigError(f"{where}.format", f"unknown format {fmt!r}; expected one of {', '.join(known)}")
    return fmt


def check_limit(limit: int | None, where: str) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ConfigError(f"{where}.limit", f"must be a non-negative integer or null, got {limit!r}")


def check_unique_ids(items: list[dict[str, Any]], origin: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item["id"] in seen:
            raise DataError(origin, f"duplicate id {item['id']!r}", record=f"#{i}")
        seen.add(item["id"])


DEMO_FOLDERS = ("seeds", "reference", "benchmarks")


def demo_path(folder: str, name: str, where: str = "source") -> Path:
    """Path of agorabench/data/demo/<folder>/<name>.jsonl, the package data of the offline demo."""
    if folder not in DEMO_FOLDERS:
        raise ValueError(f"demo folder must be one of {', '.join(DEMO_FOLDERS)}, got {folder!r}")
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"{where}.name", f"must be a plain file name without extension, got {name!r}")
    base = resources.files(DEMO_PACKAGE) / folder
    target = base / f"{name}.jsonl"
    if not target.is_file():
        available = sorted(p.name[: -len(".jsonl")] for p in base.iterdir() if p.name.endswith(".jsonl"))
        raise ConfigError(
            f"{where}.name", f"no demo file {folder}/{name}.jsonl; available: {', '.join(available)}"
        )
    if not isinstance(target, Path):  # the package is installed as files, never zipped
        raise DataError(str(target), "demo data is not on the file system (zipped install?)")
    return target


def hf_records(source: dict[str, Any], where: str) -> Iterator[Located]:
    """Rows of a Hugging Face dataset at a pinned revision (needs network or a warm cache)."""
    repo = require(source, "repo", where)
    revision = require(source, "revision", where)
    split = require(source, "split", where)
    config = source.get("config")
    data_files = source.get("data_files")
    origin = f"hf://datasets/{repo}@{revision}" + (f"/{config}" if config else "") + f"[{split}]"
    try:
        import datasets

        ds = datasets.load_dataset(
            repo,
            config,
            revision=revision,
            split=split,
            data_files=data_files,
            cache_dir=source.get("cache_dir"),
        )
    except ImportError:
        raise DataError(origin, "the 'datasets' package is not installed") from None
    except Exception as exc:  # network, missing repo / revision / split: one clear message
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataError(origin, f"could not load dataset {repo!r}: {type(exc).__name__}: {detail}") from None
    for i, row in enumerate(ds):
        yield Located(dict(row), origin, i)
