"""SIGINT/SIGTERM for every ``cosim`` command: never an exception at an unsafe moment.

Python runs a signal handler between two bytecodes of the main thread, which can be inside an
import, a torch or pybind11 callback or a libsumo call; an exception raised there may be
swallowed ("Exception ignored in ...") or abort the process ("terminate called after throwing
an instance of 'pybind11::error_already_set'"). So the handler here never raises:

- the first signal is only recorded, and the program stops at the next safe point it reaches
  (:meth:`StopSignals.check`): during start-up at the next check, while epochs run
  (:attr:`StopSignals.armed`) where the run loop says (:attr:`StopSignals.notice`: after the
  current step, or after the current epoch and its checkpoint);
- a second signal stops the process at once (``os._exit``), or calls ``on_repeat`` where the
  owner has something better to do with it (a sweep passes it on to its members). Every file
  of a run directory is written atomically and a kill mid-append leaves a torn CSV line that a
  resume drops, so the directory stays resumable from its last checkpoint.

Messages are written with ``os.write``: ``print`` from a handler can itself raise when the
interrupted code was writing to stderr (a progress bar). This module imports nothing but the
standard library, so it can be installed first thing.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: the program stopped at a safe point; a run directory is resumable."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def say(text: str) -> None:
    """Write one line to stderr without Python's buffered I/O (safe inside a signal handler)."""
    try:
        os.write(2, (text.rstrip("\n") + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


class StopSignals:
    """Records SIGINT/SIGTERM while installed (a context manager); nested uses share one instance."""

    _active: StopSignals | None = None

    def __init__(self, label: str = "cosim"):
        self.label = label
        self.signum: int | None = None
        self.armed = False
        self.notice = "stopping after the current epoch and its checkpoint"  # said at the first signal when armed
        self.on_repeat: Callable[[int], None] | None = None
        self._previous: dict[int, object] = {}
        self._depth = 0

    @classmethod
    def install(cls, label: str | None = None) -> StopSignals:
        """The installed instance (relabelled if ``label`` is given), or a new one to use in a
        ``with`` block."""
        if cls._active is not None:
            if label is not None:
                cls._active.label = label
            return cls._active
        return cls(label or "cosim")

    def __enter__(self) -> StopSignals:
        if self._depth == 0 and threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.getsignal(sig)
            self.reinstall()
            StopSignals._active = self
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            for sig, handler in self._previous.items():
                if signal.getsignal(sig) == self._handle:  # not if someone took it over since
                    signal.signal(sig, handler)
            self._previous.clear()
            if StopSignals._active is self:
                StopSignals._active = None

    def reinstall(self) -> None:
        """Take the signals back from a library that replaced the handlers (``ray.init`` does)."""
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                signal.signal(sig, self._handle)

    def check(self) -> None:
        """A safe point: raise :class:`Interrupted` if a signal arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            if self.armed:
                say(f"\n{self.label}: {self.notice} (interrupt again to stop at once)")
            return
        if self.on_repeat is not None:
            self.on_repeat(signum)
            return
        after = "; run the same command again to resume from the last checkpoint" if self.armed else ""
        say(f"error: interrupted again: stopped at once{after}")
        os._exit(128 + signum)
