"""Unit disk with constant PRR (paper: 90 m Figure 8 / 400 m Merge, PRR 1.0 ... 0.4)."""

import numpy as np
import pytest

import radio_models as rm
from radio_models.base import LinkBatch


def test_defaults_are_the_papers_figure8_setting():
    model = rm.create("unit_disk")
    assert isinstance(model, rm.UnitDisk)
    assert model.max_range_m == 90.0
    assert model.prr == 1.0
    assert model.parameters() == {"range_m": 90.0, "prr": 1.0, "data_rate_mbps": 6.0}


def test_range_boundary_and_constant_prr_for_every_size():
    model = rm.create("unit_disk", {"range_m": 400, "prr": 0.4, "data_rate_mbps": 12})
    links = LinkBatch.from_distances([0.0, 399.999, 400.0, 400.001, 1000.0])
    q = model.evaluate(links, np.random.default_rng(0), [8, 8 * 4480])
    np.testing.assert_array_equal(q.in_range, [True, True, True, False, False])
    np.testing.assert_array_equal(q.success_probability[:, 0], [0.4, 0.4, 0.4, 0.0, 0.0])
    np.testing.assert_array_equal(q.success_probability[:, 1], q.success_probability[:, 0])
    np.testing.assert_array_equal(q.data_rate_bps, np.full(5, 12e6))


def test_draws_no_random_numbers():
    model = rm.create("unit_disk", {"prr": 0.5})
    rng = np.random.default_rng(3)
    model.evaluate(LinkBatch.from_distances(np.linspace(0, 200, 50)), rng, 8)
    assert rng.random() == np.random.default_rng(3).random()


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"prr": 1.5}, "prr"),
        ({"prr": -0.1}, "prr"),
        ({"prr": "high"}, "prr"),
        ({"prr": True}, "prr"),
        ({"range_m": 0}, "range_m"),
        ({"range_m": float("inf")}, "range_m"),
        ({"data_rate_mbps": -6}, "data_rate_mbps"),
    ],
)
def test_bad_parameters_name_the_parameter(params, parameter):
    with pytest.raises(rm.RadioParameterError) as info:
        rm.create("unit_disk", params)
    assert info.value.parameter == parameter
    assert f"'{parameter}'" in str(info.value) and "must be" in str(info.value)
