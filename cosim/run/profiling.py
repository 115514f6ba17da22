"""Time spent inside chosen functions and SimPy processes of a running simulation, measured in
the same process as the whole (so the share stays meaningful on a busy machine). Used by the
benchmarks to say what CommMix or the channel costs an epoch (:class:`Clock`) and where an
epoch's wall time goes (:class:`Budget`)."""

from __future__ import annotations

import time
from typing import Any


class _Depth:
    depth = 0


class Clock:
    """Accumulates CPU and wall time spent inside wrapped functions and generator steps;
    nested wrapped calls are counted once (only the outermost). Clocks given the same
    ``nesting`` object count only the outermost call of any of them (see :class:`Budget`)."""

    def __init__(self, nesting: Any = None) -> None:
        self.cpu = 0.0
        self.wall = 0.0
        self._nesting = nesting if nesting is not None else _Depth()

    @property
    def depth(self) -> int:
        return self._nesting.depth

    def _enter(self):
        self._nesting.depth += 1
        return (time.process_time(), time.perf_counter()) if self._nesting.depth == 1 else None

    def _leave(self, start) -> None:
        self._nesting.depth -= 1
        if start is not None:
            self.cpu += time.process_time() - start[0]
            self.wall += time.perf_counter() - start[1]

    def function(self, f):
        clock = self

        def timed(*args, **kwargs):
            start = clock._enter()
            try:
                return f(*args, **kwargs)
            finally:
                clock._leave(start)

        timed.__wrapped__ = f
        return timed

    def generator(self, make):
        """Wrap a generator function so that each of its steps is timed (SimPy processes)."""
        clock = self

        def timed(*args, **kwargs):
            gen = make(*args, **kwargs)
            value, error = None, None
            while True:
                start = clock._enter()
                try:
                    event = gen.throw(error) if error is not None else gen.send(value)
                except StopIteration as stop:
                    return stop.value
                finally:
                    clock._leave(start)
                try:
                    value, error = (yield event), None
                except BaseException as exc:  # simpy.Interrupt and friends go to the process
                    value, error = None, exc

        timed.__wrapped__ = make
        return timed


class Budget:
    """Where a run's time goes: named parts, each a set of instrumented functions and SimPy
    processes of classes or modules. A call counts for its part; nested instrumented calls
    count once, for the part of the outermost one (a transfer started inside a CommMix round
    is the round's time; its own process steps are the channel's). ``restore`` puts the
    original functions back."""

    def __init__(self) -> None:
        self._nesting = _Depth()
        self.clocks: dict[str, Clock] = {}
        self._saved: list[tuple[Any, str, Any]] = []

    def add(self, part: str, owner: Any, name: str, generator: bool = False) -> None:
        """Instrument ``owner.name`` (a function, or a generator function run as a SimPy
        process when ``generator``) as part of ``part``."""
        clock = self.clocks.setdefault(part, Clock(self._nesting))
        original = getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, clock.generator(original) if generator else clock.function(original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def snapshot(self) -> dict[str, tuple[float, float]]:
        """(CPU seconds, wall seconds) per part so far."""
        return {part: (c.cpu, c.wall) for part, c in self.clocks.items()}
