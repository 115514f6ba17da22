"""Sidelink PHY numbers (radio_models.sidelink_phy) and the WINNER+ B1 path loss, against values
worked out by hand from the 3GPP clauses and the formulas."""

import math

import numpy as np
import pytest

from radio_models import sidelink_phy as phy
from radio_models.base import LinkBatch
from radio_models.winner_plus_b1 import WinnerPlusB1, winner_b1_los_path_loss_db


def test_lte_mcs_table_8_6_1_1():
    assert phy.lte_mcs(0) == (2, 0)
    assert phy.lte_mcs(9) == (2, 9)
    assert phy.lte_mcs(10) == (2, 10)
    assert phy.lte_mcs(11) == (4, 10)  # I_TBS 10 twice: QPSK at MCS 10, 16QAM at MCS 11
    assert phy.lte_mcs(20) == (4, 19)
    assert phy.lte_mcs(21) == (6, 19)
    assert phy.lte_mcs(28) == (6, 26)
    with pytest.raises(ValueError, match="MCS"):
        phy.lte_mcs(29)


def test_lte_tbs_table_hand_values_and_monotonicity():
    # The analytical model's setting: a 190-byte packet (1520 bits) in one 12-RB sub-channel,
    # 10 PSSCH PRBs, QPSK: MCS 9 -> I_TBS 9 -> 1544 bits, code rate (1544 + 24) / (2 x 1080) = 0.73
    assert phy.lte_tbs(9, 10) == 1544
    assert phy.lte_tbs(0, 1) == 16 and phy.lte_tbs(26, 100) == 75376
    assert phy.lte_tbs(19, 48) == 20616
    tbs = np.array([[phy.lte_tbs(i, n) for i in range(27)] for n in phy.LTE_TBS_PRB])
    # more PRBs never carry fewer bits, a higher I_TBS never fewer either, except around the
    # standard's odd cell I_TBS 6, N_PRB 1 (328)
    cols, rows = np.diff(tbs, axis=0), np.diff(tbs, axis=1)
    assert [tuple(i) for i in np.argwhere(cols < 0)] == [(0, 6)]
    assert [tuple(i) for i in np.argwhere(rows < 0)] == [(0, 6)]
    with pytest.raises(ValueError, match="2\\^a 3\\^b 5\\^c"):
        phy.lte_tbs(5, 7)


def test_dft_prb_counts():
    # largest 2^a 3^b 5^c not above the RBs left after the 2 PSCCH RBs
    assert [phy.dft_prb_count(n) for n in (10, 13, 22, 23, 46, 48, 98)] == [10, 12, 20, 20, 45, 48, 96]
    for n in range(1, 101):
        m = phy.dft_prb_count(n)
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        assert k == 1 and m <= n and not any(phy.dft_prb_count(j) == j for j in range(m + 1, n + 1))


def test_nr_mcs_and_tbs_against_hand_computed_steps():
    assert phy.nr_mcs(0) == (2, 120 / 1024) and phy.nr_mcs(16) == (4, 658 / 1024) and phy.nr_mcs(28) == (6, 948 / 1024)
    # step 3: N_info = 1000 x 0.5 x 2 = 1000; n = max(3, 9 - 6) = 3; N'_info = 8 floor(1000 / 8) = 1000;
    # the smallest table entry >= 1000 is 1032
    assert phy.nr_tbs(1000, 0.5, 2) == 1032
    # step 4, R > 1/4: N_info = 10000 x 616/1024 x 4 = 24062.5; n = floor(log2 24038.5) - 5 = 9;
    # N'_info = 512 round(46.95) = 24064 > 8424: C = ceil(24088 / 8424) = 3,
    # TBS = 24 ceil(24088 / 24) - 24 = 24072
    assert phy.nr_tbs(10000, 616 / 1024, 4) == 24072
    # step 4, R <= 1/4: N_info = 20000 x 120/1024 x 2 = 4687.5; n = 12 - 5 = 7;
    # N'_info = 128 round(36.43) = 4608; C = ceil(4632 / 3816) = 2; TBS = 16 ceil(289.5) - 24 = 4616
    assert phy.nr_tbs(20000, 120 / 1024, 2) == 4616
    # step 4, 3824 < N'_info <= 8424: N_info = 5000; n = 12 - 5 = 7; N'_info = max(3840, 128 round(38.87))
    # = 4992; TBS = 8 ceil(5016 / 8) - 24 = 4992
    assert phy.nr_tbs(2500, 0.5, 4) == 4992
    assert phy.nr_tbs(0, 0.5, 2) == 0
    # N_info just at 3824 stays in step 3
    assert phy.nr_tbs(3824, 0.5, 2) == 3824


