"""Single-agent Soft Actor-Critic, written to be read (CleanRL style).

This is the reference the batched ``SACFleet`` is tested against: plain ``nn.Module`` s,
``torch.optim.Adam``, one agent, every step of the algorithm visible in ``SAC.update``.
Equation numbers refer to the RSM-MASAC paper (Yu et al., Sec. III-A):

    (6)  J_Q(w_x)  = 1/2 E_{(s,a)~D} [ (Q_wx(s,a) - Q_hat(s,a))^2 ],  x = 1, 2
         Q_hat     = r + gamma (1 - d) [ min_x Q_wbar_x(s', a') - alpha log pi(a'|s') ],
                     a' ~ pi(.|s')
    (7)  J_pi(th)  = E_{s~D} E_{a~pi} [ alpha log pi(a|s) - min_x Q_wx(s, a) ]
    (8)  a         = tanh(mu_th(s) + delta * sigma_th(s)),  delta ~ N(0, I)
                     (then scaled to [low, high]: a_env = center + scale * a)
    (9)  J(alpha)  = E [ -alpha log pi(a|s) - alpha H_bar ],  H_bar = -dim(A)
         implemented on log alpha (as SAC, CleanRL and SB3 do, keeping alpha > 0):
         J = -(log alpha * (log pi + H_bar).detach()).mean(); its gradient in log alpha
         equals the gradient of (9) in alpha.

Algorithm 1, lines 12-20, with the TD3-style delayed update: the critics are updated every
call; the policy (7), alpha (9) and the targets (w_bar <- tau w + (1 - tau) w_bar) only when
the critic counter, before increment, is a multiple of ``policy_delay`` (line 14), and then
the policy-update counter k grows by one (line 18). The policy step uses the critics just
updated; alpha uses the log-probs of the same reparameterised samples as the policy step
(computed before the policy step, as in the original SAC), and the policy loss uses the
alpha from before the alpha step.

Critics see actions normalised to [-1, 1] (like Stable-Baselines3), so the action range does
not change the critic's input scale; the replay buffer stores the scaled actions.

Randomness: one ``torch.Generator`` per agent, seeded with ``seed``; it draws the initial
weights (policy, Q1, Q2 -- each layer weight then bias, U(+-1/sqrt(fan_in)) as nn.Linear's
default), then per update ``randint`` minibatch indices, ``randn(B, A)`` target-action noise
and, on policy steps, ``randn(B, A)`` reparameterisation noise; per action ``randn(1, A)``.
"""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .config import SACConfig


class Actor(nn.Module):
    """pi_theta: ReLU MLP -> mean and (bounded) log-std of the pre-tanh Gaussian."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], log_std_min: float, log_std_max: float):
        super().__init__()
        widths = [obs_dim, *hidden]
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.mean = nn.Linear(widths[-1], act_dim)
        self.log_std = nn.Linear(widths[-1], act_dim)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        h = obs
        for layer in self.fc:
            h = F.relu(layer(h))
        mean = self.mean(h)
        # smooth bound (CleanRL): tanh maps to (-1, 1), then affinely to (min, max)
        log_std = torch.tanh(self.log_std(h))
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1.0)
        return mean, log_std


class QNetwork(nn.Module):
    """Q_w(s, a): ReLU MLP on concat(s, a_normalised) -> scalar."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int]):
        super().__init__()
        widths = [obs_dim + act_dim, *hidden]
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(widths[-1], 1)

    def forward(self, obs: Tensor, act: Tensor) -> Tensor:
        h = torch.cat([obs, act], dim=-1)
        for layer in self.fc:
            h = F.relu(layer(h))
        return self.out(h).squeeze(-1)


