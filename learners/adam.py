"""Adam over agent-stacked tensors, with per-agent step counts and an agent mask.

Adam is elementwise, so Adam on a tensor ``W[N, ...]`` is N independent Adams -- except for
the bias correction, which depends on the step count. Agents that sit out an update (warm-up,
synchronous round, ...) must keep their parameters, moments *and* step count untouched, so
the step count is a vector ``steps[N]`` and an update names the agents it applies to.

Implementation: PyTorch's fused CPU/CUDA Adam kernel (``torch._fused_adam_``, the kernel
behind ``torch.optim.Adam(fused=True)``) takes a list of tensors with one step tensor each.
We hand it, per parameter tensor, one slice of the stacked storage for every maximal run of
consecutive agents that take part and share a step count -- masked-out agents are simply
not in the list. When every agent takes part in step (the common case) that is the whole
stacked tensors. If the fused kernel is unavailable, a plain per-row implementation of the same formula is used
(``impl="reference"``). Both follow ``torch.optim.Adam`` (no weight decay, no amsgrad):

    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2;   t <- t + 1
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

_HAS_FUSED = hasattr(torch, "_fused_adam_")


def per_agent_grad_norm(grads: Sequence[Tensor]) -> Tensor:
    """L2 norm over all tensors of each agent (leading axis): ``[n]``."""
    n = grads[0].shape[0]
    total = None
    for g in grads:
        sq = g.reshape(n, -1).square().sum(dim=1)
        total = sq if total is None else total + sq
    return total.sqrt()


def clip_per_agent_(grads: Sequence[Tensor], max_norm: float) -> Tensor:
    """Scale each agent's gradients in place like ``clip_grad_norm_`` on that agent alone.

    Returns the per-agent norms before clipping.
    """
    norms = per_agent_grad_norm(grads)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
    return norms


class BatchedAdam:
    """Adam for a group of stacked parameters ``[N, ...]`` with per-agent step counts.

    ``step(grads, agents)`` applies one Adam step to the agents in ``agents`` (ascending
    indices, a slice, or ``None`` = all N); ``grads`` are stacked over exactly those agents
    (``[len(agents), ...]``). Other agents are left bit-for-bit untouched.
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        impl: str = "auto",
    ) -> None:
        if impl not in ("auto", "fused", "reference"):
            raise ValueError(f"impl must be 'auto', 'fused' or 'reference', got {impl!r}")
        if impl == "fused" and not _HAS_FUSED:
            raise ValueError("this torch build has no fused Adam kernel")
        self.params = list(params)
        self.n = self.params[0].shape[0]
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.impl = ("fused" if _HAS_FUSED else "reference") if impl == "auto" else impl
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # float32 step counts, as torch.optim.Adam keeps them (exact up to 2**24 steps).
        self.steps = torch.zeros(self.n, dtype=torch.float32, device=self.params[0].device)

    # ------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, grads: Sequence[Tensor], agents: Tensor | slice | None = None) -> None:
        """One Adam step for ``agents``: ``None`` (all N), a ``slice`` of consecutive agents,
        or ascending indices; ``grads[j]`` is stacked over exactly those agents."""
        if len(grads) != len(self.params):
            raise ValueError(f"expected {len(self.params)} gradients, got {len(grads)}")
        if agents is None:
            agents = slice(0, self.n)
        if isinstance(agents, slice):
            self.steps[agents] += 1.0
        else:
            self.steps.index_add_(0, agents, torch.ones_like(agents, dtype=self.steps.dtype))
        if self.impl == "fused":
            # The fused kernel walks raw memory: gradients must be laid out like the params.
            self._fused([g.contiguous() for g in grads], agents)
        else:
            self._reference(grads, agents)

    def _fused(self, grads: Sequence[Tensor], agents: Tensor | slice) -> None:
        b1, b2 = self.betas
        ids = list(range(self.n))[agents] if isinstance(agents, slice) else agents.tolist()
        steps = self.steps.tolist()
        # Maximal runs of consecutive agents with equal step counts: one kernel entry per
        # (parameter tensor, run), each a contiguous slice with the run's shared step count.
        # All agents in step (the usual case) is a single run: the whole stacked tensors.
        runs: list[list[int]] = []  # [first agent, stop agent, first row in grads]
        for k, i in enumerate(ids):
            if runs and i == runs[-1][1] and steps[i] == steps[runs[-1][0]]:
                runs[-1][1] += 1
            else:
                runs.append([i, i + 1, k])
        p_e, g_e, m_e, v_e, s_e = [], [], [], [], []
        step_rows = self.steps.unbind(0)
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            for a, b, k in runs:
                p_e.append(p[a:b])
                m_e.append(m[a:b])
                v_e.append(v[a:b])
                g_e.append(g[k : k + b - a])
                s_e.append(step_rows[a])  # read-only for the kernel
        torch._fused_adam_(
            p_e, g_e, m_e, v_e, [], s_e,
            lr=self.lr, beta1=b1, beta2=b2, weight_decay=0.0, eps=self.eps,
            amsgrad=False, maximize=False,
        )

    def _reference(self, grads: Sequence[Tensor], agents: Tensor | slice) -> None:
        b1, b2 = self.betas
        ids = list(range(self.n))[agents] if isinstance(agents, slice) else agents.tolist()
        steps = self.steps.tolist()
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            for k, i in enumerate(ids):
                t = steps[i]
                m[i].lerp_(g[k], 1.0 - b1)
                v[i].mul_(b2).addcmul_(g[k], g[k], value=1.0 - b2)
                bc1 = 1.0 - b1**t
                bc2_sqrt = math.sqrt(1.0 - b2**t)
                denom = (v[i].sqrt() / bc2_sqrt).add_(self.eps)
                p[i].addcdiv_(m[i], denom, value=-self.lr / bc1)

    # ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "exp_avg": [t.clone() for t in self.exp_avg],
            "exp_avg_sq": [t.clone() for t in self.exp_avg_sq],
            "steps": self.steps.clone(),
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for dst, src in zip(self.exp_avg, state["exp_avg"], strict=True):
            dst.copy_(src)
        for dst, src in zip(self.exp_avg_sq, state["exp_avg_sq"], strict=True):
            dst.copy_(src)
        self.steps.copy_(state["steps"])
