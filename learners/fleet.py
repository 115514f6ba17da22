"""N Soft Actor-Critic agents stored as stacked tensors and updated in one batched pass.

``SACFleet`` is mathematically N independent copies of ``learners.sac.SAC`` (the readable
reference, which documents the algorithm, eqs. 6-9):

- every layer of every network is one tensor with a leading agent axis, evaluated with one
  batched matmul for all agents (``learners.nets``);
- losses are computed per agent (mean over that agent's minibatch) and *summed* over agents
  before ``autograd.grad``, so each agent's gradient is exactly its own loss's gradient;
- the update's three forward passes (soft Q target, critic loss, policy loss) are pure
  functions of stacked tensors (``learners.losses``), run eagerly or, with
  ``SACConfig.compile``, through ``torch.compile``;
- optional gradient-norm clipping is per agent (``SACConfig.grad_clip_norm``);
- Adam is elementwise with per-agent step counts (``learners.adam.BatchedAdam``);
- each agent has its own replay buffer (``learners.replay``) and its own
  ``torch.Generator``, which alone draws its minibatch indices, its target-action noise, its
  reparameterisation noise and its acting noise (always outside any vmap);
- ``update(mask)`` leaves agents outside the mask bit-for-bit untouched: parameters, targets,
  Adam moments and step counts, alpha, counters and generator state.

Random draws of agent i in one ``update`` (identical in ``learners.sac.SAC.update``):
``randint(size_i, (B,))`` minibatch indices, then ``randn(B, A)`` noise for a' ~ pi(.|s') in
the critic target, then -- only when the policy is updated in this call -- ``randn(B, A)``
reparameterisation noise for the policy/alpha losses. ``act`` draws ``randn(1, A)`` per
acting agent (nothing when deterministic).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .adam import BatchedAdam, clip_per_agent_
from .config import SACConfig
from .losses import update_passes
from .nets import actor_forward, actor_shapes, critic_shapes, storage_shape, twin_critic_forward
from .policy import PolicySpec, flatten_params
from .replay import FleetReplayBuffer, ReplayBatch, as_mask
from .squash import (
    ActionScale,
    pre_tanh_of_normalized,
    squashed_log_prob_of_normalized,
    squashed_sample_with_pre_tanh,
)

CHECKPOINT_FORMAT = "learners.SACFleet/2"  # 2: the replay buffer stores pre-tanh actions
WEIGHT_FORMATS = ("learners.SACFleet/1", CHECKPOINT_FORMAT)  # what load_weights accepts


def cpu_has_fast_bfloat16() -> bool:
    """Whether oneDNN runs bfloat16 products in hardware here (AVX-512 and up: at float32 speed
    with AVX512F alone, several times faster with AVX512-BF16 or AMX). Without it they run in
    software, far slower than float32."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(probe()) if probe is not None else False


def agent_seeds(seed: int, n_agents: int) -> list[int]:
    """Independent 63-bit seeds for n agents derived from one integer (numpy SeedSequence)."""
    children = np.random.SeedSequence(int(seed)).spawn(n_agents)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


