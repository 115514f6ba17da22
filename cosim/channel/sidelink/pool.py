"""The sidelink resource pool: slots, sub-channels, and what a transmission over L sub-channels
carries (PSSCH PRBs, transport block size, noise, RSRP offset, BLER curve).

A resource is L contiguous sub-channels of one slot (TS 36.213 §14.1.1.6 / TS 38.214 §8.1.4,
"candidate single-subframe / single-slot resource"). Every slot belongs to the pool (no S-SSB
slots, no TDD pattern) and the pool's sub-channels start at RB 0.

Power: a transmission puts the whole transmit power on its PSSCH RBs, shared evenly by its
sub-channels (the PSCCH's share is not subtracted, as in Gonzalez-Martin et al. and
WiLabV2Xsim). Its SINR is the received power over the noise of its PSSCH RBs plus the
interference that falls in its sub-channels. With ``in_band_emission`` a transmission's power
spreads over every sub-channel of the pool instead: its allocated RBs (the PSCCH and PSSCH, from
the pool's first RB of its first sub-channel) carry equal shares, every other RB its in-band
emission (:func:`radio_models.sidelink_phy.in_band_emission`) relative to one of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from radio_models import sidelink_phy as phy

from .params import NR_T_PROC_1, SidelinkParams

__all__ = ["ResourcePool", "TbFormat"]

# TS 38.214 Table 8.1.4-1: T_proc,0 in slots per sub-carrier spacing
_NR_T_PROC_0 = {15: 1, 30: 1, 60: 2}


@dataclass(frozen=True)
class TbFormat:
    """What a transmission over ``subchannels`` contiguous sub-channels carries."""

    subchannels: int
    pssch_prb: int
    tbs_bits: int
    data_re: int
    noise_mw: float
    rsrp_offset_db: float  # RSRP (per RE) = received power (dBm) - this
    curve: phy.BlerCurve


class ResourcePool:
    """Slot grid and transport-block formats of one sidelink medium (see the module docstring)."""

    def __init__(self, params: SidelinkParams, curve: phy.BlerCurve | None = None):
        self.params = params
        p = params
        self.lte = p.technology == "lte_mode4"
        self.scs_khz = int(p.subcarrier_spacing_khz)
        self.slots_per_ms = self.scs_khz // 15
        self.slot_s = 1e-3 / self.slots_per_ms
        self.n_rb = phy.LTE_N_RB[p.bandwidth_mhz] if self.lte else phy.NR_N_RB[(p.bandwidth_mhz, self.scs_khz)]
        self.subchannel_rb = int(p.subchannel_size_rb)
        self.n_sub = int(p.num_subchannels) if p.num_subchannels is not None else self.n_rb // self.subchannel_rb
        if self.n_sub < 1 or self.n_sub * self.subchannel_rb > self.n_rb:
            raise ValueError(f"{p.key}: {self.n_sub} sub-channels of {self.subchannel_rb} RBs do not fit in {self.n_rb} RBs")
        self.max_l = min(self.n_sub, int(p.max_subchannels_per_tb or self.n_sub))
        if self.lte:
            self.q_m, self.i_tbs = phy.lte_mcs(p.mcs)
            self.code_rate = None
        else:
            self.q_m, self.code_rate = phy.nr_mcs(p.mcs)
        self.pscch_rb = phy.LTE_PSCCH_RB if self.lte else min(10, self.subchannel_rb)
        self.noise_sub_mw = 10.0 ** (phy.noise_dbm(self.subchannel_rb, self.scs_khz, p.noise_figure_db) / 10.0)
        self.formats: dict[int, TbFormat] = {}
        for L in range(1, self.n_sub + 1):
            self.formats[L] = self._format(L, curve)
        # per width L (index 0 unused), for vectorised look-ups
        self.noise_mw_by_l = np.array([1.0] + [self.formats[L].noise_mw for L in range(1, self.n_sub + 1)])
        self.rsrp_offset_by_l = np.array([0.0] + [self.formats[L].rsrp_offset_db for L in range(1, self.n_sub + 1)])
        # SCI (PSCCH) decoding: Shannon with the same implementation loss as the data. LTE SCI
        # format 1: 32 bits + 16 CRC over 2 PRBs x 108 REs; NR SCI format 1-A: ~36 bits + 24 CRC
        # over sl-FreqResourcePSCCH RBs x 2 symbols x 9 data REs (PSCCH DMRS on 3 of 12).
        sci_bits, sci_re = (48, 2 * phy.LTE_PSSCH_RE_PER_PRB) if self.lte else (60, self.pscch_rb * 2 * 9)
        self.sci_threshold_db = phy.shannon_threshold_db(sci_bits, sci_re, p.implementation_loss_db)
        # windows in slots
        self.t1 = int(p.t1_slots)
        self.t2_periodic = max(self.t1, int(round(p.selection_window_ms * self.slots_per_ms)))
        self.t2_dynamic = max(self.t1, int(round(p.dynamic_window_ms * self.slots_per_ms)))
        self.t0 = int(p.sensing_window_ms) * self.slots_per_ms
        self.t_proc0 = 0 if self.lte else _NR_T_PROC_0[self.scs_khz]
        # re-evaluation (NR): T3 = T_proc,1 slots before a selected resource is first used
        self.t3 = 0 if self.lte else NR_T_PROC_1[self.scs_khz]
        self.rri = int(p.reservation_interval_ms) * self.slots_per_ms
        self.hyp_periods = tuple(int(x) * self.slots_per_ms for x in p.reservation_periods_ms)
        self.lookback = max(self.hyp_periods + (self.rri, 32)) + 1  # slots of sensing that matter
        # blind retransmission gap: LTE SCI format 1 "time gap" 1..15 subframes; NR: both
        # resources within 32 slots (sl-MaxNumPerReserve 2, TRIV t1 <= 31)
        self.retx_gap = 15 if self.lte else 31
        self.cbr_window = 100 * self.slots_per_ms  # CBR over [n - 100 ms, n - 1] (TS 36.214 / 38.215)
        # per (first sub-channel x, width L): the sub-channels covered (as floats) and the
        # share of the power in each, looked up per slot instead of rebuilt
        x, L = np.meshgrid(np.arange(self.n_sub), np.arange(self.n_sub + 1), indexing="ij")
        occ = self.occupancy(x.ravel(), L.ravel())
        self.occ_float = occ.astype(float).reshape(self.n_sub, self.n_sub + 1, self.n_sub)
        self.share = (occ / np.maximum(L.ravel(), 1)[:, None]).reshape(self.n_sub, self.n_sub + 1, self.n_sub)
        # the same with in-band emission (params.in_band_emission), else None
        self.in_band_emission = bool(p.in_band_emission)
        self.emission_share = self._emission_shares() if self.in_band_emission else None

    def allocated_rb(self, L: int) -> int:
        """RBs a transmission over ``L`` sub-channels occupies: LTE's PSCCH and its DFT-sized
        PSSCH (TS 36.213 §14.1.1.4C); NR's whole sub-channels."""
        return phy.LTE_PSCCH_RB + self.formats[L].pssch_prb if self.lte else L * self.subchannel_rb

    def _emission_shares(self) -> np.ndarray:
        """(x, L, sub-channel): the share of the power of a transmission at ``x`` over ``L``
        sub-channels that falls in each sub-channel of the pool, in-band emission included; the
        sub-channels past the pool's end (x + L > n_sub) stay as without emission."""
        p = self.params
        evm = phy.EVM_BY_MODULATION[self.q_m]
        relax = p.in_band_emission_wxyz_db or phy.IBE_RELAXATION_DB[p.technology]
        pool_rb = self.n_sub * self.subchannel_rb
        share = self.share.copy()
        for L in range(1, self.n_sub + 1):
            width = self.allocated_rb(L)
            for x in range(self.n_sub - L + 1):
                per_rb = phy.in_band_emission(self.n_rb, x * self.subchannel_rb, width, evm=evm,
                                              tx_power_dbm=p.tx_power_dbm, scs_khz=self.scs_khz,
                                              relaxation_db=relax)
                share[x, L] = per_rb[:pool_rb].reshape(self.n_sub, self.subchannel_rb).sum(axis=1) / width
        return share

    def _format(self, L: int, curve: phy.BlerCurve | None) -> TbFormat:
        p = self.params
        rbs = L * self.subchannel_rb
        if self.lte:
            prb = phy.dft_prb_count(rbs - phy.LTE_PSCCH_RB)
            tbs = phy.lte_tbs(self.i_tbs, prb) if prb else 0
            re = prb * phy.LTE_PSSCH_RE_PER_PRB
        else:
            prb = rbs
            re = phy.nr_pssch_re(prb, self.code_rate, pscch_rb=self.pscch_rb)
            tbs = phy.nr_tbs(re, self.code_rate, self.q_m)
        if curve is None:
            c = phy.curve_for(p.reception, tbs, re, implementation_loss_db=p.implementation_loss_db,
                              sigma_db=p.bler_sigma_db, table=p.bler_table)
        else:
            c = curve
        noise = 10.0 ** (phy.noise_dbm(max(prb, 1), self.scs_khz, p.noise_figure_db) / 10.0)
        return TbFormat(L, prb, int(tbs), int(re), noise, 10.0 * math.log10(phy.RB_SUBCARRIERS * max(prb, 1)), c)

    def tb_plan(self, bits: int) -> list[int]:
        """Sub-channels of each transport block of a packet of ``bits``: one TB over the fewest
        sub-channels that carry it, else TBs over ``max_l`` sub-channels and a last one over the
        fewest that carry the rest. A packet of 0 bits still takes one TB."""
        bits = max(int(bits), 1)
        for L in range(1, self.max_l + 1):
            if self.formats[L].tbs_bits >= bits:
                return [L]
        full = self.formats[self.max_l].tbs_bits
        if full <= 0:
            raise ValueError(f"{self.params.key}: MCS {self.params.mcs} carries no bits over {self.max_l} sub-channels")
        k, rest = divmod(bits, full)
        plan = [self.max_l] * k
        if rest:
            plan += [next(L for L in range(1, self.max_l + 1) if self.formats[L].tbs_bits >= rest)]
        return plan

    def slot_of(self, t: float) -> int:
        """The slot that contains time ``t`` (s)."""
        return int(math.floor(t / self.slot_s + 1e-6))

    def occupancy(self, x: np.ndarray, L: np.ndarray) -> np.ndarray:
        """(n, n_sub) booleans: which sub-channels each transmission (start ``x``, width ``L``) covers."""
        c = np.arange(self.n_sub)
        return (c[None, :] >= x[:, None]) & (c[None, :] < (x + L)[:, None])
