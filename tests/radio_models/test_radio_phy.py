"""802.11p MCS/airtime and the NIST error-rate model."""

import numpy as np
import pytest
from scipy.special import erfc

from radio_models import ieee80211p
from radio_models.reception import (
    NistReception,
    ThresholdReception,
    coded_bit_error_probability,
    nist_chunk_success_probability,
    nist_cutoff_snr_db,
    nist_packet_success_probability,
    uncoded_bit_error_probability,
)


def test_airtime_reference_1500_bytes_at_6_mbps():
    # 40 us + 8 us * ceil((16 + 6 + 12000) / 48) = 40 + 8 * 251 = 2048 us
    assert ieee80211p.frame_airtime_s(1500, 6.0) == pytest.approx(2048e-6)


@pytest.mark.parametrize(
    "length, rate, expected_us",
    [
        (100, 3.0, 40 + 8 * 35),  # ceil((22 + 800) / 24) = ceil(34.25) = 35
        (0, 6.0, 40 + 8 * 1),  # SERVICE + tail still need a symbol
        (4480, 27.0, 40 + 8 * 167),  # ceil((22 + 35840) / 216) = ceil(166.03) = 167
        (4480, 6.0, 40 + 8 * 748),  # ceil(35862 / 48) = ceil(747.1) = 748 -> 6024 us
    ],
)
def test_airtime_other_rates(length, rate, expected_us):
    assert ieee80211p.frame_airtime_s(length, rate) == pytest.approx(expected_us * 1e-6)


def test_airtime_is_vectorised():
    out = ieee80211p.frame_airtime_s(np.array([1500, 1500]), 6.0)
    np.testing.assert_allclose(out, [2048e-6, 2048e-6])


def test_mcs_table():
    assert ieee80211p.RATES_MBPS == (3.0, 4.5, 6.0, 9.0, 12.0, 18.0, 24.0, 27.0)
    for rate, mcs in ieee80211p.MCS_TABLE.items():
        assert mcs.data_bits_per_symbol == pytest.approx(rate * 8)  # N_DBPS = rate * 8 us
    assert ieee80211p.mcs_for_rate(6).modulation == "qpsk"
    assert ieee80211p.mcs_for_rate(24).code_rate == "2/3"
    with pytest.raises(ValueError, match="3, 4.5, 6, 9, 12, 18, 24, 27"):
        ieee80211p.mcs_for_rate(54)


def test_uncoded_ber_formulas():
    assert uncoded_bit_error_probability(1.0, "bpsk") == pytest.approx(0.5 * erfc(1.0))  # 0.078650
    assert uncoded_bit_error_probability(2.0, "qpsk") == pytest.approx(0.5 * erfc(1.0))
    assert uncoded_bit_error_probability(10.0, "16qam") == pytest.approx(0.375 * erfc(1.0))
    assert uncoded_bit_error_probability(42.0, "64qam") == pytest.approx(7 / 24 * erfc(1.0))
    with pytest.raises(ValueError, match="modulation"):
        uncoded_bit_error_probability(1.0, "8psk")


def test_nist_reference_1000_bytes_qpsk_half_at_8_db():
    # docs/reference.md §5: PSR 0.9987. Hand check: p = 0.5 erfc(sqrt(6.3096 / 2)) = 6.13e-3,
    # D = sqrt(4 p (1 - p)) = 0.1561, Pe = 0.5 (36 D^10 + 211 D^12 + ...) = 1.63e-7,
    # (1 - Pe)^8000 = 0.99870.
    assert nist_packet_success_probability(8.0, 8000, 6.0, phy_overhead=False) == pytest.approx(0.998697, abs=2e-6)
    # Veins-style: + 16 SERVICE + 6 tail bits and the 24-bit BPSK-1/2 SIGNAL field
    assert nist_packet_success_probability(8.0, 8000, 6.0) == pytest.approx(0.998694, abs=2e-6)
    assert round(float(nist_packet_success_probability(8.0, 8000, 6.0)), 4) == 0.9987


def test_nist_monotone_in_snr_and_size():
    snr = np.linspace(0, 20, 81)
    p = nist_packet_success_probability(snr, 8 * 4480, 6.0)
    assert np.all(np.diff(p) >= 0)
    assert p[0] < 1e-6 and p[-1] > 0.999999
    sizes = np.array([8 * 64, 8 * 1000, 8 * 4480])
    q = nist_packet_success_probability(7.0, sizes, 6.0)
    assert np.all(np.diff(q) < 0)


def test_higher_mcs_needs_more_snr():
    cut = [nist_cutoff_snr_db(r) for r in ieee80211p.RATES_MBPS]
    assert cut[0] < cut[2] < cut[4] < cut[6]  # BPSK 1/2 < QPSK 1/2 < 16-QAM 1/2 < 64-QAM 2/3
    # at its cutoff the decoded bit error probability is 1e-2
    mcs = ieee80211p.mcs_for_rate(6.0)
    pe = coded_bit_error_probability(10 ** (cut[2] / 10), mcs.modulation, mcs.code_rate)
    assert pe == pytest.approx(1e-2, rel=1e-6)


def test_chunk_success_is_power_of_bits():
    mcs = ieee80211p.mcs_for_rate(9.0)
    one = nist_chunk_success_probability(9.0, 1000, mcs)
    assert nist_chunk_success_probability(9.0, 3000, mcs) == pytest.approx(one**3)


def test_reception_objects():
    th = ThresholdReception(5.0)
    out = th.success(np.array([4.9, 5.0, 9.0]), np.array([8, 800]))
    np.testing.assert_array_equal(out, [[0, 0], [1, 1], [1, 1]])
    nist = NistReception(6.0)
    out = nist.success(np.array([8.0]), np.array([8000]))
    assert out.shape == (1, 1) and out[0, 0] == pytest.approx(0.998694, abs=2e-6)
