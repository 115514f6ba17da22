"""Tanh-squashed, scaled Gaussian: log-probs against torch.distributions, stability, bounds."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import AffineTransform, Independent, Normal, TanhTransform, TransformedDistribution

from learners.squash import (
    ActionScale,
    bounded_log_std,
    squashed_log_prob_of_normalized,
    squashed_sample,
    tanh_log_abs_det,
)


def reference_distribution(mean, log_std, low, high):
    scale = (high - low) / 2
    center = (high + low) / 2
    base = Independent(Normal(mean, log_std.exp()), 1)
    return TransformedDistribution(base, [TanhTransform(), AffineTransform(center, scale)])


@pytest.mark.parametrize("dims", [1, 3])
def test_sample_log_prob_matches_transformed_distribution(dims):
    g = torch.Generator().manual_seed(0)
    low = torch.tensor([-3.0, -1.0, 0.0][:dims], dtype=torch.float64)
    high = torch.tensor([3.0, 2.0, 0.5][:dims], dtype=torch.float64)
    act = ActionScale.from_bounds(low.tolist(), high.tolist())
    mean = torch.randn(50, dims, generator=g, dtype=torch.float64)
    log_std = torch.rand(50, dims, generator=g, dtype=torch.float64) * 2 - 1.5
    noise = torch.randn(50, dims, generator=g, dtype=torch.float64)
    y, log_prob = squashed_sample(mean, log_std, noise, act.log_scale_sum)
    a = act.center(torch.float64) + act.scale(torch.float64) * y
    expected = reference_distribution(mean, log_std, low, high).log_prob(a)
    torch.testing.assert_close(log_prob, expected, rtol=1e-9, atol=1e-9)
    # the inverse path (given actions) agrees too
    back = squashed_log_prob_of_normalized(mean, log_std, y, act.log_scale_sum)
    torch.testing.assert_close(back, expected, rtol=1e-7, atol=1e-7)
    # the log(scale) correction is really there: without it the densities differ
    assert not torch.allclose(log_prob + act.log_scale_sum, expected)


def test_log_prob_integrates_to_one_in_1d():
    """The density of the scaled action integrates to 1 over [low, high]."""
    act = ActionScale.from_bounds(-3.0, 3.0)
    mean = torch.tensor([[0.3]], dtype=torch.float64)
    log_std = torch.tensor([[-0.2]], dtype=torch.float64)
    a = torch.linspace(-3, 3, 200_001, dtype=torch.float64)[1:-1]
    y = (a / 3.0).view(-1, 1)
    lp = squashed_log_prob_of_normalized(mean.expand(len(a), 1), log_std.expand(len(a), 1), y, act.log_scale_sum)
    integral = torch.trapezoid(lp.exp(), a)
    assert float(integral) == pytest.approx(1.0, abs=1e-4)


def test_tanh_correction_is_stable_for_large_inputs():
    u = torch.tensor([0.0, 1.0, 10.0, 30.0, -30.0, 100.0], dtype=torch.float32)
    stable = tanh_log_abs_det(u)
    assert bool(torch.isfinite(stable).all())
    # asymptote log(1 - tanh(u)^2) ~ log 4 - 2|u|
    assert float(stable[3]) == pytest.approx(math.log(4) - 60, rel=1e-6)
    assert float(stable[4]) == pytest.approx(math.log(4) - 60, rel=1e-6)
    naive = torch.log(1 - torch.tanh(u).square())
    assert not bool(torch.isfinite(naive[3]))  # why the stable form is needed
    exact = torch.log(1 - torch.tanh(u[:3].double()).square())
    torch.testing.assert_close(stable[:3].double(), exact, rtol=1e-6, atol=1e-6)


def test_bounded_log_std_is_smooth_and_within_bounds():
    raw = torch.linspace(-50, 50, 1001, dtype=torch.float64, requires_grad=True)
    out = bounded_log_std(raw, -5.0, 2.0)
    assert float(out.detach().min()) >= -5.0 and float(out.detach().max()) <= 2.0
    assert float(bounded_log_std(torch.tensor(0.0), -5.0, 2.0)) == pytest.approx(-1.5)
    (grad,) = torch.autograd.grad(out.sum(), raw)
    assert bool((grad >= 0).all())
    # unlike a clamp, the gradient is non-zero wherever the bound is approached (|raw| <= 5)
    assert bool((grad[450:551] > 1e-4).all())


def test_action_scale_validation():
    with pytest.raises(ValueError, match="low < high"):
        ActionScale.from_bounds([1.0], [1.0])
    with pytest.raises(ValueError, match="same non-zero length"):
        ActionScale.from_bounds([0.0, 1.0], [1.0])
    s = ActionScale.from_bounds(-1.5, 1.5)
    assert s.dim == 1 and s.log_scale_sum == pytest.approx(math.log(1.5))
