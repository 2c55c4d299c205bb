"""Official data-agora files (neulab/data-agora at a pinned commit) as verified workflow inputs.

`obtain_assets` copies each file named in `generation.official.files` (repository path -> sha256) into
`<out_dir>/<repository path>`, from raw GitHub at the pinned commit or from a local folder (files at their
repository paths or flat under their base names), checks every sha256 and writes MANIFEST.json. A file
whose hash differs fails the job, naming the file.

`official_lists` reads the theme and first-word trigger lists out of the obtained `agora_scripts/run.py`
with `ast` (the file is never executed). Mode `code_faithful` keeps the lists exactly as the official run
used them, duplicates and the missing comma that fuses "As a " and "Question: " into one trigger;
`corrected` drops repeated entries (keeping the first) and splits fused string literals.
"""

from __future__ import annotations

import ast
import io
import json
import shutil
import tokenize
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import sha256_file, write_json

RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
RUN_PY = "agora_scripts/run.py"
LIST_MODES = ("code_faithful", "corrected")
# run.py's list names -> the study's domains (run.py calls instruction following "general").
THEME_LISTS = {"math": "math_themes", "code": "code_themes", "instruction_following": "general_themes"}
TRIGGER_LISTS = {"instruction_following": "general_triggers"}
# Official template of each (variant, method, domain) that the repository has, as run.py names them.
_OFFICIAL_DOMAIN = {"math": "math", "code": "code", "instruction_following": "general"}


def official_template(variant: str, domain: str, method: str) -> str | None:
    """Repository path of the official meta-prompt of a setting, or None where none was published."""
    d = _OFFICIAL_DOMAIN[domain]
    if variant == "agorabench":
        return f"agora_scripts/prompts/{method}_{d}_prompt.txt"
    if variant == "json" and method == "instance_generation":
        return f"agora_scripts/prompts/instance_generation_{d}_prompt_json_formatted.txt"
    return None


def _check_spec(spec: dict[str, Any]) -> dict[str, str]:
    files = spec.get("files")
    if not isinstance(files, dict) or not files:
        raise ConfigError("generation.official.files", "must map repository paths to sha256 values")
    for path, sha in files.items():
        if not isinstance(sha, str) or len(sha) != 64:
            raise ConfigError(f"generation.official.files.{path}", f"not a sha256 hex digest: {sha!r}")
        if path.startswith("/") or ".." in Path(path).parts:
            raise ConfigError("generation.official.files", f"{path!r} is not a relative repository path")
    return files


def _local_file(local_dir: Path, path: str) -> Path:
    for cand in (local_dir / path, local_dir / Path(path).name):
        if cand.is_file():
            return cand
    raise DataError(local_dir / path, f"official file {path} not in the local folder (nor flat by its name)")


def _download(url: str, dest: Path, timeout_s: float) -> None:
    import httpx

    resp = httpx.get(url, timeout=timeout_s, follow_redirects=True)
    if resp.status_code != 200:
        raise DataError(url, f"HTTP {resp.status_code}")
    dest.write_bytes(resp.content)


def obtain_assets(spec: dict[str, Any], out_dir: str | Path, timeout_s: float = 60.0) -> dict[str, Any]:
    """Obtain and verify every official file of `spec` (the config's `generation.official`)."""
    files = _check_spec(spec)
    out_dir = Path(out_dir)
    local = spec.get("local_dir")
    entries = []
    for path, expected in sorted(files.items()):
        dest = out_dir / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if local:
            src = _local_file(Path(local), path)
            shutil.copyfile(src, dest)
            origin = str(src)
        else:
            origin = spec.get("url", RAW_URL).format(repo=spec["repo"], commit=spec["commit"], path=path)
            _download(origin, dest, timeout_s)
        got = sha256_file(dest)
        if got != expected:
            dest.unlink()
            raise DataError(origin, f"sha256 of {path} is {got}, the config records {expected}")
        entries.append({"path": path, "sha256": got, "bytes": dest.stat().st_size, "from": origin})
    manifest = {"repo": spec["repo"], "commit": spec["commit"], "files": entries}
    write_json(out_dir / "MANIFEST.json", manifest)
    return {"files": len(entries), "bytes": sum(e["bytes"] for e in entries)}


def _literal_parts(node: ast.expr, source: str) -> list[str]:
    """The string literals of a list element: one, or several when the source fuses them."""
    segment = ast.get_source_segment(source, node) or ""
    toks = tokenize.generate_tokens(io.StringIO(segment).readline)
    parts = [ast.literal_eval(t.string) for t in toks if t.type == tokenize.STRING]
    return parts or [ast.literal_eval(node)]


def _module_lists(path: Path) -> dict[str, ast.List]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value
    return out


def _read_list(path: Path, lists: dict[str, ast.List], name: str, mode: str, source: str) -> list[str]:
    if name not in lists:
        raise DataError(path, f"no module-level list {name!r}")
    if mode == "code_faithful":
        values = [ast.literal_eval(el) for el in lists[name].elts]
    else:
        values = [p for el in lists[name].elts for p in _literal_parts(el, source)]
        values = list(dict.fromkeys(values))
    if not all(isinstance(v, str) for v in values):
        raise DataError(path, f"{name} holds a non-string entry")
    return values


def official_lists(
    run_py: str | Path, mode: str = "code_faithful"
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(themes by domain, first-word triggers by domain) as run.py defines them; see the module doc."""
    if mode not in LIST_MODES:
        raise ConfigError("generation.theme_lists", f"{mode!r} is not one of {', '.join(LIST_MODES)}")
    path = Path(run_py)
    if not path.is_file():
        raise DataError(path, "official run.py not found")
    source = path.read_text(encoding="utf-8")
    lists = _module_lists(path)
    themes = {d: _read_list(path, lists, name, mode, source) for d, name in THEME_LISTS.items()}
    triggers = {d: [] for d in THEME_LISTS}
    triggers |= {d: _read_list(path, lists, name, mode, source) for d, name in TRIGGER_LISTS.items()}
    return themes, triggers


def lists_sha256(themes: dict[str, list[str]], triggers: dict[str, list[str]]) -> str:
    """One hash of the extracted lists (recorded in tests instead of the lists' text)."""
    import hashlib

    blob = json.dumps({"themes": themes, "first_words": triggers}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
