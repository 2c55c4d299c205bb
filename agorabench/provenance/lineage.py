"""The lineage of a result file, rebuilt from the `.prov.json` records alone (not from Snakemake).

A job's record lies beside its first output (`<first output>.prov.json`) and lists every output, so the
producer of a file is found by looking at `<file>.prov.json` and then at the records in the file's folder
and its parents (every rule's outputs share a folder or sit below the first one). Walking inputs to their
producers, recursively, gives the upstream DAG: jobs, the files between them, and the leaves (source
files such as meta-prompts, plus the non-input sources each record lists).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agorabench.errors import AgoraBenchError
from agorabench.textsafe import md_code, md_fence, md_text

SUFFIX = ".prov.json"


class LineageError(AgoraBenchError):
    """A result file without a record, or an unreadable record."""


@dataclass
class JobNode:
    id: str  # the record's path, relative to the working directory
    record: dict[str, Any]
    inputs: list[str]  # normalised paths
    outputs: list[str]
    upstream: list[str] = field(default_factory=list)  # producer job ids, in input order

    @property
    def rule(self) -> str:
        return str(self.record.get("rule", "?"))

    def label(self) -> str:
        wc = self.record.get("wildcards") or {}
        inner = " ".join(f"{k}={v}" for k, v in wc.items())
        return f"{self.rule} [{inner}]" if inner else self.rule


@dataclass
class Lineage:
    target: str
    workdir: Path
    root: str  # id of the job that produced the target
    jobs: dict[str, JobNode]  # upstream order: a job's producers come before it
    producers: dict[str, str | None]  # every file seen -> the job that produced it (None: a source file)
    records: Records

    def sources(self) -> dict[str, list[str]]:
        """Leaf files (not produced by a recorded job) and non-input sources -> the jobs that read them."""
        out: dict[str, list[str]] = {}
        for job in self.jobs.values():
            for path in job.inputs:
                if self.producers.get(path) is None:
                    out.setdefault(path, []).append(job.id)
            for src in job.record.get("sources") or []:
                out.setdefault(src["path"], []).append(job.id)
        return dict(sorted(out.items()))

    def rules(self) -> Counter[str]:
        return Counter(j.rule for j in self.jobs.values())


class Records:
    """Finds and caches the record that produced a path, relative to one working directory."""

    def __init__(self, workdir: str | Path = "."):
        self.workdir = Path(os.path.abspath(workdir))
        self._records: dict[str, dict[str, Any] | None] = {}
        self._folders: dict[str, list[str]] = {}

    def norm(self, path: str | Path) -> str:
        """A path as the key used throughout: relative to the working directory when inside it."""
        full = os.path.normpath(os.path.join(self.workdir, path))
        rel = os.path.relpath(full, self.workdir)
        return full if rel.startswith("..") else rel

    def abs(self, path: str) -> Path:
        return Path(os.path.normpath(os.path.join(self.workdir, path)))

    def load(self, record_path: str) -> dict[str, Any] | None:
        if record_path not in self._records:
            file = self.abs(record_path)
            try:
                record = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
            except (OSError, json.JSONDecodeError) as exc:
                raise LineageError(f"{file}: unreadable provenance record ({exc})") from None
            self._records[record_path] = record if isinstance(record, dict) else None
        return self._records[record_path]

    def outputs_of(self, record: dict[str, Any]) -> list[str]:
        return [self.norm(o["path"]) for o in record.get("outputs", []) if "path" in o]

    def _covers(self, record: dict[str, Any], path: str) -> bool:
        return any(path == o or path.startswith(o.rstrip("/") + "/") for o in self.outputs_of(record))

    def _in_folder(self, folder: str) -> list[str]:
        if folder not in self._folders:
            d = self.abs(folder)
            names = sorted(p.name for p in d.glob("*" + SUFFIX)) if d.is_dir() else []
            self._folders[folder] = [self.norm(os.path.join(folder, n)) for n in names]
        return self._folders[folder]

    def producer(self, path: str) -> str | None:
        """The id (record path) of the job that produced `path`, or None for a source file."""
        direct = path.rstrip("/") + SUFFIX
        if (rec := self.load(direct)) is not None and self._covers(rec, path):
            return direct
        folder = os.path.dirname(path)
        # A job's record sits beside its FIRST output, which may be one folder down from this one
        # (e.g. a figure in analysis/figures/ whose job also wrote analysis/*.csv).
        below = self.abs(folder or ".")
        subfolders = sorted(p.name for p in below.iterdir() if p.is_dir()) if below.is_dir() else []
        for sub in subfolders:
            for candidate in self._in_folder(os.path.join(folder, sub) if folder else sub):
                rec = self.load(candidate)
                if rec is not None and candidate != direct and self._covers(rec, path):
                    return candidate
        while True:
            for candidate in self._in_folder(folder or "."):
                rec = self.load(candidate)
                if rec is not None and candidate != direct and self._covers(rec, path):
                    return candidate
            if folder in ("", ".", "/") or folder.startswith(".."):
                return None
            folder = os.path.dirname(folder)


def trace(target: str | Path, workdir: str | Path = ".") -> Lineage:
    """The upstream lineage of `target` (a file or a folder output), from the records."""
    records = Records(workdir)
    start = records.norm(target)
    if not records.abs(start).exists():
        raise LineageError(f"{start}: no such file or folder")
    root = records.producer(start)
    if root is None:
        raise LineageError(
            f"{start}: no provenance record lists it as an output (looked for {start}{SUFFIX})"
        )
    jobs: dict[str, JobNode] = {}
    producers: dict[str, str | None] = {start: root}
    _visit(records, root, jobs, producers)
    return Lineage(start, records.workdir, root, jobs, producers, records)


def _visit(records: Records, job_id: str, jobs: dict[str, JobNode], producers: dict[str, str | None]) -> None:
    """Depth-first, iterative (deep chains must not hit the recursion limit); producers are added first."""
    stack: list[tuple[str, bool]] = [(job_id, False)]
    nodes: dict[str, JobNode] = {}
    while stack:
        jid, expanded = stack.pop()
        if expanded:
            jobs.setdefault(jid, nodes[jid])
            continue
        if jid in nodes:
            continue
        record = records.load(jid) or {}
        inputs = [records.norm(i["path"]) for i in record.get("inputs", []) if "path" in i]
        node = JobNode(id=jid, record=record, inputs=inputs, outputs=records.outputs_of(record))
        nodes[jid] = node
        stack.append((jid, True))
        for path in inputs:
            if path not in producers:
                producers[path] = records.producer(path)
            up = producers[path]
            if up is not None and up not in node.upstream:
                node.upstream.append(up)
        stack.extend((up, False) for up in reversed(node.upstream) if up not in nodes)


# --- renderings -----------------------------------------------------------------------------------


def _job_json(job: JobNode, lineage: Lineage) -> dict[str, Any]:
    rec = job.record
    inputs = [
        {**i, "path": p, "producer": lineage.producers.get(p)}
        for i, p in zip(rec.get("inputs", []), job.inputs, strict=False)
    ]
    return {
        "id": job.id,
        "rule": job.rule,
        "wildcards": rec.get("wildcards", {}),
        "upstream": job.upstream,
        "inputs": inputs,
        "record": rec,
    }


def to_json(lineage: Lineage) -> dict[str, Any]:
    return {
        "target": lineage.target,
        "workdir": str(lineage.workdir),
        "traced_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "root": lineage.root,
        "summary": {"jobs": len(lineage.jobs), "rules": dict(sorted(lineage.rules().items()))},
        "jobs": [_job_json(j, lineage) for j in lineage.jobs.values()],
        "sources": [{"path": p, "used_by": u} for p, u in lineage.sources().items()],
    }


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def _code(record: dict[str, Any]) -> str:
    code = record.get("code") or {}
    commit = (code.get("git_commit") or "no-git")[:8]
    return commit + ("+dirty" if code.get("dirty") else "")


def job_line(job: JobNode) -> str:
    rec = job.record
    when = str(rec.get("finished") or rec.get("started") or "?")[:19].replace("T", " ")
    return f"{job.label()}  ({when}, {rec.get('wall_s', '?')} s, code {_code(rec)})"


def _file_sha(lineage: Lineage) -> str | None:
    """The target's sha256 as recorded by the job that produced it (None for a folder or a file in one)."""
    for out in lineage.jobs[lineage.root].record.get("outputs", []):
        if lineage.records.norm(out.get("path", "")) == lineage.target:
            return out.get("sha256")
    return None


