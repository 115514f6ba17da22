"""Choosing a radio medium by name: the scenario's ``channel.medium`` (and ``channel.medium_params``).

A medium is a subclass of :class:`cosim.channel.medium.Medium` (the contract: place the
stations, send a frame and be told its outcome, abort, per-epoch metrics). ``channel.medium``
names it as

- a built-in: ``independent`` (every link its own pipe), ``csma`` (one shared 802.11p EDCA
  medium) or ``sidelink`` (C-V2X sidelink: LTE-V2X mode 4 / NR-V2X mode 2), registered here by
  import path;
- a name registered in code with :func:`register_medium` before the config is loaded;
- an entry point of the group ``cosim.radio_media`` of an installed package::

      [project.entry-points."cosim.radio_media"]
      tdma = "my_pkg.media:TdmaMedium"

- or directly as ``package.module:Class``.

The medium is made with ``Medium.from_setup(setup, **channel.medium_params)``; its parameters
are the keyword parameters of ``from_setup`` (or of ``__init__`` after the setup), checked when
the scenario is loaded (names, required ones, and the medium's own ``check_params``), with their
defaults filled in so the resolved config shows them. A medium from outside this package is a
plug-in: a failure to load or create it, an exception in one of its methods, or an answer the
channel cannot use (``send`` returning no frame with a ``done`` event, ``metrics`` returning
anything but numbers by name) is a :class:`MediumError` naming it (exit status 2).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Mapping
from typing import Any

from . import loading

__all__ = ["ENTRY_POINT_GROUP", "MediumError", "register_medium", "available", "resolve", "parameters",
           "resolve_params", "packet_framing", "carries_broadcast", "broadcast_media", "create"]

ENTRY_POINT_GROUP = "cosim.radio_media"

_BUILTIN_PREFIX = "cosim.channel."


class MediumError(loading.PluginError):
    """A medium that cannot be found, loaded or created, or that misbehaved in a run."""


_NAMES = loading.Registry("medium", ENTRY_POINT_GROUP, {
    "independent": "cosim.channel.independent:IndependentMedium",
    "csma": "cosim.channel.csma:CsmaMedium",
    "sidelink": "cosim.channel.sidelink:SidelinkMedium",
}, MediumError)
_REGISTRY = _NAMES.entries


def register_medium(name: str, medium: type | str, *, replace: bool = False) -> None:
    """Make ``channel.medium: name`` use ``medium`` (a class or a ``"module:Class"`` path)."""
    _NAMES.register(name, medium, replace=replace)


def available() -> list[str]:
    """Registered names and entry-point names, sorted."""
    return _NAMES.available()


CONTRACT = "cosim.channel.medium.Medium"


def _is_medium(obj: Any) -> bool:
    """Whether ``obj`` is a subclass of the contract, told by the names of the classes it derives
    from, so that this module imports nothing of the channel (which imports it)."""
    return inspect.isclass(obj) and any(f"{c.__module__}.{c.__qualname__}" == CONTRACT for c in obj.__mro__)


def resolve(name: str) -> type:
    """The medium class named by ``name`` (see the module docstring)."""
    target = _NAMES.load(name)
    if not _is_medium(target):
        raise MediumError(f"medium {name!r} is {target!r}, not a subclass of cosim.channel.medium.Medium")
    if not _is_builtin(target):
        loading.remember(target, f"medium {name!r}")
    return target


def _is_builtin(cls: type) -> bool:
    return (cls.__module__ or "").startswith(_BUILTIN_PREFIX)


def parameters(cls: type) -> loading.Parameters:
    """The medium's parameters: those of ``from_setup`` after the setup, or, when the class
    keeps the contract's ``from_setup``, those of ``__init__`` after the setup."""
    owner = next(c for c in cls.__mro__ if "from_setup" in vars(c))
    if f"{owner.__module__}.{owner.__qualname__}" == CONTRACT:
        return loading.parameters(cls.__init__, skip=2)
    return loading.parameters(cls.from_setup, skip=1)


