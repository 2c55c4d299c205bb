"""The paper's seed sets (Table 1), built from their public sources at pinned revisions (docs/seeds.md).

A seed setting with `format: build` lists `parts`; each part reads raw rows from a `source`, keeps those
matching `where`, turns each into {instruction, response} with a `transform`, and optionally keeps a
seeded sample of `take` of them (source order kept). The parts are concatenated, tagged with their
`config` (the official files' `config` field), numbered (`idx`), and must total `count` (Table 1).
The result is an official-format JSON array (agora_json) plus a manifest with counts and sha256.

Transforms reproduce the official seed files' text where their samples show it (MBPP: byte for byte on
the 20 published records; MATH: the `[RESULT] answer [/RESULT]` line); see docs/seeds.md for each.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agorabench.data._common import (
    Located,
    RecordError,
    field,
    hf_records,
    json_array_records,
    jsonl_records,
    require,
    source_format,
)
from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import sha256_file, write_json

PART_FORMATS = ("hf", "rows_jsonl", "rows_json")
REVISION = re.compile(r"[0-9a-f]{40}")
Transform = Callable[[dict[str, Any], dict[str, Any]], dict[str, str] | None]


# --- transforms: raw row -> {instruction, response}, or None to drop the row (counted) -----------------


def _boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (braces matched), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def math_row(row: dict[str, Any], opts: dict[str, Any]) -> dict[str, str] | None:
    """MATH: problem -> instruction; solution + '\\n[RESULT] <last boxed> [/RESULT]'. No boxed: dropped."""
    solution = field(row, "solution", nonempty=True)
    answer = _boxed(solution)
    if answer is None:
        return None
    return {
        "instruction": field(row, "problem", nonempty=True),
        "response": f"{solution}\n[RESULT] {answer} [/RESULT]",
    }


def gsm8k_row(row: dict[str, Any], opts: dict[str, Any]) -> dict[str, str] | None:
    """GSM8K: the final '#### X' line becomes '[RESULT] X [/RESULT]', as in the MATH seeds."""
    answer = field(row, "answer", nonempty=True)
    body, sep, final = answer.rpartition("\n#### ")
    if not sep:
        raise RecordError("field 'answer' has no final '#### <answer>' line")
    return {
        "instruction": field(row, "question", nonempty=True),
        "response": f"{body}\n[RESULT] {final.strip()} [/RESULT]",
    }


def mbpp_row(row: dict[str, Any], opts: dict[str, Any]) -> dict[str, str] | None:
    """MBPP: a docstring of the task and its first test; the code in a python fence (official samples)."""
    tests = field(row, "test_list", list)
    if not tests:
        raise RecordError("field 'test_list' is empty")
    instruction = f'"""\n{field(row, "text", nonempty=True)}\n{tests[0]}\n"""\n'
    return {"instruction": instruction, "response": f"```python\n{field(row, 'code', nonempty=True)}\n```"}


def lima_row(row: dict[str, Any], opts: dict[str, Any]) -> dict[str, str] | None:
    """LIMA: single-turn conversations [instruction, response]; multi-turn rows are dropped."""
    turns = field(row, "conversations", list)
    if len(turns) != 2 or not all(isinstance(t, str) and t.strip() for t in turns):
        return None
    return {"instruction": turns[0], "response": turns[1]}


def fields_row(row: dict[str, Any], opts: dict[str, Any]) -> dict[str, str] | None:
    """Any dataset with an instruction field and a response field (named in the part)."""
    instruction = field(row, opts["instruction_field"], nonempty=True)
    response = field(row, opts["response_field"], nonempty=True)
    return {"instruction": instruction, "response": response}


TRANSFORMS: dict[str, Transform] = {
    "math": math_row,
    "gsm8k": gsm8k_row,
    "mbpp": mbpp_row,
    "lima": lima_row,
    "fields": fields_row,
}


# --- parts ------------------------------------------------------------------------------------------------


def _rows(source: dict[str, Any], where: str) -> Iterator[Located]:
    fmt = source_format(source, where, PART_FORMATS)
    if fmt == "hf":
        revision = source.get("revision")
        if not isinstance(revision, str) or not REVISION.fullmatch(revision):
            raise ConfigError(
                f"{where}.revision", f"must be a 40-hex commit of {source.get('repo')}, got {revision!r}"
            )
        return hf_records(source, where)
    path = require(source, "path", where)
    return jsonl_records(path) if fmt == "rows_jsonl" else json_array_records(path)


def _matches(row: dict[str, Any], where_spec: dict[str, Any]) -> bool:
    for key, allowed in where_spec.items():
        values = allowed if isinstance(allowed, list) else [allowed]
        if row.get(key) not in values:
            return False
    return True


def _check_part(part: Any, where: str) -> tuple[Transform, dict[str, Any]]:
    if not isinstance(part, dict):
        raise ConfigError(where, f"expected a mapping, got {type(part).__name__}")
    name = part.get("transform")
    if name not in TRANSFORMS:
        raise ConfigError(f"{where}.transform", f"unknown transform {name!r}; one of {sorted(TRANSFORMS)}")
    if name == "fields":
        for key in ("instruction_field", "response_field"):
            require(part, key, where)
    take = part.get("take")
    if take is not None and (not isinstance(take, int) or isinstance(take, bool) or take < 1):
        raise ConfigError(f"{where}.take", f"must be a positive integer, got {take!r}")
    require(part, "config", where)
    return TRANSFORMS[name], part


def build_part(part: dict[str, Any], where: str, seed: int) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Rows of one part, and its manifest entry (rows read, kept, dropped, sampled)."""
    transform, opts = _check_part(part, where)
    source = part.get("source")
    read, dropped, kept = 0, 0, []
    for rec in _rows(source if isinstance(source, dict) else {}, f"{where}.source"):
        read += 1
        if not isinstance(rec.row, dict):
            raise rec.error(f"expected a JSON object, got {type(rec.row).__name__}")
        if not _matches(rec.row, part.get("where") or {}):
            continue
        try:
            out = transform(rec.row, opts)
        except RecordError as exc:
            raise rec.error(str(exc)) from None
        if out is None:
            dropped += 1
        else:
            kept.append(out)
    matched = len(kept) + dropped
    take = part.get("take")
    if take is not None:
        if take > len(kept):
            raise DataError(_origin(source), f"{where}.take is {take} but only {len(kept)} rows qualify")
        chosen = sorted(random.Random(seed).sample(range(len(kept)), take))
        kept = [kept[i] for i in chosen]
    entry = {
        "source": _describe(source),
        "transform": part["transform"],
        "where": part.get("where"),
        "rows_read": read,
        "rows_matched": matched,
        "rows_dropped_by_transform": dropped,
        "rows_kept": len(kept),
        "sampled": take is not None,
        "config": part["config"],
    }
    return [{"config": part["config"], **r} for r in kept], entry


