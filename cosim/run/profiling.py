"""Time spent inside chosen functions and SimPy processes of a running simulation, measured in
the same process as the whole (so the share stays meaningful on a busy machine). Used by the
benchmarks to say what CommMix or the channel costs an epoch."""

from __future__ import annotations

import time


class Clock:
    """Accumulates CPU and wall time spent inside wrapped functions and generator steps;
    nested wrapped calls are counted once (only the outermost)."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0
        self.depth = 0

    def _enter(self):
        self.depth += 1
        return (time.process_time(), time.perf_counter()) if self.depth == 1 else None

    def _leave(self, start) -> None:
        self.depth -= 1
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
