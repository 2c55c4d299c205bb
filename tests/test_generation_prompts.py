"""Meta-prompt loading and rendering, on the official AgoraBench templates and the project's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agorabench.errors import ConfigError, DataError
from agorabench.generation.instances import attempt_seed, build_prompt, load_themes, prompt_rng
from agorabench.generation.parsing import parse_completion
from agorabench.generation.prompts import (
    DOMAINS,
    METHODS,
    load_template,
    render,
    template_path,
)
from agorabench.generation.run import make_request
from agorabench.llm.base import Sampling

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
THEMES, FIRST_WORDS = load_themes(ROOT / "config" / "themes.yaml")
FILLABLE = re.compile(r"<(?:input\d*|output\d*|input_theme|first_word)>")

IG, RG, QE = METHODS
IF = "instruction_following"
# Official template -> (domain, method, seed file), from agora-prompts/SOURCE.md and agora-seed/SOURCE.md.
# Quality enhancement of code has no seed file in the repository (CoNaLa); WebInstruct samples stand in.
OFFICIAL = {
    "instance_generation_math_prompt.txt": ("math", IG, "math_seed_data_subsampled.json"),
    "math_prompt.txt": ("math", IG, "math_seed_data_subsampled.json"),
    "instance_generation_code_prompt.txt": ("code", IG, "code_seed_data_subsampled.json"),
    "code_prompt.txt": ("code", IG, "code_seed_data_subsampled.json"),
    "instance_generation_general_prompt.txt": (IF, IG, "general_seed_data_subsampled.json"),
    "general_prompt.txt": (IF, IG, "general_seed_data_subsampled.json"),
    "instance_generation_math_prompt_json_formatted.txt": ("math", IG, "math_seed_data_subsampled.json"),
    "instance_generation_code_prompt_json_formatted.txt": ("code", IG, "code_seed_data_subsampled.json"),
    "instance_generation_general_prompt_json_formatted.txt": (IF, IG, "general_seed_data_subsampled.json"),
    "response_generation_math_prompt.txt": ("math", RG, "magpie_math_seed_data_10000_subsampled.json"),
    "magpie_math_prompt.txt": ("math", RG, "magpie_math_seed_data_10000_subsampled.json"),
    "response_generation_code_prompt.txt": ("code", RG, "magpie_code_seed_data_10000_subsampled.json"),
    "magpie_code_prompt.txt": ("code", RG, "magpie_code_seed_data_10000_subsampled.json"),
    "response_generation_general_prompt.txt": (IF, RG, "magpie_general_seed_data_10000_subsampled.json"),
    "magpie_general_prompt.txt": (IF, RG, "magpie_general_seed_data_10000_subsampled.json"),
    "quality_enhancement_math_prompt.txt": ("math", QE, "webinstruct_math_seed_data_10000_subsampled.json"),
    "webinstruct_math_prompt.txt": ("math", QE, "webinstruct_math_seed_data_10000_subsampled.json"),
    "quality_enhancement_general_prompt.txt": (IF, QE, "webinstruct_general_seed_data_10000_subsampled.json"),
    "webinstruct_code_prompt.txt": (IF, QE, "webinstruct_general_seed_data_10000_subsampled.json"),
    "quality_enhancement_code_prompt.txt": (
        "code",
        QE,
        "webinstruct_general_seed_data_10000_subsampled.json",
    ),
    "webinstruct_general_prompt.txt": ("code", QE, "webinstruct_general_seed_data_10000_subsampled.json"),
}
NOT_A_SETTING = {"fineweb_edu_prompt.txt"}


def official_seeds(shared_data: Path, name: str) -> list[dict]:
    records = json.loads((shared_data / "agora-seed" / name).read_text(encoding="utf-8"))
    return [
        {"id": f"{name}/{i}", "instruction": r["instruction"], "response": r["response"]}
        for i, r in enumerate(records)
    ]


def reference_render(
    text: str, demos: list[dict], instance: dict | None, theme: str | None, fw: str | None, json_demos: bool
) -> str:
    """data-agora's own algorithm: sequential str.replace (demos, then theme, then trigger)."""
    enc = json.dumps if json_demos else str
    for i, d in enumerate(demos, 1):
        text = text.replace(f"<input{i}>", enc(d["instruction"])).replace(f"<output{i}>", enc(d["response"]))
    if instance is not None:
        text = text.replace("<input>", instance["instruction"]).replace("<output>", instance["response"])
    if theme is not None:
        text = text.replace("<input_theme>", theme)
    if fw is not None:
        text = text.replace("<first_word>", fw)
    return text


