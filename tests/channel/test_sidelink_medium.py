"""The C-V2X sidelink medium (cosim.channel.sidelink), driven by real SimPy processes: parameters
and their errors, payload mapping to transport blocks, half-duplex and collisions by hand,
semi-persistent scheduling (reservation, counter, reselection), exclusion from decoded SCIs only,
the unmonitored-slot rule, the 3 dB threshold raise, LTE's S-RSSI ranking, CBR of N periodic
senders, dynamic selection of multi-TB packets, blind retransmissions, abort, reproducibility."""

import math

import numpy as np
import pytest
import simpy

import radio_models
from cosim.channel.sidelink import (SidelinkMedium, SidelinkParameterError, SidelinkParams, ResourcePool,
                                    candidate_set, pick_replacement, select_resource)
from radio_models import sidelink_phy as phy
from radio_models.link_budget import free_space_path_loss_db

LTE = {"technology": "lte_mode4", "bandwidth_mhz": 10}


def free_space(**kw):
    return radio_models.create("free_space", kw)


def make(params, seed=0, model=None):
    env = simpy.Environment()
    return env, SidelinkMedium(env, model or free_space(), np.random.default_rng(seed), params)


def place(medium, xs):
    xs = np.asarray(xs, dtype=float)
    medium.update(np.arange(xs.shape[0]), np.stack([xs, np.zeros_like(xs)], axis=1))


def at(env, t, fn):
    ev = env.timeout(t - env.now)
    ev.callbacks.append(lambda _ev: fn())


# ------------------------------------------------------------------ parameters


def test_defaults_follow_the_technology():
    nr = SidelinkParams.from_mapping({})
    assert (nr.technology, nr.subcarrier_spacing_khz, nr.sensing_window_ms) == ("nr_mode2", 30, 1100)
    lte = SidelinkParams.from_mapping(LTE)
    assert (lte.subcarrier_spacing_khz, lte.sensing_window_ms, lte.reselection_counter) == (15, 1000, (5, 15))
    # TS 38.321 5.22.1.1: [5, 15] from 100 ms; [floor(5 x 100 / P), floor(15 x 100 / P)] below
    assert SidelinkParams.from_mapping({**LTE, "reservation_interval_ms": 50,
                                        "selection_window_ms": 50}).reselection_counter == (10, 30)
    assert SidelinkParams.from_mapping({**LTE, "reservation_interval_ms": 20,
                                        "selection_window_ms": 20}).reselection_counter == (25, 75)
    pool = ResourcePool(nr)
    assert pool.slot_s == pytest.approx(0.5e-3) and pool.n_rb == 51 and pool.n_sub == 5


def test_every_bad_parameter_is_reported_naming_its_key():
    with pytest.raises(SidelinkParameterError) as err:
        SidelinkParams.from_mapping({"mcs": 40, "subchannel_size_rb": 13, "p_keep": 0.9, "colour": 1,
                                     "bandwidth_mhz": 15, "blind_retransmissions": 2}, key="channel.sidelink")
    keys = [k for k, _ in err.value.problems]
    assert keys == ["channel.sidelink.colour", "channel.sidelink.bandwidth_mhz", "channel.sidelink.subchannel_size_rb",
                    "channel.sidelink.mcs", "channel.sidelink.p_keep", "channel.sidelink.blind_retransmissions"]
    assert "must be an integer in [0, 28] (got 40)" in str(err.value)
    with pytest.raises(SidelinkParameterError, match="selection_window_ms: must be a finite number >= 20"):
        SidelinkParams.from_mapping({**LTE, "selection_window_ms": 10})
    with pytest.raises(SidelinkParameterError, match="subcarrier_spacing_khz: must be one of 15"):
        SidelinkParams.from_mapping({**LTE, "subcarrier_spacing_khz": 30})
    with pytest.raises(SidelinkParameterError) as err:
        SidelinkParams.from_mapping({"in_band_emission": "yes", "in_band_emission_wxyz_db": [3, 6, 3]})
    assert [k for k, _ in err.value.problems] == ["channel.sidelink.in_band_emission",
                                                  "channel.sidelink.in_band_emission_wxyz_db"]
    assert "must be true or false (got 'yes')" in str(err.value) and "four numbers in [0, 30]" in str(err.value)


