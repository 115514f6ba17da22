"""Base of the SNR-based models: path loss (+ shadowing) -> SNR -> packet success.

Common parameters (keyword, all validated; defaults in brackets):

- ``frequency_ghz`` [5.9]: carrier frequency in GHz, in (0, 100] (ITS band, 802.11p).
- ``tx_power_dbm`` [20.0], ``tx_antenna_gain_dbi`` [0.0], ``rx_antenna_gain_dbi`` [0.0],
  ``noise_figure_db`` [9.0], ``bandwidth_mhz`` [10.0], ``noise_floor_dbm`` [null]: the link
  budget (:class:`radio_models.link_budget.LinkBudget`; noise -95 dBm with the defaults).
- ``reception`` ["threshold"]: "threshold" (success iff SNR >= ``snr_threshold_db``) or "nist"
  (NIST 802.11 error-rate model at ``data_rate_mbps``, as in Veins; size-dependent).
- ``snr_threshold_db`` [8.0]: threshold for "threshold" reception. 8 dB is where the NIST model
  gives 0.9987 for a 1000-byte QPSK-1/2 (6 Mb/s) frame (docs/reference.md §5).
- ``data_rate_mbps`` [6.0]: PHY rate; with "nist" reception one of the 802.11p rates
  3, 4.5, 6, 9, 12, 18, 24, 27 (it selects the modulation and code rate).
- ``max_range_m`` [null]: links longer than this (3-D distance) are out of range: no edge.
  Default: the largest distance at which the *reach probability* is at least
  ``cutoff_probability``, i.e. the probability over the model's random terms (shadowing, LOS
  state, fading) that the SNR reaches the cutoff SNR: the threshold ("threshold" reception),
  or the SNR where the decoded bit error probability of the MCS is 1e-2 ("nist": beyond it a
  packet of 64 bytes or more decodes with probability < 1 %).
- ``cutoff_probability`` [0.01]: in (0, 0.5), see ``max_range_m``.
- ``min_distance_m`` [1.0]: distances below it are raised to it in path-loss formulas.
- ``decorrelation_distance_m`` [null = the model's default: 25 m, tr37885_urban 10 m]: the
  distance over which the random terms of a link (shadowing, LOS state, blockage) decorrelate
  when the channel keeps them per link (``channel.link_state: correlated``): their
  autocorrelation over a displacement D is exp(-D / decorrelation_distance_m) (Gudmundson's
  exponential model; 3GPP TR 36.885 / TR 37.885 use 25 m on highways and 10 m in urban
  areas for V2V shadowing).

Random terms: :meth:`SnrRadioModel.sample_path_loss_db` draws them independently per link at
every evaluation, i.e. every traffic step (no spatial correlation; ``channel.link_state:
redrawn``); links are reciprocal (one draw per pair). :meth:`SnrRadioModel.path_loss_from_normals_db`
gives the same path loss from ``random_terms`` standard normals per link that the caller
supplies, so that a caller can keep them per link and let them evolve with movement
(:mod:`cosim.channel.linkstate`).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from scipy.special import ndtr

from . import _validation as check
from .base import LinkBatch, LinkQuality, RadioModel, as_packet_bits
from .ieee80211p import RATES_MBPS
from .link_budget import LinkBudget
from .reception import NistReception, ThresholdReception

__all__ = ["SnrRadioModel", "gaussian_cdf", "expect_over_normal"]

_MAX_SEARCH_DISTANCE_M = 1e5
_HERMITE_X, _HERMITE_W = np.polynomial.hermite.hermgauss(32)


def gaussian_cdf(margin_db, sigma_db: float):
    """P(sigma Z <= margin) for Z standard normal; a step function when sigma is 0."""
    margin = np.asarray(margin_db, dtype=float)
    if sigma_db <= 0.0:
        return (margin >= 0.0).astype(float)
    return ndtr(margin / sigma_db)


def expect_over_normal(func, sigma: float, shape_like) -> np.ndarray:
    """E[func(sigma Z)], Z standard normal, by 32-point Gauss-Hermite quadrature (vectorised)."""
    if sigma <= 0.0:
        return np.asarray(func(0.0), dtype=float) * np.ones(np.shape(shape_like))
    total = np.zeros(np.shape(shape_like))
    for x, w in zip(_HERMITE_X, _HERMITE_W):
        total = total + w * np.asarray(func(np.sqrt(2.0) * sigma * x), dtype=float)
    return total / np.sqrt(np.pi)


class SnrRadioModel(RadioModel):
    """Path loss + link budget + reception. Subclasses define the path loss."""

    receptions: tuple[str, ...] = ("threshold", "nist")
    default_decorrelation_distance_m: float = 25.0
    """Decorrelation distance of the random terms when ``decorrelation_distance_m`` is null
    (3GPP TR 36.885 / TR 37.885 highway V2V shadowing: 25 m)."""

    def __init__(
        self,
        *,
        frequency_ghz: float = 5.9,
        tx_power_dbm: float = 20.0,
        tx_antenna_gain_dbi: float = 0.0,
        rx_antenna_gain_dbi: float = 0.0,
        noise_figure_db: float = 9.0,
        bandwidth_mhz: float = 10.0,
        noise_floor_dbm: float | None = None,
        reception: str = "threshold",
        snr_threshold_db: float = 8.0,
        data_rate_mbps: float = 6.0,
        max_range_m: float | None = None,
        cutoff_probability: float = 0.01,
        min_distance_m: float = 1.0,
        decorrelation_distance_m: float | None = None,
    ):
        n = self.name
        self.frequency_ghz = check.number(n, "frequency_ghz", frequency_ghz, gt=0, le=100)
        bandwidth_mhz = check.number(n, "bandwidth_mhz", bandwidth_mhz, gt=0)
        self.budget = LinkBudget(
            tx_power_dbm=tx_power_dbm,
            tx_antenna_gain_dbi=tx_antenna_gain_dbi,
            rx_antenna_gain_dbi=rx_antenna_gain_dbi,
            noise_figure_db=noise_figure_db,
            bandwidth_hz=bandwidth_mhz * 1e6,
            noise_floor_dbm=noise_floor_dbm,
            model=n,
        )
        self.reception_kind = check.choice(n, "reception", reception, self.receptions)
        self.snr_threshold_db = check.number(n, "snr_threshold_db", snr_threshold_db, ge=-30, le=60)
        self.data_rate_mbps = check.number(n, "data_rate_mbps", data_rate_mbps, gt=0)
        if self.reception_kind == "nist":
            check.choice(n, "data_rate_mbps", float(self.data_rate_mbps), RATES_MBPS)
            self.reception = NistReception(self.data_rate_mbps)
        else:
            self.reception = ThresholdReception(self.snr_threshold_db)
        self._max_range_param = check.number(n, "max_range_m", max_range_m, gt=0, allow_none=True)
        self.cutoff_probability = check.number(n, "cutoff_probability", cutoff_probability, gt=0, lt=0.5)
        self.min_distance_m = check.number(n, "min_distance_m", min_distance_m, gt=0)
        decorrelation = check.number(n, "decorrelation_distance_m", decorrelation_distance_m, gt=0, allow_none=True)
        self.decorrelation_distance_m = (
            float(self.default_decorrelation_distance_m) if decorrelation is None else decorrelation
        )
        self._max_range_cache: float | None = None
        self._params = {
            "frequency_ghz": self.frequency_ghz,
            "tx_power_dbm": self.budget.tx_power_dbm,
            "tx_antenna_gain_dbi": self.budget.tx_antenna_gain_dbi,
            "rx_antenna_gain_dbi": self.budget.rx_antenna_gain_dbi,
            "noise_figure_db": self.budget.noise_figure_db,
            "bandwidth_mhz": bandwidth_mhz,
            "noise_floor_dbm": self.budget.noise_floor_dbm,
            "reception": self.reception_kind,
            "snr_threshold_db": self.snr_threshold_db,
            "data_rate_mbps": self.data_rate_mbps,
            "max_range_m": self._max_range_param,
            "cutoff_probability": self.cutoff_probability,
            "min_distance_m": self.min_distance_m,
            "decorrelation_distance_m": self.decorrelation_distance_m,
        }

    # ---- what subclasses define -------------------------------------------------------------

    @abstractmethod
    def median_path_loss_db(self, distance_m) -> np.ndarray:
        """Path loss without random terms, of the least-lossy link state; increasing in distance."""

    @abstractmethod
    def sample_path_loss_db(self, links: LinkBatch, rng: np.random.Generator) -> np.ndarray:
        """Path loss of each link in dB, random terms (shadowing, state) drawn from ``rng``."""

    @property
    def cutoff_shadowing_db(self) -> float:
        """Shadowing std (dB) of the least-lossy state, used for the default ``max_range_m``."""
        return 0.0

    @property
    def random_terms(self) -> int:
        """How many standard normals per link drive :meth:`path_loss_from_normals_db` (0: the
        path loss is deterministic)."""
        return 0

    def path_loss_from_normals_db(self, links: LinkBatch, normals: np.ndarray) -> np.ndarray:
        """Path loss of each link given its random terms as standard normals, shape
        (E, :attr:`random_terms`). Any model whose random terms are all drawn per link can say
        how it maps normals to a loss; the default (no random terms) is the median loss."""
        return self.median_path_loss_db(self._distance(links))

    # ---- derived ----------------------------------------------------------------------------

    @property
    def frequency_hz(self) -> float:
        return self.frequency_ghz * 1e9

    @property
    def data_rate_bps(self) -> float:
        return self.data_rate_mbps * 1e6

    def _distance(self, links: LinkBatch) -> np.ndarray:
        return np.maximum(links.distance_m, self.min_distance_m)

    def cutoff_snr_db(self) -> float:
        """SNR (dB) below which a packet counts as undecodable, for the default ``max_range_m``."""
        return self.reception.cutoff_snr_db

    def reach_probability(self, distance_m) -> np.ndarray:
        """P(SNR >= cutoff SNR) at each distance, over all random terms of the model.

        Default: Gaussian shadowing of std ``cutoff_shadowing_db`` around the median path loss.
        """
        max_loss = self.budget.max_path_loss_db(self.cutoff_snr_db())
        margin = max_loss - self.median_path_loss_db(np.asarray(distance_m, dtype=float))
        return gaussian_cdf(margin, self.cutoff_shadowing_db)

    @property
    def max_range_m(self) -> float:
        """``max_range_m`` if given, else the largest distance whose reach probability is at
        least ``cutoff_probability`` (log-grid scan from ``min_distance_m`` to 100 km, then
        bisection)."""
        if self._max_range_param is not None:
            return self._max_range_param
        if self._max_range_cache is None:
            self._max_range_cache = self._solve_max_range()
        return self._max_range_cache

    def _solve_max_range(self) -> float:
        eps = self.cutoff_probability
        grid = np.geomspace(self.min_distance_m, _MAX_SEARCH_DISTANCE_M, 400)
        ok = np.asarray(self.reach_probability(grid)) >= eps
        if not ok[0]:
            return 0.0
        last = int(np.flatnonzero(ok)[-1])
        if last == grid.size - 1:
            return float(grid[-1])
        lo, hi = np.log(grid[last]), np.log(grid[last + 1])
        for _ in range(30):  # the grid step is 3 %; 30 halvings leave < 1e-10 relative
            mid = 0.5 * (lo + hi)
            if float(np.asarray(self.reach_probability(np.array([np.exp(mid)])))[0]) >= eps:
                lo = mid
            else:
                hi = mid
        return float(np.exp(lo))

    def snr_db(self, links: LinkBatch, rng: np.random.Generator) -> np.ndarray:
        """Sampled SNR in dB of each link."""
        return self.budget.snr_db(self.sample_path_loss_db(links, rng))

    def _success(self, snr_db: np.ndarray, links: LinkBatch, packet_bits: np.ndarray) -> np.ndarray:
        return self.reception.success(snr_db, packet_bits)

    def quality_from_path_loss(self, links: LinkBatch, path_loss_db: np.ndarray, packet_bits=8 * 4480) -> LinkQuality:
        """The quality of every link given its path loss in dB (e.g. from
        :meth:`path_loss_from_normals_db`): what :meth:`evaluate` returns for that loss."""
        bits, scalar = as_packet_bits(packet_bits)
        snr = self.budget.snr_db(np.asarray(path_loss_db, dtype=float))
        success = self._success(snr, links, bits)
        in_range = links.distance_m <= self.max_range_m
        return self._quality(links, bits, scalar, in_range, success, self.data_rate_bps)

    def _evaluate(self, links: LinkBatch, rng: np.random.Generator, packet_bits: np.ndarray):
        snr = self.snr_db(links, rng)
        success = self._success(snr, links, packet_bits)
        in_range = links.distance_m <= self.max_range_m
        return in_range, success, self.data_rate_bps


class ShadowedSnrModel(SnrRadioModel):
    """An :class:`SnrRadioModel` whose only random term is log-normal shadowing: the median path
    loss plus ``shadowing_sigma_db`` (set by the subclass) times one standard normal per link."""

    shadowing_sigma_db: float = 0.0

    @property
    def cutoff_shadowing_db(self) -> float:
        return self.shadowing_sigma_db

    def unshadowed_loss_db(self, links: LinkBatch) -> np.ndarray:
        """Each link's loss before shadowing: the median at its distance (a model whose loss
        depends on more of the link, e.g. antenna heights, says so here)."""
        return self.median_path_loss_db(self._distance(links))

    def sample_path_loss_db(self, links: LinkBatch, rng: np.random.Generator) -> np.ndarray:
        loss = self.unshadowed_loss_db(links)
        if self.shadowing_sigma_db > 0.0:
            loss = loss + self.shadowing_sigma_db * rng.standard_normal(len(links))
        return loss

    @property
    def random_terms(self) -> int:
        """One normal per link (the shadowing) when there is shadowing."""
        return 1 if self.shadowing_sigma_db > 0.0 else 0

    def path_loss_from_normals_db(self, links: LinkBatch, normals: np.ndarray) -> np.ndarray:
        """Unshadowed loss + sigma x the link's normal (column 0)."""
        loss = self.unshadowed_loss_db(links)
        if self.shadowing_sigma_db > 0.0:
            loss = loss + self.shadowing_sigma_db * np.asarray(normals, dtype=float)[:, 0]
        return loss
