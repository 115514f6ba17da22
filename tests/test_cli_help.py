"""The command line introduces itself: plain-text help naming every subcommand, a version."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

SUBCOMMANDS = ("run", "eval", "validate", "sweep", "report")


def _cosim(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosim", *argv], capture_output=True, text=True, timeout=60)


def test_version():
    result = _cosim("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"cosim {version('cosim')}"


def test_help_is_plain_text_with_every_subcommand():
    result = _cosim("--help")
    assert result.returncode == 0
    text = result.stdout
    assert "``" not in text and ":class:" not in text  # no reStructuredText markup
    for name in SUBCOMMANDS:
        assert f"    {name} " in text, name
        sub = _cosim(name, "--help")
        assert sub.returncode == 0 and sub.stdout.startswith(f"usage: cosim {name}"), sub.stderr
    assert "exit status" in text
