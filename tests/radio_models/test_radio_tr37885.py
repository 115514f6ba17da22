"""3GPP TR 37.885 V2V highway and urban: path loss, LOS probability, shadowing, blockage."""

import numpy as np
import pytest
from scipy.stats import chi2

import radio_models as rm
from radio_models.base import LinkBatch
from radio_models.tr37885 import LOS, NLOS, NLOSV, highway_los_probability, urban_los_probability


def binomial_ok(hits, n, p, z=4.0):
    return abs(hits - n * p) < z * np.sqrt(n * p * (1 - p))


def std_ok(x, sigma):
    n = x.size
    lo, hi = chi2.ppf([1e-4, 1 - 1e-4], n - 1) / (n - 1)
    return lo * sigma**2 < x.var(ddof=1) < hi * sigma**2


def test_los_path_loss_reference_values():
    hw = rm.create("tr37885_highway")
    ur = rm.create("tr37885_urban")
    # 32.4 + 20 log10(100) + 20 log10(5.9) = 32.4 + 40 + 15.417 = 87.817
    assert hw.los_path_loss_db(100.0) == pytest.approx(87.82, abs=0.005)
    # 38.77 + 16.7 * 2 + 18.2 * 0.77085 = 86.1995
    assert ur.los_path_loss_db(100.0) == pytest.approx(86.20, abs=0.005)
    # NLOS: 36.85 + 30 * 2 + 18.9 * 0.77085 = 111.419
    assert ur.nlos_path_loss_db(100.0) == pytest.approx(111.419, abs=0.005)


@pytest.mark.parametrize(
    "d, expected",
    [
        (0.0, 1.0),  # min(1, 1.0193)
        (100.0, 0.840313),  # 2.1013e-2 - 0.2 + 1.0193
        (475.0, 0.5434),  # 0.474106 - 0.95 + 1.0193
        (600.0, 0.415),  # 0.54 - 0.125
        (1100.0, 0.0),  # max(0, 0.54 - 0.625)
    ],
)
def test_highway_los_probability(d, expected):
    assert highway_los_probability(d) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("d, expected", [(0.0, 1.0), (4.0, 1.0), (100.0, 0.335811), (300.0, 0.034348)])
def test_urban_los_probability(d, expected):
    # 1.05 exp(-1.14) = 0.335811; 1.05 exp(-3.42) = 1.05 * 0.032712 = 0.034348
    assert urban_los_probability(d) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("name, d", [("tr37885_highway", 100.0), ("tr37885_urban", 60.0), ("tr37885_highway", 700.0)])
def test_sampled_los_frequency(name, d):
    model = rm.create(name)
    n = 20_000
    cond = model.sample_conditions(LinkBatch.from_distances(np.full(n, d)), np.random.default_rng(2))
    assert set(np.unique(cond)) <= {LOS, NLOSV}
    assert binomial_ok(np.count_nonzero(cond == LOS), n, float(model.los_probability(d)))


def test_building_nlos_probability():
    model = rm.create("tr37885_urban", {"building_nlos_probability": 0.3})
    n = 20_000
    cond = model.sample_conditions(LinkBatch.from_distances(np.full(n, 100.0)), np.random.default_rng(4))
    assert binomial_ok(np.count_nonzero(cond == NLOS), n, 0.3)
    assert binomial_ok(np.count_nonzero(cond == LOS), n, 0.7 * 0.335811)


def test_los_shadowing_std_is_3_db():
    model = rm.create("tr37885_highway")  # at 5 m the LOS probability is 1
    n = 20_000
    links = LinkBatch.from_distances(np.full(n, 5.0))
    cond = model.sample_conditions(links, np.random.default_rng(1))
    assert np.all(cond == LOS)
    x = model.path_loss_db(links, cond, np.random.default_rng(1)) - model.los_path_loss_db(5.0)
    assert std_ok(x, 3.0)
    assert abs(x.mean()) < 4 * 3.0 / np.sqrt(n)


def test_nlos_shadowing_std_is_4_db():
    model = rm.create("tr37885_urban")
    n = 20_000
    links = LinkBatch.from_distances(np.full(n, 50.0))
    cond = np.full(n, NLOS, dtype=np.int8)
    x = model.path_loss_db(links, cond, np.random.default_rng(8)) - model.nlos_path_loss_db(50.0)
    assert std_ok(x, 4.0)


