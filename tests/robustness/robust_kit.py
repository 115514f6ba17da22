"""Helpers of the robustness suite: every case runs the real CLI and checks its answer.

Most cases call ``cosim.cli.main`` in this process (fast: no interpreter start, validate-only
cases never start SUMO); signal and exit cases run ``python -m cosim`` in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
FIGURE8 = SCENARIOS / "figure8.yaml"
QUICK = ("learner=random", "env.horizon=20", "sumo.backend=libsumo")


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def clean(self) -> Result:
        """No traceback, no 'internal error' (a bug), every error line starts with 'error:'."""
        assert "Traceback" not in self.text, self.text
        assert "internal error" not in self.err, self.err
        assert "Exception ignored" not in self.err, self.err
        return self


def args_for(command: str, scenario: Path, *sets: str, out: Path | str | None = None,
             extra: tuple[str, ...] = ()) -> list[str]:
    argv = [command, str(scenario)]
    for s in sets:
        argv += ["--set", s]
    if out is not None:
        argv += ["--out", str(out)]
    if command == "run":
        argv.append("--no-progress")
    return argv + list(extra)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def cli(capsys):
    """``cli(*argv)``: run ``cosim`` in this process; returns its Result (checked clean)."""
    from cosim.cli.main import main

    def call(*argv: str, clean: bool = True) -> Result:
        capsys.readouterr()
        rc = main(list(argv))
        captured = capsys.readouterr()
        result = Result(rc, captured.out, captured.err)
        return result.clean() if clean else result

    return call


def run_subprocess(*argv: str, timeout: float = 120) -> Result:
    proc = subprocess.run([sys.executable, "-m", "cosim", *argv], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ})
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def scenario_copy(tmp_path) -> Path:
    """A private copy of the Figure 8 scenario and its network files (safe to edit)."""
    dst = tmp_path / "scenario"
    shutil.copytree(SCENARIOS / "networks" / "figure8", dst / "networks" / "figure8")
    shutil.copy(FIGURE8, dst / "figure8.yaml")
    return dst / "figure8.yaml"


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file of a directory (but the lock file, which holds the pid of its last user)."""
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir())
            if p.is_file() and p.name != ".lock"}
