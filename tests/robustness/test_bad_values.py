"""Values that make no sense: non-finite numbers, booleans for numbers, a scenario without
agents, and several mistakes at once (all reported). Validate only: no SUMO is started.

Every case: exit status 2, no traceback, a message naming the --set and the key.
"""

from __future__ import annotations

import re

import pytest

from robust_kit import FIGURE8, QUICK, SCENARIOS, args_for

NON_FINITE = {
    "env.desired_speed": [".inf", ".nan", "-.inf"],
    "env.max_speed": [".inf", ".nan"],
    "env.accel_range": ["[-.inf, 1]", "[-1, .inf]", "[.nan, 1]", "[.nan, 0]"],
    "env.observe_distance": [".inf"],
    "sumo.step_length": [".nan"],
    "sumo.time_to_teleport": [".nan", ".inf"],
    "idm.v0": [".inf"],
    "idm.T": [".inf"],
    "idm.a": [".nan"],
    "idm.b": [".inf"],
    "idm.delta": [".inf"],
    "idm.s0": [".inf"],
    "idm.noise": [".nan"],
    "channel.timeout_s": [".inf"],
    "channel.per_packet_overhead_s": [".nan"],
    "channel.antenna_height_m": [".inf"],
    "comm.zeta": [".nan"],
    "comm.zeta_safety": [".inf"],
    "comm.timeout_s": [".inf"],
    "sac.gamma": [".nan"],
    "sac.actor_lr": [".inf"],
    "sac.tau": [".nan"],
    "sac.target_entropy": ["-.inf"],
    "sac.grad_clip_norm": [".inf"],
    "sac.adam_eps": [".nan"],
    "sac.adam_betas": ["[.nan, 0.999]"],
    "channel.radio.params.range_m": [".inf"],
    "channel.radio.params.prr": [".nan"],
}

BOOLEANS = {
    "env.n_agents": "true",
    "env.horizon": "false",
    "env.warmup_steps": "true",
    "env.desired_speed": "true",
    "env.accel_range": "[false, true]",
    "seed": "true",
    "train.epochs": "true",
    "train.checkpoint_every": "true",
    "train.update_every": "true",
    "sumo.step_length": "true",
    "idm.v0": "false",
    "vehicles.cav_speed_mode": "true",
    "sac.batch_size": "true",
    "sac.hidden": "[true, 2]",
    "sac.buffer_size": "true",
    "comm.interval": "true",
    "comm.segments": "false",
    "channel.max_retries": "true",
    "channel.payload_bytes": "true",
    "channel.radio.params.prr": "true",
}


def _check(result, key: str, lines: int | None = 1) -> None:
    assert result.rc == 2, result.text
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert errors and all("--set" in line for line in errors), result.err
    assert key in result.err, result.err
    if lines is not None:
        assert len(errors) == lines, result.err


@pytest.mark.parametrize("key,value", [(k, v) for k, values in NON_FINITE.items() for v in values])
def test_non_finite_number(cli, key, value):
    result = cli(*args_for("validate", FIGURE8, f"{key}={value}"))
    _check(result, key.rsplit(".", 1)[-1] if key.startswith("channel.radio.params") else key)
    assert "finite" in result.err, result.err


@pytest.mark.parametrize("key", sorted(BOOLEANS))
def test_boolean_is_not_a_number(cli, key):
    result = cli(*args_for("validate", FIGURE8, f"{key}={BOOLEANS[key]}"))
    _check(result, key.rsplit(".", 1)[-1] if key.startswith("channel.radio.params") else key, lines=None)


@pytest.mark.parametrize("override,key", [
    ("vehicles.cav_type=bus", "cav_type"),
    ("vehicles.cav_type=DEFAULT_VEHTYPE", "cav_type"),
    ("env.n_agents=0", "env.n_agents"),
    ("env.n_agents=-3", "env.n_agents"),
    ("env.accel_range=[1, -1]", "env.accel_range"),
    ("env.accel_range=[0, 0]", "env.accel_range"),
    ("learner=ppo", "learner"),
    ("sumo.backend=sumo-gui", "sumo.backend"),
    ("channel.radio.model=no_such_model", "channel.radio.model"),
    ("channel.radio.params.range_m=-5", "range_m"),
    ("comm.method=fedavg", "comm.method"),
    ("comm.fisher=diagonal", "comm.fisher"),
    ("comm.zeta_rule=kl", "comm.zeta_rule"),
    ("comm.trust_region_kl=0", "comm.trust_region_kl"),
    ("comm.trust_region_kl=.inf", "comm.trust_region_kl"),
    ("train.epocs=3", "train.epocs"),
])
def test_nonsense_value(cli, override, key):
    _check(cli(*args_for("validate", FIGURE8, override)), key)


def test_merge_with_a_cav_type_no_flow_uses(cli):
    _check(cli(*args_for("validate", SCENARIOS / "merge.yaml", "vehicles.cav_type=truck")), "cav_type")


@pytest.mark.parametrize("sets,expected", [
    (("sac.gamma=2", "sac.tau=0", "sac.batch_size=0"), ["sac.gamma", "sac.tau", "sac.batch_size"]),
    (("sac.hidden=[]", "sac.actor_lr=-1", "sac.dtype=float16", "sac.log_std_min=5"),
     ["sac.hidden", "sac.actor_lr", "sac.dtype", "sac.log_std_min"]),
    (("sac.batch_size=512", "sac.buffer_size=100", "sac.gamma=.nan"), ["sac.batch_size", "sac.gamma"]),
    (("env.n_agents=true", "env.desired_speed=.inf", "seed=-1", "sac.tau=2"),
     ["env.n_agents", "env.desired_speed", "seed", "sac.tau"]),
])
def test_every_error_is_reported(cli, sets, expected):
    result = cli(*args_for("validate", FIGURE8, *sets))
    assert result.rc == 2, result.text
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == len(expected), result.err
    for key, line in zip(sorted(expected), sorted(errors, key=lambda l: l.split(": ")[1])):
        assert f": {key}:" in line, result.err


