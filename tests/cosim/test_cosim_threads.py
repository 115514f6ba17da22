"""How many torch threads a run uses: every core it may for ``cosim run`` alone, a share for
each member of a sweep, ``--threads`` when given. Read back from timing.csv of real runs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosim.run.threads import available_cores, choose_threads

ROOT = Path(__file__).resolve().parents[2]
FIGURE8 = ROOT / "scenarios" / "figure8.yaml"
IDM = ("--set", "learner=idm", "--set", "env.horizon=20", "--set", "train.epochs=1")


def _threads_of(run_dir: Path) -> set[int]:
    with open(run_dir / "timing.csv", newline="") as fh:
        return {int(r["threads"]) for r in csv.DictReader(fh)}


def _run(out: Path, *args: str, cores: set[int] | None = None) -> None:
    cmd = [sys.executable, "-m", "cosim", "run", str(FIGURE8), "--out", str(out), "--no-progress", *IDM, *args]
    pre = (lambda: os.sched_setaffinity(0, cores)) if cores is not None else None
    result = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=pre)
    assert result.returncode == 0, result.stderr


def test_choose_threads():
    assert choose_threads(3, workers=8, cores=2) == 3  # --threads wins
    assert choose_threads(None, workers=1, cores=8) == 8
    assert choose_threads(None, workers=3, cores=8) == 2
    assert choose_threads(None, workers=4, cores=2) == 1  # at least one
    with pytest.raises(ValueError, match=">= 1"):
        choose_threads(0)
    assert available_cores() == len(os.sched_getaffinity(0))


def test_a_run_uses_every_core_it_may_unless_told(tmp_path):
    _run(tmp_path / "all")
    assert _threads_of(tmp_path / "all") == {available_cores()}
    _run(tmp_path / "pinned", cores={sorted(os.sched_getaffinity(0))[0]})  # taskset -c <one core>
    assert _threads_of(tmp_path / "pinned") == {1}
    _run(tmp_path / "three", "--threads", "3")
    assert _threads_of(tmp_path / "three") == {3}
    result = subprocess.run([sys.executable, "-m", "cosim", "run", str(FIGURE8), "--out", str(tmp_path / "bad"),
                             "--threads", "0", *IDM], capture_output=True, text=True)
    assert result.returncode == 2 and "--threads: must be >= 1" in result.stderr


def test_a_sweep_gives_each_member_its_share(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"base: {FIGURE8}\nset: {{learner: idm, env.horizon: 20, train.epochs: 1}}\nseeds: [0, 1]\n")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "cosim", "sweep", str(sweep), "--workers", "2", "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    share = max(1, available_cores() // 2)
    for member in ("seed=0", "seed=1"):
        assert _threads_of(out / member) == {share}
        assert f"--threads {share}" in (out / "logs" / f"{member}.log").read_text()
