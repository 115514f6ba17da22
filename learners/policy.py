"""The policy as a pure function of a flat parameter vector.

The mixing rules (MERL advantage, eq. 19; Fisher quadratic form, eq. 20) evaluate policies
whose parameters are *not* any agent's current ones, e.g. a referential policy assembled from
segments received from neighbours. ``PolicySpec`` describes the architecture; the functions
below take arbitrary flat vectors ``theta[B, d]`` (one policy per row) and observations
``obs[B, M, obs_dim]`` (M states per policy).

The flat vector is the concatenation of the policy's parameters in this order (each tensor
row-major, ``nn.Linear`` orientation [out, in]): ``fc0.weight, fc0.bias, ..., fc{H-1}.bias,
mean.weight, mean.bias, log_std.weight, log_std.bias`` -- the same order as
``torch.nn.utils.parameters_to_vector`` on ``learners.sac.Actor``. ``PolicySpec.layout()``
gives the slice of every tensor.

Everything is functional (views and out-of-place ops only), so ``torch.func.jvp`` /
``vmap`` / ``grad`` can differentiate through the parameter vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .nets import LayerSlice, actor_forward, actor_shapes, layout_of
from .squash import ActionScale, squashed_log_prob_of_normalized, squashed_log_prob_of_pre_tanh, squashed_sample


@dataclass(frozen=True)
class PolicySpec:
    """Architecture and action range of a tanh-Gaussian policy."""

    obs_dim: int
    act_dim: int
    hidden: tuple[int, ...]
    log_std_min: float
    log_std_max: float
    action: ActionScale

    def layout(self) -> list[LayerSlice]:
        """(name, start, stop, shape) of every parameter tensor in the flat vector."""
        return layout_of(actor_shapes(self.obs_dim, self.act_dim, self.hidden))

    @property
    def dim(self) -> int:
        """Length d of the flat policy vector."""
        return self.layout()[-1].stop

    def unflatten(self, flat: Tensor) -> list[Tensor]:
        """Views ``[B, *shape]`` (``nn.Linear`` orientation) of every parameter tensor of the
        rows of ``flat[B, d]``."""
        if flat.shape[-1] != self.dim:
            raise ValueError(f"flat policy vectors must have length {self.dim}, got {flat.shape[-1]}")
        lead = flat.shape[:-1]
        return [flat[..., s.start : s.stop].reshape(*lead, *s.shape) for s in self.layout()]


def _batched(flat: Tensor, obs: Tensor) -> tuple[Tensor, Tensor, bool]:
    if flat.dim() == 1:
        if obs.dim() != 2:
            raise ValueError("with a single flat vector [d], obs must be [M, obs_dim]")
        return flat.unsqueeze(0), obs.unsqueeze(0), True
    if flat.dim() != 2 or obs.dim() != 3 or obs.shape[0] != flat.shape[0]:
        raise ValueError(
            f"expected flat[B, d] and obs[B, M, obs_dim], got {tuple(flat.shape)} and {tuple(obs.shape)}"
        )
    return flat, obs, False


def policy_distribution(flat: Tensor, obs: Tensor, spec: PolicySpec) -> tuple[Tensor, Tensor]:
    """Pre-squash Gaussian of each policy row on its states.

    ``flat[B, d]`` and ``obs[B, M, obs_dim]`` -> ``(mean[B, M, A], log_std[B, M, A])``.
    A single policy ``flat[d]`` with ``obs[M, obs_dim]`` gives ``[M, A]`` outputs.
    """
    flat_b, obs_b, single = _batched(flat, obs)
    params = to_storage_views(spec.unflatten(flat_b), spec.layout())
    mean, log_std = actor_forward(params, obs_b.to(flat_b.dtype), spec.log_std_min, spec.log_std_max)
    if single:
        return mean[0], log_std[0]
    return mean, log_std


def policy_log_prob(flat: Tensor, obs: Tensor, actions: Tensor, spec: PolicySpec) -> Tensor:
    """log pi_theta(a|s) of given *scaled* actions (in [low, high]) under each policy row.

    ``actions`` has the shape of ``obs`` with ``act_dim`` last; returns ``[B, M]`` (or ``[M]``).
    The pre-squash value is recovered with atanh after clipping the normalised action to
    (-1 + eps, 1 - eps) (see ``squash.squashed_log_prob_of_normalized``).
    """
    mean, log_std = policy_distribution(flat, obs, spec)
    scale = spec.action.scale(mean.dtype, mean.device)
    center = spec.action.center(mean.dtype, mean.device)
    y = (actions.to(mean.dtype) - center) / scale
    return squashed_log_prob_of_normalized(mean, log_std, y, spec.action.log_scale_sum)


def policy_log_prob_of_pre_tanh(flat: Tensor, obs: Tensor, pre_tanh: Tensor, spec: PolicySpec) -> Tensor:
    """log pi_theta(a|s) of the scaled actions a = center + scale * tanh(u), given u.

    Exact also where tanh(u) saturates (see ``squash.squashed_log_prob_of_pre_tanh``); this is
    how stored replay actions are re-evaluated under other policies (eq. 19).
    ``pre_tanh`` has the shape of ``obs`` with ``act_dim`` last; returns ``[B, M]`` (or ``[M]``).
    """
    mean, log_std = policy_distribution(flat, obs, spec)
    return squashed_log_prob_of_pre_tanh(mean, log_std, pre_tanh.to(mean.dtype), spec.action.log_scale_sum)


def policy_sample(
    flat: Tensor, obs: Tensor, noise: Tensor, spec: PolicySpec
) -> tuple[Tensor, Tensor]:
    """Reparameterised actions (scaled to [low, high]) and their log-probs, given the noise.

    ``noise`` ~ N(0, I) with the shape of the actions (draw it outside any vmap).
    Returns ``(actions, log_prob)``.
    """
    mean, log_std = policy_distribution(flat, obs, spec)
    y, log_prob = squashed_sample(mean, log_std, noise.to(mean.dtype), spec.action.log_scale_sum)
    scale = spec.action.scale(mean.dtype, mean.device)
    center = spec.action.center(mean.dtype, mean.device)
    return center + scale * y, log_prob


def to_storage_views(params: Sequence[Tensor], layout: Sequence[LayerSlice]) -> list[Tensor]:
    """``nn.Linear``-oriented tensors ``[B, out, in]`` -> storage orientation ``[B, in, out]``
    (transposed views, no copy); biases pass through."""
    return [p.transpose(-1, -2) if len(s.shape) == 2 else p for p, s in zip(params, layout)]


def flatten_params(params: Sequence[Tensor], layout: Sequence[LayerSlice]) -> Tensor:
    """Stacked storage tensors ``[n, *storage_shape]`` -> flat policy vectors ``[n, d]``."""
    n = params[0].shape[0]
    parts = [
        (p.transpose(-1, -2) if len(s.shape) == 2 else p).reshape(n, -1)
        for p, s in zip(params, layout)
    ]
    return torch.cat(parts, dim=1)
