"""How many torch threads a process uses: every core it may run on for a single run, a share
of them for each member of a sweep, or what ``--threads`` says.

The fleet update is a handful of batched matrix products: on an idle machine a second core
nearly halves it, but two processes that each spin as many OpenMP threads as there are cores
fight over them (an epoch took 4x longer in that case). Hence one share of the cores per
process: all of them for ``cosim run`` alone, ``cores // workers`` for the members of a local
sweep (one for a Ray member, which asks Ray for one CPU).
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under ``taskset`` or a
    container's CPU set), or the machine's count where the platform has no affinity."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def choose_threads(requested: int | None = None, workers: int = 1, cores: int | None = None) -> int:
    """Threads for one process: ``requested`` when given, else an even share of the cores
    among ``workers`` processes running side by side (at least 1)."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"must be >= 1 (got {requested})")
        return requested
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, workers))
