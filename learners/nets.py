"""Stacked (batched-over-agents) MLPs written as plain tensor functions.

A *stacked* linear layer holds the weights of n agents in one tensor ``W[n, in, out]`` and
``b[n, out]``; its forward is one batched matmul, ``baddbmm(b, x, W)`` with ``x[n, B, in]``.
Storing ``[in, out]`` (the transpose of ``nn.Linear``'s ``[out, in]``) makes autograd return
weight gradients already contiguous in the storage layout (``x^T @ grad``), which the fused
Adam kernel needs; the flat *policy vector* nevertheless uses the ``nn.Linear`` orientation
(see ``learners.policy``), and views of it are fed to the same functions as ``W^T`` (BLAS
reads transposed operands without a copy).

The twin soft Q networks of an agent are stacked once more: ``W[n, 2, in, out]``, and
evaluated as ``2n`` networks in one call.

Everything here is free of in-place operations on its inputs, so it works under autograd and
``torch.func`` transforms.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from .squash import bounded_log_std


class LayerSlice(NamedTuple):
    """Where one parameter tensor of a policy lives in the flat policy vector."""

    name: str
    start: int
    stop: int
    shape: tuple[int, ...]


def linear_shapes(
    in_dim: int, hidden: Sequence[int], out_dim: int
) -> list[tuple[str, tuple[int, ...]]]:
    """(name, per-agent shape) of an MLP in->hidden...->out, ``nn.Linear`` orientation."""
    out: list[tuple[str, tuple[int, ...]]] = []
    prev = in_dim
    for j, width in enumerate(hidden):
        out.append((f"fc{j}.weight", (width, prev)))
        out.append((f"fc{j}.bias", (width,)))
        prev = width
    out.append(("out.weight", (out_dim, prev)))
    out.append(("out.bias", (out_dim,)))
    return out


def actor_shapes(obs_dim: int, act_dim: int, hidden: Sequence[int]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of the policy: hidden ReLU layers, then a mean head and a log-std head."""
    body = linear_shapes(obs_dim, hidden, act_dim)[:-2]
    last = hidden[-1]
    return body + [
        ("mean.weight", (act_dim, last)),
        ("mean.bias", (act_dim,)),
        ("log_std.weight", (act_dim, last)),
        ("log_std.bias", (act_dim,)),
    ]


