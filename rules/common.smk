# Input and parameter functions of the rules (kept apart from the rules, as snakemake --lint asks).


def _alt(names):
    """A wildcard regex matching exactly these names (or nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def _generation_inputs(wc):
    spec = config["generators"][wc.generator]
    inputs = {
        "seeds": f"{R}/data/seeds/{wc.domain}/{wc.method}.jsonl",
        "template": wf.template_path(config, wc.variant, wc.domain, wc.method),
        "themes": config["generation"]["themes"],
        "student": wf.model_dir(config, config["student"]["base"]),
    }
    if wf.is_local(spec):
        inputs["model"] = wf.model_dir(config, spec["model"])
    return inputs


def _generation_params(wc):
    """What defines the generated instances (and nothing operational)."""
    spec = config["generators"][wc.generator]
    return {
        "backend": spec["backend"],
        "model": spec["model"],
        "sampling": wf.sampling_for(config, "generators", wc.generator),
        "n": wf.pool_size(config, wc.generator, wc.domain, wc.method, wc.variant),
        "max_attempts_factor": config["generation"].get("max_attempts_factor", 2.0),
        "max_instance_tokens": config["generation"].get("max_instance_tokens", 4096),
        "seed": config["seed"],
        "price": spec.get("price"),
    }


def _training_params():
    return {"hparams": config["training"], "chat_template": config["student"].get("chat_template", "model")}


def _score_files(wildcards=None):
    return [f"{R}/evaluation/{m}/{b}/score.json" for m, b in wf.evaluations(config)]


