"""Third-party evaluation assets: official judge prompts and configs, alpaca_eval's `df_gamed.csv`,
EvalPlus task files. Each is obtained at a pinned revision and verified by sha256 before a scorer or a
benchmark loader reads it; none is copied into the repository.

An asset is configured under `evaluation.assets.<name>`:

    url:     where to download it, at a pinned commit / revision (rule obtain_evaluation_asset, on the
             submit host or network partition)
    path:    a local copy to use instead (e.g. ../shared/data/...), verified the same way
    sha256:  the hash of the file as obtained (required; a mismatch names the asset and both hashes)
    file:    the name it is stored under (default: the last part of url or path); its suffix matters
             (an Arena-Hard judge config is read as YAML because it ends in .yaml)
    gunzip:  store the decompressed content (EvalPlus's *.jsonl.gz); the hash is still of the .gz
    source:  free text for people (repository, commit, where the hash comes from)

Scorer settings and benchmark sources name an asset as `{asset: <name>}`; the workflow replaces that by
the obtained file's path (`resolve_assets`) and makes the file an input of the job (`asset_refs`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError, DataError

ASSET_KEYS = ("url", "path", "sha256", "file", "gunzip", "source")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def asset_file(spec: dict[str, Any], where: str) -> str:
    """The file name the asset is stored under."""
    check_asset(spec, where)
    name = spec.get("file") or Path(str(spec.get("path") or spec["url"]).split("?")[0]).name
    if spec.get("gunzip") and not spec.get("file") and name.endswith(".gz"):
        name = name[: -len(".gz")]
    return name


def check_asset(spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise ConfigError(where, f"must be a mapping, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(ASSET_KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown asset key (known: {', '.join(ASSET_KEYS)})")
    if not spec.get("url") and not spec.get("path"):
        raise ConfigError(where, "needs `url` (pinned) or `path` (a local copy)")
    url = spec.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith("https://")):
        raise ConfigError(f"{where}.url", f"must be an https URL, got {url!r}")
    sha = spec.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise ConfigError(f"{where}.sha256", f"must be the file's 64-hex-digit sha256, got {sha!r}")


def _download(url: str, where: str, timeout_s: float = 120.0) -> bytes:
    import httpx

    try:
        resp = httpx.get(url, follow_redirects=True, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise DataError(url, f"download for {where} failed: {type(exc).__name__}: {exc}") from None
    if resp.status_code != 200:
        raise DataError(url, f"download for {where} failed: HTTP {resp.status_code}")
    return resp.content


def obtain_asset(spec: dict[str, Any], out_path: str | Path, where: str) -> dict[str, Any]:
    """Fetch (or copy) the asset, verify its sha256 and write it to `out_path`; returns counts."""
    check_asset(spec, where)
    if spec.get("path"):
        origin = Path(spec["path"])
        if not origin.is_file():
            raise ConfigError(f"{where}.path", f"{origin} not found")
        data = origin.read_bytes()
    else:
        origin, data = spec["url"], _download(spec["url"], where)
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec["sha256"]:
        raise DataError(origin, f"sha256 {digest} differs from {where}.sha256 {spec['sha256']}")
    if spec.get("gunzip"):
        data = gzip.decompress(data)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return {"bytes": len(data)}


def asset_refs(value: Any) -> list[str]:
    """Names of the assets referred to as {asset: name} anywhere inside `value`."""
    if isinstance(value, dict):
        if set(value) == {"asset"}:
            return [str(value["asset"])]
        return [name for v in value.values() for name in asset_refs(v)]
    if isinstance(value, list):
        return [name for v in value for name in asset_refs(v)]
    return []


def resolve_assets(value: Any, paths: dict[str, str], where: str) -> Any:
    """`value` with every {asset: name} replaced by paths[name] (unknown names raise, naming `where`)."""
    if isinstance(value, dict):
        if set(value) == {"asset"}:
            name = value["asset"]
            if name not in paths:
                known = ", ".join(sorted(paths)) or "none"
                raise ConfigError(where, f"asset {name!r} is not in evaluation.assets (known: {known})")
            return paths[name]
        return {k: resolve_assets(v, paths, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_assets(v, paths, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
