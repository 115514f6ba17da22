"""cosim/sim/v2v.py in a real Figure 8 epoch (SUMO, SimPy): what the v2v_* columns average."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cosim.config import load_config
from cosim.sim.controllers import IDMController
from cosim.sim.engine import Engine, Hook
from cosim.traffic.sumo import SumoTraffic
from cosim.sim.v2v import ChannelHook

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Built networks go to one cache per test session, not the user's home."""
    monkeypatch.setenv("COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


class LinkCounter(Hook):
    """After the channel hook: the links and mean degree of the graph at the epoch's start and
    after every traffic step, read from the channel itself."""

    def __init__(self):
        self.reset_state = None
        self.steps = []

    def _sample(self, ctx):
        topo = ctx.channel.topology
        n = len(topo.nodes)
        return len(topo), (2.0 * len(topo) / n if n else 0.0)

    def begin_epoch(self, ctx):
        self.reset_state = self._sample(ctx)

    def after_traffic_step(self, ctx):
        self.steps.append(self._sample(ctx))


def test_v2v_means_are_over_the_epochs_steps_not_the_reset_state():
    """Issue 18: v2v_mean_links / v2v_mean_degree averaged T + 1 graphs, the reset state's
    included. They are the mean over the T steps, as steps and mean_vehicles are. The reset
    state of Figure 8 (vehicles packed at the start) has more links than the epoch's mean, so the
    old mean was biased up."""
    cfg = load_config(SCENARIOS / "figure8.yaml", ["env.horizon=60", "channel.medium=independent"])
    counter = LinkCounter()
    with SumoTraffic(cfg.sumo, cfg.network, cfg.vehicles, cfg.env.n_agents) as traffic:
        ctl = IDMController(cfg.idm, cfg.env.accel_range, cfg.sumo.step_length, cfg.seed)
        row = Engine(cfg, traffic, ctl, [ChannelHook(), counter]).run_epoch(0)
    links = np.array([s[0] for s in counter.steps], dtype=float)
    degree = np.array([s[1] for s in counter.steps])
    assert len(counter.steps) == row["steps"] == 60
    assert row["v2v_mean_links"] == pytest.approx(links.mean(), rel=1e-12)
    assert row["v2v_mean_degree"] == pytest.approx(degree.mean(), rel=1e-12)
    with_reset = (links.sum() + counter.reset_state[0]) / 61
    assert abs(with_reset - links.mean()) > 1e-3  # the old, T + 1 mean is told apart
