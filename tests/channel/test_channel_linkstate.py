"""channel.link_state: correlated: per-link shadowing / LOS state as Gauss-Markov processes in
the distance moved (Gudmundson's exponential autocorrelation), against hand values and brute force."""

import math

import numpy as np
import pytest
import simpy
from scipy.stats import multivariate_normal, norm

import radio_models as rm
from cosim.channel import Channel, ChannelConfig, CorrelatedLinkState
from radio_models.tr37885 import LOS


def _ring(m, radius):
    angles = np.linspace(0, 2 * np.pi, m, endpoint=False)
    return np.column_stack([radius * np.cos(angles), radius * np.sin(angles)])


def track(model, steps, step_m, m=400, seed=0, distance_m=150.0):
    """m links, transmitters on a ring, each receiver moving step_m per step in +y from
    distance_m east of its transmitter; returns the (steps, m, k) normals and the losses."""
    state = CorrelatedLinkState(model, np.random.default_rng(seed))
    tx = _ring(m, 5000.0)
    u, v = np.arange(m), np.arange(m) + m
    zs, losses = [], []
    for t in range(steps):
        rx = tx + np.array([distance_m, t * step_m])
        links = rm.LinkBatch.from_positions(tx, rx)
        zs.append(state.normals(u, v, links))
        losses.append(model.path_loss_from_normals_db(links, zs[-1]))
    return np.array(zs), np.array(losses), state


def autocorrelation(x, lags):
    """Empirical autocorrelation over time (axis 0) pooled over links (axis 1), normalised by
    the lag-0 moment. The process has mean 0 by construction: subtracting each series' sample
    mean would bias R(D) down by about 2 d_corr / length."""
    var = np.mean(x * x)
    return np.array([np.mean(x[:-lag] * x[lag:]) / var for lag in lags])


def fit_decorrelation(acf, lags_m):
    """Least-squares fit of log R(D) = -D / d through the origin: d = -sum D^2 / sum D log R."""
    return -np.sum(lags_m**2) / np.sum(lags_m * np.log(acf))


@pytest.mark.parametrize("d_corr", [10.0, 25.0])
def test_shadowing_autocorrelation_over_distance_matches_the_decorrelation_distance(d_corr):
    model = rm.create("free_space", {"shadowing_sigma_db": 3.0, "decorrelation_distance_m": d_corr})
    step = 1.0
    _z, loss, _ = track(model, steps=int(12 * d_corr), step_m=step)
    # the link's shadowing: loss minus the median loss at its (changing) distance
    d = np.sqrt(150.0**2 + (np.arange(loss.shape[0]) * step) ** 2)
    shadow = loss - model.median_path_loss_db(d)[:, None]
    assert shadow.std() == pytest.approx(3.0, rel=0.05)  # the model's sigma: marginal kept
    lags = np.arange(1, int(d_corr) + 1)  # fit over 0 < D <= d_corr (R from 0.9 to 1/e)
    acf = autocorrelation(shadow, lags)
    d_hat = fit_decorrelation(acf, lags * step)
    assert d_hat == pytest.approx(d_corr, rel=0.1)
    assert acf[-1] == pytest.approx(math.exp(-1.0), abs=0.06)  # R(d_corr) = 1/e
    # the other distance is rejected: the fit tells 10 m from 25 m
    assert abs(d_hat - (35.0 - d_corr)) > 5.0


def test_gauss_markov_step_by_hand():
    model = rm.create("free_space", {"shadowing_sigma_db": 2.0, "decorrelation_distance_m": 20.0})
    rng = np.random.default_rng(7)
    state = CorrelatedLinkState(model, np.random.default_rng(7))
    tx = np.array([[0.0, 0.0]])
    a = state.normals([0], [1], rm.LinkBatch.from_positions(tx, np.array([[100.0, 0.0]])))
    assert a[0, 0] == rng.standard_normal((1, 1))[0, 0]  # a new link: a fresh normal
    # not moved: kept exactly, nothing drawn
    again = state.normals([0], [1], rm.LinkBatch.from_positions(tx, np.array([[100.0, 0.0]])))
    assert again[0, 0] == a[0, 0]
    # moved 3-4-5: D = 5 m, rho = exp(-5 / 20)
    b = state.normals([0], [1], rm.LinkBatch.from_positions(np.array([[-3.0, 0.0]]), np.array([[100.0, 4.0]])))
    rho = math.exp(-0.25)
    assert b[0, 0] == pytest.approx(rho * a[0, 0] + math.sqrt(1 - rho**2) * rng.standard_normal((1, 1))[0, 0])
    # both ends moved together: the relative vector is the same, the state too
    c = state.normals([0], [1], rm.LinkBatch.from_positions(np.array([[47.0, 10.0]]), np.array([[150.0, 14.0]])))
    assert c[0, 0] == b[0, 0]
    loss = state.path_loss_db([0], [1], rm.LinkBatch.from_positions(np.array([[47.0, 10.0]]), np.array([[150.0, 14.0]])))
    assert loss[0] == pytest.approx(model.median_path_loss_db(np.hypot(103.0, 4.0)) + 2.0 * c[0, 0])
    state.retain(np.array([0, 5]))
    assert len(state) == 0
    with pytest.raises(ValueError):
        state.normals([1], [0], rm.LinkBatch.from_positions(tx, tx + 1))


