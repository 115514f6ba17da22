"""The mixing-rule contract: how a referential policy theta~ is mixed into an agent's theta.

A rule decides, for B replicas at once (each of a different agent), the mixture metric zeta of

    theta <- theta + zeta (theta~ - theta)                                   (eq. 10)

Everything else is done around it: CommMix collects what the rule says it needs, this module
applies zeta and keeps non-finite values out of the parameters. A rule is a subclass of
:class:`MixingRule` with

- ``needs``: what the rule needs besides theta and theta~, a subset of ``{"rewards",
  "replay"}``. ``rewards``: each responder also sends the sum of its last ``reward_window``
  stored rewards (RS-PPS's reward buffer, 32 bits more per segment), and the context holds the
  agent's own sum plus those already mixed in this round (``weight_self``) and the replica's mean
  (``weight_ref``). ``replay``: the context holds ``samples`` transitions of the agent's own replay
  buffer, its critics and its temperature (:class:`ReplayInputs`, what the MERL advantage of
  eq. 19 needs). Every context holds the policy layout (``spec``) and ``mixed_before``, the
  replicas the agent already mixed in this round.
- ``zeta(theta, theta_ref, ctx)``: ``theta, theta_ref: [B, d]`` -> ``[B]`` zeta in [0, 1]
  (0: not mixed), or a :class:`Zeta` that also marks replicas the rule could not evaluate
  (``skipped``: never mixed, counted as non-finite skips) and carries diagnostics (A+, q, the
  bound, whether zeta is at a cap) for the metrics.
- its parameters as keyword arguments of ``__init__`` (a scenario's ``comm.rule_params``).

The four built-ins (``average``, ``fixed``, ``regulated``, ``reward_weighted``) are in
:mod:`learners.mixing`. :func:`apply_rule` is the one way a rule is applied: a replica whose
theta~ is not finite is replaced by theta before the rule sees it and never mixed; a zeta outside
[0, 1] or not finite where the rule did not skip, or of the wrong shape, is a
:class:`RuleOutputError` (the rule is broken, not the data).

This module imports nothing of SimPy, SUMO or ``cosim``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import Tensor

from .policy import PolicySpec

__all__ = ["NEEDS", "Critic", "MixContext", "MixResult", "MixingRule", "ReplayInputs", "RuleOutputError", "Zeta",
           "apply_rule"]

NEEDS: frozenset[str] = frozenset({"rewards", "replay"})
"""What a rule may ask for besides theta and theta~ (see the module docstring)."""

Critic = Callable[[Tensor, Tensor], Tensor]
"""min(Q1, Q2) of each replica's agent: ``(obs[B, n, obs_dim], scaled actions[B, n, A]) -> [B, n]``."""


@dataclass
class ReplayInputs:
    """What a rule that needs ``replay`` gets (the MERL advantage of eq. 19): M replay samples of
    each agent (states, pre-tanh actions, behaviour log-probs), its critics' min Q there and as a
    function, its temperature, standard normal noise ``[B, K, M, A]`` for the expectations over
    actions, and the discount gamma."""

    obs: Tensor
    pre_tanh: Tensor
    behaviour_log_prob: Tensor
    min_q: Tensor
    alpha: Tensor
    noise: Tensor
    gamma: float
    critic: Critic


@dataclass
class MixContext:
    """What a rule sees besides theta and theta~, for B replicas. Fields a rule did not ask for
    (``needs``) are None."""

    spec: PolicySpec
    mixed_before: Tensor | None = None  # [B]: replicas this agent already mixed in this round
    weight_self: Tensor | None = None  # [B], rewards: own reward sum + those mixed this round
    weight_ref: Tensor | None = None  # [B], rewards: the replica's (mean of its responders')
    replay: ReplayInputs | None = None  # replay: M samples, critics, alpha of each agent


@dataclass
class Zeta:
    """A rule's answer with more than zeta: ``value [B]`` in [0, 1] where not ``skipped``;
    ``skipped [B]`` replicas the rule could not evaluate (e.g. a non-finite advantage), never
    mixed; ``advantage``, ``q``, ``bound`` (NaN where not computed) and ``capped`` for the
    metrics. Any of them may be None."""

    value: Tensor
    skipped: Tensor | None = None
    advantage: Tensor | None = None
    q: Tensor | None = None
    bound: Tensor | None = None
    capped: Tensor | None = None


@dataclass
class MixResult:
    """Per replica (``[B]`` each): whether it was mixed and with what.

    ``zeta`` is the metric applied (0 where not mixed); ``advantage`` is A+, ``q`` the Fisher
    quadratic form and ``bound`` the upper bound of zeta before safety factor and cap, as the
    rule reported them (NaN where not computed); ``capped`` marks mixes whose zeta is at the
    rule's cap; ``nonfinite`` marks replicas skipped because theta~ was not finite or the rule
    could not evaluate them.
    """

    theta: Tensor
    mixed: Tensor
    zeta: Tensor
    advantage: Tensor
    bound: Tensor
    nonfinite: Tensor
    q: Tensor
    capped: Tensor


