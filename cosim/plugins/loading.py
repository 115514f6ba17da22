"""What the registries share: loading ``package.module:attr`` paths and entry points, reading a
plug-in's parameters from its signature, and telling which plug-in's code an exception came from.

A plug-in is code from outside this repository named in a scenario (a mixing rule, a medium). It
is never trusted: loading it, creating it and calling it may fail in any way, and every such
failure is reported as a mistake in the input naming the plug-in (exit status 2), not as an
internal error. Failures inside SimPy callbacks a plug-in scheduled cannot be caught where they
happen; :func:`blame` finds the plug-in in the traceback instead.

Imports nothing of the simulation, so the config schema can use it.
"""

from __future__ import annotations

import importlib
import inspect
import types
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

__all__ = ["PluginError", "Registry", "Parameters", "load_path", "entry_points", "load_entry_point",
           "parameters", "check_parameters", "remember", "blame"]


class PluginError(ValueError):
    """A plug-in that cannot be found, loaded or created, or that misbehaved while running.

    ``problems`` (optional) pairs parameter names with messages: the config loader reports
    each on a line of its own under the key that holds the parameters."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


def load_path(path: str, what: str) -> Any:
    """The object named by ``"package.module:attr"`` (``attr`` may be dotted)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise PluginError(f"{what} {path!r} must look like 'package.module:Class'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - a module may raise anything while importing
        raise PluginError(f"{what} {path!r}: cannot import module {module_name!r}: "
                          f"{type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{what} {path!r}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The entry points of ``group`` by name (the first of a name wins); looked up on every call,
    so a package installed after import is found."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def load_entry_point(ep: metadata.EntryPoint, what: str) -> Any:
    try:
        return ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure becomes one clear message
        raise PluginError(f"{what} {ep.name!r} (entry point {ep.value!r}): cannot load: "
                          f"{type(exc).__name__}: {exc}") from exc


class Registry:
    """The names a scenario may give one kind of plug-in (``kind``, e.g. "medium"): registered
    names (the built-ins first, each a class or a ``"module:Class"`` path imported on first
    use), entry points of ``group``, and any ``"package.module:Class"``. :meth:`load` returns
    what a name stands for, or raises ``error`` (a :class:`PluginError`) saying why not; what
    the object must be is the caller's check."""

    def __init__(self, kind: str, group: str, builtins: dict[str, Any], error: type[PluginError]) -> None:
        self.kind, self.group, self.error = kind, group, error
        self.entries: dict[str, Any] = dict(builtins)

    def register(self, name: str, target: Any, *, replace: bool = False) -> None:
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"a {self.kind} name must be a non-empty string without ':'; got {name!r}")
        if name in self.entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered (pass replace=True to replace it)")
        self.entries[name] = target

    def available(self) -> list[str]:
        """Registered names and entry-point names, sorted."""
        return sorted(set(self.entries) | set(entry_points(self.group)))

    def unknown(self, name: Any) -> PluginError:
        return self.error(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.available())} "
                          "(or your own class as 'package.module:Class')")

    def load(self, name: str) -> Any:
        if not isinstance(name, str) or not name.strip():
            raise self.unknown(name)
        target = self.entries.get(name)
        if target is None:
            if ":" in name:
                target = name
            else:
                eps = entry_points(self.group)
                if name not in eps:
                    raise self.unknown(name)
                try:
                    target = load_entry_point(eps[name], self.kind)
                except PluginError as exc:
                    raise self.error(str(exc)) from exc
        if isinstance(target, str):
            try:
                target = load_path(target, self.kind)
            except PluginError as exc:
                raise self.error(str(exc) if name == target else f"{self.kind} {name!r}: {exc}") from None
        return target


@dataclass(frozen=True)
class Parameters:
    """The keyword parameters of a plug-in's constructor: names with their defaults (a missing
    default: required) and whether it takes any other keyword (``**kwargs``)."""

    defaults: dict[str, Any]
    required: tuple[str, ...]
    open_ended: bool


def parameters(func: Callable, skip: int = 1) -> Parameters:
    """The keyword parameters of ``func`` after its first ``skip`` positional ones (``self``,
    or ``cls`` and the setup of a medium's ``from_setup``)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return Parameters({}, (), True)
    defaults: dict[str, Any] = {}
    required: list[str] = []
    open_ended = False
    for i, p in enumerate(sig.parameters.values()):
        if i < skip and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        if p.kind is p.VAR_KEYWORD:
            open_ended = True
        elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            if p.default is p.empty:
                required.append(p.name)
            else:
                defaults[p.name] = p.default
    return Parameters(defaults, tuple(required), open_ended)


def check_parameters(what: str, accepted: Parameters, given: dict[str, Any]) -> None:
    """Raise a :class:`PluginError` listing every unknown or missing parameter at once."""
    problems: list[tuple[str, str]] = []
    names = [*accepted.required, *accepted.defaults]
    if not accepted.open_ended:
        for key in given:
            if key not in names:
                problems.append((str(key), f"{what} has no parameter {key!r}; it takes: "
                                           f"{', '.join(names) or '(none)'}"))
    for key in accepted.required:
        if key not in given:
            problems.append((key, f"{what} needs parameter {key!r} (it has no default)"))
    if problems:
        raise PluginError("; ".join(text for _, text in problems), problems)


_PLUGIN_MODULES: dict[str, str] = {}


def remember(obj: Any, label: str) -> None:
    """Note that ``obj``'s module is the plug-in ``label`` (for :func:`blame`)."""
    module = getattr(obj, "__module__", None)
    if module:
        _PLUGIN_MODULES.setdefault(module, label)


def blame(exc: BaseException) -> tuple[str, str] | None:
    """``(label, "module line N")`` of the innermost frame of ``exc``'s traceback that runs a
    plug-in's code, or None when no plug-in took part. The exceptions ``exc`` was raised from
    count too: SimPy re-raises a failed process's exception as a copy whose cause is the
    original, so the plug-in's frames are only in the cause's traceback."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = None
        tb: types.TracebackType | None = current.__traceback__
        while tb is not None:
            module = tb.tb_frame.f_globals.get("__name__")
            if module in _PLUGIN_MODULES:
                found = (_PLUGIN_MODULES[module], f"{module} line {tb.tb_lineno}")
            tb = tb.tb_next
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None
