"""Choosing a radio model by name: built-ins, entry points, or ``package.module:Class``.

- Built-in models are registered in code (:func:`register`).
- Third-party packages register models in the entry-point group ``cosim.radio_models``, e.g. in
  their ``pyproject.toml``::

      [project.entry-points."cosim.radio_models"]
      my_model = "my_pkg.my_module:MyModel"

  Entry points are looked up on every call (cheap next to a simulation), so a package installed
  after import is found. A built-in name wins over an entry point of the same name (with a
  warning).
- Any importable class can be named directly as ``"package.module:Class"``.

The class is called with the parameters as keyword arguments. Unknown parameter names are
rejected before the call, with the list of accepted ones; every bad parameter is reported at
once (:class:`RadioParameterErrors`), not only the first one the model's ``__init__`` checks.
The instance must provide ``evaluate(links, rng, packet_bits)`` and ``max_range_m``
(subclassing :class:`radio_models.base.RadioModel` gives both).

A model from outside this package is never trusted: any exception while importing, creating
or evaluating it becomes a :class:`~radio_models.errors.RadioModelError` naming the model, and
its ``evaluate`` is checked on every call (:func:`check_quality`), so NaN, probabilities
outside [0, 1] or wrong shapes never reach the caller.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import numpy as np

from .base import LinkQuality, RadioModel, as_packet_bits
from .errors import (RadioModelError, RadioModelLoadError, RadioModelRuntimeError, RadioParameterError,
                     UnknownRadioModelError)

__all__ = [
    "ENTRY_POINT_GROUP",
    "register",
    "available",
    "resolve",
    "create",
    "accepted_parameters",
    "check_quality",
    "RadioParameterErrors",
]

ENTRY_POINT_GROUP = "cosim.radio_models"

_BUILTINS: dict[str, type] = {}


def register(name: str, cls: type | None = None, *, replace: bool = False):
    """Register ``cls`` under ``name`` (also usable as a class decorator: ``@register("x")``)."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a radio model name must be a non-empty string without ':'; got {name!r}")

    def _add(klass: type) -> type:
        if not inspect.isclass(klass):
            raise TypeError(f"register({name!r}, ...) needs a class; got {klass!r}")
        if name in _BUILTINS and _BUILTINS[name] is not klass and not replace:
            raise ValueError(f"radio model {name!r} is already registered ({_BUILTINS[name].__qualname__})")
        _BUILTINS[name] = klass
        return klass

    return _add if cls is None else _add(cls)


def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def available() -> list[str]:
    """Names that :func:`create` accepts (built-ins and entry points), sorted."""
    return sorted(set(_BUILTINS) | set(_entry_points()))


