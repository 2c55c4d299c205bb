"""Record the official code's verdict on every case of the validation corpus.

    python tools/official/verdicts.py --git-dir DATA_AGORA_GIT tests/data/generation_official_corpus.json
        [--tokenizer llama3|whitespace] [--cache DIR (default $AGORABENCH_CACHE or .cache)]

Each case (a project-written completion for one setting) goes through data-agora's own `Agora.run_single`
for a single attempt, set up as `agora_scripts/run.py`'s main() sets up that (method, domain): its prompt
loader, parser, validator and placeholder formats, with an LLM stand-in that returns the case's text and
finish reason (or raises, for finish reason "error"). An accepted instance then goes through
`upload_to_hf.process_json_files` (the clean-up). The verdict, the parsed and cleaned pair, and for response
generation the sha256 of the official prompt are written back into the corpus file with the commit and
this tool's name. The validators' tokenizer (Meta-Llama-3.1-8B-Instruct in run.py) is, with `--tokenizer
llama3` (the default), the same tokenizer built offline from Meta's BPE file in the pinned llama-models wheel
(llama3_tokenizer.py beside this file), loaded by data-agora's own `AutoTokenizer.from_pretrained`; with
`--tokenizer whitespace`, a whitespace split (the corpus's earlier stand-in). The corpus records which.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import random
import sys
import tempfile
import types
from contextlib import redirect_stdout
from pathlib import Path

import llama3_tokenizer
from _checkout import COMMIT, import_data_agora, placeholder_formats, run_py_literal, working_tree

DOMAIN = {"math": "math", "code": "code", "instruction_following": "general"}
ROOT = Path(__file__).resolve().parents[2]


class WhitespaceTokenizer:
    """encode() = whitespace split; the corpus's stand-in for the Llama-3 tokenizer."""

    def encode(self, text: str) -> list[str]:
        return text.split()

    @classmethod
    def from_pretrained(cls, name: str) -> WhitespaceTokenizer:
        return cls()


class CorpusLLM:
    model_name = "corpus"

    def __init__(self, text: str, finish_reason: str):
        self.text, self.finish_reason = text, finish_reason

    def chat(self, messages, **kwargs):
        if self.finish_reason == "error":
            raise RuntimeError("backend error")
        return {
            "model": "corpus",
            "choices": [{"finish_reason": self.finish_reason, "message": {"content": self.text}}],
        }


def _template(tree: Path, case: dict) -> str:
    d = DOMAIN[case["domain"]]
    name = f"{case['method']}_{d}_prompt.txt"
    if case["variant"] == "json":
        name = f"instance_generation_{d}_prompt_json_formatted.txt"
    return (tree / "agora_scripts" / "prompts" / name).read_text(encoding="utf-8")


def _loader(da, tree: Path, case: dict, formats: dict):
    pl = da.core.prompt_loaders
    template = _template(tree, case)
    d = DOMAIN[case["domain"]]
    if case["method"] == "instance_generation":
        seed_file = tree / f"libs/data-agora/tests/seed_data/{d}_seed_data_subsampled.json"
        seeds = json.loads(seed_file.read_text(encoding="utf-8"))
        common = {"prompt_template": template, "seed_data": seeds, "num_fewshot": 3}
        common |= {"num_sample_from_seed_data": 2, "placeholder_formats": formats}
        if case["variant"] == "json":
            return pl.JSONPromptLoader(**common)
        return pl.ThemeBasedInstanceGenerationPromptLoader(
            **common,
            input_theme_list=run_py_literal(tree, f"{d}_themes"),
            first_word_list=run_py_literal(tree, "general_triggers") if d == "general" else None,
        )
    seed = [{"instruction": case.get("seed_instruction", ""), "response": case.get("seed_response", "")}]
    cls = (
        pl.ResponseGenerationPromptLoader
        if case["method"] == "response_generation"
        else pl.QualityEnhancementPromptLoader
    )
    return cls(prompt_template=template, seed_data=seed, placeholder_formats=formats)


def _parser(da, case: dict):
    p = da.core.parsers
    if case["variant"] == "json":
        return p.JSONParser()
    return {
        "instance_generation": p.InstanceGenerationParser,
        "response_generation": p.ResponseGenerationParser,
        "quality_enhancement": p.QualityEnhancementParser,
    }[case["method"]]()


def _validator(da, case: dict, formats: dict, max_tokens: int, tokenizer_name: str):
    v = da.core.validators
    cls = {"math": v.MathValidator, "code": v.CodeValidator}.get(case["domain"], v.GeneralValidator)
    return cls(tokenizer_name=tokenizer_name, max_tokens=max_tokens, placeholder_formats=formats)


