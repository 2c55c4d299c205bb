"""The official validators' tokenizer (Meta-Llama-3.1-8B-Instruct in agora_scripts/run.py), built offline.

Meta's tiktoken BPE file for Llama 3 / 3.1 (`llama3/tokenizer.model`: 128,000 ranks) ships in PyPI's
`llama-models` wheel (Meta's package). The wheel is downloaded at a pinned version with pip into a cache
folder (never installed: it also installs a top-level `models` package), it and the BPE file are checked by
sha256, and the file is made into a transformers fast tokenizer the way HF's Llama-3.1 tokenizer is built:
transformers' `TikTokenConverter` (Llama-3 pre-tokenizer regex, byte level, whole pieces looked up before
merging, as tiktoken does), the 256 special tokens at 128000-128255 (recognised in the text by `encode`), and
a post-processor that puts `<|begin_of_text|>` before every encoded text. The folder is saved with
`save_pretrained`, so callers load it with `AutoTokenizer.from_pretrained`, as data-agora and the project do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "llama-models==0.3.0"
WHEEL_FILE = "llama_models-0.3.0-py3-none-any.whl"
WHEEL_SHA256 = "7f77f78ff13fca09f70d76a376aff6414cd901623fb9d57e69c2f8367a73032f"
MODEL_MEMBER = "llama_models/llama3/tokenizer.model"
MODEL_SHA256 = "82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55"  # Meta's Llama-3 file
HUB_NAME = "meta-llama/Meta-Llama-3.1-8B-Instruct"  # the name run.py gives the validators
NUM_BASE, NUM_SPECIAL = 128_000, 256
# Meta's Llama 3.1 release (meta-llama/llama-models 1f0feb7, models/llama3_1/api/tokenizer.py): these at
# 128000-128010, then <|reserved_special_token_2|> ... up to 128255.
NAMED_SPECIAL = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]


class AssetMissing(RuntimeError):
    """The pinned wheel could not be had (no network, no pip) or did not match its sha256."""


def special_tokens() -> list[str]:
    reserved = [f"<|reserved_special_token_{2 + i}|>" for i in range(NUM_SPECIAL - len(NAMED_SPECIAL))]
    return NAMED_SPECIAL + reserved


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def obtain_wheel(folder: Path, timeout: float = 300) -> Path:
    """The pinned llama-models wheel in `folder`, downloaded with pip (no dependencies) when absent."""
    wheel = folder / WHEEL_FILE
    if not wheel.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        cmd += ["-d", str(folder), WHEEL]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.SubprocessError) as e:
            detail = getattr(e, "stderr", "") or str(e)
            raise AssetMissing(f"pip download {WHEEL} failed: {detail.strip()[-300:]}") from e
    if sha256_of(wheel) != WHEEL_SHA256:
        raise AssetMissing(f"{wheel}: sha256 {sha256_of(wheel)}, expected {WHEEL_SHA256}")
    return wheel


def extract_model(wheel: Path, out: Path) -> Path:
    """`llama3/tokenizer.model` from the wheel, written to `out` and checked by sha256."""
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MODEL_MEMBER)
    if (digest := hashlib.sha256(data).hexdigest()) != MODEL_SHA256:
        raise AssetMissing(f"{wheel}!{MODEL_MEMBER}: sha256 {digest}, expected {MODEL_SHA256}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def build_tokenizer(model: Path):
    """The transformers fast tokenizer of the BPE file (see the module docstring)."""
    if importlib.util.find_spec("tiktoken") is None:  # TikTokenConverter reads the file with tiktoken
        raise AssetMissing("tiktoken is not installed (requirements.txt pins it)")
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    specials = special_tokens()
    backend = TikTokenConverter(vocab_file=str(model), extra_special_tokens=specials).converted()
    bos = specials[0]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, NUM_BASE)]
    )
    assert backend.get_vocab_size() == NUM_BASE + NUM_SPECIAL
    assert [backend.token_to_id(t) for t in specials] == list(range(NUM_BASE, NUM_BASE + NUM_SPECIAL))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token="<|eot_id|>", model_max_length=131072
    )


def tokenizer_dir(cache: Path) -> Path:
    """A transformers folder of the tokenizer under `cache`, built once (wheel -> BPE file -> folder)."""
    out = cache / f"llama3-tokenizer-{MODEL_SHA256[:12]}"
    if (out / "tokenizer.json").is_file():
        return out
    wheel = obtain_wheel(cache / "wheels")
    model = extract_model(wheel, cache / "llama3-bpe" / "tokenizer.model")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    build_tokenizer(model).save_pretrained(str(tmp))
    tmp.replace(out)
    return out


def asset_record() -> dict[str, str]:
    """What a corpus built with this tokenizer records about it."""
    return {
        "hub_name": HUB_NAME,
        "wheel": WHEEL,
        "wheel_sha256": WHEEL_SHA256,
        "file": MODEL_MEMBER,
        "file_sha256": MODEL_SHA256,
        "built_by": "tools/official/llama3_tokenizer.py",
    }
