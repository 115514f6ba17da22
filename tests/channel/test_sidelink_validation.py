"""The sidelink medium against the analytical model of LTE-V2X mode 4 of Gonzalez-Martin,
Sepulcre, Molina-Masegosa and Gozalvez (IEEE TVT 2019; tests/channel/cv2x_mode4_model.py), as the
csma medium against Bianchi: the model's formulas by hand and by brute force, then the medium
driven by real SimPy processes on a hand-placed highway of the model's setting.

The setting (the paper's highway): vehicles every 1 / beta m on a straight road, 190-byte CAMs at
10 Hz with sensing-based SPS (counter [5, 15], p_keep 0, selection window 100 subframes),
LTE-V2X 10 MHz with 4 sub-channels of 12 RBs (10 PSSCH PRBs, MCS 9: 1544 bits, QPSK r = 0.73),
23 dBm, WINNER+ B1 LOS with 3 dB shadowing redrawn every 100 ms, the R1-160284 BLER curve of a
190-byte QPSK r = 0.7 TB, a packet below -90.5 dBm not received, and the RSRP exclusion threshold
at that same power (-90.5 dBm over 120 sub-carriers: -111.3 dBm per RE), as the model has one
sensing threshold for both. The model's noise is -95 dBm over the 50 RBs (10 MHz at NF 9 dB
spread over 9 MHz of RBs): a noise figure of 9 + 10 log10(10 / 9) dB gives the same per RB. The
road is 3 km; only packets of the vehicles within 250 m of its middle are counted, so that every
counted receiver has the model's interferers within 1 km on both sides.
"""

import math

import numpy as np
import pytest
import simpy

import cv2x_mode4_model as gm
import radio_models
from cosim.channel.sidelink import SidelinkMedium
from radio_models import sidelink_phy as phy
from radio_models.winner_plus_b1 import WinnerPlusB1

DISTANCES = (100.0, 200.0, 300.0)
BINS = (87.5, 112.5, 187.5, 212.5, 287.5, 312.5)  # 25 m around each distance

# ------------------------------------------------------------------ the model, by hand


def test_model_formulas_by_hand():
    # eq. 7: a 10 Hz packet occupies 1 of the 100 subframes of its period
    assert gm.delta_hd(10) == 0.01
    # eqs. 10-11: 23 dBm - PL(d) = -90.5 dBm at 40 log10 d + 3.55 = 113.5 dB: d = 558.3 m
    d_sen = 10 ** ((23.0 + 90.5 - 3.5518) / 40.0)
    assert gm.path_loss_db(d_sen) == pytest.approx(113.5, abs=0.01)
    assert gm.psr(d_sen, 23.0) == pytest.approx(0.5, abs=1e-3)
    assert gm.delta_sen(d_sen, 23.0) == pytest.approx(0.5, abs=1e-3)
    # one shadowing sigma (3 dB) farther: 40 log10(d / d_sen) = 3 -> Phi(-1) = 0.1587 sensed
    assert gm.psr(d_sen * 10 ** (3 / 40), 23.0) == pytest.approx(0.158655, abs=5e-4)
    # noise of 10 data RBs: -95 - 10 log10(50 / 10) = -101.99 dBm
    assert gm.noise_dbm(10) == pytest.approx(-101.99, abs=0.01)
    # eq. 29: S_PSR = 10 sensed vehicles, N = 400: 5 + sum_{k=1..5} (1 - k / 395) = 9.962
    assert gm._excluded(10.0, 400.0) == pytest.approx(5 + 5 - 15 / 395)
    # eq. 30 at lag 0 and far away: beta N_e R0 / S_PSR, and N_e^2 / N (independent exclusions)
    ce = gm.common_excluded(np.array([4.0, 0.0]), 4.0, 0.2, 100.0, 60.0, 400.0)
    assert ce[0] == pytest.approx(0.2 * 100 * 4 / 60) and ce[1] == pytest.approx(100 * 100 / 400)


def test_model_error_integrals_against_brute_force():
    curve = phy.R1_160284_CURVES["r1_160284_qpsk_r0.7"]
    noise = gm.noise_dbm(10)
    rng = np.random.default_rng(0)
    for signal, interference in ((-85.0, -np.inf), (-80.0, -95.0), (-88.0, -92.0)):
        got = gm.p_error_sinr(signal, interference, noise, curve)[0]
        pr = signal + 3.0 * rng.standard_normal(2_000_000)
        pr = pr[pr >= gm.P_SEN_DBM]  # eq. 13 / 17: conditioned on being above P_sen
        if np.isneginf(interference):
            sinr = pr - noise
        else:
            i = interference + 3.0 * rng.standard_normal(pr.shape[0])
            sinr = pr - 10 * np.log10(10 ** (i / 10) + 10 ** (noise / 10))
        assert got == pytest.approx(curve.bler(sinr).mean(), abs=2e-3)


