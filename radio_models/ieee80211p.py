"""IEEE 802.11p (OFDM, 10 MHz channels at 5.9 GHz): MCS table and frame airtime.

Source: IEEE Std 802.11-2016, clause 17 (OFDM PHY), 10 MHz channel spacing: 8 us OFDM symbols,
32 us preamble + 8 us SIGNAL field = 40 us, 16 SERVICE bits and 6 tail bits before padding to
whole symbols. Rates 3 ... 27 Mb/s (REFERENCE.md §5).

Note: REFERENCE.md writes N_DBPS = 4 us * rate, which is the 20 MHz (802.11a) symbol; at
10 MHz the symbol lasts 8 us, so N_DBPS = 8 us * rate (48 at 6 Mb/s). Only that value gives the
reference airtime of 2048 us for 1500 bytes at 6 Mb/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Mcs",
    "MCS_TABLE",
    "RATES_MBPS",
    "SYMBOL_DURATION_S",
    "PREAMBLE_AND_SIGNAL_S",
    "SERVICE_BITS",
    "TAIL_BITS",
    "SIGNAL_FIELD_BITS",
    "mcs_for_rate",
    "frame_airtime_s",
]

SYMBOL_DURATION_S = 8e-6
PREAMBLE_AND_SIGNAL_S = 40e-6
SERVICE_BITS = 16
TAIL_BITS = 6
SIGNAL_FIELD_BITS = 24
"""PLCP SIGNAL field: 24 bits sent at BPSK 1/2 (the header of Veins' ``Decider80211p``)."""


@dataclass(frozen=True)
class Mcs:
    """One modulation and coding scheme of 802.11p at 10 MHz."""

    rate_mbps: float
    modulation: str  # "bpsk" | "qpsk" | "16qam" | "64qam"
    code_rate: str  # "1/2" | "2/3" | "3/4"
    data_bits_per_symbol: int  # N_DBPS

    @property
    def rate_bps(self) -> float:
        return self.rate_mbps * 1e6


MCS_TABLE: dict[float, Mcs] = {
    m.rate_mbps: m
    for m in (
        Mcs(3.0, "bpsk", "1/2", 24),
        Mcs(4.5, "bpsk", "3/4", 36),
        Mcs(6.0, "qpsk", "1/2", 48),
        Mcs(9.0, "qpsk", "3/4", 72),
        Mcs(12.0, "16qam", "1/2", 96),
        Mcs(18.0, "16qam", "3/4", 144),
        Mcs(24.0, "64qam", "2/3", 192),
        Mcs(27.0, "64qam", "3/4", 216),
    )
}
RATES_MBPS: tuple[float, ...] = tuple(MCS_TABLE)


def mcs_for_rate(rate_mbps: float) -> Mcs:
    """The MCS of an 802.11p rate in Mb/s; ValueError listing the rates for anything else."""
    try:
        return MCS_TABLE[float(rate_mbps)]
    except (KeyError, TypeError, ValueError):
        rates = ", ".join(f"{r:g}" for r in RATES_MBPS)
        raise ValueError(f"not an 802.11p (10 MHz) rate: {rate_mbps!r} Mb/s; rates are {rates}") from None


def frame_airtime_s(psdu_bytes, rate_mbps: float = 6.0):
    """Airtime in seconds of a PSDU of ``psdu_bytes`` bytes at ``rate_mbps`` (vectorised).

    airtime = 40 us + 8 us * ceil((16 + 6 + 8 L) / N_DBPS). 1500 B at 6 Mb/s: 2048 us.
    """
    mcs = mcs_for_rate(rate_mbps)
    length = np.asarray(psdu_bytes)
    if np.any(length < 0):
        raise ValueError("psdu_bytes must be >= 0")
    symbols = np.ceil((SERVICE_BITS + TAIL_BITS + 8 * length) / mcs.data_bits_per_symbol)
    airtime = PREAMBLE_AND_SIGNAL_S + SYMBOL_DURATION_S * symbols
    return float(airtime) if np.ndim(airtime) == 0 else airtime
