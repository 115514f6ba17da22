"""Background CAMs on the csma medium (channel.cam): config errors, CBR of N periodic senders by
hand, CAM delivery by cause, the penetration subset of human-driven vehicles, the cost to policy
segment transfers, reproducibility, and that it is inert when off."""

import math

import numpy as np
import pytest
import simpy
from pydantic import ValidationError

from cosim.channel import BACKGROUND_ID_BASE, Channel, ChannelConfig, FailureCause
from cosim.config import load_config
from cosim.config.loader import ConfigError
from radio_models import ieee80211p as phy

SCENARIOS = __import__("pathlib").Path(__file__).resolve().parents[2] / "scenarios"

# A 300-byte CAM: PSDU = 300 + 26 (MAC header) + 4 (FCS) + 8 (LLC/SNAP) = 338 bytes; at 6 Mb/s
# (N_DBPS = 48) the PPDU is 40 us + 8 us * ceil((22 + 8 * 338) / 48) = 40 + 8 * 57 = 496 us.
CAM_AIRTIME = 496e-6
UNIT_DISK = {"model": "unit_disk", "params": {"range_m": 1000.0, "prr": 1.0}}


def make(seed=0, radio=None, cam=None, **cfg):
    env = simpy.Environment()
    config = ChannelConfig(radio=radio or UNIT_DISK, medium="csma", cam={"enabled": True, **(cam or {})}, **cfg)
    return env, Channel(env, config, np.random.default_rng(seed))


def line(n, spacing=5.0):
    return np.stack([np.arange(n) * spacing, np.zeros(n)], axis=1)


# ------------------------------------------------------------------ config


def test_cam_airtime_by_hand():
    assert ChannelConfig().framing().airtime_s(8 * 300, 6e6) == pytest.approx(CAM_AIRTIME)
    assert phy.ofdm_airtime_s(338, 6e6) == pytest.approx(CAM_AIRTIME)


