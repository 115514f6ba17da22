"""A user's radio model (dotted path and entry point) drives a Channel."""

import textwrap

import numpy as np
import pytest
import simpy

from cosim.channel import Channel, ChannelConfig, FailureCause

SOURCE = textwrap.dedent(
    '''
    import numpy as np


    class HalfwayModel:
        """Duck-typed (no RadioModel base): success 1 up to range/2, 0 beyond, 1-D output."""

        def __init__(self, range_m=80.0, rate_bps=1e6):
            if not range_m > 0:
                raise ValueError("range_m must be > 0")
            self.max_range_m = float(range_m)
            self.rate_bps = rate_bps

        def evaluate(self, links, rng, packet_bits):
            from radio_models import LinkQuality

            d = links.distance_m
            p = (d <= self.max_range_m / 2).astype(float)
            return LinkQuality(d <= self.max_range_m, p, np.full(len(d), self.rate_bps))
    '''
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = f"user_channel_model_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def run_pair(config, distance):
    env = simpy.Environment()
    ch = Channel(env, config, np.random.default_rng(0))
    ch.update([0, 1], np.array([[0.0, 0.0], [distance, 0.0]]))
    proc = ch.pull(0, 1, lambda: ("theta", 8000))
    env.run()
    return ch, proc.value


def test_dotted_path_model_in_a_channel(user_module):
    config = ChannelConfig(
        radio={"model": f"{user_module}:HalfwayModel", "params": {"range_m": 60, "rate_bps": 1e6}},
        per_packet_overhead_s=0.0,
        request_bytes=125,
        max_retries=0,
    )
    ch, near = run_pair(config, 20.0)
    # 1 Mb/s (not an 802.11p rate: N_DBPS = 8 per 8 us symbol): request PSDU 125 + 38 = 163 B,
    # ceil((22 + 1304) / 8) = 166 symbols -> 40 + 1328 us; response 1000 + 38 B: ceil(8326 / 8)
    # = 1041 symbols -> 40 + 8328 us
    assert near.ok and near.finished_at == pytest.approx((1368 + 8368) / 1e6)
    assert ch.graph.edges[0, 1]["rate_bps"] == 1e6
    ch, far = run_pair(config, 45.0)  # in range, but every packet is lost
    assert far.cause is FailureCause.REQUEST_LOST
    ch, out = run_pair(config, 70.0)
    assert out.cause is FailureCause.NO_LINK


def test_entry_point_model_in_a_channel(tmp_path, user_module, monkeypatch):
    site = tmp_path / "site"
    info = site / "acme_radio-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-radio\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[cosim.radio_models]\nacme_halfway = {user_module}:HalfwayModel\n")
    with pytest.raises(ValueError, match="acme_halfway"):
        ChannelConfig(radio={"model": "acme_halfway"})
    monkeypatch.syspath_prepend(str(site))
    config = ChannelConfig(radio={"model": "acme_halfway", "params": {"range_m": 100}})
    ch, result = run_pair(config, 30.0)
    assert result.ok and type(ch.model).__name__ == "HalfwayModel"
    with pytest.raises(ValueError, match="range_m must be > 0"):
        ChannelConfig(radio={"model": "acme_halfway", "params": {"range_m": -1}})
