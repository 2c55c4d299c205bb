"""Seed sets -> seed records {id, instruction, response} (docs/formats.md).

Source formats (`source["format"]`):
- `agora_json`: the official AgoraBench seed files (one JSON array; fields config, instruction, response,
  optional idx); id = "{config}/{idx}", or "{config}/{position}" where a record has no idx.
- `jsonl`: already normalised records (`path`).
- `demo`: agorabench/data/demo/seeds/<name>.jsonl shipped with the package (`name`); a name
  `reference_<x>` reads demo/reference/<x>.jsonl (the demo's reference SFT data is `reference_sft`).
- `hf`: a Hugging Face dataset at a pinned revision (`repo`, `revision`, `split`, `instruction_field`,
  optional `response_field` (absent: responses are ""), `config`, `data_files`, `cache_dir`, `id_field`,
  `id_prefix`).

Records keep the source's order; `limit` keeps the first N of them.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from agorabench.data._common import (
    PATH_TYPES,
    RecordError,
    check_limit,
    check_unique_ids,
    demo_path,
    field,
    hf_records,
    json_array_records,
    jsonl_records,
    normalise_all,
    require,
    source_format,
)

SEED_FORMATS = ("agora_json", "jsonl", "demo", "hf")


def _seed(id_: str, instruction: str, response: str) -> dict[str, str]:
    if not instruction.strip():
        raise RecordError(f"seed {id_!r} has an empty instruction")
    return {"id": id_, "instruction": instruction, "response": response}


def _agora_seed(row: dict[str, Any], index: int) -> dict[str, str]:
    config = field(row, "config", nonempty=True)
    idx = row.get("idx", index)
    if not isinstance(idx, int | str) or isinstance(idx, bool) or str(idx) == "":
        raise RecordError(f"field 'idx' must be an integer or a non-empty string, got {idx!r}")
    return _seed(f"{config}/{idx}", field(row, "instruction"), field(row, "response"))


def _normalised_seed(row: dict[str, Any], index: int) -> dict[str, str]:
    return _seed(field(row, "id", nonempty=True), field(row, "instruction"), field(row, "response"))


def _hf_seed(
    row: dict[str, Any],
    index: int,
    *,
    instruction: str,
    response: str | None,
    id_field: str | None,
    id_prefix: str,
) -> dict[str, str]:
    key = field(row, id_field, (str, int)) if id_field else index
    return _seed(f"{id_prefix}/{key}", field(row, instruction), field(row, response) if response else "")


def _load_hf(source: dict[str, Any], where: str) -> list[dict[str, str]]:
    fn = partial(
        _hf_seed,
        instruction=require(source, "instruction_field", where),
        response=source.get("response_field"),
        id_field=source.get("id_field"),
        id_prefix=source.get("id_prefix") or f"{source.get('repo')}/{source.get('split')}",
    )
    return normalise_all(hf_records(source, where), fn)


def _demo_location(name: object) -> tuple[str, object]:
    """(folder, file name) of a demo seed set: `reference_<x>` lives in demo/reference/, others in seeds/."""
    if isinstance(name, str) and name.startswith("reference_"):
        return "reference", name.removeprefix("reference_")
    return "seeds", name


def load_seeds(
    source: dict[str, Any], limit: int | None = None, *, where: str = "source"
) -> list[dict[str, str]]:
    """Load a seed set as seed records; `where` is the config key named in errors."""
    fmt = source_format(source, where, SEED_FORMATS)
    check_limit(limit, where)
    if fmt == "agora_json":
        origin = require(source, "path", where, PATH_TYPES)
        seeds = normalise_all(json_array_records(origin), _agora_seed)
    elif fmt == "jsonl":
        origin = require(source, "path", where, PATH_TYPES)
        seeds = normalise_all(jsonl_records(origin), _normalised_seed)
    elif fmt == "demo":
        origin = str(demo_path(*_demo_location(source.get("name")), where))
        seeds = normalise_all(jsonl_records(origin), _normalised_seed)
    else:
        origin = f"hf://datasets/{source.get('repo')}"
        seeds = _load_hf(source, where)
    check_unique_ids(seeds, origin)
    return seeds if limit is None else seeds[:limit]
