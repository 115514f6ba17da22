"""Names in a scenario that become code: the registries of the extension points.

- :mod:`~cosim.plugins.controller_registry`: ``learner:`` (what drives the CAVs);
- :mod:`~cosim.plugins.rule_registry`: ``comm.rule`` (how a referential policy is mixed; the
  contract is :mod:`learners.rules`);
- :mod:`~cosim.plugins.medium_registry`: ``channel.medium`` (how frames share the air; the
  contract is :mod:`cosim.channel.medium`);
- :mod:`~cosim.plugins.loading`: what they share (paths, entry points, parameters, blame).

Radio models (``channel.radio``) have their registry in :mod:`radio_models.registry`. Each
registry accepts a built-in name, a registered name, an entry point or
``package.module:attr``, and imports nothing of the simulation at module load, so the config
schema checks names against it (docs/extending.md).
"""
