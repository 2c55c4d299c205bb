"""Data cards: one Markdown page per generated set (`DATACARD.md` beside `pool.jsonl`).

The card is built from files only: the pool, its stats ledger, the generation job's provenance record
and the seed set's record. Seed licenses: the demo seeds were written for this project; for the paper's
seed files the upstream data sets are named by file and their licenses given where they are known, and
"unknown" otherwise (check the upstream card before redistributing). A source entry with its own
`license` (and `upstream`) key wins (the config schema must allow these keys first).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agorabench.jsonl import read_json, read_jsonl, sha256_file, write_text
from agorabench.textsafe import md_code

UNKNOWN = "unknown"
DEMO_LICENSE = {"upstream": "written for this project (agorabench/data/demo)", "license": "Apache-2.0"}
# The paper's seed files (data-agora's seed_data/), by file name prefix; upstream per the paper's Table 1.
PAPER_SEEDS: tuple[tuple[str, list[dict[str, str]]], ...] = (
    ("math_seed_data", [{"upstream": "GSM8K (train)", "license": "MIT"},
                        {"upstream": "MATH (train)", "license": "MIT"}]),
    ("code_seed_data", [{"upstream": "MBPP", "license": "CC BY 4.0"}]),
    ("general_seed_data", [{"upstream": "LIMA", "license": UNKNOWN}]),
    ("magpie_", [{"upstream": "Magpie (Magpie-Align)", "license": UNKNOWN}]),
    ("webinstruct_", [{"upstream": "WebInstruct (TIGER-Lab)", "license": UNKNOWN}]),
    ("conala_", [{"upstream": "CoNaLa", "license": UNKNOWN}]),
)  # fmt: skip
HUB_LICENSES = {"openai/gsm8k": "MIT", "google-research-datasets/mbpp": "CC BY 4.0"}


def seed_licenses(source: Mapping[str, Any]) -> list[dict[str, str]]:
    """The upstream data sets of a seed source and their licenses (UNKNOWN where not known)."""
    if "license" in source:
        return [{"upstream": str(source.get("upstream", "as configured")), "license": str(source["license"])}]
    fmt = source.get("format")
    if fmt == "build":  # built by the workflow from its parts (agorabench/data/seed_sets.py)
        return [x for part in source.get("parts") or [] for x in seed_licenses(part.get("source") or {})]
    if fmt == "demo":
        return [dict(DEMO_LICENSE)]
    if fmt == "hf":
        repo, revision = str(source.get("repo")), source.get("revision", "?")
        if isinstance(revision, dict):  # {resolve: <branch>}: the commit is in the seed manifest
            revision = f"{revision.get('resolve')} (resolved at build; see the seed manifest)"
        return [{"upstream": f"{repo}@{revision}", "license": HUB_LICENSES.get(repo, UNKNOWN)}]
    name = Path(str(source.get("path", ""))).name
    for prefix, upstream in PAPER_SEEDS:
        if fmt == "agora_json" and name.startswith(prefix):
            return [dict(u) for u in upstream]
    return [{"upstream": name or str(fmt), "license": UNKNOWN}]


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]


def _counter_table(title: str, counts: Mapping[str, int] | None) -> list[str]:
    if not counts:
        return [f"{title}: none.", ""]
    lines = [f"| {title} | count |", "|---|---:|"]
    lines += [f"| {md_code(k)} | {v} |" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    return [*lines, ""]


def _model_text(spec: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    if spec.get("backend") in ("openai", "anthropic"):
        text = f"`{spec.get('model')}` through the {spec['backend']} API"
        return text + (f" at `{spec['base_url']}`" if spec.get("base_url") else "")
    for m in record.get("models") or []:
        info = m.get("model_info") or {}
        if m.get("role") == "model" and info:
            if info.get("source") == "hub":
                revision = md_code(info.get("revision"))
                return f"{md_code(info.get('repo'))} at revision {revision} ({spec['backend']})"
            where = md_code(f"{info.get('package')}/{info.get('file')}")
            return f"{md_code(info.get('model'))} from {md_code(info.get('source'))} {where}"
    return f"`{spec.get('model')}` ({spec.get('backend')})"


def _money(x: Any) -> str:
    return "-" if x is None else f"${float(x):.4f}"


@dataclass(frozen=True)
class CardInputs:
    """Everything a card is made from (read by `write_data_card`)."""

    pool_path: str
    stats: Mapping[str, Any]
    rows: list[dict[str, Any]]
    record: Mapping[str, Any]  # the generation job's provenance record
    seeds_path: str
    seeds_record: Mapping[str, Any]
    generator: str
    spec: Mapping[str, Any]  # the generator's config entry
    seed_source: Mapping[str, Any]
    setting: tuple[str, str, str]  # domain, method, variant
    seeds_in_training: bool = False  # students of this set also train on the seed set (Table 1 caption)


def _intro(c: CardInputs) -> list[str]:
    domain, method, variant = c.setting
    return [
        f"# Data card: `{c.generator}` · {domain} / {method} · variant `{variant}`",
        "",
        f"Synthetic training data written by the generator `{c.generator}` for the AgoraBench setting "
        f"{domain} / {method} with the meta-prompt variant `{variant}`. Each line of "
        f"`{Path(c.pool_path).name}` is one (instruction, response) pair in the record format of "
        "docs/formats.md; the sizes a student is trained on are prefixes of it (`n<size>.jsonl`).",
        "",
        "## Files",
        "",
        *_table([
            ("pool", f"`{c.pool_path}` ({len(c.rows)} instances, sha256 `{sha256_file(c.pool_path)[:16]}`)"),
            ("call store", "`calls.jsonl` beside the pool (every call, also rejected ones)"),
            ("provenance", f"`{Path(c.pool_path).name}.prov.json` beside the pool"),
        ]),
    ]  # fmt: skip


def _generator(c: CardInputs) -> list[str]:
    params = (c.record.get("params") or {}).get("generation") or {}
    price = c.stats.get("price") or c.spec.get("price")
    price_text = "-"
    if price:
        price_text = (
            f"{price.get('input_per_mtok')} in / {price.get('output_per_mtok')} out ({price.get('date')})"
        )
    return [
        "## Generator",
        "",
        *_table([
            ("name", f"`{c.generator}`"),
            ("backend", c.spec.get("backend")),
            ("model", _model_text(c.spec, c.record)),
            ("models reported by the calls", ", ".join(map(md_code, c.stats.get("models") or [])) or "-"),
            ("sampling", f"`{json.dumps(params.get('sampling', {}), sort_keys=True)}`"),
            ("random seed", params.get("seed", "-")),
            ("price (USD per 1M tokens)", price_text),
        ]),
        "## Prompt",
        "",
        *_table([
            ("meta-prompt", f"`{c.stats.get('template', '-')}`"),
            ("template origin", _ORIGIN.get(c.stats.get("template_origin"), "-")),
            ("template sha256", f"`{c.stats.get('template_sha256', '-')}`"),
            ("themes / triggers", c.stats.get("themes_from", "-") + (
                f" ({c.stats['theme_lists']})" if c.stats.get("theme_lists") else "")),
            ("validation / demonstrations",
             f"{c.stats.get('validation', 'strict')} / {c.stats.get('demonstrations', 'seeds_only')}"),
            ("max instance length", f"{c.stats.get('max_tokens', '-')} tokens (student's chat format)"),
        ]),
    ]  # fmt: skip


_ORIGIN = {
    "official": "official (neulab/data-agora)",
    "stand-in": "**stand-in** (a project-written meta-prompt, not an official data-agora one)",
}


def _counts(c: CardInputs) -> list[str]:
    st = c.stats
    return [
        "## Counts and cost",
        "",
        *_table([
            ("asked / valid / shortfall", f"{st.get('n')} / {st.get('valid')} / {st.get('shortfall')}"),
            ("calls (new / from the store)",
             f"{st.get('calls')} ({st.get('calls_new')} / {st.get('calls_from_store')})"),
            ("retries", st.get("retries", "-")),
            ("tokens in / out", f"{st.get('input_tokens')} / {st.get('output_tokens')}"),
            ("cost (all calls / paid by this run)",
             f"{_money(st.get('cost_usd'))} / {_money(st.get('cost_usd_new'))}"),
        ]),
        *_counter_table("finish reason", st.get("finish_reasons")),
        *_counter_table("rejection reason", st.get("rejected")),
    ]  # fmt: skip


def _seeds(c: CardInputs) -> list[str]:
    used = {d for r in c.rows for d in r.get("demo_ids") or []}
    used |= {r["source_id"] for r in c.rows if r.get("source_id")}
    n_seeds = (c.seeds_record.get("counts") or {}).get("records", "?")
    licenses = seed_licenses(c.seed_source)
    return [
        "## Seeds",
        "",
        *_table([
            ("seed set", f"`{c.seeds_path}` ({n_seeds} records, sha256 `{sha256_file(c.seeds_path)[:16]}`)"),
            ("source", f"`{json.dumps(dict(c.seed_source), sort_keys=True)}`"),
            ("seeds used by these instances", len(used)),
            ("students train on", "this set + the whole seed set" if c.seeds_in_training else "this set"),
            *[(f"upstream: {x['upstream']}", f"license: {x['license']}") for x in licenses],
        ]),
    ]  # fmt: skip


def _provenance(c: CardInputs) -> list[str]:
    rec, code = c.record, c.record.get("code") or {}
    version = f"commit `{code.get('git_commit')}`" + (
        " with uncommitted changes" if code.get("dirty") else ""
    )
    made_by = [i["path"] for i in rec.get("inputs", []) if str(i.get("path", "")).endswith("/settings.json")]
    return [
        "## Provenance",
        "",
        *_table([
            ("job", f"`{rec.get('rule', '?')}`, {rec.get('started', '?')} to {rec.get('finished', '?')}"),
            *[("calls made by", f"the `generate_settings` job of `{path}` (one job for all of the "
               "generator's pools); this job replayed them from the call store") for path in made_by],
            ("code", version),
            ("lineage", f"`python -m agorabench.provenance trace {c.pool_path}`"),
        ]),
        "## Use and limitations",
        "",
        "Model-written data, not reviewed by people: instructions or responses may be wrong, unsafe or "
        "copied from the seeds. It was made to compare generators in the AgoraBench protocol, not as a "
        "training set of its own. This card grants no license: the seed licenses above and the "
        "generator's terms of use apply.",
        "",
    ]  # fmt: skip


def card(c: CardInputs) -> str:
    """The card's Markdown (pure: everything comes in `c`)."""
    return "\n".join([*_intro(c), *_generator(c), *_counts(c), *_seeds(c), *_provenance(c)])


def write_data_card(
    *,
    pool_path: str,
    stats_path: str,
    seeds_path: str,
    out_path: str,
    generator: str,
    spec: Mapping[str, Any],
    seed_source: Mapping[str, Any],
    setting: tuple[str, str, str],
    seeds_in_training: bool = False,
) -> dict[str, Any]:
    """Write `DATACARD.md` for one generated set; returns counts for the job record."""
    stats = read_json(stats_path)
    rows = read_jsonl(pool_path)
    text = card(
        CardInputs(
            pool_path=pool_path,
            stats=stats,
            rows=rows,
            record=_read_record(Path(pool_path + ".prov.json")),
            seeds_path=seeds_path,
            seeds_record=_read_record(Path(seeds_path + ".prov.json")),
            generator=generator,
            spec=spec,
            seed_source=seed_source,
            setting=setting,
            seeds_in_training=seeds_in_training,
        )
    )
    write_text(Path(out_path), text)
    licenses = seed_licenses(seed_source)
    return {"instances": len(rows), "licenses": sorted({x["license"] for x in licenses})}
