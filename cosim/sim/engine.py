"""The SimPy engine: one epoch = one SimPy environment with a traffic and a fleet process.

Time is simulated seconds, the same clock as SUMO's (an epoch's environment starts at the time of
the state ``reset`` returned). Two processes run in lockstep (docs/design.md):

* **traffic** advances SUMO every ``step_length``, then lets every hook react to the new state
  (the V2V channel rebuilds its link graph here) and fires ``ctx.tick``;
* **fleet** wakes on ``ctx.tick`` at the same simulated instant: it computes the reward and the
  next observation, hands the transition to the controller (which stores it and learns), checks
  the end of the epoch, and applies the next actions before SUMO's next step.

Anything truly asynchronous (a communication round, a transfer) is its own process in
``ctx.env``, started by a controller or hook; it sees vehicle positions that are piecewise
constant between traffic ticks. :class:`Hook` objects are the extension point for the rest
(the contracts and the order of calls within a tick are in ``cosim/sim/contracts.py``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import simpy

from cosim.sim import seeding
from cosim.config.schema import ScenarioConfig
from cosim.sim.contracts import Controller, EpochContext, Hook, Transition
from cosim.traffic.observation import observe, reward
from cosim.traffic.sumo import SumoTraffic, TrafficState


class EpochRecorder:
    """Per-epoch traffic metrics accumulated step by step."""

    def __init__(self, initial: TrafficState) -> None:
        self.steps = 0
        self.reward_sum = 0.0
        self.speed_sum = 0.0
        self.speed_min = np.inf
        self.speed_max = 0.0
        self.vehicles_sum = 0
        self.active_sum = 0
        self.collisions = 0
        self.teleports = 0
        self.departed = initial.departed  # vehicles inserted by the reset step count too
        self.arrived = initial.arrived

    def record(self, state: TrafficState, r: float) -> None:
        self.steps += 1
        self.reward_sum += r
        if len(state.speeds):
            self.speed_sum += float(state.speeds.mean())
            self.speed_min = min(self.speed_min, float(state.speeds.min()))
            self.speed_max = max(self.speed_max, float(state.speeds.max()))
        self.vehicles_sum += len(state.vehicle_ids)
        self.active_sum += int(state.slots.active.sum())
        self.collisions += len(state.collisions)
        self.teleports += state.teleports
        self.departed += state.departed
        self.arrived += state.arrived

    def row(self, dt: float, horizon: int) -> dict[str, float]:
        """The epoch's traffic columns. ``avg_reward`` is the return over the horizon T: steps
        an epoch did not run (it ended at a collision) count 0, so crashing early lowers it;
        the other means are over the steps run."""
        n = max(self.steps, 1)
        return {
            "steps": self.steps,
            "sim_time_s": round(self.steps * dt, 9),
            "avg_reward": self.reward_sum / horizon,
            "return": self.reward_sum,
            "mean_speed": self.speed_sum / n,
            "min_speed": self.speed_min if self.steps else float("nan"),
            "max_speed": self.speed_max,
            "collisions": self.collisions,
            "teleports": self.teleports,
            "vehicles_departed": self.departed,
            "vehicles_arrived": self.arrived,
            "mean_vehicles": self.vehicles_sum / n,
            "mean_active_agents": self.active_sum / n,
        }


class Engine:
    """Runs epochs of one scenario with one controller and any number of hooks."""

    def __init__(self, config: ScenarioConfig, traffic: SumoTraffic, controller: Controller,
                 hooks: list[Hook] | None = None):
        self.config = config
        self.traffic = traffic
        self.controller = controller
        self.hooks = list(hooks or [])
        self.on_step: Callable[[EpochContext], None] | None = None  # progress display


    def run_epoch(self, epoch: int, phase: str = "train") -> dict[str, float]:
        """Reset SUMO with this epoch's seed, run until T steps or the first collision.

        ``phase="eval"``: epoch ``epoch`` of evaluation, with its own random streams (the
        controller and hooks see ``ctx.phase`` and neither learn nor communicate).
        """
        cfg = self.config
        seed_path = ("epoch" if phase == "train" else "eval", epoch)
        state = self.traffic.reset(seeding.int_seed(cfg.seed, *seed_path, "sumo"), cfg.env.warmup_steps)
        env = simpy.Environment(initial_time=state.time)  # SimPy time == SUMO time
        ctx = EpochContext(env=env, epoch=epoch, config=cfg, traffic=self.traffic, state=state, tick=env.event(),
                           phase=phase)
        recorder = EpochRecorder(state)
        for hook in self.hooks:
            hook.begin_epoch(ctx)
        self.controller.begin_epoch(ctx)
        env.process(self._traffic_process(ctx))
        fleet = env.process(self._fleet_process(ctx, recorder))
        env.run(until=fleet)
        row = {"epoch": epoch, "phase": phase, **recorder.row(cfg.sumo.step_length, cfg.env.horizon)}
        row.update(self.controller.end_epoch())
        for hook in self.hooks:
            row.update(hook.end_epoch(ctx))
        return row

    def _traffic_process(self, ctx: EpochContext):
        dt = self.config.sumo.step_length
        while True:
            yield ctx.env.timeout(dt)
            ctx.state = self.traffic.step()
            for hook in self.hooks:
                hook.after_traffic_step(ctx)
            tick, ctx.tick = ctx.tick, ctx.env.event()
            tick.succeed()

    def _fleet_process(self, ctx: EpochContext, recorder: EpochRecorder):
        env_cfg = self.config.env
        length, vmax = self.traffic.geometry.length, env_cfg.max_speed
        state = ctx.state
        obs = observe(state.slots, length, vmax)
        while True:
            for hook in self.hooks:
                hook.before_act(ctx)
            actions = self.controller.act(obs, state)
            self.traffic.apply_accelerations(actions)
            before = state.slots
            yield ctx.tick
            state = ctx.state
            ctx.step += 1
            crashed = state.crashed
            r = reward(state.speeds, env_cfg.desired_speed, crashed, env_cfg.reward)
            next_obs = observe(state.slots, length, vmax)
            terminated = crashed and env_cfg.end_on_collision
            truncated = not terminated and ctx.step >= env_cfg.horizon
            valid = before.active & state.slots.active & np.array(
                [a == b for a, b in zip(before.vehicle, state.slots.vehicle)], bool)
            self.controller.observe(Transition(obs, np.asarray(actions, float), r, next_obs,
                                               terminated, truncated, valid, state.slots.active))
            recorder.record(state, r)
            if self.on_step is not None:
                self.on_step(ctx)
            if terminated or truncated:
                return
            for hook in self.hooks:
                hook.after_fleet_step(ctx)
            yield from _settle(ctx.env)
            obs = next_obs


def _settle(env: simpy.Environment, limit: int = 100_000):
    """Let every event scheduled at the current instant run before the caller goes on.

    Zero-time work started in this tick (e.g. a transfer over an ideal channel) then completes
    before the fleet acts, as if it took no time at all.
    """
    for _ in range(limit):
        if env.peek() != env.now:
            return
        yield env.timeout(0)
    raise RuntimeError(f"more than {limit} zero-time steps at t={env.now}: a process never lets time advance")
