"""Free space, log-distance + log-normal shadowing, SNR threshold, link budget and range."""

import numpy as np
import pytest
from scipy.stats import chi2, norm

import radio_models as rm
from radio_models.base import LinkBatch
from radio_models.link_budget import LinkBudget, free_space_path_loss_db, thermal_noise_dbm


def binomial_bounds(n, p, z=4.0):
    sd = np.sqrt(n * p * (1 - p))
    return n * p - z * sd, n * p + z * sd


def test_free_space_reference_value():
    # 20 log10(4 pi 100 m 5.9e9 Hz / 299792458 m/s) = 20 log10(24730.6) = 87.865 dB
    assert free_space_path_loss_db(100.0, 5.9e9) == pytest.approx(87.86, abs=0.01)
    model = rm.create("free_space")
    assert model.median_path_loss_db(100.0) == pytest.approx(87.865, abs=1e-3)
    # +20 log10(2) = 6.02 dB per doubling of distance
    assert model.median_path_loss_db(200.0) - model.median_path_loss_db(100.0) == pytest.approx(6.0206, abs=1e-4)


def test_log_distance_ns3_defaults():
    model = rm.create("log_distance")
    # 46.6777 + 10 * 3 * log10(100) = 106.6777 dB
    assert model.median_path_loss_db(100.0) == pytest.approx(106.68, abs=0.01)
    assert model.median_path_loss_db(1.0) == pytest.approx(46.6777)
    links = LinkBatch.from_distances([100.0])
    assert model.sample_path_loss_db(links, np.random.default_rng(0))[0] == pytest.approx(106.6777)


def test_log_distance_parameters_and_free_space_reference():
    model = rm.create(
        "log_distance", {"exponent": 2.7, "reference_distance_m": 10.0, "reference_loss_db": None}
    )
    ref = free_space_path_loss_db(10.0, 5.9e9)  # 67.865 dB
    assert model.median_path_loss_db(10.0) == pytest.approx(ref)
    assert model.median_path_loss_db(1000.0) == pytest.approx(ref + 27.0 * 2.0)


def test_distances_below_min_distance_are_clamped():
    model = rm.create("free_space", {"min_distance_m": 2.0})
    links = LinkBatch.from_distances([0.0, 0.5, 2.0])
    pl = model.sample_path_loss_db(links, np.random.default_rng(0))
    assert np.all(np.isfinite(pl))
    np.testing.assert_allclose(pl, free_space_path_loss_db(2.0, 5.9e9))


def test_link_budget_noise_and_snr():
    # -173.98 dBm/Hz + 10 log10(10 MHz) = -103.98 dBm, + 9 dB noise figure = -94.98 dBm
    assert thermal_noise_dbm(10e6, 9.0) == pytest.approx(-94.98, abs=0.01)
    budget = LinkBudget()
    assert budget.noise_dbm == pytest.approx(-94.98, abs=0.01)
    # 20 dBm + 3 + 2 dBi - 100 dB - (-98 dBm) = 23 dB
    b = LinkBudget(tx_power_dbm=20, tx_antenna_gain_dbi=3, rx_antenna_gain_dbi=2, noise_floor_dbm=-98)
    assert b.snr_db(100.0) == pytest.approx(23.0)
    assert b.max_path_loss_db(23.0) == pytest.approx(100.0)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [({"bandwidth_hz": 0}, "bandwidth_hz"), ({"noise_figure_db": -1}, "noise_figure_db"), ({"tx_power_dbm": 99}, "tx_power_dbm")],
)
def test_link_budget_validation(kwargs, parameter):
    with pytest.raises(rm.RadioParameterError, match=parameter):
        LinkBudget(**kwargs)


def test_threshold_reception_and_max_range_without_shadowing():
    model = rm.create("free_space")
    r = model.max_range_m
    # With the defaults the budget is 20 dBm + 94.98 dB - 8 dB = 106.98 dB of path loss.
    assert model.median_path_loss_db(r) == pytest.approx(20.0 - thermal_noise_dbm(10e6, 9.0) - 8.0, abs=1e-6)
    assert 850 < r < 950
    q = model.evaluate(LinkBatch.from_distances([r * 0.999, r * 1.001]), np.random.default_rng(0), 8)
    np.testing.assert_array_equal(q.success_probability, [1.0, 0.0])
    np.testing.assert_array_equal(q.in_range, [True, False])


