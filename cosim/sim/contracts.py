"""The contracts between the engine and what plugs into it: controllers, hooks, their context.

The engine (``cosim/sim/engine.py``) runs epochs; a :class:`Controller` drives the CAVs and a
:class:`Hook` reacts to the simulation (the V2V channel and the CommMix protocol are hooks).
Both sides import this module and nothing of each other, so neither knows the other's
implementation.

Within one fleet tick at simulated time t the engine calls, in this order::

    traffic step -> Hook.after_traffic_step -> Controller.observe (stores, learns)
      -> Hook.after_fleet_step -> (events scheduled at t run) -> Hook.before_act
      -> Controller.act
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from cosim.sim import seeding
from cosim.config.schema import ScenarioConfig
from cosim.traffic.sumo import SumoTraffic, TrafficState

if TYPE_CHECKING:
    from cosim.channel import Channel


@dataclass
class EpochContext:
    """What the processes of one epoch share.

    ``phase`` is ``"train"`` or ``"eval"`` (deterministic policies, no learning, no
    communication); ``epoch`` counts epochs of that phase. Random streams of the epoch come
    from :meth:`rng` / :meth:`int_seed`, keyed by phase and epoch, so evaluation epochs never
    draw from (or shift) the streams of training epochs.
    """

    env: simpy.Environment
    epoch: int
    config: ScenarioConfig
    traffic: SumoTraffic
    state: TrafficState
    tick: simpy.Event
    step: int = 0
    channel: Channel | None = None  # set by the ChannelHook (cosim/sim/v2v.py)
    phase: str = "train"

    @property
    def stream(self) -> tuple[str, int]:
        """The name path of this epoch's random streams: ("epoch", k) or ("eval", k)."""
        return ("epoch" if self.phase == "train" else "eval", self.epoch)

    def rng(self, *keys: str | int) -> np.random.Generator:
        """A numpy Generator for stream ``keys`` of this epoch."""
        return seeding.rng(self.config.seed, *self.stream, *keys)

    def int_seed(self, *keys: str | int) -> int:
        """An integer seed (SUMO, torch) for stream ``keys`` of this epoch."""
        return seeding.int_seed(self.config.seed, *self.stream, *keys)


@dataclass
class Transition:
    """One fleet step, for every slot: (s, a, r, s') and how it ended.

    ``valid[i]`` is True when slot i held the same vehicle before and after the step, i.e. the
    transition belongs to one trajectory (in Merge a slot's vehicle can leave and another enter).
    ``next_active[i]`` is True when slot i holds a vehicle after the step. ``terminated`` is a
    true end (collision); ``truncated`` is the horizon T, which a learner should bootstrap through.
    """

    obs: np.ndarray
    actions: np.ndarray
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool
    valid: np.ndarray
    next_active: np.ndarray


class Controller(ABC):
    """Chooses the accelerations of all agent slots; may learn from what follows."""

    def begin_epoch(self, ctx: EpochContext) -> None:
        """Called once before an epoch's first action (the SimPy environment is new)."""

    @abstractmethod
    def act(self, obs: np.ndarray, state: TrafficState) -> np.ndarray:
        """Accelerations [N] in m/s^2 for the next step (rows of inactive slots are ignored)."""

    def observe(self, transition: Transition) -> None:
        """See the outcome of the last action (store it, learn)."""

    def end_epoch(self) -> dict[str, float]:
        """Metric columns this controller adds to the epoch's row."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly after the last finished epoch."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


class Hook:
    """An extension point of the engine; override what you need (the channel is one)."""

    def begin_epoch(self, ctx: EpochContext) -> None:
        """Before the epoch's first action; ``ctx.env`` is the epoch's fresh SimPy environment."""

    def after_traffic_step(self, ctx: EpochContext) -> None:
        """Right after each SUMO step, before the fleet sees ``ctx.state``."""

    def after_fleet_step(self, ctx: EpochContext) -> None:
        """Right after the controller observed (and learned from) a step, unless it was the last."""

    def before_act(self, ctx: EpochContext) -> None:
        """Before the controller acts; every event scheduled at this instant has run."""

    def end_epoch(self, ctx: EpochContext) -> dict[str, float]:
        """Metric columns this hook adds to the epoch's row."""
        return {}

    def artifacts(self) -> dict[str, str]:
        """Files (name -> text) this hook keeps up to date in the run directory."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What the hook carries from one epoch to the next (saved in checkpoints)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
