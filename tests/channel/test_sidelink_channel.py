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
    # 20 000 bytes: 4 packets of 4480 bytes, each cut by the channel's 802.11 framing into two
    # MSDUs, and 2080 bytes in one: 9 frames and the request, each one TB or more
    assert m["channel_payload_packets"] == 9 and m["mac_frames_sent"] == 10
    assert m["sl_transport_blocks_sent"] >= 10 and m["sl_dynamic_selections"] == m["sl_transport_blocks_sent"]


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
