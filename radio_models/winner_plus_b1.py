"""WINNER+ B1 line-of-sight path loss with log-normal shadowing, as the analytical model of LTE-V2X
mode 4 uses it (Gonzalez-Martin, Sepulcre, Molina-Masegosa, Gozalvez, "Analytical models of the
performance of C-V2X mode 4 vehicular communications", IEEE Trans. Veh. Technol. 68(2), 2019).

With d the 3-D distance in m (at least ``min_distance_m``, 3 m as the paper), fc in GHz and the
effective antenna heights h' = h - ``environment_height_m`` (the paper: 0):

- breakpoint d_BP = 4 h'_tx h'_rx fc / c (177.3 m at 5.91 GHz, antennas at 1.5 m);
- d < d_BP:  PL = 22.7 log10 d + 27 + 20 log10 fc                          (87.83 dB at 100 m)
- d >= d_BP: PL = 40 log10 d + 7.56 - 17.3 log10 h'_tx - 17.3 log10 h'_rx + 2.7 log10 fc
- never below free space, PL_free = 20 log10 d + 46.4 + 20 log10(fc / 5);
- shadowing: log-normal, ``shadowing_sigma_db`` (3 dB), drawn per link and evaluation.

Not registered under a name (use ``radio_models.winner_plus_b1:WinnerPlusB1``); the sidelink
validation tests drive the medium with it.
"""

from __future__ import annotations

import numpy as np

from . import _validation as check
from .base import DEFAULT_ANTENNA_HEIGHT_M, LinkBatch
from .link_budget import SPEED_OF_LIGHT_MPS
from .snr import ShadowedSnrModel

__all__ = ["WinnerPlusB1", "winner_b1_los_path_loss_db"]


def winner_b1_los_path_loss_db(distance_m, frequency_ghz: float = 5.91, tx_height_m=DEFAULT_ANTENNA_HEIGHT_M,
                               rx_height_m=DEFAULT_ANTENNA_HEIGHT_M, environment_height_m: float = 0.0,
                               min_distance_m: float = 3.0) -> np.ndarray:
    """The median (no shadowing) WINNER+ B1 LOS path loss in dB (see the module docstring)."""
    d = np.maximum(np.asarray(distance_m, dtype=float), min_distance_m)
    h_tx = np.asarray(tx_height_m, dtype=float) - environment_height_m
    h_rx = np.asarray(rx_height_m, dtype=float) - environment_height_m
    d_bp = 4.0 * h_tx * h_rx * frequency_ghz * 1e9 / SPEED_OF_LIGHT_MPS
    near = 22.7 * np.log10(d) + 27.0 + 20.0 * np.log10(frequency_ghz)
    far = 40.0 * np.log10(d) + 7.56 - 17.3 * np.log10(h_tx) - 17.3 * np.log10(h_rx) + 2.7 * np.log10(frequency_ghz)
    free = 20.0 * np.log10(d) + 46.4 + 20.0 * np.log10(frequency_ghz / 5.0)
    return np.maximum(np.where(d < d_bp, near, far), free)


class WinnerPlusB1(ShadowedSnrModel):
    """WINNER+ B1 LOS + log-normal shadowing (module docstring). Parameters: ``shadowing_sigma_db``
    [3.0], ``environment_height_m`` [0.0], and the common SNR-model ones (``frequency_ghz``
    defaults to 5.91, ``min_distance_m`` to 3)."""

    name = "winner_plus_b1"

    def __init__(self, *, shadowing_sigma_db: float = 3.0, environment_height_m: float = 0.0,
                 frequency_ghz: float = 5.91, min_distance_m: float = 3.0, **common):
        n = self.name
        self.shadowing_sigma_db = check.number(n, "shadowing_sigma_db", shadowing_sigma_db, ge=0, le=30)
        self.environment_height_m = check.number(n, "environment_height_m", environment_height_m, ge=0, lt=1.5)
        super().__init__(frequency_ghz=frequency_ghz, min_distance_m=min_distance_m, **common)
        self._params.update(shadowing_sigma_db=self.shadowing_sigma_db,
                            environment_height_m=self.environment_height_m)

    def median_path_loss_db(self, distance_m) -> np.ndarray:
        return winner_b1_los_path_loss_db(distance_m, self.frequency_ghz,
                                          environment_height_m=self.environment_height_m,
                                          min_distance_m=self.min_distance_m)

    def unshadowed_loss_db(self, links: LinkBatch) -> np.ndarray:
        """The loss at each link's own antenna heights (the module docstring)."""
        return winner_b1_los_path_loss_db(links.distance_m, self.frequency_ghz, links.tx_height_m, links.rx_height_m,
                                          self.environment_height_m, self.min_distance_m)
