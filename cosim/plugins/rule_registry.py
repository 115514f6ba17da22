"""Choosing a mixing rule by name: the scenario's ``comm.rule`` (and ``comm.rule_params``).

A rule is a subclass of :class:`learners.rules.MixingRule` (the contract: what it needs, and a
batched zeta per replica). ``comm.rule`` names it as

- a built-in: ``average``, ``fixed``, ``regulated``, ``reward_weighted`` (:mod:`learners.mixing`),
  registered here by import path, so the config schema checks these names without importing
  torch;
- a name registered in code with :func:`register_rule` before the config is loaded;
- an entry point of the group ``cosim.mixing_rules`` of an installed package::

      [project.entry-points."cosim.mixing_rules"]
      median = "my_pkg.rules:MedianRule"

- or directly as ``package.module:Class``.

The rule is created with the ``comm`` keys its class lists in ``comm_keys`` (the built-ins'
options, e.g. ``comm.zeta``) and ``comm.rule_params`` as keyword arguments. A rule from outside
``learners`` is a plug-in: a failure to load or create it, an exception in its ``zeta`` or an
answer that is not a zeta in [0, 1] per replica is a :class:`MixingRuleError` naming it (exit
status 2). A non-finite zeta the rule marks as skipped is not an error: that replica is not
mixed and counts in ``mix_nonfinite_skips``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from . import loading

__all__ = ["ENTRY_POINT_GROUP", "MixingRuleError", "LoadedRule", "register_rule", "available", "is_builtin",
           "check_name", "resolve", "create"]

ENTRY_POINT_GROUP = "cosim.mixing_rules"

_BUILTIN_PREFIX = "learners."


class MixingRuleError(loading.PluginError):
    """A mixing rule that cannot be found, loaded or created, or that misbehaved in a run."""


_NAMES = loading.Registry("mixing rule", ENTRY_POINT_GROUP, {
    "average": "learners.mixing:AverageRule",
    "fixed": "learners.mixing:FixedRule",
    "regulated": "learners.mixing:RegulatedRule",
    "reward_weighted": "learners.mixing:RewardWeightedRule",
}, MixingRuleError)
_REGISTRY = _NAMES.entries
_BUILTINS = frozenset(_REGISTRY)


def register_rule(name: str, rule: type | str, *, replace: bool = False) -> None:
    """Make ``comm.rule: name`` use ``rule`` (a class or a ``"module:Class"`` path)."""
    _NAMES.register(name, rule, replace=replace)


def is_builtin(name: str) -> bool:
    """Whether ``name`` is one of the four built-in rules (no import)."""
    return name in _BUILTINS and isinstance(_REGISTRY.get(name), str) and _REGISTRY[name].startswith(_BUILTIN_PREFIX)


def available() -> list[str]:
    """Registered names and entry-point names, sorted."""
    return _NAMES.available()


def check_name(name: str) -> None:
    """Raise :class:`MixingRuleError` unless ``name`` names a rule. A registered name is
    accepted as it is (no import); an entry point or a path is loaded and checked."""
    if not isinstance(name, str) or not name.strip():
        raise _NAMES.unknown(name)
    if name in _REGISTRY:
        return
    resolve(name)


def resolve(name: str) -> type:
    """The rule class named by ``name`` (see the module docstring)."""
    from learners.rules import MixingRule

    target = _NAMES.load(name)
    if not (inspect.isclass(target) and issubclass(target, MixingRule)):
        raise MixingRuleError(f"mixing rule {name!r} is {target!r}, not a subclass of learners.rules.MixingRule")
    if not getattr(target, "__module__", "").startswith(_BUILTIN_PREFIX):
        loading.remember(target, f"mixing rule {name!r}")
    unknown = set(target.needs) - _needs()
    if unknown:
        raise MixingRuleError(f"mixing rule {name!r} needs {sorted(unknown)}; a rule may need "
                              f"{', '.join(sorted(_needs()))}")
    return target


def _needs() -> frozenset[str]:
    from learners.rules import NEEDS

    return NEEDS


class LoadedRule:
    """A rule of a run with its name: what it needs, and :meth:`apply` (its zeta, checked)."""

    def __init__(self, rule: Any, label: str):
        self.rule = rule
        self.label = label
        self.plugin = not type(rule).__module__.startswith(_BUILTIN_PREFIX)

    @property
    def needs(self) -> frozenset[str]:
        return frozenset(self.rule.needs)

    def apply(self, theta, theta_ref, ctx):
        """:func:`learners.rules.apply_rule`; a plug-in's failure or a bad answer of any rule is
        a :class:`MixingRuleError` naming it."""
        from learners.rules import RuleOutputError, apply_rule

        try:
            return apply_rule(self.rule, theta, theta_ref, ctx)
        except RuleOutputError as exc:
            raise MixingRuleError(f"mixing rule {self.label!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a plug-in may raise anything
            if not self.plugin:
                raise
            raise MixingRuleError(f"mixing rule {self.label!r}: zeta() failed: {type(exc).__name__}: {exc}") from exc


def create(name: str, comm: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> LoadedRule:
    """The rule named ``name`` created with the ``comm`` keys it reads (its ``comm_keys``) and
    ``params`` (``comm.rule_params``); every bad parameter is reported at once."""
    cls = resolve(name)
    what = f"mixing rule {name!r}"
    params = dict(params or {})
    accepted = loading.parameters(cls.__init__)
    from_comm = {param: comm[key] for param, key in dict(cls.comm_keys).items() if key in comm}
    problems = [(p, f"{what} reads {p!r} from comm.{cls.comm_keys[p]}; set that key instead")
                for p in sorted(set(cls.comm_keys) & set(params))]
    try:
        loading.check_parameters(what, accepted, {**from_comm, **params})
    except loading.PluginError as exc:
        problems += exc.problems
    if problems:
        raise MixingRuleError("; ".join(text for _, text in problems), problems)
    try:
        rule = cls(**from_comm, **params)
    except Exception as exc:  # noqa: BLE001 - a plug-in's __init__ may raise anything
        raise MixingRuleError(f"{what}: cannot be created with {params or from_comm!r}: "
                              f"{type(exc).__name__}: {exc}") from exc
    for attr, low in (("samples", 1), ("entropy_samples", 1), ("reward_window", 1)):
        value = getattr(rule, attr, None)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise MixingRuleError(f"{what}: {attr} must be an integer >= {low}; got {value!r}")
    return LoadedRule(rule, name)