def test_nr_pssch_resource_elements_by_hand():
    # 12 x (14 - 2) - 18 DMRS = 126 REs per PRB; 10 PRBs = 1260, minus PSCCH 10 x 2 x 12 = 240,
    # minus SCI 2-A ceil(59 / (2 x 0.5)) = 59: 961
    assert phy.nr_pssch_re(10, 0.5) == 961
    assert phy.nr_pssch_re(20, 0.25) == 126 * 20 - 240 - 118


def test_noise_and_shannon_threshold():
    # -173.98 dBm/Hz + 10 log10(10 x 12 x 15 kHz) + 9 dB = -102.42 dBm
    assert phy.noise_dbm(10, 15, 9.0) == pytest.approx(-173.98 + 62.553 + 9.0, abs=0.01)
    # eta = 1544 / 1080 = 1.4296 b/RE: 10 log10(2^1.4296 - 1) = 2.289 dB
    assert phy.shannon_threshold_db(1544, 1080) == pytest.approx(2.289, abs=0.002)
    assert phy.shannon_threshold_db(1544, 1080, 3.0) == pytest.approx(5.289, abs=0.002)
    assert phy.shannon_threshold_db(1, 0) == math.inf


def test_in_band_emission_by_hand():
    # LTE 10 MHz (50 RBs), 23 dBm on RBs 10-19 (L_CRB 10, P_RB 13 dBm), QPSK (EVM 17.5 %),
    # TR 36.885's relaxation W, X, Y, Z = 3, 6, 3, 3 dB. General terms: -25 - 10 log10(5) - 6 =
    # -37.99; 20 log10(0.175) - 3 - 0.5 (Delta - 1) - 3 = -21.14 - 0.5 (Delta - 1); -57 - 13 - 6 = -76
    e = phy.in_band_emission(50, 10, 10, evm=0.175, tx_power_dbm=23.0, relaxation_db=(3, 6, 3, 3))
    db = lambda v: 10 * math.log10(v)  # noqa: E731
    np.testing.assert_array_equal(e[10:20], 1.0)
    assert db(e[9]) == pytest.approx(-21.14, abs=0.005)  # Delta 1
    assert db(e[20]) == pytest.approx(-21.14, abs=0.005)
    assert db(e[0]) == pytest.approx(-25.64, abs=0.005)  # Delta 10
    assert db(e[49]) == pytest.approx(-35.64, abs=0.005)  # Delta 30, above the -37.99 floor
    # RB 39 mirrors RB 10 about the centre: general (Delta 20: -30.64 dB) plus the IQ image (-28 dB)
    assert e[39] == pytest.approx(10 ** -3.064 + 10 ** -2.8, rel=1e-3)
    assert e[40] == pytest.approx(10 ** -3.114, rel=1e-3)  # mirrors RB 9: no image
    # the carrier sits between RBs 24 and 25 (even N_RB): carrier leakage (-28 dB) in both
    assert e[24] == pytest.approx(10 ** -2.314 + 10 ** -2.8, rel=1e-3)  # Delta 5: -23.14 dB
    assert e[25] == pytest.approx(10 ** -2.364 + 10 ** -2.8, rel=1e-3)
    assert e[26] == pytest.approx(10 ** -2.414, rel=1e-3)
    # 2 RBs at 23 dBm: -25 - 10 log10(25) - 6 = -44.98 dB is the floor far away (at RB 30, Delta
    # 29, the EVM term has fallen to -21.14 - 2.5 x 28; the power term is -57 - 19.99 - 6 = -82.99)
    far = phy.in_band_emission(50, 0, 2, evm=0.175, tx_power_dbm=23.0, relaxation_db=(3, 6, 3, 3))
    assert db(far[30]) == pytest.approx(-44.98, abs=0.005)
    # the power floor: -57 dBm per RB at 30 kHz (+3.01 dB) - P_RB; 10 RBs at -30 dBm: P_RB -40 dBm
    # -> -13.99 dB, above the others; NR, no relaxation, 51 RBs: one centre RB (25), -25 dB more
    nr = phy.in_band_emission(51, 0, 10, evm=0.125, tx_power_dbm=-30.0, scs_khz=30)
    assert db(nr[40]) == pytest.approx(-57 + 10 * math.log10(2) + 40, abs=0.005)
    assert nr[25] == pytest.approx(10 ** ((-57 + 10 * math.log10(2) + 40) / 10) + 10 ** -2.5, rel=1e-9)
    with pytest.raises(ValueError, match="does not fit"):
        phy.in_band_emission(50, 45, 10, evm=0.175, tx_power_dbm=23.0)


