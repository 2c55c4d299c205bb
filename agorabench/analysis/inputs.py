"""Which students, generated sets and score files each table and figure of the analysis reads.

Pure functions over the (schema-validated) config, used by rules/analysis.smk to give every table and
figure exactly its own upstream, and by the stage functions' tests. A table or figure whose inputs the
config cannot provide is left out of `analysis_all`; asking for it by path raises ConfigError naming the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agorabench import workflow as wf
from agorabench.analysis import paper
from agorabench.errors import ConfigError
from agorabench.workflow import Student

PS_SOURCES = ("paper", "table", "evaluation", "generators")
GENERATOR_EVAL = "generators"  # evaluation/generators/<generator>/<benchmark>/: Table 7 measured


def _results(config: dict[str, Any]) -> str:
    return config["results_dir"]


def main_students(config: dict[str, Any]) -> list[Student]:
    """The students of Table 2: every student at the main experiment's (variant, size)."""
    main = wf.main_experiment(config)
    return [s for s in wf.students(config) if s.variant == main["variant"] and s.size == main["size"]]


def main_generators(config: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(s.generator for s in main_students(config)))


def variants(config: dict[str, Any]) -> list[str]:
    """Meta-prompt variants of the study, the main experiment's first."""
    main = wf.main_experiment(config)["variant"]
    rest = [v for exp in config["experiments"].values() for v in exp["variants"] if v != main]
    return [main, *dict.fromkeys(rest)]


def ablation(config: dict[str, Any]) -> dict[str, Any] | None:
    """Table 5 (meta-prompt ablation): variants, generators, methods and size; None with a single variant.

    Methods are those some non-main variant was generated for; generators those with students for every
    variant of these methods at the main size (as in the paper: 3 generators x 2 methods x 3 variants).
    """
    names = variants(config)
    if len(names) < 2:
        return None
    size = wf.main_experiment(config)["size"]
    pool = [s for s in wf.students(config) if s.size == size]
    methods = list(dict.fromkeys(s.method for s in pool if s.variant != names[0]))
    have = {v: {s.generator for s in pool if s.variant == v and s.method in methods} for v in names}
    gens = [g for g in dict.fromkeys(s.generator for s in pool) if all(g in have[v] for v in names)]
    if not gens:
        return None
    return {"variants": names, "generators": gens, "methods": methods, "size": size}


