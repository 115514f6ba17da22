"""V2V channel: the graph of the current traffic step and over-the-air pull transfers (SimPy).

Public API::

    from cosim.channel import Channel, ChannelConfig

    channel = Channel(env, config, rng)          # config: ChannelConfig (the `channel:` section)
    channel.update(nodes, positions, speeds)     # after every traffic step
    # (channel.cam on: also background_ids=..., background_positions=... of human-driven vehicles)
    channel.neighbours(i); channel.graph         # current V2V graph
    proc = channel.pull(i, j, respond)           # SimPy process; value: TransferResult
    channel.metrics(); channel.reset()           # per-epoch accounting

How frames share the air is the medium's business (``channel.medium``): the contract is
:mod:`cosim.channel.medium` (``Medium``, ``MediumSetup``, ``Frame``), the built-ins are
:mod:`cosim.channel.independent` and :mod:`cosim.channel.csma` (docs/extending.md).
"""

from .channel import BACKGROUND_ID_BASE, Channel, Respond
from .config import CamConfig, ChannelConfig, ChannelMode, RadioConfig
from .linkstate import CorrelatedLinkState
from .medium import BROADCAST, Frame, Medium, MediumSetup
from .stats import ChannelStats, FailureCause, TransferResult
from .topology import LinkState, Topology, build_topology, candidate_pairs

__all__ = [
    "BACKGROUND_ID_BASE",
    "BROADCAST",
    "CamConfig",
    "Channel",
    "ChannelConfig",
    "ChannelMode",
    "ChannelStats",
    "CorrelatedLinkState",
    "FailureCause",
    "Frame",
    "LinkState",
    "Medium",
    "MediumSetup",
    "RadioConfig",
    "Respond",
    "Topology",
    "TransferResult",
    "build_topology",
    "candidate_pairs",
]
