"""The batched fleet is N independent SACs: compare with the readable reference, in float64."""

from __future__ import annotations

import pytest
import torch

from learners import SACFleet
from learners_testkit import (
    HIGH,
    LOW,
    OBS_DIM,
    collect,
    full_state,
    fleet_vectors,
    make_fleet_and_refs,
    random_transitions,
    ref_vectors,
    small_config,
)

SEEDS = [11, 22, 33, 44]


def assert_agents_match(fleet, refs, tol=1e-9):
    for i, ref in enumerate(refs):
        mine, theirs = fleet_vectors(fleet, i), ref_vectors(ref)
        for key in theirs:
            torch.testing.assert_close(mine[key], theirs[key], rtol=tol, atol=tol, msg=f"agent {i} {key}")
        assert int(fleet.critic_updates[i]) == ref.critic_updates
        assert int(fleet.policy_updates[i]) == ref.policy_updates


def test_initial_weights_match_reference_and_differ_between_agents():
    fleet, refs = make_fleet_and_refs(small_config(), SEEDS)
    assert_agents_match(fleet, refs, tol=0.0)
    assert not torch.equal(fleet.get_policy_vector(0), fleet.get_policy_vector(1))


def test_shared_init_copies_agent_zero():
    cfg = small_config(shared_init=True)
    fleet, _ = make_fleet_and_refs(cfg, SEEDS)
    for i in range(1, len(SEEDS)):
        assert torch.equal(fleet.get_policy_vector(i), fleet.get_policy_vector(0))
        assert torch.equal(fleet.critic[0][i], fleet.critic[0][0])


@pytest.mark.parametrize("clip", [None, 0.05])
def test_updates_match_independent_reference_sacs(clip):
    """Several updates crossing policy-delay boundaries, all agents active."""
    cfg = small_config(grad_clip_norm=clip)
    fleet, refs = make_fleet_and_refs(cfg, SEEDS)
    collect(fleet, refs, steps=20, seed=0)
    for step in range(8):  # policy_delay 3: policy updates at critic updates 1, 4, 7
        stats = fleet.update()
        ref_stats = [ref.update() for ref in refs]
        assert bool(stats.updated.all())
        expected_pi = step % cfg.policy_delay == 0
        assert stats.policy_updated.tolist() == [expected_pi] * len(refs)
        for i, rs in enumerate(ref_stats):
            assert float(stats.critic_loss[i]) == pytest.approx(rs["critic_loss"], rel=1e-9)
            assert float(stats.q_mean[i]) == pytest.approx(rs["q_mean"], rel=1e-9)
            if expected_pi:
                assert float(stats.policy_loss[i]) == pytest.approx(rs["policy_loss"], rel=1e-9)
                assert float(stats.alpha_loss[i]) == pytest.approx(rs["alpha_loss"], rel=1e-9)
                assert float(stats.entropy[i]) == pytest.approx(rs["entropy"], rel=1e-9)
                assert float(stats.alpha[i]) == pytest.approx(rs["alpha"], rel=1e-9)
            else:
                assert torch.isnan(stats.policy_loss[i]) and torch.isnan(stats.alpha[i])
        assert_agents_match(fleet, refs)
    assert fleet.policy_updates.tolist() == [3] * len(refs)
    # learning actually moved everything that the comparison covers
    fresh, _ = make_fleet_and_refs(cfg, SEEDS)
    for key, value in fleet_vectors(fleet, 0).items():
        assert not torch.equal(value, fleet_vectors(fresh, 0)[key]), key


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
def test_masked_updates_match_references_that_skip(chunk_size):
    """Agents outside the mask do nothing; their later updates continue their own schedule.

    Also with the agents processed in groups (chunk_size): contiguous groups use views and
    per-group Adam slices, scattered ones index copies and per-row Adam entries.
    """
    cfg = small_config()
    fleet, refs = make_fleet_and_refs(cfg, SEEDS)
    if chunk_size is not None:
        fleet.chunk_size = chunk_size
    collect(fleet, refs, steps=20, seed=1)
    masks = [
        None,
        [True, False, True, False],
        [False, True, True, False],
        None,
        [True, True, False, True],
        [False, False, False, True],
        None,
        [True, False, False, False],
        None,
    ]
    for mask in masks:
        stats = fleet.update(mask=mask)
        for i, ref in enumerate(refs):
            if mask is None or mask[i]:
                ref.update()
                assert bool(stats.updated[i])
            else:
                assert not bool(stats.updated[i]) and torch.isnan(stats.critic_loss[i])
        assert_agents_match(fleet, refs)
    # counters diverged between agents, so a single call mixed policy and critic-only agents
    assert len(set(fleet.critic_updates.tolist())) > 1
    # acting after masked updates still agrees (same generator positions)
    collect(fleet, refs, steps=3, seed=2)
    collect(fleet, refs, steps=3, seed=3, mask=[True, False, True, True])
    for _ in range(4):
        fleet.update()
        for ref in refs:
            ref.update()
    assert_agents_match(fleet, refs)


