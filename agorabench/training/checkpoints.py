"""Preemption checkpoints: where they live, which one to resume from, and whether it belongs to this run."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from agorabench.jsonl import write_json

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
STATE_FILE = "trainer_state.json"  # written last by Trainer._save_checkpoint: marks a complete checkpoint
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dir(output_dir: str | Path) -> Path:
    """`<parent>/<name>.checkpoints` beside the final model folder (removed when training ends)."""
    out = Path(output_dir)
    return out.with_name(out.name + ".checkpoints")


def _step(path: Path) -> int:
    match = _CKPT.match(path.name)
    return int(match.group(1)) if match else -1


def latest_checkpoint(ckpt_dir: Path, clean: bool = False) -> Path | None:
    """The newest complete checkpoint; with `clean`, incomplete ones (killed mid-write) are deleted."""
    if not ckpt_dir.is_dir():
        return None
    found = sorted((p for p in ckpt_dir.iterdir() if p.is_dir() and _step(p) >= 0), key=_step)
    complete = [p for p in found if (p / STATE_FILE).is_file()]
    for partial in set(found) - set(complete) if clean else ():
        log.warning("removing incomplete checkpoint %s", partial)
        shutil.rmtree(partial, ignore_errors=True)
    return complete[-1] if complete else None


def checkpoint_step(ckpt: Path) -> int:
    return int(json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8"))["global_step"])


def prepare(ckpt_dir: Path, fingerprint: dict[str, Any], resume: bool, is_main: bool = True) -> Path | None:
    """The checkpoint to resume from, or None (then the main process clears checkpoints of another run).

    Every rank reaches the same answer by reading; only the main process deletes or writes.
    """
    run_file = ckpt_dir / RUN_FILE
    previous = json.loads(run_file.read_text(encoding="utf-8")) if run_file.is_file() else None
    ckpt = latest_checkpoint(ckpt_dir, clean=is_main) if resume else None
    if ckpt is not None and previous != fingerprint:
        log.warning("checkpoints in %s come from a different data set or settings: starting over", ckpt_dir)
        ckpt = None
    if is_main:
        if ckpt is None and ckpt_dir.exists():
            shutil.rmtree(ckpt_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_file, fingerprint)
    return ckpt


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
