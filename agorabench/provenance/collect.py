"""The optional parts of a job record: config subset, code hashes, models, templates, sources, seeds, ledger.

Each collector takes plain values (no Snakemake object) and may fail; `record.job` runs every one through
`safely`, so a missing or unreadable piece is recorded under `absent` with the reason and never fails the
job. Secret values are kept out by `redact` (secret-looking keys) and `scrub` (values of secret-looking
environment variables, wherever they appear).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from agorabench.jsonl import sha256_file

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the agorabench package
SECRET_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
CALL_STORES = {  # rule -> the call store its stage function writes beside the first output
    "generate_local": "calls.jsonl",
    "generate_api": "calls.jsonl",
    "predict": "predictions.calls.jsonl",
    "score_judged": "judge_calls.jsonl",
}
# Config sections a rule's work depends on, as key paths; "{name}" is filled from the job's wildcards.
_GEN = (("generators", "{generator}"), ("generation",), ("student", "base"))
_TRAIN = (("training",), ("student",))
_EVAL = (("evaluation",), ("benchmarks", "{benchmark}"))
RULE_SECTIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "materialize_model": (("models", "{model_name}"),),
    "prepare_seeds": (("seeds", "{domain}", "{method}"),),
    "prepare_reference_data": (("student", "reference"),),
    "prepare_benchmark": (("benchmarks", "{benchmark}"),),
    "generate_local": _GEN,
    "generate_api": _GEN,
    "train_student": _TRAIN,
    "train_reference": _TRAIN,
    "predict": (("evaluation",), ("benchmarks",)),  # one job answers all of a model's benchmarks
    "score": _EVAL,
    "score_judged": _EVAL,
    "scores_table": (("benchmarks",),),
    "pgr_table": (("analysis",), ("experiments",), ("benchmarks",)),
    "figure_pgr": (("analysis",), ("experiments",)),
    "data_card": (("seeds", "{domain}", "{method}"), ("generators", "{generator}"), ("generation",)),
}


def rule_kind(rule: str) -> str:
    """The rule family a job belongs to: the per-model inference rules `predict_<set>` are `predict`."""
    return "predict" if rule.startswith("predict_") else rule


def safely(absent: dict[str, str], name: str, fn: Callable[[], Any]) -> Any:
    """fn(), or None with the reason noted in `absent[name]` (a record piece must never fail a job)."""
    try:
        return fn()
    except Exception as exc:  # any failure only makes this piece absent
        absent[name] = f"{type(exc).__name__}: {exc}"[:300]
        return None


def _secret_key(key: str) -> bool:
    upper = key.upper()
    return any(h in upper for h in SECRET_HINTS) and not upper.endswith("_ENV")  # *_env: a variable's name


def redact(obj: Any) -> Any:
    """JSON-able copy; string values under secret-looking keys become "<redacted>"."""
    if isinstance(obj, Mapping) or hasattr(obj, "items"):
        return {
            str(k): "<redacted>" if _secret_key(str(k)) and isinstance(v, str) else redact(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret (8+ characters, longest first)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if _secret_key(k) and len(v) >= 8}
    return sorted(values, key=len, reverse=True)


def scrub(obj: Any, secrets: Iterable[str]) -> Any:
    """A copy of a JSON-able object with every occurrence of a secret value replaced."""
    secrets = list(secrets)
    if not secrets:
        return obj
    if isinstance(obj, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub(v, secrets) for v in obj]
    if isinstance(obj, str):
        for s in secrets:
            obj = obj.replace(s, "<redacted>")
    return obj


# --- config ---------------------------------------------------------------------------------------


def _lookup(config: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = config
    for key in keys:
        node = node[key]
    return node


def _put(out: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = out
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def config_subset(rule: str, wildcards: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, Any]:
    """The config sections the rule's job depends on (plus the global seed), secrets redacted.

    Generators and judges bring their `models` entry when local; score_judged brings the benchmark's judge.
    """
    out: dict[str, Any] = {"seed": config.get("seed"), "results_dir": config.get("results_dir")}
    for path in RULE_SECTIONS.get(rule_kind(rule), ()):
        keys = tuple(k.format(**wildcards) for k in path)
        try:
            _put(out, keys, _lookup(config, keys))
        except (KeyError, TypeError):
            continue
    for bench in out.get("benchmarks", {}).values() if rule == "score_judged" else ():
        judge = bench.get("judge") if isinstance(bench, Mapping) else None
        if judge and judge in config.get("judges", {}):
            _put(out, ("judges", judge), config["judges"][judge])
    for section in ("generators", "judges"):
        for spec in out.get(section, {}).values():
            model = spec.get("model") if isinstance(spec, Mapping) else None
            if spec.get("backend") in ("transformers", "vllm") and model in config.get("models", {}):
                _put(out, ("models", model), config["models"][model])
    return redact(out)


# --- code -----------------------------------------------------------------------------------------


def module_key(path: str | Path) -> str:
    """A module file's key: its path below the package root (e.g. agorabench/jsonl.py)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(PACKAGE_ROOT).as_posix()
    except ValueError:
        return p.as_posix()