def _import_path(path: str) -> type:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise RadioModelLoadError(f"radio model path {path!r} must look like 'package.module:Class'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - a module may raise anything while importing
        raise RadioModelLoadError(
            f"radio model {path!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RadioModelLoadError(f"radio model {path!r}: module {module_name!r} has no attribute {attr!r}") from None
    if not inspect.isclass(obj):
        raise RadioModelLoadError(f"radio model {path!r} is not a class: {obj!r}")
    return obj


def resolve(name_or_path: str | type) -> type:
    """The class of a registered name, an entry-point name, or ``package.module:Class``."""
    if inspect.isclass(name_or_path):
        return name_or_path
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise UnknownRadioModelError(repr(name_or_path), available())
    name = name_or_path.strip()
    if name in _BUILTINS:
        eps = _entry_points()
        if name in eps:
            warnings.warn(
                f"entry point {eps[name].value!r} of group {ENTRY_POINT_GROUP!r} is shadowed by the "
                f"built-in radio model {name!r}",
                stacklevel=3,
            )
        return _BUILTINS[name]
    if ":" in name:
        return _import_path(name)
    eps = _entry_points()
    if name in eps:
        try:
            obj = eps[name].load()
        except Exception as exc:  # noqa: BLE001 - any import failure becomes one clear message
            raise RadioModelLoadError(
                f"radio model {name!r} (entry point {eps[name].value!r}): cannot load: {exc}"
            ) from exc
        if not inspect.isclass(obj):
            raise RadioModelLoadError(f"radio model {name!r} (entry point {eps[name].value!r}) is not a class")
        return obj
    raise UnknownRadioModelError(name, available())


def accepted_parameters(cls: type) -> tuple[list[str], list[str], bool]:
    """(accepted keyword names, required names, takes arbitrary keywords) of ``cls``'s constructor.

    ``**kwargs`` forwarded to a base class (the built-ins' pattern) is followed up the MRO.
    """
    names: list[str] = []
    required: list[str] = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        try:
            sig = inspect.signature(klass.__init__)
        except (TypeError, ValueError):
            return names, required, True
        var_kw = False
        for i, p in enumerate(sig.parameters.values()):
            if i == 0:  # self
                continue
            if p.kind is p.VAR_KEYWORD:
                var_kw = True
            elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                if p.name not in names:
                    names.append(p.name)
                    if p.default is p.empty:
                        required.append(p.name)
        if not var_kw:
            return names, required, False
    return names, required, True


def _model_label(name_or_path: str | type, cls: type) -> str:
    if isinstance(name_or_path, str):
        return name_or_path
    return getattr(cls, "name", "") or cls.__qualname__


def create(name_or_path: str | type, params: Mapping[str, Any] | None = None) -> RadioModel:
    """Instantiate a radio model by registered name, entry-point name or ``package.module:Class``.

    Raises :class:`~radio_models.errors.UnknownRadioModelError` (lists the available names),
    :class:`~radio_models.errors.RadioModelLoadError` (the model cannot be imported or created,
    or a plug-in's ``evaluate`` or ``max_range_m`` is missing, raises or is not a number >= 0) or
    :class:`RadioParameterErrors` (every bad parameter at once: unknown names, missing ones,
    bad values, each naming the parameter and what is allowed); all are ``ValueError``
    subclasses, so a config layer reports them as mistakes in the input.
    """
    cls = resolve(name_or_path)
    label = _model_label(name_or_path, cls)
    params = dict(params or {})
    problems: list[RadioParameterError] = []
    for key in list(params):
        if not isinstance(key, str):
            problems.append(RadioParameterError(label, str(key), "a string parameter name", key))
            del params[key]
    names, required, open_ended = accepted_parameters(cls)
    if not open_ended:
        accepted = "one of the accepted parameters: " + (", ".join(names) or "(none)")
        for key in list(params):
            if key not in names:
                problems.append(RadioParameterError(label, key, accepted, given=False))
                del params[key]
    missing = [key for key in required if key not in params]
    problems += [RadioParameterError(label, key, "given (it has no default)", given=False) for key in missing]
    model = None if missing else _instantiate(cls, label, params, required, problems)
    if problems or model is None:
        raise RadioParameterErrors(label, problems)
    evaluate = _read(model, "evaluate", label)
    max_range_m = _read(model, "max_range_m", label)
    if not callable(evaluate) or max_range_m is _MISSING:
        raise RadioModelLoadError(
            f"radio model {label!r} ({cls.__module__}.{cls.__qualname__}) must provide evaluate(links, rng, "
            "packet_bits) and max_range_m; subclass radio_models.RadioModel"
        )
    try:
        max_range = float(max_range_m)
    except Exception as exc:  # noqa: BLE001
        raise RadioModelLoadError(f"radio model {label!r}: max_range_m is not a number: "
                                  f"{type(exc).__name__}: {exc}") from exc
    if not max_range >= 0:
        raise RadioModelLoadError(f"radio model {label!r}: max_range_m must be >= 0; got {max_range!r}")
    if not (cls.__module__ or "").startswith(__package__ + "."):
        _guard_evaluate(model, label)
    return model


_MISSING = object()


def _read(model: Any, attribute: str, label: str) -> Any:
    """``model.attribute`` (``_MISSING`` when absent), or a :class:`RadioModelLoadError` naming
    the model when reading it raises: a plug-in's property may raise anything, and that is a
    plug-in that fails like any other, not an internal error."""
    try:
        return getattr(model, attribute)
    except AttributeError:
        return _MISSING
    except Exception as exc:  # noqa: BLE001 - a plug-in's property may raise anything
        raise RadioModelLoadError(f"radio model {label!r}: reading {attribute} failed: "
                                  f"{type(exc).__name__}: {exc}") from exc


class RadioParameterErrors(RadioParameterError):
    """Every bad parameter of one model at once (a :class:`RadioParameterError` whose
    attributes are those of the first problem).

    ``errors`` holds one :class:`RadioParameterError` per problem; ``problems`` pairs each
    parameter with its message, which the config loader turns into one line per parameter.
    The message itself is one line (problems joined by ``; also ``).
    """

    def __init__(self, model: str, errors: list[RadioParameterError]):
        first = errors[0]
        ValueError.__init__(self, "; also ".join(
            [str(first)] + [str(e).removeprefix(f"radio model {model!r}: ") for e in errors[1:]]))
        self.model, self.parameter, self.allowed, self.value = model, first.parameter, first.allowed, first.value
        self.errors = list(errors)
        self.problems = [(e.parameter, str(e)) for e in errors]


def _instantiate(cls: type, label: str, params: dict[str, Any], required: list[str],
                 problems: list[RadioParameterError]) -> Any:
    """``cls(**params)``, or None with every bad parameter appended to ``problems``.

    A model checks its parameters in ``__init__`` and stops at the first bad one. To report
    them all, a parameter named by a :class:`RadioParameterError` is set aside (it falls back to
    its default) and the model is created again, until it is created or an error names no
    parameter that can be set aside (one it was not given, or one without a default). Any other
    failure becomes a :class:`RadioModelLoadError` naming the model.
    """
    params = dict(params)
    while True:
        try:
            return cls(**params)
        except RadioParameterError as exc:
            problems.append(exc)
            if exc.parameter not in params or exc.parameter in required:
                return None
            del params[exc.parameter]
        except RadioModelError as exc:
            if problems:  # a follow-up of a parameter set aside: the first problems say enough
                return None
            raise
        except (TypeError, ValueError) as exc:
            if problems:
                return None
            raise RadioModelLoadError(f"radio model {label!r}: cannot be created with {params!r}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - a plug-in's __init__ may raise anything
            if problems:
                return None
            raise RadioModelLoadError(f"radio model {label!r}: failed while being created with {params!r}: "
                                      f"{type(exc).__name__}: {exc}") from exc


def check_quality(label: str, quality: Any, n_links: int, packet_bits: Any) -> LinkQuality:
    """``quality`` if it is a valid result of ``evaluate`` for ``n_links`` links, else a
    :class:`RadioModelRuntimeError` naming the model and the problem."""
    def bad(problem: str) -> RadioModelRuntimeError:
        return RadioModelRuntimeError(f"radio model {label!r}: evaluate() {problem}")

    try:
        in_range = np.asarray(quality.in_range)
        success = np.asarray(quality.success_probability, dtype=float)
        rate = np.asarray(quality.data_rate_bps, dtype=float)
    except AttributeError:
        raise bad(f"returned {type(quality).__name__}, not a LinkQuality "
                  "(in_range, success_probability, data_rate_bps)") from None
    except (TypeError, ValueError) as exc:
        raise bad(f"returned values that are not numbers ({exc})") from None
    bits, scalar = as_packet_bits(packet_bits)
    want = (n_links,) if scalar else (n_links, bits.size)
    if in_range.shape != (n_links,) or in_range.dtype.kind not in "bui":
        raise bad(f"returned in_range of shape {in_range.shape} and dtype {in_range.dtype}; expected "
                  f"({n_links},) booleans")
    if success.shape not in (want, (n_links,)):  # one column for every size is accepted
        raise bad(f"returned success_probability of shape {success.shape}; expected {want}")
    if rate.shape not in ((n_links,), ()):
        raise bad(f"returned data_rate_bps of shape {rate.shape}; expected ({n_links},)")
    if not np.all(np.isfinite(success)):
        raise bad(f"returned {int(np.sum(~np.isfinite(success)))} non-finite success probabilities (NaN or inf)")
    if np.any(success < 0.0) or np.any(success > 1.0):
        raise bad(f"returned success probabilities outside [0, 1] (from {success.min():g} to {success.max():g})")
    keep = in_range.astype(bool)
    rate_b = np.broadcast_to(rate, (n_links,))
    if np.any(~np.isfinite(rate_b[keep])) or np.any(rate_b[keep] <= 0):
        raise bad("returned a non-positive or non-finite data rate for a link in range")
    return LinkQuality(in_range=keep, success_probability=success, data_rate_bps=rate_b)


def _guard_evaluate(model: Any, label: str) -> None:
    """Replace the instance's ``evaluate`` by one whose failures and outputs are checked."""
    inner = model.evaluate

    @functools.wraps(inner)
    def evaluate(links, rng, packet_bits=8 * 4480):
        try:
            quality = inner(links, rng, packet_bits)
        except RadioModelError as exc:
            if label in str(exc):
                raise
            raise RadioModelRuntimeError(f"radio model {label!r}: evaluate() failed: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - a plug-in may raise anything
            raise RadioModelRuntimeError(
                f"radio model {label!r}: evaluate() failed on {len(links)} links: {type(exc).__name__}: {exc}"
            ) from exc
        return check_quality(label, quality, len(links), packet_bits)

    try:
        model.evaluate = evaluate
    except (AttributeError, TypeError):  # __slots__ or a frozen class: checked where it is used
        pass
