"""cosim.run.profiling.Clock: time inside wrapped functions and SimPy process steps, nested calls once."""

from __future__ import annotations

import time

import simpy

from cosim.run.profiling import Clock


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_nested_calls_count_once_and_waiting_in_a_process_does_not_count():
    clock = Clock()
    inner = clock.function(lambda: _busy(0.02))
    outer = clock.function(lambda: (inner(), _busy(0.02)))
    start = time.perf_counter()
    outer()
    elapsed = time.perf_counter() - start
    # counted once: never more than the call took (twice would add the inner call's 0.02 s)
    assert 0.04 <= clock.wall <= elapsed

    env = simpy.Environment()

    def process(env):
        _busy(0.01)
        yield env.timeout(100.0)  # simulated waiting costs no wall time
        _busy(0.01)
        return "done"

    before = clock.wall
    proc = env.process(clock.generator(process)(env))
    start = time.perf_counter()
    env.run()
    elapsed = time.perf_counter() - start
    assert proc.value == "done" and env.now == 100.0
    assert 0.02 <= clock.wall - before <= elapsed
    assert clock.cpu > 0


def test_budget_attributes_nested_calls_to_the_outermost_part_and_restores():
    from cosim.run.profiling import Budget

    class Work:
        def inner(self):
            _busy(0.02)

        def outer(self):
            self.inner()
            _busy(0.02)

    budget = Budget()
    budget.add("outer", Work, "outer")
    budget.add("inner", Work, "inner")
    Work().outer()  # 0.04 s, all of it the outer part's: the nested inner call is not the inner part's
    assert budget.snapshot()["inner"] == (0.0, 0.0) and budget.snapshot()["outer"][1] >= 0.04
    Work().inner()  # called on its own: the inner part's
    parts = budget.snapshot()
    assert parts["inner"][1] >= 0.02
    budget.restore()
    Work().outer()
    assert budget.snapshot() == parts  # nothing is instrumented any more
