"""learners.mixing against hand-computed and brute-force values (RSM-MASAC eqs. 10, 13, 15-20)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from learners_testkit import OBS_DIM, collect, small_config

from learners import ActionScale, PolicySpec, SACFleet, policy_distribution, policy_log_prob, policy_sample
from learners.mixing import (
    MixConfig,
    RegulatedInputs,
    batch_score_quadratic_form,
    fisher_quadratic_form,
    fleet_regulated_inputs,
    merl_advantage,
    mix,
    mixing_bound,
    penalty_coefficient,
    reconstruct,
    segment_bounds,
    shared_mask,
    split_segments,
    trust_region_step,
)
from learners.squash import squashed_log_prob_of_pre_tanh

TINY = PolicySpec(3, 2, (5, 4), -5.0, 2.0, ActionScale.from_bounds([-2.0, -1.0], [2.0, 3.0]))
D64 = torch.float64


def _theta(seed: int, spec: PolicySpec = TINY, scale: float = 0.5) -> torch.Tensor:
    return torch.randn(spec.dim, generator=torch.Generator().manual_seed(seed), dtype=D64) * scale


# ---------------------------------------------------------------- segments (eqs. 16, 17)
def test_segment_bounds_are_a_uniform_partition():
    assert segment_bounds(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert segment_bounds(8, 4) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert segment_bounds(5, 1) == [(0, 5)]
    for d, p in ((68098, 4), (133890, 4), (7, 7), (1000, 3)):
        b = segment_bounds(d, p)
        sizes = [hi - lo for lo, hi in b]
        assert b[0][0] == 0 and b[-1][1] == d and max(sizes) - min(sizes) <= 1
        assert all(b[k][1] == b[k + 1][0] for k in range(p - 1))
        assert [len(a) for a in np.array_split(np.arange(d), p)] == sizes


def test_segment_bounds_reject_bad_parts():
    with pytest.raises(ValueError, match="parts"):
        segment_bounds(10, 0)
    with pytest.raises(ValueError, match="non-empty"):
        segment_bounds(3, 4)


def test_reconstruct_from_segments_of_different_agents():
    a, b, c = (torch.full((11,), float(k)) for k in (1, 2, 3))
    segs = [split_segments(x, 3)[p] for p, x in enumerate((a, b, c))]
    ref = reconstruct(segs)
    assert ref.tolist() == [1.0] * 4 + [2.0] * 4 + [3.0] * 3
    assert torch.equal(reconstruct(split_segments(a, 3)), a)


def test_shared_mask_selects_layers():
    layout = TINY.layout()
    assert bool(shared_mask(layout, "all").all())
    first = shared_mask(layout, "except_first")
    fc0 = [s for s in layout if s.name.startswith("fc0.")]
    assert not bool(first[: fc0[-1].stop].any()) and bool(first[fc0[-1].stop :].all())
    heads = shared_mask(layout, ["mean", "log_std"])
    assert int(heads.sum()) == sum(s.stop - s.start for s in layout if s.name.split(".")[0] in ("mean", "log_std"))
    with pytest.raises(ValueError, match="unknown layer"):
        shared_mask(layout, ["fc9"])


# ---------------------------------------------------------------- eq. 20: Fisher form
def _explicit_fisher(spec: PolicySpec, theta: torch.Tensor, obs: torch.Tensor, nodes: int = 5) -> torch.Tensor:
    """F = mean_s E_{a~pi}[g g^T], g = d log pi(a|s) / d theta per sample, built as a d x d
    matrix. The expectation over a = tanh(mu + sigma z) is exact with Gauss-Hermite nodes in z:
    the score is a polynomial of degree 2 in z, g g^T of degree 4."""
    z1, w1 = np.polynomial.hermite_e.hermegauss(nodes)
    w1 = w1 / w1.sum()
    a_dim = spec.act_dim
    grids = np.meshgrid(*([z1] * a_dim), indexing="ij")
    z = torch.tensor(np.stack([g.ravel() for g in grids], -1), dtype=D64)
    w = torch.tensor(np.prod(np.meshgrid(*([w1] * a_dim), indexing="ij"), axis=0).ravel(), dtype=D64)
    d = theta.numel()
    fisher = torch.zeros(d, d, dtype=D64)
    for s in obs:
        for zk, wk in zip(z, w):
            with torch.no_grad():
                a, _ = policy_sample(theta, s.view(1, -1), zk.view(1, -1), spec)
            t = theta.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(policy_log_prob(t, s.view(1, -1), a, spec).sum(), t)
            fisher += wk * torch.outer(g, g)
    return fisher / len(obs)


def test_fisher_form_equals_explicit_per_sample_gradient_fisher():
    theta = _theta(1)
    v = _theta(2, scale=0.1)
    obs = torch.randn(6, TINY.obs_dim, generator=torch.Generator().manual_seed(3), dtype=D64)
    explicit = v @ _explicit_fisher(TINY, theta, obs) @ v
    fast = fisher_quadratic_form(TINY, theta.view(1, -1), v.view(1, -1), obs.view(1, 6, -1))
    assert fast.shape == (1,)
    torch.testing.assert_close(fast[0], explicit, rtol=1e-4, atol=0)


def test_fisher_form_is_batched_and_quadratic():
    thetas = torch.stack([_theta(k) for k in range(3)])
    vs = torch.stack([_theta(10 + k, scale=0.1) for k in range(3)])
    obs = torch.randn(3, 4, TINY.obs_dim, generator=torch.Generator().manual_seed(0), dtype=D64)
    batched = fisher_quadratic_form(TINY, thetas, vs, obs)
    for k in range(3):
        one = fisher_quadratic_form(TINY, thetas[k : k + 1], vs[k : k + 1], obs[k : k + 1])
        torch.testing.assert_close(batched[k], one[0])
    torch.testing.assert_close(fisher_quadratic_form(TINY, thetas, 3 * vs, obs), 9 * batched)
    assert bool((batched > 0).all())
    assert torch.equal(fisher_quadratic_form(TINY, thetas, torch.zeros_like(vs), obs), torch.zeros(3, dtype=D64))


def test_batch_score_form_equals_explicit_g_g_transpose():
    """The paper's experiments: F ~ g g^T, g the mean over the M states of the score at an
    action drawn from pi; q = v^T g g^T v, with g built explicitly by autograd."""
    theta = _theta(1)
    v = _theta(2, scale=0.1)
    obs = torch.randn(6, TINY.obs_dim, generator=torch.Generator().manual_seed(3), dtype=D64)
    noise = torch.randn(6, TINY.act_dim, generator=torch.Generator().manual_seed(4), dtype=D64)
    with torch.no_grad():
        actions, _ = policy_sample(theta, obs, noise, TINY)
    t = theta.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(policy_log_prob(t, obs, actions, TINY).mean(), t)
    explicit = v @ torch.outer(g, g) @ v
    fast = batch_score_quadratic_form(TINY, theta.view(1, -1), v.view(1, -1), obs.view(1, 6, -1), noise.view(1, 6, -1))
    torch.testing.assert_close(fast[0], explicit, rtol=1e-8, atol=0)
    # on average over the action draws, one state's (g . v)^2 is the exact form at that state
    draws = torch.randn(20000, 1, TINY.act_dim, generator=torch.Generator().manual_seed(5), dtype=D64)
    one = obs[:1].expand(20000, 1, -1)
    mc = batch_score_quadratic_form(TINY, theta.expand(20000, -1), v.expand(20000, -1), one, draws).mean()
    exact = fisher_quadratic_form(TINY, theta.view(1, -1), v.view(1, -1), obs[None, :1])[0]
    torch.testing.assert_close(mc, exact, rtol=0.05, atol=0)


# ---------------------------------------------------------------- eqs. 13, 15, Theorem 2
def test_mixing_bound_equals_the_formula():
    a, eps, q, gamma = 0.2, 0.5, 0.1, 0.99
    c = 2 * eps * gamma / (1 - gamma) ** 2  # 9900
    assert float(penalty_coefficient(torch.tensor(eps, dtype=D64), gamma)) == pytest.approx(9900.0)
    bound = mixing_bound(torch.tensor([a], dtype=D64), torch.tensor([eps], dtype=D64), torch.tensor([q], dtype=D64), gamma)
    assert float(bound[0]) == pytest.approx(math.sqrt(2 * a / (c * q)))
    assert float(bound[0]) == pytest.approx(0.0201007563, rel=1e-8)
    # no penalty (q = 0: theta~ = theta) -> unbounded
    inf = mixing_bound(torch.tensor([a], dtype=D64), torch.tensor([eps], dtype=D64), torch.tensor([0.0], dtype=D64), gamma)
    assert math.isinf(float(inf[0]))


# ---------------------------------------------------------------- eq. 19: the MERL advantage
def _constant_policy(spec: PolicySpec, mean_action: list[float], log_std: float) -> torch.Tensor:
    """A policy whose output ignores the state: zero weights, biases giving tanh-mean and std."""
    theta = torch.zeros(spec.dim, dtype=D64)
    scale = spec.action.scale(D64)
    center = spec.action.center(D64)
    y = (torch.tensor(mean_action, dtype=D64) - center) / scale
    layout = {s.name: s for s in spec.layout()}
    theta[layout["mean.bias"].start : layout["mean.bias"].stop] = torch.atanh(y)
    # log_std = min + (max - min) (tanh(raw) + 1) / 2  ->  raw
    frac = (log_std - spec.log_std_min) / (spec.log_std_max - spec.log_std_min)
    theta[layout["log_std.bias"].start : layout["log_std.bias"].stop] = math.atanh(2 * frac - 1)
    return theta


def _quadratic_critic(good: list[float]):
    """Q(s, a) = -|a - good|^2 for every state (best action: good), as a batched critic."""
    target = torch.tensor(good, dtype=D64)
    return lambda obs, actions: -((actions - target) ** 2).sum(-1)


def _advantage_task(good: list[float], bad: list[float], m: int = 400, k: int = 8):
    """Replay data from a broad behaviour policy (states, pre-tanh actions, log mu), the
    quadratic critic, a good and a bad constant policy and noise for the expectations."""
    g = torch.Generator().manual_seed(7)
    behaviour = _constant_policy(TINY, [0.0, 1.0], 0.5)
    obs = torch.randn(m, TINY.obs_dim, generator=g, dtype=D64)
    mean, log_std = policy_distribution(behaviour, obs, TINY)
    u = mean + log_std.exp() * torch.randn(m, 2, generator=g, dtype=D64)
    log_mu = squashed_log_prob_of_pre_tanh(mean, log_std, u, TINY.action.log_scale_sum)
    critic = _quadratic_critic(good)
    actions = TINY.action.center(D64) + TINY.action.scale(D64) * torch.tanh(u)
    q = critic(obs, actions)
    pi_good = _constant_policy(TINY, good, -1.0)
    pi_bad = _constant_policy(TINY, bad, -1.0)
    noise = torch.randn(1, k, m, 2, generator=g, dtype=D64)
    return obs, u, log_mu, q, pi_good, pi_bad, noise, critic


def test_better_referential_policy_has_positive_advantage_worse_nonpositive():
    obs, u, log_mu, q, pi_good, pi_bad, noise, critic = _advantage_task([1.0, 2.0], [-1.5, -0.5])
    alpha = torch.tensor([0.01], dtype=D64)
    args = (obs[None], u[None], log_mu[None], q[None], alpha, noise, critic)
    better, eps_b = merl_advantage(TINY, pi_bad[None], pi_good[None], *args)
    worse, eps_w = merl_advantage(TINY, pi_good[None], pi_bad[None], *args)
    assert float(better) > 0 >= float(worse)
    assert float(eps_b) > 0 and float(eps_w) > 0
    same, eps_same = merl_advantage(TINY, pi_good[None], pi_good[None], *args)
    assert float(same) == 0.0 and float(eps_same) == 0.0


def test_merl_advantage_equals_a_brute_force_loop():
    obs, u, log_mu, q, pi_a, pi_b, noise, critic = _advantage_task([0.5, 1.5], [-0.5, 0.0], m=7)
    theta, ref = pi_a + 0.05 * _theta(4), pi_b + 0.05 * _theta(5)
    alpha, clip = 0.3, 2.0
    adv, eps = merl_advantage(TINY, theta[None], ref[None], obs[None], u[None], log_mu[None], q[None],
                              torch.tensor([alpha], dtype=D64), noise, critic, ratio_clip=clip)
    terms, per_state = [], []
    for t in range(7):
        s = obs[t : t + 1]
        w, ent, q_exp = [], [], []
        for p in (theta, ref):
            mean, log_std = policy_distribution(p, s, TINY)
            logp = float(squashed_log_prob_of_pre_tanh(mean, log_std, u[t : t + 1], TINY.action.log_scale_sum)[0])
            w.append(min(math.exp(logp - float(log_mu[t])), clip))
            samples = [policy_sample(p, s, noise[0, k, t : t + 1], TINY) for k in range(noise.shape[1])]
            ent.append(-sum(float(lp[0]) for _, lp in samples) / len(samples))
            q_exp.append(sum(float(critic(s, a)[0]) for a, _ in samples) / len(samples))
        terms.append((w[1] - w[0]) * float(q[t]) + alpha * (ent[1] - ent[0]))
        per_state.append(q_exp[1] - q_exp[0] + alpha * (ent[1] - ent[0]))  # eq. 13, inside the max
    assert float(adv[0]) == pytest.approx(sum(terms) / 7, rel=1e-9)
    assert float(eps[0]) == pytest.approx(max(abs(x) for x in per_state), rel=1e-9)


def _gauss_hermite_expectation(policy: torch.Tensor, f, nodes: int = 40) -> float:
    """E_{a~pi}[f(a)] for a state-independent policy of TINY (2-D action), by a tensor-product
    Gauss-Hermite rule in the Gaussian noise (f(a) smooth: converges quickly)."""
    z1, w1 = np.polynomial.hermite_e.hermegauss(nodes)
    w1 = w1 / w1.sum()
    z = torch.tensor(np.stack(np.meshgrid(z1, z1, indexing="ij"), -1).reshape(-1, 2), dtype=D64)
    w = torch.tensor(np.outer(w1, w1).ravel(), dtype=D64)
    obs = torch.zeros(len(z), TINY.obs_dim, dtype=D64)
    actions, _ = policy_sample(policy, obs, z, TINY)
    return float((w * f(actions)).sum())


def test_eps_is_the_max_over_states_of_an_expectation_over_actions():
    """eq. 13: for state-independent policies every state has the same inner expectation, so
    eps is that value (found by quadrature), whatever M (a maximum of single-sample terms
    would grow with M)."""
    good, bad = [1.0, 2.0], [-1.5, -0.5]
    _, _, _, _, pi_good, pi_bad, _, critic = _advantage_task(good, bad, m=1)
    gap = (_gauss_hermite_expectation(pi_good, lambda a: critic(None, a))
           - _gauss_hermite_expectation(pi_bad, lambda a: critic(None, a)))  # alpha = 0: no entropy part
    eps_by_m = {}
    for m in (20, 200):
        obs, u, log_mu, q, _, _, noise, _ = _advantage_task(good, bad, m=m, k=400)
        zero = torch.tensor([0.0], dtype=D64)
        _, eps = merl_advantage(TINY, pi_bad[None], pi_good[None], obs[None], u[None], log_mu[None], q[None],
                                zero, noise, critic)
        eps_by_m[m] = float(eps[0])
        assert float(eps[0]) == pytest.approx(abs(gap), rel=0.1)
    assert eps_by_m[200] == pytest.approx(eps_by_m[20], rel=0.15)


def test_importance_ratios_are_clipped():
    obs, u, log_mu, q, pi_good, pi_bad, noise, critic = _advantage_task([1.0, 2.0], [-1.5, -0.5], m=5)
    tiny_mu = torch.full_like(log_mu, -200.0)  # behaviour density ~ 0: unclipped ratios ~ e^200
    args = (obs[None], u[None], tiny_mu[None], torch.ones(1, 5, dtype=D64), torch.tensor([0.0], dtype=D64), noise,
            lambda o, a: torch.ones(a.shape[:-1], dtype=D64))
    adv, _ = merl_advantage(TINY, pi_bad[None], pi_good[None], *args, ratio_clip=3.0)
    assert float(adv) == pytest.approx(0.0)  # both ratios clipped at 3: their difference is 0
    assert math.isfinite(float(adv))


def test_stored_pre_tanh_actions_give_ratio_one_for_an_unchanged_policy_even_when_saturated():
    """A policy whose actions saturate tanh in float32: log pi(a|s) recomputed from the stored
    pre-tanh value equals the behaviour log-prob (pi/mu = 1, A+ = 0 exactly), while atanh of
    the stored float action cannot recover it."""
    cfg = small_config(dtype="float32")
    fleet = SACFleet(1, OBS_DIM, -3.0, 3.0, cfg, seeds=[3])
    layout = {s.name: s for s in fleet.policy_layout()}
    theta = fleet.get_policy_vector(0)
    theta[layout["mean.bias"].start] = 12.0  # tanh(12 + noise) rounds to 1 in float32
    fleet.set_policy_vector(0, theta)
    obs = torch.zeros(1, OBS_DIM)
    for _ in range(30):
        a, logp, u = fleet.act(obs)
        fleet.add(obs, a, torch.zeros(1), obs, torch.zeros(1), logp, pre_tanh=u)
    assert bool((fleet.buffer.action[0, :30].abs() == 3.0).all())  # saturated
    batch = fleet.sample_transitions(0, 30, torch.Generator().manual_seed(0))
    flat = fleet.get_policy_vectors([0])
    from learners import policy_log_prob_of_pre_tanh
    exact = policy_log_prob_of_pre_tanh(flat, batch.obs[None], batch.pre_tanh[None], fleet.spec)[0]
    torch.testing.assert_close(exact, batch.log_prob, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(torch.exp(exact - batch.log_prob), torch.ones(30), rtol=0, atol=1e-3)
    clipped = policy_log_prob(flat, batch.obs[None], batch.action[None], fleet.spec)[0]
    assert float((clipped - batch.log_prob).abs().min()) > 1.0  # the old route: ratios far from 1
    inputs = fleet_regulated_inputs(fleet, [0], [torch.Generator().manual_seed(1)], MixConfig(samples=30))
    adv, _ = merl_advantage(fleet.spec, flat, flat.clone(), inputs.obs, inputs.pre_tanh, inputs.behaviour_log_prob,
                            inputs.min_q, inputs.alpha, inputs.noise, inputs.critic)
    assert float(adv[0]) == 0.0


# ---------------------------------------------------------------- rules and the safety net
def _regulated_case(ref_is_better: bool, shift: float = 0.0):
    obs, u, log_mu, q, pi_good, pi_bad, noise, critic = _advantage_task([1.0, 2.0], [-1.5, -0.5], m=50)
    theta, ref = (pi_bad, pi_good) if ref_is_better else (pi_good, pi_bad)
    if shift:  # a referential policy close to theta: small q, bounds above the cap
        ref = theta + shift * (ref - theta)
    inputs = RegulatedInputs(obs[None], u[None], log_mu[None], q[None], torch.tensor([0.01], dtype=D64),
                             noise, 0.99, critic)
    return theta[None], ref[None], inputs


@pytest.mark.parametrize("fisher", ["exact", "batch_score"])
def test_regulated_rule_mixes_only_below_the_bound_and_when_advantage_positive(fisher):
    cfg = MixConfig(rule="regulated", safety=0.9, zeta_max=0.8, fisher=fisher)
    theta, ref, inputs = _regulated_case(ref_is_better=True)
    out = mix(cfg, TINY, theta, ref, regulated=inputs)
    assert bool(out.mixed[0]) and float(out.advantage[0]) > 0
    expected = min(0.9 * float(out.bound[0]), 0.8)
    assert float(out.zeta[0]) == pytest.approx(expected)
    assert bool(out.capped[0]) == (expected == 0.8)
    torch.testing.assert_close(out.theta, theta + out.zeta[0] * (ref - theta))
    # the bound is Theorem 2's formula with this case's A+, eps and q
    adv, eps = merl_advantage(TINY, theta, ref, inputs.obs, inputs.pre_tanh, inputs.behaviour_log_prob,
                              inputs.min_q, inputs.alpha, inputs.noise, inputs.critic)
    if fisher == "exact":
        q = fisher_quadratic_form(TINY, theta, ref - theta, inputs.obs)
    else:
        q = batch_score_quadratic_form(TINY, theta, ref - theta, inputs.obs, inputs.noise[:, 0])
    assert float(out.q[0]) == pytest.approx(float(q[0]))
    c = 2 * float(eps) * 0.99 / 0.01**2
    assert float(out.bound[0]) == pytest.approx(math.sqrt(2 * float(adv) / (c * float(q))))

    theta, ref, inputs = _regulated_case(ref_is_better=False)
    out = mix(cfg, TINY, theta, ref, regulated=inputs)
    assert float(out.advantage[0]) <= 0 and not bool(out.mixed[0]) and float(out.zeta[0]) == 0
    assert torch.equal(out.theta, theta)  # never mixes when A+ <= 0
    assert math.isnan(float(out.q[0])) and math.isnan(float(out.bound[0]))  # F is not evaluated


def test_trust_region_rule_is_sqrt_of_two_delta_over_q_capped():
    theta, ref, inputs = _regulated_case(ref_is_better=True)
    for kl, zeta_max in ((1e-4, 0.8), (10.0, 0.8)):
        cfg = MixConfig(rule="regulated", zeta_rule="trust_region", trust_region_kl=kl, zeta_max=zeta_max,
                        fisher="exact")
        out = mix(cfg, TINY, theta, ref, regulated=inputs)
        q = float(fisher_quadratic_form(TINY, theta, ref - theta, inputs.obs)[0])
        assert float(out.bound[0]) == pytest.approx(math.sqrt(2 * kl / q))
        assert float(out.zeta[0]) == pytest.approx(min(zeta_max, math.sqrt(2 * kl / q)))
        assert bool(out.capped[0]) == (math.sqrt(2 * kl / q) >= zeta_max)
        # the second-order KL of the step stays within delta
        assert 0.5 * float(out.zeta[0]) ** 2 * q <= kl * (1 + 1e-9)
    assert float(trust_region_step(torch.tensor([0.0]), 0.01)[0]) == math.inf
    # still only where A+ > 0
    theta, ref, inputs = _regulated_case(ref_is_better=False)
    out = mix(MixConfig(zeta_rule="trust_region"), TINY, theta, ref, regulated=inputs)
    assert not bool(out.mixed[0]) and torch.equal(out.theta, theta)


@pytest.mark.parametrize("rule", ["average", "fixed", "regulated", "reward_weighted"])
@pytest.mark.parametrize("poison", ["theta_ref", "min_q", "weight"])
def test_nonfinite_inputs_never_reach_the_parameters(rule, poison):
    theta, ref, inputs = _regulated_case(ref_is_better=True)
    ws, wr = torch.tensor([1.0], dtype=D64), torch.tensor([2.0], dtype=D64)
    if poison == "theta_ref":
        ref = ref.clone()
        ref[0, 3] = math.nan
    elif poison == "min_q":
        inputs.min_q[0, 0] = math.inf
    else:
        wr = torch.tensor([math.nan], dtype=D64)
    out = mix(MixConfig(rule=rule), TINY, theta, ref, mixed_before=torch.tensor([0]), weight_self=ws,
              weight_ref=wr, regulated=inputs)
    poisoned = poison == "theta_ref" or (poison == "min_q" and rule == "regulated") or (
        poison == "weight" and rule == "reward_weighted")
    assert bool(out.nonfinite[0]) == poisoned
    assert bool(torch.isfinite(out.theta).all())
    if poisoned:
        assert not bool(out.mixed[0]) and torch.equal(out.theta, theta)


def test_average_rule_is_the_running_mean_of_a_round():
    theta = _theta(0)[None]
    refs = [_theta(k)[None] for k in (1, 2, 3)]
    cfg = MixConfig(rule="average")
    for k, ref in enumerate(refs):
        theta = mix(cfg, TINY, theta, ref, mixed_before=torch.tensor([k])).theta
    torch.testing.assert_close(theta[0], (_theta(0) + _theta(1) + _theta(2) + _theta(3)) / 4)


def test_fixed_and_reward_weighted_rules():
    theta, ref = _theta(0)[None], _theta(1)[None]
    out = mix(MixConfig(rule="fixed", zeta=0.5), TINY, theta, ref)
    torch.testing.assert_close(out.theta, (theta + ref) / 2)
    # R_self = 1, R_ref = 3 -> weights 1/4, 3/4
    out = mix(MixConfig(rule="reward_weighted"), TINY, theta, ref, weight_self=torch.tensor([1.0]),
              weight_ref=torch.tensor([3.0]))
    torch.testing.assert_close(out.theta, 0.25 * theta + 0.75 * ref)
    # no reward anywhere yet -> equal weights
    out = mix(MixConfig(rule="reward_weighted"), TINY, theta, ref, weight_self=torch.tensor([0.0]),
              weight_ref=torch.tensor([0.0]))
    torch.testing.assert_close(out.theta, (theta + ref) / 2)


def test_batched_mix_equals_one_replica_at_a_time():
    cases = [_regulated_case(True), _regulated_case(False), _regulated_case(True)]
    theta = torch.cat([c[0] for c in cases]) + 0.01 * torch.stack([_theta(20 + k) for k in range(3)])
    ref = torch.cat([c[1] for c in cases])
    r = [c[2] for c in cases]
    batched_in = RegulatedInputs(*(torch.cat([getattr(x, f) for x in r]) for f in
                                   ("obs", "pre_tanh", "behaviour_log_prob", "min_q", "alpha", "noise")), 0.99,
                                 r[0].critic)
    cfg = MixConfig(rule="regulated")
    batched = mix(cfg, TINY, theta, ref, regulated=batched_in)
    for k in range(3):
        one = mix(cfg, TINY, theta[k : k + 1], ref[k : k + 1], regulated=r[k])
        torch.testing.assert_close(batched.theta[k], one.theta[0])
        assert bool(batched.mixed[k]) == bool(one.mixed[0])
    assert batched.mixed.tolist() == [True, False, True]


def test_mix_config_validates():
    with pytest.raises(ValueError, match="rule"):
        MixConfig(rule="median")
    with pytest.raises(ValueError, match="zeta_max"):
        MixConfig(zeta_max=1.5)
    with pytest.raises(ValueError, match="samples"):
        MixConfig(samples=0)
    with pytest.raises(ValueError, match="ratio_clip"):
        MixConfig(ratio_clip=math.inf)
    with pytest.raises(ValueError, match="fisher"):
        MixConfig(fisher="diagonal")
    with pytest.raises(ValueError, match="zeta_rule"):
        MixConfig(zeta_rule="kl")
    with pytest.raises(ValueError, match="trust_region_kl"):
        MixConfig(trust_region_kl=0.0)


# ---------------------------------------------------------------- with a real fleet
def test_fleet_regulated_inputs_come_from_the_agents_own_buffers():
    fleet = SACFleet(3, OBS_DIM, [-2.0, -1.0], [2.0, 3.0], small_config(), seeds=[1, 2, 3])
    collect(fleet, None, steps=20, seed=0)
    before = [g.get_state() for g in fleet.generators]
    gens = [torch.Generator().manual_seed(k) for k in (5, 6)]
    inputs = fleet_regulated_inputs(fleet, [2, 0], gens, MixConfig(samples=7, entropy_samples=3))
    assert inputs.obs.shape == (2, 7, OBS_DIM) and inputs.noise.shape == (2, 3, 7, 2)
    assert inputs.pre_tanh.shape == (2, 7, 2)
    assert all(torch.equal(a, b) for a, b in zip(before, [g.get_state() for g in fleet.generators]))
    # every sampled (s, a, log mu) is a stored transition of that agent, Q is its own critic's
    for row, agent in enumerate((2, 0)):
        stored = fleet.buffer.obs[agent, : int(fleet.buffer.size[agent])]
        for s in inputs.obs[row]:
            assert bool((stored == s).all(dim=1).any())
        actions = fleet.to_scaled(torch.tanh(inputs.pre_tanh[row : row + 1]))
        q = fleet.min_q(inputs.obs[row : row + 1], actions, agents=[agent])
        torch.testing.assert_close(inputs.min_q[row], q[0])
        torch.testing.assert_close(inputs.critic(inputs.obs, fleet.to_scaled(torch.tanh(inputs.pre_tanh)))[row], q[0])
    torch.testing.assert_close(inputs.alpha, fleet.alpha[[2, 0]])


def test_recent_reward_sums_is_the_rs_pps_reward_buffer():
    fleet = SACFleet(2, OBS_DIM, [-2.0, -1.0], [2.0, 3.0], small_config(buffer_size=5, batch_size=4), seeds=[1, 2])
    for t in range(7):  # agent 1 only stores every other step; capacity 5 wraps agent 0
        obs = torch.zeros(2, OBS_DIM, dtype=D64)
        fleet.add(obs, torch.zeros(2, 2), torch.tensor([float(t), 10.0 * t]), obs, torch.zeros(2),
                  torch.zeros(2), mask=torch.tensor([True, t % 2 == 0]))
    assert fleet.buffer.recent_reward_sums(3).tolist() == [6 + 5 + 4, 60 + 40 + 20]
    assert fleet.buffer.recent_reward_sums(100).tolist() == [6 + 5 + 4 + 3 + 2, 60 + 40 + 20 + 0]