def test_nlosv_blockage_lognormal_mean_and_std_both_antennas_below_blocker():
    # d = 1000 m: mean 9 + max(0, 15 * 3 - 41) = 13 dB, std 4.5 dB (natural-log conversion);
    # antennas at 1.5 m < car 1.6 m. Shadowing off to see the blockage alone.
    model = rm.create("tr37885_highway", {"shadowing": False})
    n = 40_000
    links = LinkBatch.from_distances(np.full(n, 1000.0))
    cond = np.full(n, NLOSV, dtype=np.int8)
    b = model.path_loss_db(links, cond, np.random.default_rng(9)) - model.los_path_loss_db(1000.0)
    assert np.all(b > 0)
    assert abs(b.mean() - 13.0) < 4 * 4.5 / np.sqrt(n)
    assert std_ok(b, 4.5)


def test_nlosv_blockage_other_height_cases():
    model = rm.create("tr37885_highway", {"shadowing": False})
    n = 40_000
    cond = np.full(n, NLOSV, dtype=np.int8)
    # one antenna above the 1.6 m car, one below: mean 5 + 0 = 5 dB at 100 m, std 4 dB
    mixed = LinkBatch.from_distances(np.full(n, 100.0), tx_height_m=1.5, rx_height_m=2.0)
    b = model.path_loss_db(mixed, cond, np.random.default_rng(1)) - model.los_path_loss_db(mixed.distance_m)
    assert abs(b.mean() - 5.0) < 4 * 4.0 / np.sqrt(n)
    assert std_ok(b, 4.0)
    # both above: no blockage at all
    high = LinkBatch.from_distances(np.full(10, 100.0), tx_height_m=2.0, rx_height_m=2.0)
    b = model.path_loss_db(high, cond[:10], np.random.default_rng(1)) - model.los_path_loss_db(high.distance_m)
    np.testing.assert_allclose(b, 0.0, atol=1e-12)
    # a truck (3 m) blocks even 2 m antennas: truck_fraction 1 -> mean 9 dB at 100 m
    trucks = rm.create("tr37885_highway", {"shadowing": False, "truck_fraction": 1.0})
    high = LinkBatch.from_distances(np.full(n, 100.0), tx_height_m=2.0, rx_height_m=2.0)
    b = trucks.path_loss_db(high, cond, np.random.default_rng(1)) - trucks.los_path_loss_db(high.distance_m)
    assert abs(b.mean() - 9.0) < 4 * 4.5 / np.sqrt(n)


def test_draws_a_fixed_number_of_random_numbers():
    # Determinism: the number of draws does not depend on the drawn states.
    model = rm.create("tr37885_urban")
    for d in (5.0, 400.0):
        rng = np.random.default_rng(0)
        model.sample_path_loss_db(LinkBatch.from_distances(np.full(7, d)), rng)
        ref = np.random.default_rng(0)
        ref.random(7), ref.standard_normal(7), ref.random(7), ref.standard_normal(7)
        assert rng.random() == ref.random()


def test_default_range_and_evaluate():
    hw = rm.create("tr37885_highway")
    ur = rm.create("tr37885_urban")
    assert 500 < hw.max_range_m < 2000
    assert 500 < ur.max_range_m < 2000
    n = 4000
    q = hw.evaluate(LinkBatch.from_distances(np.full(n, 50.0)), np.random.default_rng(0), 8)
    assert q.success_probability.mean() > 0.99  # 50 m on a highway: essentially always received
    q = hw.evaluate(LinkBatch.from_distances(np.full(n, hw.max_range_m * 0.999)), np.random.default_rng(0), 8)
    assert q.in_range.all() and q.success_probability.mean() < 0.03


def test_bad_parameters():
    with pytest.raises(rm.RadioParameterError, match="truck_fraction"):
        rm.create("tr37885_highway", {"truck_fraction": 2})
    with pytest.raises(rm.RadioParameterError, match="shadowing"):
        rm.create("tr37885_urban", {"shadowing": "off"})
    with pytest.raises(rm.RadioParameterError, match="building_nlos_probability"):
        rm.create("tr37885_urban", {"building_nlos_probability": -0.1})
