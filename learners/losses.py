"""The three passes of a fleet update as pure functions of stacked parameters and a minibatch.

A ``SACFleet`` update (Algorithm 1, lines 12-18 of the RSM-MASAC paper) runs three forward
passes: the soft Q target (eq. 6), the twin critics' loss (eq. 6) and the policy loss (eqs. 7-8).
Written as functions of tensors alone (no fleet state, no random draws, no in-place change of
an input), each can be traced whole by ``torch.compile``: its forward and, through
AOTAutograd, its backward become fused kernels (bias gradients, ReLU masks and the losses'
elementwise work in a few passes over the activations instead of one per operation), which is
where an eager update loses time to memory traffic. ``update_passes`` returns the eager or the
compiled set; both compute the same formulas, the compiled one to float tolerance.

Parameters are lists in ``learners.nets`` order with a leading agent axis; ``obs[n, B, obs]``,
``noise[n, B, A]``, ``alpha[n]``, ``reward[n, B]``, ``terminated[n, B]``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor

from .nets import actor_forward, twin_critic_forward
from .squash import squashed_sample


def _products(x: Tensor, matmul_dtype: str):
    """``torch.autocast`` to bfloat16 for ``matmul_dtype="bfloat16"`` (``SACConfig``), else nothing."""
    if matmul_dtype == "bfloat16":
        return torch.autocast(x.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def soft_q_target(
    actor: Sequence[Tensor],
    critic_target: Sequence[Tensor],
    next_obs: Tensor,
    noise: Tensor,
    alpha: Tensor,
    reward: Tensor,
    terminated: Tensor,
    *,
    gamma: float,
    log_std_min: float,
    log_std_max: float,
    log_scale_sum: float,
    matmul_dtype: str,
) -> Tensor:
    """Q_hat = r + gamma (1 - d) [min_x Qbar_x(s', a') - alpha log pi(a'|s')], a' ~ pi(.|s')
    drawn with ``noise`` (eqs. 6 and 8): ``[n, B]``. Call it under ``torch.no_grad()``."""
    with _products(next_obs, matmul_dtype):
        mean, log_std = actor_forward(actor, next_obs, log_std_min, log_std_max)
        y_next, logp_next = squashed_sample(mean, log_std, noise, log_scale_sum)
        q_next = twin_critic_forward(critic_target, next_obs, y_next)
        v_next = q_next.min(dim=1).values - alpha.unsqueeze(1) * logp_next
        return reward + gamma * (1.0 - terminated) * v_next


def critic_loss(
    critic: Sequence[Tensor], obs: Tensor, act_norm: Tensor, q_hat: Tensor, *, matmul_dtype: str
) -> tuple[Tensor, Tensor]:
    """J_Q(w_x) = 1/2 E[(Q_wx(s, a) - Q_hat)^2] summed over x = 1, 2 (eq. 6), per agent:
    ``(loss[n], q[n, 2, B])``. Summing the losses over agents before differentiating gives
    each agent exactly its own gradient."""
    with _products(obs, matmul_dtype):
        q = twin_critic_forward(critic, obs, act_norm)
    return 0.5 * (q - q_hat.unsqueeze(1)).square().mean(dim=2).sum(dim=1), q


def policy_loss(
    actor: Sequence[Tensor],
    critic: Sequence[Tensor],
    obs: Tensor,
    noise: Tensor,
    alpha: Tensor,
    *,
    log_std_min: float,
    log_std_max: float,
    log_scale_sum: float,
    matmul_dtype: str,
) -> tuple[Tensor, Tensor]:
    """J_pi = E[alpha log pi(a|s) - min_x Q_wx(s, a)] with a = f_theta(s; noise) (eqs. 7-8),
    through the given critics: ``(loss[n], log_prob[n, B])``."""
    with _products(obs, matmul_dtype):
        mean, log_std = actor_forward(actor, obs, log_std_min, log_std_max)
        y_pi, logp_pi = squashed_sample(mean, log_std, noise, log_scale_sum)
        q_pi = twin_critic_forward(critic, obs, y_pi).min(dim=1).values
    return (alpha.unsqueeze(1) * logp_pi - q_pi).mean(dim=1), logp_pi


class UpdatePasses(NamedTuple):
    """The three passes of an update with the fleet's constants bound (see ``update_passes``)."""

    soft_q_target: Callable[..., Tensor]
    critic_loss: Callable[..., tuple[Tensor, Tensor]]
    policy_loss: Callable[..., tuple[Tensor, Tensor]]


class _CompiledOrEager:
    """``fn`` with keyword constants bound, through ``torch.compile`` until compiling or running
    it fails (no C++ compiler, an unsupported platform); then, with one warning, eagerly for
    good. The passes are pure, so re-running a failed call eagerly is safe.

    ``fn`` itself is compiled (not a ``functools.partial`` of it, which dynamo would see as one
    frame for the three passes and recompile shape-generic), and shapes start static: a second
    agent count makes that axis, and only that one, symbolic."""

    def __init__(self, fn: Callable, **constants) -> None:
        self.eager = functools.partial(fn, **constants)
        self.compiled: Callable | None = torch.compile(fn, dynamic=None)

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args, **self.eager.keywords)
            except Exception as exc:  # noqa: BLE001 - any failure of the compiler stack
                self.compiled = None
                first_line = (str(exc).strip().splitlines() or [""])[0]
                warnings.warn(
                    f"SACConfig.compile: torch.compile failed ({type(exc).__name__}: {first_line}); "
                    "this fleet's updates run eagerly (same formulas, slower)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self.eager(*args)


def update_passes(
    *,
    gamma: float,
    log_std_min: float,
    log_std_max: float,
    log_scale_sum: float,
    matmul_dtype: str,
    compile: bool,
) -> UpdatePasses:
    """The three passes with a fleet's constants bound; ``compile=True`` wraps each in
    ``torch.compile`` (falling back to eager if that fails). Compiling costs tens of seconds
    the first time a shape is seen (inductor caches the result on disk for later processes)
    and is generic in the agent count after a second distinct count."""
    squash = dict(log_std_min=log_std_min, log_std_max=log_std_max, log_scale_sum=log_scale_sum)
    bound = [
        (soft_q_target, dict(gamma=gamma, matmul_dtype=matmul_dtype, **squash)),
        (critic_loss, dict(matmul_dtype=matmul_dtype)),
        (policy_loss, dict(matmul_dtype=matmul_dtype, **squash)),
    ]
    if compile:
        return UpdatePasses(*(_CompiledOrEager(fn, **kw) for fn, kw in bound))
    return UpdatePasses(*(functools.partial(fn, **kw) for fn, kw in bound))
