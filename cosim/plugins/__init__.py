"""Names in a scenario that become code: the registries of the extension points.

- :mod:`~cosim.plugins.controller_registry`: ``learner:`` (what drives the CAVs).

Each accepts a built-in name, a registered name, or ``package.module:attr``. A registry
imports nothing of the simulation at module load, so the config schema can check names
against it (see docs/extending.md).
"""
