"""SIGINT/SIGTERM for ``cosim run`` and ``cosim eval``: never an exception at an unsafe moment.

Python runs a signal handler between two bytecodes of the main thread, which can be inside an
import, a torch or pybind11 callback or a libsumo call; an exception raised there may be
swallowed ("Exception ignored in ...") or abort the process. So the first signal is only
recorded, and the program stops at the next safe point it reaches:

- during start-up (imports, config, SUMO start) at the next :meth:`StopSignals.check`;
- while epochs run (:attr:`StopSignals.armed`) after the current epoch and its checkpoint.

This module imports nothing but the standard library, so it can be installed first thing.
A second signal stops at once: while epochs run by raising :class:`Interrupted`
(the run directory is written atomically, so it stays resumable), during start-up by exiting
the process (nothing has been written that a half-finished start could damage).
"""

from __future__ import annotations

import os
import signal
import sys
import threading



class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: the program stopped at a safe point; a run directory is resumable."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopSignals:
    """Records SIGINT/SIGTERM while installed (a context manager); nested uses share one instance."""

    _active: StopSignals | None = None

    def __init__(self, label: str = "cosim"):
        self.label = label
        self.signum: int | None = None
        self.armed = False
        self._previous: dict[int, object] = {}
        self._depth = 0

    @classmethod
    def install(cls, label: str = "cosim") -> StopSignals:
        """The installed instance (relabelled), or a new one to use in a ``with`` block."""
        if cls._active is not None:
            cls._active.label = label
            return cls._active
        return cls(label)

    def __enter__(self) -> StopSignals:
        if self._depth == 0 and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
            StopSignals._active = self
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            self._previous.clear()
            if StopSignals._active is self:
                StopSignals._active = None

    def check(self) -> None:
        """A safe point: raise :class:`Interrupted` if a signal arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            if self.armed:
                print(f"\n{self.label}: stopping after the current epoch and its checkpoint "
                      "(interrupt again to stop at once)", file=sys.stderr, flush=True)
            return
        if self.armed:
            raise Interrupted(signum)
        print("error: interrupted during start-up; nothing was run", file=sys.stderr, flush=True)
        os._exit(128 + signum)
