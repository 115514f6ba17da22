"""Evaluation epochs (Algorithm 1's periodic tests): deterministic policies, no learning, no
buffer writes, no communication, and no effect on the training trajectory (real SUMO)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from cosim.config import load_config
from cosim.sim.engine import Engine
from cosim.run.experiment import make_controller, make_hooks
from cosim.traffic.sumo import SumoTraffic

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SMALL = ["sac.hidden=[32,32]", "sac.batch_size=32", "sac.policy_delay=2", "train.warmup_steps=30",
         "train.update_every=1", "env.horizon=120", "channel.radio.params={range_m: 1000, prr: 1.0}"]


def _flat(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        return {prefix: obj.clone()}
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in _flat(val, f"{prefix}.{key}").items()}
    if isinstance(obj, (list, tuple)):
        return {k: v for i, val in enumerate(obj) for k, v in _flat(val, f"{prefix}[{i}]").items()}
    return {prefix: obj}


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def _rows_equal(a: dict, b: dict) -> bool:
    """Equal rows, NaN equal to NaN."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a)


def test_evaluation_epochs_change_nothing_and_repeat_exactly():
    config = load_config(SCENARIOS / "figure8.yaml", SMALL)
    controller = make_controller(config)
    hooks = make_hooks(config, controller)
    with SumoTraffic(config.sumo, config.network, config.vehicles, config.env.n_agents,
                     config.env.observe_distance) as traffic:
        engine = Engine(config, traffic, controller, hooks)
        first = engine.run_epoch(0)
        assert first["phase"] == "train" and first["comm_rounds"] > 0
        saved = (copy.deepcopy(controller.state_dict()), [copy.deepcopy(h.state_dict()) for h in hooks])
        before = _flat(controller.state_dict())

        reference = engine.run_epoch(1)  # training epoch 1 without an evaluation before it

        controller.load_state_dict(copy.deepcopy(saved[0]))
        for hook, state in zip(hooks, saved[1]):
            hook.load_state_dict(copy.deepcopy(state))
        evals = [engine.run_epoch(0, phase="eval") for _ in range(2)]
        assert _same(_flat(controller.state_dict()), before)  # weights, buffers, RNG states, counters
        for row in evals:
            assert row["phase"] == "eval" and row["epoch"] == 0
            assert row["critic_updates"] == 0 and row["comm_rounds"] == 0 and row["transfers_started"] == 0
        assert _rows_equal(evals[0], evals[1])  # deterministic policies, same seed
        assert evals[0]["avg_reward"] != first["avg_reward"]

        after_eval = engine.run_epoch(1)
    assert _rows_equal(after_eval, reference)  # evaluation never changes the training trajectory


def test_runs_evaluate_every_eval_every_epochs_and_resume_exactly(tmp_path):
    from cosim_testkit import run_cosim

    sets = (*SMALL, "train.eval_every=2", "train.eval_epochs=2")
    reference = run_cosim("figure8.yaml", tmp_path / "ref", *sets, "train.epochs=4")
    assert [(r["epoch"], r["phase"]) for r in reference] == [
        ("0", "train"), ("1", "train"), ("1", "eval"), ("1", "eval"),
        ("2", "train"), ("3", "train"), ("3", "eval"), ("3", "eval")]
    evals = [r for r in reference if r["phase"] == "eval"]
    assert all(int(r["critic_updates"]) == 0 and int(r["comm_rounds"]) == 0 for r in evals)
    assert len({r["avg_reward"] for r in evals}) >= 2  # different evaluation epochs, different traffic
    run_cosim("figure8.yaml", tmp_path / "run", *sets, "train.epochs=3")
    resumed = run_cosim("figure8.yaml", tmp_path / "run", *sets, "train.epochs=4")
    assert resumed == reference
    timing = (tmp_path / "run" / "timing.csv").read_text().splitlines()
    assert timing[0].startswith("epoch,phase,") and len(timing) == 1 + len(reference)


def test_cosim_eval_and_init_from_a_saved_run(tmp_path):
    import csv
    import subprocess
    import sys

    from cosim_testkit import run_cosim

    run_cosim("figure8.yaml", tmp_path / "f8", *SMALL, "train.epochs=1")
    cmd = [sys.executable, "-m", "cosim"]
    done = subprocess.run([*cmd, "eval", str(tmp_path / "f8"), "--epochs", "2", "--no-progress"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "f8" / "eval.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["phase"] for r in rows] == ["eval", "eval"] and all(r["checkpoint_epochs"] == "1" for r in rows)
    assert all(int(r["critic_updates"]) == 0 and int(r["transfers_started"]) == 0 for r in rows)
    assert "average reward" in done.stdout

    # fine-tune in Merge (13 slots) from the 9 Figure 8 policies; shapes that differ are refused
    merge = ["sac.hidden=[32,32]", "sac.batch_size=32", "train.warmup_steps=30", "env.horizon=60", "train.epochs=1"]
    (row,) = run_cosim("merge.yaml", tmp_path / "merge", *merge)
    args = [*cmd, "run", str(SCENARIOS / "merge.yaml"), "--no-progress", "--init-from", str(tmp_path / "f8")]
    for s in merge:
        args += ["--set", s]
    tuned = subprocess.run([*args, "--out", str(tmp_path / "tuned")], capture_output=True, text=True)
    assert tuned.returncode == 0, tuned.stderr
    with open(tmp_path / "tuned" / "metrics.csv") as fh:
        (tuned_row,) = list(csv.DictReader(fh))
    assert tuned_row["avg_reward"] != row["avg_reward"]  # other starting policies, other driving
    bad = subprocess.run([*args, "--set", "sac.hidden=[16]", "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "sac.hidden" in bad.stderr and "Traceback" not in bad.stderr


def test_run_killed_during_an_evaluation_epoch_resumes_to_identical_files(tmp_path):
    """SIGKILL while the second evaluation epoch after training epoch 0 runs; the resumed run's
    files equal an uninterrupted run's, and a run without evaluations has the same training rows."""
    import signal
    import subprocess
    import sys
    import time

    from cosim_testkit import read_rows, run_cosim

    sets = (*SMALL[:-2], "env.horizon=200", "train.eval_every=1", "train.eval_epochs=2", "train.epochs=2")
    reference = run_cosim("figure8.yaml", tmp_path / "ref", *sets)
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "cosim", "run", str(SCENARIOS / "figure8.yaml"), "--out", str(out), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = out / "metrics.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and [r["phase"] for r in read_rows(metrics)] == ["train", "eval"]:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [r["phase"] for r in read_rows(metrics)] == ["train", "eval"]  # killed in the 2nd evaluation
    assert not (out / "checkpoint.pt").exists()  # the checkpoint follows the evaluations
    resumed = run_cosim("figure8.yaml", out, *sets)
    assert resumed == reference
    for name in ("metrics.csv", "comm_segments_received.csv", "comm_mixes.csv"):
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name

    without = run_cosim("figure8.yaml", tmp_path / "no_eval", *sets, "train.eval_every=0")
    assert without == [r for r in reference if r["phase"] == "train"]