def synthetic_completion(method: str, json_variant: bool, instruction: str, response: str) -> str:
    """A completion in the format the meta-prompt asks for."""
    if json_variant:
        return json.dumps({"instruction": instruction, "response": response})
    if method == IG:
        return f"{instruction}\nOUTPUT: {response}\n[END]"
    if method == QE:
        return f"{instruction}\n\nRevised Answer: {response} [END]"
    return f"{response} [END]"


VALID_RESPONSE = {
    "math": "Add the two numbers: 2 + 3 = 5.\n[RESULT] 5 [/RESULT]",
    "code": "```python\ndef add(a, b):\n    return a + b\n```",
    IF: "Start with a clear goal, then break it into weekly steps.",
}


def test_official_folder_is_fully_mapped(shared_data):
    names = {p.name for p in (shared_data / "agora-prompts").glob("*.txt")}
    assert names == set(OFFICIAL) | NOT_A_SETTING


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_template_renders_and_round_trips(shared_data, name):
    domain, method, seed_file = OFFICIAL[name]
    seeds = official_seeds(shared_data, seed_file)
    path = shared_data / "agora-prompts" / name
    template = load_template(path, method)
    assert load_template(path).method == method  # inferred from the placeholders
    spec = build_prompt(
        template,
        domain=domain,
        method=method,
        index=4,
        seeds=seeds,
        themes=THEMES[domain],
        first_words=FIRST_WORDS[domain],
        seed=0,
    )
    assert not FILLABLE.search(spec.prompt), "a placeholder was left unfilled"
    demos = [next(s for s in seeds if s["id"] == i) for i in spec.demo_ids]
    enc = json.dumps if template.json_demos else str
    for d in demos:
        assert enc(d["instruction"]) in spec.prompt and enc(d["response"]) in spec.prompt
    if template.has_theme:
        assert f'"{spec.theme}"' in spec.prompt
    if template.has_first_word:
        assert f'"{spec.first_word}"' in spec.prompt
    expected = reference_render(
        template.text, demos, spec.source, spec.theme, spec.first_word, template.json_demos
    )
    assert spec.prompt == expected

    variant = "json" if template.json_demos else "agorabench"
    pair = (
        seeds[0]
        if method != RG
        else {"instruction": spec.source["instruction"], "response": seeds[0]["response"]}
    )
    text = synthetic_completion(method, template.json_demos, pair["instruction"], pair["response"])
    given = spec.source["instruction"] if method == RG else None
    parsed = parse_completion(text, domain=domain, method=method, variant=variant, instruction=given)
    assert (parsed.instruction, parsed.response) == (pair["instruction"].strip(), pair["response"].strip())
    valid = synthetic_completion(method, template.json_demos, "Add 2 and 3.", VALID_RESPONSE[domain])
    parsed = parse_completion(valid, domain=domain, method=method, variant=variant, instruction=given)
    assert parsed.ok, parsed.reason


def test_official_demo_placeholders_are_numbered_and_quality_markers_stay(shared_data):
    qe = load_template(shared_data / "agora-prompts" / "quality_enhancement_math_prompt.txt", QE)
    rendered = render(qe, instance={"instruction": "Q?", "response": "A."})
    assert "Question: Q?\nAnswer: A." in rendered
    for marker in ("<revised_question>", "<revised_answer>", "<final_result>"):
        assert marker in rendered  # format markers describe the answer layout; never filled
    assert rendered.endswith("Revised Question: ")
    ig = load_template(shared_data / "agora-prompts" / "instance_generation_general_prompt.txt")
    assert (ig.n_demos, ig.has_theme, ig.has_first_word, ig.json_demos) == (3, True, True, False)


def test_fineweb_template_is_not_a_setting(shared_data):
    path = shared_data / "agora-prompts" / "fineweb_edu_prompt.txt"
    with pytest.raises(DataError, match=r"fineweb_edu_prompt\.txt.*cannot tell the method"):
        load_template(path)
    with pytest.raises(DataError, match=r"unknown placeholder\(s\) for response_generation: <output>"):
        load_template(path, RG)
    with pytest.raises(DataError, match=r"missing placeholder\(s\) for quality_enhancement: <input>"):
        load_template(path, QE)