def tree(lineage: Lineage) -> str:
    """A readable tree: each file under the job that produced it; a job shown once, later referenced."""
    lines = [lineage.target]
    shown: set[str] = set()

    def job_lines(jid: str, prefix: str) -> None:
        job = lineage.jobs[jid]
        if jid in shown:
            lines.append(f"{prefix}└─ {job.label()}  (see above)")
            return
        shown.add(jid)
        lines.append(f"{prefix}└─ {job_line(job)}")
        inner = prefix + "   "
        for k, path in enumerate(job.inputs):
            last = k == len(job.inputs) - 1
            lines.append(f"{inner}{'└─' if last else '├─'} {path}")
            up = lineage.producers.get(path)
            if up is not None:
                job_lines(up, inner + ("   " if last else "│  "))

    job_lines(lineage.root, "")
    rules = ", ".join(f"{r} {n}" for r, n in sorted(lineage.rules().items()))
    lines.append(f"\n{len(lineage.jobs)} jobs ({rules}); {len(lineage.sources())} source files")
    return "\n".join(lines)


def _dot_id(i: int, kind: str) -> str:
    return f"{kind}{i}"


def to_dot(lineage: Lineage) -> str:
    """Graphviz source: jobs as boxes, source files as notes, the target highlighted."""
    ids = {jid: _dot_id(i, "j") for i, jid in enumerate(lineage.jobs)}
    out = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for jid, job in lineage.jobs.items():
        wc = "\\n".join(f"{k}={v}" for k, v in (job.record.get("wildcards") or {}).items())
        label = json.dumps(f"{job.rule}\\n{wc}" if wc else job.rule).replace("\\\\n", "\\n")
        out.append(f"  {ids[jid]} [shape=box, style=rounded, label={label}];")
    for i, (path, users) in enumerate(lineage.sources().items()):
        sid = _dot_id(i, "s")
        out.append(f"  {sid} [shape=note, label={json.dumps(path)}];")
        out += [f"  {sid} -> {ids[u]};" for u in users if u in ids]
    for jid, job in lineage.jobs.items():
        out += [f"  {ids[up]} -> {ids[jid]};" for up in job.upstream]
    out.append(f"  target [shape=doubleoctagon, label={json.dumps(lineage.target)}];")
    out.append(f"  {ids[lineage.root]} -> target;")
    out.append("}")
    return "\n".join(out) + "\n"


