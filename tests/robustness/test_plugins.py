"""Radio-model plug-ins that fail: at import, in __init__, in max_range_m, while evaluating, or
returning values that are not link qualities. Every case: exit status 2, no traceback, a message
naming the plug-in; nothing non-finite reaches the channel."""

from __future__ import annotations

import itertools
import textwrap

import numpy as np
import pytest

import radio_models
from robust_kit import FIGURE8, QUICK, args_for

_names = itertools.count()

HEADER = textwrap.dedent('''
    import numpy as np
    from radio_models import LinkQuality


    class Base:
        def __init__(self, range_m=200.0):
            self.max_range_m = range_m

        def quality(self, links, p, rate=6e6, in_range=None):
            n = len(links)
            return LinkQuality(np.ones(n, bool) if in_range is None else in_range,
                               np.broadcast_to(np.asarray(p, float), (n,)).copy(), np.full(n, rate))
''')

MODELS = {
    # at import / creation: `cosim validate` already refuses them
    "import_raises": ("raise ZeroDivisionError('boom at import')\nclass Model(Base): pass", "boom at import"),
    "import_error": ("import no_such_module_xyz\nclass Model(Base): pass", "no_such_module_xyz"),
    "syntax_error": ("class Model(Base) pass", "SyntaxError"),
    "init_raises_runtime": ("class Model(Base):\n    def __init__(self):\n        raise RuntimeError('no licence')",
                            "no licence"),
    "init_raises_key": ("class Model(Base):\n    def __init__(self):\n        {}['x']", "KeyError"),
    # a property that raises (Base.__init__ would fail setting it: these have their own __init__)
    "max_range_raises": ("class Model(Base):\n    def __init__(self): pass\n    @property\n"
                         "    def max_range_m(self):\n        raise OSError('disk gone')", "max_range_m failed: OSError"),
    "max_range_raises_runtime": ("class Model(Base):\n    def __init__(self): pass\n    @property\n"
                                 "    def max_range_m(self):\n        raise RuntimeError('no range yet')",
                                 "max_range_m failed: RuntimeError: no range yet"),
    "max_range_raises_in_plain_class": ("class Model:\n    def evaluate(self, links, rng, packet_bits): pass\n"
                                        "    @property\n    def max_range_m(self):\n        raise KeyError('r')",
                                        "max_range_m failed: KeyError"),
    "evaluate_property_raises": ("class Model(Base):\n    @property\n    def evaluate(self):\n"
                                 "        raise RuntimeError('lazy import failed')", "evaluate failed: RuntimeError"),
    "max_range_nan": ("class Model(Base):\n    max_range_m = float('nan')\n    def __init__(self): pass",
                      "max_range_m"),
    "max_range_negative": ("class Model(Base):\n    max_range_m = -1.0\n    def __init__(self): pass", "max_range_m"),
    "no_evaluate": ("class Model:\n    max_range_m = 10.0", "evaluate"),
    "not_a_class": ("Model = 3", "not a class"),
}

EVALUATE = {
    "raises": ("raise RuntimeError('numerics exploded')", "numerics exploded"),
    "raises_memory": ("raise MemoryError()", "MemoryError"),
    "nan_probability": ("return self.quality(links, np.nan)", "non-finite"),
    "inf_probability": ("return self.quality(links, np.inf)", "non-finite"),
    "probability_above_one": ("return self.quality(links, 1.5)", "outside [0, 1]"),
    "negative_probability": ("return self.quality(links, -0.1)", "outside [0, 1]"),
    "returns_none": ("return None", "not a LinkQuality"),
    "returns_tuple": ("return (1, 2, 3)", "not a LinkQuality"),
    "wrong_shape": ("q = self.quality(links, 0.5)\n        return LinkQuality(q.in_range[:1], q.success_probability, "
                    "q.data_rate_bps)", "shape"),
    "zero_rate": ("return self.quality(links, 0.5, rate=0.0)", "data rate"),
    "nan_rate": ("return self.quality(links, 0.5, rate=np.nan)", "data rate"),
    "strings": ("return LinkQuality(np.ones(len(links), bool), np.array(['a'] * len(links)), "
                "np.ones(len(links)))", "not numbers"),
}


def _module(tmp_path, monkeypatch, body: str) -> str:
    name = f"robust_radio_{next(_names)}_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(HEADER + "\n" + body + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize("case", sorted(MODELS))
def test_plugin_fails_before_the_run(cli, tmp_path, monkeypatch, case):
    body, expected = MODELS[case]
    name = _module(tmp_path, monkeypatch, body)
    result = cli(*args_for("validate", FIGURE8, f"channel.radio.model={name}:Model", "channel.radio.params={}"))
    assert result.rc == 2, result.text
    assert f"{name}:Model" in result.err and expected in result.err, result.err


@pytest.mark.parametrize("case", sorted(EVALUATE))
def test_plugin_fails_while_evaluating(cli, tmp_path, monkeypatch, case):
    body, expected = EVALUATE[case]
    name = _module(tmp_path, monkeypatch, f"class Model(Base):\n    def evaluate(self, links, rng, packet_bits):\n"
                                          f"        {body}")
    out = tmp_path / "run"
    result = cli(*args_for("run", FIGURE8, *QUICK, "train.epochs=1", f"channel.radio.model={name}:Model", "channel.radio.params={}", out=out))
    assert result.rc == 2, result.text
    assert f"{name}:Model" in result.err and expected in result.err, result.err
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("case", ["nan_probability", "probability_above_one", "raises"])
def test_checked_before_the_channel_sees_it(tmp_path, monkeypatch, case):
    body, _ = EVALUATE[case]
    name = _module(tmp_path, monkeypatch, f"class Model(Base):\n    def evaluate(self, links, rng, packet_bits):\n"
                                          f"        {body}")
    model = radio_models.create(f"{name}:Model")
    links = radio_models.LinkBatch.from_distances(np.array([10.0, 20.0]))
    with pytest.raises(radio_models.RadioModelRuntimeError, match=name):
        model.evaluate(links, np.random.default_rng(0), 8000)


def test_a_good_plugin_runs(cli, tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch, "class Model(Base):\n    def evaluate(self, links, rng, packet_bits):\n"
                                          "        return self.quality(links, 0.9)")
    result = cli(*args_for("run", FIGURE8, *QUICK, "train.epochs=1", f"channel.radio.model={name}:Model", "channel.radio.params={}",
                           out=tmp_path / "run"))
    assert result.rc == 0, result.text


def test_max_range_that_raises_later_in_the_run(cli, tmp_path, monkeypatch):
    """A plug-in whose max_range_m reads fine while the run starts, then raises when the channel
    reads it again (inside a SimPy process): exit status 2 naming the plug-in and the line."""
    name = _module(tmp_path, monkeypatch, textwrap.dedent("""
        class Model(Base):
            def __init__(self):
                self.reads = 0

            @property
            def max_range_m(self):
                self.reads += 1
                if self.reads > 3:
                    raise RuntimeError('range table expired')
                return 200.0

            def evaluate(self, links, rng, packet_bits):
                return self.quality(links, 0.9)
    """))
    out = tmp_path / "run"
    result = cli(*args_for("run", FIGURE8, *QUICK, "train.epochs=1", f"channel.radio.model={name}:Model",
                           "channel.radio.params={}", out=out))
    assert result.rc == 2, result.text
    assert f"radio model '{name}:Model' failed in its own code ({name} line" in result.err, result.err
    assert "range table expired" in result.err and "internal error" not in result.err
    assert not (out / "checkpoint.pt").exists()
