"""Scenario config: defaults, overrides, and one clear message per mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cosim.config import ConfigError, dump_config, load_config
from cosim.config.loader import parse_override

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _errors(path, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_config(path, list(overrides))
    return info.value.lines


def test_builtin_scenarios_have_table_iii_values(figure8, merge):
    assert (figure8.env.n_agents, figure8.env.horizon, figure8.env.accel_range) == (9, 1500, (-3.0, 3.0))
    assert (merge.env.n_agents, merge.env.horizon, merge.env.accel_range) == (13, 750, (-1.5, 1.5))
    assert figure8.sumo.step_length == merge.sumo.step_length == 0.1
    assert figure8.train.epochs == 300 and merge.train.epochs == 260
    # paths are resolved against the YAML file's directory
    assert figure8.network.routes[0] == SCENARIOS / "networks/figure8/figure8.rou.xml"


def test_overrides_are_typed_by_yaml(figure8):
    cfg = load_config(SCENARIOS / "figure8.yaml", ["train.epochs=2", "learner=random",
                                                    "env.accel_range=[-1, 2]", "sumo.backend=traci"])
    assert cfg.train.epochs == 2 and cfg.learner == "random"
    assert cfg.env.accel_range == (-1.0, 2.0) and cfg.sumo.backend == "traci"
    assert parse_override("a.b=1.5") == (["a", "b"], 1.5)
    assert parse_override("a=[1, x]") == (["a"], [1, "x"])


def test_unknown_key_suggests_the_closest(tmp_path):
    data = yaml.safe_load((SCENARIOS / "figure8.yaml").read_text())
    data["train"]["epocs"] = 3
    data["network"] = {k: str(SCENARIOS / v) if isinstance(v, str) else [str(SCENARIOS / x) for x in v]
                       for k, v in data["network"].items() if k != "edge_order"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    (line,) = _errors(path)
    assert line.startswith(f"{path}: train.epocs: unknown key; did you mean 'epochs'?")
    from cosim.config.schema import TrainConfig

    assert f"(allowed: {', '.join(TrainConfig.model_fields)})" in line


def test_unknown_top_level_section():
    (line,) = _errors(SCENARIOS / "figure8.yaml", ["traning.epochs=2"])
    assert "traning: unknown key; did you mean 'train'?" in line and line.startswith("--set traning.epochs=2")


def test_wrong_type_names_key_and_value():
    (line,) = _errors(SCENARIOS / "figure8.yaml", ["train.epochs=many"])
    assert "train.epochs:" in line and "integer" in line and "'many'" in line


def test_negative_step_length():
    (line,) = _errors(SCENARIOS / "figure8.yaml", ["sumo.step_length=-0.1"])
    assert line == "--set sumo.step_length=-0.1: sumo.step_length: must be > 0.0 (got -0.1)"


def test_bad_choice_lists_the_allowed_values():
    (line,) = _errors(SCENARIOS / "figure8.yaml", ["sumo.backend=socket"])
    assert "sumo.backend: must be one of 'libsumo' or 'traci' (got 'socket')" in line


def test_missing_network_file(tmp_path):
    text = (SCENARIOS / "figure8.yaml").read_text().replace("networks/figure8/figure8.nod.xml", "nowhere.nod.xml")
    path = SCENARIOS / "_tmp_missing.yaml"
    path.write_text(text)
    try:
        (line,) = _errors(path)
    finally:
        path.unlink()
    assert line == f"{path}: network.nodes: file not found: {SCENARIOS / 'nowhere.nod.xml'}"


def test_several_mistakes_are_all_reported():
    lines = _errors(SCENARIOS / "figure8.yaml", ["seed=-1", "env.horizon=0", "env.accel_range=[3, -3]"])
    keys = sorted(line.split(": ")[1] for line in lines)
    assert keys == ["env.accel_range", "env.horizon", "seed"]


def test_network_needs_exactly_one_source(tmp_path):
    (tmp_path / "any.net.xml").write_text("<net/>\n")
    (line,) = _errors(SCENARIOS / "figure8.yaml", [f"network.net_file={tmp_path / 'any.net.xml'}"])
    assert "network:" in line and "not both" in line


def test_yaml_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    (line,) = _errors(bad)
    assert line.startswith(f"{bad}: not valid YAML (line ")
    (line,) = _errors(tmp_path / "absent.yaml")
    assert line == f"{tmp_path / 'absent.yaml'}: file not found"


def test_resolved_config_round_trips(figure8, tmp_path):
    dump_config(figure8, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == figure8


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cosim", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_reports_bad_config_without_traceback():
    result = _cli("validate", str(SCENARIOS / "figure8.yaml"), "--set", "sumo.step_length=-1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == ("error: --set sumo.step_length=-1: sumo.step_length: "
                                     "must be > 0.0 (got -1)")
    result = _cli("run", str(SCENARIOS / "figure8.yaml"), "--set", "train.epocs=1")
    assert result.returncode == 2 and "did you mean 'epochs'" in result.stderr and "Traceback" not in result.stderr


def test_cli_validate_ok_and_print():
    result = _cli("validate", str(SCENARIOS / "merge.yaml"), "--print")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["env"]["n_agents"] == 13


def test_relative_paths_in_overrides_are_relative_to_cwd(tmp_path):
    routes = Path(SCENARIOS / "networks/figure8/figure8.rou.xml")
    (tmp_path / "mine.rou.xml").write_bytes(routes.read_bytes())
    result = _cli("validate", str(SCENARIOS / "figure8.yaml"), "--set", "network.routes=[mine.rou.xml]",
                  "--print", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["network"]["routes"] == [str(tmp_path / "mine.rou.xml")]


@pytest.mark.parametrize("fisher", ["batch_score", "exact"])
@pytest.mark.parametrize("zeta_rule", ["theorem2", "trust_region"])
def test_every_fisher_and_zeta_rule_validates(fisher, zeta_rule):
    c = load_config(SCENARIOS / "figure8.yaml", [f"comm.fisher={fisher}", f"comm.zeta_rule={zeta_rule}",
                                                 "comm.trust_region_kl=0.05"]).comm
    assert (c.fisher, c.zeta_rule, c.trust_region_kl) == (fisher, zeta_rule, 0.05)
    assert load_config(SCENARIOS / "figure8.yaml").comm.fisher == "batch_score"  # the paper's experiments