def test_bler_curves():
    t = phy.ThresholdCurve(5.0)
    np.testing.assert_array_equal(t.success([4.99, 5.0, -np.inf]), [0.0, 1.0, 0.0])
    p = phy.ProbitCurve(5.0, 2.0)
    assert p.bler(np.array([5.0]))[0] == pytest.approx(0.5)
    assert p.bler(np.array([7.0]))[0] == pytest.approx(0.158655, abs=1e-6)  # 1 - Phi(1)
    table = phy.R1_160284_CURVES["r1_160284_qpsk_r0.7"]
    # linear in BLER between the tabulated points: 5 dB lies between 4 dB (0.7) and 6 dB (0.4)
    np.testing.assert_allclose(table.bler(np.array([-10.0, 5.0, 15.0, 30.0, -np.inf])), [1.0, 0.55, 0.004, 1e-4, 1.0])
    # the default probit abstraction (3 dB loss, sigma 2.6 dB) stays within 0.02 of the 3GPP curve
    fit = phy.curve_for("bler", 1544, 1080, implementation_loss_db=3.0, sigma_db=2.6)
    x = np.arange(2.0, 10.01, 0.25)
    assert np.max(np.abs(fit.bler(x) - table.bler(x))) < 0.02
    with pytest.raises(ValueError, match="increasing"):
        phy.TableCurve((1.0, 0.0), (1.0, 0.0))


def test_winner_plus_b1_path_loss_by_hand():
    # below the breakpoint (177.4 m): 22.7 log10 150 + 27 + 20 log10 5.91 = 91.83 dB
    assert winner_b1_los_path_loss_db(150.0) == pytest.approx(91.83, abs=0.01)
    # ... but never below free space, which is higher up to 101.8 m: at 100 m
    # 40 + 46.4 + 20 log10(5.91 / 5) = 87.85 dB (22.7 x 2 + 27 + 15.43 = 87.83 would be lower)
    assert winner_b1_los_path_loss_db(100.0) == pytest.approx(87.85, abs=0.01)
    # beyond: 40 log10 500 + 7.56 - 34.6 log10 1.5 + 2.7 log10 5.91 = 111.51 dB
    assert winner_b1_los_path_loss_db(500.0) == pytest.approx(111.51, abs=0.01)
    # at 3 m the free-space floor wins: 20 log10 3 + 46.4 + 20 log10(5.91 / 5) = 57.39 dB
    assert winner_b1_los_path_loss_db(1.0) == pytest.approx(57.39, abs=0.01)
    d_bp = 4 * 1.5 * 1.5 * 5.91e9 / 299792458.0
    assert d_bp == pytest.approx(177.4, abs=0.1)
    jump = winner_b1_los_path_loss_db(d_bp * 1.0001) - winner_b1_los_path_loss_db(d_bp * 0.9999)
    assert abs(jump) < 0.2  # the two branches nearly meet at the breakpoint
    model = WinnerPlusB1()
    links = LinkBatch.from_distances(np.full(20000, 200.0))
    loss = model.sample_path_loss_db(links, np.random.default_rng(1))
    assert loss.mean() == pytest.approx(winner_b1_los_path_loss_db(200.0), abs=0.1)
    assert loss.std() == pytest.approx(3.0, abs=0.1)
