"""Check a result's lineage against the files and the code as they are now.

Every file in the lineage is hashed again and compared with what the records say: an output that differs
from its producer's record is `modified` (or `missing`); an input whose current version differs from the
one its consumer read, while matching its producer's record, is `stale` (the producer ran again but the
consumer did not); a source file (a meta-prompt, a seed file) that changed is `modified`. Code: each job's
rule script and package modules are hashed again (`code` problems when they differ), and in `strict`
mode a job recorded at another git commit is a problem too; a dirty tree at the same commit is judged by
the module hashes alone, or is a problem when the record has none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agorabench.jsonl import sha256_file
from agorabench.provenance.collect import PACKAGE_ROOT
from agorabench.provenance.lineage import JobNode, Lineage, trace
from agorabench.provenance.record import code_version

CODE_MODES = ("strict", "modules", "off")
IGNORED_FILES = frozenset({".snakemake_timestamp"})  # Snakemake marks folder outputs after the job


@dataclass
class Problem:
    kind: str  # modified | missing | stale | code
    path: str  # the file (or, for code, the script/module or "git")
    detail: str
    jobs: list[str] = field(default_factory=list)  # labels of the jobs concerned


@dataclass
class Report:
    target: str
    problems: list[Problem]
    notes: list[str]
    files_checked: int
    jobs_checked: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    def text(self) -> str:
        lines = [
            f"{'OK' if self.ok else 'PROBLEMS'}: {self.target} "
            f"({self.jobs_checked} jobs, {self.files_checked} files checked)"
        ]
        for p in self.problems:
            jobs = ", ".join(p.jobs[:3]) + (f" and {len(p.jobs) - 3} more" if len(p.jobs) > 3 else "")
            lines.append(f"  {p.kind.upper():8} {p.path}: {p.detail} [{jobs}]")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


class _Hashes:
    """Current hashes, each path hashed once."""

    def __init__(self, lineage: Lineage):
        self.lineage = lineage
        self._cache: dict[str, dict[str, Any]] = {}

    def get(self, path: str) -> dict[str, Any]:
        if path not in self._cache:
            p = self.lineage.records.abs(path)
            if p.is_file():
                self._cache[path] = {"sha256": sha256_file(p)}
            elif p.is_dir():
                files = sorted(f for f in p.rglob("*") if f.is_file() and f.name not in IGNORED_FILES)
                self._cache[path] = {"files": {f.relative_to(p).as_posix(): sha256_file(f) for f in files}}
            else:
                self._cache[path] = {"missing": True}
        return self._cache[path]

    def __len__(self) -> int:
        return len(self._cache)


def _diff(recorded: dict[str, Any], current: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, detail) when the current file differs from the recorded one, else None."""
    if recorded.get("missing"):
        return None  # nothing was there when the record was written
    if current.get("missing"):
        return "missing", "no longer exists"
    if "sha256" in recorded:
        now = current.get("sha256")
        if now != recorded["sha256"]:
            return "modified", f"sha256 {recorded['sha256'][:12]} recorded, {str(now)[:12]} now"
        return None
    if "files" in recorded:
        before = {k: v for k, v in recorded["files"].items() if k not in IGNORED_FILES}
        now = current.get("files", {})
        changed = sorted(k for k in before if k in now and before[k] != now[k])
        gone = sorted(set(before) - set(now))
        added = sorted(set(now) - set(before))
        if changed or gone or added:
            parts = [f"{n} {what}: {', '.join(v[:3])}" for n, what, v in
                     ((len(changed), "changed", changed), (len(gone), "missing", gone),
                      (len(added), "added", added)) if v]  # fmt: skip
            return "modified", "; ".join(parts)
    return None


class _Collector:
    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str, str], Problem] = {}

    def add(self, kind: str, path: str, detail: str, job: JobNode) -> None:
        key = (kind, path, detail)
        problem = self.by_key.setdefault(key, Problem(kind, path, detail))
        if job.label() not in problem.jobs:
            problem.jobs.append(job.label())


