"""The paper's seed sets (Table 1), built from their public sources at pinned revisions (docs/seeds.md).

A seed setting with `format: build` lists `parts`; each part reads raw rows from a `source`, keeps those
matching `where`, turns each into {instruction, response} with a `transform`, and optionally keeps a
seeded sample of `take` of them (source order kept). The parts are concatenated, tagged with their
`config` (the official files' `config` field), numbered (`idx`), and must total `count` (Table 1).
The result is an official-format JSON array (agora_json) plus a manifest with counts and sha256.

A hub source is pinned to a 40-hex commit, or - where no commit of the authors' download is public
(WebInstructSub) - names `revision: {resolve: <branch>}`: the branch is resolved to its commit at the first
build, exactly that commit is downloaded, and the commit is recorded in the manifest and in a lock file
beside the set (`<method>.lock.json`, not a Snakemake output, so it outlives reruns). A later build whose
re-resolution gives another commit is refused until the user pins one (docs/seeds.md).

Transforms reproduce the official seed files' text where their samples show it (MBPP: byte for byte on
the 20 published records; MATH: the `[RESULT] answer [/RESULT]` line); see docs/seeds.md for each.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
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
HubResolver = Callable[[str, str], str]  # (dataset repo, branch or tag) -> its current 40-hex commit


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


def hub_commit(repo: str, branch: str) -> str:
    """The commit a dataset repository's branch (or tag) points to now (needs network; HF_TOKEN if gated)."""
    from huggingface_hub import HfApi

    return HfApi().dataset_info(repo, revision=branch).sha


class RevisionLock:
    """Branches resolved to commits for one seed set, checked against and recorded in its lock file.

    The lock maps "<repo>@<branch>" to the commit the first build used; `save` writes this build's
    resolutions once the set is built, so a failed download never locks a commit."""

    def __init__(self, path: str | Path | None, resolver: HubResolver = hub_commit):
        self.path = Path(path) if path is not None else None
        self.resolver = resolver
        self.locked: dict[str, dict[str, str]] = self._read()
        self.resolved: dict[str, dict[str, str]] = {}

    def _read(self) -> dict[str, dict[str, str]]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            reason = f"not valid JSON ({exc.msg}); restore it or pin the revisions"
            raise DataError(self.path, reason) from None
        entries = data.values() if isinstance(data, dict) else [None]
        if not all(isinstance(v, dict) and "commit" in v for v in entries):
            raise DataError(self.path, 'expected {"<repo>@<branch>": {"commit": ...}}')
        return data

    def commit(self, repo: str, branch: str, where: str) -> str:
        """The commit to download for `repo@branch`: resolved now, refused if it moved since the lock."""
        key = f"{repo}@{branch}"
        if key in self.resolved:  # two parts of one set read the same branch: one resolution
            return self.resolved[key]["commit"]
        try:
            sha = self.resolver(repo, branch)
        except Exception as exc:  # network, unknown repo or branch: one clear message
            raise DataError(f"hf://datasets/{key}", f"could not resolve the branch: {exc}") from None
        if not isinstance(sha, str) or not REVISION.fullmatch(sha):
            raise DataError(f"hf://datasets/{key}", f"the hub returned {sha!r}, not a 40-hex commit")
        old = self.locked.get(key)
        if old and old["commit"] != sha:
            raise ConfigError(
                where,
                f"{branch!r} of {repo} now points to {sha}, but {self.path} locked {old['commit']} "
                f"(resolved {old.get('resolved_at', '?')}): the data changed since the first build. Pin "
                f"`revision: {old['commit']}` to rebuild the locked set, or `revision: {sha}` to adopt the "
                "new commit (the study's other outputs then no longer match this set)",
            )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.resolved[key] = old or {"commit": sha, "resolved_at": now}
        return sha

    def save(self) -> None:
        if self.path is not None and self.resolved:
            write_json(self.path, {**self.locked, **self.resolved})