def _describe(source: Any) -> dict[str, Any]:
    keys = ("format", "repo", "config", "split", "revision", "data_files", "path")
    return {k: source[k] for k in keys if isinstance(source, dict) and k in source}


def _origin(source: Any) -> str:
    desc = _describe(source)
    return str(desc.get("path") or f"hf://datasets/{desc.get('repo')}@{desc.get('revision')}")


# --- the seed set -----------------------------------------------------------------------------------------


def build_seed_set(
    spec: dict[str, Any], out_path: str | Path, manifest_path: str | Path, *, where: str
) -> dict:
    """Build one setting's seed set (`spec` = config seeds.<domain>.<method>, format build).

    Writes the official-format JSON array and a manifest; raises ConfigError naming `where.count` when
    the built set does not have the Table 1 count."""
    parts = spec.get("parts")
    if not isinstance(parts, list) or not parts:
        raise ConfigError(f"{where}.parts", "a built seed set needs a non-empty list of parts")
    count = spec.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError(f"{where}.count", f"must be a positive integer (Table 1), got {count!r}")
    seed = spec.get("sample_seed", 42)
    records, entries = [], []
    for i, part in enumerate(parts):
        rows, entry = build_part(part, f"{where}.parts.{i}", seed + i)
        records += rows
        entries.append(entry)
    if len(records) != count:
        per_part = ", ".join(str(e["rows_kept"]) for e in entries)
        raise ConfigError(
            f"{where}.count", f"built {len(records)} records ({per_part} per part), Table 1 says {count}"
        )
    rows = [{**r, "idx": i} for i, r in enumerate(records)]
    write_json(out_path, rows)
    manifest = {
        "setting": where,
        "records": len(rows),
        "table1_count": count,
        "matches_table1": True,
        "sample_seed": seed,
        "sha256": sha256_file(out_path),
        "parts": entries,
        "note": spec.get("note", ""),
    }
    write_json(manifest_path, manifest)
    return manifest
