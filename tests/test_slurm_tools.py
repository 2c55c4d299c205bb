"""tools/slurm: the local-SLURM script and its config templates (no daemons are started here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools/slurm"
SCRIPT = TOOLS / "start-slurm.sh"


def test_the_script_parses_and_rejects_unknown_commands():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)
    proc = subprocess.run(["bash", str(SCRIPT), "restart"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "usage:" in proc.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_the_script_is_shellcheck_clean():
    proc = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


def test_every_template_placeholder_is_filled_by_the_script():
    filled = set(re.findall(r'-e "s\|@(\w+)@\|', SCRIPT.read_text()))
    assert {"STATE", "HOST", "CPUS", "GPUS", "DB_PORT"} <= filled
    for template in TOOLS.glob("*.in"):
        used = set(re.findall(r"@(\w+)@", template.read_text()))
        assert used <= filled, f"{template.name}: {sorted(used - filled)} never filled"


def test_the_cluster_has_the_partitions_and_gpus_the_profile_expects():
    conf = (TOOLS / "slurm.conf.in").read_text()
    assert re.search(r"^PartitionName=cpu\s.*Default=YES", conf, re.MULTILINE)
    assert re.search(r"^PartitionName=h100\s", conf, re.MULTILINE)
    assert "Gres=gpu:h100:@GPUS@" in conf and "AccountingStorageTRES=gres/gpu" in conf
    assert "accounting_storage/slurmdbd" in conf  # sacct, the plugin's status command, needs it
    assert "File=@STATE@/gpus/nvidia[0-@LAST_GPU@]" in (TOOLS / "gres.conf.in").read_text()