def test_explicit_max_range_overrides():
    model = rm.create("free_space", {"max_range_m": 150.0})
    assert model.max_range_m == 150.0
    q = model.evaluate(LinkBatch.from_distances([149.0, 151.0]), np.random.default_rng(0), 8)
    np.testing.assert_array_equal(q.in_range, [True, False])


def test_shadowing_std_and_mean_statistically():
    sigma = 6.0
    model = rm.create("log_distance", {"shadowing_sigma_db": sigma})
    n = 20_000
    links = LinkBatch.from_distances(np.full(n, 50.0))
    x = model.sample_path_loss_db(links, np.random.default_rng(11)) - model.median_path_loss_db(50.0)
    # sample variance: (n-1) s^2 / sigma^2 ~ chi2(n-1); two-sided 1e-4 bounds
    lo, hi = chi2.ppf([1e-4, 1 - 1e-4], n - 1) / (n - 1)
    assert lo * sigma**2 < x.var(ddof=1) < hi * sigma**2
    assert abs(x.mean()) < 4.0 * sigma / np.sqrt(n)


def test_shadowed_threshold_success_rate_matches_normal_cdf():
    # Put the median SNR 2 dB above the threshold; with sigma 4 dB the success probability
    # is Phi(2 / 4) = 0.6915.
    sigma = 4.0
    model = rm.create("free_space", {"shadowing_sigma_db": sigma, "max_range_m": 5000.0})
    budget_loss = 20.0 - thermal_noise_dbm(10e6, 9.0) - 8.0 - 2.0
    d = 10 ** ((budget_loss - free_space_path_loss_db(1.0, 5.9e9)) / 20.0)
    n = 20_000
    q = model.evaluate(LinkBatch.from_distances(np.full(n, d)), np.random.default_rng(5), 8)
    assert set(np.unique(q.success_probability)) <= {0.0, 1.0}
    lo, hi = binomial_bounds(n, norm.cdf(0.5))
    assert lo < q.success_probability.sum() < hi


def test_default_range_with_shadowing_uses_cutoff_probability():
    model = rm.create("log_distance", {"shadowing_sigma_db": 3.0, "cutoff_probability": 0.05})
    r = model.max_range_m
    margin = 20.0 - thermal_noise_dbm(10e6, 9.0) - 8.0 - model.median_path_loss_db(r)
    # At max range the probability that shadowing leaves enough margin is 5 %.
    assert norm.cdf(margin / 3.0) == pytest.approx(0.05, abs=1e-6)
    assert model.reach_probability(np.array([r]))[0] == pytest.approx(0.05, abs=1e-6)


def test_nist_reception_is_size_dependent_and_needs_an_80211p_rate():
    model = rm.create("free_space", {"reception": "nist", "data_rate_mbps": 12})
    assert model.reception.mcs.modulation == "16qam"
    links = LinkBatch.from_distances(np.linspace(100, 1500, 30))
    p = model.evaluate(links, np.random.default_rng(0), [8 * 100, 8 * 4480]).success_probability
    assert np.all(p[:, 0] >= p[:, 1])
    assert np.any(p[:, 0] > p[:, 1] + 0.01)
    assert np.all(np.diff(p[:, 1]) <= 1e-12)  # decreasing with distance
    with pytest.raises(rm.RadioParameterError, match="data_rate_mbps"):
        rm.create("free_space", {"reception": "nist", "data_rate_mbps": 10})


def test_same_seed_same_draws_different_seed_different():
    model = rm.create("free_space", {"shadowing_sigma_db": 5.0})
    links = LinkBatch.from_distances(np.linspace(10, 900, 100))
    a = model.sample_path_loss_db(links, np.random.default_rng(1))
    b = model.sample_path_loss_db(links, np.random.default_rng(1))
    c = model.sample_path_loss_db(links, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize(
    "name, params, parameter",
    [
        ("log_distance", {"exponent": 0}, "exponent"),
        ("log_distance", {"shadowing_sigma_db": -1}, "shadowing_sigma_db"),
        ("free_space", {"reception": "magic"}, "reception"),
        ("free_space", {"frequency_ghz": 0}, "frequency_ghz"),
        ("free_space", {"cutoff_probability": 0.7}, "cutoff_probability"),
        ("free_space", {"max_range_m": -5}, "max_range_m"),
        ("free_space", {"noise_floor_dbm": "loud"}, "noise_floor_dbm"),
    ],
)
def test_bad_parameters(name, params, parameter):
    with pytest.raises(rm.RadioParameterError) as info:
        rm.create(name, params)
    assert info.value.parameter == parameter
    assert name in str(info.value)
