"""`cosim run` end to end: metrics, determinism, resume after a kill, run-directory guard."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _run(scenario, out, *sets, check=True):
    args = [sys.executable, "-m", "cosim", "run", str(SCENARIOS / scenario), "--out", str(out), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    result = subprocess.run(args, capture_output=True, text=True, env={**os.environ})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _rows(out):
    with open(out / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def test_figure8_two_epochs(tmp_path):
    _run("figure8.yaml", tmp_path, "train.epochs=2", "learner=idm")
    rows = _rows(tmp_path)
    assert [r["epoch"] for r in rows] == ["0", "1"]
    for r in rows:
        assert int(r["steps"]) == 1500 and float(r["sim_time_s"]) == 150.0
        assert 0 < float(r["avg_reward"]) <= 1
        assert 1.0 < float(r["mean_speed"]) <= 30.0
        assert 0 <= float(r["min_speed"]) <= float(r["max_speed"]) <= 30.0
        assert int(r["collisions"]) == 0
        assert float(r["mean_vehicles"]) == 14.0 and float(r["mean_active_agents"]) == 9.0
        assert int(r["vehicles_departed"]) == 14
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "checkpoint.pt").is_file()


def test_merge_two_epochs(tmp_path):
    _run("merge.yaml", tmp_path, "train.epochs=2", "learner=random")
    for r in _rows(tmp_path):
        assert int(r["steps"]) <= 750
        assert int(r["vehicles_departed"]) > 30 and int(r["vehicles_arrived"]) > 0
        assert 0 < float(r["mean_active_agents"]) <= 13
        assert 0 <= float(r["min_speed"]) and float(r["max_speed"]) <= 30.0


def test_same_seed_same_metrics_different_seed_different(tmp_path):
    sets = ("train.epochs=2", "env.horizon=300", "learner=random")
    _run("merge.yaml", tmp_path / "a", *sets)
    _run("merge.yaml", tmp_path / "b", *sets)
    _run("merge.yaml", tmp_path / "c", *sets, "seed=1")
    a, b, c = ((tmp_path / d / "metrics.csv").read_bytes() for d in "abc")
    assert a == b
    assert a != c


def test_resume_after_kill_gives_identical_files(tmp_path):
    sets = ("train.epochs=6", "env.horizon=400", "learner=random")
    _run("figure8.yaml", tmp_path / "ref", *sets)
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "cosim", "run", str(SCENARIOS / "figure8.yaml"), "--out", str(out), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not (out / "metrics.csv").is_file() or len(_rows(out)) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(_rows(out)) < 6, "the run finished before it could be killed"
    _run("figure8.yaml", out, *sets)
    assert (out / "metrics.csv").read_bytes() == (tmp_path / "ref" / "metrics.csv").read_bytes()


def test_resume_drops_rows_after_the_checkpoint_and_torn_lines(tmp_path):
    sets = ("train.epochs=3", "env.horizon=200", "learner=random")
    _run("figure8.yaml", tmp_path / "ref", *sets)
    out = tmp_path / "run"
    _run("figure8.yaml", out, "train.epochs=2", *sets[1:])  # a shorter run, extended below
    with open(out / "metrics.csv", "a") as fh:
        fh.write("2,200,20.0,0.9")  # a row torn by a kill mid-write
    _run("figure8.yaml", out, *sets)
    assert (out / "metrics.csv").read_bytes() == (tmp_path / "ref" / "metrics.csv").read_bytes()


def test_finished_run_is_not_redone(tmp_path):
    _run("figure8.yaml", tmp_path, "train.epochs=1", "env.horizon=50", "learner=idm")
    before = (tmp_path / "metrics.csv").stat().st_mtime_ns
    result = _run("figure8.yaml", tmp_path, "train.epochs=1", "env.horizon=50", "learner=idm")
    assert (tmp_path / "metrics.csv").stat().st_mtime_ns == before
    assert "results:" in result.stdout


def test_run_dir_with_other_config_is_refused(tmp_path):
    _run("figure8.yaml", tmp_path, "train.epochs=1", "env.horizon=50", "learner=idm")
    result = _run("figure8.yaml", tmp_path, "train.epochs=1", "env.horizon=50", "learner=idm", "seed=7", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "different configuration (differs in: seed)" in result.stderr
    result = subprocess.run([sys.executable, "-m", "cosim", "run", str(SCENARIOS / "figure8.yaml"), "--out",
                             str(tmp_path), "--set", "train.epochs=1", "--set", "env.horizon=50", "--set",
                             "learner=idm", "--set", "seed=7", "--restart", "--no-progress"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(_rows(tmp_path)) == 1


@pytest.mark.parametrize("scenario", ["figure8.yaml", "merge.yaml"])
def test_traci_backend_runs(tmp_path, scenario):
    _run(scenario, tmp_path, "train.epochs=1", "env.horizon=100", "sumo.backend=traci", "learner=idm")
    assert int(_rows(tmp_path)[0]["steps"]) == 100


def test_a_users_own_net_file_and_routes(tmp_path):
    """A scenario can point at any ready .net.xml (here: one built by netconvert by hand)."""
    import sumolib

    src = SCENARIOS / "networks" / "figure8"
    net = tmp_path / "mine.net.xml"
    subprocess.run([sumolib.checkBinary("netconvert"), "--node-files", str(src / "figure8.nod.xml"),
                    "--edge-files", str(src / "figure8.edg.xml"), "--connection-files",
                    str(src / "figure8.con.xml"), "--no-turnarounds", "true", "-o", str(net)],
                   check=True, capture_output=True)
    routes = tmp_path / "mine.rou.xml"
    routes.write_bytes((src / "figure8.rou.xml").read_bytes())
    scenario = tmp_path / "mine.yaml"
    scenario.write_text(f"name: mine\nlearner: idm\nnetwork:\n  net_file: mine.net.xml\n  routes: [mine.rou.xml]\n"
                        f"env:\n  horizon: 100\ntrain:\n  epochs: 1\n")
    result = subprocess.run([sys.executable, "-m", "cosim", "run", str(scenario), "--out", str(tmp_path / "out"),
                             "--no-progress"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out" / "metrics.csv") as fh:
        (row,) = list(csv.DictReader(fh))
    assert int(row["steps"]) == 100 and float(row["mean_active_agents"]) == 9.0
