"""Nakagami-m fading over a log-distance mean power: closed-form success probability."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaincc

from . import _validation as check
from .base import LinkBatch
from .link_budget import free_space_path_loss_db, log_distance_path_loss_db
from .snr import ShadowedSnrModel, expect_over_normal

__all__ = ["Nakagami"]


class Nakagami(ShadowedSnrModel):
    """Nakagami-m fast fading with an SNR threshold, success probability in closed form.

    The received power is Gamma-distributed with shape m and mean P (the path-loss mean power),
    so a packet succeeds, i.e. SNR >= threshold theta, with probability

        P_s = Q(m, m theta / P) = scipy.special.gammaincc(m, m theta / P)

    (docs/reference.md §5). The fading is drawn independently per packet (it is folded into the
    probability), while the optional log-normal shadowing is drawn per link per evaluation.
    For m = 3 and exponent 2, with R the distance where P = theta:
    P_s(d) = exp(-3 (d/R)^2) (1 + 3 (d/R)^2 + 4.5 (d/R)^4), P_s(R) = 0.4232.

    Parameters (keyword; defaults in brackets):

    - ``m`` [3.0]: constant shape parameter, in [0.5, 100] (m = 1 is Rayleigh; 3 is the
      highway value used e.g. by Killat and Hartenstein).
    - ``distance_dependent_m`` [false]: use ``m_near`` below ``m_switch_distance_m`` (2-D
      distance) and ``m_far`` beyond, like Veins ``NakagamiFading`` (constM = false) and ns-3
      ``NakagamiPropagationLossModel``.
    - ``m_near`` [1.5], ``m_far`` [0.75], ``m_switch_distance_m`` [80.0]: the Veins/ns-3 values.
    - ``path_loss_exponent`` [2.0]: exponent n of the mean power P ~ d^-n, in (0, 10].
    - ``reference_distance_m`` [1.0], ``reference_loss_db`` [null = free space at d0 and
      ``frequency_ghz``]: the log-distance mean path loss.
    - ``reference_range_m`` [null]: if given, R itself (mean SNR = threshold at R), i.e.
      theta / P = (d / R)^n; the link budget and path-loss reference are then not used.
    - ``shadowing_sigma_db`` [0.0]: log-normal shadowing std in dB on the mean power.
    - ``snr_threshold_db`` [8.0] and the other common parameters of :mod:`radio_models.snr`;
      ``reception`` must be "threshold" (the closed form needs a threshold).

    Default ``max_range_m``: the largest distance where P_s (averaged over the shadowing) is at
    least ``cutoff_probability``.
    """

    name = "nakagami"
    receptions = ("threshold",)

    def __init__(
        self,
        *,
        m: float = 3.0,
        distance_dependent_m: bool = False,
        m_near: float = 1.5,
        m_far: float = 0.75,
        m_switch_distance_m: float = 80.0,
        path_loss_exponent: float = 2.0,
        reference_distance_m: float = 1.0,
        reference_loss_db: float | None = None,
        reference_range_m: float | None = None,
        shadowing_sigma_db: float = 0.0,
        **common,
    ):
        n = self.name
        self.m = check.number(n, "m", m, ge=0.5, le=100)
        self.distance_dependent_m = check.boolean(n, "distance_dependent_m", distance_dependent_m)
        self.m_near = check.number(n, "m_near", m_near, ge=0.5, le=100)
        self.m_far = check.number(n, "m_far", m_far, ge=0.5, le=100)
        self.m_switch_distance_m = check.number(n, "m_switch_distance_m", m_switch_distance_m, gt=0)
        self.path_loss_exponent = check.number(n, "path_loss_exponent", path_loss_exponent, gt=0, le=10)
        self.reference_distance_m = check.number(n, "reference_distance_m", reference_distance_m, gt=0)
        ref_loss = check.number(n, "reference_loss_db", reference_loss_db, ge=0, le=200, allow_none=True)
        self.reference_range_m = check.number(n, "reference_range_m", reference_range_m, gt=0, allow_none=True)
        self.shadowing_sigma_db = check.number(n, "shadowing_sigma_db", shadowing_sigma_db, ge=0, le=30)
        super().__init__(**common)
        self.reference_loss_db = (
            float(free_space_path_loss_db(self.reference_distance_m, self.frequency_hz)) if ref_loss is None else ref_loss
        )
        self._params.update(
            m=self.m,
            distance_dependent_m=self.distance_dependent_m,
            m_near=self.m_near,
            m_far=self.m_far,
            m_switch_distance_m=self.m_switch_distance_m,
            path_loss_exponent=self.path_loss_exponent,
            reference_distance_m=self.reference_distance_m,
            reference_loss_db=self.reference_loss_db,
            reference_range_m=self.reference_range_m,
            shadowing_sigma_db=self.shadowing_sigma_db,
        )

    def shape_parameter(self, horizontal_distance_m) -> np.ndarray:
        """m of each link (constant, or Veins/ns-3 near/far by 2-D distance)."""
        d = np.asarray(horizontal_distance_m, dtype=float)
        if not self.distance_dependent_m:
            return np.full(d.shape, self.m)
        return np.where(d < self.m_switch_distance_m, self.m_near, self.m_far)

    def median_path_loss_db(self, distance_m) -> np.ndarray:
        d = np.maximum(np.asarray(distance_m, dtype=float), self.min_distance_m)
        if self.reference_range_m is not None:
            # Path loss relative to the one at R, placed so that SNR(R) = threshold.
            at_range = self.budget.max_path_loss_db(self.snr_threshold_db)
            return at_range + 10.0 * self.path_loss_exponent * np.log10(d / self.reference_range_m)
        return log_distance_path_loss_db(d, self.path_loss_exponent, self.reference_loss_db, self.reference_distance_m)

    def success_from_mean_snr(self, mean_snr_db, m) -> np.ndarray:
        """gammaincc(m, m theta / P) for mean SNRs in dB and shape(s) m."""
        ratio = np.power(10.0, (self.snr_threshold_db - np.asarray(mean_snr_db, dtype=float)) / 10.0)
        return gammaincc(m, m * ratio)

    def _success(self, snr_db, links: LinkBatch, packet_bits):
        p = self.success_from_mean_snr(snr_db, self.shape_parameter(links.horizontal_distance_m))
        return np.repeat(p[:, None], np.size(packet_bits), axis=1)

    def reach_probability(self, distance_m) -> np.ndarray:
        """P_s at each distance (fading, and shadowing by Gauss-Hermite quadrature)."""
        d = np.asarray(distance_m, dtype=float)
        mean_snr = self.budget.snr_db(self.median_path_loss_db(d))
        m = self.shape_parameter(d)
        return expect_over_normal(lambda x: self.success_from_mean_snr(mean_snr - x, m), self.shadowing_sigma_db, d)
