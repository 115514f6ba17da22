"""Sensing and resource selection of C-V2X sidelink (pure numpy; no SimPy).

What a station knows comes only from what it decoded and measured: the SCIs it decoded (slot,
sub-channels, announced reservation period and retransmission, measured PSSCH-RSRP) kept in
:class:`SciRing`, and the received power per sub-channel and slot (S-RSSI) kept in
:class:`RssiRing`. True occupancy is never looked at. :func:`select_resource` is the procedure
of TS 36.213 §14.1.1.6 (LTE, steps 1-8) and TS 38.214 §8.1.4 (NR, steps 1-7) followed by the
MAC's random choice (TS 36.321 §5.14.1.1 / TS 38.321 §5.22.1.1):

1. candidates: every L contiguous sub-channels of every slot in [n + T1, n + T2], less the
   slots where the station already transmits (it sends one transport block per slot);
5. exclude every candidate whose slot (or one of its next C_resel reservations, every
   P_rsvp_TX) a hypothetical SCI received in a slot the station did not monitor, because it
   was transmitting, would reserve for any period of the allowed list (all sub-channels);
   5a. if less than X M_total candidates remain, undo step 5;
6. exclude every candidate that overlaps a resource reserved by a decoded SCI whose RSRP is
   above Th: the slots m + q P_rsvp_RX (q = 1..Q) of an SCI decoded in slot m, and its
   announced retransmission;
7. while less than X M_total candidates remain, raise Th by 3 dB and repeat from step 4;
8. (LTE) keep the X M_total candidates of lowest E, the linear average of the S-RSSI of their
   sub-channels in the monitored slots y - 100 j of the sensing window (ties broken at random);
then the MAC picks one uniformly. A blind retransmission takes a second resource from the same
set, in another slot within the retransmission gap. :func:`candidate_set` is steps 1-7 alone:
NR's re-evaluation (TS 38.214 §8.1.4) runs them again before a selected resource is first
announced, and :func:`pick_replacement` is the MAC's new draw for a resource they exclude.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["SciRing", "RssiRing", "Selection", "CandidateSet", "candidate_set", "select_resource",
           "pick_replacement"]

class SciRing:
    """The SCIs every station decoded in the last ``window`` slots, and their PSSCH-RSRP.

    One row per slot (``slot % window``): the slot's transmissions (first sub-channel, width,
    announced period and retransmission slot) and, per station column and transmission, the
    RSRP in dBm where the station decoded the SCI (NaN elsewhere). A row is current only if it
    was written for that very slot (idle slots leave stale rows, recognised by their slot).
    The RSRP is stored as (slot row, column, transmission): a slot writes one contiguous block
    and a selection reads one column's rows as a strided view.
    """

    def __init__(self, window: int, columns: int = 16, per_slot: int = 8):
        self.window = int(window)
        self.slot = np.full(self.window, -1, dtype=np.int64)
        self.count = np.zeros(self.window, dtype=np.int64)
        self.reserving = np.zeros(self.window, dtype=bool)  # a transmission of the row announces a reservation
        self.last_reserving = -1  # the last slot written with such a transmission
        self._alloc(columns, per_slot)

    def _alloc(self, columns: int, per_slot: int) -> None:
        self.rsrp = np.full((self.window, columns, per_slot), np.nan, dtype=np.float16)
        self.x = np.zeros((self.window, per_slot), dtype=np.int64)
        self.L = np.zeros((self.window, per_slot), dtype=np.int64)
        self.prsvp = np.zeros((self.window, per_slot), dtype=np.int64)
        self.retx = np.full((self.window, per_slot), -1, dtype=np.int64)

    def _grow(self, columns: int, per_slot: int) -> None:
        old = (self.rsrp, self.x, self.L, self.prsvp, self.retx)
        c, k = old[0].shape[1], old[0].shape[2]
        self._alloc(max(columns, c), max(per_slot, k))
        self.rsrp[:, :c, :k] = old[0]
        self.x[:, :k], self.L[:, :k], self.prsvp[:, :k], self.retx[:, :k] = old[1:]

    def ensure_columns(self, columns: int) -> None:
        if columns > self.rsrp.shape[1]:
            self._grow(max(columns, 2 * self.rsrp.shape[1]), self.rsrp.shape[2])

    def write(self, slot: int, cols: np.ndarray, x: np.ndarray, L: np.ndarray, prsvp: np.ndarray,
              retx: np.ndarray, rsrp: np.ndarray) -> None:
        """Slot ``slot``: its transmissions and ``rsrp`` (transmissions x len(cols), NaN where
        the column did not decode the SCI)."""
        k = x.shape[0]
        if k > self.rsrp.shape[2]:
            self._grow(self.rsrp.shape[1], max(k, 2 * self.rsrp.shape[2]))
        row = slot % self.window
        self.slot[row] = slot
        self.count[row] = k
        block = self.rsrp[row]  # (columns, per_slot); entries past k stay NaN
        block[:] = np.nan
        block[cols, :k] = rsrp.T
        self.x[row, :k], self.L[row, :k], self.prsvp[row, :k], self.retx[row, :k] = x, L, prsvp, retx
        reserving = bool(prsvp.max() > 0 or retx.max() >= 0)
        self.reserving[row] = reserving
        if reserving:
            self.last_reserving = slot

    def window_of(self, col: int, first: int, last: int) -> tuple[np.ndarray, ...]:
        """The SCIs column ``col`` decoded in slots [first, last): (m, x, L, prsvp, rsrp, retx),
        in the order of their slots (and of the transmissions within a slot)."""
        return self._decoded(col, first, last, reserving_only=False)

    def reservations_of(self, col: int, first: int, last: int) -> tuple[np.ndarray, ...]:
        """As :meth:`window_of`, but only from slots where some transmission announced a
        reservation (a period or a retransmission): the only SCIs a selection's step 6 reads,
        found without reading the RSRP when the window holds none."""
        return self._decoded(col, first, last, reserving_only=True)

    def _decoded(self, col: int, first: int, last: int, *, reserving_only: bool) -> tuple[np.ndarray, ...]:
        first = max(first, last - self.window)
        if last <= first or (reserving_only and self.last_reserving < first):
            e = np.empty(0, dtype=np.int64)
            return e, e, e, e, np.empty(0), e
        # [first, last) is at most two runs of ring rows; a row of the run is current iff its
        # slot lies in [first, last) (the only slot of the range that maps to it)
        r0 = first % self.window
        r1 = r0 + (last - first)
        runs = ((r0, r1),) if r1 <= self.window else ((r0, self.window), (0, r1 - self.window))
        found = []
        for a, b in runs:
            sl = self.slot[a:b]
            live = (sl >= first) & (sl < last)
            if reserving_only:
                live &= self.reserving[a:b]
            i, j = np.nonzero(~np.isnan(self.rsrp[a:b, col]) & live[:, None])
            found.append((i + a, j))
        rows, j = found[0] if len(found) == 1 else (np.concatenate([found[0][0], found[1][0]]),
                                                    np.concatenate([found[0][1], found[1][1]]))
        return (self.slot[rows], self.x[rows, j], self.L[rows, j], self.prsvp[rows, j],
                self.rsrp[rows, col, j].astype(float), self.retx[rows, j])


class RssiRing:
    """Received power per sub-channel and slot at every column over the last ``window`` slots
    (mW, noise excluded; idle slots 0), and the busy sub-channel count of each slot for CBR."""

    def __init__(self, window: int, n_sub: int, columns: int = 16, *, keep_power: bool = True):
        self.window = int(window)
        self.n_sub = int(n_sub)
        self.keep_power = keep_power
        self.power = np.zeros((self.window if keep_power else 1, columns, n_sub), dtype=np.float32)
        self.upto = -1  # last slot whose row is current

    def ensure_columns(self, columns: int) -> None:
        have = self.power.shape[1]
        if columns > have:
            new = max(columns, 2 * have)
            arr = np.zeros((self.power.shape[0], new, self.n_sub), dtype=np.float32)
            arr[:, :have] = self.power
            self.power = arr

    def advance(self, slot: int) -> None:
        """Zero the rows of the idle slots after the last written one, up to ``slot``."""
        if not self.keep_power or slot <= self.upto:
            return
        first = self.upto + 1
        if slot - first + 1 >= self.window:
            self.power[:] = 0.0
        else:
            rows = np.arange(first, slot + 1) % self.window
            self.power[rows] = 0.0
        self.upto = slot

    def write(self, slot: int, cols: np.ndarray, power: np.ndarray) -> None:
        """Row of ``slot``: ``power`` (len(cols), n_sub) at ``cols``."""
        if not self.keep_power:
            return
        self.advance(slot)
        self.power[slot % self.window, cols] = power

    def average(self, col: int, ys: np.ndarray, period: int, first: int, last: int,
                unmonitored: np.ndarray, noise_mw: float) -> np.ndarray:
        """(len(ys), n_sub): the linear average S-RSSI (noise + power) of each sub-channel over
        the monitored slots y - period j (j >= 1) within [first, last); noise alone where none."""
        self.advance(last - 1)
        jmax = max(1, (int(ys.max()) - first) // period + 1) if ys.shape[0] else 1
        past = ys[:, None] - period * np.arange(1, jmax + 1)[None, :]
        valid = (past >= first) & (past < last) & (past > last - 1 - self.window)
        if unmonitored.shape[0]:
            valid &= ~np.isin(past, unmonitored)
        vals = self.power[past % self.window, col].astype(float)  # (ny, j, n_sub)
        vals = np.where(valid[:, :, None], vals, 0.0)
        count = valid.sum(axis=1)
        mean = vals.sum(axis=1) / np.maximum(count, 1)[:, None]
        return noise_mw + mean


@dataclass(frozen=True)
class Selection:
    """A chosen resource: slot ``y``, first sub-channel ``x``; optionally a retransmission
    ``y2`` (sub-channel ``x2``); ``threshold_dbm``: the RSRP threshold step 7 arrived at;
    ``candidates``: |S_A| (NR) or |S_B| (LTE) it was drawn from."""

    y: int
    x: int
    y2: int | None
    x2: int | None
    threshold_dbm: float
    candidates: int
    total: int


_NO_SHIFT = np.zeros(1, dtype=np.int64)  # a single transmission: no later reservations
_NO_SHIFT.flags.writeable = False


def _expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(event index, value) for every integer in [lo_e, hi_e] of every event e."""
    length = np.maximum(hi - lo + 1, 0)
    ev = np.repeat(np.arange(lo.shape[0]), length)
    offs = np.arange(ev.shape[0]) - np.repeat(np.cumsum(length) - length, length)
    return ev, lo[ev] + offs


