"""C-V2X sidelink medium: LTE-V2X mode 4 and NR-V2X mode 2 (issue 19; docs/medium.md).

Public API::

    from cosim.channel.sidelink import SidelinkMedium, SidelinkParams

    medium = SidelinkMedium(env, radio_model, rng, {"technology": "nr_mode2", "mcs": 11})
    medium.update(nodes, positions)                  # after every traffic step
    frame = medium.send(i, j, bits, kind="data")     # frame.done: SimPy event; frame.delivered
    medium.send(i, -1, 8 * 300, kind="cam")          # periodic broadcast: semi-persistent scheduling
    medium.metrics(); medium.reset_stats()
"""

from .medium import LOSS_CAUSES, RX_OUTCOMES, SidelinkFrame, SidelinkMedium
from .params import TECHNOLOGIES, SidelinkParameterError, SidelinkParams
from .pool import ResourcePool, TbFormat
from .sensing import CandidateSet, RssiRing, SciRing, Selection, candidate_set, pick_replacement, select_resource

__all__ = [
    "CandidateSet",
    "LOSS_CAUSES",
    "RX_OUTCOMES",
    "TECHNOLOGIES",
    "ResourcePool",
    "RssiRing",
    "SciRing",
    "Selection",
    "SidelinkFrame",
    "SidelinkMedium",
    "SidelinkParameterError",
    "SidelinkParams",
    "TbFormat",
    "candidate_set",
    "pick_replacement",
    "select_resource",
]