# ------------------------------------------------------------------ payload mapping


def test_payload_maps_to_transport_blocks_from_the_mcs_and_tbs_tables():
    # LTE 10 MHz, 4 sub-channels of 12 RBs, MCS 9 (QPSK, I_TBS 9): one sub-channel is 10 PSSCH
    # PRBs, 1544 bits (TS 36.213 Table 7.1.7.2.1-1): a 190-byte CAM is one TB on one sub-channel
    pool = ResourcePool(SidelinkParams.from_mapping({**LTE, "subchannel_size_rb": 12, "num_subchannels": 4, "mcs": 9}))
    # L sub-channels: 12 L - 2 RBs, the largest 2^a 3^b 5^c not above: 10, 22 -> 20, 34 -> 32, 46 -> 45
    assert [pool.formats[L].pssch_prb for L in (1, 2, 3, 4)] == [10, 20, 32, 45]
    assert [pool.formats[L].tbs_bits for L in (1, 2, 3, 4)] == [1544, 3112, 5160, 6968]
    assert pool.tb_plan(1520) == [1]
    assert pool.tb_plan(2000) == [2]
    # 4480 bytes = 35840 bits: 5 TBs of 6968 bits over 4 sub-channels, then 1000 bits on one
    assert pool.tb_plan(35840) == [4, 4, 4, 4, 4, 1]
    # NR 20 MHz at 30 kHz (51 RBs), 5 sub-channels of 10, MCS 11 (16QAM, R = 378/1024): one
    # sub-channel has 126 x 10 - 240 (PSCCH) - ceil(59 / (2 x 0.369)) = 940 REs; N_info = 1388,
    # n = 4, N'_info = 16 floor(86.75) = 1376 -> TBS 1416
    nr = ResourcePool(SidelinkParams.from_mapping({}))
    assert nr.formats[1].data_re == 940 and nr.formats[1].tbs_bits == 1416
    # a 2.2 Mbit policy (68,098 parameters x 32 bits) is a few hundred TBs
    tbs = nr.tb_plan(68_098 * 32)
    assert 150 <= len(tbs) <= 400 and sum(nr.formats[L].tbs_bits for L in tbs) >= 68_098 * 32


# ------------------------------------------------------------------ reception by hand

ONE_SLOT = {**LTE, "t1_slots": 1, "dynamic_window_ms": 1.0, "reception": "threshold"}


def test_half_duplex_two_stations_sending_in_the_same_slot_miss_each_other():
    env, med = make({**ONE_SLOT})
    place(med, [0.0, 50.0])
    frames = []
    at(env, 0.0105, lambda: frames.extend([med.send(0, 1, 800), med.send(1, 0, 800)]))
    env.run(0.05)
    # both selected the only slot of their window (11) and transmitted in it
    assert [f.first_tx_at for f in frames] == [pytest.approx(0.011), pytest.approx(0.011)]
    assert [(f.delivered, f.last_cause) for f in frames] == [(False, "half_duplex")] * 2
    assert med.metrics()["mac_frames_lost_half_duplex"] == 2


@pytest.mark.parametrize("interferer_x, delivered", [(100.0, False), (1000.0, True)])
def test_collision_by_sinr_on_a_shared_sub_channel(interferer_x, delivered):
    # one sub-channel, one slot: A (0 m) and B send to C (50 m) in slot 11 on sub-channel 0
    env, med = make({**ONE_SLOT, "num_subchannels": 1})
    place(med, [0.0, 50.0, interferer_x])
    frames = []
    at(env, 0.0105, lambda: frames.extend([med.send(0, 1, 800), med.send(2, 1, 800)]))
    env.run(0.05)
    fmt = med.pool.formats[1]  # MCS 11: 16QAM I_TBS 10 on 8 PRBs: 1384 bits over 864 REs
    assert (fmt.pssch_prb, fmt.tbs_bits, fmt.data_re) == (8, 1384, 864)
    threshold = 10 * math.log10(2 ** (1384 / 864) - 1) + 3.0  # 6.09 dB
    s_a = 23.0 - free_space_path_loss_db(50.0, 5.9e9)
    s_b = 23.0 - free_space_path_loss_db(abs(interferer_x - 50.0), 5.9e9)
    noise = phy.noise_dbm(8, 15, 9.0)
    sinr = s_a - 10 * math.log10(10 ** (s_b / 10) + 10 ** (noise / 10))
    assert bool(sinr >= threshold) is delivered  # by hand: 0 dB (lost) and 25.5 dB (decoded)
    assert frames[0].delivered is delivered
    if not delivered:
        assert frames[0].last_cause == "collision"  # its SNR alone (44.6 dB) would have decoded it
        assert s_a - noise > threshold


