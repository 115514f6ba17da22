"""Discrete-event co-simulation of SUMO traffic and V2V links for decentralised federated
multi-agent SAC (RSM-MASAC). The architecture is described in ``docs/design.md``."""
