"""The command line: ``cosim`` and its subcommands (:mod:`cosim.cli.main`), sweeps
(:mod:`cosim.cli.sweep`, members started through :mod:`cosim.cli.member`), reports
(:mod:`cosim.cli.report`) and the generated key reference (:mod:`cosim.cli.docgen`).

``console`` is re-exported here because the ``cosim`` console script names
``cosim.cli:console``.
"""

from cosim.cli.main import console

__all__ = ["console"]
