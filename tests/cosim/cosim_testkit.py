"""Shared helpers of the co-simulation tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def run_cosim(scenario: str, out: Path, *sets: str) -> list[dict[str, str]]:
    """``cosim run scenarios/<scenario> --out out --set ...`` in a fresh process (one libsumo per
    process); asserts success and returns the rows of ``metrics.csv``."""
    args = [sys.executable, "-m", "cosim", "run", str(SCENARIOS / scenario), "--out", str(out), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return read_rows(out / "metrics.csv")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts (``metrics.csv``, ``sweep.csv``, ...)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
