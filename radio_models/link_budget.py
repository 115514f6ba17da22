"""Link budget and path-loss formulas (dB arithmetic, vectorised with numpy).

SNR = P_tx + G_tx + G_rx - PL - N, with the noise power N = -174 dBm/Hz (thermal noise density
at 290 K) + 10 log10(bandwidth) + noise figure, unless a noise floor is given directly.
Defaults: 20 dBm transmit power, 0 dBi antennas, 10 MHz (802.11p channel), noise figure 9 dB
(3GPP TR 37.885 UE noise figure) -> noise floor -95 dBm (docs/reference.md §5: about -95 to -98 dBm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _validation as check

__all__ = [
    "SPEED_OF_LIGHT_MPS",
    "THERMAL_NOISE_DBM_PER_HZ",
    "LinkBudget",
    "thermal_noise_dbm",
    "free_space_path_loss_db",
    "log_distance_path_loss_db",
    "db_to_linear",
    "linear_to_db",
]

SPEED_OF_LIGHT_MPS = 299_792_458.0
THERMAL_NOISE_DBM_PER_HZ = 10.0 * np.log10(1.380649e-23 * 290.0 * 1e3)  # -173.98 dBm/Hz


def db_to_linear(x_db):
    return np.power(10.0, np.asarray(x_db, dtype=float) / 10.0)


def linear_to_db(x):
    return 10.0 * np.log10(np.asarray(x, dtype=float))


def thermal_noise_dbm(bandwidth_hz: float, noise_figure_db: float = 0.0) -> float:
    """Thermal noise power in dBm over ``bandwidth_hz`` plus the receiver noise figure."""
    return float(THERMAL_NOISE_DBM_PER_HZ + 10.0 * np.log10(bandwidth_hz) + noise_figure_db)


def free_space_path_loss_db(distance_m, frequency_hz: float):
    """Friis free-space path loss 20 log10(4 pi d f / c) in dB (87.86 dB at 100 m, 5.9 GHz)."""
    d = np.asarray(distance_m, dtype=float)
    return 20.0 * np.log10(4.0 * np.pi * d * frequency_hz / SPEED_OF_LIGHT_MPS)


def log_distance_path_loss_db(distance_m, exponent: float, reference_loss_db: float, reference_distance_m: float = 1.0):
    """PL0 + 10 n log10(d / d0) in dB (ns-3 defaults n=3, d0=1 m, PL0=46.6777 dB: 106.68 dB at 100 m)."""
    d = np.asarray(distance_m, dtype=float)
    return reference_loss_db + 10.0 * exponent * np.log10(d / reference_distance_m)


@dataclass(frozen=True)
class LinkBudget:
    """Transmit power, antenna gains and receiver noise: path loss in, SNR out.

    Attributes:
        tx_power_dbm: transmit power in dBm (default 20; docs/reference.md §5: 20-23 dBm).
        tx_antenna_gain_dbi, rx_antenna_gain_dbi: antenna gains in dBi (default 0).
        noise_figure_db: receiver noise figure in dB (default 9, 3GPP TR 37.885).
        bandwidth_hz: receiver bandwidth in Hz (default 10 MHz, the 802.11p channel).
        noise_floor_dbm: noise power in dBm; when given it replaces thermal noise + noise figure
            (e.g. -98 dBm, the Veins default ``noiseFloor``).
    """

    tx_power_dbm: float = 20.0
    tx_antenna_gain_dbi: float = 0.0
    rx_antenna_gain_dbi: float = 0.0
    noise_figure_db: float = 9.0
    bandwidth_hz: float = 10e6
    noise_floor_dbm: float | None = None
    model: str = field(default="link_budget", repr=False, compare=False)

    def __post_init__(self):
        m = self.model
        object.__setattr__(self, "tx_power_dbm", check.number(m, "tx_power_dbm", self.tx_power_dbm, ge=-50, le=60))
        object.__setattr__(
            self, "tx_antenna_gain_dbi", check.number(m, "tx_antenna_gain_dbi", self.tx_antenna_gain_dbi, ge=-30, le=40)
        )
        object.__setattr__(
            self, "rx_antenna_gain_dbi", check.number(m, "rx_antenna_gain_dbi", self.rx_antenna_gain_dbi, ge=-30, le=40)
        )
        object.__setattr__(self, "noise_figure_db", check.number(m, "noise_figure_db", self.noise_figure_db, ge=0, le=30))
        object.__setattr__(self, "bandwidth_hz", check.number(m, "bandwidth_hz", self.bandwidth_hz, gt=0))
        object.__setattr__(
            self,
            "noise_floor_dbm",
            check.number(m, "noise_floor_dbm", self.noise_floor_dbm, ge=-200, le=0, allow_none=True),
        )

    @property
    def noise_dbm(self) -> float:
        """Noise power in dBm (-94.98 dBm with the defaults)."""
        if self.noise_floor_dbm is not None:
            return self.noise_floor_dbm
        return thermal_noise_dbm(self.bandwidth_hz, self.noise_figure_db)

    @property
    def eirp_plus_rx_gain_dbm(self) -> float:
        return self.tx_power_dbm + self.tx_antenna_gain_dbi + self.rx_antenna_gain_dbi

    def snr_db(self, path_loss_db):
        """SNR in dB for path losses in dB (vectorised)."""
        return self.eirp_plus_rx_gain_dbm - np.asarray(path_loss_db, dtype=float) - self.noise_dbm

    def max_path_loss_db(self, snr_db: float) -> float:
        """The path loss at which the SNR equals ``snr_db``."""
        return self.eirp_plus_rx_gain_dbm - self.noise_dbm - snr_db
