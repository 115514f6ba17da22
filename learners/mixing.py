"""Policy mixing for decentralised federated SAC: segments, the MERL advantage, the Fisher form,
the mixing bound, and the four built-in mixing rules (RSM-MASAC, Yu et al., Section V-A;
Algorithm 2), written against the rule contract of :mod:`learners.rules`.

Vocabulary. Agent i has policy parameters theta (a flat vector, ``learners.policy``). A
*referential policy* theta~ is assembled from what neighbours sent: P segments of their flat
vectors (eqs. 16-17) or a neighbour's whole vector. A *rule* decides the mixture metric zeta of

    theta <- theta + zeta (theta~ - theta)                                   (eq. 10)

- ``average``: the running mean of theta and the referential policies of one round: the k-th
  one mixed in a round gets zeta = 1 / (k + 1), so after all of them theta is
  (theta + sum_k theta~_k) / (kappa + 1) (naive decentralised FL, eq. 1 of the literature
  review) when nothing else moved theta in between;
- ``fixed``: a constant zeta (DRL-DE uses 0.5);
- ``regulated``: Theorem 2. Mix only if the MERL advantage A+ (eq. 19) is > 0, with
  zeta = min(safety * sqrt(2 A+ / (C q)), zeta_max), C = 2 eps gamma / (1 - gamma)^2 (eq. 13/15)
  and q = (theta~ - theta)^T F(theta) (theta~ - theta) (eq. 20), F either the batch-score
  approximation the paper's experiments used or the exact Gaussian Fisher; or, beyond the
  paper, a KL trust region zeta = min(sqrt(2 delta / q), zeta_max);
- ``reward_weighted``: RS-PPS (PPS-QMIX, Section 4.2): a running mean weighted by each
  policy's reward buffer R (sum of its recent rewards): the referential policy of weight R~ gets
  zeta = R~ / (W + R~), W = the agent's own R plus those already mixed in this round.

Whatever the rule, a replica whose theta~, A+, q or zeta is not finite is never mixed (counted
in ``MixResult.nonfinite``; :func:`learners.rules.apply_rule`). Only parameters in the *shared* mask are exchanged and mixed
(PP-PPS keeps a personalised part).

Everything is batched: B replicas (each of a different agent) go through one call.
This module imports nothing of SimPy, SUMO or ``cosim``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch
from torch import Tensor

from .nets import LayerSlice
from .policy import PolicySpec, policy_distribution, policy_log_prob_of_pre_tanh, policy_sample
from .rules import Critic, MixContext, MixingRule, MixResult, ReplayInputs, Zeta, apply_rule

__all__ = [
    "AverageRule", "FixedRule", "RegulatedRule", "RewardWeightedRule", "BUILTIN_RULES", "MIX_RULES",
    "MixConfig", "MixResult", "RegulatedInputs", "Critic", "mix", "fleet_regulated_inputs",
    "segment_bounds", "split_segments", "reconstruct", "shared_mask", "merl_advantage", "penalty_coefficient",
    "fisher_quadratic_form", "batch_score_quadratic_form", "mixing_bound", "trust_region_step",
]

MixRuleName = Literal["average", "fixed", "regulated", "reward_weighted"]


# ============================================================================ segments (16, 17)
def segment_bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """Uniform partition of a vector of ``length`` into ``parts`` non-overlapping segments
    (eq. 16): the first ``length % parts`` segments are one element longer (as
    ``numpy.array_split``). Returns ``[(start, stop), ...]``."""
    if not isinstance(parts, int) or parts < 1:
        raise ValueError(f"parts must be an integer >= 1, got {parts!r}")
    if length < parts:
        raise ValueError(f"cannot cut {length} parameters into {parts} non-empty segments")
    base, extra = divmod(length, parts)
    bounds, start = [], 0
    for p in range(parts):
        stop = start + base + (1 if p < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def split_segments(vec: Tensor, parts: int) -> list[Tensor]:
    """The ``parts`` segments of a flat vector (eq. 16), as views."""
    return [vec[..., a:b] for a, b in segment_bounds(vec.shape[-1], parts)]


def reconstruct(segments: Sequence[Tensor]) -> Tensor:
    """The referential vector from its segments in order, each from any agent (eq. 17)."""
    return torch.cat(list(segments), dim=-1)


def shared_mask(layout: Sequence[LayerSlice], shared: str | Sequence[str]) -> Tensor:
    """Boolean mask over the flat policy vector of the parameters that are exchanged and mixed.

    ``shared``: ``"all"``; ``"except_first"`` (every tensor but the first hidden layer's weight
    and bias: PP-PPS keeps the input representation personal); or a list of layer names such as
    ``["fc2", "mean", "log_std"]`` (a name matches ``<name>.weight`` and ``<name>.bias``).
    """
    d = layout[-1].stop
    mask = torch.zeros(d, dtype=torch.bool)
    layers = [s.name.rsplit(".", 1)[0] for s in layout]
    if shared == "all":
        names = set(layers)
    elif shared == "except_first":
        names = set(layers) - {layers[0]}
    else:
        names = set(shared)
        unknown = sorted(names - set(layers))
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; the policy has {sorted(set(layers), key=layers.index)}")
    for s, layer in zip(layout, layers):
        if layer in names:
            mask[s.start : s.stop] = True
    if not bool(mask.any()):
        raise ValueError("no parameter is shared")
    return mask


# ============================================================================ eq. 19, eq. 13

def merl_advantage(
    spec: PolicySpec,
    theta: Tensor,
    theta_ref: Tensor,
    obs: Tensor,
    pre_tanh: Tensor,
    behaviour_log_prob: Tensor,
    min_q: Tensor,
    alpha: Tensor,
    noise: Tensor,
    critic: Critic,
    ratio_clip: float = 10.0,
) -> tuple[Tensor, Tensor]:
    """MERL advantage A+ of theta~ over theta (eq. 19) and eps of eq. (13), for B replicas.

    Args:
        theta, theta_ref: ``[B, d]`` current and referential policies.
        obs, pre_tanh, behaviour_log_prob: ``[B, M, obs_dim]``, ``[B, M, A]``, ``[B, M]``: M
            transitions of the agent's own replay buffer: states, the pre-squash values u_t of
            the stored actions (a_t = center + scale * tanh(u_t)) and log mu(a_t|s_t) of the
            policy that collected them.
        min_q: ``[B, M]`` min(Q1, Q2)(s_t, a_t) of the agent's critics.
        alpha: ``[B]`` temperatures.
        noise: ``[B, K, M, A]`` standard normal draws for the per-state expectations.
        critic: the agent's min(Q1, Q2) at other actions (for eps, below).
        ratio_clip: importance ratios pi/mu are truncated at this value (as Retrace's and
            IMPALA's truncated weights) before the difference is taken: replay actions that
            the current policy finds far likelier than their behaviour policy did would
            otherwise dominate the mean with weights of 1e3 and more. Both ratios are computed
            in log space from u_t, exp(min(log pi - log mu, log c)); the tanh Jacobian cancels
            there because a_t is the same under pi, pi~ and mu.

    A+ is eq. (19): the mean over the M replay states of
    ``(w~_t - w_t) Q_t + alpha (H~(s_t) - H(s_t))``, w = pi(a_t|s_t) / mu(a_t|s_t).

    eps is eq. (13), max_s |E_{a~pi~}[A_pi(s, a)] + alpha H(pi~(.|s))|. With the soft advantage
    A_pi(s, a) = Q(s, a) - E_{a'~pi}[Q(s, a')] - alpha H(pi(.|s)) the inner expectation is
    ``E_{pi~}[Q(s, .)] - E_pi[Q(s, .)] + alpha (H~(s) - H(s))``: it is estimated per state with
    K reparameterised actions of each policy and the critic, then the maximum over the M
    states is taken. (A maximum of single-sample terms would grow with M and with noise.)

    Every expectation over actions uses the *same* noise for pi and pi~ (common random
    numbers keep the differences low-variance; the action-scaling constant cancels).
    The entropy H of a tanh-Gaussian has no closed form: it is -mean_k log pi(a_k|s).

    Returns ``(A+[B], eps[B])``.
    """
    b, m = obs.shape[0], obs.shape[1]
    both = torch.cat([theta, theta_ref], dim=0)  # one batched pass for pi and pi~
    obs2 = torch.cat([obs, obs], dim=0)
    logp = policy_log_prob_of_pre_tanh(both, obs2, torch.cat([pre_tanh, pre_tanh], dim=0), spec)  # [2B, M]
    log_c = math.log(ratio_clip)
    ratios = torch.exp(torch.clamp(logp - torch.cat([behaviour_log_prob] * 2, 0).to(logp.dtype), max=log_c))
    ratio_pi, ratio_ref = ratios[:b], ratios[b:]

    k = noise.shape[1]
    obs_k = obs.unsqueeze(1).expand(b, k, m, obs.shape[-1]).reshape(b, k * m, -1)
    noise_k = noise.reshape(b, k * m, -1)
    actions_k, logp_k = policy_sample(both, torch.cat([obs_k, obs_k], 0), torch.cat([noise_k, noise_k], 0), spec)
    entropy = -logp_k.view(2 * b, k, m).mean(dim=1)  # [2B, M]
    alpha_b = alpha.to(logp.dtype).view(b, 1)
    d_entropy = entropy[b:] - entropy[:b]
    term = (ratio_ref - ratio_pi) * min_q.to(logp.dtype) + alpha_b * d_entropy
    q_k = critic(torch.cat([obs_k, obs_k], dim=1), torch.cat([actions_k[:b], actions_k[b:]], dim=1)).to(logp.dtype)
    q_pi = q_k[:, : k * m].reshape(b, k, m).mean(dim=1)
    q_ref = q_k[:, k * m :].reshape(b, k, m).mean(dim=1)
    per_state = q_ref - q_pi + alpha_b * d_entropy
    return term.mean(dim=1), per_state.abs().amax(dim=1)


def penalty_coefficient(eps: Tensor, gamma: float) -> Tensor:
    """C = 2 eps gamma / (1 - gamma)^2 (eq. 15)."""
    return 2.0 * eps * gamma / (1.0 - gamma) ** 2


# ============================================================================ eq. 20
FisherName = Literal["batch_score", "exact"]
FISHER_FORMS: tuple[str, ...] = ("batch_score", "exact")


def _head_jvp(spec: PolicySpec, theta: Tensor, v: Tensor, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """log sigma(s) and the directional derivatives J_mu v, J_logsigma v of the policy head at
    every state, by one forward-mode ``torch.func.jvp`` (O(M d) time, O(d) memory)."""

    def head(flat: Tensor) -> tuple[Tensor, Tensor]:
        return policy_distribution(flat, obs, spec)

    (_, log_std), (d_mean, d_log_std) = torch.func.jvp(head, (theta,), (v.to(theta.dtype),))
    return log_std, d_mean, d_log_std


def fisher_quadratic_form(spec: PolicySpec, theta: Tensor, v: Tensor, obs: Tensor) -> Tensor:
    """q = v^T F(theta) v with the exact Fisher of eq. (20), without forming the d x d matrix.

    For a diagonal Gaussian head with outputs mu(s), log sigma(s) the Fisher of the action
    distribution is diag(1/sigma^2) in mu and 2 in log sigma, so with the Jacobian-vector
    products J_mu v and J_logsigma v:

        q = mean_s sum_k [ (J_mu v)_k^2 / sigma_k^2 + 2 (J_logsigma v)_k^2 ].

    The tanh squashing is a bijection of the action and leaves the Fisher unchanged.
    ``theta, v: [B, d]``, ``obs: [B, M, obs_dim]`` -> ``[B]``.
    """
    log_std, d_mean, d_log_std = _head_jvp(spec, theta, v, obs)
    per_state = (d_mean.square() * torch.exp(-2.0 * log_std) + 2.0 * d_log_std.square()).sum(-1)
    return per_state.mean(dim=-1)


def batch_score_quadratic_form(spec: PolicySpec, theta: Tensor, v: Tensor, obs: Tensor, noise: Tensor) -> Tensor:
    """q = (g . v)^2 with F ~ g g^T, g the batch-mean score: the approximation of F(theta) that
    RSM-MASAC's experiments used ("a batch average gradient", Section VI, on Fig. 6).

    g = mean_t d log pi_theta(a_t|s_t) / d theta over the M states, a_t ~ pi_theta(.|s_t)
    (eq. 20's sampling) drawn as u_t = mu + sigma * noise_t and held fixed. Per state,
    score . v = sum_k [ noise_k / sigma_k (J_mu v)_k + (noise_k^2 - 1) (J_logsigma v)_k ], so one
    jvp gives g . v without forming g. Since the score has mean zero, q is on average about M
    times smaller than the exact form, with a heavy tail towards 0 (hence large bounds).
    ``theta, v: [B, d]``, ``obs: [B, M, obs_dim]``, ``noise: [B, M, A]`` -> ``[B]``.
    """
    log_std, d_mean, d_log_std = _head_jvp(spec, theta, v, obs)
    z = noise.to(log_std.dtype)
    score_v = (z * torch.exp(-log_std) * d_mean + (z.square() - 1.0) * d_log_std).sum(-1)  # [B, M]
    return score_v.mean(dim=-1).square()


def mixing_bound(advantage: Tensor, eps: Tensor, q: Tensor, gamma: float) -> Tensor:
    """Upper bound of zeta in Theorem 2: sqrt(2 A+ / (C q)); +inf where C q = 0 (no penalty)."""
    cq = penalty_coefficient(eps, gamma) * q
    bound = torch.sqrt(2.0 * advantage / cq)
    return torch.where(cq > 0, bound, torch.full_like(bound, math.inf))


def trust_region_step(q: Tensor, max_kl: float) -> Tensor:
    """The largest zeta whose second-order KL estimate 1/2 zeta^2 q stays within ``max_kl``
    (TRPO's practical form of the same bound): sqrt(2 delta / q); +inf where q = 0."""
    bound = torch.sqrt(2.0 * max_kl / q)
    return torch.where(q > 0, bound, torch.full_like(bound, math.inf))


# ============================================================================ rules
ZetaRuleName = Literal["theorem2", "trust_region"]
ZETA_RULES: tuple[str, ...] = ("theorem2", "trust_region")

RegulatedInputs = ReplayInputs
"""The ``regulated`` rule's inputs (the ``replay`` context of :mod:`learners.rules`)."""


class AverageRule(MixingRule):
    """``average``: the running mean of theta and the referential policies of one round; the
    k-th one mixed in a round gets zeta = 1 / (k + 1) (naive decentralised FL, eq. 1 of the
    literature review)."""

    name = "average"

    def zeta(self, theta: Tensor, theta_ref: Tensor, ctx: MixContext) -> Tensor:
        if ctx.mixed_before is None:
            raise ValueError("the average rule needs mixed_before")
        return 1.0 / (ctx.mixed_before.to(theta.dtype) + 2.0)


class FixedRule(MixingRule):
    """``fixed``: a constant zeta (DRL-DE: 0.5)."""

    name = "fixed"
    comm_keys = {"zeta": "zeta"}

    def __init__(self, zeta: float = 0.5):
        if isinstance(zeta, bool) or not (isinstance(zeta, (int, float)) and 0.0 < zeta <= 1.0):
            raise ValueError(f"zeta must be in (0, 1], got {zeta!r}")
        self.value = float(zeta)

    def zeta(self, theta: Tensor, theta_ref: Tensor, ctx: MixContext) -> Tensor:
        return torch.full((theta.shape[0],), self.value, dtype=theta.dtype)


class RewardWeightedRule(MixingRule):
    """``reward_weighted``: RS-PPS (PPS-QMIX, Section 4.2): a running mean weighted by each
    policy's reward buffer R (the sum of its last ``reward_window`` stored rewards): the
    referential policy of weight R~ gets zeta = R~ / (W + R~), W = the agent's own R plus those
    already mixed in this round; 1/2 while no weight is positive. A non-finite weight skips the
    replica."""

    name = "reward_weighted"
    needs = frozenset({"rewards"})
    comm_keys = {"reward_window": "reward_window"}

    def __init__(self, reward_window: int = 256):
        if isinstance(reward_window, bool) or not isinstance(reward_window, int) or reward_window < 1:
            raise ValueError(f"reward_window must be an integer >= 1, got {reward_window!r}")
        self.reward_window = reward_window

    def zeta(self, theta: Tensor, theta_ref: Tensor, ctx: MixContext) -> Zeta:
        if ctx.weight_self is None or ctx.weight_ref is None:
            raise ValueError("the reward_weighted rule needs weight_self and weight_ref")
        dtype = theta.dtype
        ws, wr = ctx.weight_self.to(dtype), ctx.weight_ref.to(dtype)
        total = ws + wr
        zeta = torch.where(total > 0, wr / total, torch.full_like(total, 0.5))
        skipped = ~torch.isfinite(total)
        return Zeta(torch.where(skipped, torch.zeros_like(zeta), zeta), skipped=skipped)


class RegulatedRule(MixingRule):
    """``regulated``: Theorem 2 (Algorithm 2). Mix only where the MERL advantage A+ (eq. 19) is
    > 0, with zeta = min(safety * sqrt(2 A+ / (C q)), zeta_max), C = 2 eps gamma / (1 - gamma)^2
    (eqs. 13, 15) and q = (theta~ - theta)^T F(theta) (theta~ - theta) (eq. 20); or, with
    ``zeta_rule: trust_region``, zeta = min(sqrt(2 delta / q), zeta_max) (a KL trust region as in
    TRPO, beyond the paper).

    - ``fisher``: ``batch_score`` (F ~ g g^T, the paper's experiments) or ``exact`` (the
      Gaussian Fisher, Theorem 2 as written); see the two quadratic forms.
    - ``safety``, ``zeta_max``: "marginally below the upper bound" (Algorithm 2 line 10; the
      authors capped at 0.8).
    - ``samples``: M, transitions of the agent's own buffer per estimate of A+ (Table IV: 50).
    - ``ratio_clip``: truncation of the importance ratios of eq. (19).
    - ``entropy_samples``: K reparameterised actions per state for the expectations over
      actions (entropies, eq. 13's eps); the first of them is the action of the batch score.

    A replica whose A+, q or bound is not finite (where it is needed) is skipped.
    """

    name = "regulated"
    needs = frozenset({"replay"})
    comm_keys = {"safety": "zeta_safety", "zeta_max": "zeta_max", "samples": "samples", "ratio_clip": "ratio_clip",
                 "entropy_samples": "entropy_samples", "fisher": "fisher", "zeta_rule": "zeta_rule",
                 "trust_region_kl": "trust_region_kl"}

    def __init__(self, safety: float = 0.9, zeta_max: float = 0.8, samples: int = 50, ratio_clip: float = 10.0,
                 entropy_samples: int = 4, fisher: FisherName = "batch_score", zeta_rule: ZetaRuleName = "theorem2",
                 trust_region_kl: float = 0.01):
        _check_regulated(safety=safety, zeta_max=zeta_max, samples=samples, ratio_clip=ratio_clip,
                         entropy_samples=entropy_samples, fisher=fisher, zeta_rule=zeta_rule,
                         trust_region_kl=trust_region_kl)
        self.safety, self.zeta_max, self.samples, self.ratio_clip = safety, zeta_max, samples, ratio_clip
        self.entropy_samples, self.fisher, self.zeta_rule, self.trust_region_kl = (entropy_samples, fisher,
                                                                                  zeta_rule, trust_region_kl)

    def zeta(self, theta: Tensor, theta_ref: Tensor, ctx: MixContext) -> Zeta:
        if ctx.replay is None:
            raise ValueError("the regulated rule needs RegulatedInputs")
        r, spec = ctx.replay, ctx.spec
        b, dtype = theta.shape[0], theta.dtype
        nan = torch.full((b,), math.nan, dtype=dtype)
        bound, q_all = nan.clone(), nan.clone()
        v = theta_ref - theta
        advantage, eps = merl_advantage(spec, theta, theta_ref, r.obs, r.pre_tanh, r.behaviour_log_prob,
                                        r.min_q, r.alpha, r.noise, r.critic, self.ratio_clip)
        zeta = torch.zeros(b, dtype=dtype)
        positive = (advantage > 0) & torch.isfinite(advantage)
        rows = positive.nonzero().squeeze(1)
        if rows.numel():  # Algorithm 2, lines 7-10: the Fisher form only where A+ > 0
            if self.fisher == "exact":
                q = fisher_quadratic_form(spec, theta[rows], v[rows], r.obs[rows])
            else:
                q = batch_score_quadratic_form(spec, theta[rows], v[rows], r.obs[rows], r.noise[rows, 0])
            if self.zeta_rule == "theorem2":
                bnd = mixing_bound(advantage[rows], eps[rows], q, r.gamma)
                z = self.safety * bnd
            else:
                bnd = trust_region_step(q, self.trust_region_kl)
                z = bnd
            z = torch.clamp(z, max=self.zeta_max)
            q_all[rows] = q
            bound[rows] = bnd
            zeta[rows] = torch.where(torch.isfinite(q) & ~torch.isnan(bnd), z, torch.full_like(z, math.nan))
        skipped = ~torch.isfinite(advantage) | torch.isnan(zeta)
        zeta = torch.where(skipped, torch.zeros_like(zeta), zeta)
        return Zeta(zeta, skipped=skipped, advantage=advantage, q=q_all, bound=bound, capped=zeta >= self.zeta_max)


BUILTIN_RULES: dict[str, type[MixingRule]] = {
    cls.name: cls for cls in (AverageRule, FixedRule, RegulatedRule, RewardWeightedRule)
}
"""The built-in rules by name (``cosim.plugins.rule_registry`` registers the same classes)."""

MIX_RULES: tuple[str, ...] = tuple(BUILTIN_RULES)


def _check_regulated(**values) -> None:
    if values["fisher"] not in FISHER_FORMS:
        raise ValueError(f"fisher must be one of {FISHER_FORMS}, got {values['fisher']!r}")
    if values["zeta_rule"] not in ZETA_RULES:
        raise ValueError(f"zeta_rule must be one of {ZETA_RULES}, got {values['zeta_rule']!r}")
    for name in ("safety", "zeta_max"):
        value = values[name]
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0.0 < value <= 1.0):
            raise ValueError(f"{name} must be in (0.0, 1.0], got {value!r}")
    for name in ("samples", "entropy_samples"):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    clip = values["ratio_clip"]
    if isinstance(clip, bool) or not (isinstance(clip, (int, float)) and math.isfinite(clip) and clip >= 1):
        raise ValueError(f"ratio_clip must be a finite number >= 1, got {clip!r}")
    kl = values["trust_region_kl"]
    if isinstance(kl, bool) or not (isinstance(kl, (int, float)) and math.isfinite(kl) and kl > 0):
        raise ValueError(f"trust_region_kl must be a finite number > 0, got {kl!r}")


@dataclass(frozen=True)
class MixConfig:
    """One of the built-in rules by name with all their options, for :func:`mix` (tests,
    benchmarks and scripts; a run names its rule through ``cosim.plugins.rule_registry``).

    - ``rule``: one of ``MIX_RULES``; ``zeta``: the constant of ``fixed``; the others are
      :class:`RegulatedRule`'s parameters (``safety`` is its ``safety``).
    """

    rule: MixRuleName = "regulated"
    zeta: float = 0.5
    safety: float = 0.9
    zeta_max: float = 0.8
    samples: int = 50
    ratio_clip: float = 10.0
    entropy_samples: int = 4
    fisher: FisherName = "batch_score"
    zeta_rule: ZetaRuleName = "theorem2"
    trust_region_kl: float = 0.01

    def __post_init__(self) -> None:
        if self.rule not in MIX_RULES:
            raise ValueError(f"rule must be one of {MIX_RULES}, got {self.rule!r}")
        if isinstance(self.zeta, bool) or not (isinstance(self.zeta, (int, float)) and 0.0 < self.zeta <= 1.0):
            raise ValueError(f"zeta must be in (0.0, 1.0], got {self.zeta!r}")
        _check_regulated(safety=self.safety, zeta_max=self.zeta_max, samples=self.samples,
                         ratio_clip=self.ratio_clip, entropy_samples=self.entropy_samples, fisher=self.fisher,
                         zeta_rule=self.zeta_rule, trust_region_kl=self.trust_region_kl)

    def make_rule(self) -> MixingRule:
        """The built-in rule this config names, with its options."""
        cls = BUILTIN_RULES[self.rule]
        options: dict[str, Any] = {"zeta": self.zeta, "safety": self.safety, "zeta_max": self.zeta_max, "samples": self.samples,
                   "ratio_clip": self.ratio_clip, "entropy_samples": self.entropy_samples, "fisher": self.fisher,
                   "zeta_rule": self.zeta_rule, "trust_region_kl": self.trust_region_kl}
        return cls(**{name: options[name] for name in getattr(cls, "comm_keys", {}) if name in options})


def mix(
    config: MixConfig,
    spec: PolicySpec,
    theta: Tensor,
    theta_ref: Tensor,
    *,
    mixed_before: Tensor | None = None,
    weight_self: Tensor | None = None,
    weight_ref: Tensor | None = None,
    regulated: ReplayInputs | None = None,
) -> MixResult:
    """Mix B referential policies ``theta_ref[B, d]`` into ``theta[B, d]`` with the built-in rule
    ``config.rule`` (:func:`learners.rules.apply_rule` with the inputs given here).

    Rule inputs: ``average`` needs ``mixed_before[B]``; ``reward_weighted`` needs
    ``weight_self[B]`` and ``weight_ref[B]``; ``regulated`` needs ``regulated``.
    """
    ctx = MixContext(spec, mixed_before=mixed_before, weight_self=weight_self, weight_ref=weight_ref,
                     replay=regulated)
    return apply_rule(config.make_rule(), theta, theta_ref, ctx)


def fleet_regulated_inputs(fleet, agents: Sequence[int], generators: Sequence[torch.Generator],
                           config: MixConfig | MixingRule) -> ReplayInputs:
    """The ``replay`` inputs of a rule (the ``regulated`` rule's, Algorithm 2, line 5) for
    ``agents`` of a ``SACFleet``: ``config.samples`` transitions drawn from each agent's own replay buffer with that agent's
    ``generators[k]`` (a stream of the caller's, so mixing never shifts the agent's training
    randomness), the agent's min(Q1, Q2) there, its alpha, and the entropy noise (same stream)."""
    batches = [fleet.sample_transitions(a, config.samples, g) for a, g in zip(agents, generators)]
    obs = torch.stack([b.obs for b in batches])
    actions = torch.stack([b.action for b in batches])
    pre_tanh = torch.stack([b.pre_tanh for b in batches])
    log_mu = torch.stack([b.log_prob for b in batches])
    noise = torch.stack([
        torch.randn(config.entropy_samples, config.samples, fleet.act_dim, generator=g, dtype=fleet.dtype)
        for g in generators
    ])
    idx = list(agents)

    def critic(states: Tensor, acts: Tensor) -> Tensor:
        with torch.no_grad():
            return fleet.min_q(states, acts, agents=idx)

    return ReplayInputs(obs, pre_tanh, log_mu, critic(obs, actions), fleet.alpha[idx], noise,
                           fleet.config.gamma, critic)
