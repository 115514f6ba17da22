"""Files that are not what they claim: scenario YAML, --set values, SUMO network and route XML.

Every case: exit status 2, no traceback, one message naming the file (or the --set).
"""

from __future__ import annotations

import os

import pytest

from robust_kit import FIGURE8, SCENARIOS, args_for

BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(6)]
)
MAP_BOMB = "\n".join(
    ["a: &a {k1: x, k2: x, k3: x, k4: x, k5: x, k6: x, k7: x, k8: x}"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} {{{', '.join(f'k{j}: *{chr(97 + i)}' for j in range(10))}}}" for i in range(6)]
)

SCENARIO_FILES = {
    "binary_garbage": (os.urandom(4096) + b"\0", "binary data"),
    "latin1_bytes": ("name: caf\u00e9\nseed: 1\n".encode("latin-1"), "not UTF-8"),
    "cp1252_quotes": (b"name: \x93quoted\x94\n", "not UTF-8"),
    "utf16_without_bom": ("name: x\n".encode("utf-16-le"), "binary data"),
    "nul_in_text": (b"name: x\0\n", "binary data"),
    "deep_flow_lists": (("a: " + "[" * 3000 + "]" * 3000 + "\n").encode(), "nested"),
    "deep_flow_maps": (("a: " + "{b: " * 2000 + "1" + "}" * 2000 + "\n").encode(), "nested"),
    "deep_block_maps": ("\n".join(" " * i + f"k{i}:" for i in range(200)).encode() + b" 1\n", "nested"),
    "deep_but_small": (("a: " + "[" * 40 + "]" * 40 + "\n").encode(), "nested more than"),
    "alias_bomb_lists": (BOMB.encode(), "expands to more than"),
    "alias_bomb_maps": (MAP_BOMB.encode(), "expands to more than"),
    "alias_bomb_merge_keys": (b"a: &a {x: 1}\nb: &b {<<: *a, y: [*a, *a, *a]}\n" + MAP_BOMB.encode()[:0]
                              + ("\n".join(f"c{i}: &c{i} [" + ", ".join([f'*c{i - 1}' if i else '*b'] * 10) + "]"
                                           for i in range(6))).encode(), "expands to more than"),
    "recursive_alias": (b"a: &a [1, *a]\n", "alias"),
    "recursive_alias_map": (b"a: &a {b: *a}\n", "alias"),
    "too_large": (b"# " + b"x" * (1 << 20) + b"\nname: x\n", "too large"),
    "top_level_list": (b"- a\n- b\n", "mapping"),
    "top_level_scalar": (b"just some words\n", "mapping"),
    "top_level_int": (b"42\n", "mapping"),
    "syntax_error": (b"name: [unclosed\n", "not valid YAML"),
    "tab_indentation": (b"env:\n\thorizon: 3\n", "not valid YAML"),
    "unclosed_quote": (b'name: "abc\n', "not valid YAML"),
    "bad_timestamp": (b"name: x\nseed: 2020-13-45\n", "not valid YAML"),
    "python_tag": (b"name: !!python/object/apply:os.system [echo hi]\n", "not valid YAML"),
    "unknown_tag": (b"name: !custom x\n", "not valid YAML"),
    "control_character": (b"name: a\x07b\n", "not valid YAML"),
    "two_documents": (b"name: a\n---\nname: b\n", "not valid YAML"),
    "empty_file": (b"", "network"),
    "only_comments": (b"# nothing here\n", "network"),
    "unhashable_key": (b"? [a, b]\n: 1\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(SCENARIO_FILES))
def test_scenario_file(cli, tmp_path, case):
    data, expected = SCENARIO_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(data)
    result = cli("validate", str(path))
    assert result.rc == 2, result.text
    assert str(path) in result.err and expected in result.err, result.err


@pytest.mark.parametrize("case,path", [("missing", "no/such/file.yaml"), ("directory", ".")])
def test_scenario_path(cli, tmp_path, case, path):
    result = cli("validate", str(tmp_path / path))
    assert result.rc == 2 and ("not found" in result.err or "directory" in result.err), result.err


SET_VALUES = {
    "alias_bomb": (f"name={{{BOMB.replace(chr(10), ', ')}}}", None),
    "deep_nesting": ("name=" + "[" * 100 + "]" * 100, "nested"),
    "recursive_alias": ("name=&a [*a]", "alias"),
    "no_equals_sign": ("train.epochs", "KEY=VALUE"),
    "empty_key_part": ("train..epochs=2", "KEY=VALUE"),
    "value_not_section": ("seed.x=1", "is a value, not a section"),
    "unknown_section": ("trian.epochs=2", "trian"),
}


@pytest.mark.parametrize("case", sorted(SET_VALUES))
def test_set_value(cli, case):
    override, expected = SET_VALUES[case]
    result = cli(*args_for("validate", FIGURE8, override))
    assert result.rc == 2, result.text
    assert "--set" in result.err and (expected is None or expected in result.err), result.err


XML = {
    "text": (b"this is not xml\n", "not an XML file"),
    "binary": (os.urandom(512).replace(b"<", b"") + b"\0", "not an XML file"),
    "empty": (b"", "not an XML file"),
    "truncated": (b"<routes><vType id='cav'/><vehicle id='a' type='cav' depart='0'>", "not an XML file"),
    "yaml": (b"routes: [a, b]\n", "not an XML file"),
    "wrong_root": (b"<html><body/></html>", "was expected"),
    "entity_bomb": (b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
                    + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode()
                               for i in range(8))
                    + b"]>\n<routes>&i;</routes>", None),
}
NETWORK_KEYS = {
    "routes": "network.routes=[{}]",
    "nodes": "network.nodes={}",
    "edges": "network.edges={}",
    "connections": "network.connections={}",
}


@pytest.mark.parametrize("key", sorted(NETWORK_KEYS))
@pytest.mark.parametrize("kind", sorted(XML))
def test_network_file_not_what_it_claims(cli, tmp_path, key, kind):
    data, expected = XML[kind]
    path = tmp_path / f"bad.{key}.xml"
    path.write_bytes(data)
    result = cli(*args_for("validate", FIGURE8, NETWORK_KEYS[key].format(path)))
    assert result.rc == 2, result.text
    assert f"network.{key}" in result.err and str(path) in result.err, result.err
    if expected:
        assert expected in result.err, result.err


@pytest.mark.parametrize("kind", ["text", "wrong_root", "empty"])
def test_net_file_not_xml(cli, tmp_path, kind):
    data, _ = XML[kind]
    path = tmp_path / "bad.net.xml"
    path.write_bytes(data)
    result = cli(*args_for("validate", FIGURE8, f"network.net_file={path}", "network.nodes=null",
                           "network.edges=null", "network.connections=null"))
    assert result.rc == 2 and "network.net_file" in result.err, result.text


def test_route_file_is_a_directory(cli, tmp_path):
    result = cli(*args_for("validate", FIGURE8, f"network.routes=[{tmp_path}]"))
    assert result.rc == 2 and "file not found" in result.err, result.text


def test_builtin_scenarios_still_validate(cli):
    for scenario in ("figure8.yaml", "merge.yaml"):
        assert cli("validate", str(SCENARIOS / scenario)).rc == 0
