"""Per-agent replay buffers stored as one set of preallocated tensors.

Agent i owns rows ``[i, 0:capacity]`` of every field and its own write pointer and size, so
the buffers are exactly N independent ring buffers (oldest transition overwritten first);
they only share memory layout, which lets one call add a transition for many agents and
gather the minibatches of many agents at once.

Stored per transition: observation s, action a (scaled, as sent to the environment), reward
r, next observation s', ``terminated`` (1.0 if s' is terminal, so no bootstrap; a time-limit
cut is *not* terminal), ``log_prob`` = log mu(a|s) of the behaviour policy that acted, and
``pre_tanh`` = the Gaussian sample u with a = center + scale * tanh(u). The last two are what
the MERL advantage (eq. 19) needs: log pi(a|s) of a stored action is recomputed from u, not
from atanh of the stored float action, which is not invertible where tanh saturated (an
unchanged policy would otherwise see pi/mu != 1 on exactly the actions at the bounds).

Memory: the tensors are allocated with ``torch.empty`` (pages are committed when written);
N * capacity * (2 obs_dim + 2 act_dim + 3) values in all.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "log_prob", "pre_tanh")


class ReplayBatch(NamedTuple):
    """A minibatch stacked over agents: ``[n, B, ...]`` per field."""

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    terminated: Tensor
    log_prob: Tensor
    pre_tanh: Tensor


def as_mask(mask, n: int, device=None) -> Tensor | None:
    """Normalise an optional agent mask (bool sequence/array/tensor of length n)."""
    if mask is None:
        return None
    m = torch.as_tensor(mask, device=device)
    if m.dtype != torch.bool:
        if m.dtype.is_floating_point:
            raise ValueError("agent masks must be boolean (or 0/1 integers)")
        m = m != 0
    if m.shape != (n,):
        raise ValueError(f"agent mask must have shape ({n},), got {tuple(m.shape)}")
    return m


class FleetReplayBuffer:
    """N ring buffers of capacity ``capacity`` each (see module docstring)."""

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        act_dim: int,
        capacity: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.n_agents, self.obs_dim, self.act_dim = n_agents, obs_dim, act_dim
        self.capacity = int(capacity)
        self.dtype, self.device = dtype, torch.device(device)
        shape = (n_agents, self.capacity)
        kw = dict(dtype=dtype, device=self.device)
        self.obs = torch.empty(*shape, obs_dim, **kw)
        self.action = torch.empty(*shape, act_dim, **kw)
        self.reward = torch.empty(*shape, **kw)
        self.next_obs = torch.empty(*shape, obs_dim, **kw)
        self.terminated = torch.empty(*shape, **kw)
        self.log_prob = torch.empty(*shape, **kw)
        self.pre_tanh = torch.empty(*shape, act_dim, **kw)
        self.ptr = torch.zeros(n_agents, dtype=torch.long, device=self.device)
        self.size = torch.zeros(n_agents, dtype=torch.long, device=self.device)

    def _rows(self, value, trailing: tuple[int, ...], name: str) -> Tensor:
        t = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        expected = (self.n_agents, *trailing)
        if t.shape != expected:
            if trailing == () and t.shape == (self.n_agents, 1):
                return t.view(self.n_agents)
            raise ValueError(f"{name} must have shape {expected}, got {tuple(t.shape)}")
        return t

    @torch.no_grad()
    def add(self, obs, action, reward, next_obs, terminated, log_prob, pre_tanh, mask=None) -> None:
        """Append one transition for every agent whose ``mask`` entry is True (all if None).

        Every argument has N rows (rows of masked-out agents are ignored).
        """
        m = as_mask(mask, self.n_agents, self.device)
        values = (
            self._rows(obs, (self.obs_dim,), "obs"),
            self._rows(action, (self.act_dim,), "action"),
            self._rows(reward, (), "reward"),
            self._rows(next_obs, (self.obs_dim,), "next_obs"),
            self._rows(terminated, (), "terminated"),
            self._rows(log_prob, (), "log_prob"),
            self._rows(pre_tanh, (self.act_dim,), "pre_tanh"),
        )
        if m is None:
            rows = torch.arange(self.n_agents, device=self.device)
        else:
            rows = m.nonzero().squeeze(1)
            if rows.numel() == 0:
                return
            values = tuple(v.index_select(0, rows) for v in values)
        pos = self.ptr.index_select(0, rows)
        for name, value in zip(FIELDS, values):
            getattr(self, name)[rows, pos] = value
        self.ptr.index_copy_(0, rows, (pos + 1) % self.capacity)
        self.size.index_copy_(0, rows, (self.size.index_select(0, rows) + 1).clamp(max=self.capacity))

    def sample_indices(self, agent: int, batch_size: int, generator: torch.Generator) -> Tensor:
        """Uniform indices (with replacement) into agent ``agent``'s filled rows."""
        size = int(self.size[agent])
        if size == 0:
            raise ValueError(f"agent {agent}'s replay buffer is empty")
        return torch.randint(size, (batch_size,), generator=generator, device=self.device)

    def gather(self, agents: Tensor, idx: Tensor) -> ReplayBatch:
        """Transitions ``idx[n, B]`` of ``agents[n]`` as a ``ReplayBatch`` of ``[n, B, ...]``."""
        a = agents.view(-1, 1)
        return ReplayBatch(*(getattr(self, name)[a, idx] for name in FIELDS))

    def recent_reward_sums(self, window: int) -> Tensor:
        """Sum of each agent's last ``window`` stored rewards (fewer if its buffer holds fewer):
        the reward buffer R_i of RS-PPS (PPS-QMIX, Section 4.2). ``[N]``."""
        k = torch.arange(1, min(int(window), self.capacity) + 1, device=self.device)
        idx = (self.ptr.unsqueeze(1) - k) % self.capacity  # [N, window], newest first
        present = k.unsqueeze(0) <= self.size.unsqueeze(1)
        values = self.reward.gather(1, idx)
        return torch.where(present, values, torch.zeros_like(values)).sum(dim=1)

    @torch.no_grad()
    def clear(self, mask=None) -> None:
        """Forget the transitions of the masked agents (all if None)."""
        m = as_mask(mask, self.n_agents, self.device)
        if m is None:
            self.ptr.zero_()
            self.size.zero_()
        else:
            self.ptr[m] = 0
            self.size[m] = 0

    # ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Filled part only (up to the largest size over agents)."""
        top = int(self.size.max()) if self.n_agents else 0
        out = {name: getattr(self, name)[:, :top].clone() for name in FIELDS}
        out.update(ptr=self.ptr.clone(), size=self.size.clone(), capacity=self.capacity)
        return out

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"buffer capacity mismatch: checkpoint {state['capacity']}, this fleet {self.capacity}"
            )
        for name in FIELDS:
            src = state[name]
            getattr(self, name)[:, : src.shape[1]] = src
        self.ptr.copy_(state["ptr"])
        self.size.copy_(state["size"])
