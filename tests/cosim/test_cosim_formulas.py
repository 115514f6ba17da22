"""Observation, reward and IDM formulas against hand-computed values (docs/reference.md §1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cosim.config.schema import IDMConfig
from cosim.sim.controllers import idm_acceleration
from cosim.traffic.observation import observe, reward
from cosim.traffic.sumo import SlotState, TrafficState


def _slots() -> SlotState:
    s = SlotState.empty(3)
    s.active[:] = [True, True, False]
    s.speed[:2] = [10.0, 15.0]
    s.position[:2] = [100.0, 50.0]
    s.lead_speed[:2] = [12.0, np.nan]       # slot 1 has no leader
    s.lead_gap[:2] = [20.0, np.nan]
    s.follow_speed[:2] = [np.nan, 9.0]      # slot 0 has no follower
    s.follow_gap[:2] = [np.nan, 500.0]      # longer than the network: capped at L
    return s


def test_observation_hand_computed():
    L, vmax = 400.0, 30.0
    obs = observe(_slots(), L, vmax)
    expected = np.array([
        # x/L,   v/vmax,  (vl-v)/vmax,   gap_l/L, (v-vf)/vmax, gap_f/L
        [0.25, 10 / 30, 2 / 30, 20 / 400, 10 / 30, 1.0],       # no follower: v_f = 0, gap = L
        [0.125, 15 / 30, (30 - 15) / 30, 1.0, 6 / 30, 1.0],    # no leader: v_l = vmax, gap = L
        [0, 0, 0, 0, 0, 0],                                     # inactive slot
    ], dtype=np.float32)
    np.testing.assert_allclose(obs, expected, rtol=1e-6)


def test_desired_velocity_reward_hand_computed():
    # Flow: max(||v_d 1|| - ||v - v_d 1||, 0) / ||v_d 1||
    speeds = np.array([10.0, 20.0, 26.0])
    best = 20 * math.sqrt(3)                      # 34.641
    cost = math.sqrt(10**2 + 0**2 + 6**2)         # 11.662
    assert reward(speeds, 20.0, False) == pytest.approx((best - cost) / best)
    assert reward(np.full(5, 20.0), 20.0, False) == 1.0
    assert reward(np.array([0.0, 0.0]), 20.0, False) == 0.0            # ||v - vd|| = ||vd||
    assert reward(np.array([50.0]), 20.0, False) == 0.0                # clipped at 0
    assert reward(speeds, 20.0, True) == 0.0                           # crash step


def test_mean_speed_reward():
    assert reward(np.array([10.0, 20.0, 30.0]), 20.0, False, "mean_speed") == pytest.approx(1.0)
    assert reward(np.array([5.0, 5.0]), 20.0, False, "mean_speed") == pytest.approx(0.25)
    assert reward(np.array([]), 20.0, False, "mean_speed") == 0.0


def test_idm_hand_computed():
    p = IDMConfig(v0=30, T=1, a=1, b=1.5, delta=4, s0=2)
    slots = _slots()
    state = TrafficState(0.0, [], np.array([]), slots)
    acc = idm_acceleration(state, p)
    # slot 0: v=10, v_lead=12, s=20: s* = 2 + max(0, 10 + 10*(-2)/(2 sqrt(1.5))) = 2 + 10 - 8.1650 = 3.8350
    s_star = 2 + 10 + 10 * (10 - 12) / (2 * math.sqrt(1.5))
    assert acc[0] == pytest.approx(1 * (1 - (10 / 30) ** 4 - (s_star / 20) ** 2))
    # slot 1: no leader -> free road term only
    assert acc[1] == pytest.approx(1 - (15 / 30) ** 4)
    assert np.isnan(acc[2])


def test_idm_brakes_hard_when_closing_in():
    p = IDMConfig()
    slots = SlotState.empty(1)
    slots.active[0] = True
    slots.speed[0], slots.lead_speed[0], slots.lead_gap[0] = 20.0, 0.0, 10.0
    acc = idm_acceleration(TrafficState(0.0, [], np.array([]), slots), p)
    assert acc[0] < -10
