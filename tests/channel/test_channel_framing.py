"""802.11p framing: fragmentation at the MSDU limit, PPDU airtime per frame, MAC overheads."""

import numpy as np
import pytest
import simpy

from cosim.channel import Channel, ChannelConfig
from cosim.channel.framing import Framing
from radio_models import ieee80211p


def test_airtime_of_a_4480_byte_payload_at_6_mbps_is_its_fragments_ppdus():
    f = Framing()  # MSDU <= 2304 B; 26 B MAC header + 4 B FCS + 8 B LLC/SNAP (+ 0 B security)
    # MSDU payload limit 2304 - 8 = 2296 B: fragments of 2296 and 4480 - 2296 = 2184 B
    assert f.fragments(8 * 4480) == [8 * 2296, 8 * 2184]
    # PSDUs: 2296 + 38 = 2334 B and 2184 + 38 = 2222 B
    assert [f.psdu_bytes(b) for b in f.fragments(8 * 4480)] == [2334, 2222]
    # PPDU: 40 us + 8 us x ceil((16 + 6 + 8 L) / 48) at 6 Mb/s (N_DBPS 48 at 10 MHz)
    #   2334 B: ceil(18694 / 48) = 390 symbols -> 40 + 3120 = 3160 us
    #   2222 B: ceil(17798 / 48) = 371 symbols -> 40 + 2968 = 3008 us
    assert f.airtime_s(8 * 2296, 6e6) == pytest.approx(3160e-6)
    assert f.airtime_s(8 * 2184, 6e6) == pytest.approx(3008e-6)
    assert f.packet_airtime_s(8 * 4480, 6e6) == pytest.approx(6168e-6)
    # the old model (bits / rate + 40 us, one frame): 6013.3 us
    assert 8 * 4480 / 6e6 + 40e-6 == pytest.approx(6013.333e-6, abs=1e-9)


def test_security_overhead_and_small_packets():
    f = Framing(security_bytes=100)
    assert f.max_payload_bytes == 2304 - 8 - 100
    assert f.fragments(8 * 4480) == [8 * 2196, 8 * 2196, 8 * 88]
    assert f.fragments(0) == [0]  # header-only frame
    assert f.psdu_bytes(8 * 64) == 64 + 138
    with pytest.raises(ValueError):
        Framing(msdu_max_bytes=100, security_bytes=100)


def test_ofdm_airtime_equals_the_80211p_formula_at_its_rates():
    for rate in ieee80211p.RATES_MBPS:
        lengths = np.array([0, 14, 100, 1500, 2334])
        assert np.allclose(ieee80211p.ofdm_airtime_s(lengths, rate * 1e6), ieee80211p.frame_airtime_s(lengths, rate))
    assert ieee80211p.ofdm_airtime_s(14, 6e6) == pytest.approx(64e-6)  # ACK at 6 Mb/s
    assert ieee80211p.ack_rate_bps(27e6) == 12e6 and ieee80211p.ack_rate_bps(4.5e6) == 3e6


def test_a_4480_byte_response_in_the_independent_medium():
    env = simpy.Environment()
    config = ChannelConfig(radio={"model": "unit_disk", "params": {"range_m": 100.0}})
    ch = Channel(env, config, np.random.default_rng(0))
    ch.update([0, 1], np.array([[0.0, 0.0], [50.0, 0.0]]))
    proc = ch.pull(0, 1, lambda: ("theta", 8 * 4480))
    env.run()
    # request: 64 + 38 = 102 B, ceil(838 / 48) = 18 symbols -> 184 us; response 6168 us
    assert proc.value.ok and proc.value.finished_at == pytest.approx(184e-6 + 6168e-6)
    assert proc.value.packets_sent == 3


def test_framing_config_is_validated():
    with pytest.raises(ValueError):
        ChannelConfig(msdu_max_bytes=4000)
    with pytest.raises(ValueError):
        ChannelConfig(msdu_max_bytes=100, security_bytes=100)
    with pytest.raises(ValueError):
        ChannelConfig(medium="aloha")
