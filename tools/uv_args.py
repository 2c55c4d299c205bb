"""Print pip's index settings as `uv pip install` flags (used by `make venv`).

uv reads neither pip.conf nor PIP_* variables, so a machine whose packages come from a mirror, a local
wheel folder or a constraints file would install from elsewhere with uv alone. This reads what pip itself
would use (`pip config list`: environment, then the `install` section, then `global`) and prints the same
settings for uv, with pip's rule of taking the best version across all indexes.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

# pip option -> uv flag; each value may hold several entries separated by whitespace.
FLAGS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}
SECTIONS = (":env:", "install", "global")  # pip's precedence, highest first


def pip_settings(listing: str) -> dict[str, str]:
    """`pip config list` output -> {option: value}, the highest-precedence section winning."""
    found: dict[tuple[str, str], str] = {}
    for line in listing.splitlines():
        key, sep, value = line.partition("=")
        section, dot, option = key.rpartition(".")
        if sep and dot:
            found[(section, option)] = value.strip().strip("'\"")
    settings = {}
    for option in FLAGS:
        for section in SECTIONS:
            if (section, option) in found:
                settings[option] = found[(section, option)]
                break
    return settings


def uv_flags(settings: dict[str, str]) -> list[str]:
    flags = ["--index-strategy", "unsafe-best-match"]
    for option, flag in FLAGS.items():
        for entry in settings.get(option, "").split():
            flags += [flag, entry]
    return flags


def main() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    print(shlex.join(uv_flags(pip_settings(listing))))


if __name__ == "__main__":
    main()