def _cleanup(upload, case: dict, result: dict) -> dict:
    d = DOMAIN[case["domain"]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{case['method']}_{d}_corpus.json"  # run.py's naming: "code" in the path iff code
        path.write_text(json.dumps([{"config": "corpus", **result}]), encoding="utf-8")
        (item,) = upload.process_json_files(str(path))
    return {"instruction": item["instruction"], "response": item["response"]}


def verdict(da, upload, tree: Path, case: dict, default_max_tokens: int, tokenizer_name: str) -> dict:
    formats = placeholder_formats(tree, DOMAIN[case["domain"]], case["method"])
    loader = _loader(da, tree, case, formats)
    agora = da.agora.Agora(
        llm=CorpusLLM(case["text"], case.get("finish_reason", "stop")),
        placeholder_formats=formats,
        prompt_loader=loader,
        validator=_validator(da, case, formats, case.get("max_tokens", default_max_tokens), tokenizer_name),
        parser=_parser(da, case),
        config=da.agora.AgoraConfig(max_retries=1, retry_delay=0.0, show_progress=False),
    )
    random.seed(0)
    with redirect_stdout(io.StringIO()):
        result = agora.run_single(0)
    out: dict = {"valid": result is not None}
    if case["method"] == "response_generation":
        prompt = loader.prepare(0).prompt
        out["prompt_sha256"] = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
    if result is not None:
        out["parsed"] = {"instruction": result["instruction"], "response": result["response"]}
        out["cleaned"] = _cleanup(upload, case, out["parsed"])
    return out


def _load_upload(tree: Path):
    """agora_scripts/upload_to_hf.py as a module. Its hub imports are only used for uploading, so they are
    stubbed (current huggingface_hub no longer has HfFolder); its __main__ block does not run."""
    stubs = {"datasets": types.ModuleType("datasets"), "huggingface_hub": types.ModuleType("huggingface_hub")}
    stubs["datasets"].Dataset = stubs["datasets"].DatasetDict = object
    stubs["huggingface_hub"].HfApi = stubs["huggingface_hub"].HfFolder = object
    spec = importlib.util.spec_from_file_location("upload_to_hf", tree / "agora_scripts" / "upload_to_hf.py")
    upload = importlib.util.module_from_spec(spec)
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        spec.loader.exec_module(upload)
    finally:
        for k, mod in saved.items():
            if mod is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = mod
    return upload


def _use_tokenizer(da, corpus: dict, choice: str, cache: Path) -> str:
    """The validators' `tokenizer_name` for `choice`, recorded in the corpus. llama3: the folder built from
    the pinned wheel, loaded by data-agora's own AutoTokenizer; whitespace: AutoTokenizer stubbed."""
    corpus["tokenizer"] = choice
    if choice == "whitespace":
        corpus.pop("tokenizer_asset", None)
        da.core.validators.AutoTokenizer = WhitespaceTokenizer
        return "whitespace"
    corpus["tokenizer_asset"] = llama3_tokenizer.asset_record()
    da.core.validators.AutoTokenizer = _LoadOnce(da.core.validators.AutoTokenizer)
    return str(llama3_tokenizer.tokenizer_dir(cache))


class _LoadOnce:
    """The validators' AutoTokenizer, loading each folder once (each case builds its own validator)."""

    def __init__(self, auto):
        self.auto, self.loaded = auto, {}

    def from_pretrained(self, name: str):
        if name not in self.loaded:
            self.loaded[name] = self.auto.from_pretrained(name)
        return self.loaded[name]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--checkout")
    ap.add_argument("--git-dir")
    ap.add_argument("--commit", default=COMMIT)
    ap.add_argument("--tokenizer", choices=["llama3", "whitespace"], default="llama3")
    ap.add_argument("--cache", default=os.environ.get("AGORABENCH_CACHE", str(ROOT / ".cache")))
    args = ap.parse_args()
    tree = working_tree(args.checkout, args.git_dir, args.commit)
    da = import_data_agora(tree)
    path = Path(args.corpus)
    corpus = json.loads(path.read_text(encoding="utf-8"))
    tokenizer_name = _use_tokenizer(da, corpus, args.tokenizer, Path(args.cache))
    upload = _load_upload(tree)
    for case in corpus["cases"]:
        case["official"] = verdict(da, upload, tree, case, corpus["max_tokens"], tokenizer_name)
    corpus["verdicts_by"] = {
        "tool": "tools/official/verdicts.py",
        "repo": "neulab/data-agora",
        "commit": args.commit,
    }
    path.write_text(json.dumps(corpus, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    valid = sum(c["official"]["valid"] for c in corpus["cases"])
    print(f"{len(corpus['cases'])} cases, {valid} valid by the official code")


if __name__ == "__main__":
    main()
