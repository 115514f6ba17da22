"""Mixing-rule and medium plug-ins that fail: at import, when created, with bad parameters, or
while the run goes on (raising, or answering garbage: a zeta outside [0, 1] or not finite, a
wrong shape; a send without a frame, metrics that are not numbers, a SimPy callback of the
plug-in's that raises). Every case: exit status 2, no traceback, a message naming the plug-in,
no checkpoint. A rule that marks a replica as skipped is no error: it is counted."""

from __future__ import annotations

import csv
import itertools
import textwrap

import pytest

from robust_kit import FIGURE8, args_for

_names = itertools.count()

# one short epoch in which SAC agents update their policies and CommMix rounds pull and mix
SHORT = ("train.epochs=1", "env.horizon=80", "train.warmup_steps=20", "sac.batch_size=16", "sac.policy_delay=1",
         "comm.interval=1", "comm.method=drl_de")

RULE_HEADER = textwrap.dedent('''
    import math
    import torch
    from learners.rules import MixingRule, Zeta


    class Base(MixingRule):
        def zeta(self, theta, theta_ref, ctx):
            return torch.full((theta.shape[0],), 0.5, dtype=theta.dtype)
''')

MEDIUM_HEADER = textwrap.dedent('''
    from cosim.channel.independent import IndependentMedium
    from cosim.channel.medium import Medium


    class Base(IndependentMedium):
        pass
''')


def _module(tmp_path, monkeypatch, header: str, body: str) -> str:
    name = f"robust_plugin_{next(_names)}_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(header + "\n" + textwrap.dedent(body) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


# ---------------------------------------------------------------- mixing rules
RULES_BEFORE = {
    "import_raises": ("raise ZeroDivisionError('boom at import')\nclass Rule(Base): pass", (), "boom at import"),
    "import_error": ("import no_such_module_xyz\nclass Rule(Base): pass", (), "no_such_module_xyz"),
    "not_a_rule": ("class Rule:\n    def zeta(self, *a): return 0.5", (), "not a subclass of learners.rules.MixingRule"),
    "init_raises": ("class Rule(Base):\n    def __init__(self):\n        raise RuntimeError('no licence')", (),
                    "no licence"),
    "unknown_param": ("class Rule(Base):\n    def __init__(self, step=0.5):\n        self.step = step",
                      ("comm.rule_params={stepp: 0.1}",), "comm.rule_params.stepp"),
    "missing_param": ("class Rule(Base):\n    def __init__(self, step):\n        self.step = step", (),
                      "comm.rule_params.step"),
    "unknown_need": ("class Rule(Base):\n    needs = frozenset({'gossip'})", (), "gossip"),
}

RULES_WHILE_RUNNING = {
    "raises": ("raise RuntimeError('numerics exploded')", "numerics exploded"),
    "above_one": ("return torch.full((theta.shape[0],), 2.0, dtype=theta.dtype)", "outside [0, 1]"),
    "negative": ("return torch.full((theta.shape[0],), -0.1, dtype=theta.dtype)", "outside [0, 1]"),
    "nan_not_skipped": ("return torch.full((theta.shape[0],), math.nan, dtype=theta.dtype)", "not finite"),
    "inf": ("return torch.full((theta.shape[0],), math.inf, dtype=theta.dtype)", "not finite"),
    "wrong_shape": ("return torch.zeros(theta.shape[0] + 1, dtype=theta.dtype)", "shape"),
    "not_a_tensor": ("return 0.5", "not a torch.Tensor"),
    "none": ("return None", "not a torch.Tensor"),
}


@pytest.mark.parametrize("case", sorted(RULES_BEFORE))
def test_rule_plugin_fails_before_the_run(cli, tmp_path, monkeypatch, case):
    body, sets, expected = RULES_BEFORE[case]
    name = _module(tmp_path, monkeypatch, RULE_HEADER, body)
    result = cli(*args_for("validate", FIGURE8, f"comm.rule={name}:Rule", *sets))
    assert result.rc == 2, result.text
    assert f"{name}:Rule" in result.err and expected in result.err, result.err
    assert all(line.startswith("error: ") for line in result.err.splitlines()), result.err


@pytest.mark.parametrize("case", sorted(RULES_WHILE_RUNNING))
def test_rule_plugin_fails_while_mixing(cli, tmp_path, monkeypatch, case):
    body, expected = RULES_WHILE_RUNNING[case]
    name = _module(tmp_path, monkeypatch, RULE_HEADER,
                   f"class Rule(Base):\n    def zeta(self, theta, theta_ref, ctx):\n        {body}")
    out = tmp_path / "run"
    result = cli(*args_for("run", FIGURE8, *SHORT, f"comm.rule={name}:Rule", out=out, extra=("--threads", "1")))
    assert result.rc == 2, result.text
    assert f"mixing rule '{name}:Rule'" in result.err and expected in result.err, result.err
    assert not (out / "checkpoint.pt").exists()