def pinned_source(source: dict[str, Any], where: str, lock: RevisionLock) -> dict[str, Any]:
    """The source with a 40-hex `revision`: as configured, or `{resolve: <branch>}` resolved via `lock`
    (the result then also carries `resolved_from: <branch>`)."""
    revision = source.get("revision")
    if isinstance(revision, str) and REVISION.fullmatch(revision):
        return source
    branch = revision.get("resolve") if isinstance(revision, dict) and len(revision) == 1 else None
    if not isinstance(branch, str) or not branch.strip():
        raise ConfigError(
            f"{where}.revision",
            f"must be a 40-hex commit of {source.get('repo')}, or {{resolve: <branch>}} to resolve the "
            f"branch once and lock it (docs/seeds.md), got {revision!r}",
        )
    repo = require(source, "repo", where)
    sha = lock.commit(repo, branch, f"{where}.revision")
    return {**source, "revision": sha, "resolved_from": branch}


def _rows(source: dict[str, Any], where: str) -> Iterator[Located]:
    fmt = source_format(source, where, PART_FORMATS)
    if fmt == "hf":
        return hf_records(source, where)  # pinned by build_part
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


def build_part(
    part: dict[str, Any], where: str, seed: int, lock: RevisionLock | None = None
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Rows of one part, and its manifest entry (rows read, kept, dropped, sampled, the commit read).

    `lock` resolves `revision: {resolve: <branch>}` (default: resolve on the hub, no lock file)."""
    transform, opts = _check_part(part, where)
    source = part.get("source") if isinstance(part.get("source"), dict) else {}
    if source.get("format") == "hf":
        source = pinned_source(source, f"{where}.source", lock or RevisionLock(None))
    read, dropped, kept = 0, 0, []
    for rec in _rows(source, f"{where}.source"):
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
    keys = ("format", "repo", "config", "split", "revision", "resolved_from", "data_files", "path")
    return {k: source[k] for k in keys if isinstance(source, dict) and k in source}


def _origin(source: Any) -> str:
    desc = _describe(source)
    return str(desc.get("path") or f"hf://datasets/{desc.get('repo')}@{desc.get('revision')}")


# --- the seed set -----------------------------------------------------------------------------------------


def lock_path_for(out_path: str | Path) -> Path:
    """The revision lock beside a built set: <method>.json -> <method>.lock.json."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}.lock.json")


def build_seed_set(
    spec: dict[str, Any],
    out_path: str | Path,
    manifest_path: str | Path,
    *,
    where: str,
    resolver: HubResolver = hub_commit,
) -> dict:
    """Build one setting's seed set (`spec` = config seeds.<domain>.<method>, format build).

    Writes the official-format JSON array and a manifest; raises ConfigError naming `where.count` when
    the built set does not have the Table 1 count, and naming a part's `source.revision` when a resolved
    branch has moved since the commit in the lock file (`lock_path_for(out_path)`)."""
    parts = spec.get("parts")
    if not isinstance(parts, list) or not parts:
        raise ConfigError(f"{where}.parts", "a built seed set needs a non-empty list of parts")
    count = spec.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError(f"{where}.count", f"must be a positive integer (Table 1), got {count!r}")
    seed = spec.get("sample_seed", 42)
    lock = RevisionLock(lock_path_for(out_path), resolver)
    records, entries = [], []
    for i, part in enumerate(parts):
        rows, entry = build_part(part, f"{where}.parts.{i}", seed + i, lock)
        records += rows
        entries.append(entry)
    if len(records) != count:
        per_part = ", ".join(str(e["rows_kept"]) for e in entries)
        raise ConfigError(
            f"{where}.count", f"built {len(records)} records ({per_part} per part), Table 1 says {count}"
        )
    rows = [{**r, "idx": i} for i, r in enumerate(records)]
    write_json(out_path, rows)
    lock.save()
    manifest = {
        "setting": where,
        "records": len(rows),
        "table1_count": count,
        "matches_table1": True,
        "sample_seed": seed,
        "sha256": sha256_file(out_path),
        "parts": entries,
        "revision_lock": str(lock.path) if lock.resolved else None,
        "note": spec.get("note", ""),
    }
    write_json(manifest_path, manifest)
    return manifest
