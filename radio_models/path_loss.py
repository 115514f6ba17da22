"""Free-space and log-distance path loss with log-normal shadowing."""

from __future__ import annotations

import numpy as np

from . import _validation as check
from .link_budget import free_space_path_loss_db, log_distance_path_loss_db
from .snr import ShadowedSnrModel

__all__ = ["FreeSpace", "LogDistance"]


class _ShadowedModel(ShadowedSnrModel):
    def __init__(self, *, shadowing_sigma_db: float = 0.0, **common):
        super().__init__(**common)
        self.shadowing_sigma_db = check.number(self.name, "shadowing_sigma_db", shadowing_sigma_db, ge=0, le=30)
        self._params["shadowing_sigma_db"] = self.shadowing_sigma_db


class FreeSpace(_ShadowedModel):
    """Friis free-space path loss PL = 20 log10(4 pi d f / c) (87.86 dB at 100 m, 5.9 GHz).

    Parameters: ``shadowing_sigma_db`` [0.0] (log-normal shadowing std in dB, in [0, 30]) and the
    common SNR-model parameters of :mod:`radio_models.snr` (link budget, reception, range).
    With the defaults (20 dBm, 0 dBi, noise -95 dBm, threshold 8 dB) the range is about 900 m.
    """

    name = "free_space"

    def median_path_loss_db(self, distance_m) -> np.ndarray:
        return free_space_path_loss_db(np.maximum(distance_m, self.min_distance_m), self.frequency_hz)


class LogDistance(_ShadowedModel):
    """Log-distance path loss PL = PL0 + 10 n log10(d / d0) + X, X ~ N(0, sigma^2) in dB.

    Parameters (keyword; defaults are ns-3 ``LogDistancePropagationLossModel``'s, which give
    106.68 dB at 100 m, docs/reference.md §5):

    - ``exponent`` [3.0]: path-loss exponent n, in (0, 10].
    - ``reference_distance_m`` [1.0]: d0 in metres, > 0.
    - ``reference_loss_db`` [46.6777]: PL0 in dB at d0 (ns-3 default: free space at 1 m and
      5.15 GHz; free space at 5.9 GHz would be 47.86), or null to use free space at d0 and
      ``frequency_ghz``.
    - ``shadowing_sigma_db`` [0.0]: log-normal shadowing std in dB, in [0, 30] (0 = ns-3).
    - the common SNR-model parameters of :mod:`radio_models.snr`.

    With the defaults the range (threshold 8 dB) is about 100 m.
    """

    name = "log_distance"

    def __init__(
        self,
        *,
        exponent: float = 3.0,
        reference_distance_m: float = 1.0,
        reference_loss_db: float | None = 46.6777,
        shadowing_sigma_db: float = 0.0,
        **common,
    ):
        n = self.name
        self.exponent = check.number(n, "exponent", exponent, gt=0, le=10)
        self.reference_distance_m = check.number(n, "reference_distance_m", reference_distance_m, gt=0)
        ref = check.number(n, "reference_loss_db", reference_loss_db, ge=0, le=200, allow_none=True)
        super().__init__(shadowing_sigma_db=shadowing_sigma_db, **common)
        self.reference_loss_db = (
            float(free_space_path_loss_db(self.reference_distance_m, self.frequency_hz)) if ref is None else ref
        )
        self._params.update(
            exponent=self.exponent,
            reference_distance_m=self.reference_distance_m,
            reference_loss_db=self.reference_loss_db,
        )

    def median_path_loss_db(self, distance_m) -> np.ndarray:
        d = np.maximum(distance_m, self.min_distance_m)
        return log_distance_path_loss_db(d, self.exponent, self.reference_loss_db, self.reference_distance_m)
