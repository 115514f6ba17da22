"""channel.medium: sidelink through the channel (the medium contract): parameters under
channel.medium_params with errors naming the key, pulls over the sidelink with HARQ
retransmissions of lost transport blocks, background CAMs by semi-persistent scheduling, the
contract's columns, reproducibility."""

import numpy as np
import pytest
import simpy
from pydantic import ValidationError

from cosim.channel import Channel, ChannelConfig
from cosim.channel.medium import Medium
from cosim.channel.sidelink import SidelinkMedium

UNIT_DISK = {"model": "unit_disk", "params": {"range_m": 200.0, "prr": 1.0}}


def make(seed=0, radio=None, **cfg):
    env = simpy.Environment()
    config = ChannelConfig(radio=radio or UNIT_DISK, medium="sidelink", **cfg)
    return env, Channel(env, config, np.random.default_rng(seed))


def line(ch, xs):
    ch.update(list(range(len(xs))), np.column_stack([np.asarray(xs, float), np.zeros(len(xs))]))


def test_sidelink_is_a_registered_medium_with_its_parameters_filled_in():
    config = ChannelConfig(medium="sidelink", medium_params={"technology": "lte_mode4", "mcs": 9})
    params = config.medium_params
    assert params["technology"] == "lte_mode4" and params["mcs"] == 9 and params["tx_power_dbm"] == 23.0
    env, ch = make(medium_params={"technology": "lte_mode4", "bandwidth_mhz": 10})
    assert isinstance(ch.medium, SidelinkMedium) and isinstance(ch.medium, Medium)
    assert ch.medium.pool.n_rb == 50 and ch.medium.retry_limit == 7  # channel.max_retries


def test_bad_sidelink_parameters_are_errors_naming_their_key():
    with pytest.raises(ValidationError) as info:
        ChannelConfig(medium="sidelink", medium_params={"mcs": 40, "technology": "lte_mode4",
                                                         "subcarrier_spacing_khz": 30, "colour": "red"})
    text = str(info.value)
    for key in ("mcs", "subcarrier_spacing_khz", "colour"):
        assert f"medium 'sidelink'" in text and key in text
    assert "must be an integer in [0, 28] (got 40)" in text


def test_a_pull_over_the_sidelink_arrives_with_its_payload():
    env, ch = make()
    line(ch, [0.0, 50.0, 120.0])
    proc = ch.pull(0, 1, lambda: ("theta", 8 * 20_000))
    env.run(5.0)
    result = proc.value
    assert result.ok and result.payload == "theta" and result.size_bits == 8 * 20_000
    m = ch.metrics()
    # 20 000 bytes: 4 packets of 4480 bytes and one of 2080, each handed to the sidelink whole
    # (below the PDCP SDU limit, no 802.11 MSDU cut) and mapped to TBs there; plus the request
    assert m["channel_payload_packets"] == 5 and m["mac_frames_sent"] == 6
    pool = ch.medium.pool
    tbs = 4 * len(pool.tb_plan(8 * 4480)) + len(pool.tb_plan(8 * 2080)) + len(pool.tb_plan(8 * 64))
    assert len(pool.tb_plan(8 * 4480)) == 5  # NR defaults: 5 TBs (the 802.11 cut made it 6)
    assert m["sl_transport_blocks_sent"] >= tbs and m["sl_dynamic_selections"] == m["sl_transport_blocks_sent"]


@pytest.mark.parametrize("technology, limit", [("nr_mode2", 9000), ("lte_mode4", 8188)])
def test_packets_are_cut_at_the_pdcp_sdu_limit_not_at_the_802_11_msdu(technology, limit):
    env, ch = make(payload_bytes=20_000, security_bytes=100, medium_params={"technology": technology})
    framing = ch.framing
    # whole packets up to the PDCP SDU limit, less the security overhead; no MAC header, FCS or LLC
    assert framing.max_payload_bytes == limit - 100 and framing.overhead_bytes == 100
    assert ch._packet_sizes(8 * 20_000) == [8 * (limit - 100)] * 2 + [8 * (20_000 - 2 * (limit - 100))]
    # the 802.11 media keep the MSDU limit
    csma = Channel(simpy.Environment(), ChannelConfig(radio=UNIT_DISK, medium="csma", payload_bytes=20_000),
                   np.random.default_rng(0))
    assert csma.framing.max_payload_bytes == 2304 - 8


def test_lost_transport_blocks_are_sent_again_up_to_the_retry_limit():
    # six stations, each pulling 20 kB from its neighbour at once: collisions and half-duplex
    # losses, recovered by retransmissions of the lost TBs
    env, ch = make(seed=3)
    line(ch, [0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    procs = [ch.pull(i, (i + 1) % 6, lambda: ("x", 8 * 20_000)) for i in range(6)]
    env.run(20.0)
    m = ch.metrics()
    assert m["mac_frames_lost"] > 0 and m["sl_retransmissions"] == m["mac_frames_lost"]
    assert m["mac_frames_lost"] == m["mac_frames_lost_collision"] + m["mac_frames_lost_half_duplex"] \
        + m["mac_frames_lost_below_sensitivity"]
    assert all(p.value.ok for p in procs)  # nothing given up with 7 retries
    env, ch = make(seed=3, max_retries=0)
    line(ch, [0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    procs = [ch.pull(i, (i + 1) % 6, lambda: ("x", 8 * 20_000)) for i in range(6)]
    env.run(20.0)
    assert not all(p.value.ok for p in procs) and ch.metrics()["sl_retransmissions"] == 0


def test_background_cams_go_by_semi_persistent_scheduling():
    env, ch = make(cam={"enabled": True, "penetration": 1.0})
    xs = np.arange(8) * 10.0
    humans = [f"h{k}" for k in range(12)]
    for t in np.arange(0.1, 5.05, 0.1):
        ch.update(list(range(8)), np.column_stack([xs, np.zeros(8)]), background_ids=humans,
                  background_positions=np.column_stack([100.0 + np.arange(12) * 5.0, np.zeros(12)]))
        env.run(t)
    m = ch.metrics()
    assert m["cam_equipped_human_vehicles"] == 12
    # 20 stations at 10 Hz for ~5 s: ~1000 CAMs, each a reselection every 5-15 of them
    assert 900 <= m["mac_cam_frames_sent"] <= 1000
    assert m["sl_sps_selections"] == 20 and 40 <= m["sl_sps_reselections"] <= 200
    assert m["cam_pdr"] > 0.9 and m["cam_receptions"] == m["sl_broadcast_rx_delivered"] + m["cam_lost_collision"] \
        + m["cam_lost_below_sensitivity"] + m["cam_lost_half_duplex"]
    assert 0.0 < m["channel_busy_ratio_mean"] < 1.0
    assert {"sl_pdr_0_50m", "sl_pdr_150_200m"} <= set(m)


def test_same_seed_same_numbers_through_the_channel():
    def run(seed):
        env, ch = make(seed=seed, cam={"enabled": True})
        line(ch, [0.0, 20.0, 40.0, 60.0])
        procs = [ch.pull(i, (i + 1) % 4, lambda: ("x", 8 * 9000)) for i in range(4)]
        env.run(3.0)
        m = ch.metrics()
        return [p.value.finished_at for p in procs], m["sl_transport_blocks_sent"], m["cam_rx_delivered"]

    assert run(1) == run(1)
    assert run(1) != run(2)