def _init_(module: nn.Module, generator: torch.Generator) -> None:
    """nn.Linear's default distribution, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), but drawn from
    the agent's own generator (weight then bias, in registration order)."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)


class SAC:
    """One SAC agent with its own replay buffer and random stream."""

    def __init__(
        self,
        obs_dim: int,
        action_low: float | Sequence[float],
        action_high: float | Sequence[float],
        config: SACConfig | None = None,
        seed: int = 0,
        fused_adam: bool = False,
    ) -> None:
        cfg = self.cfg = config if config is not None else SACConfig()
        if cfg.matmul_dtype != "float32":
            raise ValueError(
                f"SACConfig.matmul_dtype {cfg.matmul_dtype!r} is an option of learners.SACFleet; "
                "learners.SAC, the readable reference, runs its products in float32"
            )
        if cfg.compile:
            raise ValueError(
                "SACConfig.compile is an option of learners.SACFleet; learners.SAC, the readable "
                "reference, runs eagerly"
            )
        dtype = cfg.torch_dtype
        low = torch.as_tensor(action_low, dtype=dtype).reshape(-1)
        high = torch.as_tensor(action_high, dtype=dtype).reshape(-1)
        self.act_dim = act_dim = low.numel()
        self.obs_dim = obs_dim
        self.action_scale = (high - low) / 2.0
        self.action_center = (high + low) / 2.0
        self.log_scale_sum = float(torch.log(self.action_scale).sum())
        self.gen = torch.Generator().manual_seed(int(seed))

        # Algorithm 1, lines 1-2: networks and target networks.
        self.actor = Actor(obs_dim, act_dim, cfg.hidden, cfg.log_std_min, cfg.log_std_max).to(dtype)
        self.qf1 = QNetwork(obs_dim, act_dim, cfg.q_hidden).to(dtype)
        self.qf2 = QNetwork(obs_dim, act_dim, cfg.q_hidden).to(dtype)
        for net in (self.actor, self.qf1, self.qf2):
            _init_(net, self.gen)
        self.qf1_target = copy.deepcopy(self.qf1)
        self.qf2_target = copy.deepcopy(self.qf2)

        # Line 3: learning rates and temperature.
        self.log_alpha = torch.tensor(math.log(cfg.init_alpha), dtype=dtype, requires_grad=True)
        self.target_entropy = cfg.entropy_target(act_dim)
        adam = dict(betas=cfg.adam_betas, eps=cfg.adam_eps, fused=fused_adam or None)
        self.actor_opt = torch.optim.Adam(list(self.actor.parameters()), lr=cfg.actor_lr, **adam)
        self.q_opt = torch.optim.Adam(
            list(self.qf1.parameters()) + list(self.qf2.parameters()), lr=cfg.critic_lr, **adam
        )
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr, **adam)

        # Replay buffer D (ring buffer, preallocated).
        C = cfg.buffer_size
        self.buf = {
            "obs": torch.zeros(C, obs_dim, dtype=dtype),
            "action": torch.zeros(C, act_dim, dtype=dtype),
            "reward": torch.zeros(C, dtype=dtype),
            "next_obs": torch.zeros(C, obs_dim, dtype=dtype),
            "terminated": torch.zeros(C, dtype=dtype),
            "log_prob": torch.zeros(C, dtype=dtype),
        }
        self.ptr = 0
        self.size = 0

        # Line 4: counters (critic updates, policy updates k).
        self.critic_updates = 0
        self.policy_updates = 0

    # ------------------------------------------------------------------ the policy, eq. (8)
    def sample(self, obs: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """a = tanh(mu + sigma * noise) in (-1, 1) and log pi of the *scaled* action."""
        mean, log_std = self.actor(obs)
        u = mean + log_std.exp() * noise
        a = torch.tanh(u)
        log_prob = torch.distributions.Normal(mean, log_std.exp()).log_prob(u)
        log_prob = log_prob - 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))  # - log(1 - tanh(u)^2)
        return a, log_prob.sum(-1) - self.log_scale_sum  # - log(scale) per dimension

    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())

    @torch.no_grad()
    def act(self, obs, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """Line 9: a ~ pi(.|s); returns the scaled action [A] and its log-prob."""
        obs = torch.as_tensor(obs, dtype=self.action_scale.dtype).view(1, self.obs_dim)
        if deterministic:
            noise = torch.zeros(1, self.act_dim, dtype=obs.dtype)
        else:
            noise = torch.randn(1, self.act_dim, generator=self.gen, dtype=obs.dtype)
        a, log_prob = self.sample(obs, noise)
        return (self.action_center + self.action_scale * a)[0], log_prob[0]

    def add(self, obs, action, reward, next_obs, terminated, log_prob) -> None:
        """Line 11: D <- D u {(s, a, r, s', d, log mu(a|s))}."""
        for key, value in (("obs", obs), ("action", action), ("reward", reward),
                           ("next_obs", next_obs), ("terminated", terminated), ("log_prob", log_prob)):
            self.buf[key][self.ptr] = torch.as_tensor(value, dtype=self.buf[key].dtype)
        self.ptr = (self.ptr + 1) % self.cfg.buffer_size
        self.size = min(self.size + 1, self.cfg.buffer_size)

    # ------------------------------------------------------------------ one learning step
    def update(self, force_policy: bool = False) -> dict[str, float]:
        cfg, B, A = self.cfg, self.cfg.batch_size, self.act_dim
        dtype = self.action_scale.dtype
        do_policy = self.critic_updates % cfg.policy_delay == 0 or force_policy  # line 14

        # Line 12: minibatch from D, and all the noise this update needs (fixed order).
        idx = torch.randint(self.size, (B,), generator=self.gen)
        noise_next = torch.randn(B, A, generator=self.gen, dtype=dtype)
        noise_pi = torch.randn(B, A, generator=self.gen, dtype=dtype) if do_policy else None
        obs, action = self.buf["obs"][idx], self.buf["action"][idx]
        reward, next_obs = self.buf["reward"][idx], self.buf["next_obs"][idx]
        terminated = self.buf["terminated"][idx]
        action = (action - self.action_center) / self.action_scale  # critic input in [-1, 1]
        alpha = self.log_alpha.detach().exp()

        # Line 13, eq. (6): soft Bellman target with the target networks, then both critics.
        with torch.no_grad():
            next_a, next_log_pi = self.sample(next_obs, noise_next)
            min_q_next = torch.min(self.qf1_target(next_obs, next_a), self.qf2_target(next_obs, next_a))
            q_hat = reward + cfg.gamma * (1.0 - terminated) * (min_q_next - alpha * next_log_pi)
        q1, q2 = self.qf1(obs, action), self.qf2(obs, action)
        q_loss = 0.5 * ((q1 - q_hat) ** 2).mean() + 0.5 * ((q2 - q_hat) ** 2).mean()
        self.q_opt.zero_grad()
        q_loss.backward()
        if cfg.grad_clip_norm is not None:
            nn.utils.clip_grad_norm_(list(self.qf1.parameters()) + list(self.qf2.parameters()), cfg.grad_clip_norm)
        self.q_opt.step()
        stats = {"critic_loss": float(q_loss.detach()), "q_mean": float((q1 + q2).detach().mean() / 2)}
        self.critic_updates += 1  # line 20

        if do_policy:
            # Line 15, eqs. (7)-(8): reparameterised actions, loss through the updated critics.
            a, log_pi = self.sample(obs, noise_pi)
            min_q = torch.min(self.qf1(obs, a), self.qf2(obs, a))
            pi_loss = (alpha * log_pi - min_q).mean()
            self.actor_opt.zero_grad()
            pi_loss.backward()
            if cfg.grad_clip_norm is not None:
                nn.utils.clip_grad_norm_(list(self.actor.parameters()), cfg.grad_clip_norm)
            self.actor_opt.step()
            stats.update(policy_loss=float(pi_loss.detach()), entropy=float(-log_pi.detach().mean()))

            # Line 16, eq. (9) on log alpha.
            if cfg.autotune_alpha:
                alpha_loss = -(self.log_alpha * (log_pi.detach() + self.target_entropy)).mean()
                self.alpha_opt.zero_grad()
                alpha_loss.backward()
                self.alpha_opt.step()
                stats["alpha_loss"] = float(alpha_loss.detach())
            stats["alpha"] = self.alpha()

            # Line 17: Polyak averaging of the target critics.
            with torch.no_grad():
                for net, target in ((self.qf1, self.qf1_target), (self.qf2, self.qf2_target)):
                    for p, tp in zip(net.parameters(), target.parameters()):
                        tp.mul_(1.0 - cfg.tau).add_(p, alpha=cfg.tau)
            self.policy_updates += 1  # line 18
        return stats

    # ------------------------------------------------------------------ helpers for tests
    def policy_vector(self) -> Tensor:
        return nn.utils.parameters_to_vector(self.actor.parameters()).detach().clone()
