"""Tanh-squashed, affinely scaled diagonal Gaussian (the SAC policy distribution, eq. 8).

An action is produced as

    u = mu + sigma * delta,   delta ~ N(0, I)          (pre-squash Gaussian sample)
    y = tanh(u)                                          (in (-1, 1), eq. 8)
    a = center + scale * y,   center = (high + low) / 2, scale = (high - low) / 2

and its log-density follows from the change of variables:

    log pi(a|s) = sum_k [ log N(u_k; mu_k, sigma_k) - log(1 - tanh(u_k)^2) - log(scale_k) ]

with the numerically stable identity log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)),
which stays finite where tanh(u) rounds to +-1.

All functions are pure tensor code (no in-place ops on inputs), so they work under
``torch.func`` transforms (``jvp``, ``vmap``, ``grad``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def bounded_log_std(raw: Tensor, log_std_min: float, log_std_max: float) -> Tensor:
    """Map an unbounded head output to [log_std_min, log_std_max] smoothly (CleanRL style).

    log_std = min + (max - min) * (tanh(raw) + 1) / 2. Unlike a clamp, the gradient never
    vanishes abruptly at the bound.
    """
    return log_std_min + 0.5 * (log_std_max - log_std_min) * (torch.tanh(raw) + 1.0)


def tanh_log_abs_det(u: Tensor) -> Tensor:
    """Elementwise log |d tanh(u) / du| = log(1 - tanh(u)^2), computed stably."""
    return 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))


def gaussian_log_prob_from_noise(log_std: Tensor, noise: Tensor) -> Tensor:
    """log N(mu + sigma * noise; mu, sigma) elementwise (exact, no division by sigma)."""
    return -0.5 * noise.square() - log_std - _HALF_LOG_2PI


def gaussian_log_prob(mean: Tensor, log_std: Tensor, u: Tensor) -> Tensor:
    """log N(u; mean, exp(log_std)) elementwise."""
    z = (u - mean) * torch.exp(-log_std)
    return -0.5 * z.square() - log_std - _HALF_LOG_2PI


@dataclass(frozen=True)
class ActionScale:
    """Per-dimension affine map between the squashed range (-1, 1) and [low, high]."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @staticmethod
    def from_bounds(low: float | Sequence[float], high: float | Sequence[float]) -> "ActionScale":
        lows = (float(low),) if isinstance(low, (int, float)) else tuple(float(x) for x in low)
        highs = (float(high),) if isinstance(high, (int, float)) else tuple(float(x) for x in high)
        if len(lows) != len(highs) or len(lows) == 0:
            raise ValueError(
                f"action_low and action_high must have the same non-zero length, got "
                f"{len(lows)} and {len(highs)}"
            )
        for k, (lo, hi) in enumerate(zip(lows, highs)):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(
                    f"action bounds must be finite with low < high; dimension {k} has "
                    f"low={lo}, high={hi}"
                )
        return ActionScale(lows, highs)

    @property
    def dim(self) -> int:
        return len(self.low)

    def scale(self, dtype=torch.float32, device=None) -> Tensor:
        return torch.tensor(
            [(h - l) / 2.0 for l, h in zip(self.low, self.high)], dtype=dtype, device=device
        )

    def center(self, dtype=torch.float32, device=None) -> Tensor:
        return torch.tensor(
            [(h + l) / 2.0 for l, h in zip(self.low, self.high)], dtype=dtype, device=device
        )

    @property
    def log_scale_sum(self) -> float:
        """sum_k log(scale_k): the constant the affine map subtracts from log-densities."""
        return float(sum(math.log((h - l) / 2.0) for l, h in zip(self.low, self.high)))


def squashed_sample(
    mean: Tensor, log_std: Tensor, noise: Tensor, log_scale_sum: float
) -> tuple[Tensor, Tensor]:
    """Reparameterised sample (eq. 8) and its log-probability.

    Returns ``(y, log_prob)`` where ``y = tanh(mean + exp(log_std) * noise)`` lies in (-1, 1)
    (scale it with ``center + scale * y``) and ``log_prob`` is the log-density of the *scaled*
    action, summed over the last (action) dimension.
    """
    y, log_prob, _ = squashed_sample_with_pre_tanh(mean, log_std, noise, log_scale_sum)
    return y, log_prob


def squashed_sample_with_pre_tanh(
    mean: Tensor, log_std: Tensor, noise: Tensor, log_scale_sum: float
) -> tuple[Tensor, Tensor, Tensor]:
    """``squashed_sample`` that also returns the pre-squash value u = mean + sigma * noise
    (what a replay buffer stores so that log pi(a|s) can be recomputed exactly later)."""
    u = mean + torch.exp(log_std) * noise
    y = torch.tanh(u)
    log_prob = (gaussian_log_prob_from_noise(log_std, noise) - tanh_log_abs_det(u)).sum(-1)
    return y, log_prob - log_scale_sum, u


def squashed_log_prob_of_pre_tanh(mean: Tensor, log_std: Tensor, u: Tensor, log_scale_sum: float) -> Tensor:
    """Log-density of the scaled action ``center + scale * tanh(u)`` given its pre-squash value
    ``u``, summed over the action dimension.

    Exact for every u, saturated ones included: an action whose tanh rounds to +-1 in float32
    keeps the density it was drawn with (``squashed_log_prob_of_normalized`` has to clip it).
    """
    log_prob = (gaussian_log_prob(mean, log_std, u) - tanh_log_abs_det(u)).sum(-1)
    return log_prob - log_scale_sum


def pre_tanh_of_normalized(y: Tensor, eps: float | None = None) -> Tensor:
    """``atanh(y)`` after clipping ``y`` to ``[-1 + eps, 1 - eps]`` (default eps: 1e-6 in
    float32, 1e-12 in float64): the pre-squash value of a normalised action, exact for actions
    strictly inside the clip range and finite for those that rounded to the bound."""
    if eps is None:
        eps = 1e-6 if y.dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-12
    return torch.atanh(y.clamp(-1.0 + eps, 1.0 - eps))


def squashed_log_prob_of_normalized(
    mean: Tensor, log_std: Tensor, y: Tensor, log_scale_sum: float, eps: float | None = None
) -> Tensor:
    """Log-density of the scaled action whose normalised value is ``y`` in (-1, 1).

    ``u = atanh(y)`` is recovered after clipping ``y`` to ``[-1 + eps, 1 - eps]`` (default eps:
    1e-6 in float32, 1e-12 in float64), so actions that rounded to the bound get a finite,
    very low density instead of -inf. Actions strictly inside the clip range are exact.
    """
    return squashed_log_prob_of_pre_tanh(mean, log_std, pre_tanh_of_normalized(y, eps), log_scale_sum)
