"""C-V2X sidelink physical layer numbers: resource grids, MCS and TBS tables, BLER curves.

Pure numpy/scipy, used by the sidelink medium (``cosim.channel.sidelink``); every number cites
its 3GPP clause.

LTE-V2X (Release 14, PC5 sidelink transmission mode 4):

- 1 ms subframes, 15 kHz sub-carriers; 50 resource blocks (RBs) in 10 MHz, 100 in 20 MHz
  (TS 36.101 Table 5.6-1).
- A transmission takes ``L`` adjacent sub-channels of one subframe; its PSCCH (the SCI) takes
  the 2 lowest RBs of the first one, the PSSCH the rest (TS 36.213 §14.1.1.4C, adjacent
  PSCCH/PSSCH). The PSSCH is DFT-spread like the PUSCH, so it takes a number of PRBs that is
  2^a 3^b 5^c (TS 36.211 §5.3.3 / §9.3): the largest such number not above the RBs left.
- MCS index -> (modulation order Q_m, TBS index I_TBS): TS 36.213 Table 8.6.1-1 (used for the
  PSSCH by TS 36.213 §14.1.1); 64QAM (MCS 21..28) is a Release-15 addition.
- TBS from TS 36.213 Table 7.1.7.2.1-1, kept here for the PRB counts a PSSCH can have
  (2^a 3^b 5^c up to 100).
- A PSSCH PRB carries 12 sub-carriers x 9 data symbols = 108 resource elements (14 SC-FDMA
  symbols, 4 DMRS, the last one a guard: TS 36.211 §9.8).

NR-V2X (Release 16, sidelink resource allocation mode 2):

- slots of 14 symbols, 1 ms x 15 kHz / SCS; RBs per bandwidth and SCS from TS 38.101-1
  Table 5.3.2-1 (10 MHz: 52 at 15 kHz, 24 at 30 kHz; 20 MHz: 106 and 51).
- MCS index -> (Q_m, target code rate R x 1024): TS 38.214 Table 5.1.3.1-1 (the 64QAM table,
  the default for the PSSCH, TS 38.214 §8.1.3.1).
- TBS: TS 38.214 §8.1.3.2 (resource elements) with steps 2-4 of §5.1.3.2 (quantisation and
  Table 5.1.3.2-1). N'_RE = 12 (N_symb^sh - N_symb^PSFCH) - N_oh - N_RE^DMRS with
  N_symb^sh = sl-LengthSymbols - 2 = 12, no PSFCH (blind retransmissions, no HARQ feedback),
  N_oh = 0 and N_RE^DMRS = 18 (three DMRS symbols, Table 8.1.3.2-1); N_RE = N'_RE n_PRB minus
  the REs of the PSCCH (sl-FreqResourcePSCCH RBs x 2 symbols x 12) and of the 2nd-stage SCI
  (SCI format 2-A, 35 bits + 24 CRC bits at QPSK and the PSSCH code rate with
  beta_offset = 1, TS 38.212 §8.4.4 without its alpha cap and gamma padding).

Reception (the physical-layer abstraction of system-level simulators): a transport block (TB)
is decided on its SINR through a BLER-vs-SINR curve. Three abstractions:

- ``threshold``: success iff SINR >= gamma_th, gamma_th = 10 log10(2^eta - 1) + an
  implementation loss, eta = TBS / data resource elements (bits per RE): Shannon's capacity
  with a loss, as WiLabV2Xsim's default abstraction (Todisco et al., IEEE Access 2021).
- ``bler``: BLER(gamma) = 1 - Phi((gamma - gamma_th) / sigma) in dB, the same gamma_th as its
  50 % point. The default loss (3 dB) and sigma (2.6 dB) fit the 3GPP link curve of a 190-byte
  QPSK r = 0.7 TB at 280 km/h relative speed (R1-160284, as used by Gonzalez-Martin et al.):
  the fitted curve is within 0.02 of it between 2 and 10 dB.
- ``table``: a tabulated curve, interpolated linearly in BLER over SINR in dB as Gonzalez-Martin
  et al. do; :data:`R1_160284_CURVES` holds the two 190-byte curves of their paper.

In-band emission (optional in the medium): a transmitter leaks power into the RBs it does not
occupy, by the UE's in-band emission requirement (:func:`in_band_emission`), so a strong
transmission on one sub-channel interferes with weak ones on the others of the same slot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

__all__ = [
    "THERMAL_NOISE_DBM_PER_HZ",
    "RB_SUBCARRIERS",
    "LTE_N_RB",
    "LTE_PSCCH_RB",
    "LTE_PSSCH_RE_PER_PRB",
    "LTE_TBS_PRB",
    "NR_N_RB",
    "NR_MCS_TABLE",
    "NR_TBS_TABLE",
    "R1_160284_CURVES",
    "dft_prb_count",
    "lte_mcs",
    "lte_tbs",
    "nr_mcs",
    "nr_tbs",
    "nr_pssch_re",
    "noise_dbm",
    "shannon_threshold_db",
    "EVM_BY_MODULATION",
    "IBE_RELAXATION_DB",
    "in_band_emission",
    "BlerCurve",
    "ThresholdCurve",
    "ProbitCurve",
    "TableCurve",
]

THERMAL_NOISE_DBM_PER_HZ = 10.0 * math.log10(1.380649e-23 * 290.0 * 1e3)  # -173.98 dBm/Hz
RB_SUBCARRIERS = 12

# ------------------------------------------------------------------------------------- LTE

LTE_N_RB = {10: 50, 20: 100}
"""Resource blocks per channel bandwidth in MHz (TS 36.101 Table 5.6-1)."""

LTE_PSCCH_RB = 2
"""RBs of the PSCCH, the lowest of the first sub-channel (TS 36.213 §14.1.1.4C, adjacent)."""

LTE_PSSCH_RE_PER_PRB = RB_SUBCARRIERS * 9
"""Data REs per PSSCH PRB: 14 symbols - 4 DMRS - 1 guard = 9, times 12 sub-carriers."""

LTE_TBS_PRB = (1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 24, 25, 27, 30, 32, 36, 40, 45, 48,
               50, 54, 60, 64, 72, 75, 80, 81, 90, 96, 100)
"""PRB counts of the form 2^a 3^b 5^c up to 100: the columns of :data:`_LTE_TBS` kept here."""

# TS 36.213 Table 7.1.7.2.1-1, the columns N_PRB in LTE_TBS_PRB; one row per N_PRB, I_TBS 0..26.
# (The standard's cell I_TBS = 6, N_PRB = 1 is 328, out of line with its row; kept as written.)
_LTE_TBS_ROWS = (
    (16, 24, 32, 40, 56, 72, 328, 104, 120, 136, 144, 176, 208, 224, 256, 280, 328, 336, 376, 408, 440, 488, 520, 552, 584, 616, 712),
    (32, 56, 72, 104, 120, 144, 176, 224, 256, 296, 328, 376, 440, 488, 552, 600, 632, 696, 776, 840, 904, 1000, 1064, 1128, 1192, 1256, 1480),
    (56, 88, 144, 176, 208, 224, 256, 328, 392, 456, 504, 584, 680, 744, 840, 904, 968, 1064, 1160, 1288, 1384, 1480, 1608, 1736, 1800, 1864, 2216),
    (88, 144, 176, 208, 256, 328, 392, 472, 536, 616, 680, 776, 904, 1000, 1128, 1224, 1288, 1416, 1544, 1736, 1864, 1992, 2152, 2280, 2408, 2536, 2984),
    (120, 176, 208, 256, 328, 424, 504, 584, 680, 776, 872, 1000, 1128, 1256, 1416, 1544, 1608, 1800, 1992, 2152, 2344, 2472, 2664, 2856, 2984, 3112, 3752),
    (152, 208, 256, 328, 408, 504, 600, 712, 808, 936, 1032, 1192, 1352, 1544, 1736, 1800, 1928, 2152, 2344, 2600, 2792, 2984, 3240, 3496, 3624, 3752, 4392),
    (208, 256, 328, 440, 552, 680, 808, 968, 1096, 1256, 1384, 1608, 1800, 2024, 2280, 2472, 2600, 2856, 3112, 3496, 3752, 4008, 4264, 4584, 4968, 5160, 5992),
    (224, 328, 376, 504, 632, 776, 936, 1096, 1256, 1416, 1544, 1800, 2024, 2280, 2600, 2728, 2984, 3240, 3624, 3880, 4136, 4584, 4776, 5160, 5544, 5736, 6712),
    (256, 344, 424, 568, 696, 872, 1032, 1224, 1384, 1544, 1736, 2024, 2280, 2536, 2856, 3112, 3240, 3624, 4008, 4264, 4584, 4968, 5352, 5736, 5992, 6200, 7480),
    (328, 424, 520, 680, 840, 1032, 1224, 1480, 1672, 1864, 2088, 2408, 2728, 3112, 3496, 3624, 3880, 4392, 4776, 5160, 5544, 5992, 6456, 6968, 7224, 7480, 8760),
    (392, 520, 648, 872, 1064, 1320, 1544, 1800, 2088, 2344, 2664, 2984, 3368, 3880, 4264, 4584, 4968, 5352, 5992, 6456, 6968, 7480, 7992, 8504, 9144, 9528, 11064),
    (424, 568, 696, 904, 1128, 1384, 1672, 1928, 2216, 2536, 2792, 3240, 3624, 4136, 4584, 4968, 5160, 5736, 6200, 6968, 7480, 7992, 8504, 9144, 9912, 10296, 11832),
    (488, 632, 776, 1032, 1288, 1544, 1864, 2216, 2536, 2856, 3112, 3624, 4136, 4584, 5160, 5544, 5992, 6456, 7224, 7736, 8248, 9144, 9528, 10296, 11064, 11448, 13536),
    (536, 712, 872, 1160, 1416, 1736, 2088, 2472, 2792, 3112, 3496, 4008, 4584, 5160, 5736, 6200, 6456, 7224, 7992, 8504, 9144, 9912, 10680, 11448, 12216, 12576, 14688),
    (648, 872, 1064, 1384, 1736, 2088, 2472, 2984, 3368, 3752, 4264, 4776, 5544, 6200, 6968, 7224, 7736, 8760, 9528, 10296, 11064, 12216, 12960, 13536, 14688, 15264, 17568),
    (680, 904, 1096, 1416, 1800, 2216, 2600, 3112, 3496, 4008, 4392, 4968, 5736, 6456, 7224, 7736, 7992, 9144, 9912, 10680, 11448, 12576, 13536, 14112, 15264, 15840, 18336),
    (744, 968, 1192, 1544, 1928, 2344, 2792, 3368, 3752, 4264, 4776, 5544, 6200, 6968, 7736, 8248, 8760, 9912, 10680, 11448, 12576, 13536, 14688, 15264, 16416, 16992, 19848),
    (808, 1064, 1320, 1736, 2152, 2664, 3112, 3624, 4264, 4776, 5352, 5992, 6712, 7736, 8504, 9144, 9912, 10680, 11832, 12960, 14112, 15264, 16416, 16992, 18336, 19080, 22152),
    (872, 1160, 1416, 1864, 2280, 2792, 3368, 3880, 4584, 5160, 5736, 6456, 7224, 8248, 9144, 9912, 10296, 11448, 12576, 13536, 14688, 15840, 16992, 18336, 19848, 20616, 23688),
    (1000, 1288, 1608, 2088, 2600, 3112, 3752, 4392, 4968, 5736, 6200, 7224, 8248, 9144, 10296, 11064, 11832, 12960, 14112, 15264, 16992, 18336, 19080, 20616, 22152, 22920, 26416),
    (1096, 1416, 1800, 2344, 2856, 3496, 4136, 4968, 5544, 6200, 6968, 7992, 9144, 10296, 11448, 12216, 12960, 14688, 15840, 16992, 18336, 19848, 21384, 22920, 24496, 25456, 29296),
    (1256, 1608, 2024, 2600, 3240, 4008, 4776, 5544, 6200, 6968, 7992, 9144, 10296, 11448, 12960, 13536, 14688, 16416, 17568, 19080, 20616, 22920, 24496, 25456, 27376, 28336, 32856),
    (1320, 1736, 2152, 2792, 3496, 4264, 4968, 5992, 6712, 7480, 8504, 9528, 11064, 12216, 13536, 14688, 15840, 17568, 19080, 20616, 22152, 24496, 25456, 27376, 29296, 30576, 35160),
    (1384, 1800, 2216, 2856, 3624, 4392, 5160, 6200, 6968, 7992, 8760, 9912, 11448, 12960, 14112, 15264, 16416, 18336, 19848, 21384, 22920, 25456, 27376, 28336, 30576, 31704, 36696),
    (1480, 1992, 2408, 3112, 3880, 4776, 5736, 6712, 7480, 8504, 9528, 11064, 12216, 14112, 15264, 16416, 17568, 19848, 21384, 22920, 25456, 27376, 29296, 30576, 32856, 34008, 40576),
    (1672, 2152, 2664, 3496, 4264, 5352, 6200, 7224, 8504, 9528, 10680, 12216, 13536, 15264, 16992, 18336, 19848, 21384, 23688, 25456, 28336, 30576, 32856, 34008, 36696, 37888, 43816),
    (1800, 2344, 2856, 3752, 4584, 5736, 6712, 7736, 9144, 10296, 11448, 12960, 14688, 16416, 18336, 19848, 20616, 22920, 25456, 27376, 29296, 31704, 34008, 36696, 39232, 40576, 46888),
    (1992, 2600, 3240, 4264, 5160, 6200, 7480, 8760, 9912, 11448, 12576, 14688, 16416, 18336, 20616, 22152, 23688, 26416, 28336, 30576, 34008, 36696, 39232, 40576, 43816, 45352, 52752),
    (2088, 2728, 3368, 4392, 5352, 6712, 7736, 9144, 10680, 11832, 12960, 15264, 16992, 19080, 21384, 22920, 24496, 27376, 29296, 32856, 35160, 37888, 40576, 43816, 45352, 46888, 55056),
    (2216, 2856, 3624, 4776, 5736, 6968, 8248, 9912, 11064, 12576, 14112, 16416, 18336, 20616, 22920, 24496, 26416, 29296, 31704, 34008, 36696, 40576, 43816, 45352, 48936, 51024, 59256),
    (2280, 2984, 3624, 4776, 5736, 7224, 8504, 9912, 11448, 12960, 14112, 16416, 18336, 20616, 22920, 24496, 26416, 29296, 31704, 35160, 37888, 40576, 43816, 46888, 48936, 51024, 59256),
    (2536, 3240, 4008, 5352, 6456, 7992, 9528, 11064, 12576, 14112, 15840, 18336, 20616, 22920, 25456, 27376, 29296, 32856, 35160, 39232, 42368, 45352, 48936, 51024, 55056, 57336, 66592),
    (2664, 3496, 4264, 5544, 6968, 8504, 9912, 11832, 13536, 15264, 16992, 19080, 22152, 24496, 27376, 29296, 31704, 35160, 37888, 40576, 45352, 48936, 51024, 55056, 59256, 61664, 71112),
    (2792, 3624, 4584, 5736, 7224, 8760, 10296, 12216, 14112, 15840, 17568, 19848, 22920, 25456, 28336, 30576, 32856, 36696, 39232, 43816, 46888, 51024, 55056, 57336, 61664, 63776, 75376),
)
_LTE_TBS = {prb: row for prb, row in zip(LTE_TBS_PRB, _LTE_TBS_ROWS)}


def dft_prb_count(max_prb: int) -> int:
    """The largest PRB count of the form 2^a 3^b 5^c not above ``max_prb`` (0 if below 1):
    the PRBs a DFT-spread PSSCH can take (TS 36.211 §5.3.3)."""
    best = 0
    for n in LTE_TBS_PRB:
        if n <= max_prb:
            best = n
    if max_prb > LTE_TBS_PRB[-1]:
        raise ValueError(f"more than {LTE_TBS_PRB[-1]} PRBs ({max_prb}) is beyond the 20 MHz LTE carrier")
    return best


def lte_mcs(mcs: int) -> tuple[int, int]:
    """(Q_m, I_TBS) of PSSCH MCS index ``mcs`` (TS 36.213 Table 8.6.1-1, MCS 0..28)."""
    mcs = int(mcs)
    if not 0 <= mcs <= 28:
        raise ValueError(f"LTE MCS must be in [0, 28]; got {mcs}")
    if mcs <= 10:
        return 2, mcs
    if mcs <= 20:
        return 4, mcs - 1
    return 6, mcs - 2


def lte_tbs(i_tbs: int, n_prb: int) -> int:
    """Transport block size in bits (TS 36.213 Table 7.1.7.2.1-1) for a 2^a 3^b 5^c PRB count."""
    if not 0 <= int(i_tbs) <= 26:
        raise ValueError(f"I_TBS must be in [0, 26]; got {i_tbs}")
    row = _LTE_TBS.get(int(n_prb))
    if row is None:
        raise ValueError(f"N_PRB {n_prb} is not a PSSCH PRB count (2^a 3^b 5^c up to 100)")
    return int(row[int(i_tbs)])


# -------------------------------------------------------------------------------------- NR

NR_N_RB = {(10, 15): 52, (20, 15): 106, (10, 30): 24, (20, 30): 51, (10, 60): 11, (20, 60): 24}
"""Resource blocks per (bandwidth MHz, SCS kHz): TS 38.101-1 Table 5.3.2-1."""

NR_MCS_TABLE = (
    (2, 120), (2, 157), (2, 193), (2, 251), (2, 308), (2, 379), (2, 449), (2, 526), (2, 602), (2, 679),
    (4, 340), (4, 378), (4, 434), (4, 490), (4, 553), (4, 616), (4, 658),
    (6, 438), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666), (6, 719), (6, 772), (6, 822), (6, 873), (6, 910),
    (6, 948),
)
"""(Q_m, R x 1024) of MCS 0..28: TS 38.214 Table 5.1.3.1-1."""

NR_TBS_TABLE = (
    24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 168, 176, 184,
    192, 208, 224, 240, 256, 272, 288, 304, 320, 336, 352, 368, 384, 408, 432, 456, 480, 504, 528,
    552, 576, 608, 640, 672, 704, 736, 768, 808, 848, 888, 928, 984, 1032, 1064, 1128, 1160, 1192,
    1224, 1256, 1288, 1320, 1352, 1416, 1480, 1544, 1608, 1672, 1736, 1800, 1864, 1928, 2024, 2088,
    2152, 2216, 2280, 2408, 2472, 2536, 2600, 2664, 2728, 2792, 2856, 2976, 3104, 3240, 3368, 3496,
    3624, 3752, 3824,
)
"""TBS for N_info <= 3824: TS 38.214 Table 5.1.3.2-1."""

NR_SCI2_BITS = 35 + 24
"""SCI format 2-A (HARQ process 4, NDI 1, RV 2, source ID 8, destination ID 16, HARQ feedback
1, cast type 2, CSI request 1 bits: TS 38.212 §8.4.1.2) plus its 24 CRC bits."""


def nr_mcs(mcs: int) -> tuple[int, float]:
    """(Q_m, target code rate R) of PSSCH MCS index ``mcs`` (TS 38.214 Table 5.1.3.1-1)."""
    mcs = int(mcs)
    if not 0 <= mcs <= 28:
        raise ValueError(f"NR MCS must be in [0, 28]; got {mcs}")
    qm, r1024 = NR_MCS_TABLE[mcs]
    return qm, r1024 / 1024.0


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def nr_tbs(n_re: int, code_rate: float, q_m: int, layers: int = 1) -> int:
    """Transport block size in bits from resource elements, rate, modulation and layers: steps
    2-4 of TS 38.214 §5.1.3.2 (ties of the round function go up, as the clause says)."""
    n_info = float(n_re) * float(code_rate) * int(q_m) * int(layers)
    if n_info <= 0:
        return 0
    if n_info <= 3824:
        n = max(3, math.floor(math.log2(n_info)) - 6)
        n_info_q = max(24, 2**n * math.floor(n_info / 2**n))
        for tbs in NR_TBS_TABLE:
            if tbs >= n_info_q:
                return tbs
        return NR_TBS_TABLE[-1]  # unreachable: n_info_q <= 3824
    n = math.floor(math.log2(n_info - 24)) - 5
    n_info_q = max(3840, 2**n * _round_half_up((n_info - 24) / 2**n))
    if code_rate <= 0.25:
        c = math.ceil((n_info_q + 24) / 3816)
        return 8 * c * math.ceil((n_info_q + 24) / (8 * c)) - 24
    if n_info_q > 8424:
        c = math.ceil((n_info_q + 24) / 8424)
        return 8 * c * math.ceil((n_info_q + 24) / (8 * c)) - 24
    return 8 * math.ceil((n_info_q + 24) / 8) - 24


def nr_pssch_re(n_prb: int, code_rate: float, *, pscch_rb: int = 10, pscch_symbols: int = 2,
                length_symbols: int = 14, dmrs_re_per_prb: int = 18) -> int:
    """PSSCH resource elements for the TBS (TS 38.214 §8.1.3.2): N'_RE n_PRB minus the PSCCH
    and 2nd-stage SCI REs (see the module docstring for the assumptions)."""
    n_re_prb = RB_SUBCARRIERS * (length_symbols - 2) - dmrs_re_per_prb
    n_re_prb = min(n_re_prb, 156)  # §5.1.3.2 step 1 cap, kept for the shared steps
    sci1 = pscch_rb * pscch_symbols * RB_SUBCARRIERS
    sci2 = math.ceil(NR_SCI2_BITS / (2 * float(code_rate)))  # QPSK, beta_offset 1
    return max(0, n_re_prb * int(n_prb) - sci1 - sci2)


# ------------------------------------------------------------------------------- reception


def noise_dbm(n_rb: int, scs_khz: float, noise_figure_db: float) -> float:
    """Thermal noise over ``n_rb`` resource blocks (12 sub-carriers of ``scs_khz`` each) plus the
    receiver noise figure, in dBm (10 RBs at 15 kHz, NF 9 dB: -102.45 dBm)."""
    bandwidth_hz = n_rb * RB_SUBCARRIERS * scs_khz * 1e3
    return THERMAL_NOISE_DBM_PER_HZ + 10.0 * math.log10(bandwidth_hz) + float(noise_figure_db)


def shannon_threshold_db(bits: int, resource_elements: int, implementation_loss_db: float = 0.0) -> float:
    """SINR in dB at which Shannon's capacity carries ``bits`` over ``resource_elements`` (one
    complex symbol each), plus an implementation loss: 10 log10(2^eta - 1) + loss."""
    if resource_elements <= 0:
        return math.inf
    eta = bits / resource_elements
    return 10.0 * math.log10(2.0**eta - 1.0) + float(implementation_loss_db)


EVM_BY_MODULATION = {2: 0.175, 4: 0.125, 6: 0.08, 8: 0.035}
"""Required EVM per modulation order Q_m: QPSK 17.5 %, 16QAM 12.5 %, 64QAM 8 % (TS 36.101
Table 6.5.2.1.1-1, TS 38.101-1 Table 6.4.2.1-1), 256QAM 3.5 % (TS 38.101-1)."""

IBE_RELAXATION_DB = {"lte_mode4": (3.0, 6.0, 3.0, 3.0), "nr_mode2": (0.0, 0.0, 0.0, 0.0)}
"""(W, X, Y, Z) in dB subtracted from the in-band emission requirement's terms (general EVM
term, general floor terms, IQ image, carrier leakage): LTE-V2X's evaluation methodology (3GPP
TR 36.885, the values WiLabV2Xsim uses) assumes transmitters that do this much better than the
minimum requirement; for NR the requirement of TS 38.101-1 is used as written (as WiLabV2Xsim
does)."""


def in_band_emission(n_rb: int, start: int, width: int, *, evm: float, tx_power_dbm: float,
                     scs_khz: float = 15.0, relaxation_db: Sequence[float] = (0.0, 0.0, 0.0, 0.0)) -> np.ndarray:
    """Emission of a transmission on RBs ``[start, start + width)`` of an ``n_rb``-RB carrier in
    every RB, relative to its power per allocated RB (1 on the allocated RBs), linear.

    The UE's in-band emission requirement (TS 36.101 Table 6.5.2.3.1-1; TS 38.101-1 Table
    6.4.2.3-1), each term lowered by the evaluation relaxation ``(W, X, Y, Z)``
    (:data:`IBE_RELAXATION_DB`), in an RB ``|Delta_RB|`` RBs from the allocation's nearest edge:

    - general: max{-25 - 10 log10(N_RB / L_CRB) - X, 20 log10(EVM) - 3 - 5 (|Delta_RB| - 1) / L_CRB
      - W, -57 + 10 log10(SCS / 15 kHz) - P_RB - X} dB, with L_CRB = ``width`` and P_RB the
      transmit power per allocated RB in dBm (the floor of -57 dBm per 180 kHz);
    - IQ image: -25 - Y dB in the RBs that mirror the allocation about the carrier's centre;
    - carrier leakage: -25 - Z dB in the centre RB (odd N_RB) or the two centre RBs (even).

    The three add up in an RB where several apply.
    """
    n_rb, start, width = int(n_rb), int(start), int(width)
    if not (width >= 1 and 0 <= start and start + width <= n_rb):
        raise ValueError(f"allocation [{start}, {start + width}) does not fit {n_rb} RBs")
    w, x, y, z = (float(v) for v in relaxation_db)
    rb = np.arange(n_rb)
    stop = start + width - 1
    delta = np.maximum(start - rb, rb - stop)  # >= 1 outside the allocation
    inside = delta <= 0
    p_rb_dbm = float(tx_power_dbm) - 10.0 * math.log10(width)
    general_db = np.maximum.reduce([
        np.full(n_rb, -25.0 - 10.0 * math.log10(n_rb / width) - x),
        20.0 * math.log10(evm) - 3.0 - 5.0 * (np.maximum(delta, 1) - 1) / width - w,
        np.full(n_rb, -57.0 + 10.0 * math.log10(scs_khz / 15.0) - p_rb_dbm - x),
    ])
    out = 10.0 ** (general_db / 10.0)
    image = n_rb - 1 - rb
    out[(image >= start) & (image <= stop)] += 10.0 ** ((-25.0 - y) / 10.0)
    centre = [n_rb // 2] if n_rb % 2 else [n_rb // 2 - 1, n_rb // 2]
    out[centre] += 10.0 ** ((-25.0 - z) / 10.0)
    out[inside] = 1.0
    return out


class BlerCurve:
    """Block error rate of one transport-block configuration as a function of SINR in dB."""

    def bler(self, sinr_db: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def success(self, sinr_db) -> np.ndarray:
        """1 - BLER at each SINR (dB; -inf allowed)."""
        return 1.0 - self.bler(np.asarray(sinr_db, dtype=float))


@dataclass(frozen=True)
class ThresholdCurve(BlerCurve):
    """BLER 0 at SINR >= ``threshold_db``, 1 below."""

    threshold_db: float

    def bler(self, sinr_db: np.ndarray) -> np.ndarray:
        return np.where(np.asarray(sinr_db, dtype=float) >= self.threshold_db, 0.0, 1.0)


@dataclass(frozen=True)
class ProbitCurve(BlerCurve):
    """BLER(gamma) = 1 - Phi((gamma - ``threshold_db``) / ``sigma_db``): 50 % at the threshold."""

    threshold_db: float
    sigma_db: float

    def bler(self, sinr_db: np.ndarray) -> np.ndarray:
        x = (np.asarray(sinr_db, dtype=float) - self.threshold_db) / self.sigma_db
        return 1.0 - ndtr(x)


@dataclass(frozen=True)
class TableCurve(BlerCurve):
    """A tabulated curve: BLER interpolated linearly over SINR in dB, held at the end values
    outside the table (as Gonzalez-Martin et al. interpolate the 3GPP curves)."""

    sinr_db: tuple[float, ...]
    bler_values: tuple[float, ...]

    def __post_init__(self):
        x = np.asarray(self.sinr_db, dtype=float)
        y = np.asarray(self.bler_values, dtype=float)
        if x.ndim != 1 or x.shape != y.shape or x.size < 2 or np.any(np.diff(x) <= 0):
            raise ValueError("a BLER table needs >= 2 strictly increasing SINR points and as many BLER values")
        if np.any((y < 0) | (y > 1)):
            raise ValueError("BLER values must lie in [0, 1]")

    def bler(self, sinr_db: np.ndarray) -> np.ndarray:
        s = np.asarray(sinr_db, dtype=float)
        out = np.interp(s, self.sinr_db, self.bler_values)
        return np.where(np.isneginf(s), self.bler_values[0], out)


R1_160284_CURVES: dict[str, TableCurve] = {
    # 190-byte TBs at 280 km/h relative speed from 3GPP R1-160284 (DMRS enhancement of V2V), as
    # Gonzalez-Martin et al. tabulate them (their coding 1 and 2): BLER 1e-3 from 16 / 12 dB,
    # 1e-4 above 20 dB.
    "r1_160284_qpsk_r0.7": TableCurve(
        (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 20.000001),
        (1.0, 0.9, 0.7, 0.4, 0.13, 0.045, 0.017, 0.007, 1e-3, 1e-3, 1e-3, 1e-4),
    ),
    "r1_160284_qpsk_r0.5": TableCurve(
        (-2.0, 0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 20.000001),
        (1.0, 0.9, 0.7, 0.3, 0.09, 0.02, 0.002, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-4),
    ),
}
"""The 3GPP link curves of the analytical model's setting (190 bytes, QPSK, 280 km/h)."""


def curve_for(kind: str, bits: int, resource_elements: int, *, implementation_loss_db: float,
              sigma_db: float, table: Sequence[Sequence[float]] | str | None = None) -> BlerCurve:
    """The BLER curve of a TB of ``bits`` over ``resource_elements`` for reception ``kind``
    (``threshold`` | ``bler`` | ``table``; see the module docstring)."""
    if kind == "table":
        if isinstance(table, str):
            return R1_160284_CURVES[table]
        if table is None:
            raise ValueError("reception 'table' needs a table")
        return TableCurve(tuple(map(float, table[0])), tuple(map(float, table[1])))
    threshold = shannon_threshold_db(bits, resource_elements, implementation_loss_db)
    if kind == "threshold":
        return ThresholdCurve(threshold)
    if kind == "bler":
        return ProbitCurve(threshold, float(sigma_db))
    raise ValueError(f"unknown reception {kind!r}; one of threshold, bler, table")