def loaded_modules(prefix: str = "agorabench") -> dict[str, str]:
    """sha256 of the source file of every loaded module of the package, keyed by `module_key`."""
    out = {}
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if (name == prefix or name.startswith(prefix + ".")) and file and Path(file).is_file():
            out[module_key(file)] = sha256_file(file)
    return dict(sorted(out.items()))


def script_file() -> str | None:
    """The rule script being run, or None outside a Snakemake `script:` job (whose preamble keeps the
    temporary copy's name in `__real_file__` and sets `__file__` to the original path)."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if getattr(main, "__real_file__", None) is None or not file or not Path(file).is_file():
        return None
    return str(file)


def script_hash(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    return {"path": display_path(path), "sha256": sha256_file(path)}


def display_path(path: str | Path) -> str:
    """Relative to the working directory when inside it, else absolute."""
    p = os.path.abspath(path)
    rel = os.path.relpath(p)
    return p if rel.startswith("..") else rel


# --- models, templates, sources -----------------------------------------------------------------


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def models(named_inputs: Mapping[str, Any], config_part: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Model folders among the inputs (with their model_info.json: source, hub revision...) and the
    API model ids of the generators and judges the job used."""
    out: list[dict[str, Any]] = []
    for role, value in named_inputs.items():
        for p in [value] if isinstance(value, str) else list(value):
            folder = Path(p)
            if folder.is_dir() and (folder / "config.json").is_file():
                info_file = folder / "model_info.json"
                info = _read_json(info_file) if info_file.is_file() else None
                out.append({"role": role, "path": str(p), "model_info": info})
    for section in ("generators", "judges"):
        for name, spec in config_part.get(section, {}).items():
            if spec.get("backend") in ("openai", "anthropic"):
                out.append(
                    {"role": section[:-1], "name": name, "backend": spec["backend"], "model": spec["model"]}
                )
    return out


def templates(named_inputs: Mapping[str, Any], counts: Any, outputs: Iterable[str]) -> list[dict[str, Any]]:
    """Meta-prompt and judge-prompt templates: file hash and the content hash the stage recorded."""
    out = []
    tpl = named_inputs.get("template")
    if isinstance(tpl, str):
        content = counts.get("template_sha256") if isinstance(counts, Mapping) else None
        out.append(
            {"role": "meta-prompt", "path": tpl, "sha256": sha256_file(tpl), "content_sha256": content}
        )
    for path in outputs:
        p = Path(path)
        if p.suffix == ".json" and p.is_file() and p.stat().st_size < 1 << 20:
            for src, sha in _judge_templates(_read_json(p)):
                file = Path(src) if Path(src).is_absolute() else PACKAGE_ROOT / src
                entry = {"role": "judge prompt", "path": src, "content_sha256": sha}
                if file.is_file():
                    entry |= {"path": display_path(file), "sha256": sha256_file(file)}
                out.append(entry)
    return out


