"""Radio link models: geometry of V2V links -> (in range?, per-packet success probability, data rate).

Pure numpy/scipy (no torch, SimPy, SUMO or cosim). Typical use::

    import numpy as np
    import radio_models

    model = radio_models.create("unit_disk", {"range_m": 90, "prr": 0.8})
    links = radio_models.LinkBatch.from_positions(tx_xy, rx_xy)
    quality = model.evaluate(links, np.random.default_rng(0), packet_bits=8 * 4480)
    quality.in_range, quality.success_probability, quality.data_rate_bps

Built-in models (:func:`available` lists them with any installed plug-ins): ``unit_disk``,
``free_space``, ``log_distance``, ``nakagami``, ``tr37885_highway``, ``tr37885_urban``.
"""

from . import ieee80211p, link_budget, reception
from .base import LinkBatch, LinkQuality, RadioModel
from .errors import (RadioModelError, RadioModelLoadError, RadioModelRuntimeError, RadioParameterError,
                     UnknownRadioModelError)
from .nakagami import Nakagami
from .path_loss import FreeSpace, LogDistance
from .registry import ENTRY_POINT_GROUP, accepted_parameters, available, check_quality, create, register, resolve
from .snr import SnrRadioModel
from .tr37885 import Tr37885Highway, Tr37885Urban
from .unit_disk import UnitDisk

for _cls in (UnitDisk, FreeSpace, LogDistance, Nakagami, Tr37885Highway, Tr37885Urban):
    register(_cls.name, _cls)
del _cls

__all__ = [
    "ENTRY_POINT_GROUP",
    "FreeSpace",
    "LinkBatch",
    "LinkQuality",
    "LogDistance",
    "Nakagami",
    "RadioModel",
    "RadioModelError",
    "RadioModelLoadError",
    "RadioModelRuntimeError",
    "RadioParameterError",
    "SnrRadioModel",
    "Tr37885Highway",
    "Tr37885Urban",
    "UnitDisk",
    "UnknownRadioModelError",
    "accepted_parameters",
    "available",
    "check_quality",
    "create",
    "ieee80211p",
    "link_budget",
    "reception",
    "register",
    "resolve",
]
