"""Hyper-parameters of the (multi-agent) Soft Actor-Critic learners.

Defaults are the paper's Table IV (RSM-MASAC) unless a
field's comment says otherwise. ``SACConfig`` validates itself on construction and raises a
``ValueError`` (:class:`SACConfigError`) that names every offending field and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

_DTYPES = ("float32", "float64")
_MATMUL_DTYPES = ("float32", "bfloat16")


class SACConfigError(ValueError):
    """Every problem of a ``SACConfig`` at once; ``problems`` is a list of (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"SACConfig.{name} {text}" for name, text in self.problems))


@dataclass(frozen=True)
class SACConfig:
    """Configuration of one SAC learner (shared by every agent of a fleet).

    Attributes (Table IV value in brackets where the paper gives one):

    - ``buffer_size`` [1e5]: replay capacity per agent (oldest transitions are overwritten).
    - ``batch_size`` [256]: minibatch size per agent and update.
    - ``actor_lr`` [4e-5], ``critic_lr`` [3e-4], ``alpha_lr`` [3e-4]: Adam step sizes of the
      policy, the twin soft Q networks and log(alpha).
    - ``gamma`` [0.99]: discount factor.
    - ``tau`` [1e-3]: target smoothing coefficient (the paper's rho):
      target <- tau * online + (1 - tau) * target (Algorithm 1, line 17).
    - ``policy_delay`` [10]: the paper's e. The policy, alpha and targets are updated at the
      critic updates whose per-agent counter (before increment) is a multiple of it, i.e. at
      critic updates 1, 1 + e, 1 + 2e, ... (Algorithm 1, line 14 with counter starting at 0).
    - ``hidden`` [(256, 256)]: hidden widths of the policy (ReLU). The paper's "three fully
      connected layers with 256 hidden units" are three Linear layers, obs -> 256 -> 256 ->
      (mean, log-std): its Table V fixes the size, psi / rho_total = 2.179 Mbit per replica =
      68,098 parameters of 32 bits in every row, which is this network for 6 observations and
      one action. ``critic_hidden``: widths of each soft Q network; ``None`` means the same as
      ``hidden``.
    - ``init_alpha``: initial temperature. The paper does not give it. We default to 0.01,
      the value of the authors' code, and not to SAC's customary 1.0: the reward here is a
      normalised speed in [0, 1] per step, so alpha = 1 would make the entropy bonus
      (about 1-2 nats per step for a 1-D action) outweigh the task reward, and with
      alpha_lr 3e-4 applied only every ``policy_delay`` critic updates log(alpha) moves by at
      most ~3e-4 per policy update: getting from 1.0 down to 0.01 would take ~15k policy
      updates (~150k critic updates), a large part of a paper-sized run.
    - ``autotune_alpha``: learn alpha with eq. (9) (default True, as in the paper); if False
      alpha stays at ``init_alpha``.
    - ``target_entropy``: the entropy target H-bar of eq. (9); ``None`` means -dim(A).
    - ``log_std_min``, ``log_std_max`` [-5, 2]: bounds of the policy's log standard deviation.
      The raw head output x is mapped smoothly, CleanRL style:
      log_std = min + (max - min) * (tanh(x) + 1) / 2, so the bound never cuts the gradient
      (a hard clamp would, and the Fisher quadratic form of the mixing rule needs it).
    - ``grad_clip_norm``: if set, clip each agent's gradient norm (per network group: the
      policy; the pair of Q networks) to this value, like ``clip_grad_norm_`` on an
      independent learner. The authors' code used 0.5; default ``None`` = the paper.
    - ``adam_betas``, ``adam_eps``: Adam constants (PyTorch defaults).
    - ``min_buffer_size``: an agent takes part in ``update`` only once its buffer holds at
      least this many transitions; ``None`` means ``batch_size``.
    - ``shared_init``: if True (default) every agent starts from agent 0's initial weights, as
      the authors' code and every federated scheme do: mixing independently initialised
      networks mixes permuted hidden units, which makes q of the mixing bound large and zeta
      tiny. False gives each agent weights of its own.
    - ``dtype``: ``"float32"`` (default) or ``"float64"`` for networks and buffers.
    - ``matmul_dtype``: ``"float32"`` (default) or ``"bfloat16"``: the precision of the learning
      updates' matrix products (``SACFleet`` only; needs ``dtype`` float32). With bfloat16 the
      critic and policy losses are computed under ``torch.autocast``: each hidden layer
      multiplies bfloat16 copies of its input and weights (accumulating in float32) and passes
      bfloat16 activations on, while the output heads, the losses, the gradients, Adam and every
      stored parameter stay float32. On a CPU with AVX512-BF16 an update runs about 2x faster; the
      numbers change (activations keep 8 bits of mantissa), so it is a choice of the study, not
      the paper's setting. Acting, evaluation and the mixing rule always run in ``dtype``.
    - ``compile``: run the updates' three passes (soft Q target, critic loss, policy loss) through
      ``torch.compile`` (``SACFleet`` only; ``learners.losses``). Same formulas, fused kernels:
      the numbers agree with the eager update to float tolerance, not bit for bit, and repeat
      run to run. The first update of each process compiles (seconds with inductor's on-disk
      cache warm, up to a minute cold); on CPU it needs a C++ compiler, and where compiling
      fails the fleet warns and runs eagerly. Measured on a 2-core AVX-512 machine: float32
      updates 3-5 % faster, bfloat16 ones 10-50 %. Default False.
    """

    buffer_size: int = 100_000
    batch_size: int = 256
    actor_lr: float = 4e-5
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 1e-3
    policy_delay: int = 10
    hidden: tuple[int, ...] = (256, 256)
    critic_hidden: tuple[int, ...] | None = None
    init_alpha: float = 0.01
    autotune_alpha: bool = True
    target_entropy: float | None = None
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    grad_clip_norm: float | None = None
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    min_buffer_size: int | None = None
    shared_init: bool = True
    dtype: str = "float32"
    matmul_dtype: str = "float32"
    compile: bool = False

    def __post_init__(self) -> None:
        # Accept lists (YAML) for the tuple fields; store tuples so the config stays hashable.
        for name in ("hidden", "critic_hidden", "adam_betas"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

        problems: list[tuple[str, str]] = []

        def check(name: str, fn, *args, **kw) -> bool:
            try:
                fn(self, name, *args, **kw)
                return True
            except ValueError as exc:
                problems.append((name, str(exc).split(f"SACConfig.{name} ", 1)[-1]))
                return False

        buffer_ok = check("buffer_size", _check_int, minimum=1)
        batch_ok = check("batch_size", _check_int, minimum=1)
        check("policy_delay", _check_int, minimum=1)
        if buffer_ok and batch_ok and self.batch_size > self.buffer_size:
            problems.append(("batch_size", f"must be <= buffer_size ({self.buffer_size}), got {self.batch_size}"))
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha", "adam_eps"):
            check(name, _check_float, low=0.0, low_open=True)
        check("gamma", _check_float, low=0.0, high=1.0)
        check("tau", _check_float, low=0.0, high=1.0, low_open=True)
        check("hidden", _check_widths, allow_none=False)
        check("critic_hidden", _check_widths, allow_none=True)
        check("autotune_alpha", _check_bool)
        check("shared_init", _check_bool)
        check("compile", _check_bool)
        if self.target_entropy is not None:
            check("target_entropy", _check_float)
        low_ok = check("log_std_min", _check_float)
        high_ok = check("log_std_max", _check_float)
        if low_ok and high_ok and not self.log_std_min < self.log_std_max:
            problems.append(("log_std_min", "must be < log_std_max, got "
                             f"log_std_min={self.log_std_min}, log_std_max={self.log_std_max}"))
        if self.grad_clip_norm is not None:
            check("grad_clip_norm", _check_float, low=0.0, low_open=True)
        betas = self.adam_betas
        if (
            not isinstance(betas, tuple)
            or len(betas) != 2
            or not all(_is_real(b) and 0.0 <= b < 1.0 for b in betas)
        ):
            problems.append(("adam_betas", f"must be two numbers in [0, 1), got {betas!r}"))
        if self.min_buffer_size is not None:
            if check("min_buffer_size", _check_int, minimum=1) and buffer_ok:
                if self.min_buffer_size > self.buffer_size:
                    problems.append(("min_buffer_size", f"must be <= buffer_size ({self.buffer_size}), "
                                     f"got {self.min_buffer_size}"))
        if self.dtype not in _DTYPES:
            problems.append(("dtype", f"must be one of {_DTYPES}, got {self.dtype!r}"))
        if self.matmul_dtype not in _MATMUL_DTYPES:
            problems.append(("matmul_dtype", f"must be one of {_MATMUL_DTYPES}, got {self.matmul_dtype!r}"))
        elif self.matmul_dtype == "bfloat16" and self.dtype != "float32":
            problems.append(("matmul_dtype", f"bfloat16 needs dtype float32, got dtype {self.dtype!r}"))
        if problems:
            raise SACConfigError(problems)

    # -- derived values -------------------------------------------------------------------
    @property
    def q_hidden(self) -> tuple[int, ...]:
        """Hidden widths of each soft Q network."""
        return self.hidden if self.critic_hidden is None else self.critic_hidden

    @property
    def warmup_size(self) -> int:
        """Transitions an agent's buffer needs before it takes part in updates."""
        return self.batch_size if self.min_buffer_size is None else self.min_buffer_size

    def entropy_target(self, act_dim: int) -> float:
        """H-bar of eq. (9): ``target_entropy`` or -dim(A)."""
        return -float(act_dim) if self.target_entropy is None else float(self.target_entropy)

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    # -- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples become lists), suitable for YAML/JSON and ``torch.save``."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SACConfig":
        """Build from a mapping; unknown keys are an error (they are usually typos)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"SACConfig: unknown field(s) {unknown}; allowed fields are {sorted(known)}"
            )
        return cls(**dict(data))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(cfg: SACConfig, name: str, minimum: int) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"SACConfig.{name} must be an integer >= {minimum}, got {value!r}")


def _check_bool(cfg: SACConfig, name: str) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, bool):
        raise ValueError(f"SACConfig.{name} must be True or False, got {value!r}")


def _check_float(
    cfg: SACConfig,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    value = getattr(cfg, name)
    ok = _is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        if low is None and high is None:
            allowed = "a finite number"
        else:
            left = "(" if low_open else "["
            allowed = (
                f"a number in {left}{low if low is not None else '-inf'}, "
                f"{high if high is not None else 'inf'}{']' if high is not None else ')'}"
            )
        raise ValueError(f"SACConfig.{name} must be {allowed}, got {value!r}")


def _check_widths(cfg: SACConfig, name: str, allow_none: bool) -> None:
    value = getattr(cfg, name)
    if value is None and allow_none:
        return
    if (
        not isinstance(value, tuple)
        or len(value) == 0
        or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in value)
    ):
        allowed = "a non-empty sequence of positive integers"
        if allow_none:
            allowed += " or None"
        raise ValueError(f"SACConfig.{name} must be {allowed}, got {value!r}")
