"""Render the official prompts the byte-for-byte test compares against, and record only their sha256.

    python tools/official/render_expected.py --git-dir GIT_DIR tests/data/generation_official_render.json

For each case of the file (setting, variant, index, attempt, pool size, theme-list source) the prompt is
made by data-agora's own loader, set up as `agora_scripts/run.py` sets it up (ThemeBased... with 3
demonstrations, 2 from the pool, run.py's themes/triggers; JSONPromptLoader for the JSON variant;
Response/QualityEnhancementPromptLoader), from the official seed samples of the checkout
(`libs/data-agora/tests/seed_data`). `random` is seeded with the project's per-attempt prompt seed
(`agorabench.generation.instances.official_prompt_seed`, the only project code used here: it says which
draw the test makes). Pool entries (instances accepted earlier) are appended to the loader's seed data as
Agora.run_single does. Theme lists: `official` = run.py's, `project` = config/themes.yaml (so the test can
also run where no data-agora checkout is present).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

import yaml
from _checkout import COMMIT, import_data_agora, placeholder_formats, run_py_literal, working_tree

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from agorabench.generation.instances import official_prompt_seed  # noqa: E402

DOMAIN = {"math": "math", "code": "code", "instruction_following": "general"}


def seed_file(domain: str, method: str) -> str:
    """The official seed sample of a setting (code quality enhancement has none: WebInstruct general)."""
    d = DOMAIN[domain]
    if method == "instance_generation":
        return f"{d}_seed_data_subsampled.json"
    if method == "response_generation":
        return f"magpie_{d}_seed_data_10000_subsampled.json"
    return f"webinstruct_{'math' if d == 'math' else 'general'}_seed_data_10000_subsampled.json"


def pool_file(domain: str) -> str:
    """Stand-ins for accepted instances: the response-generation sample of the domain."""
    return seed_file(domain, "response_generation")


def _lists(tree: Path, domain: str, source: str) -> tuple[list[str], list[str] | None]:
    d = DOMAIN[domain]
    if source == "official":
        return run_py_literal(tree, f"{d}_themes"), run_py_literal(
            tree, "general_triggers"
        ) if d == "general" else None
    data = yaml.safe_load((ROOT / "config" / "themes.yaml").read_text(encoding="utf-8"))
    return data["themes"][domain], (data["first_words"].get(domain) if d == "general" else None)


def render(da, tree: Path, case: dict, seed: int) -> str:
    pl = da.core.prompt_loaders
    d, method = DOMAIN[case["domain"]], case["method"]
    formats = placeholder_formats(tree, d, method)
    data_dir = tree / "libs" / "data-agora" / "tests" / "seed_data"
    seeds = json.loads((data_dir / seed_file(case["domain"], method)).read_text(encoding="utf-8"))
    name = f"{method}_{d}_prompt.txt"
    if case["variant"] == "json":
        name = f"instance_generation_{d}_prompt_json_formatted.txt"
    template = (tree / "agora_scripts" / "prompts" / name).read_text(encoding="utf-8")
    if method == "instance_generation":
        common = {"prompt_template": template, "seed_data": seeds, "num_fewshot": 3}
        common |= {"num_sample_from_seed_data": 2, "placeholder_formats": formats}
        if case["variant"] == "json":
            loader = pl.JSONPromptLoader(**common)
        else:
            themes, triggers = _lists(tree, case["domain"], case["lists"])
            loader = pl.ThemeBasedInstanceGenerationPromptLoader(
                **common, input_theme_list=themes, first_word_list=triggers
            )
        pool = json.loads((data_dir / pool_file(case["domain"])).read_text(encoding="utf-8"))
        loader.seed_data.extend(pool[: case["pool"]])  # Agora.run_single's append
        random.seed(official_prompt_seed(seed, case["domain"], method, case["index"], case["attempt"]))
        return loader.prepare().prompt
    cls = (
        pl.ResponseGenerationPromptLoader
        if method == "response_generation"
        else pl.QualityEnhancementPromptLoader
    )
    return (
        cls(prompt_template=template, seed_data=seeds, placeholder_formats=formats)
        .prepare(case["index"])
        .prompt
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("expected")
    ap.add_argument("--checkout")
    ap.add_argument("--git-dir")
    ap.add_argument("--commit", default=COMMIT)
    args = ap.parse_args()
    tree = working_tree(args.checkout, args.git_dir, args.commit)
    da = import_data_agora(tree)
    path = Path(args.expected)
    expected = json.loads(path.read_text(encoding="utf-8"))
    for case in expected["cases"]:
        prompt = render(da, tree, case, expected["seed"])
        case["sha256"] = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
    expected["rendered_by"] = {
        "tool": "tools/official/render_expected.py",
        "repo": "neulab/data-agora",
        "commit": args.commit,
    }
    path.write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
    print(f"{len(expected['cases'])} official prompts rendered")


if __name__ == "__main__":
    main()
