"""The official validators' Llama-3 tokenizer, built offline (tools/official/llama3_tokenizer.py).

data-agora's length rule encodes with the tokenizer of
`AutoTokenizer.from_pretrained("meta-llama/Meta-Llama-3.1-8B-Instruct")`. Here that tokenizer is built from
Meta's BPE file in PyPI's llama-models wheel (pinned, sha256-checked) and must encode as Meta's own tokenizer
class from the same wheel does (tiktoken, special tokens allowed) plus the `<|begin_of_text|>` HF's encode
puts first, on every text the corpus's length rule counts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import CACHE, llama3_tokenizer_module

from agorabench.generation.official import official_token_counter

lt = llama3_tokenizer_module()
CORPUS = json.loads((Path(__file__).parent / "data" / "generation_official_corpus.json").read_text("utf-8"))
EXTRA = [
    "",
    "Hello world",
    "  leading and trailing spaces  ",
    "tabs\tand\r\nCRLF\n\n\nand blank lines",
    "numbers 1234567890 3.14159 -42 1e10",
    "unicode: naïve café, 日本語のテキスト, emoji 🙂🚀, Ελληνικά",
    "code:\n```python\ndef f(x):\n    return x ** 2  # square\n```",
    "specials inside <|eot_id|> and <|start_header_id|>user<|end_header_id|>",
    "a" * 3000 + " " * 50 + "b",
    "it's we'll THEY'RE I'M you'd",
]


def test_the_corpus_records_the_asset_it_was_judged_with():
    assert CORPUS["tokenizer"] == "llama3"
    assert CORPUS["tokenizer_asset"] == lt.asset_record()
    assert lt.MODEL_SHA256 == "82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55"


def test_special_tokens_have_the_llama3_ids(llama3_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(llama3_tokenizer_dir))
    assert len(tok) == 128256
    ids = {
        "<|begin_of_text|>": 128000,
        "<|end_of_text|>": 128001,
        "<|finetune_right_pad_id|>": 128004,
        "<|start_header_id|>": 128006,
        "<|end_header_id|>": 128007,
        "<|eom_id|>": 128008,
        "<|eot_id|>": 128009,
        "<|python_tag|>": 128010,
    }
    assert {t: tok.convert_tokens_to_ids(t) for t in ids} == ids
    assert tok.encode("") == [128000]  # encode puts the BOS first
    assert tok.encode("<|eot_id|>") == [128000, 128009]  # special tokens in the text are recognised


def _counted_texts() -> list[str]:
    """Every text the official length rule encodes for the corpus (the Llama-3 format of each pair)."""
    texts: list[str] = []

    class Recorder:
        def encode(self, text: str) -> list[int]:
            texts.append(text)
            return []

    count = official_token_counter(Recorder())
    for case in CORPUS["cases"]:
        count(case.get("seed_instruction", ""), case["text"])
        if parsed := case["official"].get("parsed"):
            count(parsed["instruction"], parsed["response"])
    return texts + EXTRA


@pytest.fixture(scope="module")
def meta_tokenizer(llama3_tokenizer_dir, tmp_path_factory):
    """llama_models.llama3.tokenizer.Tokenizer, imported from the pinned wheel itself (not installed)."""
    pytest.importorskip("tiktoken", reason="tiktoken (requirements.txt) not installed")
    wheel = lt.obtain_wheel(CACHE / "wheels")
    model = lt.extract_model(wheel, tmp_path_factory.mktemp("bpe") / "tokenizer.model")
    sys.path.insert(0, str(wheel))
    try:
        from llama_models.llama3.tokenizer import Tokenizer
    finally:
        sys.path.remove(str(wheel))
    return Tokenizer(model)


def test_encode_equals_metas_tokenizer_on_the_counted_texts(llama3_tokenizer_dir, meta_tokenizer):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(llama3_tokenizer_dir))
    texts = _counted_texts()
    assert len(texts) > 100
    for text in texts:
        meta = meta_tokenizer.encode(text, bos=True, eos=False, allowed_special="all")
        assert tok.encode(text) == meta, text[:200]
