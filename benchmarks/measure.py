"""Run a command and report its wall time and the peak memory of its whole process tree.

`/usr/bin/time -v` reports the largest single process; Snakemake runs several jobs at once, so this
samples the summed RSS of every descendant twice a second (Linux /proc). The command's output is passed
through and read for Snakemake's last "N of M steps" line (the job count); the load average before and
after says how much of the machine the run had. `--absent PATH` records whether PATH was missing
before the command ran (CI: `.venv`, so the figures say whether they include building the environment).

    python benchmarks/measure.py --absent .venv --out benchmarks/demo_run.json -- make demo
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

STEPS = re.compile(rb"(\d+) of (\d+) steps \(\d+%\) done")


def _children(pid: int) -> list[int]:
    out = []
    try:  # a process can exit between its status read and this listing: it has no children then
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _tree_rss_kib(root: int) -> dict[int, int]:
    """pid -> resident memory (KiB) of `root` and every descendant."""
    rss, stack = {}, [root]
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[pid] = int(line.split()[1])
                    break
        except OSError:
            continue
        stack += _children(pid)
    return rss


def _label(pid: int) -> str:
    """A short name for a process: its Python script (a Snakemake job's script is named after the rule's
    script file) or module, else its program."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
    except OSError:
        return "?"
    if script := next((a for a in argv if a.endswith(".py")), None):
        return re.sub(r"^tmp\w{8}\.", "", Path(script).name)  # Snakemake's copy: tmpXXXXXXXX.<script>
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return Path(argv[0]).name


def _relay(stream, sink, steps: list[tuple[int, int]]) -> None:
    """Copy the child's output through, keeping every Snakemake progress count seen."""
    for line in iter(stream.readline, b""):
        sink.write(line)
        sink.flush()
        if m := STEPS.search(line):
            steps.append((int(m.group(1)), int(m.group(2))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--absent", action="append", default=[], help="record whether this path was missing")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    absent = {path: not Path(path).exists() for path in args.absent}
    load_before = os.getloadavg()
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    steps: list[tuple[int, int]] = []
    relay = threading.Thread(target=_relay, args=(proc.stdout, sys.stdout.buffer, steps), daemon=True)
    relay.start()
    peak, peak_at, at_peak = 0, 0.0, []
    while proc.poll() is None:
        rss = _tree_rss_kib(proc.pid)
        if sum(rss.values()) > peak:  # what ran at the peak, largest first
            peak, peak_at = sum(rss.values()), time.time() - t0
            at_peak = sorted(((kib, _label(pid)) for pid, kib in rss.items()), reverse=True)
        time.sleep(args.interval)
    relay.join(timeout=10)
    wall = time.time() - t0
    result = {
        "command": " ".join(cmd),
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "peak_tree_rss_gib": round(peak / 2**20, 2),
        "peak_at_s": round(peak_at, 1),
        "at_peak_mib": [[round(kib / 1024), name] for kib, name in at_peak if kib >= 10 * 1024],
        # Snakemake counts every job of the DAG, the `all` target included; several invocations add up.
        "jobs": sum(total for done, total in steps if done == total) if steps else None,
        "last_progress": f"{steps[-1][0]} of {steps[-1][1]} steps" if steps else None,  # a stopped run
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "absent_before": absent,
    }
    print(json.dumps(result, indent=2), file=sys.stderr)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
