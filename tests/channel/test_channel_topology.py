"""Channel.update: spatial index, one vectorised radio evaluation, graph and neighbours."""

import networkx as nx
import numpy as np
import pytest
import simpy

import radio_models as rm
from cosim.channel import Channel, ChannelConfig, build_topology, candidate_pairs


def make_channel(radio=None, seed=0, **cfg):
    radio = radio or {"model": "unit_disk", "params": {"range_m": 100.0}}
    env = simpy.Environment()
    return Channel(env, ChannelConfig(radio=radio, **cfg), np.random.default_rng(seed))


def road(n, length=2000.0, lanes=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0, length, n), 3.5 * rng.integers(0, lanes, n)])


def test_edges_attributes_and_neighbours():
    ch = make_channel({"model": "unit_disk", "params": {"range_m": 100.0, "prr": 0.8, "data_rate_mbps": 12}})
    ch.update([7, 3, 5, 9], np.array([[0, 0], [60, 0], [150, 0], [1000, 0]], float))
    g = ch.graph
    assert sorted(g.nodes) == [3, 5, 7, 9]
    assert sorted(tuple(sorted(e)) for e in g.edges) == [(3, 5), (3, 7)]
    attrs = g.edges[3, 7]
    assert attrs == {
        "distance_m": pytest.approx(60.0),
        "success_probability": 0.8,
        "request_success_probability": 0.8,
        "rate_bps": 12e6,
    }
    assert g.edges[5, 3]["distance_m"] == pytest.approx(90.0)
    assert ch.neighbours(3) == [5, 7]
    assert ch.neighbours(9) == []
    assert ch.neighbours(42) == []
    assert ch.link(7, 3).distance_m == pytest.approx(60.0)
    assert ch.link(7, 5) is None
    assert ch.nodes == [3, 5, 7, 9]
    with pytest.raises(nx.NetworkXError):
        g.add_edge(7, 9)  # frozen: the engine cannot corrupt the channel's view


def test_update_replaces_the_graph_and_vehicles_can_leave():
    ch = make_channel()
    ch.update([0, 1, 2], np.array([[0, 0], [50, 0], [90, 0]], float))
    assert ch.neighbours(0) == [1, 2]
    ch.update([0, 2], np.array([[0, 0], [120, 0]], float))
    assert ch.nodes == [0, 2]
    assert ch.neighbours(0) == [] and ch.graph.number_of_edges() == 0
    ch.update([], np.empty((0, 2)))
    assert ch.graph.number_of_nodes() == 0


def test_kdtree_and_all_pairs_give_the_same_candidates():
    pos = road(400, seed=1)
    a = candidate_pairs(pos, 90.0, method="kdtree")
    b = candidate_pairs(pos, 90.0, method="all_pairs")
    assert len(a) > 0
    assert set(map(tuple, a.tolist())) == set(map(tuple, b.tolist()))
    # and they are exactly the pairs within range
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    i, j = np.nonzero(np.triu(d <= 90.0, k=1))
    assert set(zip(i.tolist(), j.tolist())) == set(map(tuple, a.tolist()))


def test_stochastic_model_same_graph_with_either_search_and_any_input_order():
    model = rm.create("tr37885_highway", {"max_range_m": 300.0})
    pos = road(150, length=1500.0, seed=2)
    nodes = np.arange(150) * 2 + 1
    kw = dict(speeds=None, antenna_heights_m=1.5, model=model, packet_bits=(8 * 4480, 512))
    t1 = build_topology(nodes, pos, rng=np.random.default_rng(5), method="kdtree", **kw)
    t2 = build_topology(nodes, pos, rng=np.random.default_rng(5), method="all_pairs", **kw)
    perm = np.random.default_rng(0).permutation(150)
    t3 = build_topology(nodes[perm], pos[perm], rng=np.random.default_rng(5), **kw)
    for t in (t2, t3):
        np.testing.assert_array_equal(t1.u, t.u)
        np.testing.assert_array_equal(t1.v, t.v)
        np.testing.assert_array_equal(t1.success_probability, t.success_probability)
    assert 0.0 < t1.success_probability.mean() < 1.0  # the model really is stochastic here
    t4 = build_topology(nodes, pos, rng=np.random.default_rng(6), **kw)
    assert not np.array_equal(t1.success_probability, t4.success_probability)