def _exclude_unmonitored(avail0: np.ndarray, need: float, n: int, base: int, ny: int, unmonitored: np.ndarray,
                         shifts: np.ndarray, hyp_periods: tuple[int, ...], tscal: int) -> np.ndarray:
    """Step 5 (TS 36.213 §14.1.1.6 / TS 38.214 §8.1.4): the candidates left after excluding the
    slots that a hypothetical SCI in each unmonitored slot would reserve, for every allowed
    period; ``avail0`` itself if that leaves fewer than ``need`` (step 5a)."""
    if not unmonitored.shape[0]:
        return avail0
    # (period, q): the q-th reservation of a hypothetical SCI with that period (q > 1 only for
    # an SCI within its last period, Q = ceil(T_scal / period) when period < T_scal)
    reservations = [(period, q) for period in hyp_periods
                    for q in range(1, (math.ceil(tscal / period) if period < tscal else 1) + 1)]
    if len(reservations) * shifts.shape[0] > 8:
        rows = _unmonitored_rows_all(n, base, ny, unmonitored, shifts, hyp_periods, tscal)
    else:  # few (reservation, shift) pairs: the unmonitored slots hitting the window, by bisection
        u = unmonitored  # ascending
        hits = []
        for period, q in reservations:
            for shift in shifts.tolist():
                off = period * q - shift - base  # an SCI in slot z excludes row z + off
                lo = -off if q == 1 else max(-off, n - period)
                a, b = np.searchsorted(u, (lo, ny - off)).tolist()
                if b > a:
                    hits.append(u[a:b] + off)
        rows = hits[0] if len(hits) == 1 else np.concatenate(hits) if hits else None
    if rows is None:
        return avail0
    trial = avail0.copy()
    trial[rows] = False
    return trial if np.count_nonzero(trial) >= need else avail0