@pytest.mark.parametrize("emission", [False, True])
def test_in_band_emission_of_a_near_interferer_on_the_other_sub_channel(emission):
    # two sub-channels of 10 RBs (RBs 0-19 of 50). B (310 m) sends CAMs on an SPS reservation;
    # A (0 m) sends to C (300 m) with a one-slot window at B's next reservation: A excludes B's
    # resource (its decoded SCI) and takes the other sub-channel of the same slot. B is 10 m from
    # C: without in-band emission C decodes A's TB; with it B's leakage drowns it.
    env, med = make({**ONE_SLOT, "num_subchannels": 2, "selection_window_ms": 20.0, "in_band_emission": emission})
    place(med, [0.0, 310.0, 300.0])
    cam_source(env, med, 1, 0.0105, bits=800)  # one sub-channel
    frames = []

    def victim():
        yield env.timeout(0.05)
        (next_slot, _, _, _), = med.reservations().values()
        yield env.timeout((next_slot - 0.5) * med.pool.slot_s - env.now)  # window: next_slot only
        frames.append(med.send(0, 2, 800))

    env.process(victim())
    env.run(0.3)
    (tx,), (b_next, _, b_x, b_width) = frames[0].planned, med.reservations()[1]
    assert (tx.slot - b_next) % 100 == 0 and tx.x == 1 - b_x and tx.L == b_width == 1
    # B's 10 allocated RBs (PSCCH 2 + PSSCH 8, MCS 11: 16QAM, EVM 12.5 %) leak into A's 10, at
    # Delta 1..10 RBs: 20 log10(0.125) - 3 - 0.5 (Delta - 1) - 3 dB each (the other terms are
    # lower, no image or carrier RB among them), a share of B's power of sum / 10 = -26.08 dB
    leak = sum(10 ** ((20 * math.log10(0.125) - 6 - 0.5 * (d - 1)) / 10) for d in range(1, 11)) / 10
    assert 10 * math.log10(leak) == pytest.approx(-26.08, abs=0.01)
    if emission:
        share = med.pool.emission_share
        assert share[1 - b_x, 1, b_x] == pytest.approx(leak, rel=1e-12) and share[b_x, 1, b_x] == 1.0
    s_a = 23.0 - free_space_path_loss_db(300.0, 5.9e9)
    s_b = 23.0 - free_space_path_loss_db(10.0, 5.9e9)
    noise = phy.noise_dbm(8, 15, 9.0)
    interference = 10 ** (s_b / 10) * leak if emission else 0.0
    sinr = s_a - 10 * math.log10(interference + 10 ** (noise / 10))
    threshold = 10 * math.log10(2 ** (1384 / 864) - 1) + 3.0
    assert bool(sinr >= threshold) is (not emission)  # by hand: 29.0 dB, and -3.5 dB with the leak
    assert frames[0].delivered is (not emission)
    assert frames[0].last_cause == ("collision" if emission else None)


def test_below_sensitivity_and_propagation():
    env, med = make({**ONE_SLOT, "sensitivity_dbm": -90.0, "reception": "bler"})
    # 23 dBm - PL(2 km) = -91.8 dBm: below -90 dBm
    assert 23.0 - free_space_path_loss_db(2000.0, 5.9e9) < -90.0
    place(med, [0.0, 2000.0])
    frames = []
    at(env, 0.0105, lambda: frames.append(med.send(0, 1, 800)))
    env.run(0.05)
    assert frames[0].last_cause == "below_sensitivity"


