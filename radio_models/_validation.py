"""Parameter checks shared by the built-in models (each error names model, parameter, rule)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real
from typing import Any

import numpy as np

from .errors import RadioParameterError


def _bounds_text(gt, ge, lt, le) -> str:
    parts = []
    if gt is not None:
        parts.append(f"> {gt:g}")
    if ge is not None:
        parts.append(f">= {ge:g}")
    if lt is not None:
        parts.append(f"< {lt:g}")
    if le is not None:
        parts.append(f"<= {le:g}")
    if len(parts) == 2 and (ge is not None or gt is not None) and (le is not None or lt is not None):
        lo = f"[{ge:g}" if ge is not None else f"({gt:g}"
        hi = f"{le:g}]" if le is not None else f"{lt:g})"
        return f"in {lo}, {hi}"
    return " and ".join(parts)


def number(
    model: str,
    name: str,
    value: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    allow_none: bool = False,
) -> float | None:
    """``value`` as a finite float within the bounds, else :class:`RadioParameterError`."""
    bounds = _bounds_text(gt, ge, lt, le)
    allowed = "a finite number" + (f" {bounds}" if bounds else "")
    if allow_none:
        allowed += " (or null)"
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.integer, np.floating)):
        raise RadioParameterError(model, name, allowed, value)
    v = float(value)
    if not math.isfinite(v):
        raise RadioParameterError(model, name, allowed, value)
    if (gt is not None and not v > gt) or (ge is not None and not v >= ge):
        raise RadioParameterError(model, name, allowed, value)
    if (lt is not None and not v < lt) or (le is not None and not v <= le):
        raise RadioParameterError(model, name, allowed, value)
    return v


def choice(model: str, name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``, else :class:`RadioParameterError` listing them."""
    options = list(choices)
    if isinstance(value, str) and value in options:
        return value
    if not isinstance(value, str) and any(value == c and type(value) is type(c) for c in options):
        return value
    allowed = "one of " + ", ".join(repr(c) for c in options)
    raise RadioParameterError(model, name, allowed, value)


def boolean(model: str, name: str, value: Any) -> bool:
    """``value`` if it is a bool, else :class:`RadioParameterError`."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise RadioParameterError(model, name, "true or false", value)