def _ledger_totals(lineage: Lineage) -> tuple[int, int, int, float | None]:
    calls = tok_in = tok_out = 0
    cost: float | None = None
    for job in lineage.jobs.values():
        led = job.record.get("ledger") or {}
        part = led.get("stats") or led.get("call_store") or {}
        calls += int(part.get("calls") or 0)
        tok_in += int(part.get("input_tokens") or 0)
        tok_out += int(part.get("output_tokens") or 0)
        if part.get("cost_usd") is not None:
            cost = (cost or 0.0) + float(part["cost_usd"])
    return calls, tok_in, tok_out, cost


def _models(lineage: Lineage) -> list[str]:
    seen: dict[str, str] = {}
    for job in lineage.jobs.values():
        for m in job.record.get("models") or []:
            info = m.get("model_info") or {}
            if info:
                where = info.get("repo") and f"{info['repo']}@{info.get('revision')}"
                where = where or f"{info.get('source')} {info.get('package', '')}/{info.get('file', '')}"
                seen[str(info.get("model"))] = where
            elif m.get("model"):
                seen[f"{m.get('name')}"] = f"{m.get('backend')} API model {m['model']}"
    return [f"{md_code(k)}: {md_text(v)}" for k, v in sorted(seen.items())]  # names the models reported