# ------------------------------------------------------------------ semi-persistent scheduling


def cam_source(env, med, node, phase, period=0.1, bits=1520, kind="cam", log=None):
    def proc():
        yield env.timeout(phase)
        while True:
            f = med.send(node, -1, bits, kind=kind)
            if log is not None:
                log.append(f)
            yield env.timeout(period)
    env.process(proc())


def test_sps_keeps_its_resource_for_the_counter_then_reselects():
    env, med = make({**LTE, "subchannel_size_rb": 12, "num_subchannels": 4, "mcs": 9})
    place(med, [0.0, 30.0])
    log = []
    cam_source(env, med, 0, 0.0003, log=log)
    env.run(40.0)
    slots = np.array([round(f.first_tx_at / 1e-3) for f in log if f.first_tx_at is not None])
    gaps = np.diff(slots)
    # every CAM waits for its reservation: 100 slots apart while the counter runs
    runs = np.split(np.arange(slots.shape[0]), np.nonzero(gaps != 100)[0] + 1)
    lengths = [len(r) for r in runs[1:-1]]  # whole reservations (not the first / last)
    assert lengths and min(lengths) >= 5 and max(lengths) <= 15  # counter in [5, 15], p_keep 0
    assert abs(np.mean(lengths) - 10.0) < 1.5  # uniform on 5..15
    # every reselection breaks the 100-slot rhythm (step 5 never gives back the slot after an own
    # transmission); one more may belong to a CAM still waiting at the end
    m = med.metrics()
    assert m["sl_sps_selections"] == 1 and len(runs) - 1 <= m["sl_sps_reselections"] <= len(runs)
    # latency of a CAM is at most the selection window (100 ms)
    assert all(0 < f.first_tx_at - f.enqueued_at <= 0.1 + 1e-9 for f in log if f.first_tx_at is not None)
    # the resource map: station 0's reservation, its next slot after its last transmission (100
    # slots after it, or up to a selection window after the next CAM if that one reselected)
    (next_slot, period, x, width), = med.reservations().values()
    assert list(med.reservations()) == [0] and period == 100 and width == 1 and 0 <= x < 4
    assert slots[-1] < next_slot <= slots[-1] + 200


def test_p_keep_keeps_the_resource_when_the_counter_runs_out():
    env, med = make({**LTE, "p_keep": 0.8})
    place(med, [0.0])
    cam_source(env, med, 0, 0.0003)
    env.run(60.0)
    m = med.metrics()
    # per counter expiry: keep with 0.8, reselect with 0.2
    expiries = m["sl_sps_kept"] + m["sl_sps_reselections"]
    assert expiries > 30
    assert m["sl_sps_kept"] / expiries == pytest.approx(0.8, abs=4 * math.sqrt(0.16 / expiries))


def test_exclusion_uses_decoded_scis_only_and_never_the_slots_of_own_transmissions():
    # every CAM reselects (counter 1, p_keep 0) in a window of 20 slots of one sub-channel;
    # A, B (50 m from A) and C (out of range) get their CAMs at the same instants
    params = {**LTE, "num_subchannels": 1, "selection_window_ms": 20.0, "reselection_counter": [1, 1],
              "range_m": 1000.0}
    env, med = make(params)
    place(med, [0.0, 50.0, 3000.0])
    logs = {0: [], 1: [], 2: []}
    for node in logs:
        cam_source(env, med, node, 0.0005, log=logs[node])
    env.run(30.0)

    def tx_slots(node):
        return [round(f.first_tx_at / 1e-3) if f.first_tx_at is not None else None for f in logs[node]]

    a, b, c = tx_slots(0), tx_slots(1), tx_slots(2)
    hits_b = hits_c = own_repeats = 0
    for k in range(1, len(a) - 1):
        announced = a[k - 1] + 100  # A's last SCI, decoded before the selection of CAM k
        hits_b += b[k] == announced
        hits_c += c[k] == announced
        own_repeats += (b[k] == b[k - 1] + 100) + (c[k] == c[k - 1] + 100)
    assert hits_b == 0  # B decoded A's SCI: its reservation is excluded (RSRP >> -110 dBm)
    assert hits_c >= 5  # C did not: it picks A's resource like any other (1 in 19, ~15 of 298)
    assert own_repeats == 0  # step 5: the slot after an own transmission is never a candidate


