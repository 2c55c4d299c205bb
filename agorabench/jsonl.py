"""JSON / JSONL reading and writing: atomic writes, durable appends, errors that name file and line."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from agorabench.errors import DataError


def iter_jsonl(path: str | Path, required: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """Yield the objects of a JSONL file; a bad line raises DataError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    required = tuple(required)
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    path, f"invalid JSON ({exc.msg} at column {exc.colno})", line=lineno
                ) from None
            if not isinstance(obj, dict):
                raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", line=lineno)
            missing = [k for k in required if k not in obj]
            if missing:
                raise DataError(path, f"missing field(s) {', '.join(missing)}", line=lineno)
            yield obj


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    return list(iter_jsonl(path, required))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None


def write_text(path: Path, text: str) -> None:
    """Write text atomically (temp file + fsync + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; results are shared like any other file
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows atomically (temp file + rename); returns the row count."""
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    write_text(Path(path), "".join(line + "\n" for line in lines))
    return len(lines)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(Path(path), json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def append_jsonl(fh, row: dict[str, Any]) -> None:
    """Append one row to an open text file and force it to disk (survives kill -9)."""
    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
