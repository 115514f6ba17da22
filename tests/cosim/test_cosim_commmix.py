"""CommMix in real co-simulation runs (SUMO, SimPy, the V2V channel, torch), and its round
semantics on a hand-built channel."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import simpy
import torch
from cosim_testkit import SCENARIOS, run_cosim

from cosim.sim import seeding
from cosim.channel import Channel
from cosim.sim.commmix import CommMix
from cosim.config import load_config
from cosim.config.comm import PRESETS
from cosim.sim.contracts import EpochContext
from cosim.sim.sac_controller import SACController

SMALL = ("sac.hidden=[32,32]", "sac.batch_size=32", "sac.policy_delay=2", "train.warmup_steps=50",
         "train.update_every=1", "env.horizon=200")
D_SMALL = (6 * 32 + 32) + (32 * 32 + 32) + 2 * (32 + 1)  # flat policy length of the 32x32 policy
WIDE = "channel.radio.params={range_m: 1000, prr: 1.0}"  # everyone in range on figure8


def _run(out: Path, *sets: str, scenario: str = "figure8.yaml") -> list[dict[str, str]]:
    return run_cosim(scenario, out, *SMALL, *sets)


def _total(rows, column: str) -> float:
    return sum(float(r[column]) for r in rows)


def _matrix(path: Path) -> np.ndarray:
    with open(path) as fh:
        rows = list(csv.reader(fh))[1:]
    return np.array([[int(x) for x in r[1:]] for r in rows])


# ---------------------------------------------------------------- accounting on runs
def test_ideal_channel_accounting_matches_the_paper(tmp_path):
    rows = _run(tmp_path, "train.epochs=2", "channel.mode=ideal", WIDE)
    rho_total, rho_ef = _total(rows, "rho_total"), _total(rows, "rho_ef")
    assert rho_total > 50 and 0 < rho_ef <= rho_total
    for r in rows:
        assert int(r["replicas_dropped"]) == 0 and int(r["replicas_cancelled"]) == 0  # ideal: nothing lost
        assert int(r["segments_received"]) == int(r["segments_requested"])
        # every round: P_i = min(4, 8 neighbours) = 4 segments, kappa_i = 3 replicas
        assert int(r["segments_requested"]) == 12 * int(r["comm_rounds"]) == 4 * int(r["rho_total"])
        # psi = rho_total x v with v = 32 d bits (paper, Section VI-B); on an ideal channel it is
        # also what the channel carried (air_gb)
        assert float(r["psi_gb"]) * 8 * 1024**3 == pytest.approx(int(r["rho_total"]) * 32 * D_SMALL)
        assert float(r["air_gb"]) * 8 * 1024**3 == pytest.approx(int(r["channel_payload_bits"]))
        assert float(r["air_gb"]) == pytest.approx(float(r["psi_gb"]))
        assert int(r["messages"]) == int(r["channel_payload_packets"])
        assert float(r["rho_r"]) == pytest.approx(int(r["rho_ef"]) / int(r["rho_total"]))
        assert float(r["staleness_max"]) == 0  # zero-time transfers mix before the next update
        assert int(r["transfers_started"]) == int(r["transfers_ok"])
    assert 0 < float(rows[-1]["mix_zeta_mean"]) <= 0.8 and math.isfinite(float(rows[-1]["mix_advantage_mean"]))
    assert 0 <= float(rows[-1]["mix_cap_share"]) <= 1 and float(rows[-1]["mix_q_mean"]) >= 0
    received = _matrix(tmp_path / "comm_segments_received.csv")
    mixes = _matrix(tmp_path / "comm_mixes.csv")
    assert received.shape == (9, 9) and received.sum() == _total(rows, "segments_received")
    assert np.all(np.diag(received) == 0) and np.all(np.diag(mixes) == 0)
    assert mixes.sum() >= rho_ef  # each mixed replica credits each of its distinct responders


def test_dropped_replica_rate_is_one_minus_prr_to_the_packets_per_replica(tmp_path):
    prr = 0.9  # every packet independently lost with 1 - prr: the independent medium, no contention
    rows = _run(tmp_path, "train.epochs=2", "channel.max_retries=0", "channel.medium=independent",
                f"channel.radio.params={{range_m: 1000, prr: {prr}}}")
    dropped, complete = _total(rows, "replicas_dropped"), _total(rows, "rho_total")
    n = dropped + complete
    # a replica is 4 segments; a segment is one request packet and its payload packets
    payload_packets = math.ceil(32 * math.ceil(D_SMALL / 4) / (8 * 4480))
    packets = 4 * (1 + payload_packets)
    p_drop = 1 - prr**packets
    assert n > 300
    assert abs(dropped / n - p_drop) < 4 * math.sqrt(p_drop * (1 - p_drop) / n)
    assert _total(rows, "segments_lost") > 0 and _total(rows, "psi_gb") > 0
    # psi counts complete replicas (Table V); what the air carried includes the lost segments
    for r in rows:
        assert float(r["psi_gb"]) * 8 * 1024**3 == pytest.approx(int(r["rho_total"]) * 32 * D_SMALL)
        assert float(r["air_gb"]) > float(r["psi_gb"])


def test_zero_filled_replicas_are_counted_apart_from_rho_total(tmp_path):
    """rho_total counts complete replicas only (the paper's reconstructed referential policies);
    a replica with a lost segment that is mixed with zeros in its place is counted apart."""
    rows = _run(tmp_path, "train.epochs=1", "comm.lost_segment=zero_fill", "channel.max_retries=0",
                "channel.medium=independent", "channel.radio.params={range_m: 1000, prr: 0.97}")
    (r,) = rows
    started = int(r["segments_requested"]) // 4  # every round: P_i = 4 (8 neighbours in range)
    assert int(r["segments_requested"]) == 4 * started
    parts = ("rho_total", "replicas_zero_filled", "replicas_dropped", "replicas_cancelled")
    assert sum(int(r[c]) for c in parts) == started
    assert int(r["replicas_zero_filled"]) > 0 and int(r["rho_total"]) > 0
    assert int(r["rho_ef"]) <= int(r["rho_total"])
    assert int(r["replicas_zero_filled_mixed"]) <= int(r["replicas_zero_filled"])
    assert float(r["psi_gb"]) * 8 * 1024**3 == pytest.approx(int(r["rho_total"]) * 32 * D_SMALL)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_staleness_under_a_slow_link(tmp_path, mode):
    # 0.05 Mb/s: a 10.8 kbit segment takes ~0.2 s (private links, no contention), two traffic
    # ticks, while agents learn every tick
    rows = _run(tmp_path, "train.epochs=1", f"comm.mode={mode}", "channel.medium=independent",
                "channel.radio.params={range_m: 1000, prr: 1.0, data_rate_mbps: 0.05}")
    (r,) = rows
    assert int(r["rho_ef"]) > 0 and float(r["segment_latency_mean_s"]) > 0.1
    if mode == "sync":
        assert float(r["staleness_max"]) == 0 and int(r["learning_phases_held"]) > 0
    else:
        assert float(r["staleness_mean"]) > 0 and int(r["learning_phases_held"]) == 0


def test_resume_is_exact_with_rounds_on_a_lossy_channel(tmp_path):
    lossy = ("channel.radio.params={range_m: 150, prr: 0.8}", "channel.max_retries=1")
    reference = _run(tmp_path / "ref", "train.epochs=3", *lossy)
    _run(tmp_path / "run", "train.epochs=2", *lossy)
    resumed = _run(tmp_path / "run", "train.epochs=3", *lossy)
    assert resumed == reference
    assert _total(reference, "rho_total") > 0
    for name in ("comm_segments_received.csv", "comm_mixes.csv"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


@pytest.mark.parametrize("scenario", ["figure8.yaml", "merge.yaml"])
def test_every_preset_runs_an_epoch(tmp_path, scenario):
    """Each method in one subprocess-free pass would need one SUMO per process: run them one by one."""
    for method in PRESETS:
        extra = ("env.warmup_steps=100",) if scenario == "merge.yaml" else ()
        (r,) = _run(tmp_path / method, "train.epochs=1", "env.horizon=150", "train.warmup_steps=40",
                    f"comm.method={method}", *extra, scenario=scenario)
        if method == "isac":
            assert int(r["comm_rounds"]) == 0 and int(r["transfers_started"]) == 0
        else:
            assert int(r["comm_rounds"]) > 0 and int(r["segments_received"]) > 0, method
            assert int(r["mix_nonfinite_skips"]) == 0


# ---------------------------------------------------------------- round semantics
def _hand_built(tmp_path, method: str, positions, mode: str, rate_mbps: float = 6.0, **comm):
    sets = [*SMALL, f"comm.method={method}", f"channel.mode={mode}",
            f"channel.radio.params={{range_m: 100, prr: 1.0, data_rate_mbps: {rate_mbps}}}"]
    sets += [f"comm.{k}={v}" for k, v in comm.items()]
    config = load_config(SCENARIOS / "figure8.yaml", sets)
    controller = SACController(config)
    hook = CommMix(config, controller)
    env = simpy.Environment()
    ctx = EpochContext(env=env, epoch=0, config=config, traffic=None, state=None, tick=env.event())
    ctx.channel = Channel(env, config.channel, seeding.rng(0, "test"))
    nodes = list(range(len(positions)))
    ctx.channel.update(nodes, np.array([[x, 0.0] for x in positions]))
    hook.begin_epoch(ctx)
    fleet = controller.fleet
    torch.manual_seed(0)
    for i in range(fleet.n_agents):
        fleet.set_policy_vector(i, torch.randn(fleet.policy_dim) * 0.1)
    hook.last_k = np.full(fleet.n_agents, -1)  # every agent's counter "crossed" a multiple of U
    return ctx, hook, fleet


def test_responder_sends_its_parameters_at_response_time(tmp_path):
    # two vehicles 10 m apart; the 512-bit request takes 51 ms at 0.01 Mb/s
    ctx, hook, fleet = _hand_built(tmp_path, "drl_de", [0.0, 10.0], "simulated", rate_mbps=0.01, zeta=1.0)
    hook.after_fleet_step(ctx)  # both start a round: 0 pulls from 1, 1 pulls from 0
    later = [torch.full((fleet.policy_dim,), 0.25), torch.full((fleet.policy_dim,), -0.5)]

    def move_on():
        yield ctx.env.timeout(0.02)  # before the requests arrive: both policies change
        for i, v in enumerate(later):
            fleet.set_policy_vector(i, v)

    ctx.env.process(move_on())
    ctx.env.run()
    assert len(hook.pending) == 2 and ctx.env.now > 0.05
    hook.flush()  # zeta = 1: each agent takes the other's policy as it was at response time
    torch.testing.assert_close(fleet.get_policy_vector(0), later[1])
    torch.testing.assert_close(fleet.get_policy_vector(1), later[0])
    assert hook.stats.counts["rho_ef"] == 2 and hook.segments_received[0, 1] == 1 == hook.mixes[1, 0]


def test_average_over_the_neighbourhood_is_eq_1_with_an_ideal_channel(tmp_path):
    ctx, hook, fleet = _hand_built(tmp_path, "avg", [0.0, 30.0, 60.0, 90.0, 500.0], "ideal")
    before = fleet.get_policy_vectors()
    hook.after_fleet_step(ctx)
    ctx.env.run()
    hook.flush()
    after = fleet.get_policy_vectors()
    # agent 0's neighbours within 100 m: 1, 2, 3; agent 1's: 0, 2, 3; ...; agent 4 has none
    torch.testing.assert_close(after[0], before[[0, 1, 2, 3]].mean(0))
    torch.testing.assert_close(after[1], before[[0, 1, 2, 3]].mean(0))
    torch.testing.assert_close(after[4], before[4])
    assert hook.stats.counts["comm_rounds_no_neighbours"] >= 1 + 4  # agent 4 and the unbound slots


def test_segments_come_from_distinct_neighbours_and_rebuild_the_vector(tmp_path):
    ctx, hook, fleet = _hand_built(tmp_path, "rsm_masac", [0.0, 20.0, 40.0, 60.0, 80.0], "ideal")
    hook.after_fleet_step(ctx)
    ctx.env.run()
    mine = [rep for rep in hook.pending if rep.round.agent == 0]
    assert len(mine) == 3  # kappa_0 = min(3, |Omega_0| = 4)
    responders = [j for j in range(1, 5)]
    theta = fleet.get_policy_vectors()
    for rep in mine:
        assert len(rep.responders) == 4 and len(set(rep.responders)) == 4  # P_0 = 4 distinct
        assert set(rep.responders) <= set(responders)
        rebuilt = torch.cat(rep.segments)
        for (lo, hi), j in zip(rep.bounds, rep.responders):
            torch.testing.assert_close(rebuilt[lo:hi], theta[j, lo:hi])


def test_config_presets_and_overrides():
    cfg = load_config(SCENARIOS / "figure8.yaml")
    assert (cfg.comm.method, cfg.comm.exchange, cfg.comm.rule, cfg.comm.mode) == ("rsm_masac", "segments", "regulated", "async")
    assert (cfg.comm.interval, cfg.comm.segments, cfg.comm.replicas, cfg.comm.samples) == (8, 4, 3, 50)  # Table IV
    for method, preset in PRESETS.items():
        c = load_config(SCENARIOS / "figure8.yaml", [f"comm.method={method}"]).comm
        assert (c.exchange, c.rule, c.shared_layers) == (preset["exchange"], preset["rule"], preset["shared_layers"])
    c = load_config(SCENARIOS / "merge.yaml", ["comm.method=avg", "comm.rule=regulated"]).comm
    assert (c.exchange, c.rule) == ("full", "regulated")  # an explicit key wins over the preset


def test_staleness_is_of_mixed_replicas_and_advantage_of_every_evaluated_one(tmp_path):
    """The regulated rule evaluates A+ for every complete replica and mixes only where A+ > 0:
    mix_advantage_mean averages every evaluated replica (not only the mixed ones, which would
    be positive by construction), staleness_* only the mixed ones."""
    ctx, hook, fleet = _hand_built(tmp_path, "rsm_masac", [0.0, 20.0, 40.0, 60.0, 80.0], "ideal")
    g = torch.Generator().manual_seed(1)
    n = fleet.n_agents
    for _ in range(64):  # replay data for the M samples of eq. 19
        obs = torch.randn(n, 6, generator=g)
        a, logp, u = fleet.act(obs)
        fleet.add(obs, a, torch.rand(n, generator=g), torch.randn(n, 6, generator=g), torch.zeros(n), logp,
                  pre_tanh=u)
    hook.after_fleet_step(ctx)
    ctx.env.run()
    evaluated = len(hook.pending)
    assert evaluated == 5 * 3  # five agents in range of each other, kappa_i = 3
    fleet._policy_updates += 7  # the agents learned since the segments were cut
    hook.flush()
    st = hook.stats
    mixed = st.counts["rho_ef"]
    assert 0 < mixed < evaluated  # some replicas had A+ > 0, some not
    assert len(st.advantages) == evaluated and min(st.advantages) <= 0 < max(st.advantages)
    assert len(st.staleness) == mixed and set(st.staleness) == {7}
    assert len(st.zetas) == mixed and len(st.qs) == sum(a > 0 for a in st.advantages)
    row = hook._row(ctx)
    assert row["mix_advantage_mean"] == pytest.approx(float(np.mean(st.advantages)))
    assert row["staleness_mean"] == 7 and row["rho_ef"] == mixed
