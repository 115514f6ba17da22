"""Per-epoch accounting: per-pair matrices, flat metrics, reset."""

import math

import numpy as np
import pytest
import simpy

from cosim.channel import Channel, ChannelConfig, FailureCause

PKT_BITS = 35840


def make(**cfg):
    env = simpy.Environment()
    config = ChannelConfig(radio={"model": "unit_disk", "params": {"range_m": 100.0}}, **cfg)
    return env, Channel(env, config, np.random.default_rng(0))


EXPECTED_KEYS = [
    "channel_bits",
    "channel_packets",
    "channel_packets_lost",
    "channel_packet_loss_rate",
    "channel_payload_bits",
    "channel_payload_packets",
    "channel_payload_packets_lost",
    "channel_request_packets",
    "transfers_started",
    "transfers_ok",
    "transfers_failed",
    "transfers_cancelled",
    *[f"transfers_failed_{c.value}" for c in FailureCause if c is not FailureCause.CANCELLED],
    "transfer_latency_mean_s",
    "transfer_latency_p95_s",
    "transfer_latency_max_s",
    "transfer_queue_wait_mean_s",
    "transfers_in_flight",
    "channel_busy_ratio_mean",
    "channel_busy_ratio_max",
    "mac_frames_sent",
    "mac_frames_lost",
    "mac_frames_lost_collision",
    "mac_frames_lost_below_sensitivity",
    "mac_frames_lost_half_duplex",
    "mac_frames_lost_retry_limit",
    "mac_cam_frames_sent",
    "mac_queue_delay_mean_s",
    "mac_queue_delay_p95_s",
    "mac_link_goodput_mean_bps",
]


def test_metric_keys_are_stable_and_empty_epoch_is_nan():
    env, ch = make()
    m = ch.metrics()
    assert list(m) == EXPECTED_KEYS
    assert m["channel_packets"] == 0 and math.isnan(m["transfer_latency_mean_s"])
    assert "transfers_failed_no_link" in m and "transfers_failed_packet_lost" in m


def test_per_pair_matrices_and_metrics():
    env, ch = make()
    ch.update([0, 1, 3], np.array([[0, 0], [50, 0], [90, 0]], float))
    a = ch.pull(0, 1, lambda: ("a", 2 * PKT_BITS))  # 1 request 0->1, 2 packets = 4 frames 1->0
    b = ch.pull(3, 1, lambda: ("b", 100))  # 1 request 3->1, 1 small packet 1->3
    c = ch.pull(0, 3, lambda: ("c", 100))  # 90 m: in range
    d = ch.pull(1, 2, lambda: ("d", 100))  # 2 absent: no_link
    env.run()
    assert [p.value.ok for p in (a, b, c)] == [True, True, True] and d.value.cause is FailureCause.NO_LINK
    s = ch.stats
    mats = s.matrices(4)
    assert mats["packets_sent"][0, 1] == 1 and mats["packets_sent"][1, 0] == 4
    assert mats["bits_sent"][1, 0] == 2 * PKT_BITS and mats["bits_sent"][0, 1] == 512
    assert mats["packets_sent"][1, 3] == 1 and mats["bits_sent"][1, 3] == 100
    assert mats["packets_sent"][3, 0] == 1 and mats["packets_sent"][0, 3] == 1
    assert mats["packets_lost"].sum() == 0
    assert mats["transfers_ok_by_pair"][0, 1] == 1 and mats["transfers_ok_by_pair"][1, 0] == 0
    assert mats["transfers_ok_by_pair"][3, 1] == 1 and mats["transfers_ok_by_pair"][0, 3] == 1
    m = ch.metrics()
    assert m["channel_packets"] == 9 and m["channel_request_packets"] == 3
    assert m["channel_payload_packets"] == 6
    assert m["channel_bits"] == 3 * 512 + 2 * PKT_BITS + 200
    assert m["transfers_started"] == 4 and m["transfers_ok"] == 3 and m["transfers_failed"] == 1
    assert m["transfers_failed_no_link"] == 1
    lat = sorted([a.value.latency_s, b.value.latency_s, c.value.latency_s])
    assert m["transfer_latency_mean_s"] == pytest.approx(np.mean(lat))
    assert m["transfer_latency_max_s"] == pytest.approx(lat[-1])
    assert m["transfer_latency_p95_s"] == pytest.approx(np.percentile(lat, 95))
    assert m["channel_packet_loss_rate"] == 0.0


def test_matrices_grow_with_node_ids_and_can_be_cut():
    env, ch = make()
    ch.update([2, 40], np.array([[0, 0], [10, 0]], float))
    env.run(until=1)
    ch.pull(40, 2, lambda: ("x", 8))
    env.run()
    assert ch.stats.packets_sent.shape[0] >= 41
    assert ch.stats.packets_sent[40, 2] == 1 and ch.stats.packets_sent[2, 40] == 1
    small = ch.stats.matrices(10)["packets_sent"]
    assert small.shape == (10, 10) and small.sum() == 0


def test_reset_between_epochs():
    env, ch = make()
    ch.update([0, 1], np.array([[0, 0], [10, 0]], float))
    ch.pull(0, 1, lambda: ("x", PKT_BITS))
    env.run()
    assert ch.metrics()["transfers_ok"] == 1
    ch.reset()
    m = ch.metrics()
    assert m["transfers_ok"] == 0 and m["channel_bits"] == 0 and m["transfers_started"] == 0
    assert ch.stats.packets_sent.sum() == 0
    ch.pull(0, 1, lambda: ("x", PKT_BITS))
    env.run()
    assert ch.metrics()["channel_packets"] == 3  # a request and a 4480-byte packet in two frames
