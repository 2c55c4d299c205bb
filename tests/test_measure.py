"""benchmarks/measure.py: the process-tree walk survives processes that exit while it runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
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
    assert measure._tree_rss_kib(gone) == {}


def test_the_tree_holds_a_running_child():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in measure._children(os.getpid())
        tree = measure._tree_rss_kib(os.getpid())
        assert tree[child.pid] > 0 and tree[os.getpid()] > 0
        assert list(measure._tree_rss_kib(child.pid)) == [child.pid]
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


def test_processes_are_named_by_their_script(tmp_path):
    script = tmp_path / "tmpab_12xyz.train_all.py"  # how Snakemake names its copy of a rule's script
    script.write_text("import time; time.sleep(30)")
    child = subprocess.Popen([sys.executable, str(script)])
    module = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(1)  # both started
        assert measure._label(child.pid) == "train_all.py"
        assert measure._label(module.pid) == "http.server"
    finally:
        for proc in (child, module):
            proc.kill()
            proc.wait()


def test_the_report_names_what_ran_at_the_peak(tmp_path):
    out = tmp_path / "m.json"
    script = Path(__file__).parents[1] / "benchmarks" / "measure.py"
    hold = "b = bytearray(64 * 2**20); import time; time.sleep(2)"  # 64 MiB resident for two seconds
    cmd = [sys.executable, str(script), "--interval", "0.1", "--out", str(out), "--",
           sys.executable, "-c", hold]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    import json

    report = json.loads(out.read_text())
    assert report["peak_tree_rss_gib"] >= 64 / 1024
    assert 0 < report["peak_at_s"] < report["wall_s"]
    assert report["at_peak_mib"][0][0] >= 64