def _unmonitored_rows_all(n: int, base: int, ny: int, unmonitored: np.ndarray, shifts: np.ndarray,
                          hyp_periods: tuple[int, ...], tscal: int) -> np.ndarray | None:
    """Step 5's excluded rows of the window (with repeats), every (SCI, period, q, shift) at
    once: for many allowed periods or reservations; None if none."""
    slots = []
    for period in hyp_periods:
        q = np.arange(1, (math.ceil(tscal / period) if period < tscal else 1) + 1)
        z = unmonitored[:, None] + period * q[None, :]
        if period < tscal:  # Q > 1 only for an SCI within its last period
            z = np.where((n - unmonitored[:, None] <= period) | (q[None, :] == 1), z, -1)
        slots.append(z.ravel())
    z = np.concatenate(slots)
    y = (z[:, None] - shifts[None, :]).ravel() - base
    y = y[(y >= 0) & (y < ny)]
    return y if y.shape[0] else None


def _reserved_rsrp(sci: tuple[np.ndarray, ...], n: int, base: int, ny: int, nx: int, L: int, shifts: np.ndarray,
                   tscal: int) -> np.ndarray | None:
    """Step 6: the largest RSRP of a decoded reservation over each candidate (ny, nx), -inf
    where none; None if no decoded SCI reserves anything in the window (all -inf)."""
    m, xr, Lr, prsvp, rsrp, retx = sci
    if not m.shape[0]:
        return None
    ev_slot, ev_x, ev_L, ev_r = [], [], [], []
    periodic = prsvp > 0
    if periodic.any():
        mp, pp = m[periodic], prsvp[periodic]
        qmax = np.where(pp < tscal, np.ceil(tscal / np.maximum(pp, 1)).astype(np.int64), 1)
        qmax = np.where((pp < tscal) & (n - mp > pp), 1, qmax)
        Q = int(qmax.max())
        q = np.arange(1, Q + 1)
        z = mp[:, None] + pp[:, None] * q[None, :]
        ok = q[None, :] <= qmax[:, None]
        rows = np.nonzero(ok)
        ev_slot.append(z[rows])
        idx = np.nonzero(periodic)[0][rows[0]]
        ev_x.append(xr[idx]); ev_L.append(Lr[idx]); ev_r.append(rsrp[idx])
    has_retx = retx >= 0
    if has_retx.any():
        ev_slot.append(retx[has_retx]); ev_x.append(xr[has_retx]); ev_L.append(Lr[has_retx])
        ev_r.append(rsrp[has_retx])
    if not ev_slot:
        return None
    zs = np.concatenate(ev_slot)
    xs = np.concatenate(ev_x)
    ls = np.concatenate(ev_L)
    rs = np.concatenate(ev_r)
    y = zs[:, None] - shifts[None, :] - base  # (events, j)
    e_idx, j_idx = np.nonzero((y >= 0) & (y < ny))
    if not e_idx.shape[0]:
        return None
    maxr = np.full((ny, nx), -np.inf)
    yy = y[e_idx, j_idx]
    lo = np.maximum(xs[e_idx] - L + 1, 0)
    hi = np.minimum(xs[e_idx] + ls[e_idx] - 1, nx - 1)
    k, xx = _expand_ranges(lo, hi)
    np.maximum.at(maxr, (yy[k], xx), rs[e_idx][k])
    return maxr


