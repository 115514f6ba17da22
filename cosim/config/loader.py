"""Load a scenario YAML, apply ``--set key=value`` overrides, validate, and explain mistakes.

Every problem becomes a :class:`ConfigError` whose lines read
``<file or --set>: <key>: <what is wrong and what is allowed>``, so the CLI can print them and
exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from cosim.config.schema import ScenarioConfig


class ConfigError(Exception):
    """A scenario could not be loaded; ``lines`` are one human-readable message each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


class _NotYaml(ConfigError):
    """The text does not parse as YAML (a ``--set`` value falls back to the plain string)."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value (``1`` -> int, ``[1,2]`` -> list)."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise ConfigError([f"--set {text}: expected KEY=VALUE with a dotted key, e.g. train.epochs=2"])
    if not raw.strip():
        return path, None
    try:
        value = parse_yaml(raw, f"--set {text}", tuple(path))
    except _NotYaml:
        value = raw  # not YAML: the text itself (too deep, too large, duplicate keys are errors)
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


MAX_YAML_BYTES = 1 << 20
"""Largest scenario file accepted (built-in scenarios are about 1 KiB)."""
MAX_YAML_DEPTH = 32
"""Deepest nesting of mappings and lists accepted."""
MAX_YAML_NODES = 100_000
"""Most values a document may expand to, aliases counted at every use (caps alias bombs)."""


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_yaml_graph(root: yaml.Node, where: str) -> None:
    """Refuse documents nested too deeply, with recursive aliases, or expanding to too much."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _yaml_children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise ConfigError([f"{where}: the document expands to more than {MAX_YAML_NODES} values "
                                   "(aliases are counted at every use); a scenario is far smaller"])
            continue
        if key in sizes:
            continue
        if depth > MAX_YAML_DEPTH:
            raise ConfigError([f"{where}: nested more than {MAX_YAML_DEPTH} levels deep; a scenario is at "
                               "most a few levels deep"])
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _yaml_children(node):
            if id(child) in on_path:
                raise ConfigError([f"{where}: an alias refers to a value that contains it (a recursive "
                                   "structure); use plain values"])
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))


def _key_path(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _places(marks: list[yaml.Mark]) -> str:
    """Where a key stands: its lines, or the columns of one line (a ``--set`` value)."""
    def both(items: list[str]) -> str:
        return ", ".join(items[:-1]) + " and " + items[-1]

    lines = [m.line + 1 for m in marks]
    if len(set(lines)) == len(lines):
        return f"lines {both([str(n) for n in lines])}"
    if len(set(lines)) == 1:
        return f"line {lines[0]}, columns {both([str(m.column + 1) for m in marks])}"
    return both([f"line {m.line + 1} column {m.column + 1}" for m in marks])


def _check_duplicate_keys(root: yaml.Node, where: str, at: tuple = ()) -> None:
    """Refuse a mapping that gives one key more than once.

    YAML requires unique keys, yet PyYAML keeps the last value silently: with ``env:`` twice
    the first section's values would vanish. Keys are compared as Python compares the loaded
    keys (``1`` and ``1.0`` are one key), so anything the loaded dict would merge is found.
    Merge keys (``<<: *anchor``) are left alone: overriding merged values is what they are for.
    One line per repeated key, naming its path (below ``at``, where the document sits) and
    every place it is given.
    """
    constructor = yaml.SafeLoader("")
    problems: list[tuple[tuple[int, int], str]] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, tuple]] = [(root, tuple(at))]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:  # an alias: checked where it was defined
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack += [(child, path + (i,)) for i, child in reversed(list(enumerate(node.value)))]
            continue
        if not isinstance(node, yaml.MappingNode):
            continue
        marks: dict[Any, list[yaml.Mark]] = {}
        names: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = constructor.construct_object(key_node)
                try:
                    marks.setdefault(key, []).append(key_node.start_mark)
                    names.setdefault(key, key)
                except TypeError:  # unhashable: the loader reports it
                    pass
            else:
                key = None
            stack.append((value_node, path + (str(key) if key is not None else "?",)))
        for key, places in marks.items():
            if len(places) > 1:
                times = "twice" if len(places) == 2 else f"{len(places)} times"
                problems.append(((places[0].line, places[0].column),
                                 f"{where}: {_key_path(path + (str(names[key]),))}: key given {times} "
                                 f"({_places(places)}); keys must be unique in YAML (the last one would "
                                 "silently replace the others): merge them into one"))
    if problems:
        raise ConfigError([text for _, text in sorted(problems)])


