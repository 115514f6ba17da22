"""Model selection: registered names, package.module:Class, entry points; errors."""

import textwrap
import warnings

import numpy as np
import pytest

import radio_models as rm
from radio_models.base import LinkBatch

BUILTINS = ["free_space", "log_distance", "nakagami", "tr37885_highway", "tr37885_urban", "unit_disk"]

PLUGIN_SOURCE = textwrap.dedent(
    '''
    import numpy as np
    from radio_models import RadioModel
    from radio_models._validation import number


    class StepModel(RadioModel):
        """Success 1 below half the range, `far_prr` beyond."""

        name = "step"

        def __init__(self, *, range_m=50.0, far_prr=0.5):
            self.range_m = number("step", "range_m", range_m, gt=0)
            self.far_prr = number("step", "far_prr", far_prr, ge=0, le=1)

        @property
        def max_range_m(self):
            return self.range_m

        def _evaluate(self, links, rng, packet_bits):
            d = links.distance_m
            p = np.where(d <= self.range_m / 2, 1.0, self.far_prr)
            return d <= self.range_m, np.repeat(p[:, None], packet_bits.size, axis=1), 2e6


    class NotAModel:
        def __init__(self):
            pass
    '''
)


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    name = f"user_radio_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_available_lists_builtins_sorted():
    names = rm.available()
    assert names == sorted(names)
    assert set(BUILTINS) <= set(names)


def test_unknown_name_lists_available_models():
    with pytest.raises(rm.UnknownRadioModelError) as info:
        rm.create("unit-disk")
    msg = str(info.value)
    assert "'unit-disk'" in msg
    for name in BUILTINS:
        assert name in msg
    assert isinstance(info.value, ValueError)


def test_unknown_parameter_lists_accepted_ones():
    with pytest.raises(rm.RadioParameterError) as info:
        rm.create("unit_disk", {"rangee": 90})
    assert info.value.parameter == "rangee"
    assert "range_m, prr, data_rate_mbps" in str(info.value)


def test_unknown_parameter_of_a_subclass_lists_inherited_ones():
    with pytest.raises(rm.RadioParameterError) as info:
        rm.create("log_distance", {"sigma": 3})
    msg = str(info.value)
    assert "shadowing_sigma_db" in msg and "tx_power_dbm" in msg and "exponent" in msg


@pytest.mark.parametrize("name", BUILTINS)
def test_every_numeric_parameter_of_every_builtin_is_validated(name):
    names, required, open_ended = rm.accepted_parameters(rm.resolve(name))
    assert not open_ended and not required and names
    for param in names:
        with pytest.raises(rm.RadioParameterError) as info:
            rm.create(name, {param: "not-a-valid-value"})
        assert info.value.parameter == param, param
        assert f"'{param}'" in str(info.value)


def test_dotted_path_plugin(plugin_module):
    model = rm.create(f"{plugin_module}:StepModel", {"range_m": 40, "far_prr": 0.25})
    assert model.max_range_m == 40
    q = model.evaluate(LinkBatch.from_distances([10, 30, 50]), np.random.default_rng(0), 8)
    np.testing.assert_array_equal(q.success_probability, [1.0, 0.25, 0.0])
    with pytest.raises(rm.RadioParameterError, match="far_prr"):
        rm.create(f"{plugin_module}:StepModel", {"far_prr": 3})
    with pytest.raises(rm.RadioParameterError, match="far_prr"):
        rm.create(f"{plugin_module}:StepModel", {"far": 3})


def test_dotted_path_errors(plugin_module):
    with pytest.raises(rm.RadioModelLoadError, match="cannot import"):
        rm.create("no_such_package_xyz.mod:Model")
    with pytest.raises(rm.RadioModelLoadError, match="no attribute"):
        rm.create(f"{plugin_module}:Missing")
    with pytest.raises(rm.RadioModelLoadError, match="evaluate"):
        rm.create(f"{plugin_module}:NotAModel")
    with pytest.raises(rm.RadioModelLoadError, match="not a class"):
        rm.create("radio_models:available")


def write_distribution(root, dist, entry_points):
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[cosim.radio_models]\n{lines}\n")


def test_entry_point_discovery(tmp_path, plugin_module, monkeypatch):
    dist_root = tmp_path / "site"
    dist_root.mkdir()
    write_distribution(
        dist_root,
        "third_party_radio",
        {
            "third_party_step": f"{plugin_module}:StepModel",
            "third_party_broken": "no_such_package_xyz:Model",
            "unit_disk": f"{plugin_module}:StepModel",  # tries to shadow a built-in
        },
    )
    assert "third_party_step" not in rm.available()
    monkeypatch.syspath_prepend(str(dist_root))
    assert "third_party_step" in rm.available()
    model = rm.create("third_party_step", {"far_prr": 0.1})
    assert type(model).__name__ == "StepModel" and model.far_prr == 0.1
    with pytest.raises(rm.RadioModelLoadError, match="third_party_broken"):
        rm.create("third_party_broken")
    with pytest.warns(UserWarning, match="shadowed by the built-in"):
        assert isinstance(rm.create("unit_disk"), rm.UnitDisk)


def test_register_in_code():
    class Tiny(rm.UnitDisk):
        name = "tiny_disk_for_test"

    try:
        rm.register("tiny_disk_for_test", Tiny)
        assert "tiny_disk_for_test" in rm.available()
        assert isinstance(rm.create("tiny_disk_for_test", {"range_m": 5}), Tiny)
        with pytest.raises(ValueError, match="already registered"):
            rm.register("tiny_disk_for_test", rm.UnitDisk)
    finally:
        rm.registry._BUILTINS.pop("tiny_disk_for_test", None)
    with pytest.raises(ValueError):
        rm.register("bad:name", Tiny)


def test_create_accepts_a_class_and_no_warning_without_shadowing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(rm.create(rm.Nakagami, {"m": 2}), rm.Nakagami)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtins_are_deterministic_per_seed(name):
    model = rm.create(name)
    links = LinkBatch.from_distances(np.linspace(5, 0.9 * model.max_range_m, 300))
    a = model.evaluate(links, np.random.default_rng(42), [8 * 4480, 512])
    b = model.evaluate(links, np.random.default_rng(42), [8 * 4480, 512])
    np.testing.assert_array_equal(a.success_probability, b.success_probability)
    np.testing.assert_array_equal(a.in_range, b.in_range)
    if name.startswith("tr37885"):  # the stochastic built-in defaults
        c = model.evaluate(links, np.random.default_rng(43), [8 * 4480, 512])
        assert not np.array_equal(a.success_probability, c.success_probability)
