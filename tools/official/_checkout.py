"""A data-agora working tree for the tools in this folder: a checkout, or a (bare) git dir exported at a
commit. The tools import the official modules from it (`libs/data-agora`), never from this project."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

COMMIT = "d7e66e12b03616caa42d818d5c2a387c127014ab"


def working_tree(checkout: str | None, git_dir: str | None, commit: str = COMMIT) -> Path:
    if checkout:
        return Path(checkout)
    if not git_dir:
        raise SystemExit("give --checkout DIR or --git-dir DIR (e.g. a `fetch`ed github:neulab/data-agora)")
    paths = ["agora_scripts", "libs/data-agora"]  # what the tools read (a snapshot may lack big files)
    cmd = ["git", "--git-dir", git_dir, "archive", commit, *paths]
    blob = subprocess.run(cmd, check=True, capture_output=True).stdout
    out = Path(tempfile.mkdtemp(prefix="data-agora-"))
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(out, filter="data")
    return out


def import_data_agora(tree: Path) -> types.ModuleType:
    """The official package (libs/data-agora/data_agora) from the working tree."""
    sys.path.insert(0, str(tree / "libs" / "data-agora"))
    import data_agora
    import data_agora.agora
    import data_agora.core.parsers
    import data_agora.core.prompt_loaders
    import data_agora.core.validators

    assert Path(data_agora.__file__).resolve().is_relative_to(tree.resolve()), data_agora.__file__
    return data_agora


def run_py_literal(tree: Path, name: str) -> object:
    """A module-level literal of agora_scripts/run.py (read with ast; run.py imports `agora`, which is
    not the installed package name, so it cannot be imported)."""
    path = tree / "agora_scripts" / "run.py"
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{path}: no {name}")


def placeholder_formats(tree: Path, domain: str, method: str) -> dict[str, str]:
    """run.py's placeholder_formats after main()'s changes for one (method, domain) run."""
    formats = dict(run_py_literal(tree, "placeholder_formats"))  # type: ignore[arg-type]
    if method == "quality_enhancement":
        formats["test_input_trigger"] = "Revised Question:"
        formats["test_output_trigger"] = "Revised Answer:"
    if method == "instance_generation" and domain == "general":
        formats["first_word"] = "<first_word>"
    return formats
