"""``python -m cosim`` is the ``cosim`` command."""

import sys

from cosim.run.signals import StopSignals

with StopSignals.install() as _stop:  # from the first import on, a signal stops the command quietly
    from cosim.cli import console

    if _stop.signum is not None:
        print("error: interrupted", file=sys.stderr)
        sys.exit(128 + _stop.signum)
    console()
