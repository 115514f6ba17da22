"""``python -m cosim`` is the ``cosim`` command."""

import sys

from cosim.signals import StopSignals

with StopSignals.install() as _stop:  # a signal while the command line imports stops it quietly
    from cosim.cli import main
if _stop.signum is not None:
    print("error: interrupted", file=sys.stderr)
    sys.exit(128 + _stop.signum)
sys.exit(main())