def parse_yaml(text: str, where: str, at: tuple = ()) -> Any:
    """One YAML document from ``text`` (safe tags only), or a ConfigError naming ``where``.

    Guards against what ``yaml.safe_load`` alone does not: deep nesting (RecursionError),
    alias bombs and recursive aliases (exponential or endless expansion downstream), and keys
    given twice in one mapping (silently merged, the last one winning; ``at`` is the key path
    of the document, named in that message). Text that is not YAML at all raises the subclass
    ``_NotYaml``.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _check_yaml_graph(node, where)
        _check_duplicate_keys(node, where, at)
        return yaml.safe_load(text)
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _NotYaml([f"{where}: not valid YAML{at}: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{where}: nested too deeply to read (at most {MAX_YAML_DEPTH} levels)"]) from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a timestamp like 2020-13-45
        raise _NotYaml([f"{where}: not valid YAML: {exc}"]) from None


def read_yaml(path: Path) -> dict:
    """The mapping stored in a YAML file, or a ConfigError naming the file and the problem."""
    try:
        if not path.is_file():
            what = "is a directory, not a file" if path.is_dir() else "file not found"
            raise ConfigError([f"{path}: {what}"])
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError([f"{path}: {size} bytes is too large for a scenario (at most "
                               f"{MAX_YAML_BYTES} bytes); is this the right file?"])
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror})"]) from None
    if b"\0" in raw:
        raise ConfigError([f"{path}: binary data (NUL bytes), not a YAML text file"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                           "save the file as UTF-8"]) from None
    data = parse_yaml(text, str(path))
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
    early = check_scalars(data)
    try:
        config = ScenarioConfig.model_validate(_without(data, early), context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        lines = format_validation_error(exc, path, origin, skip=set(early))
        raise ConfigError(_early_lines(early, path, origin) + lines) from None
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply"]) from None
    if early:
        raise ConfigError(_early_lines(early, path, origin))
    return config


def dump_config(config: ScenarioConfig, path: Path) -> None:
    """Write the fully resolved config (every default spelled out, absolute paths) as YAML."""
    from cosim.run.rundir import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


# ---------------------------------------------------------------------------- numbers and bools
def _scalar_kinds(annotation: Any) -> set[type]:
    """The plain types (bool, int, float, str) an annotation accepts."""
    if annotation in (bool, int, float, str):
        return {annotation}
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return {type(v) for v in typing.get_args(annotation)}
    if origin is typing.Annotated:
        return _scalar_kinds(typing.get_args(annotation)[0])
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        out: set[type] = set()
        for arg in typing.get_args(annotation):
            out |= _scalar_kinds(arg)
        return out
    return set()


def _item_annotations(annotation: Any, n: int) -> list[Any]:
    """Annotations of the n items of a list or tuple value under ``annotation``."""
    for candidate in [annotation, *typing.get_args(annotation)]:
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if origin in (list, tuple) and args:
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                return list(args[:n]) + [None] * max(0, n - len(args))
            return [args[0]] * n
    return [None] * n


def _check_value(value: Any, annotation: Any, loc: tuple, errors: dict[tuple, str]) -> None:
    classes = _model_classes(annotation)
    if classes and isinstance(value, dict):
        _check_section(value, classes[0], loc, errors)
        return
    kinds = _scalar_kinds(annotation)
    if isinstance(value, bool):
        if bool not in kinds and (int in kinds or float in kinds):
            what = "an integer" if float not in kinds else "a number"
            errors[loc] = f"must be {what}, not {str(value).lower()} (booleans are not numbers)"
    elif isinstance(value, float) and not math.isfinite(value):
        if float in kinds or int in kinds:
            errors[loc] = f"must be a finite number (got {value})"
    elif isinstance(value, (list, tuple)):
        for i, (item, item_ann) in enumerate(zip(value, _item_annotations(annotation, len(value)))):
            if item_ann is not None:
                _check_value(item, item_ann, loc + (i,), errors)


def _check_section(data: dict, section: type, loc: tuple, errors: dict[tuple, str]) -> None:
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        try:
            annotation = _field_annotation(section, key)
        except Exception:  # noqa: BLE001 - unresolvable hints: leave it to the validator
            annotation = None
        if annotation is not None:
            _check_value(value, annotation, loc + (key,), errors)


def check_scalars(data: dict) -> dict[tuple, str]:
    """{key path: problem} for booleans given as numbers and non-finite numbers, in every
    section (pydantic's lax mode takes ``true`` for 1, and some sections allow inf and nan)."""
    errors: dict[tuple, str] = {}
    _check_section(data, ScenarioConfig, (), errors)
    return errors


def _without(data: dict, errors: dict[tuple, str]) -> dict:
    """``data`` without the keys already found wrong (so they cause no follow-up errors)."""
    if not errors:
        return data
    import copy

    data = copy.deepcopy(data)
    for loc in errors:
        key = []
        for part in loc:
            if isinstance(part, int):
                break
            key.append(part)
        node = data
        for part in key[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(key[-1], None)
    return data


def _early_lines(errors: dict[tuple, str], path: Path, origin: dict[str, str]) -> list[str]:
    return [f"{_source(_dotted(loc), path, origin)}: {_dotted(loc)}: {text}" for loc, text in errors.items()]


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


def _source(key: str, path: Path, origin: dict[str, str]) -> str:
    source = str(path)
    for dotted, text in origin.items():
        # the override set this key, a key inside it, or created this (unknown) section
        if key == dotted or key.startswith((dotted + ".", dotted + "[")) or dotted.startswith(key + "."):
            source = f"--set {text}"
    return source


def _problems(cause: BaseException | None) -> list[tuple[str, str]] | None:
    """The (key, message) pairs of an error that found several problems in one section.

    The error is the validator's ``ValueError`` itself, or the one it was raised while
    handling (``learners.SACConfig``'s check and ``radio_models.create`` attach ``problems``;
    the channel's radio validator re-raises the latter as a plain ``ValueError``).
    """
    for _ in range(4):
        if cause is None:
            return None
        problems = getattr(cause, "problems", None)
        if problems:
            return list(problems)
        cause = cause.__cause__ or cause.__context__
    return None


def format_validation_error(exc: ValidationError, path: Path, origin: dict[str, str],
                            skip: set[tuple] | None = None) -> list[str]:
    """One line per problem: where it came from (file or --set), the key, what is allowed.

    Errors at a key in ``skip`` (already reported) are left out; a section whose own check
    found several problems (``learners.SACConfig``) gives one line for each.
    """
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if skip and any(loc[: len(s)] == s for s in skip):
            continue
        problems = _problems((error.get("ctx") or {}).get("error"))
        if error["type"] == "value_error" and problems:
            for name, text in problems:
                if skip and loc + (name,) in skip:
                    continue
                key = _dotted(loc + (name,))
                lines.append(f"{_source(key, path, origin)}: {key}: {text}")
            continue
        key = _dotted(loc) or "(top level)"
        lines.append(f"{_source(key, path, origin)}: {key}: {_describe(error)}")
    return lines