@pytest.mark.parametrize(
    "cam, needle",
    [
        ({"rate_hz": -1.0}, "rate_hz"),
        ({"rate_hz": 0.0}, "rate_hz"),
        ({"penetration": -0.1}, "penetration"),
        ({"penetration": 1.5}, "penetration"),
        ({"bytes": 0}, "bytes"),
        ({"bytes": 5000}, "bytes"),
        ({"pdr_range_m": -5.0}, "pdr_range_m"),
        ({"access_category": "AC_XX"}, "access_category"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_cam_values_are_config_errors_naming_the_key(cam, needle):
    with pytest.raises(ValidationError, match=needle):
        ChannelConfig(medium="csma", cam={"enabled": True, **cam})


def test_cam_must_fit_one_msdu_with_the_configured_overheads():
    ChannelConfig(medium="csma", cam={"enabled": True, "bytes": 2296})  # 2304 - 8 LLC: fits
    with pytest.raises(ValidationError, match=r"channel.cam.bytes = 2297 does not fit in one MSDU: at most .* = 2296"):
        ChannelConfig(medium="csma", cam={"enabled": True, "bytes": 2297})
    with pytest.raises(ValidationError, match="= 2196"):
        ChannelConfig(medium="csma", security_bytes=100, cam={"enabled": True, "bytes": 2200})


def test_cam_needs_the_csma_medium_and_simulated_mode():
    with pytest.raises(ValidationError, match=r"channel.cam.enabled: true needs channel.medium: csma"):
        ChannelConfig(cam={"enabled": True})
    with pytest.raises(ValidationError, match=r"channel.cam.enabled: true needs channel.mode: simulated"):
        ChannelConfig(medium="csma", mode="ideal", cam={"enabled": True})
    ChannelConfig(cam={"enabled": False, "rate_hz": 5.0})  # off: any medium


def test_scenario_loader_reports_the_cam_keys():
    with pytest.raises(ConfigError) as err:
        load_config(SCENARIOS / "figure8.yaml", ["channel.medium=independent", "channel.cam.enabled=true"])
    assert "channel.cam.enabled" in str(err.value) and "channel.medium: csma" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(SCENARIOS / "figure8.yaml", ["channel.medium=csma", "channel.cam.penetration=2"])
    assert "channel.cam.penetration" in str(err.value)
    cfg = load_config(SCENARIOS / "figure8.yaml", ["channel.medium=csma", "channel.cam.enabled=true"])
    assert cfg.channel.cam.rate_hz == 10.0 and cfg.channel.cam.bytes == 300
    assert cfg.channel.cam.access_category == "AC_VO" and cfg.channel.cam.penetration == 0.0


# ------------------------------------------------------------------ CBR by hand


@pytest.mark.parametrize("n, rate", [(10, 10.0), (30, 10.0), (12, 2.0)])
def test_cbr_of_n_periodic_cam_senders_in_one_sensing_range(n, rate):
    """Every node senses every frame (1000 m unit disk, 5 m apart), so a node's busy time is the
    union of all N senders' frames: CBR = N * rate * airtime, less the overlap of frames that
    start in the same backoff slot (rare: a frame that finds the medium busy defers)."""
    env, ch = make(cam={"rate_hz": rate})
    ch.update(list(range(n)), line(n))
    T = 10.0
    env.run(until=T)
    m = ch.metrics()
    expected = n * rate * CAM_AIRTIME  # 0.0496, 0.1488, 0.0119
    assert m["channel_busy_ratio_mean"] == pytest.approx(expected, rel=0.02)
    assert m["channel_busy_ratio_max"] <= expected * 1.0001
    # every station sends once per period from a phase in [0, 1 / rate): T * rate CAMs, +-1 each
    assert abs(m["mac_cam_frames_sent"] - n * rate * T) <= n
    assert m["mac_frames_sent"] == m["mac_cam_frames_sent"]
    assert m["mac_frames_lost_retry_limit"] == 0  # broadcast: never retried


def test_cbr_counts_only_what_a_node_senses():
    """Two groups of 5 stations 3 km apart: each station senses its own group only."""
    env, ch = make()
    pos = np.concatenate([line(5), line(5) + [3000.0, 0.0]])
    ch.update(list(range(10)), pos)
    env.run(until=20.0)
    assert ch.metrics()["channel_busy_ratio_mean"] == pytest.approx(5 * 10 * CAM_AIRTIME, rel=0.02)


# ------------------------------------------------------------------ CAM delivery


def test_cam_pdr_within_the_range_follows_the_prr_and_counts_receivers_beyond_the_radio_range():
    """unit disk 90 m, PRR 0.8; A at 0, B at 50, C at 150; PDR range 120 m. Receivers per CAM:
    A -> B (50 m); B -> A (50 m) and C (100 m: beyond 90 m, below sensitivity); C -> B (100 m,
    below sensitivity). Per second (10 CAMs each): 10 + 20 + 10 = 40 receptions, of which the
    20 within 90 m arrive with probability 0.8. A and C are hidden from each other: their CAMs
    would collide at B if their phases put them within one airtime (not with this seed)."""
    env, ch = make(radio={"model": "unit_disk", "params": {"range_m": 90.0, "prr": 0.8}},
                   cam={"pdr_range_m": 120.0})
    ch.update([0, 1, 2], np.array([[0.0, 0.0], [50.0, 0.0], [150.0, 0.0]]))
    T = 100.0
    env.run(until=T)
    m = ch.metrics()
    sent = m["mac_cam_frames_sent"]
    assert abs(sent - 3 * 10 * T) <= 3
    per_sender = sent / 3
    assert m["cam_receptions"] == pytest.approx(4 * per_sender, abs=4)
    assert m["cam_lost_below_sensitivity"] >= 2 * per_sender - 2  # B -> C and C -> B, all of them
    near = m["cam_receptions"] - (2 * per_sender)  # A <-> B receptions: about 2000
    ok = m["cam_rx_delivered"]
    # A's and C's CAMs are hidden from each other: at B they collide only if their fixed phases
    # put them within one airtime (not with seed 0: no collision at all here)
    assert m["cam_lost_collision"] == 0
    sd = math.sqrt(0.8 * 0.2 / near)
    assert abs(ok / near - 0.8) < 4 * sd
    assert m["cam_pdr"] == pytest.approx(ok / m["cam_receptions"])


def _medium_only(radio, cam=None):
    env, ch = make(radio=radio, cam={"rate_hz": 1e-3, **(cam or {})})  # timers far away
    return env, ch


def test_cam_collisions_and_half_duplex_at_each_receiver():
    """Hidden terminals A (0 m) and C (160 m), B (80 m) in the middle, unit disk 90 m: CAMs of A
    and C sent at the same instant collide at B (PRR-only model: no capture). When B sends at
    that instant too, every reception is lost to half-duplex: B transmits while A's and C's
    CAMs arrive, and A and C transmit while B's arrives."""
    env, ch = _medium_only({"model": "unit_disk", "params": {"range_m": 90.0, "prr": 1.0}},
                           {"pdr_range_m": 85.0})
    ch.update([0, 1, 2], np.array([[0.0, 0.0], [80.0, 0.0], [160.0, 0.0]]))
    ch.medium.reset_stats()
    ch.medium.send(0, -1, 8 * 300, 6e6, ac="AC_VO", kind="cam")
    ch.medium.send(2, -1, 8 * 300, 6e6, ac="AC_VO", kind="cam")
    env.run(until=0.01)
    rx = ch.medium.cam_rx
    assert rx == {"delivered": 0, "collision": 2, "below_sensitivity": 0, "half_duplex": 0}
    ch.medium.reset_stats()
    for node in (0, 1, 2):
        ch.medium.send(node, -1, 8 * 300, 6e6, ac="AC_VO", kind="cam")
    env.run(until=0.02)
    # B's CAM at A and C: both transmit (half-duplex); A's and C's at B: B transmits
    assert ch.medium.cam_rx == {"delivered": 0, "collision": 0, "below_sensitivity": 0, "half_duplex": 4}


def test_cam_reception_by_sinr_with_an_snr_model():
    """free space: a CAM 100 m away arrives (SNR far above the 6 Mb/s threshold). A second
    sender 1 m from that receiver that starts in the same slot (both find the medium idle, so
    carrier sense cannot separate them) drowns it there: SINR about -40 dB."""
    env, ch = _medium_only({"model": "free_space"}, {"pdr_range_m": 150.0})
    ch.update([0, 1, 2], np.array([[0.0, 0.0], [100.0, 0.0], [101.0, 0.0]]))
    ch.medium.reset_stats()
    ch.medium.send(0, -1, 8 * 300, 6e6, ac="AC_VO", kind="cam")
    env.run(until=0.01)
    assert ch.medium.cam_rx["delivered"] == 2  # at 100 m and 101 m
    ch.medium.reset_stats()
    ch.medium.send(0, -1, 8 * 300, 6e6, ac="AC_VO", kind="cam")
    ch.medium.send(2, -1, 8 * 300, 6e6, ac="AC_VO", kind="cam")  # same slot: both go
    env.run(until=0.02)
    rx = ch.medium.cam_rx
    # at node 1: 0's CAM drowned by 2's (1 m away) -> collision; 2's CAM arrives at 1;
    # 0 and 2 transmit at once: each loses the other's CAM (half-duplex)
    assert rx == {"delivered": 1, "collision": 1, "below_sensitivity": 0, "half_duplex": 2}


# ------------------------------------------------------------------ penetration


def _background(channel, keys, env=None):
    xy = np.stack([np.arange(len(keys)) * 100.0, np.full(len(keys), 10.0)], axis=1)  # ~20 neighbours
    channel.update([0, 1], np.array([[0.0, 0.0], [5.0, 0.0]]), background_ids=keys, background_positions=xy)
    return channel.background_stations


@pytest.mark.parametrize("p", [0.0, 0.1, 0.3, 0.75, 1.0])
def test_penetration_equips_a_seeded_binomial_subset_of_human_vehicles(p):
    keys = [f"human{k}" for k in range(600)]
    _env, ch = make(seed=3, cam={"penetration": p})
    equipped = _background(ch, keys)
    n = len(equipped)
    sd = math.sqrt(len(keys) * p * (1 - p))
    assert abs(n - p * len(keys)) <= 4 * sd  # Binomial(600, p): 0 and 1 exactly
    assert set(equipped) <= set(keys)
    assert sorted(equipped.values()) == list(range(BACKGROUND_ID_BASE, BACKGROUND_ID_BASE + n))
    # background stations are medium-only: not in the graph, not reachable by a transfer
    assert ch.nodes == [0, 1]
    assert set(ch.medium._idx) == {0, 1, *equipped.values()}
    if 0 < p < 0.5:
        proc = ch.pull(0, next(iter(equipped.values())), lambda: ("x", 8))
        ch.env.run(until=ch.env.now + 1e-3)
        assert proc.value.cause is FailureCause.NO_LINK
    _env2, again = make(seed=3, cam={"penetration": p})
    assert _background(again, list(reversed(keys))) == equipped  # same seed: same subset


def test_penetration_subsets_are_nested_and_keys_keep_their_draw():
    keys = [f"h{k}" for k in range(500)]
    low = set(_background(make(seed=1, cam={"penetration": 0.2})[1], keys))
    high = set(_background(make(seed=1, cam={"penetration": 0.6})[1], keys))
    assert low < high
    other = set(_background(make(seed=2, cam={"penetration": 0.2})[1], keys))
    assert other != low
    # a vehicle keeps its draw when it comes back; newcomers draw in sorted order
    env, ch = make(seed=1, cam={"penetration": 0.2})
    first = _background(ch, keys[:250])
    _background(ch, [])
    later = _background(ch, keys)
    assert {k: v for k, v in later.items() if k in first} == first


def test_penetration_subsets_stay_nested_with_vehicles_arriving_at_later_updates():
    """Issue 18, defect 4. A continuous inflow (Merge): 8 new human vehicles at each of 13
    updates, 104 in all, while CAM timers run between updates. At every update, every vehicle
    equipped at p = 0.2 is equipped at p = 0.6 (and at 1.0), each vehicle's draw does not depend
    on p or on when it arrived, and the counts are binomial."""
    seen = {}
    for p in (0.2, 0.6, 1.0):
        env, ch = make(seed=11, cam={"penetration": p})
        history = []
        for step in range(13):
            keys = [f"flow.{k}" for k in range(8 * (step + 1))]
            xy = np.stack([np.arange(len(keys)) * 7.0, np.full(len(keys), 10.0)], axis=1)
            ch.update([0, 1], line(2), background_ids=keys, background_positions=xy)
            history.append(set(ch.background_stations))
            env.run(until=env.now + 0.1)
        seen[p] = history
    for step in range(13):
        assert seen[0.2][step] <= seen[0.6][step] <= seen[1.0][step], step
    assert len(seen[1.0][-1]) == 104
    for p in (0.2, 0.6):
        n = len(seen[p][-1])
        assert abs(n - 104 * p) <= 4 * math.sqrt(104 * p * (1 - p))
    # one vehicle, one draw: arriving first or last, alone or among others, gives the same answer
    _env, alone = make(seed=11, cam={"penetration": 0.6})
    for key in sorted(seen[1.0][-1], reverse=True):
        alone.update([0, 1], line(2), background_ids=[key], background_positions=np.array([[0.0, 10.0]]))
    assert set(alone.background_stations) == seen[0.6][-1]
    assert alone.equip_uniform(np.str_("flow.3")) == alone.equip_uniform("flow.3")  # numpy strings alike


def _cav_graphs_under_background_cams(cam, steps=30, seed=5):
    """8 CAVs at different speeds on a 3-lane road among 24 human vehicles, TR 37.885 highway
    with ``link_state: correlated``; the CAV graph (edges, PRRs) and the medium's received
    powers between CAVs at each 0.1 s update."""
    env = simpy.Environment()
    config = ChannelConfig(radio="tr37885_highway", medium="csma", link_state="correlated", cam=cam)
    ch = Channel(env, config, np.random.default_rng(seed))
    rng = np.random.default_rng(0)
    cav_x, cav_v = rng.uniform(0, 1500, 8), rng.uniform(20, 35, 8)
    cav_y = rng.choice([0.0, 3.5, 7.0], 8)
    hum_x, hum_v = rng.uniform(0, 1500, 24), rng.uniform(20, 35, 24)
    hum_y = rng.choice([0.0, 3.5, 7.0], 24)
    keys = [f"human{k}" for k in range(24)]
    out = []
    for step in range(steps):
        t = 0.1 * step
        topo = ch.update(list(range(8)), np.column_stack([cav_x + cav_v * t, cav_y]),
                         background_ids=keys, background_positions=np.column_stack([hum_x + hum_v * t, hum_y]))
        powers = [ch.medium.rx_power_dbm(a, b) for a in range(8) for b in range(8) if a != b]
        out.append((topo.u.tolist(), topo.v.tolist(), topo.success_probability.tolist(), powers))
        env.run(until=t + 0.1)
    return out, ch


def test_background_cams_leave_the_correlated_cav_graph_unchanged():
    """Issue 18, defect 3. Pairs with an equipped human vehicle have their own link state and
    stream: the CAV graph and the medium's CAV-to-CAV losses are those of a run without CAMs,
    whatever the penetration."""
    base, _ = _cav_graphs_under_background_cams({})
    assert sum(len(u) for u, *_ in base) > 100  # the CAVs do form links
    for p in (0.0, 0.5, 1.0):
        graphs, ch = _cav_graphs_under_background_cams({"enabled": True, "penetration": p})
        assert len(ch.background_stations) == {0.0: 0, 1.0: 24}.get(p, len(ch.background_stations))
        if p == 0.5:
            assert 0 < len(ch.background_stations) < 24
        for step, (a, b) in enumerate(zip(base, graphs)):
            assert a == b, (p, step)
    # the pairs with a background station keep a correlated state of their own
    assert len(ch._bg_link_state) > 0


def test_equipped_human_vehicles_send_cams_and_load_the_medium():
    env, ch = make(seed=0, cam={"penetration": 1.0})
    keys = [f"h{k}" for k in range(8)]
    xy = line(8) + [0.0, 20.0]
    for _ in range(20):  # 2 s in steps of 0.1 s
        ch.update([0, 1], line(2), background_ids=keys, background_positions=xy)
        env.run(until=env.now + 0.1)
    m = ch.metrics()
    assert m["cam_equipped_human_vehicles"] == 8
    assert abs(m["mac_cam_frames_sent"] - 10 * 10 * 2.0) <= 10
    assert m["channel_busy_ratio_mean"] == pytest.approx(10 * 10 * CAM_AIRTIME, rel=0.03)


# ------------------------------------------------------------------ cost to policy segments


def _segment_latencies(cam_enabled, humans=40, seed=0):
    """4 CAVs pull 8 segments of 4480 bytes each from their ring neighbour every 0.5 s, next to
    ``humans`` equipped human vehicles that send CAMs (or not)."""
    env = simpy.Environment()
    config = ChannelConfig(radio=UNIT_DISK, medium="csma",
                           cam={"enabled": cam_enabled, "penetration": 1.0, "rate_hz": 10.0})
    ch = Channel(env, config, np.random.default_rng(seed))
    keys = [f"h{k}" for k in range(humans)]
    xy = line(humans) + [0.0, 30.0]
    ch.update([0, 1, 2, 3], line(4), background_ids=keys, background_positions=xy)
    latencies = []

    def round_robin():
        for _ in range(6):
            procs = [ch.pull(i, (i + 1) % 4, lambda: ("seg", 8 * 4480)) for i in range(4) for _ in range(2)]
            for p in procs:
                result = yield p
                assert result.ok
                latencies.append(result.latency_s)
            yield env.timeout(0.5)

    env.process(round_robin())
    env.run(until=4.0)
    return np.array(latencies), ch.metrics()


def test_background_cam_load_lengthens_policy_segment_transfers():
    off, m_off = _segment_latencies(False)
    on, m_on = _segment_latencies(True)
    assert len(off) == len(on) == 48
    assert math.isnan(m_off["channel_busy_ratio_mean"]) is False
    # 44 senders at 10 Hz x 496 us: CAMs alone keep the medium busy 21.8 % of the time, and at
    # AC_VO they win the medium from the AC_BK segments
    cam_share = 44 * 10 * CAM_AIRTIME
    assert m_on["channel_busy_ratio_mean"] > m_off["channel_busy_ratio_mean"] + 0.8 * cam_share
    assert on.mean() > 1.15 * off.mean()
    assert m_on["cam_pdr"] > 0.9


# ------------------------------------------------------------------ reproducibility, off by default


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        assert (isinstance(x, float) and math.isnan(x) and math.isnan(y)) or x == y, k


def test_same_seed_same_cams_and_segments():
    _, a = _segment_latencies(True, humans=15, seed=7)
    _, b = _segment_latencies(True, humans=15, seed=7)
    _same(a, b)
    _, c = _segment_latencies(True, humans=15, seed=8)
    assert c["mac_queue_delay_mean_s"] != a["mac_queue_delay_mean_s"]


def test_cams_off_leaves_the_csma_medium_as_it_was():
    def run(cam):
        env = simpy.Environment()
        ch = Channel(env, ChannelConfig(radio=UNIT_DISK, medium="csma", cam=cam), np.random.default_rng(4))
        ch.update([0, 1, 2], line(3), background_ids=["h0", "h1"],
                  background_positions=np.array([[1.0, 1.0], [2.0, 2.0]]))
        procs = [ch.pull(0, 1, lambda: ("s", 8 * 9000)), ch.pull(2, 1, lambda: ("s", 8 * 9000))]
        env.run(until=1.0)
        return ch.metrics(), [p.value.latency_s for p in procs]

    base = run({})
    _same(base[0], run({"enabled": False, "rate_hz": 2.0, "penetration": 1.0})[0])
    assert base[1] == run({"enabled": False, "penetration": 1.0})[1]
    assert not any(k.startswith("cam_") for k in base[0])  # no new columns unless enabled
