"""SACConfig: paper defaults and validation messages."""

from __future__ import annotations

import pytest

from learners import SACConfig


def test_defaults_are_table_iv():
    c = SACConfig()
    assert c.buffer_size == 100_000 and c.batch_size == 256
    assert (c.actor_lr, c.critic_lr, c.alpha_lr) == (4e-5, 3e-4, 3e-4)
    assert (c.gamma, c.tau, c.policy_delay) == (0.99, 1e-3, 10)
    assert c.hidden == (256, 256) and c.q_hidden == (256, 256) and c.shared_init
    assert (c.log_std_min, c.log_std_max) == (-5.0, 2.0)
    assert c.grad_clip_norm is None and c.init_alpha == 0.01
    assert c.entropy_target(1) == -1.0 and c.warmup_size == 256


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("buffer_size", 0, "integer >= 1"),
        ("batch_size", 2.5, "integer"),
        ("batch_size", 1000, "<= buffer_size"),
        ("policy_delay", 0, "integer >= 1"),
        ("actor_lr", 0.0, "(0.0"),
        ("critic_lr", float("nan"), "critic_lr"),
        ("gamma", 1.5, "[0.0, 1.0]"),
        ("tau", 0.0, "(0.0, 1.0]"),
        ("hidden", (), "non-empty"),
        ("hidden", (64, 0), "positive integers"),
        ("critic_hidden", "64", "or None"),
        ("init_alpha", -1.0, "init_alpha"),
        ("log_std_min", 3.0, "log_std_min must be < log_std_max"),
        ("grad_clip_norm", 0.0, "grad_clip_norm"),
        ("adam_betas", (0.9, 1.0), "adam_betas"),
        ("min_buffer_size", 10**6, "<= buffer_size"),
        ("dtype", "float16", "dtype"),
        ("matmul_dtype", "float16", "('float32', 'bfloat16')"),
        ("autotune_alpha", 1, "True or False"),
    ],
)
def test_invalid_values_name_the_field(field, value, words):
    with pytest.raises(ValueError) as err:
        SACConfig(**{"buffer_size": 500, field: value} if field != "buffer_size" else {field: value})
    msg = str(err.value)
    assert f"SACConfig.{field}" in msg or field in msg
    assert words in msg


def test_dict_round_trip_and_unknown_keys():
    c = SACConfig(hidden=[64, 64], critic_hidden=[32], grad_clip_norm=0.5)
    assert c.hidden == (64, 64) and c.q_hidden == (32,)
    assert SACConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown field"):
        SACConfig.from_dict({"batchsize": 3})


def test_default_policy_has_the_papers_size():
    """RSM-MASAC's Table V fixes the policy size: psi / rho_total is the same in every row,
    2.593 GB / 10,223 replicas (= 9.670 GB / 38,120) = 2.179 Mbit per replica, i.e. 68,098
    parameters of 32 bits: 6 observations -> 256 -> 256 -> mean and log-std of one action."""
    from learners import SACFleet

    fleet = SACFleet(1, 6, -3.0, 3.0, SACConfig())
    assert fleet.policy_dim == 6 * 256 + 256 + 256 * 256 + 256 + 2 * (256 + 1) == 68_098
    per_replica_bits = 2.593 * 8 * 1024**3 / 10_223
    assert round(per_replica_bits / 32) == pytest.approx(68_098, rel=1e-3)


def test_update_flops_by_hand():
    """obs 2, act 1, one hidden layer of 3, batch 1: policy 2->3 (12 FLOPs) + mean and log-std
    heads 3->1 (6 each); critic 3->3 (18) + 3->1 (6)."""
    from learners.perf import update_flops

    cfg = SACConfig(hidden=(3,), batch_size=1, buffer_size=10)
    critic, policy = update_flops(cfg, 2, 1)
    fa, fq, first_q, first_a = 24, 24, 18, 12
    # target: policy on s' + 2 target critics; 2 critics forward; backward: weights + inputs but the first
    assert critic == fa + 2 * fq + 2 * fq + 2 * (fq + fq - first_q) == 180
    # policy forward and backward (no input gradient at its first layer), 2 critics forward and back to the action
    assert policy == fa + (fa + fa - first_a) + 2 * fq + 2 * fq == 156