def markdown(lineage: Lineage, md_path: str | Path | None = None) -> str:
    """`<output>.lineage.md`: summary, jobs by rule, source files and the full tree. `md_path` (default
    beside the target) is where the page will be, for its relative link to the root job's record."""
    root = lineage.jobs[lineage.root]
    sha = _file_sha(lineage)
    calls, tok_in, tok_out, cost = _ledger_totals(lineage)
    page = Path(md_path) if md_path is not None else lineage.workdir / lineage_md_path(lineage.target)
    record_link = os.path.relpath(lineage.workdir / root.id, Path(os.path.abspath(page)).parent)
    per_rule: dict[str, list[JobNode]] = {}
    for job in lineage.jobs.values():
        per_rule.setdefault(job.rule, []).append(job)
    lines = [
        f"# Lineage of {md_code(lineage.target)}",
        "",
        "Rebuilt from the jobs' provenance records (`*.prov.json`) by "
        f"`python -m agorabench.provenance trace {lineage.target}`; "
        f"check it with `python -m agorabench.provenance verify {lineage.target}`.",
        "",
        "| | |",
        "|---|---|",
        f"| file | {md_code(lineage.target)} (sha256 `{_short(sha)}`) |",
        f"| produced by | {md_code(root.label())}, finished {root.record.get('finished', '?')}, "
        f"code {_code(root.record)} ([record]({record_link})) |",
        f"| upstream jobs | {len(lineage.jobs)} |",
        f"| models | {'; '.join(_models(lineage)) or '-'} |",
        f"| LLM calls | {calls} ({tok_in} input / {tok_out} output tokens)"
        + (f", ${cost:.2f}" if cost is not None else "")
        + " |",
        "",
        "## Jobs by rule",
        "",
        "| rule | jobs | wall time (s) | code versions |",
        "|---|---:|---:|---|",
    ]
    for rule, jobs in sorted(per_rule.items()):
        wall = sum(float(j.record.get("wall_s") or 0) for j in jobs)
        codes = ", ".join(sorted({_code(j.record) for j in jobs}))
        lines.append(f"| {md_code(rule)} | {len(jobs)} | {wall:.1f} | {codes} |")
    lines += ["", "## Source files", ""]
    lines += [
        f"- {md_code(p)} (read by {len(u)} job{'s' if len(u) > 1 else ''})"
        for p, u in lineage.sources().items()
    ]
    lines += ["", "## Tree", "", "<details><summary>every upstream job and file</summary>", ""]
    lines += [md_fence(tree(lineage)), "", "</details>", ""]
    return "\n".join(lines)


def lineage_md_path(target: str | Path) -> Path:
    """Where the lineage of a table or figure is written (the report links `<output>.lineage.md`)."""
    return Path(str(target).rstrip("/") + ".lineage.md")


def write_lineage_md(
    target: str | Path, out: str | Path | None = None, workdir: str | Path = "."
) -> dict[str, Any]:
    """Trace `target` and write its lineage as Markdown (by default to `<target>.lineage.md`)."""
    from agorabench.jsonl import write_text

    lineage = trace(target, workdir)
    path = Path(out) if out is not None else Path(workdir) / lineage_md_path(lineage.target)
    write_text(path, markdown(lineage, path))
    return {"path": str(path), "jobs": len(lineage.jobs), "sources": len(lineage.sources())}