def _sci(*rows):
    cols = list(zip(*rows)) if rows else [[]] * 6
    return tuple(np.asarray(c, dtype=float if i == 4 else np.int64) for i, c in enumerate(cols))


def test_select_raises_the_threshold_by_3_db_until_20_percent_remain():
    # 10 slots x 1 sub-channel; 9 of them reserved by SCIs decoded at -100 dBm (> -110): 1 left,
    # fewer than 20 % of 10: the threshold goes -110 -> -107 -> -104 -> -101 -> -98
    rows = [(z - 100, 0, 1, 100, -100.0, -1) for z in range(1001, 1010)]
    sel = select_resource(n=1000, t1=1, t2=10, n_sub=1, L=1, sci=_sci(*rows), unmonitored=np.empty(0, np.int64),
                          own_planned=np.empty(0, np.int64), p_tx=100, c_resel=10, hyp_periods=(100,), tscal=100,
                          threshold_dbm=-110.0, share=0.2, rng=np.random.default_rng(0))
    assert sel.threshold_dbm == -98.0 and sel.candidates == 10 and sel.total == 10
    # with one of them at -90 dBm the 9 at -100 are enough (still 4 raises) and -90 stays out
    rows[4] = (1005 - 100, 0, 1, 100, -90.0, -1)
    picks = {select_resource(n=1000, t1=1, t2=10, n_sub=1, L=1, sci=_sci(*rows), unmonitored=np.empty(0, np.int64),
                             own_planned=np.empty(0, np.int64), p_tx=100, c_resel=10, hyp_periods=(100,), tscal=100,
                             threshold_dbm=-110.0, share=0.2, rng=np.random.default_rng(s)).y for s in range(200)}
    assert 1005 not in picks and picks == set(range(1001, 1011)) - {1005}
    # an SCI below the threshold excludes nothing; one whose reservation lies outside the window neither
    sel = select_resource(n=1000, t1=1, t2=10, n_sub=2, L=1, sci=_sci((901, 0, 1, 100, -115.0, -1), (950, 1, 1, 100, -80.0, -1)),
                          unmonitored=np.empty(0, np.int64), own_planned=np.empty(0, np.int64), p_tx=100, c_resel=10,
                          hyp_periods=(100,), tscal=100, threshold_dbm=-110.0, share=0.2, rng=np.random.default_rng(0))
    assert sel.candidates == 20 and sel.threshold_dbm == -110.0


def test_select_excludes_overlapping_sub_channels_and_announced_retransmissions():
    # L = 2 over 4 sub-channels (x = 0..2); an SCI on sub-channel 2 reserving slot 1001 excludes
    # x = 1 and 2 there; an announced retransmission (slot 1003, sub-channels 0-1) x = 0 and 1
    rows = [(901, 2, 1, 100, -80.0, -1), (995, 0, 2, 0, -80.0, 1003)]
    for seed in range(100):
        sel = select_resource(n=1000, t1=1, t2=4, n_sub=4, L=2, sci=_sci(*rows), unmonitored=np.empty(0, np.int64),
                              own_planned=np.empty(0, np.int64), p_tx=0, c_resel=1, hyp_periods=(100,), tscal=4,
                              threshold_dbm=-110.0, share=0.2, rng=np.random.default_rng(seed))
        assert (sel.y, sel.x) not in {(1001, 1), (1001, 2), (1003, 0), (1003, 1)}
        assert sel.candidates == 12 - 4


