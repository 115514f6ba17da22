"""The V2V channel inside a run: graph per tick, plug-in radio model from YAML (real SUMO)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from cosim.config import load_config
from cosim.sim.controllers import IDMController
from cosim.sim.engine import Engine, Hook
from cosim.traffic.sumo import SumoTraffic
from cosim.sim.v2v import ChannelHook

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

PLUGIN = textwrap.dedent('''
    """A third party's radio model: every pair closer than `reach_m` is linked, PRR `quality`."""
    import numpy as np


    class ToyRadio:
        def __init__(self, reach_m: float = 50.0, quality: float = 0.5):
            if reach_m <= 0:
                raise ValueError(f"parameter 'reach_m' must be > 0; got {reach_m}")
            self.reach_m, self.quality = reach_m, quality

        @property
        def max_range_m(self):
            return self.reach_m

        def evaluate(self, links, rng, packet_bits=35840):
            d = links.distance_m
            inside = d <= self.reach_m
            success = np.where(inside, self.quality, 0.0)
            if np.ndim(packet_bits):
                success = np.repeat(success[:, None], len(packet_bits), axis=1)
            return type("Quality", (), {"in_range": inside, "success_probability": success,
                                        "data_rate_bps": np.full(len(d), 6e6)})()
''')


class GraphProbe(Hook):
    """Checks after every tick that the graph joins exactly the CAVs within range."""

    def __init__(self, reach):
        self.reach, self.checked = reach, 0

    def after_traffic_step(self, ctx):
        slots, graph = ctx.state.slots, ctx.channel.graph
        active = np.flatnonzero(slots.active)
        assert sorted(graph.nodes) == active.tolist()
        for a in active:
            for b in active[active > a]:
                dist = float(np.hypot(*(slots.xy[a] - slots.xy[b])))
                if abs(dist - self.reach) > 1e-6:
                    assert graph.has_edge(a, b) == (dist < self.reach), (a, b, dist)
        self.checked += 1


def test_graph_follows_the_traffic_every_tick():
    cfg = load_config(SCENARIOS / "figure8.yaml", ["env.horizon=100", "channel.radio.params.range_m=40"])
    probe = GraphProbe(40.0)
    with SumoTraffic(cfg.sumo, cfg.network, cfg.vehicles, cfg.env.n_agents) as traffic:
        ctl = IDMController(cfg.idm, cfg.env.accel_range, cfg.sumo.step_length, cfg.seed)
        row = Engine(cfg, traffic, ctl, [ChannelHook(), probe]).run_epoch(0)
    assert probe.checked == 100
    assert 0 < row["v2v_mean_degree"] < 8


def _run_with_plugin(tmp_path, *sets):
    (tmp_path / "toy_radio_pkg.py").write_text(PLUGIN)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "cosim", "run", str(SCENARIOS / "figure8.yaml"), "--out", str(out),
            "--no-progress", "--set", "train.epochs=1", "--set", "env.horizon=100", "--set", "learner=idm",
            "--set", "channel.radio.model=toy_radio_pkg:ToyRadio"]
    for s in sets:
        args += ["--set", s]
    result = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    return result, out


def test_plugin_radio_model_by_dotted_path_is_used_in_a_run(tmp_path):
    wide, out = _run_with_plugin(tmp_path, "channel.radio.params={reach_m: 10000}")
    assert wide.returncode == 0, wide.stderr
    with open(out / "metrics.csv") as fh:
        (row,) = list(csv.DictReader(fh))
    assert float(row["v2v_mean_degree"]) == 8.0  # everyone reaches everyone: 9 CAVs, degree 8
    resolved = (out / "config.yaml").read_text()
    assert "toy_radio_pkg:ToyRadio" in resolved

    (tmp_path / "n").mkdir()
    narrow, out2 = _run_with_plugin(tmp_path / "n", "channel.radio.params={reach_m: 0.001}")
    assert narrow.returncode == 0, narrow.stderr
    with open(out2 / "metrics.csv") as fh:
        (row,) = list(csv.DictReader(fh))
    assert float(row["v2v_mean_degree"]) == 0.0


def test_plugin_parameter_error_is_a_config_error(tmp_path):
    result, _ = _run_with_plugin(tmp_path, "channel.radio.params={reach_m: -1}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "channel.radio.params" in result.stderr and "reach_m" in result.stderr


def test_background_cams_in_a_real_figure8_epoch():
    """csma medium with CAMs from the 9 CAVs and all 5 human-driven vehicles (penetration 1):
    100 steps = 10 s at 10 Hz is 100 CAMs per station (+-1 for its phase), 1400 in all. Each
    CAM is 496 us on the air (300 bytes + 38 bytes of MAC/FCS/LLC at 6 Mb/s), so a station
    that senses all 14 is busy 14 x 10 x 496 us = 6.9 % of the time; the 90 m unit disk does not
    join every pair on the figure 8, so the mean lies a little below. The human vehicles are in
    the medium only, never in the V2V graph."""
    cfg = load_config(SCENARIOS / "figure8.yaml", ["env.horizon=100", "channel.medium=csma",
                                                    "channel.cam.enabled=true", "channel.cam.penetration=1.0"])

    class NoHumansInTheGraph(Hook):
        def after_traffic_step(self, ctx):
            assert set(ctx.channel.nodes) <= set(range(cfg.env.n_agents))
            assert len(ctx.channel.medium._idx) == len(ctx.channel.nodes) + 5

    with SumoTraffic(cfg.sumo, cfg.network, cfg.vehicles, cfg.env.n_agents) as traffic:
        ctl = IDMController(cfg.idm, cfg.env.accel_range, cfg.sumo.step_length, cfg.seed)
        row = Engine(cfg, traffic, ctl, [ChannelHook(), NoHumansInTheGraph()]).run_epoch(0)
    assert row["cam_equipped_human_vehicles"] == 5
    assert abs(row["mac_cam_frames_sent"] - 1400) <= 14
    full = 14 * 10 * 496e-6
    assert 0.6 * full < row["channel_busy_ratio_mean"] <= row["channel_busy_ratio_max"] <= full * 1.0001
    assert row["cam_receptions"] > 0 and 0.9 < row["cam_pdr"] <= 1.0
    assert row["cam_receptions"] == (row["cam_rx_delivered"] + row["cam_lost_collision"]
                                     + row["cam_lost_below_sensitivity"] + row["cam_lost_half_duplex"])
