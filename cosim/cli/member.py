"""One sweep member's process: ``python -m cosim.cli.member run BASE --set ... --out DIR``.

:mod:`cosim.cli.sweep` starts every member this way. The member is an ordinary ``cosim run``
(:func:`cosim.cli.main.main`), except that on Linux it dies with its sweep: the sweep passes
its process id in ``COSIM_SWEEP_PARENT`` and the member asks the kernel for SIGTERM when that
parent dies (even by SIGKILL), so no member goes on writing after its sweep was killed; it
checkpoints and stops like any run that gets SIGTERM. A module of its own so that the sweep
never imports the command line that imports it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when the sweep process named by ``COSIM_SWEEP_PARENT``
    dies (``prctl(PR_SET_DEATHSIG)``); elsewhere, or outside a sweep, nothing."""
    parent = os.environ.get("COSIM_SWEEP_PARENT")
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # the parent died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def member_main(argv: list[str]) -> int:
    """Run ``cosim`` with ``argv`` as a sweep member; returns its exit status."""
    die_with_parent()
    from cosim.cli.main import main

    return main(argv)


if __name__ == "__main__":
    sys.exit(member_main(sys.argv[1:]))