def critic_shapes(obs_dim: int, act_dim: int, hidden: Sequence[int]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of one soft Q network: input is concat(obs, normalised action)."""
    return linear_shapes(obs_dim + act_dim, hidden, 1)


def layout_of(shapes: Sequence[tuple[str, tuple[int, ...]]]) -> list[LayerSlice]:
    """Contiguous slices of a flat vector holding ``shapes`` in order."""
    out, start = [], 0
    for name, shape in shapes:
        size = 1
        for s in shape:
            size *= s
        out.append(LayerSlice(name, start, start + size, tuple(shape)))
        start += size
    return out


def storage_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-agent storage shape of a parameter given its ``nn.Linear`` shape (weights are
    stored transposed, ``[in, out]``; biases unchanged)."""
    return tuple(reversed(shape)) if len(shape) == 2 else tuple(shape)


# Inputs this narrow (a critic's observation and action, a policy's observation) make a
# memory-bound GEMM; traced by torch.compile, ``_NarrowLinear`` computes them as K fused
# multiply-adds instead (inductor's unrolled-reduction limit is 8).
NARROW_INPUT = 8


def stacked_linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """y[n, B, out] = x[n, B, in] @ weight[n, in, out] + bias[n, out].

    A layer with one output (a Q value, a 1-D action's mean or log-std) is a batched
    matrix-vector product: BLAS runs it as a GEMM with N = 1 at about a tenth of the speed of
    a multiply-and-sum over the input axis (and its backward, a K = 1 outer product, as badly),
    so it is computed elementwise: same result up to the order of the sum.

    Traced by ``torch.compile`` the bias is added after the product rather than copied into
    its output first (``baddbmm``), so inductor fuses the addition into the kernel that
    follows (the ReLU) and saves a pass over the activations; a narrow input goes through
    ``_NarrowLinear``.
    """
    if weight.shape[-1] == 1:
        return (x * weight.transpose(-1, -2)).sum(-1, keepdim=True) + bias.unsqueeze(-2)
    if torch.compiler.is_compiling():
        if weight.shape[-2] <= NARROW_INPUT:
            return _NarrowLinear.apply(x, weight, bias)
        return torch.bmm(x, weight) + bias.unsqueeze(-2)
    return torch.baddbmm(bias.unsqueeze(-2), x, weight)


class _NarrowLinear(torch.autograd.Function):
    """``stacked_linear`` for an input of at most ``NARROW_INPUT`` features, for compiled passes.

    The forward is written as ``in`` broadcast multiply-adds, which inductor fuses with the bias
    and the ReLU after it into one kernel that writes the activation once (a GEMM with K = 7
    writes it, then the ReLU kernel reads and writes it again); the backward stays on BLAS
    (``x^T @ grad`` and ``grad @ W^T``), which a traced multiply-add would turn into a strided
    reduction per input feature. About 3 % of a compiled update at the paper's size."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        y = bias.unsqueeze(-2) + x[..., 0:1] * weight[..., 0:1, :]
        for k in range(1, x.shape[-1]):
            y = y + x[..., k : k + 1] * weight[..., k : k + 1, :]
        return y

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, _ = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        return (
            torch.bmm(grad, weight.transpose(-1, -2)) if need_x else None,
            torch.bmm(x.transpose(-1, -2), grad) if need_w else None,
            grad.sum(-2) if need_b else None,
        )


class _ReLUByItsOutput(torch.autograd.Function):
    """ReLU that saves its output and multiplies the gradient by sign(output), for compiled
    passes. Traced from ``torch.relu``, AOTAutograd saves a bool mask for every layer whose
    activation the backward does not otherwise need (the critics in the policy pass), and
    inductor's CPU kernels store bool masks about 40x slower than floats (12 against 0.3 ms for
    [18, 256, 256], torch 2.13, AVX-512): the compiled policy pass ran 2x slower than eager.
    The gradient is ReLU's: grad * 1 where the output is positive, grad * 0 where it is zero."""

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return torch.relu(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        return grad * torch.sign(out)


def relu(x: Tensor) -> Tensor:
    """ReLU of a fresh matmul output: in place when eager (``baddbmm``'s backward does not
    need its output), by its output when traced by ``torch.compile`` (``_ReLUByItsOutput``)."""
    if torch.compiler.is_compiling():
        return _ReLUByItsOutput.apply(x)
    return torch.relu_(x)


def head(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """An output layer (Q value, mean, log-std) in the parameters' precision, also inside
    ``torch.autocast``: these outputs feed the losses and the squashing, where bfloat16's
    8-bit mantissa would quantise Q values and log-probabilities (``SACConfig.matmul_dtype``)."""
    with torch.autocast(x.device.type, enabled=False):
        return stacked_linear(x.to(weight.dtype), weight, bias)


def actor_forward(
    params: Sequence[Tensor], obs: Tensor, log_std_min: float, log_std_max: float
) -> tuple[Tensor, Tensor]:
    """Batched policy head: ``params`` in ``actor_shapes`` order, each ``[n, *storage_shape]``;
    ``obs[n, B, obs_dim]`` -> ``(mean[n, B, A], log_std[n, B, A])`` with the smooth bound."""
    h = obs
    n_hidden = (len(params) - 4) // 2
    for j in range(n_hidden):
        h = relu(stacked_linear(h, params[2 * j], params[2 * j + 1]))
    mean = head(h, params[-4], params[-3])
    raw = head(h, params[-2], params[-1])
    return mean, bounded_log_std(raw, log_std_min, log_std_max)


def twin_critic_forward(params: Sequence[Tensor], obs: Tensor, act_norm: Tensor) -> Tensor:
    """Both soft Q networks of n agents at once.

    ``params`` in ``critic_shapes`` order, each ``[n, 2, *storage_shape]`` (0/1 = Q1/Q2);
    ``obs[n, B, obs_dim]``, ``act_norm[n, B, A]`` (actions mapped to [-1, 1]).
    Returns ``q[n, 2, B]``.
    """
    n, batch = obs.shape[0], obs.shape[1]
    x = torch.cat([obs, act_norm], dim=-1)
    h = x.unsqueeze(1).expand(n, 2, batch, x.shape[-1]).reshape(2 * n, batch, x.shape[-1])
    n_layers = len(params) // 2
    for j in range(n_layers):
        w = params[2 * j].reshape(2 * n, *params[2 * j].shape[2:])
        b = params[2 * j + 1].reshape(2 * n, params[2 * j + 1].shape[-1])
        h = relu(stacked_linear(h, w, b)) if j < n_layers - 1 else head(h, w, b)
    return h.view(n, 2, batch)
