"""The fleet actually learns: two tiny continuous tasks defined here, CPU budget of seconds.

Both run with one torch thread (small matmuls gain nothing from more, and a busy CI machine
makes multi-threaded small ops erratic); every agent must reach the stated return.
"""

from __future__ import annotations

import pytest
import torch

from learners import SACConfig, SACFleet


@pytest.fixture
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def fast_config(**overrides) -> SACConfig:
    base = dict(
        hidden=(64, 64), batch_size=64, buffer_size=5000, actor_lr=1e-3, critic_lr=1e-3,
        alpha_lr=1e-3, policy_delay=2, tau=0.01, init_alpha=0.1, gamma=0.9, min_buffer_size=200,
    )
    base.update(overrides)
    return SACConfig(**base)


@pytest.mark.parametrize("matmul_dtype", ["float32", "bfloat16"])
def test_contextual_bandit(one_thread, matmul_dtype):
    """Context s ~ U[-1, 1]; action a in [-2, 2]; reward -(a - 1.5 s)^2; one-step episodes.

    A uniformly random action scores about -2.1, the optimum 0. Every agent must reach a
    mean greedy reward above -0.05 within 800 environment steps (one update per step), also
    with the updates' products in bfloat16 (``SACConfig.matmul_dtype``).
    """
    n = 3
    fleet = SACFleet(n, 1, -2.0, 2.0, fast_config(matmul_dtype=matmul_dtype), seeds=7)
    g = torch.Generator().manual_seed(123)

    def reward(s, a):
        return -(a - 1.5 * s).square().sum(-1)

    def greedy_score():
        s = torch.linspace(-1, 1, 101).view(1, 101, 1).expand(n, 101, 1)
        mean, _ = fleet.distribution(s)
        return reward(s, fleet.to_scaled(torch.tanh(mean))).mean(dim=1)

    start = greedy_score()
    for _ in range(800):
        s = torch.rand(n, 1, generator=g) * 2 - 1
        a, logp, u = fleet.act(s)
        r = reward(s, a)
        fleet.add(s, a, r, torch.rand(n, 1, generator=g) * 2 - 1, torch.ones(n), logp, pre_tanh=u)
        fleet.update()
    score = greedy_score()
    assert bool((start < -0.3).all()), start  # the task is not solved by the initial weights
    assert bool((score > -0.05).all()), score


def test_point_mass_reaches_target(one_thread):
    """1-D point: x' = clip(x + 0.2 a, -1.5, 1.5), a in [-1, 1], reward -|x'|, 20 steps,
    start x ~ U[-1, 1] (time limit, not terminal: bootstrapped targets with gamma 0.9).

    Greedy return averaged over 11 starts: about -12 for the initial policies, -0.73 for the
    optimal controller. Every agent must exceed -1.5 within 2000 environment steps.
    """
    n, horizon = 2, 20
    fleet = SACFleet(n, 2, -1.0, 1.0, fast_config(buffer_size=20000), seeds=7)
    g = torch.Generator().manual_seed(123)

    def obs_of(x, t):
        return torch.stack([x, t / horizon], dim=-1)

    def step(x, a):
        x2 = (x + 0.2 * a).clamp(-1.5, 1.5)
        return x2, -x2.abs()

    def greedy_return():
        x = torch.linspace(-1, 1, 11).repeat(n, 1)
        total = torch.zeros(n, 11)
        for t in range(horizon):
            mean, _ = fleet.distribution(obs_of(x, torch.full_like(x, float(t))))
            x, r = step(x, fleet.to_scaled(torch.tanh(mean))[..., 0])
            total += r
        return total.mean(dim=1)

    start = greedy_return()
    x, t = torch.rand(n, generator=g) * 2 - 1, torch.zeros(n)
    for _ in range(2000):
        o = obs_of(x, t)
        a, logp, u = fleet.act(o)
        x2, r = step(x, a[:, 0])
        fleet.add(o, a, r, obs_of(x2, t + 1), torch.zeros(n), logp, pre_tanh=u)
        fleet.update()
        x, t = x2, t + 1
        if int(t[0]) >= horizon:
            x, t = torch.rand(n, generator=g) * 2 - 1, torch.zeros(n)
    final = greedy_return()
    assert bool((start < -5).all()), start
    assert bool((final > -1.5).all()), final
