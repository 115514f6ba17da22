"""Names that become directories, and YAML keys given twice (issue 16).

- A scenario ``name`` becomes the default run directory ``runs/<name>``: anything but a plain
  directory name is refused, so no run lands outside ``runs/``. A sweep's ``name`` follows the
  same rule, a sweep file whose stem is no plain name needs ``--out``, and member directory
  names built from values never leave the sweep directory.
- YAML requires unique keys, yet a loader keeps the last one silently: scenario files, sweep
  files and ``--set`` values with a key given twice are refused, naming the key and where.

Every case: exit status 2, no traceback, one ``error:`` line per problem naming the file (or
the --set) and the key. Validate-only or refused before the run: no SUMO is started.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cosim.cli.sweep import load_sweep
from robust_kit import FIGURE8, QUICK, SCENARIOS, args_for

NETWORKS = SCENARIOS / "networks"


def _errors(result) -> list[str]:
    return [line for line in result.err.splitlines() if line.startswith("error:")]


def _scenario(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    """A scenario file in tmp_path, its network paths pointing at the shipped networks."""
    path = tmp_path / name
    path.write_text(text.replace("networks/", f"{NETWORKS}/"))
    return path


# ---------------------------------------------------------------------------- scenario names
BAD_NAMES = {
    "parent": "../escape",
    "deeper_parent": "../../escape",
    "absolute": "/tmp/escape",
    "subdirectory": "a/b",
    "backslash": "'a\\b'",
    "windows_absolute": "'C:\\temp\\x'",
    "dot_dot": "'..'",
    "dot": "'.'",
    "hidden": ".hidden",
    "dot_dot_inside": "a..b",
    "too_long": "x" * 101,
    "too_many_bytes": "\U0001F600" * 70,  # 70 characters, 280 bytes in UTF-8
    "tab": '"a\\tb"',
    "newline": '"a\\nb"',
    "bell": '"a\\x07b"',
    "escape_sequence": '"\\e[31mred"',
    "bidi_override": '"a\\u202eb"',
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_name_that_is_not_a_plain_directory_name(cli, case):
    result = cli(*args_for("validate", FIGURE8, f"name={BAD_NAMES[case]}"))
    assert result.rc == 2, result.text
    (line,) = _errors(result)
    assert line.startswith("error: --set name=") and ": name: " in line, line
    assert "plain directory name" in line and "at most 100" in line, line


@pytest.mark.parametrize("name", ["figure8", "my run", "prr=0.8__seed=1", "caf\u00e9", "v1.2", "x" * 100])
def test_plain_names_are_accepted(cli, name):
    assert cli(*args_for("validate", FIGURE8, f"name={name}")).rc == 0


@pytest.mark.parametrize("kind", ["parent", "absolute"])
def test_run_with_a_bad_name_writes_nothing(cli, tmp_path, monkeypatch, kind):
    """The default --out is runs/<name>: the run is refused before any directory is made (so
    before SUMO starts)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    name = "../escape" if kind == "parent" else str(tmp_path / "escape")
    text = FIGURE8.read_text().replace("name: figure8", f"name: {name}")
    scenario = _scenario(tmp_path, text)
    result = cli(*args_for("run", scenario, *QUICK, "train.epochs=1"))
    assert result.rc == 2, result.text
    (line,) = _errors(result)
    assert str(scenario) in line and ": name: " in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml", "work"]
    assert list(work.iterdir()) == []


# ---------------------------------------------------------------------------- sweep names
def _sweep(tmp_path: Path, body: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"base: {FIGURE8}\n{body}")
    return path


@pytest.mark.parametrize("value", ["../escape", "/tmp/x", ".hidden", "'..'", "x" * 101])
def test_sweep_name_that_is_not_a_plain_name(cli, tmp_path, value):
    path = _sweep(tmp_path, f"name: {value}\nseeds: [0]\n")
    result = cli("sweep", str(path), "--out", str(tmp_path / "out"), "--dry-run")
    assert result.rc == 2, result.text
    (line,) = _errors(result)
    assert line.startswith(f"error: {path}: name: ") and "plain directory name" in line, line


def test_sweep_file_whose_stem_is_no_plain_name_needs_out(cli, tmp_path, monkeypatch):
    """``...yaml`` has the stem ``..``: the default runs/<stem> would be the directory above runs/."""
    monkeypatch.chdir(tmp_path)
    path = _sweep(tmp_path, "seeds: [0]\n", name="...yaml")
    result = cli("sweep", str(path), "--dry-run")
    assert result.rc == 2, result.text
    (line,) = _errors(result)
    assert str(path) in line and "--out" in line, line
    assert cli("sweep", str(path), "--dry-run", "--out", str(tmp_path / "out")).rc == 0


HOSTILE_VALUES = ["../../escape1", "/tmp/escape2", "..", ".hidden", "a/../../b3", "a\\..\\b4", "\u202e..5",
                  "y" * 300, "~user", "a\x00b", "-rf"]


