"""The SimPy engine: lockstep time semantics, hooks, episode ends (real SUMO)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.sim.controllers import Controller
from cosim.sim.engine import Engine, Hook
from cosim.traffic.sumo import SumoTraffic


class Recorder(Hook):
    """Logs when things happen, and starts an asynchronous probe between ticks."""

    def __init__(self):
        self.events = []

    def begin_epoch(self, ctx):
        self.events.append(("begin", ctx.env.now))
        ctx.env.process(self._probe(ctx))

    def _probe(self, ctx):
        # an asynchronous process half-way between ticks sees the last tick's state
        yield ctx.env.timeout(0.25)
        self.events.append(("probe", ctx.env.now, ctx.state.time))

    def after_traffic_step(self, ctx):
        self.events.append(("tick", round(ctx.env.now, 9), ctx.step))

    def end_epoch(self, ctx):
        return {"ticks_seen": sum(e[0] == "tick" for e in self.events)}


class Constant(Controller):
    def __init__(self, accel):
        self.accel = accel
        self.transitions = []
        self.act_times = []

    def begin_epoch(self, ctx):
        self.ctx = ctx

    def act(self, obs, state):
        self.act_times.append(round(self.ctx.env.now, 9))
        return np.full(len(obs), self.accel)

    def observe(self, transition):
        self.transitions.append(transition)

    def end_epoch(self):
        return {"transitions": len(self.transitions)}


def _engine(cfg, controller, hooks=(), **env):
    cfg = cfg.model_copy(update={"env": cfg.env.model_copy(update=env)})
    traffic = SumoTraffic(cfg.sumo, cfg.network, cfg.vehicles, cfg.env.n_agents)
    return Engine(cfg, traffic, controller, list(hooks)), traffic


def test_lockstep_time_semantics(figure8):
    rec, ctl = Recorder(), Constant(0.5)
    engine, traffic = _engine(figure8, ctl, [rec], horizon=5)
    with traffic:
        row = engine.run_epoch(0)
    ticks = [e for e in rec.events if e[0] == "tick"]
    # SimPy time is SUMO time: the epoch starts at the state reset returned (SUMO's first step
    # ends at 0.1); traffic ticks every step_length; the fleet acts first and after each tick
    assert rec.events[0] == ("begin", pytest.approx(0.1))
    assert [t[1] for t in ticks] == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6])
    assert [t[2] for t in ticks] == [0, 1, 2, 3, 4]  # hook runs before the fleet counts the step
    assert ctl.act_times == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    # a process between ticks sees the last tick's state (piecewise constant positions)
    probe = next(e for e in rec.events if e[0] == "probe")
    assert probe[1] == pytest.approx(0.35) and probe[2] == pytest.approx(0.3)
    assert row["steps"] == 5 and row["transitions"] == 5 and row["ticks_seen"] == 5
    assert ctl.transitions[-1].truncated and not ctl.transitions[-1].terminated
    assert not any(t.truncated for t in ctl.transitions[:-1])


def test_transitions_chain(figure8):
    ctl = Constant(1.0)
    engine, traffic = _engine(figure8, ctl, horizon=20)
    with traffic:
        engine.run_epoch(0)
    for a, b in zip(ctl.transitions, ctl.transitions[1:]):
        np.testing.assert_array_equal(a.next_obs, b.obs)
    assert all(t.valid.all() for t in ctl.transitions)  # closed network: same vehicles throughout


def test_epoch_ends_at_first_collision(figure8):
    cfg = figure8.model_copy(update={"vehicles": figure8.vehicles.model_copy(update={"cav_speed_mode": 0})})
    ctl = Constant(3.0)
    engine, traffic = _engine(cfg, ctl, horizon=1500)
    with traffic:
        row = engine.run_epoch(0)
    assert row["collisions"] >= 1 and row["steps"] < 1500
    last = ctl.transitions[-1]
    assert last.terminated and not last.truncated and last.reward == 0.0
    # avg_reward is over the horizon T: the steps a crash cut off count 0
    assert row["avg_reward"] == pytest.approx(row["return"] / 1500)
    assert row["avg_reward"] < row["return"] / row["steps"]


def test_collisions_can_be_survived(figure8):
    cfg = figure8.model_copy(update={"vehicles": figure8.vehicles.model_copy(update={"cav_speed_mode": 0})})
    engine, traffic = _engine(cfg, Constant(3.0), horizon=800, end_on_collision=False)
    with traffic:
        row = engine.run_epoch(0)
    assert row["steps"] == 800 and row["collisions"] >= 1


def test_merge_transitions_are_invalid_across_a_slot_handover(merge):
    ctl = Constant(0.5)
    engine, traffic = _engine(merge, ctl, horizon=750)
    with traffic:
        engine.run_epoch(0)
    valid = np.array([t.valid for t in ctl.transitions])
    assert valid.any() and not valid.all()
    # a transition is valid only if the slot is active before and after
    for t in ctl.transitions:
        assert not np.any(t.valid & ~t.next_obs.any(axis=1))