class RuleOutputError(ValueError):
    """A rule returned something that is not a zeta per replica in [0, 1] (message says what)."""


class MixingRule(ABC):
    """A mixing rule (see the module docstring). Subclasses set ``needs`` and implement
    :meth:`zeta`; their ``__init__`` keyword arguments are the rule's parameters.

    ``samples`` (M) and ``entropy_samples`` (K) size the ``replay`` inputs, ``reward_window``
    the ``rewards`` sums; they matter only for rules that need those. ``comm_keys`` maps
    ``__init__`` parameters to keys of a scenario's ``comm:`` section that hold them (the
    built-ins' options are such keys, e.g. ``comm.zeta``); any other parameter comes from
    ``comm.rule_params``.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    comm_keys: ClassVar[dict[str, str]] = {}
    samples: int = 50
    entropy_samples: int = 4
    reward_window: int = 256

    @abstractmethod
    def zeta(self, theta: Tensor, theta_ref: Tensor, ctx: MixContext) -> Tensor | Zeta:
        """zeta per replica (``[B]``, in [0, 1]) of mixing ``theta_ref[B, d]`` into ``theta[B, d]``."""


def _vector(value, name: str, b: int, dtype: torch.dtype | None = None) -> Tensor:
    if not isinstance(value, Tensor):
        raise RuleOutputError(f"zeta() returned {name} of type {type(value).__name__}, not a torch.Tensor")
    if tuple(value.shape) != (b,):
        raise RuleOutputError(f"zeta() returned {name} of shape {tuple(value.shape)}; expected ({b},), one per replica")
    if dtype is torch.bool:
        if value.dtype is not torch.bool:
            raise RuleOutputError(f"zeta() returned {name} of dtype {value.dtype}; expected torch.bool")
        return value
    if not (value.dtype.is_floating_point or value.dtype in (torch.int32, torch.int64)):
        raise RuleOutputError(f"zeta() returned {name} of dtype {value.dtype}; expected a floating-point tensor")
    return value.to(dtype) if dtype is not None else value


def apply_rule(rule: MixingRule, theta: Tensor, theta_ref: Tensor, ctx: MixContext) -> MixResult:
    """Mix B referential policies ``theta_ref[B, d]`` into ``theta[B, d]`` with ``rule``.

    ``theta_ref`` holds the agent's own values outside the shared mask, so only shared
    parameters move. A replica whose theta~ is not finite is shown to the rule as theta itself
    and never mixed; one the rule skips is never mixed; both count in ``nonfinite``. Raises
    :class:`RuleOutputError` when the rule's answer is not a valid zeta per replica.
    """
    b = theta.shape[0]
    dtype = theta.dtype
    nan = torch.full((b,), math.nan, dtype=dtype)
    finite_ref = torch.isfinite(theta_ref).all(dim=1)
    v = theta_ref - theta
    v = torch.where(finite_ref.unsqueeze(1), v, torch.zeros_like(v))
    safe_ref = theta_ref if bool(finite_ref.all()) else torch.where(finite_ref.unsqueeze(1), theta_ref, theta)
    out = rule.zeta(theta, safe_ref, ctx)
    answer = out if isinstance(out, Zeta) else Zeta(out)
    zeta = _vector(answer.value, "zeta", b, dtype)
    skipped = (torch.zeros(b, dtype=torch.bool) if answer.skipped is None
               else _vector(answer.skipped, "skipped", b, torch.bool))
    judged = ~skipped & finite_ref
    bad = judged & ~(torch.isfinite(zeta) & (zeta >= 0) & (zeta <= 1))
    if bool(bad.any()):
        shown = ", ".join(f"{x:g}" for x in zeta[bad][:3].tolist())
        raise RuleOutputError(f"zeta() returned {int(bad.sum())} of {b} values outside [0, 1] or not finite "
                              f"({shown}); a replica the rule cannot evaluate belongs in Zeta.skipped")
    advantage, q, bound = (nan.clone() if x is None else _vector(x, name, b, dtype).clone()
                           for x, name in ((answer.advantage, "advantage"), (answer.q, "q"), (answer.bound, "bound")))
    q[~finite_ref] = math.nan
    bound[~finite_ref] = math.nan
    nonfinite = ~finite_ref | skipped
    mixed = ~nonfinite & (zeta > 0)
    zeta = torch.where(mixed, zeta, torch.zeros_like(zeta))
    capped = torch.zeros_like(mixed) if answer.capped is None else mixed & _vector(answer.capped, "capped", b, torch.bool)
    new = theta + zeta.unsqueeze(1) * v
    return MixResult(new, mixed, zeta, advantage, bound, nonfinite, q, capped)
