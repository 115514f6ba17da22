"""3GPP TR 37.885 V2V sidelink path loss (highway and urban), Table 6.2.1-1 and Table 6.2-1.

Per link and evaluation a channel condition is drawn (LOS, NLOSv = blocked by vehicles, NLOS =
blocked by buildings), then the path loss (d = 3-D distance in m, fc in GHz):

- highway LOS: 32.4 + 20 log10 d + 20 log10 fc            (87.82 dB at 100 m, 5.9 GHz)
- urban LOS:   38.77 + 16.7 log10 d + 18.2 log10 fc       (86.20 dB at 100 m, 5.9 GHz)
- NLOSv:       LOS + additional vehicle blockage loss B
- NLOS:        36.85 + 30 log10 d + 18.9 log10 fc (both scenarios, as ns-3)
- shadowing:   log-normal, std 3 dB (LOS, NLOSv), 4 dB (NLOS); decorrelation distance 25 m
               (highway) and 10 m (urban), used when the channel keeps the random terms per
               link (``channel.link_state: correlated``; ``decorrelation_distance_m``)

LOS probability (2-D distance d): highway min(1, 2.1013e-6 d^2 - 0.002 d + 1.0193) up to
475 m, then max(0, 0.54 - 0.001 (d - 475)); urban min(1, 1.05 exp(-0.0114 d)); the rest of the
links not blocked by buildings are NLOSv.

Blockage loss B (TR 37.885 §6.2.1): the blocker is a car (height ``blocker_height_m``, 1.6 m)
or, with probability ``truck_fraction``, a truck (``truck_height_m``, 3 m). If both antennas are
above the blocker, B = 0; if both are below it, B is log-normal with mean
9 + max(0, 15 log10 d - 41) dB and std 4.5 dB; otherwise mean 5 + max(0, 15 log10 d - 41) dB
and std 4 dB. The log-normal is parameterised with natural logs: sigma_ln^2 = ln(1 + s^2/mu^2),
mu_ln = ln mu - sigma_ln^2 / 2 (ns-3 uses log10 there, which does not give the stated mean/std).

NLOS needs a building map, which this model does not have: ``building_nlos_probability`` [0]
makes that fraction of links NLOS at random (0 = open layout, like ns-3 without buildings).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from . import _validation as check
from .base import DEFAULT_ANTENNA_HEIGHT_M, LinkBatch
from .snr import SnrRadioModel, expect_over_normal, gaussian_cdf

__all__ = [
    "Tr37885",
    "Tr37885Highway",
    "Tr37885Urban",
    "LOS",
    "NLOSV",
    "NLOS",
    "highway_los_probability",
    "urban_los_probability",
    "blockage_loss_parameters",
]

LOS, NLOSV, NLOS = 0, 1, 2
"""Channel-condition codes returned by :meth:`Tr37885.sample_conditions`."""

SHADOWING_STD_DB = {LOS: 3.0, NLOSV: 3.0, NLOS: 4.0}


def highway_los_probability(distance_2d_m):
    d = np.asarray(distance_2d_m, dtype=float)
    near = np.minimum(1.0, 2.1013e-6 * d * d - 0.002 * d + 1.0193)
    far = np.maximum(0.0, 0.54 - 0.001 * (d - 475.0))
    return np.where(d <= 475.0, near, far)


def urban_los_probability(distance_2d_m):
    d = np.asarray(distance_2d_m, dtype=float)
    return np.minimum(1.0, 1.05 * np.exp(-0.0114 * d))


def blockage_loss_parameters(distance_3d_m, tx_height_m, rx_height_m, blocker_height_m):
    """(mean dB, std dB) of the NLOSv blockage loss per link; mean 0 where there is no blockage."""
    d = np.asarray(distance_3d_m, dtype=float)
    lo = np.minimum(tx_height_m, rx_height_m)
    hi = np.maximum(tx_height_m, rx_height_m)
    extra = np.maximum(0.0, 15.0 * np.log10(d) - 41.0)
    below = hi < blocker_height_m
    above = lo > blocker_height_m
    mean = np.where(above, 0.0, np.where(below, 9.0, 5.0) + extra)
    std = np.where(above, 0.0, np.where(below, 4.5, 4.0))
    return mean, std


class Tr37885(SnrRadioModel):
    """3GPP TR 37.885 V2V model (see the module docstring for the formulas).

    Parameters (keyword; defaults in brackets): ``blocker_height_m`` [1.6] and
    ``truck_height_m`` [3.0] (TR 37.885 vehicle types 1-2 and 3), ``truck_fraction`` [0.0] in
    [0, 1], ``building_nlos_probability`` [0.0] in [0, 1], ``shadowing`` [true] (false: no
    log-normal shadowing, blockage loss still random), and the common SNR-model parameters of
    :mod:`radio_models.snr` (``frequency_ghz`` 5.9, link budget, reception, range). Antenna
    heights come with the links (the channel's ``antenna_height_m``, 1.5 m by default, so
    both antennas are below a 1.6 m car and NLOSv costs 9 dB or more).
    """

    scenario = ""

    def __init__(
        self,
        *,
        blocker_height_m: float = 1.6,
        truck_height_m: float = 3.0,
        truck_fraction: float = 0.0,
        building_nlos_probability: float = 0.0,
        shadowing: bool = True,
        **common,
    ):
        n = self.name
        self.blocker_height_m = check.number(n, "blocker_height_m", blocker_height_m, gt=0, le=10)
        self.truck_height_m = check.number(n, "truck_height_m", truck_height_m, gt=0, le=10)
        self.truck_fraction = check.number(n, "truck_fraction", truck_fraction, ge=0, le=1)
        self.building_nlos_probability = check.number(
            n, "building_nlos_probability", building_nlos_probability, ge=0, le=1
        )
        self.shadowing = check.boolean(n, "shadowing", shadowing)
        super().__init__(**common)
        self._params.update(
            blocker_height_m=self.blocker_height_m,
            truck_height_m=self.truck_height_m,
            truck_fraction=self.truck_fraction,
            building_nlos_probability=self.building_nlos_probability,
            shadowing=self.shadowing,
        )

    # -- formulas -------------------------------------------------------------------------------

    def los_path_loss_db(self, distance_3d_m) -> np.ndarray:
        raise NotImplementedError

    def nlos_path_loss_db(self, distance_3d_m) -> np.ndarray:
        d = np.maximum(np.asarray(distance_3d_m, dtype=float), self.min_distance_m)
        return 36.85 + 30.0 * np.log10(d) + 18.9 * np.log10(self.frequency_ghz)

    def los_probability(self, distance_2d_m) -> np.ndarray:
        raise NotImplementedError

    def median_path_loss_db(self, distance_m) -> np.ndarray:
        return self.los_path_loss_db(distance_m)

    @property
    def cutoff_shadowing_db(self) -> float:
        return SHADOWING_STD_DB[LOS] if self.shadowing else 0.0

    def reach_probability(self, distance_m) -> np.ndarray:
        """P(SNR >= cutoff SNR) at each distance, mixing LOS / NLOSv / NLOS by their
        probabilities; the NLOSv blockage is averaged by Gauss-Hermite quadrature, for antennas
        at 1.5 m (the channel's default height)."""
        d = np.maximum(np.asarray(distance_m, dtype=float), self.min_distance_m)
        max_loss = self.budget.max_path_loss_db(self.cutoff_snr_db())
        sd_los = SHADOWING_STD_DB[LOS] if self.shadowing else 0.0
        sd_nlos = SHADOWING_STD_DB[NLOS] if self.shadowing else 0.0
        p_nlos = self.building_nlos_probability
        p_los = (1.0 - p_nlos) * self.los_probability(d)
        p_nlosv = 1.0 - p_nlos - p_los
        los_loss = self.los_path_loss_db(d)
        reach_los = gaussian_cdf(max_loss - los_loss, sd_los)
        reach_nlos = gaussian_cdf(max_loss - self.nlos_path_loss_db(d), sd_nlos)
        h = DEFAULT_ANTENNA_HEIGHT_M
        reach_nlosv = np.zeros_like(d)
        for blocker, weight in ((self.blocker_height_m, 1.0 - self.truck_fraction), (self.truck_height_m, self.truck_fraction)):
            if weight <= 0.0:
                continue
            mean, std = blockage_loss_parameters(d, h, h, blocker)
            mean = np.broadcast_to(mean, d.shape)
            std = np.broadcast_to(std, d.shape)
            safe_mean = np.where(mean > 0, mean, 1.0)
            var_ln = np.log1p((std / safe_mean) ** 2)
            mu_ln = np.log(safe_mean) - 0.5 * var_ln

            def reach_given(z, mean=mean, mu_ln=mu_ln, var_ln=var_ln):
                blockage = np.where(mean > 0, np.exp(mu_ln + np.sqrt(var_ln) * z), 0.0)
                return gaussian_cdf(max_loss - los_loss - blockage, sd_los)

            reach_nlosv = reach_nlosv + weight * expect_over_normal(reach_given, 1.0, d)
        return p_los * reach_los + p_nlosv * reach_nlosv + p_nlos * reach_nlos

    # -- sampling -------------------------------------------------------------------------------

    def conditions_from_uniform(self, links: LinkBatch, u: np.ndarray) -> np.ndarray:
        """Channel condition per link from one uniform number in [0, 1) per link: NLOS below
        ``building_nlos_probability``, then LOS with the LOS probability of the 2-D distance,
        NLOSv above. A link whose uniform moves slowly (correlated over distance) keeps its
        state while its LOS probability changes little."""
        p_nlos = self.building_nlos_probability
        p_los = (1.0 - p_nlos) * self.los_probability(links.horizontal_distance_m)
        u = np.asarray(u, dtype=float)
        return np.where(u < p_nlos, NLOS, np.where(u < p_nlos + p_los, LOS, NLOSV)).astype(np.int8)

    def sample_conditions(self, links: LinkBatch, rng: np.random.Generator) -> np.ndarray:
        """Channel condition per link: :data:`LOS`, :data:`NLOSV` or :data:`NLOS` (one uniform each)."""
        return self.conditions_from_uniform(links, rng.random(len(links)))

    def path_loss_db(self, links: LinkBatch, conditions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Path loss for given conditions; draws shadowing, blocker type and blockage for every link."""
        n = len(links)
        shadow_z = rng.standard_normal(n)
        truck_u = rng.random(n)
        blockage_z = rng.standard_normal(n)
        return self._path_loss(links, conditions, shadow_z, truck_u, blockage_z)

    def _path_loss(self, links, conditions, shadow_z, truck_u, blockage_z) -> np.ndarray:
        d = self._distance(links)
        los = self.los_path_loss_db(d)
        loss = np.where(conditions == NLOS, self.nlos_path_loss_db(d), los)
        blocker = np.where(truck_u < self.truck_fraction, self.truck_height_m, self.blocker_height_m)
        mean, std = blockage_loss_parameters(d, links.tx_height_m, links.rx_height_m, blocker)
        with np.errstate(divide="ignore", invalid="ignore"):
            var_ln = np.log1p(np.where(mean > 0, (std / np.where(mean > 0, mean, 1.0)) ** 2, 0.0))
            mu_ln = np.log(np.where(mean > 0, mean, 1.0)) - 0.5 * var_ln
        blockage = np.where(mean > 0, np.exp(mu_ln + np.sqrt(var_ln) * blockage_z), 0.0)
        loss = loss + np.where(conditions == NLOSV, blockage, 0.0)
        if self.shadowing:
            sigma = np.where(conditions == NLOS, SHADOWING_STD_DB[NLOS], SHADOWING_STD_DB[LOS])
            loss = loss + sigma * shadow_z
        return loss

    def sample_path_loss_db(self, links: LinkBatch, rng: np.random.Generator) -> np.ndarray:
        return self.path_loss_db(links, self.sample_conditions(links, rng), rng)

    @property
    def random_terms(self) -> int:
        """Four normals per link: channel condition, shadowing, blocker type, blockage loss."""
        return 4

    def path_loss_from_normals_db(self, links: LinkBatch, normals: np.ndarray) -> np.ndarray:
        """Path loss from four standard normals per link (columns): the condition's uniform is
        Phi(z0) (:meth:`conditions_from_uniform`), the shadowing z1, the blocker type's uniform
        Phi(z2), the blockage normal z3; the same mapping as :meth:`sample_path_loss_db`."""
        z = np.asarray(normals, dtype=float)
        conditions = self.conditions_from_uniform(links, ndtr(z[:, 0]))
        return self._path_loss(links, conditions, z[:, 1], ndtr(z[:, 2]), z[:, 3])


class Tr37885Highway(Tr37885):
    __doc__ = "3GPP TR 37.885 V2V highway. " + (Tr37885.__doc__ or "")
    name = "tr37885_highway"
    scenario = "highway"

    def los_path_loss_db(self, distance_3d_m) -> np.ndarray:
        d = np.maximum(np.asarray(distance_3d_m, dtype=float), self.min_distance_m)
        return 32.4 + 20.0 * np.log10(d) + 20.0 * np.log10(self.frequency_ghz)

    def los_probability(self, distance_2d_m) -> np.ndarray:
        return highway_los_probability(distance_2d_m)


class Tr37885Urban(Tr37885):
    __doc__ = "3GPP TR 37.885 V2V urban. " + (Tr37885.__doc__ or "")
    name = "tr37885_urban"
    scenario = "urban"
    default_decorrelation_distance_m = 10.0  # 3GPP TR 36.885 / TR 37.885 urban V2V shadowing

    def los_path_loss_db(self, distance_3d_m) -> np.ndarray:
        d = np.maximum(np.asarray(distance_3d_m, dtype=float), self.min_distance_m)
        return 38.77 + 16.7 * np.log10(d) + 18.2 * np.log10(self.frequency_ghz)

    def los_probability(self, distance_2d_m) -> np.ndarray:
        return urban_los_probability(distance_2d_m)
