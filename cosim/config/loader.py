"""Load a scenario YAML, apply ``--set key=value`` overrides, validate, and explain mistakes.

Every problem becomes a :class:`ConfigError` whose lines read
``<file or --set>: <key>: <what is wrong and what is allowed>``, so the CLI can print them and
exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cosim.config.schema import ScenarioConfig


class ConfigError(Exception):
    """A scenario could not be loaded; ``lines`` are one human-readable message each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value (``1`` -> int, ``[1,2]`` -> list)."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise ConfigError([f"--set {text}: expected KEY=VALUE with a dotted key, e.g. train.epochs=2"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return path, value


def _absolute_paths(value: Any) -> Any:
    """Relative paths typed on the command line mean relative to the current directory."""
    if isinstance(value, str) and not Path(value).is_absolute():
        return str(Path.cwd() / value)
    if isinstance(value, list):
        return [_absolute_paths(item) for item in value]
    return value


def apply_overrides(data: dict, overrides: list[str]) -> dict[str, str]:
    """Set each ``--set`` override in ``data`` (in place); return {dotted key: original text}.

    Values of file-path keys given relative are taken relative to the current directory (in the
    YAML file they are relative to the file).
    """
    origin: dict[str, str] = {}
    for text in overrides:
        path, value = parse_override(text)
        if _is_path_key(tuple(path)):
            value = _absolute_paths(value)
        node = data
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise ConfigError([f"--set {text}: '{where}' is a value, not a section"])
            node = child
        node[path[-1]] = value
        origin[".".join(path)] = text
    return origin


def read_yaml(path: Path) -> dict:
    """The mapping stored in a YAML file, or a ConfigError naming the file and the problem."""
    if not path.is_file():
        raise ConfigError([f"{path}: file not found"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}: not valid YAML{where}: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}"])
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> ScenarioConfig:
    """Read, override and validate a scenario; raise ConfigError listing every problem."""
    path = Path(path)
    data = read_yaml(path)
    origin = apply_overrides(data, overrides or [])
    try:
        return ScenarioConfig.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, origin)) from None


def dump_config(config: ScenarioConfig, path: Path) -> None:
    """Write the fully resolved config (every default spelled out, absolute paths) as YAML."""
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# ---------------------------------------------------------------------------- error messages
def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _field_names(section: type) -> list[str]:
    """Keys of a config section: a pydantic model or a dataclass (e.g. learners.SACConfig)."""
    if issubclass(section, BaseModel):
        return list(section.model_fields)
    return [f.name for f in dataclasses.fields(section)]


def _field_annotation(section: type, name: str) -> Any:
    if issubclass(section, BaseModel):
        field = section.model_fields.get(name)
        return field.annotation if field else None
    hints = typing.get_type_hints(section)
    return hints.get(name)


def _model_classes(annotation: Any) -> list[type]:
    """The config sections (models, dataclasses) reachable from an annotation (Optional, list)."""
    if isinstance(annotation, type) and (issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            found += _model_classes(arg)
    return found


def _section_at(loc: tuple) -> type | None:
    """The config section (model or dataclass) that holds the key at ``loc``."""
    section: type = ScenarioConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        classes = _model_classes(_field_annotation(section, part))
        if not classes:
            return None
        section = classes[0]
    return section


def _is_path_key(loc: tuple) -> bool:
    section = _section_at(loc)
    return section is not None and "Path" in str(_field_annotation(section, loc[-1]))


def _describe(error: dict) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    loc = error["loc"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        section = _section_at(loc)
        allowed = _field_names(section) if section else []
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        text = "unknown key"
        if hint:
            text += f"; did you mean '{hint[0]}'?"
        if allowed:
            text += f" (allowed: {', '.join(allowed)})"
        return text
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {value!r})"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit} (got {value!r})"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{error['msg'][0].lower()}{error['msg'][1:]} (got {value!r})"


def format_validation_error(exc: ValidationError, path: Path, origin: dict[str, str]) -> list[str]:
    """One line per problem: where it came from (file or --set), the key, what is allowed."""
    lines = []
    for error in exc.errors():
        key = _dotted(error["loc"]) or "(top level)"
        source = str(path)
        for dotted, text in origin.items():
            # the override set this key, a key inside it, or created this (unknown) section
            if key == dotted or key.startswith((dotted + ".", dotted + "[")) or dotted.startswith(key + "."):
                source = f"--set {text}"
        lines.append(f"{source}: {key}: {_describe(error)}")
    return lines