def test_force_policy_matches_reference():
    cfg = small_config()
    fleet, refs = make_fleet_and_refs(cfg, SEEDS)
    collect(fleet, refs, steps=20, seed=4)
    fleet.update()
    for ref in refs:
        ref.update()
    force = [False, True, False, True]
    stats = fleet.update(force_policy=force)
    for i, ref in enumerate(refs):
        ref.update(force_policy=force[i])
    assert stats.policy_updated.tolist() == force
    assert_agents_match(fleet, refs)


def test_fixed_alpha_is_not_learned():
    cfg = small_config(autotune_alpha=False)
    fleet, refs = make_fleet_and_refs(cfg, SEEDS[:2])
    collect(fleet, refs, steps=12, seed=5)
    for _ in range(4):
        stats = fleet.update()
        for ref in refs:
            ref.update()
    assert_agents_match(fleet, refs)
    torch.testing.assert_close(fleet.alpha, torch.full((2,), 0.2, dtype=torch.float64))
    assert bool(torch.isnan(stats.alpha_loss).all())


def test_float32_fleet_tracks_reference_loosely():
    cfg = small_config(dtype="float32")
    fleet, refs = make_fleet_and_refs(cfg, SEEDS[:3])
    for obs, nxt, rew, term in random_transitions(3, 16, seed=6, dtype=torch.float32):
        act, logp, _ = fleet.act(obs)
        for i, ref in enumerate(refs):
            ref.act(obs[i])
            ref.add(obs[i], act[i], rew[i], nxt[i], term[i], logp[i])
        fleet.add(obs, act, rew, nxt, term, logp)
    for _ in range(7):
        fleet.update()
        for ref in refs:
            ref.update()
    for i, ref in enumerate(refs):
        mine, theirs = fleet_vectors(fleet, i), ref_vectors(ref)
        for key in theirs:
            torch.testing.assert_close(mine[key], theirs[key], rtol=1e-4, atol=1e-5)


def test_chunking_changes_no_number():
    cfg = small_config(hidden=(32, 32), batch_size=16)
    fleets = [SACFleet(5, OBS_DIM, LOW, HIGH, cfg, seeds=3, chunk_size=c) for c in (None, 1, 2)]
    assert fleets[0].chunk_size >= 5
    for fleet in fleets:
        collect(fleet, None, steps=20, seed=1)
    masks = [None, [True, False, True, True, False], None, [False, True, True, True, True], None, None]
    for mask in masks:
        for fleet in fleets:
            fleet.update(mask=mask)
    states = [full_state(f) for f in fleets]
    for other in states[1:]:
        for key, value in states[0].items():
            # identical up to the last bits of Adam's second moments (the fused kernel's
            # vector loop depends on tensor sizes)
            torch.testing.assert_close(other[key], value, rtol=1e-12, atol=1e-18, msg=key)
    assert fleets[0].critic_updates.tolist() == [5, 5, 6, 6, 5]
