"""Unit disk with a constant packet reception ratio: the paper's setting."""

from __future__ import annotations

import numpy as np

from . import _validation as check
from .base import LinkBatch, RadioModel

__all__ = ["UnitDisk"]


class UnitDisk(RadioModel):
    """Every link shorter than ``range_m`` exists and delivers each packet with probability ``prr``.

    Parameters (keyword):
        range_m: communication range in metres, > 0. Default 90 (paper Table III, Figure 8);
            the Merge scenario uses 400.
        prr: packet reception ratio in [0, 1], the same for every packet of every link in range,
            whatever its size. Default 1.0 (the paper's ideal links; Fig. 14 varies it down
            to 0.4).
        data_rate_mbps: data rate in Mb/s, > 0. Default 6 (the 802.11p default rate, as in Veins).

    Deterministic: draws no random numbers. Distance is the 3-D antenna distance (equal to the
    ground distance when all antennas have the same height).
    """

    name = "unit_disk"

    def __init__(self, *, range_m: float = 90.0, prr: float = 1.0, data_rate_mbps: float = 6.0):
        n = self.name
        self.range_m = check.number(n, "range_m", range_m, gt=0)
        self.prr = check.number(n, "prr", prr, ge=0, le=1)
        self.data_rate_mbps = check.number(n, "data_rate_mbps", data_rate_mbps, gt=0)
        self._params = {"range_m": self.range_m, "prr": self.prr, "data_rate_mbps": self.data_rate_mbps}

    @property
    def max_range_m(self) -> float:
        return self.range_m

    def _evaluate(self, links: LinkBatch, rng: np.random.Generator, packet_bits: np.ndarray):
        in_range = links.distance_m <= self.range_m
        success = np.where(in_range, self.prr, 0.0)[:, None].repeat(packet_bits.size, axis=1)
        return in_range, success, self.data_rate_mbps * 1e6
