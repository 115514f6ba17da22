"""``SACConfig.matmul_dtype = "bfloat16"``: the fleet's updates multiply in bfloat16 under
torch.autocast, and stay N independent learners with float32 heads, losses, gradients and Adam."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch

from learners import SAC, SACConfig, SACFleet
from learners.nets import actor_forward, twin_critic_forward
from learners_testkit import (
    HIGH,
    LOW,
    OBS_DIM,
    assert_states_equal,
    collect,
    full_state,
    random_transitions,
    small_config,
)
from test_learners_fleet import agent_slice

SEEDS = [11, 12, 13]


def bf16_config(**overrides) -> SACConfig:
    return small_config(**{"dtype": "float32", "matmul_dtype": "bfloat16", "hidden": (32, 32), **overrides})


def trained(cfg: SACConfig, seeds, masks) -> SACFleet:
    fleet = SACFleet(len(seeds), OBS_DIM, LOW, HIGH, cfg, seeds=seeds)
    collect(fleet, None, steps=16, seed=4)
    for mask in masks:
        fleet.update(mask=mask)
    return fleet


def test_bfloat16_needs_float32_storage_and_is_a_fleet_option():
    with pytest.raises(ValueError, match="matmul_dtype bfloat16 needs dtype float32"):
        SACConfig(dtype="float64", matmul_dtype="bfloat16")
    with pytest.raises(ValueError, match="option of learners.SACFleet"):
        SAC(OBS_DIM, LOW, HIGH, bf16_config(), seed=0)


def test_the_products_run_in_bfloat16_and_the_rest_in_float32():
    seen: list[torch.dtype] = []
    fleet = trained(bf16_config(), SEEDS, masks=[None])
    # one update under a dispatch probe: what dtype the batched products see
    from torch.utils._python_dispatch import TorchDispatchMode

    class Probe(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.baddbmm.default:  # forward layers: (bias, x, weight)
                seen.append((args[2].shape[-1], args[1].dtype))
            return func(*args, **(kwargs or {}))

    with Probe():
        stats = fleet.update()
    # hidden layers (32 wide) in bfloat16; the 2-D heads (mean, log-std) in float32
    assert {dtype for width, dtype in seen if width == 32} == {torch.bfloat16}
    assert {dtype for width, dtype in seen if width == 2} == {torch.float32}
    # the output layers opt out of autocast (2-D actions here: the mean and log-std heads are
    # products too), so Q values, means and log-stds are float32
    obs = torch.randn(3, 8, OBS_DIM)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the context of the update's passes
        mean, log_std = actor_forward(fleet.actor, obs, -5.0, 2.0)
        q = twin_critic_forward(fleet.critic, obs, torch.tanh(mean))
    assert mean.shape[-1] == 2 and {mean.dtype, log_std.dtype, q.dtype} == {torch.float32}
    assert stats.critic_loss.dtype == torch.float32
    for p in [*fleet.actor, *fleet.critic, *fleet.critic_target, fleet.log_alpha]:
        assert p.dtype == torch.float32
    assert all(m.dtype == torch.float32 for m in fleet.critic_opt.exp_avg)


def test_bfloat16_moves_the_numbers_a_little():
    """From the same state, one update in float32 and one in bfloat16: the losses agree to the
    bfloat16 rounding (not exactly), and Adam's first step, lr * sign(g) per weight, agrees on
    all but the weights whose gradient is so small that the rounding flips its sign."""
    lr = 1e-3
    cfg32 = small_config(dtype="float32", hidden=(32, 32), critic_lr=lr)
    full, half = (trained(cfg, SEEDS, masks=[]) for cfg in (cfg32, bf16_config(critic_lr=lr)))
    s32, s16 = full.update(), half.update()
    assert not torch.equal(s32.critic_loss, s16.critic_loss)
    torch.testing.assert_close(s16.critic_loss, s32.critic_loss, rtol=2e-2, atol=1e-4)
    torch.testing.assert_close(s16.q_mean, s32.q_mean, rtol=2e-2, atol=1e-3)
    for w32, w16 in zip(full.critic, half.critic):
        diff = (w32 - w16).abs()
        assert diff.max().item() <= 2 * lr * (1 + 1e-3)
        assert (diff < 1e-7).float().mean().item() > 0.9


def test_a_bfloat16_fleet_is_n_bfloat16_learners():
    """Agent i of a fleet of 3 against a fleet of 1 with i's seed, fed i's transitions: equal up
    to the rounding of the bfloat16 kernels (which may sum in another order for another batch)."""
    cfg = bf16_config()
    fleet = SACFleet(3, OBS_DIM, LOW, HIGH, cfg, seeds=SEEDS)
    solos = [SACFleet(1, OBS_DIM, LOW, HIGH, cfg, seeds=[s]) for s in SEEDS]
    for obs, nxt, rew, term in random_transitions(3, 16, seed=4, dtype=torch.float32):
        act, logp, u = fleet.act(obs)
        fleet.add(obs, act, rew, nxt, term, logp, pre_tanh=u)
        for i, solo in enumerate(solos):
            a, lp, ui = solo.act(obs[i : i + 1])
            torch.testing.assert_close(a, act[i : i + 1])
            solo.add(obs[i : i + 1], a, rew[i : i + 1], nxt[i : i + 1], term[i : i + 1], lp, pre_tanh=ui)
    masks = [None, [True, False, True], None, [False, True, True], None, None]
    for mask in masks:
        fleet.update(mask=mask)
        for i, solo in enumerate(solos):
            solo.update(mask=None if mask is None else [mask[i]])
    both = full_state(fleet)
    for i, solo in enumerate(solos):
        mine, theirs = agent_slice(both, i), full_state(solo)
        assert solo.critic_updates.tolist() == [fleet.critic_updates[i].item()]
        for key, value in mine.items():
            if key.startswith((".rng.", "buffer.")) and key.endswith(f".{i}"):  # generator, buffer rows
                assert torch.equal(theirs[key.rsplit(".", 1)[0] + ".0"], value), key
                continue
            other = theirs[key]
            if other.dim() >= 1 and other.shape[0] == 1 and value.shape != other.shape:
                other = other[0]
            torch.testing.assert_close(other, value, rtol=2e-3, atol=2e-5, msg=key)


def test_masked_out_agents_stay_exactly_untouched_in_bfloat16():
    fleet = trained(bf16_config(), SEEDS, masks=[None])
    before = full_state(fleet)
    for _ in range(3):
        fleet.update(mask=[True, False, True])
    assert_states_equal(agent_slice(before, 1), agent_slice(full_state(fleet), 1))


def test_same_seed_same_bfloat16_numbers():
    masks = [None, [True, False, True], None]
    a, b = (full_state(trained(bf16_config(), SEEDS, masks)) for _ in range(2))
    assert_states_equal(a, b)


def test_a_cpu_without_avx512_is_told_that_bfloat16_is_emulated(monkeypatch):
    import learners.fleet as fleet_module

    monkeypatch.setattr(fleet_module, "cpu_has_fast_bfloat16", lambda: False)
    with pytest.warns(RuntimeWarning, match="emulates bfloat16"):
        SACFleet(2, OBS_DIM, LOW, HIGH, bf16_config(), seeds=1)
    monkeypatch.setattr(fleet_module, "cpu_has_fast_bfloat16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SACFleet(2, OBS_DIM, LOW, HIGH, bf16_config(), seeds=1)
        SACFleet(2, OBS_DIM, LOW, HIGH, small_config(), seeds=1)  # float32 products: no probe


def test_the_probe_sees_a_cpu_capped_at_avx2():
    # oneDNN reads ONEDNN_MAX_CPU_ISA once, at start: a fresh interpreter capped at AVX2 has
    # no hardware bfloat16, whatever this machine has
    code = "from learners.fleet import cpu_has_fast_bfloat16; print(cpu_has_fast_bfloat16())"
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