def test_member_names_stay_inside_the_sweep_directory(cli, tmp_path):
    """Member directories are named by sanitised values (cosim/cli/sweep.py member_name): whatever
    a value holds, the name is one plain component. Such values as a scenario name are then
    refused by validation, naming the member and the key."""
    values = ", ".join(f'"{v}"' for v in (v.replace("\\", "\\\\").replace("\x00", "\\0") for v in HOSTILE_VALUES))
    path = _sweep(tmp_path, f"grid:\n  name: [{values}]\n")
    out = (tmp_path / "out").resolve()
    sweep = load_sweep(path)
    assert len(sweep.members) == len(HOSTILE_VALUES)
    for member in sweep.members:
        assert (out / member.name).resolve().parent == out, member.name
        assert not member.name.startswith(".") and ".." not in member.name.split("="), member.name
    result = cli("sweep", str(path), "--out", str(out), "--dry-run")
    assert result.rc == 2, result.text
    errors = _errors(result)
    assert errors and all(" member " in line and ": name: " in line for line in errors), result.err
    assert not out.exists()


# ---------------------------------------------------------------------------- duplicate keys
FIGURE8_TEXT = FIGURE8.read_text()
DUPLICATES = {
    # case: (scenario text, [(key, places)] in the order reported)
    "section_twice": (FIGURE8_TEXT + "env:\n  horizon: 30\n", [("env", "lines 13 and 32")]),
    "key_twice_in_a_section": (FIGURE8_TEXT.replace("  horizon: 1500", "  horizon: 1500\n  horizon: 20"),
                               [("env.horizon", "lines 15 and 16")]),
    "top_level_key_twice": ("seed: 1\n" + FIGURE8_TEXT, [("seed", "lines 1 and 6")]),
    "three_times": (FIGURE8_TEXT + "seed: 2\nseed: 3\n", [("seed", "lines 5, 32 and 33")]),
    "flow_mapping": (FIGURE8_TEXT.replace("{range_m: 90, prr: 1.0}", "{range_m: 90, prr: 1.0, range_m: 40}"),
                     [("channel.radio.params.range_m", "line 24, columns 14 and 37")]),
    "int_and_float_key": ("name: x\nnetwork:\n  routes: [a]\n  routes: [b]\n1: a\n1.0: b\n",
                          [("network.routes", "lines 3 and 4"), ("1", "lines 5 and 6")]),
    "inside_a_list": ("name: x\nnetwork:\n  routes:\n    - {a: 1, a: 2}\n", [("network.routes[0].a", "line 4")]),
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_scenario_file_with_a_key_given_twice(cli, tmp_path, case):
    text, expected = DUPLICATES[case]
    path = _scenario(tmp_path, text)
    result = cli("validate", str(path))
    assert result.rc == 2, result.text
    errors = _errors(result)
    assert len(errors) == len(expected), result.err
    for line, (key, places) in zip(errors, expected):
        assert line.startswith(f"error: {path}: {key}: key given "), line
        assert places in line and "unique" in line, line


def test_merge_keys_may_override_what_they_merge(cli, tmp_path):
    """``<<: *anchor`` then a key of the anchor is YAML's override, not a duplicate."""
    text = FIGURE8_TEXT.replace("idm:", "x:") + "idm: {<<: {a: 1.0, b: 1.5}, a: 2.0}\n"
    assert cli("validate", str(_scenario(tmp_path, text))).rc == 0


@pytest.mark.parametrize("override,key,places", [
    ("env={horizon: 3, horizon: 4}", "env.horizon", "line 1, columns 2 and 14"),
    ("channel.radio.params={range_m: 1, range_m: 2}", "channel.radio.params.range_m", "columns 2 and 14"),
    ("sac.hidden=[{a: 1, a: 2}]", "sac.hidden[0].a", "columns 3 and 9"),
])
def test_set_value_with_a_key_given_twice(cli, override, key, places):
    result = cli(*args_for("validate", FIGURE8, override))
    assert result.rc == 2, result.text
    (line,) = _errors(result)
    assert line.startswith(f"error: --set {override}: {key}: key given twice") and places in line, line


@pytest.mark.parametrize("body,key,places", [
    ("seeds: [0]\nseeds: [1]\n", "seeds", "lines 2 and 3"),
    ("grid:\n  comm.interval: [1, 2]\n  comm.interval: [3]\n", "grid.comm.interval", "lines 3 and 4"),
    ("set: {train.epochs: 1, train.epochs: 2}\n", "set.train.epochs", "line 2, columns 7 and 24"),
    ("base: other.yaml\n", "base", "lines 1 and 2"),
])
def test_sweep_file_with_a_key_given_twice(cli, tmp_path, body, key, places):
    path = _sweep(tmp_path, body)
    result = cli("sweep", str(path), "--out", str(tmp_path / "out"), "--dry-run")
    assert result.rc == 2, result.text
    (line,) = _errors(result)
    assert line.startswith(f"error: {path}: {key}: key given twice") and places in line, line


def test_sweep_set_with_a_key_given_twice(cli, tmp_path):
    path = _sweep(tmp_path, "seeds: [0]\n")
    override = "env={horizon: 3, horizon: 4}"
    result = cli("sweep", str(path), "--out", str(tmp_path / "out"), "--dry-run", "--set", override)
    assert result.rc == 2, result.text
    (line,) = _errors(result)
    assert line.startswith(f"error: --set {override}: env.horizon: key given twice"), line