def template_origins(config: dict[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    """Table 5's meta-prompt files: variant -> method -> domain -> "official" or "stand-in"."""
    spec = ablation(config)
    if spec is None:
        return {}
    return {
        v: {m: {d: wf.template_origin(config, v, d, m) for d in wf.DOMAINS} for m in spec["methods"]}
        for v in spec["variants"]
    }


def ablation_students(config: dict[str, Any]) -> list[Student]:
    spec = ablation(config)
    if spec is None:
        raise ConfigError("experiments", "Table 5 needs students of at least two meta-prompt variants")
    return [
        s
        for s in wf.students(config)
        if s.variant in spec["variants"]
        and s.generator in spec["generators"]
        and s.method in spec["methods"]
        and s.size == spec["size"]
    ]


def cost_study(config: dict[str, Any]) -> dict[str, Any]:
    """Figure 7's selection: `analysis.cost_study` (generators, methods, variant), else the generators and
    methods with students of more than one size, else every main student."""
    given = config["analysis"].get("cost_study")
    if given:
        main_variant = wf.main_experiment(config)["variant"]
        return {
            "generators": list(given["generators"]),
            "methods": list(given.get("methods", wf.METHODS)),
            "variant": given.get("variant", main_variant),
        }
    students = wf.students(config)
    sizes: dict[tuple[str, str, str], set[int]] = {}
    for s in students:
        sizes.setdefault((s.generator, s.method, s.variant), set()).add(s.size)
    multi = [k for k, v in sizes.items() if len(v) > 1]
    if not multi:
        main = main_students(config)
        multi = [(s.generator, s.method, s.variant) for s in main]
    return {
        "generators": list(dict.fromkeys(k[0] for k in multi)),
        "methods": list(dict.fromkeys(k[1] for k in multi)),
        "variant": multi[0][2],
    }


def cost_students(config: dict[str, Any]) -> list[Student]:
    spec = cost_study(config)
    out = [
        s
        for s in wf.students(config)
        if s.generator in spec["generators"] and s.method in spec["methods"] and s.variant == spec["variant"]
    ]
    if not out:
        raise ConfigError("analysis.cost_study", f"no student of the study matches {spec}")
    return out


def has_size_pairs(config: dict[str, Any]) -> bool:
    """Whether Figure 7's students include a generator and method at two sizes (figure7_significance);
    False where no student matches the cost study (its own targets then report that error)."""
    from agorabench.analysis.uncertainty import has_size_pairs as pairs

    try:
        return pairs(student_records(cost_students(config)))
    except ConfigError:
        return False


def intrinsic_sets(config: dict[str, Any]) -> list[Student]:
    """The generated sets whose intrinsic metrics are measured (Table 8): the main students' data."""
    return main_students(config)


def student_records(students: Iterable[Student]) -> list[dict[str, Any]]:
    """Students as the dicts `pgr.pgr_table` takes (the model key is the student's path)."""
    return [vars(s) | {"model": s.path} for s in students]


def benchmark_domains(config: dict[str, Any]) -> dict[str, str]:
    return {b: spec["domain"] for b, spec in config["benchmarks"].items()}


def score_paths(config: dict[str, Any], students: Sequence[Student]) -> list[str]:
    """Score files the PGRs of `students` need: each on its domain's benchmarks, S0 and S_ref on those."""
    domains = {s.domain for s in students}
    benches = [b for b, d in benchmark_domains(config).items() if d in domains]
    pairs = [(m, b) for m in wf.BASELINES for b in benches]
    pairs += [(s.path, b) for s in students for b in wf.benchmarks_of(config, s.domain)]
    return [f"{_results(config)}/evaluation/{m}/{b}/score.json" for m, b in dict.fromkeys(pairs)]


def stats_paths(config: dict[str, Any], students: Sequence[Student]) -> list[str]:
    """The generation ledgers (pool.stats.json) of the students' generated pools."""
    pools = dict.fromkeys((s.generator, s.domain, s.method, s.variant) for s in students)
    root = _results(config)
    return [f"{root}/generation/{g}/{d}/{m}/{v}/pool.stats.json" for g, d, m, v in pools]


# Problem-solving scores of the generators (Figure 4, and a feature of Figures 5 and 6).


def problem_solving_spec(config: dict[str, Any]) -> dict[str, Any]:
    """`analysis.problem_solving` with its default (the paper's Table 7)."""
    spec = dict(config["analysis"].get("problem_solving") or {"source": "paper"})
    if spec.get("source", "paper") not in PS_SOURCES:
        raise ConfigError("analysis.problem_solving.source", f"must be one of {', '.join(PS_SOURCES)}")
    spec.setdefault("source", "paper")
    if spec["source"] == "generators":  # each main generator evaluated through its own backend (Table 7)
        spec["models"] = {g: generator_model_key(g) for g in main_generators(config)}
    return spec


def generator_model_key(generator: str) -> str:
    """The evaluation model key of a generator answering the benchmarks itself (Table 7)."""
    return f"{GENERATOR_EVAL}/{generator}"


def problem_solving_missing(config: dict[str, Any]) -> list[str]:
    """Main generators without problem-solving scores under the configured source."""
    spec = problem_solving_spec(config)
    if spec["source"] == "paper":
        have = set(paper.paper_table7().index)
    elif spec["source"] == "table":
        benches = set(config["benchmarks"])
        have = {g for g, row in (spec.get("scores") or {}).items() if benches <= set(row)}
    else:
        have = set(spec.get("models") or {})
    return [g for g in main_generators(config) if g not in have]


def check_problem_solving(config: dict[str, Any]) -> None:
    missing = problem_solving_missing(config)
    if missing:
        source = problem_solving_spec(config)["source"]
        raise ConfigError(
            "analysis.problem_solving", f"no problem-solving scores (source {source!r}) for {missing}"
        )


def problem_solving_score_paths(config: dict[str, Any]) -> list[str]:
    """Score files of the models evaluated as the generators (source 'evaluation'), else none."""
    spec = problem_solving_spec(config)
    if spec["source"] not in ("evaluation", "generators"):
        return []
    models = dict.fromkeys((spec.get("models") or {}).values())
    root = _results(config)
    return [f"{root}/evaluation/{m}/{b}/score.json" for m in models for b in config["benchmarks"]]


# What the config enables.


def intrinsic_enabled(config: dict[str, Any]) -> bool:
    return bool(config.get("intrinsic"))


def enabled_targets(config: dict[str, Any]) -> dict[str, bool]:
    """Which optional tables and figures `analysis_all` builds."""
    has_ps = not problem_solving_missing(config)
    return {
        "table5": ablation(config) is not None,
        "figure4": has_ps,
        "table7": has_ps,
        "intrinsic": intrinsic_enabled(config),
    }


def _names(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(values))


def describe_students(students: Sequence[Student]) -> str:
    """One line saying which students a table or figure covers."""
    if not students:
        return "no students"
    return (
        f"{len(students)} students; generators: {_names(s.generator for s in students)}; "
        f"domains: {_names(s.domain for s in students)}; methods: {_names(s.method for s in students)}; "
        f"meta-prompt variants: {_names(s.variant for s in students)}; "
        f"sizes: {_names(sorted(s.size for s in students))}"
    )


# Intrinsic metrics: settings of the judge rule and of the model rule.

INTRINSIC_MODEL_METRICS = ("perplexity", "reward_model", "diversity")


def _section(config: dict[str, Any], name: str) -> dict[str, Any] | None:
    """An intrinsic metric's settings, or None when it is absent or `disabled`."""
    spec = (config.get("intrinsic") or {}).get(name)
    return None if not spec or "disabled" in spec else dict(spec)


def check_intrinsic(config: dict[str, Any]) -> None:
    """Cross-references of the `intrinsic` section; raises ConfigError naming the key."""
    judges = _section(config, "judge")
    for suffix, name in ((judges or {}).get("judges") or {}).items():
        if name not in config.get("judges", {}):
            raise ConfigError(f"intrinsic.judge.judges.{suffix}", f"'{name}' is not a key of `judges`")
    if (judges or {}).get("verdict") == "logprobs" and official_rubrics(config):
        raise ConfigError(
            "intrinsic.judge.verdict",
            "logprobs reads the score from the first token; the official rubrics ask for feedback first "
            "(use text, or the project's rubrics that ask for the score alone: config/intrinsic/weighted)",
        )
    ppl = _section(config, "perplexity")
    if ppl is not None and ppl.get("model") not in config["models"]:
        raise ConfigError("intrinsic.perplexity.model", f"'{ppl.get('model')}' is not a key of `models`")
    rm = _section(config, "reward_model")
    if rm is not None:
        if "name" not in rm:
            raise ConfigError("intrinsic.reward_model.name", "is required (it names the metric)")
        if ("model" in rm) == ("hub" in rm):
            raise ConfigError("intrinsic.reward_model", "give either `model` (a key of `models`) or `hub`")
        if "model" in rm and rm["model"] not in config["models"]:
            raise ConfigError("intrinsic.reward_model.model", f"'{rm['model']}' is not a key of `models`")
        if "hub" in rm and "revision" not in rm:
            raise ConfigError("intrinsic.reward_model.revision", "pin the hub model to a 40-hex commit")
    div = _section(config, "diversity")
    if div is not None and not div.get("embedder"):
        raise ConfigError("intrinsic.diversity.embedder", "is required (package, path or hub)")


def official_rubrics(config: dict[str, Any]) -> dict[str, Any] | None:
    """`intrinsic.rubrics` (the official rubrics' files at pinned commits), or None for the project's."""
    return (config.get("intrinsic") or {}).get("rubrics")


def official_rubric_paths(config: dict[str, Any]) -> dict[str, str]:
    """Where rule intrinsic_rubrics puts the official files: <results>/assets/<repo>/<commit>/<path>."""
    spec = official_rubrics(config) or {}
    return {n: f"{_results(config)}/assets/{e['repo']}/{e['commit']}/{e['path']}" for n, e in spec.items()}


def rubric_paths(config: dict[str, Any]) -> dict[str, str]:
    """The LLM-judge metrics' rubric inputs: the official evaluators and prompts files when
    `intrinsic.rubrics` is set, else aspect -> the project's rubric file under `rubrics_dir`."""
    if official_rubrics(config):
        return official_rubric_paths(config)
    root = (config.get("intrinsic") or {}).get("rubrics_dir", "config/intrinsic")
    return {aspect: f"{root}/{aspect}.txt" for aspect in ("instruction_difficulty", "response_quality")}


def intrinsic_judges(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Metric suffix -> the judge's name, backend and model (what defines its verdicts)."""
    section = _section(config, "judge") or {}
    out = {}
    for suffix, name in (section.get("judges") or {}).items():
        spec = config["judges"][name]
        out[suffix] = {"name": name, "backend": spec["backend"], "model": spec["model"]}
        if spec.get("sampling"):  # a judge's own sampling (e.g. Prometheus' official defaults)
            out[suffix]["sampling"] = dict(spec["sampling"])
    return out


def intrinsic_judge_suffixes(config: dict[str, Any], *, local: bool) -> list[str]:
    """The metric suffixes of the intrinsic judges that run locally (vLLM, transformers: GPU rule) or,
    with local=False, through an API (network rule)."""
    judges = intrinsic_judges(config)
    return [s for s, j in judges.items() if wf.is_local(config["judges"][j["name"]]) == local]


def one_job_judges(config: dict[str, Any]) -> list[str]:
    """Suffixes of the local intrinsic judges whose calls for every set one job makes (rule
    intrinsic_judge_calls; `intrinsic.judge.one_job_per_judge`); each set's job then reads its store."""
    section = _section(config, "judge") or {}
    return intrinsic_judge_suffixes(config, local=True) if section.get("one_job_per_judge") else []


def judge_sampling(config: dict[str, Any]) -> dict[str, Any]:
    section = _section(config, "judge") or {}
    return {"temperature": 0.0, "max_tokens": 512, **(section.get("sampling") or {})}


def judge_verdict(config: dict[str, Any]) -> dict[str, Any]:
    """How the intrinsic judges' scores are read: {mode: text (the reply) | logprobs (the expected score
    under the first token's log-probabilities), top_logprobs}."""
    section = _section(config, "judge") or {}
    return {"mode": section.get("verdict", "text"), "top_logprobs": section.get("top_logprobs", 20)}


def reward_model_dir(config: dict[str, Any]) -> str | None:
    rm = _section(config, "reward_model")
    if rm is None:
        return None
    if "model" in rm:
        return wf.model_dir(config, rm["model"])
    return f"{_results(config)}/models/intrinsic/{rm['name']}"


def reward_needs_download(config: dict[str, Any]) -> bool:
    rm = _section(config, "reward_model")
    return rm is not None and "hub" in rm


def intrinsic_model_params(config: dict[str, Any]) -> dict[str, Any]:
    """Settings of the perplexity, reward-model and diversity metrics (None where not measured) and the
    reasons of the disabled ones, by metric name."""
    ppl, rm, div = (_section(config, n) for n in INTRINSIC_MODEL_METRICS)
    section = config.get("intrinsic") or {}
    disabled = {}
    for name, key in (
        ("perplexity", "perplexity"),
        ("reward_model", "response_quality_reward"),
        ("diversity", "diversity"),
    ):
        spec = section.get(name)
        if spec and "disabled" in spec:
            disabled[key] = spec["disabled"]
        elif not spec:
            disabled[key] = f"no `intrinsic.{name}` section in the config"
    judge = section.get("judge")
    if judge and "disabled" in judge:
        disabled["judge scores"] = judge["disabled"]
    return {"perplexity": ppl, "reward": rm, "diversity": div, "disabled": disabled}


def intrinsic_paths(config: dict[str, Any]) -> list[str]:
    """The intrinsic-metric records of Table 8: of every main set, one per judge and the models' record."""
    if not intrinsic_enabled(config):
        raise ConfigError("intrinsic", "no `intrinsic` section: Table 8 and Figures 5, 6 need one")
    root = f"{_results(config)}/analysis/intrinsic"
    parts = [f"judge.{suffix}" for suffix in intrinsic_judges(config)] + ["models"]
    return [
        f"{root}/{s.generator}/{s.domain}/{s.method}/{s.variant}/n{s.size}.{part}.json"
        for s in intrinsic_sets(config)
        for part in parts
    ]


def describe_intrinsic(config: dict[str, Any]) -> str:
    """One line naming the intrinsic metrics' judges and models."""
    if not intrinsic_enabled(config):
        return "no intrinsic metrics configured"
    params = intrinsic_model_params(config)
    judges = [f"{j['name']} ({j['model']})" for j in intrinsic_judges(config).values()]
    rubrics = official_rubrics(config)
    where = (
        "official per-domain rubrics ({})".format(
            ", ".join(f"{e['repo']}@{e['commit'][:7]}" for e in rubrics.values())
        )
        if rubrics
        else "the project's rubrics"
    )
    parts = [f"judges: {', '.join(judges) or 'none'} under {where}"]
    if params["perplexity"]:
        p = params["perplexity"]
        parts.append(f"perplexity of the {p.get('target', 'instruction')} under {p['model']}")
    if params["reward"]:
        r = params["reward"]
        parts.append(f"reward model {r.get('hub') or r.get('model')}")
    if params["diversity"]:
        e = params["diversity"]["embedder"]
        parts.append(f"diversity: {e.get('package') or e.get('hub') or e.get('path')} embeddings")
    parts += [f"{k} not measured ({v})" for k, v in params["disabled"].items()]
    return "; ".join(parts)
