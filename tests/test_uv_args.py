"""tools/uv_args.py: pip's index settings, as `pip config list` prints them, become uv's flags."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("uv_args", ROOT / "tools" / "uv_args.py")
uv_args = importlib.util.module_from_spec(spec)
spec.loader.exec_module(uv_args)

LISTING = """:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/elsewhere'
install.index-url='https://mirror.example/simple'
global.index-url='https://ignored.example/simple'
"""


def test_highest_precedence_section_wins_and_lists_split():
    settings = uv_args.pip_settings(LISTING)
    assert settings["find-links"] == "/opt/wheels"  # the environment over global
    assert settings["index-url"] == "https://mirror.example/simple"  # install over global
    flags = uv_args.uv_flags(settings)
    assert flags[:2] == ["--index-strategy", "unsafe-best-match"]
    pairs = list(zip(flags[2::2], flags[3::2], strict=True))
    assert ("--extra-index-url", "file:///opt/pypi/simple") in pairs
    assert ("--extra-index-url", "file:///opt/pypi-more/simple") in pairs
    assert ("--constraint", "/etc/xdg/pip/constraints.txt") in pairs
    assert ("--find-links", "/elsewhere") not in pairs
    assert not any("cert" in f for f in flags)  # not an index setting


def test_no_pip_configuration_gives_only_the_strategy():
    assert uv_args.uv_flags(uv_args.pip_settings("")) == ["--index-strategy", "unsafe-best-match"]
