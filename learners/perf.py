"""Process-level performance settings for CPU training (opt-in; nothing here runs on import).

``tune_malloc()``: a fleet update allocates and frees tens to hundreds of MB of temporaries
(activations of [2 * chunk, batch, 256] and their gradients). With glibc's default malloc
settings the freed memory at the top of the heap is returned to the OS after every update
and faulted in again by the next one: at N = 100 agents we measured ~60k-90k minor page
faults and ~0.2 s of kernel time per update (about a fifth of the update). Raising the trim
threshold and the top pad (and fixing the mmap threshold at its 32 MiB maximum) keeps that
memory in the process; the update then runs 10-25 % faster (N = 13 / 100, 2 threads). The
cost is that the process keeps its peak heap instead of shrinking between updates.

Call it once at the start of a training process (the co-simulation's fleet process, the
benchmark). It is a no-op returning False where glibc's ``mallopt`` is not available.

``update_flops(config, obs_dim, act_dim)``: the matmul FLOPs of one agent's learning update,
the numerator of the benchmarks' "GFLOP/s" and "share of the FLOP floor" figures.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc <malloc.h> parameter numbers
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def tune_malloc(
    trim_threshold: int = 1 << 30,
    top_pad: int = 64 << 20,
    mmap_threshold: int = 32 << 20,
) -> bool:
    """Keep freed heap memory for reuse (see module docstring). Returns True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1
    ok &= mallopt(_M_TOP_PAD, int(top_pad)) == 1
    ok &= mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    return bool(ok)


def _layer_flops(widths, batch: int) -> list[int]:
    """2 * B * in * out per linear layer of an MLP with the given widths."""
    return [2 * batch * a * b for a, b in zip(widths[:-1], widths[1:])]


def update_flops(config, obs_dim: int, act_dim: int) -> tuple[float, float]:
    """Matmul FLOPs of one agent's learning update: ``(critic step, policy step)``.

    The critic step: the target (policy forward on s', two target critics forward), both
    critics forward, and their backward (weight gradients everywhere, input gradients except
    at the first layer, whose input is data). The policy step (every ``policy_delay`` critic
    steps; alpha and the targets add no matmuls): the policy forward and backward and both
    critics forward and backward to the action (input gradients through every layer). A
    layer's forward is F = 2 B in out; its weight gradient and its input gradient F each.
    Elementwise work is not counted: this is the floor a BLAS-bound update approaches.
    """
    batch = config.batch_size
    actor = _layer_flops([obs_dim, *config.hidden], batch) + [2 * 2 * batch * config.hidden[-1] * act_dim]
    critic = _layer_flops([obs_dim + act_dim, *config.q_hidden, 1], batch)
    fa, fq = sum(actor), sum(critic)
    critic_step = fa + 2 * fq + 2 * fq + 2 * (fq + (fq - critic[0]))
    policy_step = fa + (fa + (fa - actor[0])) + 2 * fq + 2 * fq
    return float(critic_step), float(policy_step)