def test_model_pdr_is_one_minus_its_four_errors():
    out = gm.model(0.1, 10, 23.0, 4, [50.0, 300.0, 600.0])
    total = out["pdr"] + out["hd"] + out["sen"] + out["pro"] + out["col"]
    np.testing.assert_allclose(total, 1.0)
    assert np.all(np.diff(out["pdr"]) < 0)  # farther is worse
    assert out["sen"][2] > 0.4  # 600 m is beyond the sensing distance (558 m)
    # the model's channel busy ratio (eq. 34) grows with density
    assert gm.model(0.1, 10, 23.0, 4, [100.0])["cbr"] < gm.model(0.3, 10, 23.0, 4, [100.0])["cbr"]


# ------------------------------------------------------------------ the medium on the highway


def highway(beta, *, sub_channels=4, tx_dbm=23.0, length=3000.0, counted=500.0, warm=3.0, measure=10.0, seed=0,
            params=None, every_100ms=None):
    """Run the medium on the model's highway; return it after ``measure`` s of counting
    (``every_100ms(medium)`` is called at every geometry update of the counting)."""
    rbs, curve = gm.SETTINGS[sub_channels]
    env = simpy.Environment()
    base = {"technology": "lte_mode4", "bandwidth_mhz": 10, "subchannel_size_rb": rbs + 2,
            "num_subchannels": sub_channels, "mcs": 9 if sub_channels == 4 else 8, "tx_power_dbm": tx_dbm,
            "noise_figure_db": 9.0 + 10 * math.log10(10 / 9), "sensitivity_dbm": gm.P_SEN_DBM,
            "rsrp_threshold_dbm": gm.P_SEN_DBM - 10 * math.log10(12 * rbs), "range_m": 1500.0, "p_keep": 0.0}
    medium = SidelinkMedium(env, WinnerPlusB1(), np.random.default_rng(seed), {**base, **(params or {})},
                            curve=phy.R1_160284_CURVES[curve])
    medium.broadcast_range_m = BINS[-1]
    n = int(round(length * beta))
    x = np.arange(n) / beta
    medium.measured_senders = set(np.nonzero(np.abs(x - x.mean()) <= counted)[0].tolist())
    nodes, positions = np.arange(n), np.stack([x, np.zeros(n)], axis=1)
    medium.update(nodes, positions)
    phases = np.random.default_rng(seed + 1).random(n) * 0.1

    def geometry():  # shadowing redrawn every 100 ms
        while True:
            yield env.timeout(0.1)
            medium.update(nodes, positions)
            if every_100ms is not None and env.now > warm:
                every_100ms(medium)

    def cams(node):
        yield env.timeout(phases[node])
        while True:
            medium.send(node, -1, 8 * 190, kind="cam")
            yield env.timeout(0.1)

    env.process(geometry())
    for node in range(n):
        env.process(cams(node))
    env.run(warm)
    medium.reset_stats()
    medium.set_pdr_bins(BINS)
    env.run(warm + measure)
    return medium


def compare(medium, beta, sub_channels=4, tx_dbm=23.0, alpha=None):
    """(distance, simulated PDR, model PDR) per distance; the model (``alpha``: see
    ``cv2x_mode4_model.model``) averaged over the vehicle distances of each 25 m bin
    (multiples of 1 / beta)."""
    rows = medium.pdr_by_distance()
    out = []
    for d, (lo, hi, pdr, count) in zip(DISTANCES, rows[::2]):
        assert lo < d < hi and count > 1000
        ds = np.arange(math.ceil(lo * beta), math.floor(hi * beta) + 1) / beta
        ds = ds[(ds >= lo) & (ds < hi)]
        out.append((d, pdr, float(gm.model(beta, 10, tx_dbm, sub_channels, ds, alpha)["pdr"].mean())))
    return out


def half_duplex_share(medium):
    rx = medium.broadcast_rx
    return rx["half_duplex"] / sum(rx.values())