def test_same_mistakes_in_the_file(cli, tmp_path):
    scenario = tmp_path / "bad.yaml"
    text = FIGURE8.read_text().replace("desired_speed: 20.0", "desired_speed: .inf")
    text = text.replace("n_agents: 9 ", "n_agents: true ").replace("networks/", f"{SCENARIOS}/networks/")
    scenario.write_text(text)
    result = cli("validate", str(scenario))
    assert result.rc == 2 and result.err.count(str(scenario)) == 2, result.err
    assert "env.desired_speed" in result.err and "env.n_agents" in result.err


def test_cavs_that_never_enter_within_the_horizon(cli, tmp_path, scenario_copy):
    """The route files use the CAV type, but no CAV departs before the epoch ends: the run stops
    after its first epoch (exit 2) instead of "training" zero agents."""
    routes = scenario_copy.parent / "networks" / "figure8" / "figure8.rou.xml"
    text = re.sub(r'(type="cav" route="\w+") depart="0"', r'\1 depart="5000"', routes.read_text())
    routes.write_text(text)
    out = tmp_path / "run"
    result = cli(*args_for("run", scenario_copy, "learner=random", "env.horizon=20", "train.epochs=2", out=out))
    assert result.rc == 2 and "no vehicle of vType 'cav'" in result.err, result.text
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("argv,expected", [
    (("run", "--threads", "0"), "--threads"),
    (("run", "--threads", "-2"), "--threads"),
    (("eval", "--threads", "0"), "--threads"),
    (("eval", "--epochs", "0"), "--epochs"),
])
def test_bad_command_line_numbers(cli, tmp_path, argv, expected):
    command, *rest = argv
    if command == "run":
        result = cli(*args_for("run", FIGURE8, *QUICK, out=tmp_path / "run"), *rest)
        assert not (tmp_path / "run").exists()
    else:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "config.yaml").write_text("name: x\n")
        result = cli("eval", str(tmp_path / "run"), *rest)
    assert result.rc == 2 and expected in result.err, result.err


RADIO_PARAMS = {
    # case: (channel.radio value, every parameter that must be named)
    "unit_disk_two": ("{model: unit_disk, params: {range_m: -1, prr: 2}}", ["range_m", "prr"]),
    "unit_disk_three": ("{model: unit_disk, params: {range_m: .nan, prr: -0.5, data_rate_mbps: 0}}",
                        ["range_m", "prr", "data_rate_mbps"]),
    "unknown_and_bad": ("{model: unit_disk, params: {rangee: 90, prr: 2, speed: 1}}", ["rangee", "prr", "speed"]),
    "log_distance": ("{model: log_distance, params: {exponent: -2, shadowing_sigma_db: -1, tx_power_dbm: .inf}}",
                     ["exponent", "shadowing_sigma_db", "tx_power_dbm"]),
    "nakagami": ("{model: nakagami, params: {mm: 3, max_range_m: -5, cutoff_probability: 2}}",
                 ["mm", "max_range_m", "cutoff_probability"]),
    "tr37885_highway": ("{model: tr37885_highway, params: {truck_fraction: 2, tx_power_dbm: abc}}",
                        ["truck_fraction", "tx_power_dbm"]),
}


@pytest.mark.parametrize("case", sorted(RADIO_PARAMS))
def test_every_bad_radio_parameter_is_reported(cli, case):
    """One line per bad parameter of the radio model (not only the first the model checks),
    each naming the --set, the parameter's key and what is allowed."""
    value, params = RADIO_PARAMS[case]
    result = cli(*args_for("validate", FIGURE8, f"channel.radio={value}"))
    assert result.rc == 2, result.text
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == len(params), result.err
    prefix = f"error: --set channel.radio={value}: channel.radio.params."
    assert all(line.startswith(prefix) for line in errors), result.err
    named = {line[len(prefix):].split(":")[0]: line for line in errors}
    assert sorted(named) == sorted(params), result.err
    for param, line in named.items():
        assert f"parameter '{param}' must be" in line, line


def test_every_bad_radio_parameter_in_the_file_and_the_sets(cli, tmp_path):
    """Each line names where its parameter was given: the file or its own --set."""
    scenario = tmp_path / "bad.yaml"
    text = FIGURE8.read_text().replace("{range_m: 90, prr: 1.0}", "{range_m: -90, prr: 1.0}")
    scenario.write_text(text.replace("networks/", f"{SCENARIOS}/networks/"))
    result = cli(*args_for("validate", scenario, "channel.radio.params.prr=1.5",
                           "channel.radio.params.data_rate_mbps=-6"))
    assert result.rc == 2, result.text
    errors = sorted(line for line in result.err.splitlines() if line.startswith("error:"))
    assert errors == sorted([
        f"error: {scenario}: channel.radio.params.range_m: radio model 'unit_disk': parameter 'range_m' must be "
        "a finite number > 0; got -90",
        "error: --set channel.radio.params.prr=1.5: channel.radio.params.prr: radio model 'unit_disk': "
        "parameter 'prr' must be a finite number in [0, 1]; got 1.5",
        "error: --set channel.radio.params.data_rate_mbps=-6: channel.radio.params.data_rate_mbps: radio model "
        "'unit_disk': parameter 'data_rate_mbps' must be a finite number > 0; got -6",
    ]), result.err
