"""SNR -> packet success probability: an SNR threshold, or the NIST 802.11 error-rate model.

NIST error-rate model (Pei and Ferrari, "NIST OFDM error rate model", as implemented by ns-3
``NistErrorRateModel`` and by Veins ``NistErrorRate``; written here from the formulas):

- uncoded bit error probability over AWGN: BPSK 0.5 erfc(sqrt(s)), QPSK 0.5 erfc(sqrt(s / 2)),
  16-QAM 0.75 * 0.5 erfc(sqrt(s / 10)), 64-QAM 7/12 * 0.5 erfc(sqrt(s / 42)) (s = linear SNR);
- coded with the 802.11 convolutional code (K = 7) under hard-decision Viterbi decoding, the
  union bound P_e <= (1 / (2 b)) sum_d a_d D^d with the Bhattacharyya parameter
  D = sqrt(4 p (1 - p)) and the distance spectrum a_d of the rate-1/2 code and its punctured
  rate-2/3 (b = 2) and rate-3/4 (b = 3) versions (b = 1 for rate 1/2), clipped to 1;
- chunk success rate (1 - P_e)^bits.

As in Veins' ``Decider80211p``, a frame succeeds if its 24-bit SIGNAL field (BPSK 1/2) and its
data (16 SERVICE bits + payload + 6 tail bits, at the data MCS) both decode; the two are
independent. Reference value (docs/reference.md §5): 1000 bytes, QPSK 1/2, SNR 8 dB -> 0.9987
(0.99870 for the 8000 bits alone, 0.99869 with header, SERVICE and tail bits).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc

from .ieee80211p import MCS_TABLE, SERVICE_BITS, SIGNAL_FIELD_BITS, TAIL_BITS, Mcs, mcs_for_rate

__all__ = [
    "uncoded_bit_error_probability",
    "coded_bit_error_probability",
    "nist_chunk_success_probability",
    "nist_packet_success_probability",
    "nist_cutoff_snr_db",
    "ThresholdReception",
    "NistReception",
]

# Distance spectra (first exponent, step, coefficients) of the industry-standard K=7 code
# (generators 133, 171) and its punctured versions, as tabulated for the NIST model.
_SPECTRA: dict[str, tuple[int, int, int, tuple[float, ...]]] = {
    # code rate: (b, first exponent d_free, exponent step, a_d)
    "1/2": (1, 10, 2, (36.0, 211.0, 1404.0, 11633.0, 77433.0, 502690.0, 3322763.0, 21292910.0, 134365911.0)),
    "2/3": (
        2,
        6,
        1,
        (3.0, 70.0, 285.0, 1276.0, 6160.0, 27128.0, 117019.0, 498860.0, 2103891.0, 8784123.0),
    ),
    "3/4": (
        3,
        5,
        1,
        (42.0, 201.0, 1492.0, 10469.0, 62935.0, 379644.0, 2253373.0, 13073811.0, 75152755.0, 428005675.0),
    ),
}

_MODULATIONS = ("bpsk", "qpsk", "16qam", "64qam")


def uncoded_bit_error_probability(snr_linear, modulation: str):
    """AWGN bit error probability of ``modulation`` at linear SNR ``snr_linear`` (vectorised)."""
    s = np.maximum(np.asarray(snr_linear, dtype=float), 0.0)
    if modulation == "bpsk":
        return 0.5 * erfc(np.sqrt(s))
    if modulation == "qpsk":
        return 0.5 * erfc(np.sqrt(s / 2.0))
    if modulation == "16qam":
        return 0.75 * 0.5 * erfc(np.sqrt(s / 10.0))
    if modulation == "64qam":
        return 7.0 / 12.0 * 0.5 * erfc(np.sqrt(s / 42.0))
    raise ValueError(f"unknown modulation {modulation!r}; one of {', '.join(_MODULATIONS)}")


def coded_bit_error_probability(snr_linear, modulation: str, code_rate: str):
    """Union bound on the decoded bit error probability, clipped to [0, 1] (vectorised)."""
    if code_rate not in _SPECTRA:
        raise ValueError(f"unknown code rate {code_rate!r}; one of {', '.join(_SPECTRA)}")
    b, first, step, coefficients = _SPECTRA[code_rate]
    p = uncoded_bit_error_probability(snr_linear, modulation)
    d = np.sqrt(4.0 * p * (1.0 - p))
    # sum_k a_k D^(first + k step) = D^first * poly(D^step), evaluated with Horner's rule.
    ds = d**step
    poly = np.zeros_like(d)
    for a in reversed(coefficients):
        poly = poly * ds + a
    pe = poly * d**first / (2.0 * b)
    return np.clip(pe, 0.0, 1.0)


def nist_chunk_success_probability(snr_db, bits, mcs: Mcs):
    """(1 - P_e)^bits for ``bits`` bits sent with ``mcs`` at ``snr_db`` (broadcasting)."""
    pe = coded_bit_error_probability(np.power(10.0, np.asarray(snr_db, dtype=float) / 10.0), mcs.modulation, mcs.code_rate)
    bits = np.asarray(bits, dtype=float)
    with np.errstate(divide="ignore"):
        return np.exp(bits * np.log1p(-pe))


def nist_packet_success_probability(snr_db, payload_bits, rate_mbps: float = 6.0, *, phy_overhead: bool = True):
    """Success probability of a packet of ``payload_bits`` at ``snr_db`` and 802.11p ``rate_mbps``.

    With ``phy_overhead`` (default, as Veins) the data part includes 16 SERVICE + 6 tail bits
    and the 24-bit SIGNAL field must decode too (BPSK 1/2); without it, only the payload bits.
    Broadcasts ``snr_db`` against ``payload_bits``.
    """
    mcs = mcs_for_rate(rate_mbps)
    bits = np.asarray(payload_bits, dtype=float)
    if not phy_overhead:
        return nist_chunk_success_probability(snr_db, bits, mcs)
    data = nist_chunk_success_probability(snr_db, bits + SERVICE_BITS + TAIL_BITS, mcs)
    header = nist_chunk_success_probability(snr_db, SIGNAL_FIELD_BITS, MCS_TABLE[3.0])
    return data * header


def nist_cutoff_snr_db(rate_mbps: float, bit_error_probability: float = 1e-2) -> float:
    """SNR (dB) at which the decoded bit error probability of the rate's MCS reaches the target.

    Below it any packet of 64 bytes or more decodes with probability < 1 % (for the default
    target 1e-2): the SNR below which a link counts as out of reach.
    """
    mcs = mcs_for_rate(rate_mbps)
    lo, hi = -30.0, 60.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        pe = coded_bit_error_probability(10.0 ** (mid / 10.0), mcs.modulation, mcs.code_rate)
        if pe > bit_error_probability:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


class ThresholdReception:
    """A packet succeeds iff SNR >= ``threshold_db``, whatever its size."""

    kind = "threshold"

    def __init__(self, threshold_db: float):
        self.threshold_db = float(threshold_db)

    @property
    def cutoff_snr_db(self) -> float:
        return self.threshold_db

    def success(self, snr_db: np.ndarray, packet_bits: np.ndarray) -> np.ndarray:
        """(E, K) success probabilities for SNRs (E,) and sizes (K,)."""
        ok = (np.asarray(snr_db, dtype=float) >= self.threshold_db).astype(float)
        return np.repeat(ok[:, None], np.size(packet_bits), axis=1)


class NistReception:
    """Veins-style NIST error-rate reception at a fixed 802.11p rate."""

    kind = "nist"

    def __init__(self, rate_mbps: float = 6.0):
        self.mcs = mcs_for_rate(rate_mbps)
        self._cutoff = nist_cutoff_snr_db(rate_mbps)

    @property
    def cutoff_snr_db(self) -> float:
        return self._cutoff

    def success(self, snr_db: np.ndarray, packet_bits: np.ndarray) -> np.ndarray:
        snr = np.asarray(snr_db, dtype=float)[:, None]
        bits = np.asarray(packet_bits, dtype=float)[None, :]
        return nist_packet_success_probability(snr, bits, self.mcs.rate_mbps)
