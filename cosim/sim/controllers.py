"""What drives the CAVs: the controller interface and the built-in, non-learning controllers.

A controller (the contract is in ``cosim/sim/contracts.py``) sees the fleet once per traffic tick,
in the fleet process: it chooses one acceleration per agent slot (``act``) and then sees the
transition that followed (``observe``), where a learning controller stores it and learns.
Learning controllers live beside this module (``cosim/sim/sac_controller.py``); ``idm`` and
``random`` keep the loop running end to end without any learning and serve as baselines.
Scenarios name controllers through ``cosim/plugins/controller_registry.py``.
"""

from __future__ import annotations

import numpy as np

from cosim.sim import seeding
from cosim.config.schema import IDMConfig, ScenarioConfig
from cosim.sim.contracts import Controller, EpochContext, Transition
from cosim.traffic.sumo import TrafficState

__all__ = ["Controller", "Transition", "IDMController", "RandomController", "idm_acceleration"]


class IDMController(Controller):
    """Flow's IDMController for CAVs: the Intelligent Driver Model on the observed leader.

    a = a_max [1 - (v / v0)^delta - (s* / s)^2],  s* = s0 + max(0, v T + v (v - v_lead) / (2 sqrt(a b)))

    with s* = 0 when there is no leader (Flow), plus optional Gaussian noise of std
    ``noise * sqrt(dt)``; clipped to the action range.
    """

    def __init__(self, params: IDMConfig, accel_range: tuple[float, float], dt: float, seed: int):
        self.p = params
        self.low, self.high = accel_range
        self.dt = dt
        self.seed = seed
        self.rng = seeding.rng(seed, "idm")

    @classmethod
    def from_config(cls, config: ScenarioConfig) -> IDMController:
        """``learner: idm`` (the registry's factory)."""
        return cls(config.idm, config.env.accel_range, config.sumo.step_length, config.seed)

    def begin_epoch(self, ctx: EpochContext) -> None:
        self.rng = ctx.rng("idm")

    def act(self, obs: np.ndarray, state: TrafficState) -> np.ndarray:
        return np.clip(idm_acceleration(state, self.p) + self._noise(len(obs)), self.low, self.high)

    def _noise(self, n: int) -> np.ndarray:
        if self.p.noise == 0:
            return np.zeros(n)
        return self.rng.normal(0.0, self.p.noise, n) * np.sqrt(self.dt)


def idm_acceleration(state: TrafficState, p: IDMConfig) -> np.ndarray:
    """IDM acceleration of every slot (NaN rows for inactive slots)."""
    s = state.slots
    v = s.speed
    has_leader = ~np.isnan(s.lead_gap)
    lead_v = np.where(has_leader, s.lead_speed, v)
    gap = np.where(has_leader, np.maximum(s.lead_gap, 1e-3), 1.0)
    s_star = p.s0 + np.maximum(0.0, v * p.T + v * (v - lead_v) / (2.0 * np.sqrt(p.a * p.b)))
    s_star = np.where(has_leader, s_star, 0.0)
    return p.a * (1.0 - (v / p.v0) ** p.delta - (s_star / gap) ** 2)


class RandomController(Controller):
    """Uniform random accelerations in the action range, one seeded stream per epoch."""

    def __init__(self, accel_range: tuple[float, float], seed: int):
        self.low, self.high = accel_range
        self.seed = seed
        self.rng = seeding.rng(seed, "random")

    @classmethod
    def from_config(cls, config: ScenarioConfig) -> RandomController:
        """``learner: random`` (the registry's factory)."""
        return cls(config.env.accel_range, config.seed)

    def begin_epoch(self, ctx: EpochContext) -> None:
        self.rng = ctx.rng("random")

    def act(self, obs: np.ndarray, state: TrafficState) -> np.ndarray:
        return self.rng.uniform(self.low, self.high, len(obs))