def test_a_skipped_replica_is_counted_not_an_error(cli, tmp_path, monkeypatch):
    """A rule that cannot evaluate a replica says so (Zeta.skipped): the replica is not mixed and
    counts in mix_nonfinite_skips, as a non-finite advantage of the regulated rule does."""
    name = _module(tmp_path, monkeypatch, RULE_HEADER, """
        class Rule(Base):
            def zeta(self, theta, theta_ref, ctx):
                nan = torch.full((theta.shape[0],), math.nan, dtype=theta.dtype)
                return Zeta(nan, skipped=torch.ones(theta.shape[0], dtype=torch.bool))
        """)
    out = tmp_path / "run"
    result = cli(*args_for("run", FIGURE8, *SHORT, f"comm.rule={name}:Rule", out=out, extra=("--threads", "1")))
    assert result.rc == 0, result.text
    with open(out / "metrics.csv") as fh:
        row = next(csv.DictReader(fh))
    assert int(row["rho_total"]) > 0 and int(row["mix_nonfinite_skips"]) == int(row["rho_total"])
    assert int(row["rho_ef"]) == 0


# ---------------------------------------------------------------- media
MEDIA_BEFORE = {
    "import_raises": ("raise ZeroDivisionError('boom at import')\nclass Medium1(Base): pass", (), "boom at import"),
    "import_error": ("import no_such_module_xyz\nclass Medium1(Base): pass", (), "no_such_module_xyz"),
    "not_a_medium": ("class Medium1:\n    pass", (), "not a subclass of cosim.channel.medium.Medium"),
    "unknown_param": ("class Medium1(Base): pass", ("channel.medium_params={slots: 4}",), "channel.medium_params.slots"),
    "bad_value": ("class Medium1(Base):\n    def __init__(self, setup, slots=4):\n        super().__init__(setup)\n"
                  "    @classmethod\n    def check_params(cls, params):\n"
                  "        return [('slots', 'must be >= 1')] if params.get('slots', 4) < 1 else []",
                  ("channel.medium_params={slots: 0}",), "channel.medium_params.slots"),
    "cam_without_broadcast": ("class Medium1(Base): pass", ("channel.cam.enabled=true",), "carries none"),
}

MEDIA_WHILE_RUNNING = {
    "init_raises": ("def __init__(self, setup):\n        raise RuntimeError('no licence')", "no licence"),
    "update_raises": ("def update(self, *args, **kwargs):\n        raise OSError('lost the map')", "update() failed"),
    "send_raises": ("def send(self, *args, **kwargs):\n        raise RuntimeError('queue full')", "send() failed"),
    "send_returns_none": ("def send(self, *args, **kwargs):\n        return None", "not a Frame"),
    "metrics_not_numbers": ("def metrics(self):\n        return {'mac_frames_sent': 'many'}", "metrics()"),
    "callback_raises": ("def _decide(self, frame):\n        raise ValueError('decided nothing')", "decided nothing"),
}


@pytest.mark.parametrize("case", sorted(MEDIA_BEFORE))
def test_medium_plugin_fails_before_the_run(cli, tmp_path, monkeypatch, case):
    body, sets, expected = MEDIA_BEFORE[case]
    name = _module(tmp_path, monkeypatch, MEDIUM_HEADER, body)
    result = cli(*args_for("validate", FIGURE8, f"channel.medium={name}:Medium1", *sets))
    assert result.rc == 2, result.text
    assert expected in result.err, result.err
    assert case == "cam_without_broadcast" or f"{name}:Medium1" in result.err, result.err
    assert all(line.startswith("error: ") for line in result.err.splitlines()), result.err


@pytest.mark.parametrize("case", sorted(MEDIA_WHILE_RUNNING))
def test_medium_plugin_fails_while_running(cli, tmp_path, monkeypatch, case):
    body, expected = MEDIA_WHILE_RUNNING[case]
    name = _module(tmp_path, monkeypatch, MEDIUM_HEADER, f"class Medium1(Base):\n    {body}")
    out = tmp_path / "run"
    result = cli(*args_for("run", FIGURE8, *SHORT, f"channel.medium={name}:Medium1", out=out,
                           extra=("--threads", "1")))
    assert result.rc == 2, result.text
    assert f"medium '{name}:Medium1'" in result.err and expected in result.err, result.err
    assert not (out / "checkpoint.pt").exists()