def _judge_templates(obj: Any) -> Iterable[tuple[str, str | None]]:
    if isinstance(obj, dict):
        if isinstance(obj.get("judge_template"), str):
            yield obj["judge_template"], obj.get("judge_template_sha256")
        for v in obj.values():
            yield from _judge_templates(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _judge_templates(v)


def _source_files(source: Mapping[str, Any], folder: str) -> list[Path]:
    """Local files a data source reads (demo package data, paths); none for hub data sets."""
    fmt = source.get("format")
    if fmt == "demo" and isinstance(source.get("name"), str):
        from agorabench.data._common import demo_path

        name = source["name"]
        if folder == "seeds" and name.startswith("reference_"):
            return [Path(demo_path("reference", name[len("reference_") :]))]
        return [Path(demo_path(folder, name))]
    return [Path(source[k]) for k in ("path", "questions", "baseline") if isinstance(source.get(k), str)]


def sources(
    rule: str, params: Mapping[str, Any], templates_used: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Files read by the job that are not Snakemake inputs (seed and benchmark sources, judge prompts),
    hashed so that `verify` can tell when one changed."""
    found: list[tuple[str, Path]] = []
    if rule in ("prepare_seeds", "prepare_reference_data") and isinstance(params.get("source"), Mapping):
        found += [("seed source", p) for p in _source_files(params["source"], "seeds")]
    if rule == "prepare_benchmark" and isinstance(params.get("spec"), Mapping):
        found += [
            ("benchmark source", p) for p in _source_files(params["spec"].get("source", {}), "benchmarks")
        ]
    found += [("judge prompt", Path(t["path"])) for t in templates_used if t["role"] == "judge prompt"]
    out = []
    for role, path in found:
        entry: dict[str, Any] = {"role": role, "path": display_path(path)}
        entry |= {"sha256": sha256_file(path)} if path.is_file() else {"missing": True}
        out.append(entry)
    return out


# --- seeds and ledger ---------------------------------------------------------------------------


def random_seeds(**trees: Any) -> dict[str, Any]:
    """Every value under a key named `seed` (or ending in `_seed`), by dotted path."""
    out: dict[str, Any] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                sub = f"{path}.{k}"
                if (k == "seed" or str(k).endswith("_seed")) and isinstance(v, int | str) and v is not None:
                    out[sub] = v
                else:
                    walk(v, sub)
        elif isinstance(node, list | tuple):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    for name, tree in trees.items():
        walk(tree, name)
    return out


def call_store_summary(path: Path) -> dict[str, Any]:
    """Calls in a durable call store (latest row per request id): finish reasons, tokens, attempts."""
    rows: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line
            if isinstance(row, dict) and isinstance(row.get("id"), str):
                rows[row["id"]] = row
    finish = Counter(str(r.get("finish_reason")) for r in rows.values())
    return {
        "path": display_path(path),
        "calls": len(rows),
        "attempts": sum(int(r.get("attempts") or 1) for r in rows.values()),
        "input_tokens": sum(int(r.get("input_tokens") or 0) for r in rows.values()),
        "output_tokens": sum(int(r.get("output_tokens") or 0) for r in rows.values()),
        "finish_reasons": dict(sorted(finish.items())),
        "models": sorted({str(r["model"]) for r in rows.values() if r.get("model")}),
    }


STATS_KEYS = (
    "n", "valid", "shortfall", "calls", "calls_new", "calls_from_store", "retries", "rejected",
    "finish_reasons", "input_tokens", "output_tokens", "input_tokens_new", "output_tokens_new", "price",
    "cost_usd", "cost_usd_new", "models",
)  # fmt: skip


def _merged_stores(stores: list[Path]) -> dict[str, Any] | None:
    """One inference job's call stores (one per benchmark), summed, with each benchmark's summary."""
    parts = [call_store_summary(p) for p in stores if p.is_file()]
    if not parts:
        return None
    total: dict[str, Any] = {
        k: sum(p[k] for p in parts) for k in ("calls", "attempts", "input_tokens", "output_tokens")
    }
    finish: Counter[str] = Counter()
    for p in parts:
        finish.update(p["finish_reasons"])
    total["finish_reasons"] = dict(sorted(finish.items()))
    total["models"] = sorted({m for p in parts for m in p["models"]})
    return {"call_store": total | {"per_benchmark": parts}}


def ledger(rule: str, outputs: list[str], price: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The call ledger of a generation, prediction or judging job: its stats file and call store."""
    store_name = CALL_STORES.get(rule_kind(rule))
    if store_name is None or not outputs:
        return None
    if rule_kind(rule) == "predict":  # one call store per benchmark, beside its predictions.jsonl
        return _merged_stores([Path(o).parent / store_name for o in outputs[1:]])
    folder = Path(outputs[0]).parent
    out: dict[str, Any] = {}
    stats = folder / "pool.stats.json"
    if rule.startswith("generate") and stats.is_file():
        data = _read_json(stats)
        out["stats"] = {k: data.get(k) for k in STATS_KEYS if k in data}
    store = folder / store_name
    if store.is_file():
        summary = call_store_summary(store)
        if price and "stats" not in out:
            summary["cost_usd"] = (
                summary["input_tokens"] / 1e6 * price["input_per_mtok"]
                + summary["output_tokens"] / 1e6 * price["output_per_mtok"]
            )
        out["call_store"] = summary
    return out or None