def test_official_layout_paths(shared_data):
    root = shared_data / "agora-prompts"
    assert (
        template_path(root, "agorabench", IF, QE, "official").name == "quality_enhancement_general_prompt.txt"
    )
    assert template_path(root, "json", "code", IG, "official").name == (
        "instance_generation_code_prompt_json_formatted.txt"
    )
    with pytest.raises(ConfigError, match="no 'unoptimized' template"):
        template_path(root, "unoptimized", "math", IG, "official")
    with pytest.raises(ConfigError, match="no 'json' template for quality_enhancement"):
        template_path(root, "json", "math", QE, "official")


PROJECT_SETTINGS = [("agorabench", d, m) for d in DOMAINS for m in METHODS] + [
    (v, d, m) for v in ("unoptimized", "json") for d in DOMAINS for m in (IG, QE)
]


def test_project_prompt_folder_has_exactly_the_table5_settings():
    found = {tuple([p.parent.name, *p.stem.rsplit("_", 2)]) for p in PROMPTS.rglob("*.txt")}
    expected = {(v, d, *m.split("_")) for v, d, m in PROJECT_SETTINGS}
    assert found == expected


@pytest.mark.parametrize(("variant", "domain", "method"), PROJECT_SETTINGS)
def test_project_template_renders(variant, domain, method):
    template = load_template(template_path(PROMPTS, variant, domain, method), method)
    seeds = [
        {"id": f"s{i}", "instruction": f'Task <{i}> "quoted"', "response": f"Answer {i}"} for i in range(5)
    ]
    spec = build_prompt(
        template,
        domain=domain,
        method=method,
        index=2,
        seeds=seeds,
        themes=THEMES[domain],
        first_words=FIRST_WORDS[domain],
        seed=1,
    )
    assert not FILLABLE.search(spec.prompt)
    assert template.json_demos == (variant == "json" and method == IG)
    if variant == "agorabench" and method == IG:
        assert template.has_theme and spec.theme in spec.prompt
        assert template.has_first_word == (domain == IF)
    if method == IG:
        assert len(spec.demo_ids) == 3 and spec.source_id is None
    else:
        assert spec.source_id == "s2" and seeds[2]["instruction"] in spec.prompt
    ends = {IG: "INPUT: ", QE: "Revised Question: ", RG: "OUTPUT:\n"}
    if variant != "json":
        assert spec.prompt.endswith(ends[method])


def test_project_prompts_are_written_in_own_words(shared_data):
    official_lines = set()
    for p in (shared_data / "agora-prompts").glob("*.txt"):
        official_lines |= {
            ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if len(ln.strip()) > 50
        }
    for p in PROMPTS.rglob("*.txt"):
        lines = [ln for ln in p.read_text(encoding="utf-8").splitlines() if not FILLABLE.search(ln)]  # layout
        shared = [ln for ln in lines if ln.strip() in official_lines]
        assert not shared, f"{p} repeats official lines: {shared[:2]}"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "method", "message"),
    [
        (
            "INPUT: <input1>\nOUTPUT: <output1>\n<topic>",
            IG,
            r"unknown placeholder\(s\) for instance_generation: <topic>",
        ),
        ("<input1> <output1> <input2>", IG, r"missing placeholder\(s\) for instance_generation: <output2>"),
        ("Say <input_theme>", IG, "missing placeholder"),
        ("Q: <input>", QE, r"missing placeholder\(s\) for quality_enhancement: <output>"),
        ("Q: <input> <input1>", RG, r"unknown placeholder\(s\) for response_generation: <input1>"),
        ("Q: <input@> <output@>", None, "cannot tell the method"),
    ],
)
def test_bad_templates_name_the_file(tmp_path, text, method, message):
    with pytest.raises(DataError, match=message) as err:
        load_template(write(tmp_path, text), method)
    assert str(tmp_path / "t.txt") in str(err.value)


def test_render_is_single_pass_and_needs_its_values(tmp_path):
    t = load_template(write(tmp_path, "A <input1>|<output1>|<input2>|<output2> on <input_theme>"))
    demos = [
        {"instruction": "has <output2> inside", "response": "r1"},
        {"instruction": "i2", "response": "r2"},
    ]
    assert render(t, demos=demos, theme="T") == "A has <output2> inside|r1|i2|r2 on T"
    with pytest.raises(ValueError, match="needs 2 demonstrations, got 1"):
        render(t, demos=demos[:1], theme="T")
    with pytest.raises(ValueError, match="<input_theme> needs a value"):
        render(t, demos=demos)


def test_json_demos_are_json_encoded(tmp_path):
    t = load_template(write(tmp_path, 'E: {"instruction": <input1>, "response": <output1>}\nNew:'))
    out = render(t, demos=[{"instruction": 'say "hi"\n', "response": "ok"}])
    assert out == 'E: {"instruction": "say \\"hi\\"\\n", "response": "ok"}\nNew:'
    assert json.loads(out[3 : out.index("\n")]) == {"instruction": 'say "hi"\n', "response": "ok"}


