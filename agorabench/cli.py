"""`agorabench`: what users do outside Snakemake, as one command.

    agorabench check-config CONFIG [--schema SCHEMA]   validate a config (schema + cross-references)
    agorabench plan [--config CONFIG] [--json OUT]     API dollars and GPU-hours, before anything runs
    agorabench trace FILE [--tree|--json|--dot|--svg|--md]   the jobs and files behind a result
    agorabench verify FILE [--code strict|modules|off]       re-hash a result's lineage
    agorabench lineage FILE [FILE ...]                 write <file>.lineage.md pages
    agorabench datacard SET_DIR [--config CONFIG]      rewrite DATACARD.md of one generated set

Each subcommand has --help. Exit status: 0 fine, 1 a check found problems, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from agorabench.errors import AgoraBenchError, ConfigError

DEFAULT_CONFIG = "config/config.yaml"
# `agorabench <name>` -> the subcommand of agorabench.provenance.cli that does it
PROVENANCE_COMMANDS = {"trace": "trace", "verify": "verify", "lineage": "lineage-md"}


def load_config(path: str | Path) -> dict[str, Any]:
    """A config file as a dict; a clear error naming the file when it is missing or not a YAML mapping."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "the file must hold a YAML mapping of config keys")
    return data


def _schema_path(config_path: str, schema: str | None) -> Path:
    """The schema given, else config/schema.yaml of the working directory, else the one beside the config."""
    candidates = (
        [Path(schema)] if schema else [Path("config/schema.yaml"), Path(config_path).parent / "schema.yaml"]
    )
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError("--schema", f"no schema file found (tried {', '.join(map(str, candidates))})")


def _json_path(error: Any) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def check_config(config_path: str, schema: str | None = None) -> list[str]:
    """Problems of one config file (empty when it is valid): every schema violation, then the
    cross-reference checks of the study plan (the first one that fails)."""
    import jsonschema

    from agorabench import workflow as wf

    config = load_config(config_path)
    schema_doc = load_config(_schema_path(config_path, schema))
    validator = jsonschema.Draft202012Validator(schema_doc)
    problems = [
        f"config key '{_json_path(e)}': {e.message}"
        for e in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        return problems
    try:
        wf.check_config(config)
    except AgoraBenchError as exc:
        return [str(exc)]
    return []


def _check_config(args: argparse.Namespace) -> int:
    problems = check_config(args.config, args.schema)
    for p in problems:
        print(f"{args.config}: {p}", file=sys.stderr)
    if not problems:
        print(f"{args.config}: valid")
    return 1 if problems else 0


def _plan(args: argparse.Namespace) -> int:
    from agorabench import budget

    argv = ["--config", args.config]
    argv += ["--json", args.json] if args.json else []
    argv += ["--valid-rate", str(args.valid_rate)] if args.valid_rate is not None else []
    return budget.main(argv)


def _datacard(args: argparse.Namespace) -> int:
    from agorabench.provenance.datacard import write_data_card

    config = load_config(args.config)
    set_dir = Path(args.set_dir)
    parts = set_dir.resolve().parts
    if len(parts) < 4:
        raise ConfigError(
            "SET_DIR", f"{set_dir} is not <results_dir>/generation/<generator>/<domain>/<method>/<variant>"
        )
    generator, domain, method, variant = parts[-4:]
    if generator not in config["generators"]:
        raise ConfigError("generators", f"'{generator}' (from {set_dir}) is not a generator of {args.config}")
    seeds = Path(config["results_dir"]) / "data" / "seeds" / domain / f"{method}.jsonl"
    out = set_dir / "DATACARD.md"
    write_data_card(
        pool_path=str(set_dir / "pool.jsonl"),
        stats_path=str(set_dir / "pool.stats.json"),
        seeds_path=str(seeds),
        out_path=str(out),
        generator=generator,
        spec=config["generators"][generator],
        seed_source=config["seeds"][domain][method],
        setting=(domain, method, variant),
    )
    print(out)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agorabench",
        description=__doc__.splitlines()[0],
        epilog="Examples:\n  agorabench check-config config/config.yaml\n  agorabench plan\n"
        "  agorabench trace results/demo/analysis/pgr.csv --tree\n"
        "  agorabench verify results/demo/analysis/pgr.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("check-config", help="validate a config against the schema and its cross-references")
    c.add_argument("config", help="the config file, e.g. config/config.yaml")
    c.add_argument("--schema", help="the JSON schema (default: config/schema.yaml)")
    c.set_defaults(run=_check_config)
    pl = sub.add_parser("plan", help="API dollars per generator and judge, GPU-hours per stage")
    pl.add_argument("--config", default=DEFAULT_CONFIG, help=f"the study config (default: {DEFAULT_CONFIG})")
    pl.add_argument("--json", help="also write the estimate as JSON here")
    pl.add_argument("--valid-rate", type=float, help="share of generation calls that give a valid instance")
    pl.set_defaults(run=_plan)
    for name, text in (
        ("trace", "the upstream jobs and files of a result, from its .prov.json records"),
        ("verify", "re-hash a result's lineage; exit 1 when something changed since"),
        ("lineage", "write <file>.lineage.md for tables and figures"),
    ):
        sub.add_parser(name, help=text, add_help=False)  # parsed by agorabench.provenance.cli (main)
    d = sub.add_parser("datacard", help="rewrite DATACARD.md of one generated set from its pool and stats")
    d.add_argument("set_dir", help="<results_dir>/generation/<generator>/<domain>/<method>/<variant>")
    d.add_argument("--config", default=DEFAULT_CONFIG, help=f"the study config (default: {DEFAULT_CONFIG})")
    d.set_defaults(run=_datacard)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PROVENANCE_COMMANDS:  # their own parser, options included (--help too)
        from agorabench.provenance import cli

        return cli.main([PROVENANCE_COMMANDS[argv[0]], *argv[1:]], prog="agorabench")
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except AgoraBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