@dataclass(frozen=True)
class CandidateSet:
    """The candidate resources of a selection after steps 1-7 (S_A): ``mask[y - base, x]`` for
    slot y and first sub-channel x; ``threshold_dbm``: the RSRP threshold step 7 arrived at;
    ``total``: M_total (candidates of step 1)."""

    base: int
    mask: np.ndarray
    threshold_dbm: float
    total: int

    def contains(self, slot: int, x: int) -> bool:
        """Whether the resource in ``slot`` starting at sub-channel ``x`` is a candidate."""
        y = slot - self.base
        return 0 <= y < self.mask.shape[0] and 0 <= x < self.mask.shape[1] and bool(self.mask[y, x])


def candidate_set(
    *,
    n: int,
    t1: int,
    t2: int,
    n_sub: int,
    L: int,
    sci: tuple[np.ndarray, ...],
    unmonitored: np.ndarray,
    own_planned: np.ndarray | Iterable[int],
    p_tx: int,
    c_resel: int,
    hyp_periods: tuple[int, ...],
    tscal: int,
    threshold_dbm: float,
    share: float,
) -> CandidateSet | None:
    """Steps 1-7 of a selection (module docstring): S_A; None if the window holds no candidate.
    NR's re-evaluation (TS 38.214 §8.1.4) runs the same steps again before a selected resource
    is first signalled. Arguments as :func:`select_resource`."""
    ny = t2 - t1 + 1
    nx = n_sub - L + 1
    if ny <= 0 or nx <= 0:
        return None
    base = n + t1
    # step 1: the slots of the window where the station already transmits hold no candidate
    planned = own_planned.tolist() if isinstance(own_planned, np.ndarray) else own_planned
    taken = sorted({z - base for z in planned if base <= z < base + ny})
    total = (ny - len(taken)) * nx
    if total == 0:
        return None
    avail0 = np.ones((ny, nx), dtype=bool)
    if taken:
        avail0[taken] = False
    need = share * total
    jmax = (t2 // p_tx + 1) if p_tx > 0 else 1
    jmax = max(1, min(jmax, c_resel if p_tx > 0 else 1))
    shifts = p_tx * np.arange(jmax) if p_tx > 0 else _NO_SHIFT
    avail = _exclude_unmonitored(avail0, need, n, base, ny, unmonitored, shifts, hyp_periods, tscal)
    maxr = _reserved_rsrp(sci, n, base, ny, nx, L, shifts, tscal)

    # step 7: raise the threshold by 3 dB until X M_total candidates remain
    th = float(threshold_dbm)
    if maxr is None:  # nothing reserved in the window: every available candidate passes at once
        s_a = avail
    else:
        finite = maxr[np.isfinite(maxr) & avail]
        top = float(finite.max()) if finite.shape[0] else -np.inf
        while True:
            s_a = avail & (maxr <= th)
            if np.count_nonzero(s_a) >= need or th >= top:
                break
            th += 3.0
    return CandidateSet(base, s_a, th, total)


def select_resource(
    *,
    n: int,
    t1: int,
    t2: int,
    n_sub: int,
    L: int,
    sci: tuple[np.ndarray, ...],
    unmonitored: np.ndarray,
    own_planned: np.ndarray | Iterable[int],
    p_tx: int,
    c_resel: int,
    hyp_periods: tuple[int, ...],
    tscal: int,
    threshold_dbm: float,
    share: float,
    rng: np.random.Generator,
    rssi: Callable[[np.ndarray], np.ndarray] | None = None,
    retx_gap: int = 0,
) -> Selection | None:
    """One resource selection (module docstring); None if the window holds no candidate.

    Args:
        n: the slot the selection is triggered in; candidates are in [n + t1, n + t2].
        L: sub-channels per transmission. n_sub: sub-channels in the pool.
        sci: (m, x, L, prsvp, rsrp, retx) of the SCIs decoded in the sensing window.
        unmonitored: slots of the sensing window in which the station transmitted, ascending.
        own_planned: slots in which the station already has a transmission planned (an array
            or any iterable of ints).
        p_tx: the reservation period of this selection in slots (0: a single transmission).
        c_resel: reservations the selection will be used for (steps 5 and 6 look at the next
            c_resel - 1 periods too).
        hyp_periods: the allowed reservation periods in slots (step 5's hypothetical SCIs).
        tscal: T_scal in slots: an SCI with a period below it reserves Q = ceil(tscal / period)
            periods ahead if it was decoded within its last period.
        threshold_dbm: the initial RSRP threshold; share: X (0.2: 20 %).
        rssi: LTE step 8: ys -> (len(ys), n_sub) average S-RSSI in mW; None for NR.
        retx_gap: > 0: also pick a blind retransmission within this many slots.
    """
    cands = candidate_set(n=n, t1=t1, t2=t2, n_sub=n_sub, L=L, sci=sci, unmonitored=unmonitored,
                          own_planned=own_planned, p_tx=p_tx, c_resel=c_resel, hyp_periods=hyp_periods,
                          tscal=tscal, threshold_dbm=threshold_dbm, share=share)
    if cands is None:
        return None
    ys, xs = np.nonzero(cands.mask)
    if not ys.shape[0]:
        return None
    base = cands.base
    if rssi is not None:  # LTE step 8: the X M_total candidates of lowest S-RSSI
        ny, nx = cands.mask.shape
        e_sub = rssi(base + np.arange(ny))  # (ny, n_sub)
        csum = np.concatenate([np.zeros((ny, 1)), np.cumsum(e_sub, axis=1)], axis=1)
        e = (csum[:, L:L + nx] - csum[:, :nx]) / L  # (ny, nx) average over the L sub-channels
        keep = int(math.ceil(share * cands.total - 1e-9))
        order = np.lexsort((rng.random(ys.shape[0]), e[ys, xs]))
        order = order[:max(1, min(keep, order.shape[0]))]
        ys, xs = ys[order], xs[order]
    pick = int(rng.integers(0, ys.shape[0]))
    y, x = int(ys[pick]), int(xs[pick])
    y2 = x2 = None
    if retx_gap > 0:
        other = (ys != y) & (np.abs(ys - y) <= retx_gap)
        if other.any():
            cand = np.nonzero(other)[0]
            k = int(cand[int(rng.integers(0, cand.shape[0]))])
            y2, x2 = int(ys[k]), int(xs[k])
            if y2 < y:
                y, x, y2, x2 = y2, x2, y, x
            y2 += base
    return Selection(y + base, x, y2, x2, cands.threshold_dbm, int(ys.shape[0]), cands.total)


def pick_replacement(cands: CandidateSet, rng: np.random.Generator, *, avoid: int | None = None,
                     near: int | None = None, gap: int = 0) -> tuple[int, int] | None:
    """The MAC's new resource for one that re-evaluation found outside S_A (TS 38.321
    §5.22.1.1): uniform over ``cands``, not in slot ``avoid`` and, with ``near``, within ``gap``
    slots of it (the other copy of a blind retransmission); (slot, x) or None if none is left."""
    ys, xs = np.nonzero(cands.mask)
    slots = ys + cands.base
    ok = np.ones(ys.shape[0], dtype=bool)
    if avoid is not None:
        ok &= slots != avoid
    if near is not None:
        ok &= np.abs(slots - near) <= gap
    idx = np.nonzero(ok)[0]
    if not idx.shape[0]:
        return None
    k = int(idx[int(rng.integers(0, idx.shape[0]))])
    return int(slots[k]), int(xs[k])
