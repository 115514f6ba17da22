"""The SUMO adapter against real SUMO (libsumo and TraCI): movement, slots, collisions, resets."""

from __future__ import annotations

import os

import numpy as np
import psutil
import pytest

from cosim.config.schema import VehiclesConfig
from cosim.traffic.sumo import SumoTraffic, TrafficError


def _traffic(cfg, **vehicles):
    veh = cfg.vehicles.model_copy(update=vehicles) if vehicles else cfg.vehicles
    return SumoTraffic(cfg.sumo, cfg.network, veh, cfg.env.n_agents)


def _drive(traffic, steps, accel=0.5, seed=1):
    """Run ``steps`` steps at a constant CAV acceleration; collect per-step states."""
    states = [traffic.reset(seed)]
    for _ in range(steps):
        traffic.apply_accelerations(np.full(traffic.n_slots, accel))
        states.append(traffic.step())
    return states


def test_figure8_vehicles_loop_and_cross_the_junction(figure8):
    with _traffic(figure8) as traffic:
        states = _drive(traffic, 1500)
    assert all(len(s.vehicle_ids) == 14 for s in states)  # closed network: nobody leaves
    assert states[-1].slots.active.sum() == 9  # 9 CAVs bound to the 9 slots
    assert all(v.startswith("cav") for v in states[-1].slots.vehicle)
    speeds = np.concatenate([s.speeds for s in states])
    assert speeds.min() >= 0 and speeds.max() <= 30.0 + 1e-9
    assert states[-1].speeds.mean() > 2.0
    # both streams cross the centre junction: its two internal edges are used
    edges = set().union(*(s.edges.values() for s in states))
    assert {":center_0", ":center_1"} <= edges
    assert {"bottom", "top", "upper_ring", "right", "left", "lower_ring"} <= edges
    assert not any(s.crashed for s in states)
    # the observed position advances (it wraps around the loop)
    pos = np.array([s.slots.position for s in states])
    assert np.all((pos >= 0) & (pos < traffic.geometry.length))
    assert len(np.unique(pos[:, 0].round(1))) > 100


def test_merge_vehicles_enter_bind_and_leave(merge):
    with _traffic(merge) as traffic:
        states = _drive(traffic, 750, accel=0.5)
    departed = sum(s.departed for s in states)
    arrived = sum(s.arrived for s in states)
    assert departed > 35  # 2300 veh/h for 75 s is ~48
    assert arrived > 5
    bound = {v for s in states for v in s.slots.vehicle if v}
    assert len(bound) > 8
    # bound vehicles are CAVs and each is in one slot at a time
    for s in states:
        held = [v for v in s.slots.vehicle if v]
        assert len(held) == len(set(held))
    # round-robin binding: the first 13 CAVs that enter each take a slot of their own
    used = {i for s in states for i, v in enumerate(s.slots.vehicle) if v}
    assert len(used) == min(len(bound), 13)
    # ramp traffic merges onto the highway
    edges = set().union(*(s.edges.values() for s in states))
    assert {"inflow_merge", "bottom", "center", ":center_0", ":center_1"} <= edges


def test_slot_is_freed_when_its_vehicle_arrives(merge):
    with _traffic(merge) as traffic:
        states = _drive(traffic, 750, accel=0.5)
    arrived_cavs = 0
    for before, after in zip(states, states[1:]):
        for i, vid in enumerate(before.slots.vehicle):
            if vid and vid not in after.vehicle_ids:
                arrived_cavs += 1
                assert after.slots.vehicle[i] != vid
    assert arrived_cavs > 0


def test_observed_leader_is_consistent_with_sumo(figure8):
    with _traffic(figure8) as traffic:
        state = _drive(traffic, 200)[-1]
        api = traffic._api
        for i, vid in enumerate(state.slots.vehicle):
            leader, dist = api.vehicle.getLeader(vid, traffic.observe_distance)
            assert state.slots.lead_speed[i] == pytest.approx(api.vehicle.getSpeed(leader))
            assert state.slots.lead_gap[i] == pytest.approx(dist + api.vehicle.getMinGap(vid))


def test_collision_is_detected(figure8):
    # speed mode 0 disables every safety check: full throttle rear-ends the queue ahead
    with _traffic(figure8, cav_speed_mode=0) as traffic:
        states = _drive(traffic, 600, accel=3.0)
    crashed = [s for s in states if s.crashed]
    assert crashed, "full acceleration with all checks off must collide"
    assert crashed[0].collisions[0].collider in crashed[0].vehicle_ids


def test_same_seed_same_traffic_different_seed_different(merge):
    with _traffic(merge) as traffic:
        a = [s.speeds.sum() for s in _drive(traffic, 300, seed=3)]
        b = [s.speeds.sum() for s in _drive(traffic, 300, seed=3)]  # reset reloads in place
        c = [s.speeds.sum() for s in _drive(traffic, 300, seed=4)]
    assert a == b
    assert a != c


def test_traci_and_libsumo_agree(figure8):
    cfg_traci = figure8.model_copy(update={"sumo": figure8.sumo.model_copy(update={"backend": "traci"})})
    with _traffic(figure8) as lib:
        a = _drive(lib, 100)
    with _traffic(cfg_traci) as tra:
        b = _drive(tra, 100)
    assert np.allclose(a[-1].speeds, b[-1].speeds)
    assert np.allclose(a[-1].slots.lead_gap, b[-1].slots.lead_gap, equal_nan=True)
    assert a[-1].slots.vehicle == b[-1].slots.vehicle


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_resets_and_close_leak_no_process_or_file(figure8):
    cfg = figure8.model_copy(update={"sumo": figure8.sumo.model_copy(update={"backend": "traci"})})
    me = psutil.Process()
    for config in (figure8, cfg):
        with _traffic(config) as traffic:
            traffic.reset(0)
            fds, children = _open_fds(), len(me.children())
            for seed in range(5):
                traffic.reset(seed)
                for _ in range(10):
                    traffic.step()
            assert _open_fds() == fds and len(me.children()) == children
        assert not [p for p in me.children() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_libsumo_is_one_per_process(figure8):
    with _traffic(figure8) as first:
        first.reset(0)
        second = _traffic(figure8)
        with pytest.raises(TrafficError, match="one simulation per process"):
            second.reset(0)
    # once the first is closed, a new one starts fine
    with _traffic(figure8) as third:
        assert len(third.reset(0).vehicle_ids) == 14


def test_unbound_cavs_when_slots_run_out(figure8):
    cfg = figure8.model_copy(update={"env": figure8.env.model_copy(update={"n_agents": 4})})
    with _traffic(cfg) as traffic:
        state = traffic.reset(0)
    assert state.slots.active.sum() == 4


def test_vehicles_config_cav_type_selects_agents(figure8):
    with SumoTraffic(figure8.sumo, figure8.network, VehiclesConfig(cav_type="human"), 9) as traffic:
        state = traffic.reset(0)
    assert state.slots.active.sum() == 5
    assert all(v.startswith("human") for v in state.slots.vehicle if v)
