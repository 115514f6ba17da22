"""Controllers are chosen by name through cosim.plugins.controller_registry (built-ins, registered
factories, 'module:function' paths); unknown or broken names fail before a run starts."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from cosim.plugins import controller_registry
from cosim.cli.main import main
from cosim.config import ConfigError, load_config
from cosim.sim.controllers import IDMController, RandomController
from cosim.sim.sac_controller import SACController

from cosim_testkit import SCENARIOS

FIGURE8 = SCENARIOS / "figure8.yaml"


@pytest.mark.parametrize("name,cls", [("idm", IDMController), ("random", RandomController), ("sac", SACController)])
def test_built_in_names(name, cls):
    config = load_config(FIGURE8, [f"learner={name}", "sac.hidden=[8]", "sac.buffer_size=1000"])
    assert type(controller_registry.make_controller(config)) is cls


def test_unknown_name_is_a_config_error_listing_the_names():
    with pytest.raises(ConfigError) as err:
        load_config(FIGURE8, ["learner=nope"])
    text = "\n".join(err.value.lines)
    assert "learner" in text and "idm, random, sac" in text


def test_registered_factory_and_module_path_drive_a_run(tmp_path, monkeypatch, capsys):
    module = tmp_path / "my_controllers.py"
    module.write_text(textwrap.dedent("""
        import numpy as np
        from cosim.sim.contracts import Controller

        class Brake(Controller):
            def act(self, obs, state):
                return np.full(len(obs), -1.0)

        def make(config):
            return Brake()

        def not_a_controller(config):
            return object()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = load_config(FIGURE8, ["learner=my_controllers:make"])
    controller = controller_registry.make_controller(config)
    assert np.all(controller.act(np.zeros((3, 6)), None) == -1.0)

    controller_registry.register_controller("brake", sys.modules["my_controllers"].make)
    try:
        assert "brake" in controller_registry.available()
        with pytest.raises(ValueError):
            controller_registry.register_controller("brake", sys.modules["my_controllers"].make)
        rc = main(["run", str(FIGURE8), "--set", "learner=brake", "--set", "env.horizon=30", "--set",
                   "train.epochs=1", "--out", str(tmp_path / "run"), "--no-progress"])
        assert rc == 0, capsys.readouterr().err
        assert (tmp_path / "run" / "metrics.csv").is_file()
    finally:
        controller_registry._REGISTRY.pop("brake", None)

    config = load_config(FIGURE8, ["learner=my_controllers:not_a_controller"])
    with pytest.raises(controller_registry.ControllerError, match="not a cosim.sim.contracts.Controller"):
        controller_registry.make_controller(config)
    sys.modules.pop("my_controllers", None)


def test_a_factory_that_cannot_be_loaded_fails_before_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", str(FIGURE8), "--set", "learner=no_such_pkg.mod:make", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "no_such_pkg" in err and "Traceback" not in err
    assert not out.exists()
