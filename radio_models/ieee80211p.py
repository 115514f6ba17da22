"""IEEE 802.11p (OFDM, 10 MHz channels at 5.9 GHz): MCS table and frame airtime.

Source: IEEE Std 802.11-2016, clause 17 (OFDM PHY), 10 MHz channel spacing: 8 us OFDM symbols,
32 us preamble + 8 us SIGNAL field = 40 us, 16 SERVICE bits and 6 tail bits before padding to
whole symbols. Rates 3 ... 27 Mb/s (docs/reference.md §5).

Note: N_DBPS = 4 us * rate would be the 20 MHz (802.11a) symbol; at 10 MHz the symbol lasts
8 us, so N_DBPS = 8 us * rate (48 at 6 Mb/s), as docs/reference.md §5 writes. Only that value
gives the reference airtime of 2048 us for 1500 bytes at 6 Mb/s.
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
    "ofdm_airtime_s",
    "ack_rate_bps",
    "aifs_s",
    "SLOT_S",
    "SIFS_S",
    "ACK_BYTES",
    "CW_MIN",
    "CW_MAX",
    "EDCA_OCB",
    "ACCESS_CATEGORIES",
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


# ---------------------------------------------------------------- MAC timing (802.11p, OCB)

SLOT_S = 13e-6
"""aSlotTime of the OFDM PHY at 10 MHz channel spacing (IEEE Std 802.11-2016, clause 17)."""
SIFS_S = 32e-6
"""aSIFSTime at 10 MHz."""
ACK_BYTES = 14
"""ACK frame: frame control 2 + duration 2 + RA 6 + FCS 4."""
CW_MIN = 15
CW_MAX = 1023
MANDATORY_RATES_MBPS = (3.0, 6.0, 12.0)

EDCA_OCB: dict[str, tuple[int, int, int]] = {
    # access category: (AIFSN, CWmin, CWmax), the default EDCA parameter set of a STA with
    # dot11OCBActivated (IEEE Std 802.11-2016, EDCA parameter set for dot11OCBActivated; the values of Veins Mac1609_4):
    "AC_BK": (9, CW_MIN, CW_MAX),
    "AC_BE": (6, CW_MIN, CW_MAX),
    "AC_VI": (3, (CW_MIN + 1) // 2 - 1, CW_MIN),
    "AC_VO": (2, (CW_MIN + 1) // 4 - 1, (CW_MIN + 1) // 2 - 1),
}
ACCESS_CATEGORIES: tuple[str, ...] = ("AC_BK", "AC_BE", "AC_VI", "AC_VO")
"""In increasing priority (an internal collision is won by the higher one)."""


def aifs_s(aifsn: int) -> float:
    """AIFS[AC] = SIFS + AIFSN x slot (58 us for AIFSN 2, 149 us for AIFSN 9)."""
    return SIFS_S + aifsn * SLOT_S


def ofdm_airtime_s(psdu_bytes, rate_bps: float):
    """PPDU airtime at any rate: the 802.11p formula with N_DBPS = 8 us x rate.

    Equals :func:`frame_airtime_s` at the 802.11p rates; other rates (plug-in radio models may
    return any rate) get the same formula with a fractional N_DBPS (vectorised in ``psdu_bytes``).
    """
    length = np.asarray(psdu_bytes, dtype=float)
    if np.any(length < 0):
        raise ValueError("psdu_bytes must be >= 0")
    if not rate_bps > 0:
        raise ValueError(f"rate_bps must be > 0; got {rate_bps!r}")
    n_dbps = SYMBOL_DURATION_S * float(rate_bps)
    if abs(n_dbps - round(n_dbps)) < 1e-9:
        n_dbps = float(round(n_dbps))
    symbols = np.ceil((SERVICE_BITS + TAIL_BITS + 8 * length) / n_dbps - 1e-12)
    airtime = PREAMBLE_AND_SIGNAL_S + SYMBOL_DURATION_S * symbols
    return float(airtime) if np.ndim(airtime) == 0 else airtime


def ack_rate_bps(data_rate_bps: float) -> float:
    """Rate of the ACK to a frame sent at ``data_rate_bps``: the highest mandatory rate
    (3, 6, 12 Mb/s) not above the data rate; the data rate itself below 3 Mb/s."""
    rates = [r * 1e6 for r in MANDATORY_RATES_MBPS if r * 1e6 <= data_rate_bps + 1e-6]
    return max(rates) if rates else float(data_rate_bps)
