"""``SACConfig.compile``: the fleet's three update passes through ``torch.compile`` give the
eager numbers to float tolerance, the same numbers run to run, and fall back to eager (with a
warning) where compiling fails. Compiling takes a few seconds per graph (inductor, real C++)."""

from __future__ import annotations

import os
import shutil
import warnings

import pytest
import torch

from learners import SAC, SACConfig, SACFleet
from learners.nets import NARROW_INPUT, relu, stacked_linear
from learners_testkit import HIGH, LOW, OBS_DIM, collect, full_state, small_config

SEEDS = [21, 22, 23]
needs_cxx = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None, reason="inductor's CPU kernels need a C++ compiler"
)
# every agent, then a subset (a second agent count: the passes recompile generic in it), with
# policy_delay 3 the policy pass runs at the 1st, 4th and 7th update of each agent (agents 0
# and 1 sit out one call each)
MASKS = [None, None, [True, False, True], None, None, [False, True, True], None]


def run_updates(cfg: SACConfig, masks=MASKS) -> tuple[SACFleet, list]:
    fleet = SACFleet(len(SEEDS), OBS_DIM, LOW, HIGH, cfg, seeds=SEEDS)
    collect(fleet, None, steps=16, seed=5)
    stats = [fleet.update(mask=m) for m in masks]
    return fleet, stats


@pytest.fixture(scope="module")
def eager_and_compiled():
    cfg = small_config()
    eager = run_updates(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = run_updates(SACConfig(**{**cfg.to_dict(), "compile": True}))
    fallbacks = [str(w.message) for w in caught if "torch.compile failed" in str(w.message)]
    assert not fallbacks, fallbacks
    return eager, compiled


@needs_cxx
def test_a_compiled_fleet_gives_the_eager_numbers_to_float_tolerance(eager_and_compiled):
    (eager, eager_stats), (compiled, compiled_stats) = eager_and_compiled
    assert compiled.policy_updates.tolist() == eager.policy_updates.tolist() == [2, 2, 3]
    for a, b in zip(eager_stats, compiled_stats):
        for key, value in a.as_dict().items():
            # NaN: an agent that sat out (UpdateStats.empty)
            torch.testing.assert_close(b.as_dict()[key], value, rtol=1e-10, atol=1e-12, equal_nan=True)
    ours, theirs = full_state(compiled), full_state(eager)
    assert ours.keys() == theirs.keys()
    for key in theirs:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-10, atol=1e-12)
    # not a disguised eager run: every pass still runs its compiled code
    assert all(p.compiled is not None for p in compiled._passes)


@needs_cxx
def test_a_compiled_fleet_repeats_its_numbers(eager_and_compiled):
    _, (compiled, _) = eager_and_compiled
    again, _ = run_updates(compiled.config)
    ours, theirs = full_state(again), full_state(compiled)
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key


@needs_cxx
def test_compiled_bfloat16_products_agree_with_eager_bfloat16():
    cfg = small_config(dtype="float32", matmul_dtype="bfloat16", hidden=(32, 32))
    (_, eager), (_, compiled) = (
        run_updates(c, masks=[None, None]) for c in (cfg, SACConfig(**{**cfg.to_dict(), "compile": True}))
    )
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b.critic_loss, a.critic_loss, rtol=2e-2, atol=1e-4)
        torch.testing.assert_close(b.q_mean, a.q_mean, rtol=2e-2, atol=1e-3)


def test_a_fleet_whose_compiler_fails_warns_and_updates_eagerly():
    """A real failure of the compiler stack: inductor pointed at a C++ compiler that does not
    exist, its caches off so that it has to compile."""
    cfg = small_config()
    eager, _ = run_updates(cfg, masks=[None, None])
    torch._dynamo.reset()
    patch = {"cpp.cxx": ("/nonexistent/c++",), "fx_graph_cache": False, "autotune_local_cache": False}
    with (
        torch._inductor.config.patch(patch),
        torch._functorch.config.patch(enable_autograd_cache=False),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        fallback, _ = run_updates(SACConfig(**{**cfg.to_dict(), "compile": True}), masks=[None, None])
    torch._dynamo.reset()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("torch.compile failed" in m and "eagerly" in m for m in messages), messages
    ours, theirs = full_state(fallback), full_state(eager)
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key


def test_compile_is_a_bool_and_a_fleet_option():
    with pytest.raises(ValueError, match="SACConfig.compile"):
        SACConfig(compile="yes")
    with pytest.raises(ValueError, match="option of learners.SACFleet"):
        SAC(OBS_DIM, LOW, HIGH, small_config(compile=True), seed=0)


@needs_cxx
def test_the_compiled_relu_has_relus_gradient():
    """``nets.relu`` under ``torch.compile`` (a float mask from the output) against
    ``torch.relu``: same values, same gradient, zeros included."""
    x = torch.tensor([[-2.0, -0.0, 0.0, 1e-30, 3.0], [0.5, -1e-30, 7.0, -4.0, 0.0]], dtype=torch.float64)
    grad = torch.arange(1.0, 11.0, dtype=torch.float64).view(2, 5)

    def through(fn):
        leaf = x.clone().requires_grad_()
        out = fn(leaf * 1.0)  # a fresh tensor, as a matmul output is
        (g,) = torch.autograd.grad(out, leaf, grad)
        return out.detach(), g

    torch._dynamo.reset()
    compiled = through(torch.compile(relu, fullgraph=True))
    expected = through(torch.relu)
    assert torch.equal(compiled[0], expected[0])
    assert torch.equal(compiled[1], expected[1])
    assert compiled[1].tolist() == [[0.0, 0.0, 0.0, 4.0, 5.0], [6.0, 0.0, 8.0, 0.0, 0.0]]


@needs_cxx
@pytest.mark.parametrize("in_dim", [1, 7, NARROW_INPUT, NARROW_INPUT + 1])
@pytest.mark.parametrize("input_grad", [False, True])
def test_the_compiled_stacked_linear_matches_the_eager_one(in_dim, input_grad):
    """``nets.stacked_linear`` traced (bias added after the product; multiply-adds forward and
    BLAS backward for a narrow input) against the eager ``baddbmm``: values and the gradients
    of input, weight and bias, in float64, with and without a gradient for the input (the
    critic loss / the policy loss through the critics)."""
    gen = torch.Generator().manual_seed(in_dim)
    x, w, b = (torch.randn(shape, generator=gen, dtype=torch.float64) for shape in
               ((3, 5, in_dim), (3, in_dim, 4), (3, 4)))
    grad = torch.randn(3, 5, 4, generator=gen, dtype=torch.float64)

    def through(fn):
        leaves = [x.clone().requires_grad_(input_grad), w.clone().requires_grad_(), b.clone().requires_grad_()]
        out = fn(*leaves)
        wanted = leaves if input_grad else leaves[1:]
        return [out.detach(), *torch.autograd.grad(out, wanted, grad)]

    torch._dynamo.reset()
    compiled = through(torch.compile(stacked_linear, fullgraph=True))
    expected = through(lambda *a: torch.baddbmm(a[2].unsqueeze(-2), a[0], a[1]))
    for got, want in zip(compiled, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