def test_the_candidate_set_is_what_selection_draws_from_and_replacements_keep_the_gap():
    rows = [(901, 2, 1, 100, -80.0, -1), (995, 0, 2, 0, -80.0, 1003)]
    kw = dict(n=1000, t1=1, t2=4, n_sub=4, L=2, sci=_sci(*rows), unmonitored=np.empty(0, np.int64),
              own_planned=np.array([1002]), p_tx=0, c_resel=1, hyp_periods=(100,), tscal=4, threshold_dbm=-110.0,
              share=0.2)
    cands = candidate_set(**kw)
    # slots 1001, 1003, 1004 (1002 is the station's own), x = 0..2, less the four excluded above
    expected = {(y, x) for y in (1001, 1003, 1004) for x in range(3)} - {(1001, 1), (1001, 2), (1003, 0), (1003, 1)}
    assert {(int(y) + cands.base, int(x)) for y, x in zip(*np.nonzero(cands.mask))} == expected
    assert cands.total == 9 and cands.threshold_dbm == -110.0
    assert all(cands.contains(*r) for r in expected) and not cands.contains(1002, 0) and not cands.contains(1005, 0)
    picks = {(sel.y, sel.x) for sel in (select_resource(**kw, rng=np.random.default_rng(s)) for s in range(100))}
    assert picks == expected
    # a replacement avoids the other copy's slot and stays within the gap of it
    for s in range(50):
        y, x = pick_replacement(cands, np.random.default_rng(s), avoid=1001, near=1001, gap=2)
        assert (y, x) in expected and y == 1003
    assert pick_replacement(cands, np.random.default_rng(0), avoid=1004, near=1004, gap=0) is None


def test_lte_ranking_keeps_the_20_percent_of_lowest_s_rssi():
    # 10 slots x 1 sub-channel, nothing excluded; S-RSSI rises with the slot: S_B = the 2 lowest
    rssi = lambda ys: (ys - 1000.0)[:, None].astype(float)  # noqa: E731
    picks = {select_resource(n=1000, t1=1, t2=10, n_sub=1, L=1, sci=_sci(), unmonitored=np.empty(0, np.int64),
                             own_planned=np.empty(0, np.int64), p_tx=100, c_resel=10, hyp_periods=(100,), tscal=100,
                             threshold_dbm=-110.0, share=0.2, rng=np.random.default_rng(s), rssi=rssi).y
             for s in range(100)}
    assert picks == {1001, 1002}


def test_cbr_of_n_periodic_senders_in_one_sensing_range():
    # 30 stations within 150 m, 4 sub-channels, 10 Hz CAMs: every other station's TB occupies
    # one (subframe, sub-channel) of the 100 x 4 of a 100 ms window, with S-RSSI far above -94 dBm,
    # and sensing keeps them apart: CBR = 29 / 400 at every station
    n = 30
    env, med = make({**LTE, "subchannel_size_rb": 12, "num_subchannels": 4, "mcs": 9})
    place(med, np.arange(n) * 5.0)
    rng = np.random.default_rng(3)
    for node in range(n):
        cam_source(env, med, node, float(rng.random()) * 0.1)
    env.run(2.0)
    med.reset_stats()
    cbrs = []
    for t in np.arange(2.1, 6.01, 0.1):  # a station that reselects shows 0 or 2 TBs in one window
        env.run(t)
        cbrs.append(np.mean([med.cbr(v) for v in range(n)]))
    assert np.mean(cbrs) == pytest.approx((n - 1) / 400, rel=0.03)
    assert med.metrics()["channel_busy_ratio_mean"] == pytest.approx((n - 1) / 400, rel=0.03)


# ------------------------------------------------------------------ dynamic selection


def test_a_multi_tb_packet_goes_out_tb_after_tb_by_dynamic_selection():
    env, med = make({})  # NR, 20 MHz at 30 kHz, MCS 11
    place(med, [0.0, 40.0])
    frames = []
    at(env, 0.001, lambda: frames.append(med.send(0, 1, 8 * 4480)))
    env.run(1.0)
    f = frames[0]
    plan = med.pool.tb_plan(8 * 4480)
    assert f.delivered and med.tbs_sent == len(plan) == 5  # 4 TBs over 5 sub-channels + 1
    slots = sorted(t.slot for t in f.planned)
    assert len(set(slots)) == len(slots)  # one TB per slot
    # each TB in [n + 1, n + T2] of the slot after the previous one: T2 = 5 ms = 10 slots
    assert all(1 <= b - a <= 1 + 10 for a, b in zip(slots, slots[1:]))
    assert med.metrics()["sl_dynamic_selections"] == 5


