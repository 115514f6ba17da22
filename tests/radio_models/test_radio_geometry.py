"""LinkBatch geometry and the RadioModel.evaluate contract."""

import numpy as np
import pytest

import radio_models as rm
from radio_models.base import LinkBatch


def test_from_positions_2d_equal_heights_is_ground_distance():
    links = LinkBatch.from_positions([[0, 0], [10, 0]], [[3, 4], [10, 20]])
    np.testing.assert_allclose(links.horizontal_distance_m, [5.0, 20.0])
    np.testing.assert_allclose(links.distance_m, [5.0, 20.0])
    assert len(links) == 2


def test_from_positions_3d_adds_elevation_and_antenna_heights():
    # ground distance 30 m, elevation difference 2 m, antennas 1.5 m and 5.5 m:
    # vertical antenna offset = (0 + 1.5) - (2 + 5.5) = -6 m -> 3-D distance sqrt(900 + 36)
    links = LinkBatch.from_positions([[0, 0, 0]], [[30, 0, 2]], tx_height_m=1.5, rx_height_m=5.5)
    assert links.horizontal_distance_m[0] == pytest.approx(30.0)
    assert links.distance_m[0] == pytest.approx(np.sqrt(936.0))


def test_from_distances_with_height_difference():
    links = LinkBatch.from_distances([0.0, 4.0], tx_height_m=1.5, rx_height_m=4.5)
    np.testing.assert_allclose(links.distance_m, [3.0, 5.0])


@pytest.mark.parametrize(
    "tx, rx",
    [([[0, 0]], [[0, 0, 0]]), ([0, 0], [1, 1]), ([[0, 0, 0, 0]], [[1, 1, 1, 1]])],
)
def test_from_positions_rejects_bad_shapes(tx, rx):
    with pytest.raises(ValueError, match="shape"):
        LinkBatch.from_positions(tx, rx)


def test_from_distances_rejects_negative():
    with pytest.raises(ValueError, match=">= 0"):
        LinkBatch.from_distances([-1.0])


def test_evaluate_scalar_and_sequence_packet_sizes():
    model = rm.create("free_space", {"reception": "nist"})
    links = LinkBatch.from_distances([100.0, 1100.0, 1250.0])
    q1 = model.evaluate(links, np.random.default_rng(0), 8 * 4480)
    q2 = model.evaluate(links, np.random.default_rng(0), [8 * 4480, 8 * 64])
    assert q1.success_probability.shape == (3,)
    assert q2.success_probability.shape == (3, 2)
    np.testing.assert_allclose(q2.success_probability[:, 0], q1.success_probability)
    # NIST is size dependent: near the edge of range the small packet does better.
    assert q2.success_probability[1, 1] > q2.success_probability[1, 0]


@pytest.mark.parametrize("bits", [0, -8, 1.5, [], [[8]], "x"])
def test_evaluate_rejects_bad_packet_bits(bits):
    model = rm.create("unit_disk")
    with pytest.raises(ValueError):
        model.evaluate(LinkBatch.from_distances([1.0]), np.random.default_rng(0), bits)


def test_evaluate_checks_what_a_user_model_returns():
    class Broken(rm.RadioModel):
        max_range_m = 10.0

        def _evaluate(self, links, rng, packet_bits):
            return np.ones(len(links), bool), np.full((len(links), packet_bits.size), 1.5), 1e6

    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        Broken().evaluate(LinkBatch.from_distances([1.0]), np.random.default_rng(0), 8)

    class WrongShape(Broken):
        def _evaluate(self, links, rng, packet_bits):
            return np.ones(len(links) + 1, bool), np.ones((len(links), 1)), 1e6

    with pytest.raises(ValueError, match="expected"):
        WrongShape().evaluate(LinkBatch.from_distances([1.0]), np.random.default_rng(0), [8, 16])


def test_out_of_range_links_have_zero_success():
    class Leaky(rm.RadioModel):
        max_range_m = 10.0

        def _evaluate(self, links, rng, packet_bits):
            return links.distance_m <= 10.0, np.ones((len(links), packet_bits.size)), 1e6

    q = Leaky().evaluate(LinkBatch.from_distances([5.0, 50.0]), np.random.default_rng(0), 8)
    np.testing.assert_array_equal(q.in_range, [True, False])
    np.testing.assert_array_equal(q.success_probability, [1.0, 0.0])


def test_radio_models_imports_no_simulation_or_learning_stack():
    import subprocess
    import sys

    code = (
        "import sys, radio_models; "
        "bad = [m for m in ('torch', 'simpy', 'sumolib', 'traci', 'libsumo', 'cosim', 'networkx') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
