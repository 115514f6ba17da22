"""Exceptions raised by the radio-model package.

All of them derive from :class:`RadioModelError`, itself a :class:`ValueError`, so a config
layer (pydantic validators included) can catch one class and report a one-line message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "RadioModelError",
    "UnknownRadioModelError",
    "RadioModelLoadError",
    "RadioParameterError",
    "RadioModelRuntimeError",
]


class RadioModelError(ValueError):
    """Base class of every error about choosing, loading or configuring a radio model."""


class UnknownRadioModelError(RadioModelError):
    """A model name that is neither registered, nor an entry point, nor ``package.module:Class``."""

    def __init__(self, name: str, available: Sequence[str]):
        self.name = name
        self.available = list(available)
        super().__init__(
            f"unknown radio model {name!r}; available models: {', '.join(self.available)} "
            "(or give your own class as 'package.module:Class')"
        )


class RadioModelLoadError(RadioModelError):
    """A dotted path or an entry point that cannot be imported, or does not name a usable class."""


class RadioParameterError(RadioModelError):
    """A bad model parameter: names the model, the parameter, what is allowed and what was given."""

    def __init__(self, model: str, parameter: str, allowed: str, value: Any = None, *, given: bool = True):
        self.model = model
        self.parameter = parameter
        self.allowed = allowed
        self.value = value
        got = f"; got {value!r}" if given else ""
        super().__init__(f"radio model {model!r}: parameter {parameter!r} must be {allowed}{got}")


class RadioModelRuntimeError(RadioModelError):
    """A radio model failed while evaluating links, or returned values that are not a valid
    link quality (NaN, probabilities outside [0, 1], wrong shapes, non-positive data rates)."""