def test_missing_prompt_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no meta-prompt for math/instance_generation/json"):
        template_path(tmp_path, "json", "math", IG)
    with pytest.raises(ConfigError, match="config key 'domain'"):
        template_path(PROMPTS, "agorabench", "general", IG)


# --- prompt construction (instances.py) ---

SEEDS = [{"id": f"s{i}", "instruction": f"task {i}", "response": f"answer {i}"} for i in range(10)]


def ig_template():
    return load_template(template_path(PROMPTS, "agorabench", IF, IG), IG)


def build(template, index, **kw):
    args = {
        "domain": IF,
        "method": template.method,
        "index": index,
        "seeds": SEEDS,
        "themes": THEMES[IF],
        "first_words": FIRST_WORDS[IF],
        "seed": 7,
    } | kw
    return build_prompt(template, **args)


def test_themes_file_has_about_twenty_per_domain():
    for domain in DOMAINS:
        assert 18 <= len(THEMES[domain]) <= 25 and len(set(THEMES[domain])) == len(THEMES[domain])
    assert 18 <= len(FIRST_WORDS[IF]) <= 25 and FIRST_WORDS["math"] == FIRST_WORDS["code"] == []


def test_prompt_choice_is_deterministic_and_depends_on_index_only():
    t = ig_template()
    a, b = build(t, 3), build(t, 3)
    assert a == b and len(set(a.demo_ids)) == 3
    specs = [build(t, i) for i in range(20)]
    assert len({tuple(s.demo_ids) for s in specs}) > 10 and len({s.theme for s in specs}) > 5
    assert build(t, 3, seed=8).prompt != a.prompt  # the global seed changes the draw
    # the variant does not enter the draw: the JSON ablation shows the same demonstrations and theme
    j = build(load_template(template_path(PROMPTS, "json", IF, IG), IG), 3)
    assert (j.demo_ids, j.theme, j.first_word) == (a.demo_ids, a.theme, a.first_word)


def test_prompts_identical_across_generators_and_attempts():
    spec = build(ig_template(), 5)
    sampling = Sampling(temperature=1.0, top_p=0.9, max_tokens=512, stop=("[END]",))
    kw = {
        "domain": IF,
        "method": IG,
        "variant": "agorabench",
        "sampling": sampling,
        "seed": 7,
        "system_prompt": "sys",
    }
    r1 = make_request(spec, 0, generator="gen-a", **kw)
    r2 = make_request(spec, 0, generator="gen-b", **kw)
    r3 = make_request(spec, 1, generator="gen-a", **kw)
    assert r1.messages == r2.messages == r3.messages
    assert len({r1.id, r2.id, r3.id}) == 3
    assert r1.sampling == r2.sampling and r1.sampling.seed != r3.sampling.seed
    assert r1.sampling.seed == attempt_seed(7, IF, IG, 5, 0)
    assert make_request(spec, 0, generator="gen-a", **kw).id == r1.id


def test_rng_is_seeded_from_setting_and_index():
    assert prompt_rng(1, "math", IG, 2).random() == prompt_rng(1, "math", IG, 2).random()
    assert prompt_rng(1, "math", IG, 2).random() != prompt_rng(1, "math", RG, 2).random()


def test_seed_per_index_and_wrap():
    t = load_template(template_path(PROMPTS, "agorabench", "math", RG), RG)
    assert build(t, 4, domain="math").source_id == "s4"
    with pytest.raises(ConfigError, match="index 12 needs seed 12 but seeds has 10"):
        build(t, 12, domain="math")
    assert build(t, 12, domain="math", wrap=True).source_id == "s2"


def test_empty_theme_list_is_a_config_error():
    with pytest.raises(ConfigError, match=re.escape("config key 'themes.instruction_following'")):
        build(ig_template(), 0, themes=[])
    with pytest.raises(DataError, match="2 seeds, 3 demonstrations needed"):
        build(ig_template(), 0, seeds=SEEDS[:2])


def test_bad_themes_file(tmp_path):
    path = tmp_path / "themes.yaml"
    path.write_text("themes:\n  poetry: [a]\n", encoding="utf-8")
    with pytest.raises(DataError, match="unknown domain"):
        load_themes(path)
    path.write_text("themes:\n  math: [a, 3]\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape("themes.math must be a list of non-empty strings")):
        load_themes(path)
