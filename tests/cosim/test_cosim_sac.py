"""`learner: sac` in a real co-simulation run: acting, storing, learning, exact resume."""

from __future__ import annotations

import math

import torch
from cosim_testkit import run_cosim

SMALL = ("learner=sac", "sac.hidden=[32,32]", "sac.batch_size=32", "train.warmup_steps=50",
         "train.update_every=1", "env.horizon=200")


def _run(scenario, out, *sets):
    return run_cosim(scenario, out, *SMALL, *sets)


def test_figure8_sac_learns_and_reports_learning_activity(tmp_path):
    rows = _run("figure8.yaml", tmp_path, "train.epochs=3")
    assert len(rows) == 3
    for epoch, r in enumerate(rows):
        assert int(r["steps"]) == 200
        # 9 agents x 200 steps, every step a learning phase once past the 50 warm-up steps
        expected = 9 * (200 - 50) if epoch == 0 else 9 * 200
        assert int(r["critic_updates"]) == expected
        assert int(r["policy_updates"]) > 0
        for col in ("critic_loss", "q_mean", "policy_loss", "entropy", "alpha", "alpha_loss"):
            assert math.isfinite(float(r[col])), col
        assert 0 < float(r["alpha"]) < 1
        assert float(r["buffer_mean_size"]) == 200 * (epoch + 1)  # every transition stored
    # policies change the driving: the epochs differ
    assert len({r["avg_reward"] for r in rows}) == 3
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ckpt["epochs_done"] == 3 and ckpt["controller"]["env_steps"] == 600


def test_sac_run_resumes_exactly(tmp_path):
    reference = _run("figure8.yaml", tmp_path / "ref", "train.epochs=3")
    _run("figure8.yaml", tmp_path / "run", "train.epochs=2")
    resumed = _run("figure8.yaml", tmp_path / "run", "train.epochs=3")  # loads fleet, buffers, RNGs
    assert resumed == reference


def test_merge_sac_learners_live_on_their_vehicles(tmp_path):
    (row,) = _run("merge.yaml", tmp_path, "train.epochs=1", "env.warmup_steps=100")
    assert 0 < float(row["mean_active_agents"]) < 13
    # only agents bound to a vehicle learn: fewer than 13 updates per learning phase
    assert 0 < int(row["critic_updates"]) < 13 * 150
    assert math.isfinite(float(row["critic_loss"]))


def test_every_epoch_end_is_a_learning_step_with_a_policy_update(tmp_path):
    """Algorithm 1, line 14: the policy is also updated at t = T. With one learning phase every
    10 steps and an epoch of 205 steps, steps 60, 70, ..., 200 learn, and so does step 205."""
    (row,) = _run("figure8.yaml", tmp_path, "train.epochs=1", "train.update_every=10", "env.horizon=205",
                  "sac.policy_delay=10")
    phases = len(range(60, 201, 10)) + 1  # 16
    assert int(row["critic_updates"]) == 9 * phases
    # policy updates at each agent's critic updates 1 and 11 (counter 0 and 10), plus the last one
    assert int(row["policy_updates"]) == 9 * 3
