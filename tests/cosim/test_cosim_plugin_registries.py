"""The mixing-rule and medium registries: built-in names, names registered in code, entry points
of an installed distribution, package.module:Class; the built-ins go through the same contracts
as plug-ins; built-in rule names are checked without importing torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import simpy
import torch

from cosim.channel import Channel, ChannelConfig
from cosim.channel.medium import Medium
from cosim.config import load_config
from cosim.plugins import medium_registry, rule_registry
from learners.mixing import BUILTIN_RULES, AverageRule
from learners.rules import MixContext, MixingRule, apply_rule

from cosim_testkit import SCENARIOS

PLUGINS = textwrap.dedent('''
    import torch
    from learners.rules import MixingRule
    from cosim.channel.independent import IndependentMedium


    class Halfway(MixingRule):
        def __init__(self, share=0.5):
            self.share = share

        def zeta(self, theta, theta_ref, ctx):
            return torch.full((theta.shape[0],), self.share, dtype=theta.dtype)


    class Pipes(IndependentMedium):
        pass


    class BigFrames(IndependentMedium):
        @classmethod
        def packet_framing(cls, framing, params):
            from cosim.channel.framing import Framing
            return Framing(10_000, mac_header_bytes=0, fcs_bytes=0, llc_bytes=0)


    class BadFrames(IndependentMedium):
        @classmethod
        def packet_framing(cls, framing, params):
            return 10_000
''')


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    name = f"registry_plugins_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def write_distribution(root, dist: str, group: str, entry_points: dict[str, str]) -> None:
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")


def test_builtin_rule_names_are_checked_without_torch():
    code = ("import sys; from cosim.plugins import rule_registry as r; "
            "[r.check_name(n) for n in ('average', 'fixed', 'regulated', 'reward_weighted')]; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_builtin_rule_is_registered_and_goes_through_the_contract():
    assert set(BUILTIN_RULES) <= set(rule_registry.available())
    comm = dict(load_config(SCENARIOS / "figure8.yaml").comm)
    for name, cls in BUILTIN_RULES.items():
        loaded = rule_registry.create(name, comm)
        assert type(loaded.rule) is cls and isinstance(loaded.rule, MixingRule) and not loaded.plugin
    regulated = rule_registry.create("regulated", {**comm, "zeta_max": 0.7, "fisher": "exact"}).rule
    assert (regulated.zeta_max, regulated.fisher, regulated.needs) == (0.7, "exact", frozenset({"replay"}))
    assert rule_registry.create("reward_weighted", {**comm, "reward_window": 9}).rule.reward_window == 9


def test_every_builtin_medium_is_registered_and_goes_through_the_contract():
    for name in ("independent", "csma", "sidelink"):
        env = simpy.Environment()
        channel = Channel(env, ChannelConfig(medium=name), np.random.default_rng(0))
        assert isinstance(channel.medium, Medium) and type(channel.medium).name == name
    assert medium_registry.broadcast_media() == ["csma", "sidelink"]
    assert Channel(simpy.Environment(), ChannelConfig(mode="ideal"), np.random.default_rng(0)).medium is None


def test_rules_by_path_registered_name_and_entry_point(tmp_path, plugin_module, monkeypatch):
    path = f"{plugin_module}:Halfway"
    assert rule_registry.create(path, {}, {"share": 0.25}).rule.share == 0.25
    loaded = rule_registry.create(path, {})
    assert loaded.plugin and loaded.label == path
    try:
        rule_registry.register_rule("halfway_for_test", path)
        assert type(rule_registry.create("halfway_for_test", {}).rule).__name__ == "Halfway"
        with pytest.raises(ValueError, match="already registered"):
            rule_registry.register_rule("halfway_for_test", AverageRule)
    finally:
        rule_registry._REGISTRY.pop("halfway_for_test", None)
    site = tmp_path / "site"
    site.mkdir()
    write_distribution(site, "third_party_rules", "cosim.mixing_rules",
                       {"halfway": path, "broken_rule": "no_such_package_xyz:Rule"})
    assert "halfway" not in rule_registry.available()
    monkeypatch.syspath_prepend(str(site))
    assert "halfway" in rule_registry.available()
    cfg = load_config(SCENARIOS / "figure8.yaml", ["comm.rule=halfway", "comm.rule_params={share: 0.2}"])
    assert cfg.comm.rule == "halfway" and cfg.comm.rule_params == {"share": 0.2}
    with pytest.raises(rule_registry.MixingRuleError, match="broken_rule.*no_such_package_xyz"):
        rule_registry.check_name("broken_rule")


def test_media_by_path_registered_name_and_entry_point(tmp_path, plugin_module, monkeypatch):
    path = f"{plugin_module}:Pipes"
    assert ChannelConfig(medium=path).medium_params == {}
    try:
        medium_registry.register_medium("pipes_for_test", path)
        channel = Channel(simpy.Environment(), ChannelConfig(medium="pipes_for_test"), np.random.default_rng(0))
        assert type(channel.medium).__name__ == "Pipes"
    finally:
        medium_registry._REGISTRY.pop("pipes_for_test", None)
    site = tmp_path / "site"
    site.mkdir()
    write_distribution(site, "third_party_media", "cosim.radio_media", {"pipes": path})
    assert "pipes" not in medium_registry.available()
    monkeypatch.syspath_prepend(str(site))
    cfg = load_config(SCENARIOS / "figure8.yaml", ["channel.medium=pipes"])
    assert cfg.channel.medium == "pipes" and cfg.channel.medium_params == {}


def test_a_medium_chooses_how_packets_are_cut(plugin_module):
    config = ChannelConfig(medium=f"{plugin_module}:BigFrames", payload_bytes=20_000)
    channel = Channel(simpy.Environment(), config, np.random.default_rng(0))
    assert channel._packet_sizes(8 * 20_000) == [8 * 10_000] * 2
    with pytest.raises(medium_registry.MediumError, match="packet_framing.. returned int, not a Framing"):
        Channel(simpy.Environment(), ChannelConfig(medium=f"{plugin_module}:BadFrames"), np.random.default_rng(0))


def test_csma_parameters_under_the_old_keys_are_still_read():
    cfg = ChannelConfig(medium="csma", carrier_sense_dbm=-80.0)
    assert cfg.medium_params == {"carrier_sense_dbm": -80.0, "fallback_rx_power_dbm": -65.0}
    # a medium that takes no such parameter ignores them, as the independent pipe always did
    assert ChannelConfig(medium="independent", carrier_sense_dbm=-80.0).medium_params == {}
    # given both ways, medium_params wins
    both = ChannelConfig(medium="csma", carrier_sense_dbm=-80.0, medium_params={"carrier_sense_dbm": -70.0})
    assert both.medium_params["carrier_sense_dbm"] == -70.0


def test_apply_rule_keeps_nonfinite_referential_policies_out():
    theta = torch.zeros(2, 3, dtype=torch.float64)
    ref = torch.ones(2, 3, dtype=torch.float64)
    ref[1, 0] = float("nan")
    out = apply_rule(AverageRule(), theta, ref, MixContext(spec=None, mixed_before=torch.tensor([0, 0])))
    assert out.mixed.tolist() == [True, False] and out.nonfinite.tolist() == [False, True]
    assert torch.equal(out.theta[1], theta[1]) and torch.allclose(out.theta[0], torch.full((3,), 0.5, dtype=torch.float64))
