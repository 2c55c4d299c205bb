"""`python -m agorabench.provenance {trace,verify,lineage-md}`: lineage of a result from its records.

    trace FILE [--json OUT|-] [--tree] [--dot OUT] [--svg OUT] [--md [OUT]]
    verify FILE [--code strict|modules|off] [--json OUT|-]
    lineage-md FILE [FILE ...]

Paths in records are relative to the Snakemake working directory: run from it, or pass --workdir.
Exit status: 0 fine, 1 verify found problems, 2 a file has no record or a tool is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from agorabench.jsonl import write_text
from agorabench.provenance import lineage as lin
from agorabench.provenance.verify import CODE_MODES, verify


def _write(dest: str, text: str) -> None:
    if dest == "-":
        sys.stdout.write(text)
    else:
        write_text(Path(dest), text)


def render_svg(dot_source: str, out: str | Path) -> None:
    """Render Graphviz source with `dot`; a clear error when Graphviz is not installed."""
    exe = shutil.which("dot")
    if exe is None:
        raise lin.LineageError(
            "graphviz `dot` is not installed (apt-get install graphviz); write --dot and render it elsewhere"
        )
    with tempfile.NamedTemporaryFile("w", suffix=".dot", delete=False) as fh:
        fh.write(dot_source)
    try:
        subprocess.run([exe, "-Tsvg", "-o", str(out), fh.name], check=True, capture_output=True, timeout=300)
    except subprocess.CalledProcessError as exc:
        raise lin.LineageError(f"dot failed: {exc.stderr.decode(errors='replace')[:500]}") from None
    finally:
        Path(fh.name).unlink(missing_ok=True)


def _trace(args: argparse.Namespace) -> int:
    lineage = lin.trace(args.file, args.workdir)
    wrote = False
    if args.json:
        _write(args.json, json.dumps(lin.to_json(lineage), indent=2, default=str) + "\n")
        wrote = True
    if args.dot:
        _write(args.dot, lin.to_dot(lineage))
        wrote = True
    if args.svg:
        render_svg(lin.to_dot(lineage), args.svg)
        wrote = True
    if args.md is not None:
        out = args.md or Path(args.workdir) / lin.lineage_md_path(lineage.target)
        write_text(Path(out), lin.markdown(lineage, out))
        wrote = True
    if args.tree or not wrote:
        print(lin.tree(lineage))
    return 0


def _verify(args: argparse.Namespace) -> int:
    report = verify(args.file, args.workdir, code=args.code)
    if args.json:
        _write(args.json, json.dumps(report.to_json(), indent=2) + "\n")
    if args.json != "-":
        print(report.text())
    return 0 if report.ok else 1


def _lineage_md(args: argparse.Namespace) -> int:
    for f in args.files:
        print(lin.write_lineage_md(f, workdir=args.workdir)["path"])
    return 0


def parser(prog: str = "python -m agorabench.provenance") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("trace", help="the upstream jobs and files of a result, from the .prov.json records")
    t.add_argument("file")
    t.add_argument("--json", metavar="OUT", help="write the lineage as JSON (- for stdout)")
    t.add_argument(
        "--tree", action="store_true", help="print the tree (the default when nothing else is asked)"
    )
    t.add_argument("--dot", metavar="OUT", help="write Graphviz source (- for stdout)")
    t.add_argument("--svg", metavar="OUT", help="render the DAG with Graphviz `dot`")
    t.add_argument(
        "--md", nargs="?", const="", metavar="OUT", help="write Markdown (default <file>.lineage.md)"
    )
    t.set_defaults(run=_trace)
    v = sub.add_parser("verify", help="re-hash the lineage; exit 1 when something changed since")
    v.add_argument("file")
    v.add_argument("--code", choices=CODE_MODES, default="strict", help="code-version check (default strict)")
    v.add_argument("--json", metavar="OUT", help="write the report as JSON (- for stdout)")
    v.set_defaults(run=_verify)
    m = sub.add_parser("lineage-md", help="write <file>.lineage.md for tables and figures")
    m.add_argument("files", nargs="+")
    m.set_defaults(run=_lineage_md)
    for s in (t, v, m):
        s.add_argument("--workdir", default=".", help="the Snakemake working directory (default: .)")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m agorabench.provenance") -> int:
    args = parser(prog).parse_args(argv)
    try:
        return args.run(args)
    except lin.LineageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