class CountingModel(rm.UnitDisk):
    calls: list

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = []

    def _evaluate(self, links, rng, packet_bits):
        self.calls.append((len(links), tuple(packet_bits.tolist())))
        return super()._evaluate(links, rng, packet_bits)


def test_radio_model_evaluated_once_per_update_on_candidates_only():
    model = CountingModel(range_m=50.0)
    env = simpy.Environment()
    ch = Channel(env, ChannelConfig(payload_bytes=1000, request_bytes=50), np.random.default_rng(0), radio_model=model)
    n = 300
    pos = road(n, length=3000.0, seed=3)
    ch.update(range(n), pos)
    assert len(model.calls) == 1
    evaluated, sizes = model.calls[0]
    assert sizes == (8 * (1000 + 38), 8 * (50 + 38))  # PSDU bits of a payload frame and a request frame
    assert evaluated == len(candidate_pairs(pos, 50.0))
    assert evaluated < n * (n - 1) // 20  # far fewer than all pairs
    ch.update(range(n), pos)
    assert len(model.calls) == 2


def test_3d_positions_use_antenna_heights():
    ch = make_channel({"model": "unit_disk", "params": {"range_m": 10.0}})
    # same x, y; ground elevations differ by 8 m (a bridge) -> 8 m apart: in range
    ch.update([0, 1], np.array([[0, 0, 0], [0, 0, 8]], float))
    assert ch.neighbours(0) == [1]
    ch.update([0, 1], np.array([[0, 0, 0], [0, 0, 12]], float))
    assert ch.neighbours(0) == []
    # per-vehicle antenna heights: 0 + 6 vs 12 + 1.5 -> 7.5 m apart
    ch.update([0, 1], np.array([[0, 0, 0], [0, 0, 12]], float), antenna_heights_m=np.array([6.0, 1.5]))
    assert ch.neighbours(0) == [1]


@pytest.mark.parametrize(
    "nodes, positions, match",
    [
        ([0, 0], [[0, 0], [1, 1]], "distinct"),
        ([0, 1], [[0, 0]], "shape"),
        ([0, -1], [[0, 0], [1, 1]], "node ids"),
        ([0.5, 1], [[0, 0], [1, 1]], "ints"),
        ([0, 1], [[0, 0], [np.nan, 1]], "finite"),
    ],
)
def test_bad_update_input(nodes, positions, match):
    ch = make_channel()
    with pytest.raises(ValueError, match=match):
        ch.update(nodes, np.array(positions, float))


def test_speeds_reach_the_radio_model():
    seen = {}

    class SpeedModel(rm.UnitDisk):
        def _evaluate(self, links, rng, packet_bits):
            seen["tx"], seen["rx"] = links.tx_speed_mps, links.rx_speed_mps
            return super()._evaluate(links, rng, packet_bits)

    env = simpy.Environment()
    ch = Channel(env, ChannelConfig(), np.random.default_rng(0), radio_model=SpeedModel())
    ch.update([4, 2], np.array([[0, 0], [10, 0]], float), np.array([20.0, 10.0]))
    # canonical pair order: (2, 4) -> tx is node 2 (10 m/s), rx node 4 (20 m/s)
    np.testing.assert_array_equal(seen["tx"], [10.0])
    np.testing.assert_array_equal(seen["rx"], [20.0])


def test_channel_imports_only_its_own_cosim_modules():
    """The channel package needs no engine, controller or torch: besides its own modules only the
    random streams and the plug-in registries (cosim.plugins, standard library only: the medium
    is named through cosim.plugins.medium_registry)."""
    import subprocess
    import sys

    code = (
        "import sys; import cosim; before = set(sys.modules); import cosim.channel; "
        "new = sorted(m for m in set(sys.modules) - before if m.startswith('cosim.')); "
        "print([m for m in new if not m.startswith(('cosim.channel', 'cosim.plugins')) and m != 'cosim.sim.seeding']); "
        "print('torch' in sys.modules and 'torch' not in before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "False"]