def test_los_state_is_kept_while_moving_and_flips_at_the_brute_force_rate():
    # TR 37.885 highway at 300 m: P(LOS) = 2.1013e-6 x 300^2 - 0.002 x 300 + 1.0193 = 0.608417.
    model = rm.create("tr37885_highway")
    assert model.decorrelation_distance_m == 25.0
    assert rm.create("tr37885_urban").decorrelation_distance_m == 10.0
    p_los = 2.1013e-6 * 300**2 - 0.002 * 300 + 1.0193
    assert float(model.los_probability(300.0)) == pytest.approx(p_los)
    # receivers on a circle of 300 m around their transmitter, 1 m of arc per step
    m, steps = 300, 200
    state = CorrelatedLinkState(model, np.random.default_rng(3))
    tx = _ring(m, 10000.0)
    u, v = np.arange(m), np.arange(m) + m
    los = []
    for t in range(steps):
        angle = t / 300.0
        rx = tx + 300.0 * np.array([math.cos(angle), math.sin(angle)])
        links = rm.LinkBatch.from_positions(tx, rx)
        los.append(model.conditions_from_uniform(links, norm.cdf(state.normals(u, v, links)[:, 0])) == LOS)
    los = np.array(los)
    assert los.mean() == pytest.approx(p_los, abs=0.03)  # the marginal is the model's
    # P(state differs after D) for a thresholded standard normal pair with correlation rho:
    # 2 (p - P(Z1 <= t, Z2 <= t)), t = Phi^-1(p)
    chord = 2 * 300.0 * math.sin(0.5 / 300.0)
    rho = math.exp(-chord / 25.0)
    t = norm.ppf(p_los)
    both = multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([t, t])
    expected = 2 * (p_los - both)  # about 0.06 per metre
    flips = np.mean(los[1:] != los[:-1])
    assert flips == pytest.approx(expected, rel=0.15)
    assert flips < 0.2 * 2 * p_los * (1 - p_los)  # redrawn every step: 2 p (1 - p) = 0.48


def test_normals_mapping_has_the_models_distribution():
    # path_loss_from_normals_db with N(0, 1) inputs is distributed as sample_path_loss_db
    model = rm.create("tr37885_urban", {"truck_fraction": 0.3, "building_nlos_probability": 0.2})
    links = rm.LinkBatch.from_distances(np.full(40_000, 120.0))
    a = model.sample_path_loss_db(links, np.random.default_rng(0))
    b = model.path_loss_from_normals_db(links, np.random.default_rng(1).standard_normal((40_000, 4)))
    assert np.mean(b) == pytest.approx(np.mean(a), abs=0.15)
    assert np.std(b) == pytest.approx(np.std(a), rel=0.03)
    assert np.quantile(b, 0.9) == pytest.approx(np.quantile(a, 0.9), abs=0.4)


def _prr_series(link_state, seed, radio):
    env = simpy.Environment()
    config = ChannelConfig(radio=radio, link_state=link_state)
    ch = Channel(env, config, np.random.default_rng(seed))
    out = []
    for t in range(300):  # the second vehicle drives away at 10 m/s, updates every 0.1 s
        ch.update([0, 1], np.array([[0.0, 0.0], [150.0 + 1.0 * t, 0.0]]))
        link = ch.link(0, 1)
        out.append(link.success_probability if link is not None else 0.0)
    return np.array(out)


RADIO = {"model": "tr37885_highway", "params": {"reception": "nist"}}


def test_prr_changes_smoothly_with_correlated_link_state_and_is_reproducible():
    smooth = _prr_series("correlated", 0, RADIO)
    rough = _prr_series("redrawn", 0, RADIO)
    # redrawn: the PRR crosses 0.5 about 50 times in 300 m (every NLOSv draw is a new coin);
    # correlated: about 15 times (the LOS state flips about 0.06 times per metre at 25 m)
    crossings = [int(np.sum((x[1:] > 0.5) != (x[:-1] > 0.5))) for x in (smooth, rough)]
    assert crossings[0] < 0.4 * crossings[1]
    assert np.mean(np.abs(np.diff(smooth))) < 0.5 * np.mean(np.abs(np.diff(rough)))
    assert np.array_equal(smooth, _prr_series("correlated", 0, RADIO))  # same seed, same outcome
    assert not np.array_equal(smooth, _prr_series("correlated", 1, RADIO))


def test_csma_medium_sees_the_graphs_losses_under_correlated_state():
    env = simpy.Environment()
    config = ChannelConfig(radio={"model": "free_space", "params": {"shadowing_sigma_db": 6.0}},
                           link_state="correlated", medium="csma")
    ch = Channel(env, config, np.random.default_rng(0))
    ch.update([0, 1, 2], np.array([[0.0, 0.0], [300.0, 0.0], [0.0, 200.0]]))
    assert len(ch.link_state) == 3
    for a, b in ((0, 1), (0, 2), (1, 2)):
        link = ch.link(a, b)
        loss = ch.model.budget.eirp_plus_rx_gain_dbm - ch.medium.rx_power_dbm(a, b)
        snr = ch.model.budget.snr_db(loss)
        assert link.success_probability == float(snr >= ch.model.snr_threshold_db)
    ch.update([0, 2], np.array([[0.0, 0.0], [0.0, 210.0]]))
    assert len(ch.link_state) == 1  # vehicle 1 left: its links are forgotten
