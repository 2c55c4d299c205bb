"""Training rows: JSONL instances -> conversational prompt/completion rows; errors name file and record."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import iter_jsonl

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class TrainRecord:
    id: str
    line: int
    instruction: str
    response: str


def _check_record(path: str | Path, line: int, obj: dict[str, Any]) -> TrainRecord:
    rid = obj.get("id")
    if not isinstance(rid, str) or not rid:
        raise DataError(path, "missing or empty string field 'id'", line=line)
    for field in ("instruction", "response"):
        value = obj.get(field)
        if not isinstance(value, str):
            raise DataError(path, f"field '{field}' missing or not a string", line=line, record=rid)
        if not value.strip():
            raise DataError(path, f"field '{field}' is empty", line=line, record=rid)
    return TrainRecord(rid, line, obj["instruction"], obj["response"])


def load_records(path: str | Path) -> list[TrainRecord]:
    """Read and check the training JSONL (fields id, instruction, response; see docs/formats.md)."""
    records: list[TrainRecord] = []
    # iter_jsonl skips blank lines; count lines ourselves so errors name the right one.
    lines = _nonblank_line_numbers(path)
    for lineno, obj in zip(lines, iter_jsonl(path), strict=False):
        records.append(_check_record(path, lineno, obj))
    if not records:
        raise DataError(path, "no training records (empty file)")
    return records


def _nonblank_line_numbers(path: str | Path) -> list[int]:
    if not Path(path).is_file():
        raise DataError(path, "file not found")
    with Path(path).open(encoding="utf-8") as fh:
        return [n for n, line in enumerate(fh, 1) if line.strip()]


def to_conversation(rec: TrainRecord) -> dict[str, Any]:
    """A prompt/completion row: TRL masks the prompt, so the loss covers the response tokens only."""
    return {
        "id": rec.id,
        "prompt": [{"role": "user", "content": rec.instruction}],
        "completion": [{"role": "assistant", "content": rec.response}],
    }


def set_chat_template(tokenizer: Any, choice: str, model_dir: str) -> str:
    """Install the chat template named by `training.chat_template`; returns where it came from."""
    if choice == "model":
        if not tokenizer.chat_template:
            raise ConfigError(
                "training.chat_template",
                f"the model at {model_dir} has no chat template; give a .jinja file or a built-in name "
                f"({', '.join(builtin_templates())})",
            )
        return "model"
    path = TEMPLATES_DIR / f"{choice}.jinja" if choice in builtin_templates() else Path(choice)
    if not path.is_file():
        raise ConfigError("training.chat_template", f"no such template file or built-in name: {choice!r}")
    tokenizer.chat_template = path.read_text(encoding="utf-8")
    return str(path)


def builtin_templates() -> list[str]:
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.jinja"))


def _render_ids(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    # The same call TRL makes when it tokenizes a conversational prompt/completion row.
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
    )
    return list(out["input_ids"])


def check_template(tokenizer: Any) -> int:
    """Fail early on a template that cannot mask the prompt; return the end-of-turn token id."""
    prompt = [{"role": "user", "content": "Say hi."}]
    reply = [{"role": "assistant", "content": "hi"}]
    try:
        prompt_ids = _render_ids(tokenizer, prompt, True)
        full_ids = _render_ids(tokenizer, prompt + reply, False)
    except Exception as exc:  # jinja errors surface as several exception types
        raise ConfigError("training.chat_template", f"template does not render: {exc}") from None
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ConfigError(
            "training.chat_template",
            "the rendered prompt is not a prefix of prompt + response, so the prompt cannot be masked",
        )
    return _end_of_turn(tokenizer, full_ids[len(prompt_ids) :])


def _end_of_turn(tokenizer: Any, completion_ids: list[int]) -> int:
    special = set(tokenizer.all_special_ids) | {
        i for i, t in tokenizer.added_tokens_decoder.items() if getattr(t, "special", False)
    }
    for tid in completion_ids:
        if tid in special:
            return tid
    raise ConfigError("training.chat_template", "the template ends an assistant turn with no special token")


def token_lengths(tokenizer: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Tokens per row as TRL will see them (prompt + completion through the chat template)."""
    return [len(_render_ids(tokenizer, r["prompt"] + r["completion"], False)) for r in rows]


def check_lengths(
    path: str | Path, records: list[TrainRecord], lengths: list[int], max_length: int, truncate: bool
) -> int:
    """Raise DataError for the first record over max_length unless truncating; returns how many are over."""
    over = [(rec, n) for rec, n in zip(records, lengths, strict=True) if n > max_length]
    if over and not truncate:
        rec, n = over[0]
        raise DataError(
            path,
            f"{n} tokens > training.max_length {max_length} ({len(over)} record(s) too long; "
            "set training.truncate: true to keep their start instead)",
            line=rec.line,
            record=rec.id,
        )
    if over:
        log.warning("%d record(s) longer than max_length %d will be truncated", len(over), max_length)
    return len(over)


# --- the training set of a student: the generated set, plus the seed set for instance generation ---------

SEED_ID_PREFIX = "seed/"  # ids of seed records in a training set (generated ids never start with it)


def assemble_training_data(
    generated_path: str | Path, seeds_path: str | Path | None, out_path: str | Path
) -> dict[str, int]:
    """Write the training JSONL: the generated records, then (when `seeds_path` is given; the paper's
    Table 1 caption for instance generation) every seed record with its id prefixed by `seed/`."""
    from agorabench.jsonl import write_jsonl

    generated = list(iter_jsonl(generated_path))
    bad = next((r.get("id") for r in generated if str(r.get("id", "")).startswith(SEED_ID_PREFIX)), None)
    if bad is not None:
        raise DataError(generated_path, f"a generated id may not start with {SEED_ID_PREFIX!r}", record=bad)
    rows = [{k: r[k] for k in ("id", "instruction", "response") if k in r} for r in generated]
    seeds = list(iter_jsonl(seeds_path)) if seeds_path else []
    for seed in seeds:
        rows.append({**seed, "id": f"{SEED_ID_PREFIX}{seed['id']}"})
    write_jsonl(out_path, rows)
    return {"generated_records": len(generated), "seed_records": len(seeds), "records": len(rows)}


def composition(records: list[TrainRecord]) -> dict[str, int]:
    """How many training records are seeds (id prefix `seed/`) and how many were generated."""
    seeds = sum(1 for r in records if r.id.startswith(SEED_ID_PREFIX))
    return {"seed_records": seeds, "generated_records": len(records) - seeds}


def precision_label(bf16: bool, pure_bf16: bool) -> str:
    if pure_bf16:
        return "pure bf16: bf16 weights, gradients and AdamW states"
    return "bf16 autocast, fp32 master weights" if bf16 else "fp32"