def test_blind_retransmission_sends_every_tb_twice_within_the_gap():
    env, med = make({"blind_retransmissions": 1})
    place(med, [0.0, 40.0])
    frames = []
    at(env, 0.001, lambda: frames.append(med.send(0, 1, 8 * 4480)))
    env.run(1.0)
    f = frames[0]
    assert f.delivered and med.tbs_sent == 2 * len(med.pool.tb_plan(8 * 4480))
    by_tb = {}
    for t in f.planned:
        by_tb.setdefault(t.tb, []).append(t.slot)
    assert all(len(v) == 2 and 0 < abs(v[1] - v[0]) <= 31 for v in by_tb.values())


def test_abort_stops_a_packet_and_the_next_one_goes():
    env, med = make({})
    place(med, [0.0, 40.0])
    frames = []
    at(env, 0.001, lambda: frames.extend([med.send(0, 1, 8 * 40000), med.send(0, 1, 800)]))
    at(env, 0.004, lambda: med.abort(frames[0]))
    env.run(1.0)
    big, small = frames
    assert not big.done.triggered and big.cancelled
    sent_big = sum(1 for t in big.planned if t.slot < round(0.004 / 0.5e-3))
    assert sent_big < len(med.pool.tb_plan(8 * 40000))
    assert small.delivered


def test_same_seed_same_numbers():
    def run(seed):
        env, med = make({**LTE, "subchannel_size_rb": 12, "num_subchannels": 4, "mcs": 9}, seed=seed,
                        model=radio_models.create("log_distance", {"shadowing_sigma_db": 3.0}))
        xs = np.arange(40) * 8.0
        place(med, xs)
        rng = np.random.default_rng(seed)
        for node in range(40):
            cam_source(env, med, node, float(rng.random()) * 0.1)

        def geometry():
            while True:
                yield env.timeout(0.1)
                place(med, xs)
        env.process(geometry())
        env.run(2.0)
        m = med.metrics()
        return m["sl_broadcast_rx_delivered"], m["sl_broadcast_rx_collision"], m["channel_busy_ratio_mean"]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_a_prr_only_model_gives_a_packet_its_prr_once_whatever_its_transport_blocks():
    # unit disk, PRR 0.5: a 4480-byte packet of 5 TBs arrives with probability 0.5, not 0.5^5
    env = simpy.Environment()
    med = SidelinkMedium(env, radio_models.create("unit_disk", {"range_m": 100.0, "prr": 0.5}),
                         np.random.default_rng(0), {}, prr=lambda s, r, kind: 0.5)
    from cosim.channel.topology import build_topology

    pos = np.array([[0.0, 0.0], [50.0, 0.0]])
    topo = build_topology([0, 1], pos, None, 1.5, med.model, np.random.default_rng(0), (8 * 4480, 512))
    med.update(np.arange(2), pos, None, topo)
    frames = []

    def source():
        for _ in range(400):
            f = med.send(0, 1, 8 * 4480)
            frames.append(f)
            yield f.done

    env.process(source())
    env.run(60.0)
    assert len(frames) == 400 and len(med.pool.tb_plan(8 * 4480)) == 5
    share = np.mean([f.delivered for f in frames])
    assert share == pytest.approx(0.5, abs=4 * math.sqrt(0.25 / 400))


# ------------------------------------------------------------------ NR re-evaluation


def _race(kind, seed, re_evaluation):
    """Stations A (0) and B (1), 10 m apart, one sub-channel, blind retransmissions: both select
    in slot 0 without knowing each other; B's first copy announces its second. A sends a
    ``kind`` packet (with "cam", a second one 100 ms later on the same reservation)."""
    env, med = make({"num_subchannels": 1, "blind_retransmissions": 1, "dynamic_window_ms": 20.0,
                     "selection_window_ms": 20.0, "re_evaluation": re_evaluation}, seed=seed)
    place(med, [0.0, 10.0])
    a, b = [], []
    at(env, 0.0001, lambda: (a.append(med.send(0, -1, 800, kind=kind)), b.append(med.send(1, -1, 800))))
    if kind == "cam":
        at(env, 0.1001, lambda: a.append(med.send(0, -1, 800, kind=kind)))
    env.run(0.3)
    b1, b2 = sorted(t.slot for t in b[0].planned)
    slots = [sorted(t.slot for t in f.planned) for f in a]
    # A learns of b2 from B's SCI in b1 in time for its re-evaluation in slot min(A's) - T3,
    # whose sensing window ends T_proc,0 earlier
    known = b1 < slots[0][0] - med.pool.t3 - med.pool.t_proc0
    return known and b2 in slots[0], slots, med