def _check_files(lineage: Lineage, hashes: _Hashes, out: _Collector) -> None:
    for job in lineage.jobs.values():
        rec = job.record
        for entry, path in zip(rec.get("outputs", []), job.outputs, strict=False):
            if found := _diff(entry, hashes.get(path)):
                out.add(found[0], path, found[1], job)
        for entry, path in zip(rec.get("inputs", []), job.inputs, strict=False):
            _check_input(lineage, hashes, out, job, entry, path)
        for src in rec.get("sources") or []:
            if found := _diff(src, hashes.get(src["path"])):
                out.add(found[0], src["path"], found[1], job)


def _check_input(
    lineage: Lineage, hashes: _Hashes, out: _Collector, job: JobNode, entry: dict[str, Any], path: str
) -> None:
    found = _diff(entry, hashes.get(path))
    if found is None:
        return
    producer = lineage.producers.get(path)
    if producer is None:
        out.add(found[0], path, found[1], job)  # a source file changed since the job read it
        return
    produced = next(
        (
            o
            for o in lineage.jobs[producer].record.get("outputs", [])
            if lineage.records.norm(o["path"]) == path
        ),
        None,
    )
    if produced is not None and _diff(produced, hashes.get(path)) is None:
        out.add("stale", path, "the job read an older version than its producer's record (rerun it)", job)
    # else: the producer's own output check reports it


def _module_diffs(job: JobNode, lineage: Lineage, cache: dict[str, str | None]) -> Iterable[tuple[str, str]]:
    code = job.record.get("code") or {}
    script = code.get("script") or {}
    if script.get("path"):
        p = lineage.records.abs(script["path"])
        now = sha256_file(p) if p.is_file() else None
        if now != script.get("sha256"):
            yield script["path"], "rule script changed since" if now else "rule script is gone"
    for key, sha in (code.get("modules") or {}).items():
        if key not in cache:
            f = PACKAGE_ROOT / key
            cache[key] = sha256_file(f) if f.is_file() else None
        if cache[key] != sha:
            yield key, "module changed since" if cache[key] else "module is gone"


def _check_code(lineage: Lineage, mode: str, out: _Collector, notes: list[str]) -> None:
    if mode == "off":
        return
    current = code_version()
    cache: dict[str, str | None] = {}
    unhashed = 0
    for job in lineage.jobs.values():
        code = job.record.get("code") or {}
        has_modules = bool(code.get("modules"))
        unhashed += not has_modules
        for path, detail in _module_diffs(job, lineage, cache):
            out.add("code", path, detail, job)
        commit = code.get("git_commit")
        if commit != current["git_commit"]:
            detail = f"recorded at commit {str(commit)[:8]}, now {str(current['git_commit'])[:8]}"
            if mode == "strict":
                out.add("code", "git", detail, job)
            elif detail not in notes:
                notes.append(detail)
        elif (code.get("dirty") or current["dirty"]) and not has_modules and mode == "strict":
            out.add("code", "git", "uncommitted changes and no module hashes to compare", job)
    if unhashed:
        notes.append(f"{unhashed} job record(s) have no module hashes (written before record version 2)")


def verify(target: str | Path, workdir: str | Path = ".", code: str = "strict") -> Report:
    """Re-hash every file in the lineage of `target` and compare code versions (`code`: strict,
    modules or off)."""
    if code not in CODE_MODES:
        raise ValueError(f"code must be one of {', '.join(CODE_MODES)}, got {code!r}")
    lineage = trace(target, workdir)
    hashes = _Hashes(lineage)
    found = _Collector()
    notes: list[str] = []
    _check_files(lineage, hashes, found)
    _check_code(lineage, code, found, notes)
    problems = sorted(found.by_key.values(), key=lambda p: (p.kind, p.path))
    return Report(lineage.target, problems, notes, files_checked=len(hashes), jobs_checked=len(lineage.jobs))
