"""benchmarks/measure.py: the process-tree walk survives processes that exit while it runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SPEC = importlib.util.spec_from_file_location(
    "measure", Path(__file__).parents[1] / "benchmarks" / "measure.py"
)
measure = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(measure)


def test_an_exited_process_has_no_children_and_no_memory():
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone = int(done.stdout)
    assert measure._children(gone) == []
    assert measure._tree_rss_kib(gone) == 0


def test_the_tree_holds_a_running_child():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in measure._children(os.getpid())
        assert measure._tree_rss_kib(os.getpid()) > measure._tree_rss_kib(child.pid) > 0
    finally:
        child.kill()
        child.wait()


def test_absent_records_whether_a_path_was_missing(tmp_path):
    out = tmp_path / "m.json"
    script = Path(__file__).parents[1] / "benchmarks" / "measure.py"
    there = tmp_path / "there"
    there.mkdir()
    cmd = [sys.executable, str(script), "--absent", str(there), "--absent", str(tmp_path / "nope"),
           "--out", str(out), "--", "true"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    import json

    assert json.loads(out.read_text())["absent_before"] == {str(there): False, str(tmp_path / "nope"): True}