@pytest.mark.parametrize("kind", ["data", "cam"])
def test_re_evaluation_moves_a_resource_that_a_later_sci_reserves(kind):
    hits_on = hits_off = 0
    moved = 0
    for seed in range(300):
        hit, slots, med = _race(kind, seed, True)
        hits_on += hit
        moved += med.reevaluation_reselections
        if kind == "cam":  # the reservation follows the moved resource: the second CAM 100 ms on
            assert slots[1] == [s + med.pool.rri for s in slots[0]]
            assert 0 < slots[0][1] - slots[0][0] <= med.pool.retx_gap
        hits_off += _race(kind, seed, False)[0]
    assert hits_on == 0 and moved > 0
    assert hits_off > 0  # without it A transmits on B's announced retransmission


def test_re_evaluation_is_nr_only_and_on_by_default_there():
    assert SidelinkParams.from_mapping({}).re_evaluation is True
    assert SidelinkParams.from_mapping(LTE).re_evaluation is False
    assert SidelinkParams.from_mapping({"re_evaluation": False}).re_evaluation is False
    with pytest.raises(SidelinkParameterError) as err:
        SidelinkParams.from_mapping({**LTE, "re_evaluation": True}, key="channel.medium_params")
    assert [k for k, _ in err.value.problems] == ["channel.medium_params.re_evaluation"]
    assert "lte_mode4 has none" in str(err.value)
    with pytest.raises(SidelinkParameterError, match="re_evaluation: must be true, false or null"):
        SidelinkParams.from_mapping({"re_evaluation": "yes"})


def test_re_evaluation_keeps_the_books_under_retries_aborts_and_mixed_traffic():
    # 20 NR stations with CAMs, unicast packets of 1-6 TBs resent up to twice, broadcasts of which
    # some are aborted, blind retransmissions: re-evaluation moves resources, and still no
    # station sends two TBs in one slot, every packet ends, and the plan books agree
    env = simpy.Environment()
    med = SidelinkMedium(env, free_space(), np.random.default_rng(3),
                         {"blind_retransmissions": 1, "dynamic_window_ms": 30.0, "selection_window_ms": 30.0,
                          "num_subchannels": 2, "subchannel_size_rb": 25}, retry_limit=2)
    n = 20
    place(med, np.arange(n) * 15.0)
    rng = np.random.default_rng(4)
    frames = []

    def source(node):
        yield env.timeout(rng.random() * 0.1)
        while True:
            med.send(node, -1, 8 * 190, kind="cam")
            draw = rng.random()
            if draw < 0.4:
                frames.append(med.send(node, (node + 1) % n, int(rng.integers(800, 30000))))
            elif draw < 0.6:
                f = med.send(node, -1, 8 * 4000)
                frames.append(f)
                if rng.random() < 0.3:
                    at(env, env.now + rng.random() * 0.01, lambda f=f: med.abort(f))
            yield env.timeout(0.1)

    def books():  # every slot: the planned slots of each station are those of its waiting TBs
        while True:
            yield env.timeout(med.pool.slot_s)
            waiting = {}
            for slot, txs in med._plans.items():
                for t in txs:
                    if not t.frame.cancelled:
                        assert t.slot == slot
                        waiting.setdefault(med._column(t.frame.sender), set()).add(slot)
            assert all(med._planned[c] == waiting.get(c, set()) for c in med._planned)

    for node in range(n):
        env.process(source(node))
    env.process(books())
    env.run(3.0)
    m = med.metrics()
    assert m["sl_reevaluation_reselections"] > 0
    for node in range(n):
        sent = list(med._own_tx[med._column(node)])
        assert len(sent) == len(set(sent))
    assert all(f.done.triggered or f.cancelled for f in frames if f.enqueued_at < 2.5)
