"""SACFleet behaviour: masks, acting, alpha, counters, policy vectors, buffers, save/load."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

from learners import SACConfig, SACFleet, policy_distribution, policy_log_prob, policy_sample
from learners_testkit import (
    HIGH,
    LOW,
    OBS_DIM,
    assert_states_equal,
    collect,
    full_state,
    small_config,
)


def agent_slice(state: dict, i: int) -> dict:
    """The entries of ``full_state`` that belong to agent i."""
    out = {}
    for key, value in state.items():
        if key.startswith(".rng."):
            if key == f".rng.{i}":
                out[key] = value
        elif key.startswith("buffer."):
            if key.endswith(f".{i}"):
                out[key] = value
            elif key in ("buffer.ptr", "buffer.size"):
                out[key] = value[i]
        elif value.dim() >= 1 and value.shape[0] == 3:
            out[key] = value[i]
    return out


def make_fleet(n=3, **overrides) -> SACFleet:
    return SACFleet(n, OBS_DIM, LOW, HIGH, small_config(**overrides), seeds=5)


# ----------------------------------------------------------------------------- masking
def test_masked_out_agents_are_exactly_untouched():
    fleet = make_fleet()
    collect(fleet, None, steps=12, seed=0)
    fleet.update()
    before = full_state(fleet)
    # agent 1 masked out, agents 0 and 2 do a critic update (no policy step: counter 1 % 3)
    stats = fleet.update(mask=[True, False, True])
    stats = fleet.update(mask=[True, False, True])
    stats = fleet.update(mask=[True, False, True])  # counter 3 -> policy step for 0 and 2
    assert stats.policy_updated.tolist() == [True, False, True]
    after = full_state(fleet)
    assert_states_equal(agent_slice(before, 1), agent_slice(after, 1))
    for i in (0, 2):
        changed = [k for k in agent_slice(before, i) if not torch.equal(agent_slice(before, i)[k], agent_slice(after, i)[k])]
        # networks, targets, both Adams, alpha, counters and the generator all moved
        for must in (".actor.0", ".critic.0", ".critic_target.0", ".log_alpha", ".critic_updates",
                     ".policy_updates", f".rng.{i}", ".actor_opt.steps", ".critic_opt.exp_avg.0",
                     ".alpha_opt.exp_avg_sq.0"):
            assert must in changed, (i, must)
    assert fleet.critic_updates.tolist() == [4, 1, 4]
    assert fleet.policy_updates.tolist() == [2, 1, 2]


def test_agents_in_warm_up_do_not_update():
    fleet = make_fleet(min_buffer_size=10)
    collect(fleet, None, steps=9, seed=1)
    collect(fleet, None, steps=1, seed=2, mask=[True, False, True])
    assert fleet.ready().tolist() == [True, False, True]
    before = full_state(fleet)
    stats = fleet.update()
    assert stats.updated.tolist() == [True, False, True]
    assert_states_equal(agent_slice(before, 1), agent_slice(full_state(fleet), 1))
    empty = make_fleet()
    assert not bool(empty.update().updated.any())


def test_counters_follow_algorithm_1():
    fleet = make_fleet(n=2, policy_delay=4)
    collect(fleet, None, steps=10, seed=3)
    ks = []
    for _ in range(9):
        stats = fleet.update()
        ks.append(int(fleet.policy_updates[0]))
        assert stats.policy_updated.tolist() == [bool(stats.policy_updated[0])] * 2
    # policy steps at critic updates 1, 5, 9 (counter 0, 4, 8 before increment)
    assert ks == [1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert fleet.critic_updates.tolist() == [9, 9]
    assert fleet.critic_updates.dtype == torch.long
    c = fleet.critic_updates
    c += 100  # a copy: the fleet's counter does not move
    assert fleet.critic_updates.tolist() == [9, 9]


# ----------------------------------------------------------------------------- acting
def test_act_mask_freezes_rng_of_inactive_agents():
    a, b = make_fleet(), make_fleet()
    obs = torch.randn(3, OBS_DIM, dtype=torch.float64)
    a.act(obs, mask=[True, False, True])
    assert torch.equal(a.generators[1].get_state(), b.generators[1].get_state())
    assert not torch.equal(a.generators[0].get_state(), b.generators[0].get_state())
    a.act(obs, deterministic=True)  # draws nothing
    act_a, _, _ = a.act(obs)  # agent 1's first draw, agents 0 and 2's second
    act_b, _, _ = b.act(obs)  # everyone's first draw
    assert torch.equal(act_a[1], act_b[1]) and not torch.equal(act_a[0], act_b[0])


def test_actions_are_in_range_and_log_probs_consistent():
    low, high = torch.tensor(LOW, dtype=torch.float64), torch.tensor(HIGH, dtype=torch.float64)
    wide = make_fleet(log_std_min=1.5, log_std_max=2.0)  # saturating policies hit the bounds
    obs = torch.randn(3, OBS_DIM, dtype=torch.float64) * 3
    for _ in range(20):
        act, logp, _ = wide.act(obs)
        assert bool(((act >= low) & (act <= high)).all()) and bool(torch.isfinite(logp).all())
        again = wide.log_prob(obs.unsqueeze(1), act.unsqueeze(1))
        assert bool(torch.isfinite(again).all())  # clipped atanh: finite even at the bound
    fleet = make_fleet()
    for _ in range(20):
        act, logp, _ = fleet.act(obs)
        again = fleet.log_prob(obs.unsqueeze(1), act.unsqueeze(1))[:, 0]
        torch.testing.assert_close(again, logp, rtol=1e-6, atol=1e-6)
    det, det_logp, _ = fleet.act(obs, deterministic=True)
    mean, _ = fleet.distribution(obs.unsqueeze(1))
    torch.testing.assert_close(det, fleet.to_scaled(torch.tanh(mean[:, 0])))
    assert bool(torch.isfinite(det_logp).all())


def test_q_evaluation_shapes_and_min():
    fleet = make_fleet()
    obs = torch.randn(3, 7, OBS_DIM, dtype=torch.float64)
    act = torch.rand(3, 7, 2, dtype=torch.float64)
    q = fleet.q_values(obs, act)
    assert q.shape == (3, 2, 7)
    torch.testing.assert_close(fleet.min_q(obs, act), torch.minimum(q[:, 0], q[:, 1]))
    torch.testing.assert_close(fleet.min_q(obs[[2]], act[[2]], agents=[2]), fleet.min_q(obs, act)[[2]])


# ----------------------------------------------------------------------------- temperature
@pytest.mark.parametrize("target, direction", [(-20.0, -1), (20.0, +1)])
def test_alpha_moves_toward_target_entropy(target, direction):
    fleet = make_fleet(target_entropy=target, policy_delay=1, alpha_lr=1e-2)
    collect(fleet, None, steps=12, seed=4)
    alpha0 = fleet.alpha.clone()
    for _ in range(5):
        stats = fleet.update()
        # the sign of the step follows entropy vs target
        above = stats.entropy > target
        assert bool((above == (direction < 0)).all())
    moved = fleet.alpha - alpha0
    assert bool((torch.sign(moved) == direction).all()), (alpha0, fleet.alpha)


def test_alpha_decreases_with_default_target_when_policy_is_broad():
    # policies with sigma ~ 0.8 (not so broad that tanh saturates) have entropy ~ +2.7 nats
    # (with the log(scale) of the 2-D action box), far above -dim(A) = -2
    fleet = make_fleet(log_std_min=-0.5, log_std_max=0.0, policy_delay=1)
    collect(fleet, None, steps=12, seed=5)
    alpha0 = fleet.alpha.clone()
    stats = fleet.update()
    assert bool((stats.entropy > -2).all())
    assert bool((fleet.alpha < alpha0).all())


# ----------------------------------------------------------------------------- policy vectors
def test_layout_covers_vector_and_matches_architecture():
    fleet = SACFleet(2, 6, -3.0, 3.0, SACConfig(buffer_size=512))
    layout = fleet.policy_layout()
    assert layout[0].start == 0 and layout[-1].stop == fleet.policy_dim
    for prev, nxt in zip(layout, layout[1:]):
        assert prev.stop == nxt.start
    for s in layout:
        assert s.stop - s.start == math.prod(s.shape)
    assert len({s.name for s in layout}) == len(layout)
    # 6 -> 256 -> 256 -> (mean 1, log_std 1): the paper's 68,098 parameters
    expected = (6 * 256 + 256) + (256 * 256 + 256) + 2 * (256 + 1)
    assert fleet.policy_dim == expected
    assert [s.name for s in layout][-4:] == ["mean.weight", "mean.bias", "log_std.weight", "log_std.bias"]
    assert layout[0].shape == (256, 6)  # nn.Linear orientation [out, in]


def test_policy_vector_round_trip_and_isolation():
    fleet = make_fleet()
    collect(fleet, None, steps=12, seed=6)
    obs = torch.randn(3, 5, OBS_DIM, dtype=torch.float64)
    v0, v1 = fleet.get_policy_vector(0), fleet.get_policy_vector(1)
    v0[:] = 123.0  # a copy: editing it does nothing
    assert not torch.equal(fleet.get_policy_vector(0), v0)
    mean_before, std_before = fleet.distribution(obs)
    fleet.set_policy_vector(2, v1)
    assert torch.equal(fleet.get_policy_vector(2), v1)
    mean_after, std_after = fleet.distribution(obs)
    # agent 2 now behaves like agent 1 did; agents 0 and 1 unchanged
    mean_1, _ = fleet.distribution(obs[[1]], agents=[1])
    obs_swap = obs.clone()
    obs_swap[2] = obs[1]
    m_swap, _ = fleet.distribution(obs_swap)
    torch.testing.assert_close(m_swap[2], m_swap[1])
    assert torch.equal(mean_after[:2], mean_before[:2]) and torch.equal(std_after[:2], std_before[:2])
    assert not torch.equal(mean_after[2], mean_before[2])
    torch.testing.assert_close(mean_1[0], m_swap[1])
    # batched get equals the single gets; set_policy_vectors round-trips
    allv = fleet.get_policy_vectors()
    assert torch.equal(allv[0], fleet.get_policy_vector(0))
    fleet.set_policy_vectors([0, 1], allv[[1, 0]])
    assert torch.equal(fleet.get_policy_vector(0), allv[1])
    # learning goes on from the new parameters, Adam state intact and finite
    steps_before = fleet.actor_opt.steps.clone()
    for _ in range(4):
        stats = fleet.update()
    assert bool(torch.isfinite(stats.critic_loss).all())
    assert bool((fleet.actor_opt.steps > steps_before).all())
    assert all(bool(torch.isfinite(p).all()) for p in fleet.actor)
    assert not torch.equal(fleet.get_policy_vector(2), v1)
    with pytest.raises(ValueError, match="shape"):
        fleet.set_policy_vector(0, torch.zeros(fleet.policy_dim + 1))
    with pytest.raises(ValueError, match="non-finite"):
        fleet.set_policy_vector(0, torch.full((fleet.policy_dim,), float("nan")))


def test_functional_policy_matches_fleet_and_supports_jvp():
    fleet = make_fleet()
    obs = torch.randn(3, 4, OBS_DIM, dtype=torch.float64)
    theta = fleet.get_policy_vectors()
    mean, log_std = policy_distribution(theta, obs, fleet.spec)
    m_ref, s_ref = fleet.distribution(obs)
    torch.testing.assert_close(mean, m_ref)
    torch.testing.assert_close(log_std, s_ref)
    act = fleet.to_scaled(torch.tanh(torch.randn(3, 4, 2, dtype=torch.float64)))
    torch.testing.assert_close(policy_log_prob(theta, obs, act, fleet.spec), fleet.log_prob(obs, act))
    a0, lp0 = policy_sample(theta, obs[:, :1], torch.zeros(3, 1, 2, dtype=torch.float64), fleet.spec)
    det, det_lp, _ = fleet.act(obs[:, 0], deterministic=True)
    torch.testing.assert_close(a0[:, 0], det)
    torch.testing.assert_close(lp0[:, 0], det_lp)
    # single-vector form and forward-mode derivative along a direction v
    v = torch.randn(fleet.policy_dim, dtype=torch.float64)
    f = lambda th: policy_distribution(th, obs[0], fleet.spec)  # noqa: E731
    (m0, s0), (dm, ds) = torch.func.jvp(f, (theta[0],), (v,))
    eps = 1e-6
    (mp, sp), (mm, sm) = f(theta[0] + eps * v), f(theta[0] - eps * v)
    torch.testing.assert_close(dm, (mp - mm) / (2 * eps), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ds, (sp - sm) / (2 * eps), rtol=1e-5, atol=1e-7)
    assert float(ds.abs().max()) > 0  # the smooth log-std bound keeps a derivative


# ----------------------------------------------------------------------------- replay
def test_buffer_masked_add_and_ring_wraparound():
    fleet = make_fleet(buffer_size=10, batch_size=4)
    buf = fleet.buffer
    for t in range(14):
        obs = torch.full((3, OBS_DIM), float(t), dtype=torch.float64)
        mask = [True, t % 2 == 0, False]
        fleet.add(obs, torch.zeros(3, 2), torch.full((3,), float(t)), obs + 0.5, torch.zeros(3), torch.zeros(3), mask=mask)
    assert buf.size.tolist() == [10, 7, 0]
    assert buf.ptr.tolist() == [4, 7, 0]
    # agent 0 keeps the last 10 rewards 4..13 (ring), agent 1 the even ones
    assert sorted(buf.reward[0].tolist()) == [float(t) for t in range(4, 14)]
    assert sorted(buf.reward[1, :7].tolist()) == [float(t) for t in range(0, 14, 2)]
    torch.testing.assert_close(buf.next_obs[0, :, 0], buf.obs[0, :, 0] + 0.5)
    g = torch.Generator().manual_seed(0)
    idx = torch.stack([buf.sample_indices(1, 500, g)])
    assert int(idx.max()) < 7
    with pytest.raises(ValueError, match="empty"):
        buf.sample_indices(2, 4, g)
    with pytest.raises(ValueError, match="shape"):
        fleet.add(torch.zeros(2, OBS_DIM), torch.zeros(3, 2), torch.zeros(3), torch.zeros(3, OBS_DIM), torch.zeros(3), torch.zeros(3))


def test_sample_transitions_uses_callers_generator():
    fleet = make_fleet()
    collect(fleet, None, steps=6, seed=7)
    rng_before = [g.get_state() for g in fleet.generators]
    batch = fleet.sample_transitions(1, 50, torch.Generator().manual_seed(0))
    assert batch.obs.shape == (50, OBS_DIM) and batch.action.shape == (50, 2) and batch.log_prob.shape == (50,)
    assert all(torch.equal(a, g.get_state()) for a, g in zip(rng_before, fleet.generators))
    # every sampled row is one of agent 1's stored transitions, with its behaviour log-prob
    stored = {tuple(row.tolist()): lp for row, lp in zip(fleet.buffer.obs[1, :6], fleet.buffer.log_prob[1, :6])}
    for row, lp in zip(batch.obs, batch.log_prob):
        assert float(stored[tuple(row.tolist())]) == float(lp)
    torch.testing.assert_close(
        fleet.log_prob(batch.obs[None], batch.action[None], agents=[1])[0], batch.log_prob, rtol=1e-6, atol=1e-6
    )


# ----------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("mask_pattern", [False, True])
def test_save_load_resumes_bit_identically(tmp_path, mask_pattern):
    cfg = small_config(dtype="float32", grad_clip_norm=1.0)

    def run(fleet, updates, seed):
        collect(fleet, None, steps=4, seed=seed)
        for u in range(updates):
            mask = [True, u % 2 == 0, True] if mask_pattern else None
            fleet.update(mask=mask)

    a = SACFleet(3, OBS_DIM, LOW, HIGH, cfg, seeds=9, chunk_size=2)
    collect(a, None, steps=10, seed=10)
    run(a, 5, seed=11)
    path = tmp_path / "ckpt" / "fleet.pt"
    a.save(path)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["fleet.pt"]
    b = SACFleet.load(path)
    assert b.chunk_size == 2
    assert_states_equal(full_state(a), full_state(b))
    run(a, 7, seed=12)
    run(b, 7, seed=12)
    assert_states_equal(full_state(a), full_state(b))
    obs = torch.randn(3, OBS_DIM)
    assert torch.equal(a.act(obs)[0], b.act(obs)[0])
    # a fleet that was not saved/loaded but took another path differs (the check can fail)
    c = SACFleet.load(path)
    run(c, 7, seed=13)
    with pytest.raises(AssertionError):
        assert_states_equal(full_state(a), full_state(c))


def test_checkpoint_without_buffers_and_mismatch(tmp_path):
    fleet = make_fleet()
    collect(fleet, None, steps=9, seed=14)
    fleet.update()
    fleet.save(tmp_path / "f.pt", include_buffers=False)
    fleet.save(tmp_path / "f.pt", include_buffers=False)  # overwrite in place
    back = SACFleet.load(tmp_path / "f.pt")
    assert back.buffer.size.tolist() == [0, 0, 0]
    assert torch.equal(back.get_policy_vectors(), fleet.get_policy_vectors())
    other = SACFleet(3, OBS_DIM, LOW, HIGH, small_config(gamma=0.5), seeds=5)
    with pytest.raises(ValueError, match="config"):
        other.load_state_dict(fleet.state_dict())
    wrong = SACFleet(2, OBS_DIM, LOW, HIGH, small_config(), seeds=5)
    with pytest.raises(ValueError, match="n_agents"):
        wrong.load_state_dict(fleet.state_dict())
    assert sorted(os.listdir(tmp_path)) == ["f.pt"]


# ----------------------------------------------------------------------------- hygiene
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_tune_malloc_applies_on_linux():
    code = "import learners; assert learners.tune_malloc() is True"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_learners_imports_no_simulator():
    code = (
        "import sys, learners\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('simpy', 'cosim', 'traci', 'libsumo', 'sumolib')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_weights_maps_saved_agents_onto_a_larger_fleet():
    cfg = small_config()
    small = SACFleet(2, OBS_DIM, LOW, HIGH, cfg, seeds=[1, 2])
    big = SACFleet(5, OBS_DIM, [-1.0, 0.0], [1.0, 2.0], cfg, seeds=[3, 4, 5, 6, 7])
    before_opt = big.actor_opt.state_dict()
    big.load_weights(small.state_dict(include_buffers=False))
    for i in range(5):
        torch.testing.assert_close(big.get_policy_vector(i), small.get_policy_vector(i % 2))
        for dst, src in zip(big.critic_target, small.critic_target):
            torch.testing.assert_close(dst[i], src[i % 2])
    torch.testing.assert_close(big.log_alpha, small.log_alpha[[0, 1, 0, 1, 0]])
    assert int(big.policy_updates.sum()) == 0 and int(big.buffer.size.sum()) == 0
    assert str(big.actor_opt.state_dict()) == str(before_opt)
    big.load_weights(small.state_dict(include_buffers=False), source_agents=[1, 1, 1, 0, 0])
    torch.testing.assert_close(big.get_policy_vector(2), small.get_policy_vector(1))


def test_load_weights_names_what_does_not_match():
    other = SACFleet(2, OBS_DIM, LOW, HIGH, small_config(hidden=(8, 8)), seeds=[1, 2])
    fleet = SACFleet(2, OBS_DIM, LOW, HIGH, small_config(), seeds=[1, 2])
    with pytest.raises(ValueError, match="sac.hidden"):
        fleet.load_weights(other.state_dict(include_buffers=False))
    wrong_obs = SACFleet(2, OBS_DIM + 1, LOW, HIGH, small_config(), seeds=[1, 2])
    with pytest.raises(ValueError, match="observe"):
        fleet.load_weights(wrong_obs.state_dict(include_buffers=False))
