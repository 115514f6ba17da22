"""Discrete-event co-simulation of SUMO traffic and V2V links for decentralised federated
multi-agent SAC (RSM-MASAC). See ``../shared/DESIGN.md`` for the architecture."""
