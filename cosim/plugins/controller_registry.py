"""Choosing what drives the CAVs by name: the scenario's ``learner:`` key.

A controller is made by a *factory*, any callable ``factory(config) -> Controller`` taking the
resolved :class:`~cosim.config.ScenarioConfig`. The built-ins (``sac``, ``idm``, ``random``)
are registered here by import path, so this module stays light enough for the config schema
to check names against it without importing torch. A researcher adds a controller in one of
two ways:

- ``register_controller("mine", factory)`` in code that runs before the config is loaded;
- naming it directly in the scenario as ``learner: my_pkg.my_module:make_controller``.

Only controllers that are :class:`~cosim.sim.sac_controller.SACController` take part in CommMix
rounds; any other controller drives and learns (or not) on its own.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Union

Factory = Callable[[Any], Any]
"""``factory(config: cosim.config.ScenarioConfig) -> cosim.sim.contracts.Controller``. (This
module imports neither: the config schema imports it, and the contracts import the schema.)"""

CONTRACT = "cosim.sim.contracts.Controller"

_REGISTRY: dict[str, Union[str, Factory]] = {
    "sac": "cosim.sim.sac_controller:SACController",
    "idm": "cosim.sim.controllers:IDMController.from_config",
    "random": "cosim.sim.controllers:RandomController.from_config",
}


class ControllerError(Exception):
    """A learner name that cannot be resolved to a controller factory (message says why)."""


def register_controller(name: str, factory: Factory | str, *, replace: bool = False) -> None:
    """Make ``learner: name`` use ``factory`` (a callable or a ``"module:attr"`` path)."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a learner name must be a non-empty string without ':'; got {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"learner {name!r} is already registered (pass replace=True to replace it)")
    _REGISTRY[name] = factory


def available() -> list[str]:
    """The registered learner names, sorted."""
    return sorted(_REGISTRY)


def is_known(name: str) -> bool:
    """A registered name or a ``module:attr`` path (resolved only when a run starts)."""
    return name in _REGISTRY or (":" in name and all(name.split(":", 1)))


def resolve(name: str) -> Factory:
    """The factory for ``name``; :class:`ControllerError` if there is none."""
    target = _REGISTRY.get(name, name if ":" in name else None)
    if target is None:
        raise ControllerError(f"unknown learner {name!r}; allowed: {', '.join(available())} "
                              "or a factory named as 'package.module:function'")
    if callable(target):
        return target
    module_name, _, attr_path = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for attr in attr_path.split("."):
            obj = getattr(obj, attr)
    except Exception as exc:  # noqa: BLE001 - a user's module may fail in any way
        raise ControllerError(f"learner {name!r}: cannot load {target!r}: {type(exc).__name__}: {exc}") from None
    if not callable(obj):
        raise ControllerError(f"learner {name!r}: {target!r} is not callable")
    return obj


def make_controller(config: Any) -> Any:
    """The controller named by ``config.learner`` (a resolved ``ScenarioConfig``), made from the
    config; :class:`ControllerError` unless it is a ``cosim.sim.contracts.Controller`` (told by
    the classes it derives from, without importing the contracts)."""
    factory = resolve(config.learner)
    controller = factory(config)
    if not any(f"{c.__module__}.{c.__qualname__}" == CONTRACT for c in type(controller).__mro__):
        raise ControllerError(f"learner {config.learner!r}: the factory returned {type(controller).__name__}, "
                              f"not a {CONTRACT}")
    return controller
