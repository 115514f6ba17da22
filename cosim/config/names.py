"""Names that become directory names: a scenario's ``name`` (the default run directory
``runs/<name>``) and a sweep's ``name``.

Such a name must be one plain path component, so that it cannot point anywhere else: a name
like ``../escape`` or ``/tmp/x`` would put the run outside ``runs/``. Rather than rewrite a
name silently (two names could then meet in one directory), a name that is not plain is refused
and the message says what is allowed.
"""

from __future__ import annotations

MAX_NAME_CHARS = 100
"""Longest name accepted (a directory name may hold at most 255 bytes on common filesystems)."""
MAX_NAME_BYTES = 255
"""Longest name accepted in UTF-8 bytes (the common filesystem limit for one path component)."""

ALLOWED = (f"a plain directory name: at most {MAX_NAME_CHARS} printable characters, without '/', '\\', "
           "'..' or control characters, not starting with '.'")
"""What a name may be, for messages."""


def name_problem(name: str) -> str | None:
    """What makes ``name`` unusable as one directory name, or None when it is a plain name.

    Refused: empty; containing ``/`` or ``\\`` (a path, absolute ones included), ``..``,
    control or other non-printable characters (newlines, NUL, bidi overrides); starting with
    ``.`` (hidden, or ``.`` itself); longer than :data:`MAX_NAME_CHARS` characters or
    :data:`MAX_NAME_BYTES` bytes in UTF-8.
    """
    if not isinstance(name, str) or not name:
        return "must not be empty"
    if "/" in name or "\\" in name:
        return "contains a path separator ('/' or '\\')"
    if ".." in name:
        return "contains '..'"
    if name.startswith("."):
        return "starts with '.'"
    if not name.isprintable():
        bad = next(ch for ch in name if not ch.isprintable())
        return f"contains a control or non-printable character ({ascii(bad)})"
    if len(name) > MAX_NAME_CHARS:
        return f"is {len(name)} characters long"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"is {len(name.encode('utf-8'))} bytes long in UTF-8"
    return None


def check_name(name: str) -> str:
    """``name`` if it is a plain directory name (:func:`name_problem`), else ValueError saying
    what is wrong and what is allowed."""
    problem = name_problem(name)
    if problem:
        raise ValueError(f"{problem}; must be {ALLOWED} (got {_shown(name)})")
    return name


def _shown(name: str) -> str:
    """The name for a message: quoted, escaped, and cut when long."""
    text = ascii(name) if not name.isprintable() else repr(name)
    return text if len(text) <= 60 else text[:50] + "...' (" + f"{len(name)} characters)"
