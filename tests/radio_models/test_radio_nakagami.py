"""Nakagami-m fading: closed form via the regularised incomplete gamma function."""

import numpy as np
import pytest
from scipy.special import erfc

import radio_models as rm
from radio_models.base import LinkBatch


def m3_closed_form(u):
    """docs/reference.md §5: m = 3, exponent 2, u = d / R: exp(-3u^2)(1 + 3u^2 + 4.5u^4)."""
    u2 = np.asarray(u) ** 2
    return np.exp(-3 * u2) * (1 + 3 * u2 + 4.5 * u2 * u2)


def evaluate(model, d):
    links = LinkBatch.from_distances(np.atleast_1d(np.asarray(d, dtype=float)))
    return model.evaluate(links, np.random.default_rng(0), 8).success_probability


def test_m3_at_reference_range_is_0_4232():
    model = rm.create("nakagami", {"m": 3, "path_loss_exponent": 2, "reference_range_m": 100.0})
    # exp(-3) * (1 + 3 + 4.5) = 8.5 * 0.049787 = 0.42319
    assert evaluate(model, 100.0)[0] == pytest.approx(0.4232, abs=1e-4)


@pytest.mark.parametrize("u", [0.25, 0.5, 0.8, 1.2, 1.5, 2.0])
def test_m3_polynomial_formula_at_other_distances(u):
    # cutoff 1e-6 keeps 2 R in range (P_s(2R) = 85 exp(-12) = 5.2e-4)
    model = rm.create(
        "nakagami", {"m": 3, "path_loss_exponent": 2, "reference_range_m": 100.0, "cutoff_probability": 1e-6}
    )
    assert evaluate(model, 100.0 * u)[0] == pytest.approx(m3_closed_form(u), rel=1e-9, abs=1e-12)


def test_m3_with_link_budget_instead_of_reference_range():
    # R is where the free-space mean SNR equals the threshold: the free-space model's range.
    fs_range = rm.create("free_space").max_range_m
    model = rm.create("nakagami", {"m": 3})
    assert evaluate(model, fs_range)[0] == pytest.approx(0.4232, abs=1e-4)
    assert evaluate(model, 0.5 * fs_range)[0] == pytest.approx(m3_closed_form(0.5), rel=1e-6)


def test_rayleigh_m1_is_exponential():
    # m = 1: P_s = exp(-theta / P) = exp(-(d/R)^n); n = 3, d = 0.7 R: exp(-0.343) = 0.70961
    model = rm.create("nakagami", {"m": 1, "path_loss_exponent": 3, "reference_range_m": 200.0})
    assert evaluate(model, 140.0)[0] == pytest.approx(np.exp(-0.343), rel=1e-9)


def test_distance_dependent_m_like_veins():
    model = rm.create(
        "nakagami", {"distance_dependent_m": True, "path_loss_exponent": 2, "reference_range_m": 100.0}
    )
    np.testing.assert_array_equal(model.shape_parameter([10, 79.9, 80, 300]), [1.5, 1.5, 0.75, 0.75])
    # m = 1.5 at d = 50 m, x = theta / P = 0.25: Q(1.5, 0.375) = erfc(sqrt(x)) + 2 sqrt(x/pi) e^-x
    x = 1.5 * 0.25
    expected_near = erfc(np.sqrt(x)) + 2 * np.sqrt(x / np.pi) * np.exp(-x)
    assert evaluate(model, 50.0)[0] == pytest.approx(expected_near, rel=1e-9)


@pytest.mark.parametrize("m, u", [(0.75, 1.3), (1.5, 0.8), (3.0, 1.0), (5.0, 1.1)])
def test_closed_form_matches_monte_carlo_gamma_power(m, u):
    # Independent check: power ~ Gamma(shape m, scale P/m), success iff power >= theta.
    model = rm.create("nakagami", {"m": m, "path_loss_exponent": 2, "reference_range_m": 100.0})
    p = evaluate(model, 100.0 * u)[0]
    n = 200_000
    power = np.random.default_rng(7).gamma(m, 1.0 / m, size=n)  # mean power 1
    theta = u**2  # theta / P = (d / R)^2
    hits = np.count_nonzero(power >= theta)
    sd = np.sqrt(n * p * (1 - p))
    assert abs(hits - n * p) < 4.5 * sd


def test_max_range_is_where_success_reaches_cutoff():
    model = rm.create("nakagami", {"m": 3, "reference_range_m": 100.0, "cutoff_probability": 0.01})
    r = model.max_range_m
    assert m3_closed_form(r / 100.0) == pytest.approx(0.01, rel=1e-6)
    links = LinkBatch.from_distances([r * 0.99, r * 1.01])
    q = model.evaluate(links, np.random.default_rng(0), 8)
    np.testing.assert_array_equal(q.in_range, [True, False])


def test_shadowing_averages_into_reach_probability():
    model = rm.create("nakagami", {"m": 3, "reference_range_m": 100.0, "shadowing_sigma_db": 4.0})
    n = 40_000
    links = LinkBatch.from_distances(np.full(n, 120.0))
    p = model.evaluate(links, np.random.default_rng(3), 8).success_probability
    # Mean over shadowing draws equals the Gauss-Hermite average used for the range.
    expected = model.reach_probability(np.array([120.0]))[0]
    assert p.mean() == pytest.approx(expected, abs=4 * p.std() / np.sqrt(n))
    assert p.std() > 0.05  # the shadowing does vary the success probability


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"m": 0.2}, "m"),
        ({"m_far": 0}, "m_far"),
        ({"distance_dependent_m": "yes"}, "distance_dependent_m"),
        ({"reception": "nist"}, "reception"),
        ({"reference_range_m": 0}, "reference_range_m"),
        ({"path_loss_exponent": 11}, "path_loss_exponent"),
    ],
)
def test_bad_parameters(params, parameter):
    with pytest.raises(rm.RadioParameterError) as info:
        rm.create("nakagami", params)
    assert info.value.parameter == parameter