def resolve_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` checked (unknown, missing and bad values, all at once: a :class:`MediumError`
    whose ``problems`` name each parameter) and completed with the medium's defaults."""
    cls = resolve(name)
    what = f"medium {name!r}"
    params = dict(params or {})
    accepted = parameters(cls)
    problems: list[tuple[str, str]] = []
    try:
        loading.check_parameters(what, accepted, params)
    except loading.PluginError as exc:
        problems += exc.problems
    known = {k: v for k, v in params.items() if k in accepted.defaults or k in accepted.required
             or accepted.open_ended}
    try:
        problems += [(key, f"{what}: {key} {text}") for key, text in cls.check_params(known)]
    except Exception as exc:  # noqa: BLE001 - a plug-in's check may raise anything
        raise MediumError(f"{what}: check_params() failed: {type(exc).__name__}: {exc}") from exc
    if problems:
        raise MediumError("; ".join(text for _, text in problems), problems)
    return {**accepted.defaults, **params}


def packet_framing(name: str, framing: Any, params: Mapping[str, Any] | None = None) -> Any:
    """The framing the channel uses for packets it hands to the medium ``name``
    (``Medium.packet_framing`` of its class, given the channel's 802.11 framing and the
    medium's resolved parameters)."""
    cls = resolve(name)
    params = resolve_params(name, params)
    try:
        out = cls.packet_framing(framing, params)
    except Exception as exc:  # noqa: BLE001 - a plug-in may raise anything
        if _is_builtin(cls):
            raise
        raise MediumError(f"medium {name!r}: packet_framing() failed: {type(exc).__name__}: {exc}") from exc
    from cosim.channel.framing import Framing  # here: the channel package imports this module

    if not isinstance(out, Framing):
        raise MediumError(f"medium {name!r}: packet_framing() returned {type(out).__name__}, not a Framing")
    return out


def carries_broadcast(name: str) -> bool:
    """Whether the medium ``name`` carries broadcast frames (background CAMs need one)."""
    return bool(resolve(name).broadcast)


def broadcast_media() -> list[str]:
    """The registered media that carry broadcasts (for messages)."""
    names = []
    for name in sorted(_REGISTRY):
        try:
            if carries_broadcast(name):
                names.append(name)
        except MediumError:
            continue
    return names


def create(name: str, setup: Any, params: Mapping[str, Any] | None = None) -> Any:
    """The medium ``name`` of one channel, made with ``setup`` and ``params``; a plug-in's
    methods are guarded (see the module docstring)."""
    cls = resolve(name)
    params = resolve_params(name, params)
    builtin = _is_builtin(cls)
    try:
        medium = cls.from_setup(setup, **params)
    except Exception as exc:  # noqa: BLE001 - a plug-in may raise anything
        if builtin:
            raise
        raise MediumError(f"medium {name!r}: cannot be created with {params!r}: {type(exc).__name__}: {exc}") from exc
    if not _is_medium(type(medium)):
        raise MediumError(f"medium {name!r}: from_setup() returned {type(medium).__name__}, not a Medium")
    if not builtin:
        _guard(medium, f"medium {name!r}")
    return medium


def _guard(medium: Any, label: str) -> None:
    """Replace the instance's methods the channel calls by ones whose failures and answers are
    checked."""
    import simpy

    def wrap(method_name: str, check=None) -> None:
        inner = getattr(medium, method_name)

        @functools.wraps(inner)
        def guarded(*args, **kwargs):
            try:
                out = inner(*args, **kwargs)
            except MediumError:
                raise
            except Exception as exc:  # noqa: BLE001 - a plug-in may raise anything
                raise MediumError(f"{label}: {method_name}() failed: {type(exc).__name__}: {exc}") from exc
            if check is not None:
                check(out)
            return out

        setattr(medium, method_name, guarded)

    def frame(out: Any) -> None:
        if not isinstance(getattr(out, "done", None), simpy.Event):
            raise MediumError(f"{label}: send() returned {type(out).__name__}, not a Frame with a done event")

    def numbers(out: Any) -> None:
        if not isinstance(out, Mapping):
            raise MediumError(f"{label}: metrics() returned {type(out).__name__}, not a dict of numbers")
        for key, value in out.items():
            if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or (isinstance(value, float) and math.isinf(value)):
                raise MediumError(f"{label}: metrics() returned {key!r}: {value!r}; columns are names "
                                  "with finite numbers (or NaN)")

    try:
        wrap("update")
        wrap("send", frame)
        wrap("abort")
        wrap("reset_stats")
        wrap("metrics", numbers)
        wrap("has_station")
    except (AttributeError, TypeError):  # __slots__ or a frozen class: unguarded (blame() still names it)
        pass
