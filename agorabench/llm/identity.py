"""What answers a request: the identity of a backend and its weights, part of stored calls' request ids.

Generation and inference keep durable call stores so that reruns never pay twice; a stored completion is
reused only when the same model would be asked the same thing. The backend's defining keys (not its
operational ones such as batch size or concurrency) and, for local weights, a fingerprint of the folder
make that identity: a retrained student or a changed generator model gets fresh calls under its old name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from agorabench.errors import DataError
from agorabench.jsonl import sha256_text

# Spec keys that change what a backend answers (the rest, e.g. batch_size, concurrency or the endpoint's
# URL, which a resumed run may reach on another port or through a proxy, do not).
IDENTITY_KEYS = ("backend", "model", "prompt_format", "chat_template", "dtype", "extra_body")


SAMPLED_ABOVE = 256 << 20  # larger files are fingerprinted from three 4 MiB samples and their size
_SAMPLE = 4 << 20


def weights_fingerprint(model_dir: str | Path) -> str:
    """sha256 over a weights folder's top-level files (names, sizes, contents; subfolders such as training
    checkpoints left out). Files over 256 MiB contribute their start, middle and end (4 MiB each): any
    training step changes those, and a 70B folder is fingerprinted in a second, not minutes."""
    root = Path(model_dir)
    if not root.is_dir():
        raise DataError(root, "model folder not found")
    digest = hashlib.sha256()
    for f in sorted(p for p in root.iterdir() if p.is_file()):
        size = f.stat().st_size
        digest.update(f"{f.name}\0{size}\0".encode())
        with f.open("rb") as fh:
            if size <= SAMPLED_ABOVE:
                while chunk := fh.read(_SAMPLE):
                    digest.update(chunk)
                continue
            for offset in (0, size // 2, size - _SAMPLE):
                fh.seek(offset)
                digest.update(fh.read(_SAMPLE))
    return digest.hexdigest()


def model_identity(spec: dict[str, Any]) -> str:
    """What the stored answers depend on besides the request: the answering backend's defining keys and,
    for local weights, their fingerprint. Part of every prediction id, so changed weights never replay
    another model's stored answers."""
    ident = {k: spec[k] for k in IDENTITY_KEYS if spec.get(k) is not None}
    if spec.get("model_dir"):
        ident["weights"] = weights_fingerprint(spec["model_dir"])
    return sha256_text(json.dumps(ident, sort_keys=True, default=str))