def check_against_the_model(beta, sub_channels=4, tx_dbm=23.0):
    medium = highway(beta, sub_channels=sub_channels, tx_dbm=tx_dbm)
    rows = compare(medium, beta, sub_channels, tx_dbm)
    hd = half_duplex_share(medium)
    print(f"S={sub_channels} {tx_dbm:g} dBm beta {beta}: "
          + ", ".join(f"{d:g} m: sim {s:.4f} model {m:.4f}" for d, s, m in rows) + f"; half-duplex {hd:.5f}")
    for d, sim, model in rows:
        assert abs(sim - model) <= 0.03, (d, sim, model)
    # half-duplex: eq. 7 (lambda / 1000) holds where the subframes of two vehicles are chosen
    # independently (the test below: equal within 4 sigma). On the highway they are not: a
    # vehicle never picks a resource it sees reserved, so the subframe of a neighbour it senses
    # holds S - 1 candidates for it instead of S, and half-duplex losses fall below eq. 7
    # (measured: 0.77-0.84 % with 4 sub-channels, 0.60-0.66 % with 2, against 1 %)
    assert 0.5 * gm.delta_hd(10) <= hd <= gm.delta_hd(10) + 0.001


def test_pdr_at_100_200_300_m_within_3_points_of_the_model_at_01_veh_per_m():
    check_against_the_model(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("sub_channels, tx_dbm, beta", [(4, 23.0, 0.2), (4, 23.0, 0.3), (2, 20.0, 0.1), (2, 20.0, 0.2)])
def test_pdr_within_3_points_of_the_model_and_half_duplex_of_its_formula(sub_channels, tx_dbm, beta):
    check_against_the_model(beta, sub_channels, tx_dbm)


def test_half_duplex_loss_equals_the_formula_when_choices_are_independent():
    # Eq. 7 assumes the receiver's subframe is independent of the sender's. It is when nothing
    # is excluded and nothing ranked: NR (no S-RSSI step), the RSRP threshold at its top, 1 ms
    # slots. Then a receiver transmits in the packet's subframe with probability 1 / 100.
    env = simpy.Environment()
    params = {"technology": "nr_mode2", "bandwidth_mhz": 10, "subcarrier_spacing_khz": 15, "rsrp_threshold_dbm": 0.0}
    medium = SidelinkMedium(env, radio_models.create("free_space", {}), np.random.default_rng(0), params)
    n = 50
    medium.update(np.arange(n), np.stack([np.arange(n) * 4.0, np.zeros(n)], axis=1))
    phases = np.random.default_rng(1).random(n) * 0.1

    def cams(node):
        yield env.timeout(phases[node])
        while True:
            medium.send(node, -1, 8 * 190, kind="cam")
            yield env.timeout(0.1)

    for node in range(n):
        env.process(cams(node))
    env.run(1.0)
    medium.reset_stats()
    env.run(31.0)
    receptions = sum(medium.broadcast_rx.values())
    assert receptions == pytest.approx(n * (n - 1) * 300, rel=0.01)
    # a pair keeps its subframes for ~10 packets: ~n (n - 1) 30 independent draws
    sigma = math.sqrt(0.01 * 0.99 / (n * (n - 1) * 30))
    assert half_duplex_share(medium) == pytest.approx(gm.delta_hd(10), abs=4 * sigma)  # measured 1.012 %


@pytest.mark.slow
@pytest.mark.parametrize("sub_channels, tx_dbm, beta", [(4, 23.0, 0.1), (4, 23.0, 0.2), (2, 20.0, 0.3)])
def test_in_band_emission_lowers_the_pdr_and_raises_the_cbr_on_the_models_highway(sub_channels, tx_dbm, beta):
    # The model has no in-band emission. With it (TR 36.885's relaxation), a transmission leaks
    # into the other sub-channels of its subframe, -21 dB and less relative per RB: a receiver
    # near a vehicle that sends in the same subframe loses a far packet on another sub-channel.
    # Measured (docs/medium.md): at 300 m 0.925 -> 0.835, 0.785 -> 0.632, 0.357 -> 0.290.
    pdr, cbr = {}, {}
    for emission in (False, True):
        medium = highway(beta, sub_channels=sub_channels, tx_dbm=tx_dbm, params={"in_band_emission": emission})
        pdr[emission] = [sim for _, sim, _ in compare(medium, beta, sub_channels, tx_dbm)]
        cbr[emission] = medium.metrics()["channel_busy_ratio_mean"]
    print(f"S={sub_channels} {tx_dbm:g} dBm beta {beta}: PDR at 100 / 200 / 300 m without / with in-band emission",
          ", ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(pdr[False], pdr[True])), f"; CBR {cbr[False]:.2f} / {cbr[True]:.2f}")
    assert all(b < a for a, b in zip(pdr[False], pdr[True]))
    assert pdr[False][2] - pdr[True][2] > 0.05
    assert cbr[True] > cbr[False]


def _resource_map(medium, n):
    """Each station's resource (slot within the 100 ms period x sub-channels + first
    sub-channel; -1: none) and its slot within the period."""
    res = np.full(n, -1)
    slot = np.full(n, -1)
    for node, (next_slot, period, x, _) in medium.reservations().items():
        slot[node] = next_slot % period
        res[node] = slot[node] * medium.pool.n_sub + x
    return res, slot


@pytest.mark.slow
def test_at_2_sub_channels_and_03_veh_per_m_the_reception_holds_and_the_reuse_departs_from_the_model():
    """The one setting of the paper's range where the simulation is more than 3 points below the
    model (2 sub-channels, 20 dBm, 0.3 veh/m: 10-11 points at 200-300 m; docs/medium.md). The
    receive chain is not the cause: recomputing every packet's fate independently from the
    stations' resource map (fresh shadowing, interference summed over every co-channel station,
    the same BLER curve, half-duplex a loss) gives the simulated PDR back. The resource reuse
    is: stations 300-450 m apart share a resource more often than the model's step-2 regime
    (eq. 23) has them, since step 7 raises the RSRP threshold (about 4.4 dB here) and so shrinks
    the exclusion range; that is where a receiver 200-300 m away meets its interferers."""
    beta, sub_channels, tx = 0.3, 2, 20.0
    n = int(round(3000.0 * beta))
    maps = []
    medium = highway(beta, sub_channels=sub_channels, tx_dbm=tx, measure=6.0,
                     every_100ms=lambda m: maps.append(_resource_map(m, n)))
    rows = compare(medium, beta, sub_channels, tx)
    x = np.arange(n) / beta
    mid = np.nonzero(np.abs(x - x.mean()) <= 250.0)[0]
    rbs, curve_name = gm.SETTINGS[sub_channels]
    curve = phy.R1_160284_CURVES[curve_name]
    noise_mw = 10 ** (gm.noise_dbm(rbs) / 10)
    rng = np.random.default_rng(7)
    for (d, sim, model), lag in zip(rows, (30, 60, 90)):
        ok, count = 0.0, 0
        for res, slot in maps:
            for t in mid[res[mid] >= 0]:
                co = np.nonzero(res == res[t])[0]
                co = co[co != t]
                for r in (t - lag, t + lag):
                    count += 1
                    if slot[r] == slot[t]:
                        continue  # half-duplex: the receiver transmits in that slot
                    signal = tx - gm.path_loss_db(d) + gm.SHADOWING_DB * rng.standard_normal()
                    if signal < gm.P_SEN_DBM:
                        continue
                    far = co[(co != r) & (np.abs(x[co] - x[r]) <= 1500.0)]
                    rx = tx - gm.path_loss_db(np.maximum(np.abs(x[far] - x[r]), 3.0)) \
                        + gm.SHADOWING_DB * rng.standard_normal(far.shape[0])
                    sinr = signal - 10 * np.log10(noise_mw + (10 ** (rx / 10)).sum())
                    ok += 1.0 - float(curve.bler(np.array([sinr]))[0])
        print(f"{d:g} m: simulated {sim:.3f}, recomputed {ok / count:.3f}, model {model:.3f}")
        assert ok / count == pytest.approx(sim, abs=0.015)
    assert abs(rows[0][1] - rows[0][2]) <= 0.03 and all(sim < model - 0.05 for _, sim, model in rows[1:])
    # the model's own step-3 branch (eq. 31: the threshold raised until 20 % of the resources
    # remain), which eq. 22 weighs at zero at this CBR (0.86), lies below the simulation: the
    # standard's 3 dB raises land between the model's two regimes
    step3 = compare(medium, beta, sub_channels, tx, alpha=0.0)
    print("model with step 3 alone: " + ", ".join(f"{d:g} m {m:.3f}" for d, _, m in step3))
    assert all(m3 + 0.05 < sim < model for (_, sim, model), (_, _, m3) in zip(rows, step3))

    # the reuse by distance: the share of station pairs holding the same resource
    def reuse(lo, hi):
        same = total = 0
        for res, _ in maps:
            for lag in range(int(lo * beta), int(hi * beta) + 1):
                for a, b in ((res[mid], res[mid + lag]), (res[mid], res[mid - lag])):
                    held = (a >= 0) & (b >= 0)
                    same += np.count_nonzero(held & (a == b))
                    total += np.count_nonzero(held)
        return same / total

    model_reuse = gm.pair_reuse(beta, tx, sub_channels, np.arange(300, 451, 10.0)).mean()
    near, far = reuse(50, 200), reuse(300, 450)
    print(f"reuse per mille: 50-200 m {1000 * near:.2f} (model {1000 * gm.pair_reuse(beta, tx, sub_channels, np.arange(50, 201, 10.0)).mean():.2f}), "
          f"300-450 m {1000 * far:.2f} (model {1000 * model_reuse:.2f})")
    assert far > 1.5 * model_reuse