def auto_chunk_size(cfg: SACConfig, target_bytes: int = 8 << 20) -> int:
    """Agents per batched pass such that the largest activation, [2 * chunk, batch, width]
    for the twin critics, stays under ``target_bytes`` (8 MiB): beyond that, elementwise work
    spills out of cache and big temporaries cost page faults, so larger passes get slower
    per agent on CPU (measured with benchmarks/learners.py)."""
    width = max(max(cfg.hidden), max(cfg.q_hidden))
    itemsize = 8 if cfg.dtype == "float64" else 4
    per_agent = 2 * cfg.batch_size * width * itemsize
    return max(1, target_bytes // per_agent)


@dataclass
class UpdateStats:
    """Per-agent results of one ``SACFleet.update`` call, each a tensor of N values.

    ``updated``/``policy_updated`` say which agents did a critic / policy+alpha+target
    update in this call; the float fields are NaN where an agent did not do that part.

    - ``critic_loss``: J_Q(w1) + J_Q(w2) of eq. (6) (each 1/2 mean squared TD error).
    - ``q_mean``: mean over the minibatch and both critics of Q(s, a) before the update.
    - ``policy_loss``: J_pi of eq. (7); ``entropy``: -mean log pi(a|s), a ~ pi (same samples).
    - ``alpha``: temperature after the update; ``alpha_loss``: J(alpha) of eq. (9) in its
      log-alpha form, -(log alpha * (log pi + H-bar)).mean() (NaN if alpha is not learned).
    """

    updated: Tensor
    policy_updated: Tensor
    critic_loss: Tensor
    q_mean: Tensor
    policy_loss: Tensor
    entropy: Tensor
    alpha: Tensor
    alpha_loss: Tensor

    @staticmethod
    def empty(n: int, dtype: torch.dtype) -> "UpdateStats":
        nan = lambda: torch.full((n,), float("nan"), dtype=dtype)  # noqa: E731
        no = lambda: torch.zeros(n, dtype=torch.bool)  # noqa: E731
        return UpdateStats(no(), no(), nan(), nan(), nan(), nan(), nan(), nan())

    def as_dict(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class SACFleet:
    """N independent SAC learners sharing an architecture, updated in batched passes.

    Args:
        n_agents: number of agents N.
        obs_dim: observation size.
        action_low, action_high: action bounds (floats for 1-D actions, or sequences).
        config: hyper-parameters (``SACConfig()`` = paper Table IV).
        seeds: one int (per-agent seeds derived with ``agent_seeds``) or N ints. Agent i's
            generator is ``torch.Generator().manual_seed(seeds[i])``; it first draws the
            agent's initial weights, then every random number the agent uses.
        device: torch device of all tensors.
        chunk_size: agents per batched pass in ``update`` (performance only: agents are
            independent; at most the last bits of Adam's second moments can differ, through
            the fused kernel's vector loop). ``None`` picks ``auto_chunk_size(config)``.
            Saved in checkpoints, so a resumed run uses the same grouping.
    """

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        action_low: float | Sequence[float],
        action_high: float | Sequence[float],
        config: SACConfig | None = None,
        seeds: int | Sequence[int] = 0,
        device: torch.device | str = "cpu",
        chunk_size: int | None = None,
    ) -> None:
        if not isinstance(n_agents, int) or n_agents < 1:
            raise ValueError(f"n_agents must be a positive integer, got {n_agents!r}")
        if not isinstance(obs_dim, int) or obs_dim < 1:
            raise ValueError(f"obs_dim must be a positive integer, got {obs_dim!r}")
        cfg = config if config is not None else SACConfig()
        self.config = cfg
        self.n_agents = n_agents
        self.obs_dim = obs_dim
        self.action = ActionScale.from_bounds(action_low, action_high)
        self.act_dim = self.action.dim
        self.device = torch.device(device)
        self.dtype = cfg.torch_dtype
        if cfg.matmul_dtype == "bfloat16" and self.device.type == "cpu" and not cpu_has_fast_bfloat16():
            warnings.warn(
                "SACConfig.matmul_dtype bfloat16: oneDNN has no hardware bfloat16 path on this CPU (it "
                "needs AVX-512), so it emulates bfloat16 products (measured 35x slower than float32 "
                "on AVX2 alone); use float32 here",
                RuntimeWarning,
                stacklevel=2,
            )
        if isinstance(seeds, (int, np.integer)):
            seeds = agent_seeds(int(seeds), n_agents)
        seeds = [int(s) for s in seeds]
        if len(seeds) != n_agents:
            raise ValueError(f"need {n_agents} seeds, got {len(seeds)}")
        self.seeds = seeds
        if chunk_size is None:
            chunk_size = auto_chunk_size(cfg)
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
        self.chunk_size = chunk_size
        self.spec = PolicySpec(
            obs_dim, self.act_dim, tuple(cfg.hidden), cfg.log_std_min, cfg.log_std_max, self.action
        )
        self._layout = self.spec.layout()
        self.target_entropy = cfg.entropy_target(self.act_dim)
        kw = dict(dtype=self.dtype, device=self.device)
        self._scale = self.action.scale(**kw)
        self._center = self.action.center(**kw)
        self._log_scale_sum = self.action.log_scale_sum
        self._passes = update_passes(
            gamma=cfg.gamma,
            log_std_min=cfg.log_std_min,
            log_std_max=cfg.log_std_max,
            log_scale_sum=self._log_scale_sum,
            matmul_dtype=cfg.matmul_dtype,
            compile=cfg.compile,
        )

        # --- parameters: one tensor per layer, leading agent axis (critics: [N, 2, ...]).
        # Weights are stored [in, out] (see learners.nets); the flat policy vector and the
        # layout use nn.Linear's [out, in].
        a_shapes = [storage_shape(s) for _, s in actor_shapes(obs_dim, self.act_dim, cfg.hidden)]
        c_shapes = [storage_shape(s) for _, s in critic_shapes(obs_dim, self.act_dim, cfg.q_hidden)]
        self.actor = [torch.empty(n_agents, *s, **kw) for s in a_shapes]
        self.critic = [torch.empty(n_agents, 2, *s, **kw) for s in c_shapes]
        self.generators = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]
        with torch.no_grad():
            for i, g in enumerate(self.generators):
                # Same order as learners.sac.SAC: policy, then Q1, then Q2; weight then bias.
                _init_linear_rows([p[i] for p in self.actor], g)
                for q in (0, 1):
                    _init_linear_rows([p[i, q] for p in self.critic], g)
            if cfg.shared_init:
                for p in self.actor + self.critic:
                    p[1:] = p[0]
        self.critic_target = [p.clone() for p in self.critic]
        self.log_alpha = torch.full((n_agents,), math.log(cfg.init_alpha), **kw)

        betas, eps = cfg.adam_betas, cfg.adam_eps
        self.actor_opt = BatchedAdam(self.actor, cfg.actor_lr, betas, eps)
        self.critic_opt = BatchedAdam(self.critic, cfg.critic_lr, betas, eps)
        self.alpha_opt = BatchedAdam([self.log_alpha], cfg.alpha_lr, betas, eps)

        self.buffer = FleetReplayBuffer(
            n_agents, obs_dim, self.act_dim, cfg.buffer_size, self.dtype, self.device
        )
        self._critic_updates = torch.zeros(n_agents, dtype=torch.long)
        self._policy_updates = torch.zeros(n_agents, dtype=torch.long)

    # ===================================================================== counters, alpha
    @property
    def critic_updates(self) -> Tensor:
        """Critic updates done by each agent (a copy, LongTensor[N])."""
        return self._critic_updates.clone()

    @property
    def policy_updates(self) -> Tensor:
        """Policy updates k_i done by each agent (Algorithm 1, line 18; LongTensor[N])."""
        return self._policy_updates.clone()

    @property
    def alpha(self) -> Tensor:
        """Current temperatures alpha_i = exp(log alpha_i) (a copy, [N])."""
        return self.log_alpha.exp()

    def ready(self) -> Tensor:
        """Agents whose buffer holds enough transitions to take part in ``update`` (bool[N])."""
        return self.buffer.size >= self.config.warmup_size

    # ===================================================================== acting
    def _obs(self, obs, lead: tuple[int, ...], name: str = "obs") -> Tensor:
        t = torch.as_tensor(obs, dtype=self.dtype, device=self.device)
        if t.shape != (*lead, self.obs_dim):
            raise ValueError(f"{name} must have shape {(*lead, self.obs_dim)}, got {tuple(t.shape)}")
        return t

    def to_normalized(self, actions: Tensor) -> Tensor:
        """Scaled actions in [low, high] -> normalised actions in [-1, 1]."""
        return (actions - self._center) / self._scale

    def to_scaled(self, y: Tensor) -> Tensor:
        """Normalised actions in [-1, 1] -> scaled actions in [low, high]."""
        return self._center + self._scale * y

    @torch.no_grad()
    def act(self, obs, deterministic: bool = False, mask=None) -> tuple[Tensor, Tensor, Tensor]:
        """Actions of all agents for ``obs[N, obs_dim]`` in one batched forward pass.

        Stochastic: a = center + scale * tanh(mu + sigma * delta) (eq. 8), delta drawn from
        each acting agent's own generator. Deterministic: a = center + scale * tanh(mu).
        Returns ``(actions[N, A], log_prob[N], pre_tanh[N, A])``: the scaled actions, log
        pi(a|s) and the pre-squash sample u (store the last two with the transition: the
        behaviour log-prob of eq. 19 and what recomputes log pi(a|s) exactly). Agents outside
        ``mask`` still get a row (zero noise) but their generator does not advance.
        """
        o = self._obs(obs, (self.n_agents,)).unsqueeze(1)
        m = as_mask(mask, self.n_agents)
        mean, log_std = actor_forward(self.actor, o, self.config.log_std_min, self.config.log_std_max)
        noise = torch.zeros_like(mean)
        if not deterministic:
            for i, g in enumerate(self.generators):
                if m is None or bool(m[i]):
                    noise[i] = torch.randn(1, self.act_dim, generator=g, dtype=self.dtype, device=self.device)
        y, log_prob, u = squashed_sample_with_pre_tanh(mean, log_std, noise, self._log_scale_sum)
        return self.to_scaled(y)[:, 0], log_prob[:, 0], u[:, 0]

    # ===================================================================== replay
    def add(self, obs, actions, rewards, next_obs, terminated, log_probs, mask=None, pre_tanh=None) -> None:
        """Store one transition per agent in ``mask`` (all if None); arguments have N rows.

        ``actions`` are the scaled actions returned by ``act``; ``log_probs`` their behaviour
        log-probabilities; ``terminated`` is 1/True only for true terminal states;
        ``pre_tanh`` the pre-squash samples ``act`` returned. Without them they are recovered
        as atanh of the normalised action, which is exact except where tanh saturated.
        """
        if pre_tanh is None:
            y = self.to_normalized(torch.as_tensor(actions, dtype=self.dtype, device=self.device))
            pre_tanh = pre_tanh_of_normalized(y)
        self.buffer.add(obs, actions, rewards, next_obs, terminated, log_probs, pre_tanh, mask)

    def sample_transitions(self, agent: int, count: int, generator: torch.Generator) -> ReplayBatch:
        """``count`` transitions drawn uniformly (with replacement) from agent ``agent``'s
        buffer with the caller's ``generator`` (e.g. the M samples of eq. 19; pass a stream
        of your own so that mixing does not shift the agent's training randomness).
        Returns a ``ReplayBatch`` of ``[count, ...]`` tensors (copies)."""
        idx = self.buffer.sample_indices(int(agent), int(count), generator)
        batch = self.buffer.gather(torch.tensor([int(agent)], device=self.device), idx.view(1, -1))
        return ReplayBatch(*(t[0] for t in batch))

    # ===================================================================== learning
    def update(self, mask=None, force_policy=None) -> UpdateStats:
        """One learning step (Algorithm 1, lines 12-18) for the agents in ``mask``.

        Taking part: agents in ``mask`` (all if None) whose buffer holds at least
        ``config.warmup_size`` transitions. Each does one critic update (eq. 6); those whose
        critic counter (before increment) is a multiple of ``policy_delay`` -- or that are in
        ``force_policy`` (e.g. Algorithm 1's ``t = T`` clause) -- then also update the policy
        (eq. 7), alpha (eq. 9) and the target networks (line 17), and their k_i grows by one.
        Everyone else is left exactly untouched. Returns per-agent ``UpdateStats``.

        Agents are processed in groups of at most ``chunk_size`` (a performance knob; see
        the constructor).
        """
        cfg = self.config
        stats = UpdateStats.empty(self.n_agents, self.dtype)
        active = self.ready()
        m = as_mask(mask, self.n_agents)
        if m is not None:
            active &= m
        agents = active.nonzero().squeeze(1)
        if agents.numel() == 0:
            return stats
        do_pi = self._critic_updates.index_select(0, agents) % cfg.policy_delay == 0
        fp = as_mask(force_policy, self.n_agents)
        if fp is not None:
            do_pi |= fp.index_select(0, agents)
        step = self.chunk_size
        for lo in range(0, agents.numel(), step):
            self._update_group(agents[lo : lo + step], do_pi[lo : lo + step], stats)
        return stats

    def _update_group(self, agents: Tensor, do_pi: Tensor, stats: UpdateStats) -> None:
        cfg = self.config
        n = agents.numel()
        group = _Group(agents, self.n_agents)

        # ---- randomness: each agent's own generator, fixed order (module docstring)
        B, A = cfg.batch_size, self.act_dim
        kw = dict(dtype=self.dtype, device=self.device)
        idx = torch.empty(n, B, dtype=torch.long, device=self.device)
        noise_next = torch.empty(n, B, A, **kw)
        pi_pos = do_pi.nonzero().squeeze(1)
        noise_pi = torch.empty(pi_pos.numel(), B, A, **kw)
        sizes = self.buffer.size.tolist()
        j = 0
        for k, (i, pol) in enumerate(zip(agents.tolist(), do_pi.tolist())):
            g = self.generators[i]
            idx[k] = torch.randint(sizes[i], (B,), generator=g, device=self.device)
            noise_next[k] = torch.randn(B, A, generator=g, **kw)
            if pol:
                noise_pi[j] = torch.randn(B, A, generator=g, **kw)
                j += 1
        batch = self.buffer.gather(agents, idx)
        act_norm = self.to_normalized(batch.action)
        alpha = group.take([self.log_alpha])[0].exp()

        # ---- soft Q target, eq. (6): r + gamma (1 - d) [min_x Qbar_x(s', a') - alpha log pi(a'|s')]
        with torch.no_grad():
            q_hat = self._passes.soft_q_target(
                group.take(self.actor), group.take(self.critic_target), batch.next_obs, noise_next,
                alpha, batch.reward, batch.terminated,
            )

        # ---- critic update, eq. (6): J_Q(w_x) = 1/2 E[(Q_wx(s, a) - Q_hat)^2], x = 1, 2.
        # Per-agent losses are summed, so each agent's gradient is its own loss's gradient.
        leaves = [p.detach().requires_grad_() for p in group.take(self.critic)]
        critic_loss, q = self._passes.critic_loss(leaves, batch.obs, act_norm, q_hat)  # [n], [n, 2, B]
        grads = list(torch.autograd.grad(critic_loss.sum(), leaves))
        del leaves
        if cfg.grad_clip_norm is not None:
            clip_per_agent_(grads, cfg.grad_clip_norm)
        self.critic_opt.step(grads, group.adam_arg)
        del grads
        stats.updated[agents] = True
        stats.critic_loss[agents] = critic_loss.detach()
        stats.q_mean[agents] = q.detach().mean(dim=(1, 2))
        del q
        self._critic_updates.index_add_(0, agents, torch.ones_like(agents))

        # ---- delayed policy, temperature and target updates (Algorithm 1, lines 14-18)
        n_pi = pi_pos.numel()
        if n_pi == 0:
            return
        pi_agents = agents.index_select(0, pi_pos)
        pi_group = _Group(pi_agents, self.n_agents)
        obs_pi = batch.obs if n_pi == n else batch.obs.index_select(0, pi_pos)
        alpha_pi = alpha if n_pi == n else alpha.index_select(0, pi_pos)
        # eq. (7): J_pi = E[alpha log pi(a|s) - min_x Q_wx(s, a)], a = f_theta(s; delta) (eq. 8),
        # through the critics just updated.
        leaves = [p.detach().requires_grad_() for p in pi_group.take(self.actor)]
        policy_loss, logp_pi = self._passes.policy_loss(
            leaves, pi_group.take(self.critic), obs_pi, noise_pi, alpha_pi
        )  # [n_pi], [n_pi, B]
        grads = list(torch.autograd.grad(policy_loss.sum(), leaves))
        del leaves
        if cfg.grad_clip_norm is not None:
            clip_per_agent_(grads, cfg.grad_clip_norm)
        self.actor_opt.step(grads, pi_group.adam_arg)
        del grads
        logp_pi = logp_pi.detach()
        stats.policy_updated[pi_agents] = True
        stats.policy_loss[pi_agents] = policy_loss.detach()
        stats.entropy[pi_agents] = -logp_pi.mean(dim=1)

        # eq. (9) on log alpha: J = -(log alpha * (log pi + H_bar)).mean(); its gradient
        # w.r.t. log alpha is -(log pi + H_bar).mean(), computed directly.
        if cfg.autotune_alpha:
            excess = (logp_pi + self.target_entropy).mean(dim=1)  # [n_pi]
            stats.alpha_loss[pi_agents] = -(pi_group.take([self.log_alpha])[0] * excess)
            self.alpha_opt.step([-excess], pi_group.adam_arg)
        stats.alpha[pi_agents] = pi_group.take([self.log_alpha])[0].exp()

        # line 17: w_bar <- tau w + (1 - tau) w_bar
        with torch.no_grad():
            pi_group.lerp_(self.critic_target, self.critic, cfg.tau)
        self._policy_updates.index_add_(0, pi_agents, torch.ones_like(pi_agents))

    # ===================================================================== evaluation
    def _agents(self, agents) -> Tensor | None:
        if agents is None:
            return None
        a = torch.as_tensor(agents, dtype=torch.long, device=self.device).view(-1)
        if a.numel() and (int(a.min()) < 0 or int(a.max()) >= self.n_agents):
            raise IndexError(f"agent indices must be in [0, {self.n_agents}), got {a.tolist()}")
        return a

    def _select(self, params: list[Tensor], agents: Tensor | None) -> list[Tensor]:
        return params if agents is None else [p.index_select(0, agents) for p in params]

    def distribution(self, obs, agents=None) -> tuple[Tensor, Tensor]:
        """Pre-squash Gaussian of the current policies: ``obs[n, M, obs_dim]`` ->
        ``(mean, log_std)`` each ``[n, M, A]``, n = N or ``len(agents)``. Differentiable
        w.r.t. nothing stored (parameters are read, not tracked)."""
        a = self._agents(agents)
        n = self.n_agents if a is None else a.numel()
        o = torch.as_tensor(obs, dtype=self.dtype, device=self.device)
        if o.dim() != 3 or o.shape[0] != n or o.shape[2] != self.obs_dim:
            raise ValueError(f"obs must be [{n}, M, {self.obs_dim}], got {tuple(o.shape)}")
        with torch.no_grad():
            return actor_forward(
                self._select(self.actor, a), o, self.config.log_std_min, self.config.log_std_max
            )

    def log_prob(self, obs, actions, agents=None) -> Tensor:
        """log pi_i(a|s) of given scaled actions under each agent's current policy.

        ``obs[n, M, obs_dim]``, ``actions[n, M, A]`` -> ``[n, M]`` (n = N or len(agents)).
        """
        mean, log_std = self.distribution(obs, agents)
        act = torch.as_tensor(actions, dtype=self.dtype, device=self.device)
        if act.shape != mean.shape:
            raise ValueError(f"actions must be {tuple(mean.shape)}, got {tuple(act.shape)}")
        return squashed_log_prob_of_normalized(mean, log_std, self.to_normalized(act), self._log_scale_sum)

    @torch.no_grad()
    def q_values(self, obs, actions, agents=None) -> Tensor:
        """Both soft Q values ``[n, 2, M]`` of each agent's online critics at (s, a)."""
        a = self._agents(agents)
        n = self.n_agents if a is None else a.numel()
        o = torch.as_tensor(obs, dtype=self.dtype, device=self.device)
        act = torch.as_tensor(actions, dtype=self.dtype, device=self.device)
        if o.dim() != 3 or o.shape[0] != n or o.shape[2] != self.obs_dim:
            raise ValueError(f"obs must be [{n}, M, {self.obs_dim}], got {tuple(o.shape)}")
        if act.shape != (*o.shape[:2], self.act_dim):
            raise ValueError(f"actions must be {(*o.shape[:2], self.act_dim)}, got {tuple(act.shape)}")
        return twin_critic_forward(self._select(self.critic, a), o, self.to_normalized(act))

    def min_q(self, obs, actions, agents=None) -> Tensor:
        """min(Q1, Q2)(s, a) of each agent's online critics: ``[n, M]``."""
        return self.q_values(obs, actions, agents).min(dim=1).values

    # ===================================================================== policy vectors
    @property
    def policy_dim(self) -> int:
        """Length d of an agent's flat policy vector."""
        return self._layout[-1].stop

    def policy_layout(self):
        """List of ``LayerSlice(name, start, stop, shape)`` covering the flat policy vector."""
        return list(self._layout)

    def get_policy_vector(self, i: int) -> Tensor:
        """A copy of agent i's policy parameters as one flat vector ``[d]``."""
        return flatten_params([p[i : i + 1] for p in self.actor], self._layout)[0]

    def get_policy_vectors(self, agents=None) -> Tensor:
        """Copies of several agents' flat policy vectors ``[n, d]`` (all agents if None)."""
        return flatten_params(self._select(self.actor, self._agents(agents)), self._layout)

    @torch.no_grad()
    def set_policy_vector(self, i: int, vec) -> None:
        """Overwrite agent i's policy parameters with ``vec[d]`` (in-place copy).

        Optimiser state (Adam moments, step counts) and everything else are kept, so
        learning continues from the new parameters; other agents are untouched.
        """
        v = torch.as_tensor(vec, dtype=self.dtype, device=self.device)
        if v.shape != (self.policy_dim,):
            raise ValueError(f"policy vector must have shape ({self.policy_dim},), got {tuple(v.shape)}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError("policy vector contains non-finite values")
        for p, s in zip(self.actor, self._layout):
            block = v[s.start : s.stop].view(s.shape)
            p[i].copy_(block.t() if len(s.shape) == 2 else block)

    def set_policy_vectors(self, agents, vecs) -> None:
        """``set_policy_vector`` for several agents: ``vecs[n, d]``."""
        a = self._agents(agents)
        v = torch.as_tensor(vecs, dtype=self.dtype, device=self.device)
        if a is None or v.shape != (a.numel(), self.policy_dim):
            raise ValueError(f"expected agents[n] and vecs[n, {self.policy_dim}]")
        for k, i in enumerate(a.tolist()):
            self.set_policy_vector(i, v[k])

    # ===================================================================== save / load
    def state_dict(self, include_buffers: bool = True) -> dict:
        """Everything needed to resume exactly (see ``save``). Tensors are copies."""
        return {
            "format": CHECKPOINT_FORMAT,
            "n_agents": self.n_agents,
            "obs_dim": self.obs_dim,
            "action_low": list(self.action.low),
            "action_high": list(self.action.high),
            "config": self.config.to_dict(),
            "seeds": list(self.seeds),
            "chunk_size": self.chunk_size,
            "actor": [p.clone() for p in self.actor],
            "critic": [p.clone() for p in self.critic],
            "critic_target": [p.clone() for p in self.critic_target],
            "log_alpha": self.log_alpha.clone(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "alpha_opt": self.alpha_opt.state_dict(),
            "critic_updates": self._critic_updates.clone(),
            "policy_updates": self._policy_updates.clone(),
            "rng": [g.get_state() for g in self.generators],
            "buffer": self.buffer.state_dict() if include_buffers else None,
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict`` of a fleet with the same shape and config (in place)."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a {CHECKPOINT_FORMAT} checkpoint (format={state.get('format')!r})")
        mine = (self.n_agents, self.obs_dim, list(self.action.low), list(self.action.high))
        theirs = (state["n_agents"], state["obs_dim"], list(state["action_low"]), list(state["action_high"]))
        if mine != theirs:
            raise ValueError(
                f"checkpoint is for (n_agents, obs_dim, low, high) = {theirs}, this fleet is {mine}"
            )
        if SACConfig.from_dict(state["config"]) != self.config:
            raise ValueError("checkpoint config differs from this fleet's config")
        for name in ("actor", "critic", "critic_target"):
            for dst, src in zip(getattr(self, name), state[name], strict=True):
                dst.copy_(src)
        self.log_alpha.copy_(state["log_alpha"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self._critic_updates.copy_(state["critic_updates"])
        self._policy_updates.copy_(state["policy_updates"])
        for g, s in zip(self.generators, state["rng"], strict=True):
            g.set_state(s.cpu())
        self.seeds = [int(s) for s in state["seeds"]]
        if state.get("buffer") is not None:
            self.buffer.load_state_dict(state["buffer"])
        else:
            self.buffer.clear()

    @torch.no_grad()
    def load_weights(self, state: dict, source_agents: Sequence[int] | None = None) -> None:
        """Start from another fleet's networks (``state_dict`` output): fine-tuning, e.g. policies
        trained with 9 CAVs driving a scenario with more (RSM-MASAC, Fig. 13).

        Agent i takes the policy, critics, target critics and temperature of saved agent
        ``source_agents[i]`` (default: i mod the saved fleet's size). Optimiser state, counters,
        random streams and replay buffers stay those of this fleet. The observation size and
        every layer's shape must match (the action bounds may differ: the networks work on
        normalised actions); a ValueError names what does not.
        """
        if state.get("format") not in WEIGHT_FORMATS:  # only networks are read: format 1 has them too
            raise ValueError(f"not a {CHECKPOINT_FORMAT} state (format={state.get('format')!r})")
        n_saved = int(state["n_agents"])
        if int(state["obs_dim"]) != self.obs_dim or len(state["action_low"]) != self.act_dim:
            raise ValueError(f"saved policies observe {state['obs_dim']} values and act in {len(state['action_low'])} "
                             f"dimension(s); this fleet: {self.obs_dim} and {self.act_dim}")
        for name in ("actor", "critic"):
            mine = [tuple(p.shape[1:]) for p in getattr(self, name)]
            theirs = [tuple(p.shape[1:]) for p in state[name]]
            if mine != theirs:
                raise ValueError(f"saved {name} layers have shapes {theirs}, this fleet's {mine} "
                                 "(sac.hidden / sac.critic_hidden must match)")
        src = list(range(self.n_agents)) if source_agents is None else [int(a) for a in source_agents]
        if len(src) != self.n_agents:
            raise ValueError(f"need one source agent per agent ({self.n_agents}), got {len(src)}")
        idx = torch.tensor([a % n_saved if source_agents is None else a for a in src])
        if int(idx.min()) < 0 or int(idx.max()) >= n_saved:
            raise IndexError(f"source agents must be in [0, {n_saved}), got {src}")
        for name in ("actor", "critic", "critic_target"):
            for dst, saved in zip(getattr(self, name), state[name], strict=True):
                dst.copy_(saved.index_select(0, idx).to(dst.dtype))
        self.log_alpha.copy_(state["log_alpha"].index_select(0, idx).to(self.log_alpha.dtype))

    def save(self, path: str | os.PathLike, include_buffers: bool = True) -> None:
        """Write a checkpoint atomically (temporary file in the same folder + ``os.replace``).

        With buffers, ``SACFleet.load(path)`` resumes bit-identically: networks, targets,
        optimiser moments and step counts, alpha, counters, per-agent generator states and
        replay contents are all restored. Without buffers, replay starts empty.
        """
        atomic_torch_save(self.state_dict(include_buffers), path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> "SACFleet":
        """A fresh fleet restored from a checkpoint written by ``save``."""
        state = torch.load(path, map_location=device, weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
        fleet = cls(
            state["n_agents"],
            state["obs_dim"],
            state["action_low"],
            state["action_high"],
            SACConfig.from_dict(state["config"]),
            seeds=state["seeds"],
            device=device,
            chunk_size=state.get("chunk_size"),
        )
        fleet.load_state_dict(state)
        return fleet


class _Group:
    """A set of agents (ascending indices) and how to address their rows cheaply: a
    contiguous range becomes a slice (views, no copy), anything else an index tensor."""

    def __init__(self, agents: Tensor, n_total: int) -> None:
        self.agents = agents
        first, count = int(agents[0]), agents.numel()
        contiguous = int(agents[-1]) - first + 1 == count
        self.rows: slice | None = slice(first, first + count) if contiguous else None
        # what BatchedAdam.step takes: None = all agents, a slice, or indices
        if contiguous and count == n_total:
            self.adam_arg: slice | Tensor | None = None
        else:
            self.adam_arg = self.rows if contiguous else agents

    def take(self, params: Sequence[Tensor]) -> list[Tensor]:
        """The group's rows of stacked tensors: views for a range, copies otherwise."""
        if self.rows is not None:
            return [p[self.rows] for p in params]
        return [p.index_select(0, self.agents) for p in params]

    def lerp_(self, targets: Sequence[Tensor], sources: Sequence[Tensor], weight: float) -> None:
        """targets[group] <- targets[group] + weight * (sources[group] - targets[group])."""
        for t, src in zip(targets, sources):
            if self.rows is not None:
                t[self.rows].lerp_(src[self.rows], weight)
            else:
                sel = t.index_select(0, self.agents)
                t.index_copy_(0, self.agents, sel.lerp_(src.index_select(0, self.agents), weight))


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file next to ``path``, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@torch.no_grad()
def _init_linear_rows(params: Sequence[Tensor], generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and
    bias, drawn from ``generator`` in order (weight, bias) per layer. Weights are drawn in
    ``nn.Linear``'s [out, in] order and stored transposed ([in, out])."""
    for w, b in zip(params[0::2], params[1::2]):
        fan_in = w.shape[0]
        bound = 1.0 / math.sqrt(fan_in)
        draw = torch.empty(w.shape[1], fan_in, dtype=w.dtype, device=w.device)
        w.copy_(draw.uniform_(-bound, bound, generator=generator).t())
        b.uniform_(-bound, bound, generator=generator)
