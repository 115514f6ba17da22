"""A C-V2X sidelink medium (LTE-V2X mode 4 / NR-V2X mode 2), driven by SimPy: ``channel.medium:
sidelink``, its parameters (:class:`SidelinkParams`) under ``channel.medium_params``.

It implements the medium contract (:mod:`cosim.channel.medium`): :meth:`SidelinkMedium.update`
with the stations' positions after every traffic step, :meth:`SidelinkMedium.send` returns a
frame whose ``done`` event succeeds when the MAC is finished with it (``delivered`` says whether
a unicast packet arrived), :meth:`SidelinkMedium.abort`, :meth:`SidelinkMedium.reset_stats`,
:meth:`SidelinkMedium.metrics`.

Time is slotted (1 ms subframes in LTE; 1 ms x 15 kHz / SCS in NR). The medium is event-driven:
one SimPy callback at the end of every slot in which something is transmitted, and one per
instant at which packets arrive; nothing runs in idle slots.

Traffic:

- A packet of kind ``cam`` that fits one transport block is periodic: it goes on the station's
  semi-persistent reservation (sensing-based SPS, TS 36.321 §5.14.1.1 / TS 38.321 §5.22.1.1).
  The first one, and any packet after the reselection counter ran out (unless the resource is
  kept with probability ``p_keep``), after the packet no longer fits or after the next
  reservation lies beyond the selection window, triggers a selection with reservation period
  ``reservation_interval_ms``; the counter is drawn in [5, 15] (at 100 ms) and decremented at
  every packet. Every SCI announces the period.
- Any other packet (requests and policy segments, CAMs that need several TBs) is aperiodic:
  dynamic selection (NR Rel-16 dynamic grant; LTE with a zero reservation, a one-shot
  transmission) in [n + T1, n + T2] with T2 = ``dynamic_window_ms``, one transport block after
  the other (the selection of TB k + 1 is triggered in the slot after TB k's first copy). Its
  SCIs announce no period, only the blind retransmission if there is one. A station's
  aperiodic packets are sent in order; periodic ones run beside them, and neither is placed in a
  slot where the station already transmits. A unicast packet whose TBs are lost sends those TBs
  again, up to ``retry_limit`` times (``channel.max_retries``; NR HARQ with PSFCH feedback, the
  feedback ideal and in the next slot); every decided attempt is reported to ``on_attempt``.

Payload mapping: :meth:`ResourcePool.tb_plan` (the fewest sub-channels whose TBS from the MCS and
TBS tables carries the packet, or TBs over ``max_subchannels_per_tb`` sub-channels).

Reception of a TB copy at a receiver, one uniform number per copy and receiver: lost to
``half_duplex`` if the receiver transmits in that slot; ``below_sensitivity`` if the received
power is below ``sensitivity_dbm`` (or the receiver is out of ``range_m``); decoded with
probability 1 - BLER(SINR), the SINR over its PSSCH with every other transmission of the slot
that overlaps its sub-channels as interference (their power share per sub-channel; with
``in_band_emission``, every other transmission of the slot by the power it leaks into them, see
:class:`ResourcePool`); if not, ``collision`` if it would have been decoded at its SNR,
``propagation`` otherwise. A receiver that cannot decode the SCI (PSCCH SINR below the SCI
threshold) loses the TB to ``collision``. A TB is received if either copy is (no soft
combining); a packet if all its TBs are. The contract's causes (``frame.last_cause``,
``mac_frames_lost_*``, ``cam_rx``) count a propagation loss as ``below_sensitivity`` (lost
without interference); ``sl_*`` columns keep it apart. PRR-only radio models (``unit_disk``):
``fallback_rx_power_dbm`` within range, the model's PRR (a packet's, drawn at every copy of its
first TB) if nothing else overlapped the TB at the receiver, else lost.

Sensing: every station decodes the SCIs of the slot (not while it transmits; SCI decoded as
above) and records their PSSCH-RSRP; it records the received power per sub-channel (S-RSSI)
too. Selections use only these (:mod:`cosim.channel.sidelink.sensing`). In NR (``re_evaluation``)
a selected resource that no SCI has announced yet is checked again T3 = T_proc,1 slots before
its first use, and one that is no longer a candidate is replaced (TS 38.214 §8.1.4, TS 38.321
§5.22.1.1).

Metrics: CBR as TS 36.214 §5.1.30 / TS 38.215 §5.1.25 (share of the pool's sub-channels whose
S-RSSI, noise included, is above ``cbr_threshold_dbm``, over the last 100 ms; per epoch: the
mean over slots and stations), packet delivery ratio of broadcast packets by distance bin,
losses by cause, (re)selections, queueing delay.
"""

from __future__ import annotations

import heapq
import inspect
import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import simpy
from scipy.spatial import cKDTree

import radio_models
from radio_models import sidelink_phy as phy
from radio_models.snr import SnrRadioModel

from ..framing import Framing
from ..medium import Frame, Medium, MediumSetup, child_stream
from .params import MAX_SDU_BYTES, SidelinkParameterError, SidelinkParams
from .pool import ResourcePool
from .sensing import CandidateSet, RssiRing, SciRing, candidate_set, pick_replacement, select_resource

__all__ = ["SidelinkMedium", "SidelinkFrame", "LOSS_CAUSES", "RX_OUTCOMES"]

LOSS_CAUSES = ("half_duplex", "below_sensitivity", "propagation", "collision")
RX_OUTCOMES = ("delivered",) + LOSS_CAUSES
CONTRACT_CAUSE = {"half_duplex": "half_duplex", "below_sensitivity": "below_sensitivity",
                  "propagation": "below_sensitivity", "collision": "collision", "no_resource": "collision"}
"""The medium contract's causes: ``below_sensitivity`` is a loss without interference, so it
takes the sidelink's propagation losses too (the sidelink's own columns keep them apart)."""
_OK, _HD, _BELOW, _PROP, _COL = range(5)


def _db(x: np.ndarray) -> np.ndarray:
    """10 log10(x), -inf where x is 0 (np.errstate, which costs more than the log of a few
    hundred values, only where some x is 0)."""
    if x.all():
        return 10.0 * np.log10(x)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(x)


@dataclass(eq=False)
class SidelinkFrame(Frame):
    """One packet handed to the sidelink MAC (unicast: ``receiver`` >= 0; broadcast: -1): a
    :class:`cosim.channel.medium.Frame` with its transport blocks and their outcomes."""

    tb_subchannels: list[int] = field(default_factory=list)
    periodic: bool = False
    cause: str | None = None  # the medium's own cause of a loss (RX_OUTCOMES)
    # internal
    pending: deque = field(default_factory=deque)  # TBs still to select (aperiodic)
    last_selected: int = -1
    copies_left: int = 0
    planned: list = field(default_factory=list)
    rx_nodes: np.ndarray | None = None
    rx_dist: np.ndarray | None = None
    rx_pos: np.ndarray | None = None  # station index of each receiver, at geometry update rx_pos_geometry
    rx_pos_geometry: int = -1
    links: dict = field(default_factory=dict)  # width -> _Links, at geometry update links_geometry
    links_geometry: int = -1
    tb_ok: np.ndarray | None = None
    tb_cause: np.ndarray | None = None
    finished: bool = False


@dataclass(eq=False)
class _Tx:
    frame: SidelinkFrame
    slot: int
    x: int
    L: int
    tb: int
    prsvp: int  # announced reservation period in slots (0: none)
    retx: int  # announced slot of the other copy (-1: none)


@dataclass(eq=False)
class _Air:
    """What :meth:`SidelinkMedium._sense` found of one slot, for the reception: per
    transmission, whether its sender is present, its width, its received power at every
    station (k, n) and the interference in its sub-channels (k, n; None: alone on the air);
    which stations transmit; which decoded each SCI (k, n)."""

    on_air: np.ndarray
    L: np.ndarray
    Prow: np.ndarray
    interf: np.ndarray | None
    tx_mask: np.ndarray
    sci_ok: np.ndarray


@dataclass(eq=False)
class _Links:
    """A copy's receivers at one geometry (:meth:`SidelinkMedium._links`): how many, which
    are decided (mask over them), their station indices, received power (mW), and (SNR radio
    models, once :meth:`SidelinkMedium._fill_clean` ran) the success probability without
    interference at the copy's width."""

    size: int
    width: int
    live: np.ndarray
    rl: np.ndarray
    sig: np.ndarray
    p_clean: np.ndarray | None = None


@dataclass(eq=False)
class _Sps:
    x: int
    L: int
    next_slot: int
    period: int
    counter: int
    retx_offset: int | None
    x2: int | None


@dataclass(eq=False)
class _Grant:
    """The resources of one selection until an SCI signals them (NR re-evaluation): its TB
    copies in the order of their slots (one, or two with a blind retransmission), what the
    selection was made for, and the semi-persistent reservation it set (None: a dynamic grant)."""

    txs: list[_Tx]
    L: int
    p_tx: int
    c_resel: int
    t2: int
    sps: _Sps | None = None


class SidelinkMedium(Medium):
    """The sidelink medium of one channel (module docstring).

    Args:
        env: SimPy environment (time in seconds).
        model: the channel's radio model (path loss; its antenna gains are used, its transmit
            power and reception are not: the sidelink has its own).
        rng: the medium's random stream (three children: selections, receptions, path loss).
        params: :class:`SidelinkParams` or the mapping given under the medium's key.
        curve: a BLER curve for every TB (overrides ``reception``; e.g. the analytical model's).
        on_attempt: ``on_attempt(frame, delivered, cause)`` when a unicast packet is decided.
        prr: ``prr(sender, receiver, kind)``, PRR-only models: a packet's interference-free PRR.
        fallback_rx_power_dbm: PRR-only models: the received power within range.
        retry_limit: retransmissions of the lost TBs of a unicast packet (``channel.max_retries``).
    """

    name = "sidelink"
    broadcast = True

    def __init__(
        self,
        env: simpy.Environment,
        model: radio_models.RadioModel,
        rng: np.random.Generator,
        params: SidelinkParams | Mapping[str, Any] | None = None,
        *,
        curve: phy.BlerCurve | None = None,
        on_attempt: Callable[[SidelinkFrame, bool, str | None], None] | None = None,
        prr: Callable[[int, int, str], float] | None = None,
        fallback_rx_power_dbm: float = -65.0,
        retry_limit: int = 0,
    ):
        if not isinstance(params, SidelinkParams):
            params = SidelinkParams.from_mapping(params)
        self.env = env
        self.model = model
        self.params = params
        self.pool = ResourcePool(params, curve)
        pool = self.pool
        try:
            self._sel_rng, self._rx_rng, self._pl_rng = rng.spawn(3)
        except (AttributeError, TypeError, ValueError):
            self._sel_rng, self._rx_rng, self._pl_rng = (
                np.random.default_rng(s) for s in rng.integers(0, 2**63, size=3).tolist())
        self.snr_model = isinstance(model, SnrRadioModel)
        # in-band emission acts on received powers: PRR-only models decide by overlap alone
        self._emission = pool.in_band_emission and self.snr_model
        if pool.in_band_emission and not self.snr_model:
            warnings.warn(f"{params.key}.in_band_emission: radio model {type(model).__name__} gives no received "
                          "power, so there is no leakage to add; a TB is lost to any overlapping one as without it",
                          RuntimeWarning, stacklevel=2)
        self._share = pool.emission_share if self._emission else pool.share
        gains = (model.budget.tx_antenna_gain_dbi + model.budget.rx_antenna_gain_dbi) if self.snr_model else 0.0
        self.tx_dbm = float(params.tx_power_dbm) + gains
        self.fallback_mw = 10.0 ** (fallback_rx_power_dbm / 10.0)
        self.sens_mw = 10.0 ** (params.sensitivity_dbm / 10.0)
        self.cbr_thr_mw = 10.0 ** (params.cbr_threshold_dbm / 10.0)
        self.sci_thr_lin = 10.0 ** (pool.sci_threshold_db / 10.0)
        self.range_m = float(params.range_m) if params.range_m is not None else float(model.max_range_m)
        self.on_attempt = on_attempt
        self.prr = prr
        self.retry_limit = int(retry_limit)
        self.cam_prr: Callable[[int, int], float] | None = None
        self.broadcast_range_m: float | None = None  # receivers of broadcasts (default: range_m)
        self.pdr_bin_edges_m = np.arange(0.0, self.range_m + params.pdr_bin_m, params.pdr_bin_m)
        self.measured_senders: set[int] | None = None  # broadcast statistics only of these (None: all)
        # stations: a persistent column per node id
        self._col: dict[int, int] = {}
        self._nodes = np.empty(0, dtype=np.int64)
        self._idx: dict[int, int] = {}
        self._present_cols = np.empty(0, dtype=np.int64)
        self._P = np.zeros((0, 0))
        self._P_db = np.zeros((0, 0))
        self._geometry = 0  # count of geometry updates (station indices change at each)
        self._xy = np.zeros((0, 2))
        self._sci = SciRing(pool.t0 + pool.t_proc0 + 1)
        self._rssi = RssiRing(pool.t0, pool.n_sub, keep_power=pool.lte)
        self._busy = np.zeros((pool.cbr_window, 16), dtype=np.int16)
        self._busy_upto = -1
        self._own_tx: dict[int, deque] = {}
        self._planned: dict[int, set[int]] = {}
        self._sps: dict[int, _Sps] = {}
        self._queue: dict[int, deque] = {}
        self._active: dict[int, SidelinkFrame] = {}
        self._plans: dict[int, list[_Tx]] = {}
        self._heap: list[int] = []
        self._wake_version = 0
        self._wake_slot: int | None = None
        self._arrivals: list[SidelinkFrame] = []
        self._restart: set[int] = set()
        self._arrivals_pending = False
        self.processed_slots = 0
        self.reset_stats()

    # ------------------------------------------------------------------ the medium contract

    @classmethod
    def from_setup(cls, setup: MediumSetup, **params: Any) -> "SidelinkMedium":
        """The medium of a channel; ``params`` are ``channel.medium_params``, the fields of
        :class:`SidelinkParams` (its signature below lists them with their defaults)."""
        checked = SidelinkParams.from_mapping(params, key="channel.medium_params")

        def prr(sender: int, receiver: int, kind: str) -> float:
            topo = setup.graph()
            index = topo.edge_index(sender, receiver)
            if index < 0:
                return 0.0
            return float(topo.request_success_probability[index] if kind == "request"
                         else topo.success_probability[index])

        return cls(setup.env, setup.model, child_stream(setup.rng), checked, on_attempt=setup.on_attempt,
                   prr=prr, retry_limit=setup.retry_limit)

    @classmethod
    def packet_framing(cls, framing: Framing, params: dict[str, Any]) -> Framing:
        """Packets go to the sidelink whole up to the PDCP SDU limit of the technology
        (:data:`MAX_SDU_BYTES`), where the transport-block mapping cuts them (RLC
        segmentation), not at 802.11's MSDU limit; 802.11's MAC header, FCS and LLC/SNAP do not
        exist here (the layer-2 headers of PDCP, RLC and MAC are not counted, as in the
        analytical model of Gonzalez-Martin et al.); ``channel.security_bytes`` still counts."""
        technology = params.get("technology") or SidelinkParams.technology
        return Framing(MAX_SDU_BYTES[technology], mac_header_bytes=0, fcs_bytes=0, llc_bytes=0,
                       security_bytes=framing.security_bytes)

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[tuple[str, str]]:
        """Every bad value of ``params`` (see :class:`SidelinkParams`)."""
        try:
            SidelinkParams.from_mapping(params, key="")
        except SidelinkParameterError as exc:
            return [(k.lstrip("."), m) for k, m in exc.problems]
        return []

    def has_station(self, node: int) -> bool:
        return int(node) in self._idx

    @property
    def cam_queue_delays(self) -> list[float]:
        return self._cam_delays

    def reservations(self) -> dict[int, tuple[int, int, int, int]]:
        """The semi-persistent reservations held now, by station: ``(next slot, period in slots,
        first sub-channel, sub-channels)``; two stations whose next slots are equal modulo the
        period and whose sub-channels overlap transmit on each other (the resource map)."""
        return {int(node): (s.next_slot, s.period, s.x, s.L) for node, s in self._sps.items()}

    # ------------------------------------------------------------------ stations, geometry

    def _column(self, node: int) -> int:
        col = self._col.get(node)
        if col is None:
            col = self._col[node] = len(self._col)
            self._sci.ensure_columns(col + 1)
            self._rssi.ensure_columns(col + 1)
            if col >= self._busy.shape[1]:
                grown = np.zeros((self._busy.shape[0], 2 * self._busy.shape[1]), dtype=np.int16)
                grown[:, : self._busy.shape[1]] = self._busy
                self._busy = grown
            self._own_tx[col] = deque()
            self._planned[col] = set()
            self._busy_cells = np.concatenate([self._busy_cells, np.zeros(max(0, col + 1 - self._busy_cells.shape[0]))])
            self._active_slots = np.concatenate([self._active_slots, np.zeros(max(0, col + 1 - self._active_slots.shape[0]))])
        return col

    def update(
        self,
        nodes: np.ndarray,
        positions: np.ndarray,
        heights: np.ndarray | float | None = None,
        topology: Any = None,
        path_loss_db: Callable[[np.ndarray, np.ndarray, radio_models.LinkBatch], np.ndarray] | None = None,
    ) -> None:
        """New positions of the stations present: recompute received powers.

        ``positions``: (n, 2) or (n, 3) (ground elevation z); ``heights``: antenna heights (default
        1.5 m). ``topology`` (PRR-only models): the graph whose edges get
        ``fallback_rx_power_dbm``. ``path_loss_db(u, v, links)``: the path loss of each pair
        (u < v node ids), e.g. the channel's correlated link state; None: sampled from the
        medium's own stream (independently per pair and update).
        """
        now = self.env.now
        nodes = np.asarray(nodes, dtype=np.int64)
        order = np.argsort(nodes, kind="stable")
        nodes = nodes[order]
        pos = np.asarray(positions, dtype=float).reshape(nodes.shape[0], -1)[order] if nodes.shape[0] else np.zeros((0, 2))
        h = np.broadcast_to(np.asarray(1.5 if heights is None else heights, dtype=float), (nodes.shape[0],))[order] \
            if nodes.shape[0] else np.zeros(0)
        self._close_presence(now)
        n = nodes.shape[0]
        self._nodes = nodes
        self._idx = {int(v): i for i, v in enumerate(nodes.tolist())}
        self._present_cols = np.array([self._column(int(v)) for v in nodes.tolist()], dtype=np.int64)
        for v in nodes.tolist():
            self._presence_from.setdefault(int(v), now)
        for gone in [v for v in self._presence_from if v not in self._idx]:
            self._presence_from.pop(gone)
        P = np.zeros((n, n))
        if n > 1 and self.snr_model:
            search = pos.copy()
            if search.shape[1] == 3:
                search[:, 2] += h
            pairs = cKDTree(search).query_pairs(self.range_m, output_type="ndarray")
            if pairs.shape[0]:
                a, b = pairs[:, 0], pairs[:, 1]
                links = radio_models.LinkBatch.from_positions(pos[a], pos[b], tx_height_m=h[a], rx_height_m=h[b])
                if path_loss_db is not None:
                    loss = path_loss_db(nodes[a], nodes[b], links)
                else:
                    loss = self.model.sample_path_loss_db(links, self._pl_rng)
                mw = np.power(10.0, (self.tx_dbm - np.asarray(loss, dtype=float)) / 10.0)
                P[a, b] = P[b, a] = mw
        elif n > 1 and topology is not None and len(topology):
            a = np.array([self._idx[int(u)] for u in topology.u.tolist()], dtype=np.intp)
            b = np.array([self._idx[int(v)] for v in topology.v.tolist()], dtype=np.intp)
            P[a, b] = P[b, a] = self.fallback_mw
        self._P = P
        self._P_db = _db(P)  # received power in dBm (-inf: none), for the PSSCH-RSRP of every slot
        self._geometry += 1
        self._xy = pos[:, :2].copy() if n else np.zeros((0, 2))

    def _close_presence(self, now: float) -> None:
        for v, t0 in self._presence_from.items():
            self._presence_time[v] = self._presence_time.get(v, 0.0) + now - t0
            self._presence_from[v] = now

    def rx_power_dbm(self, sender: int, receiver: int) -> float:
        """Received power at ``receiver`` of a transmission of ``sender`` (-inf where none)."""
        i, j = self._idx.get(sender), self._idx.get(receiver)
        if i is None or j is None or self._P[i, j] <= 0:
            return -math.inf
        return 10.0 * math.log10(self._P[i, j])

    # ------------------------------------------------------------------ packets in

    def send(self, sender: int, receiver: int, payload_bits: int, rate_bps: float = 0.0, *,
             ac: str = "AC_BE", kind: str = "data", tag: Any = None) -> SidelinkFrame:
        """Hand one packet to ``sender``'s MAC (``receiver`` -1: broadcast). Its ``done`` event
        succeeds with the frame when its last TB copy has been sent and decided (``rate_bps`` and
        ``ac`` are the channel's 802.11p notions: unused)."""
        bits = int(payload_bits)
        f = SidelinkFrame(int(sender), int(receiver), bits, (bits + 7) // 8, float(rate_bps or 0.0), ac,
                          self.env.event(), self.env.now, kind, tag)
        f.tb_subchannels = self.pool.tb_plan(f.payload_bits)
        f.periodic = kind == "cam" and len(f.tb_subchannels) == 1
        f.pending = deque(range(len(f.tb_subchannels)))
        self._arrivals.append(f)
        self._schedule_arrivals()
        return f

    def _schedule_arrivals(self) -> None:
        if not self._arrivals_pending:
            self._arrivals_pending = True
            ev = self.env.timeout(0)  # after the slot ends already scheduled at this instant
            ev.callbacks.append(lambda _ev: self._process_arrivals())

    def abort(self, frame: SidelinkFrame, *, cancelled: bool = False) -> None:
        """Forget ``frame`` (its transfer gave up): its TBs not yet sent are not sent. A unicast
        packet cut short by a break or a deadline after its first TB went out counts as an
        attempt lost; one cancelled (epoch end) is not counted."""
        if frame.cancelled or frame.finished:
            frame.cancelled = True
            return
        frame.cancelled = True
        if not cancelled and frame.first_tx_at is not None and frame.receiver >= 0 and self.on_attempt is not None:
            self.on_attempt(frame, False, "aborted")
        col = self._col.get(frame.sender)
        for tx in frame.planned:
            if col is not None:
                self._planned[col].discard(tx.slot)
        q = self._queue.get(frame.sender)
        if q is not None and frame in q:
            q.remove(frame)
        if self._active.get(frame.sender) is frame:
            del self._active[frame.sender]
            self._restart.add(frame.sender)
            self._schedule_arrivals()

    def _process_arrivals(self) -> None:
        self._arrivals_pending = False
        n = self.pool.slot_of(self.env.now)
        arrivals, self._arrivals = self._arrivals, []
        for f in arrivals:
            if f.cancelled:
                continue
            if f.periodic:
                self._sps_arrival(f, n)
            else:
                self._queue.setdefault(f.sender, deque()).append(f)
                self._restart.add(f.sender)
        restart, self._restart = self._restart, set()
        for node in sorted(restart):
            if node not in self._active:
                self._start_next(node, n)

    # ------------------------------------------------------------------ scheduling

    def _sensing(self, node: int, n: int, t2: int, p_tx: int, extra_busy=(), without=()
                 ) -> tuple[dict[str, Any], Callable[[np.ndarray], np.ndarray] | None]:
        """What ``node`` knows for a selection in slot ``n`` with window end ``t2`` and period
        ``p_tx``: the keyword arguments of :func:`candidate_set` but L, p_tx and c_resel, and
        LTE's S-RSSI ranking (None in NR). ``extra_busy``: slots taken besides the planned ones;
        ``without``: planned slots to leave out (the resources under re-evaluation)."""
        pool = self.pool
        col = self._column(node)
        own = self._own_tx[col]
        first = n - pool.t0
        while own and own[0] < first:
            own.popleft()
        last = n - pool.t_proc0
        # Only SCIs (and unmonitored slots) of the last `lookback` slots can reserve a resource
        # in the selection window: with Q = 1 an SCI of slot m reserves m + P >= n + T1, and
        # with Q > 1 it must lie within its own period (m >= n - P); P is one of the allowed
        # periods. Reading only those gives the same exclusions as the whole sensing window.
        recent = max(first, n - pool.lookback)
        if pool.lte:  # the S-RSSI ranking needs every unmonitored slot of the window
            unmonitored_all = np.fromiter(own, dtype=np.int64, count=len(own))
            unmonitored_all = unmonitored_all[unmonitored_all < last]
            unmonitored = unmonitored_all[unmonitored_all >= recent]
        else:  # own slots are in ascending order: read back from the newest
            recent_own = []
            for z in reversed(own):
                if z < recent:
                    break
                if z < last:
                    recent_own.append(z)
            unmonitored = np.array(recent_own[::-1], dtype=np.int64)
            unmonitored_all = unmonitored
        planned = [z for z in self._planned[col] if z not in without] if without else [*self._planned[col]]
        planned.extend(extra_busy)
        kw = dict(n=n, t1=pool.t1, t2=t2, n_sub=pool.n_sub, sci=self._sci.reservations_of(col, recent, last),
                  unmonitored=unmonitored, own_planned=planned, hyp_periods=pool.hyp_periods,
                  tscal=100 if pool.lte else t2, threshold_dbm=self.params.rsrp_threshold_dbm,
                  share=self.params.min_candidate_share)
        rssi = None
        if pool.lte:
            period = p_tx if 0 < p_tx < 100 else 100
            rssi = lambda ys: self._rssi.average(col, ys, period, first, last, unmonitored_all, pool.noise_sub_mw)  # noqa: E731
        return kw, rssi

    def _select(self, node: int, n: int, L: int, *, p_tx: int, c_resel: int, t2: int, extra_busy=()):
        kw, rssi = self._sensing(node, n, t2, p_tx, extra_busy)
        sel = select_resource(
            **kw, L=L, p_tx=p_tx, c_resel=c_resel, rng=self._sel_rng, rssi=rssi,
            retx_gap=self.pool.retx_gap if self.params.blind_retransmissions else 0,
        )
        if sel is not None:
            self.threshold_raises.append((sel.threshold_dbm - self.params.rsrp_threshold_dbm) / 3.0)
        return sel

    def _candidates(self, g: _Grant, n: int) -> CandidateSet | None:
        """S_A of ``g``'s selection run again in slot ``n``, its own resources not counted as taken."""
        sender = g.txs[0].frame.sender
        busy = self._sps_occurrences(sender, n, g.t2) if g.sps is None else ()
        kw, _ = self._sensing(sender, n, g.t2, g.p_tx, busy, without={t.slot for t in g.txs})
        return candidate_set(**kw, L=g.L, p_tx=g.p_tx, c_resel=g.c_resel)

    def _sps_occurrences(self, node: int, n: int, t2: int) -> list[int]:
        st = self._sps.get(node)
        if st is None:
            return []
        out, occ = [], st.next_slot
        while occ <= n + t2:
            if occ >= n:
                out.append(occ)
                if st.retx_offset is not None:
                    out.append(occ + st.retx_offset)
            occ += st.period
        return out

    def _draw_counter(self) -> int:
        lo, hi = self.params.reselection_counter
        return int(self._sel_rng.integers(lo, hi + 1))

    def _sps_arrival(self, f: SidelinkFrame, n: int) -> None:
        pool = self.pool
        L = f.tb_subchannels[0]
        st = self._sps.get(f.sender)
        reselect = st is None or L > st.L
        occ = None
        if not reselect:
            occ = st.next_slot
            if occ < n + pool.t1:
                occ += st.period * math.ceil((n + pool.t1 - occ) / st.period)
            if occ > n + pool.t2_periodic:
                reselect = True
            elif st.counter <= 0:
                if self._sel_rng.random() < self.params.p_keep:
                    st.counter = self._draw_counter()
                    self.sps_kept += 1
                else:
                    reselect = True
        if reselect:
            counter = self._draw_counter()
            c_resel = 10 * counter if pool.lte else counter
            sel = self._select(f.sender, n, L, p_tx=pool.rri, c_resel=c_resel, t2=pool.t2_periodic)
            if sel is None:
                self._drop(f, n)
                return
            if st is None:
                self.sps_selections += 1
            else:
                self.sps_reselections += 1
            st = self._sps[f.sender] = _Sps(sel.x, L, sel.y, pool.rri, counter,
                                            None if sel.y2 is None else sel.y2 - sel.y, sel.x2)
            occ = sel.y
        st.counter -= 1
        st.next_slot = occ + st.period
        f.pending.clear()
        f.last_selected = 0
        f.copies_left = 1 + (st.retx_offset is not None)
        other = occ + st.retx_offset if st.retx_offset is not None else -1
        txs = [_Tx(f, occ, st.x, st.L, 0, st.period, other)]
        if st.retx_offset is not None:
            txs.append(_Tx(f, other, st.x2, st.L, 0, st.period, occ))
        for tx in txs:
            self._plan(tx)
        if reselect:
            self._watch(_Grant(txs, L, pool.rri, c_resel, pool.t2_periodic, st), n)

    def _start_next(self, node: int, n: int) -> None:
        q = self._queue.get(node)
        while q:
            f = q.popleft()
            if f.cancelled:
                continue
            self._active[node] = f
            self._dynamic_tb(f, n)
            return

    def _dynamic_tb(self, f: SidelinkFrame, n: int) -> None:
        pool = self.pool
        tb = f.pending[0]
        L = f.tb_subchannels[tb]
        busy = self._sps_occurrences(f.sender, n, pool.t2_dynamic)
        sel = self._select(f.sender, n, L, p_tx=0, c_resel=1, t2=pool.t2_dynamic, extra_busy=busy)
        if sel is None:  # every slot of the window taken by the station itself: try next slot
            ev = self.env.timeout(max(0.0, (n + 1) * pool.slot_s - self.env.now))
            ev.callbacks.append(lambda _ev, f=f: (not f.cancelled and self._active.get(f.sender) is f)
                                and self._dynamic_tb(f, pool.slot_of(self.env.now)))
            return
        self.dynamic_selections += 1
        f.pending.popleft()
        f.last_selected = tb
        f.copies_left += 1 + (sel.y2 is not None)
        txs = [_Tx(f, sel.y, sel.x, L, tb, 0, sel.y2 if sel.y2 is not None else -1)]
        if sel.y2 is not None:
            txs.append(_Tx(f, sel.y2, sel.x2, L, tb, 0, sel.y))
        for tx in txs:
            self._plan(tx)
        self._watch(_Grant(txs, L, 0, 1, pool.t2_dynamic), n)

    def _drop(self, f: SidelinkFrame, n: int) -> None:
        """No resource at all in the window (every slot taken by the station): the packet is lost."""
        self.packets_dropped += 1
        f.finished = True
        f.cause, f.last_cause = "no_resource", CONTRACT_CAUSE["no_resource"]
        if f.receiver >= 0 and self.on_attempt is not None:
            self.on_attempt(f, False, f.last_cause)
        if not f.done.triggered:
            f.done.succeed(f)

    def _plan(self, tx: _Tx) -> None:
        tx.frame.planned.append(tx)
        self._planned[self._column(tx.frame.sender)].add(tx.slot)
        self._enqueue(tx)

    def _enqueue(self, tx: _Tx) -> None:
        lst = self._plans.get(tx.slot)
        if lst is None:
            self._plans[tx.slot] = [tx]
            heapq.heappush(self._heap, tx.slot)
            if self._wake_slot is None or tx.slot < self._wake_slot:
                self._schedule_wake(tx.slot)
        else:
            lst.append(tx)

    # ------------------------------------------------------------------ NR re-evaluation

    def _watch(self, g: _Grant, n: int) -> None:
        """Re-evaluate the resources of ``g``, selected in slot ``n`` and not yet signalled, in
        slot m - T3 before the first of them, m (TS 38.214 §8.1.4: T3 = T_proc,1); nothing if
        that slot is not after ``n`` or re-evaluation is off."""
        if not self.params.re_evaluation:
            return
        check = g.txs[0].slot - self.pool.t3
        if check <= n:
            return
        ev = self.env.timeout(max(0.0, check * self.pool.slot_s - self.env.now))
        ev.callbacks.append(lambda _ev: self._reevaluate(g, check))

    def _reevaluate(self, g: _Grant, n: int) -> None:
        """Steps 1-7 again in slot ``n``; each resource of ``g`` no longer in S_A goes to a new
        one drawn uniformly from S_A (TS 38.321 §5.22.1.1), the blind retransmission within the
        gap of the other copy and in another slot; kept if S_A offers none."""
        f = g.txs[0].frame
        moved_on = g.sps is not None and (self._sps.get(f.sender) is not g.sps
                                          or g.sps.next_slot != g.txs[0].slot + g.sps.period)
        if f.cancelled or f.finished or moved_on:
            return  # gone, or the reservation moved on (a later packet already used it)
        self.reevaluations += 1
        cands = self._candidates(g, n)
        if cands is None:  # no candidate at all: the resources stay
            return
        pending = [t for t in g.txs if not cands.contains(t.slot, t.x)]
        moved = False
        while pending:
            t = pending.pop(0)
            # the other copy, unless it waits for its own replacement: the new one goes near it
            other = next((o.slot for o in g.txs if o is not t and o not in pending), None)
            new = pick_replacement(cands, self._sel_rng, avoid=other, near=other, gap=self.pool.retx_gap)
            if new is not None:
                self._move(t, *new)
                self.reevaluation_reselections += 1
                moved = True
        if not moved:
            return
        g.txs.sort(key=lambda t: t.slot)
        if len(g.txs) == 2:
            a, b = g.txs
            a.retx, b.retx = b.slot, a.slot
        if g.sps is not None:
            first = g.txs[0]
            g.sps.x, g.sps.next_slot = first.x, first.slot + g.sps.period
            if len(g.txs) == 2:
                g.sps.retx_offset, g.sps.x2 = g.txs[1].slot - first.slot, g.txs[1].x
        self._watch(g, n)

    def _move(self, tx: _Tx, slot: int, x: int) -> None:
        """``tx`` goes to ``slot``, sub-channel ``x`` (its old slot's list stays, maybe empty,
        with its entry in the heap)."""
        planned = self._planned[self._column(tx.frame.sender)]
        planned.discard(tx.slot)
        self._plans[tx.slot].remove(tx)
        tx.slot, tx.x = slot, x
        planned.add(slot)
        self._enqueue(tx)

    def _schedule_wake(self, slot: int) -> None:
        self._wake_version += 1
        self._wake_slot = slot
        version = self._wake_version
        ev = self.env.timeout(max(0.0, (slot + 1) * self.pool.slot_s - self.env.now))
        ev.callbacks.append(lambda _ev: self._on_wake(version))

    def _on_wake(self, version: int) -> None:
        if version != self._wake_version:
            return
        self._wake_slot = None
        slot = heapq.heappop(self._heap)
        self._process_slot(slot, self._plans.pop(slot))
        if self._heap and self._wake_slot is None:
            self._schedule_wake(self._heap[0])

    # ------------------------------------------------------------------ a slot on the air

    def _process_slot(self, s: int, txs: list[_Tx]) -> None:
        """Slot ``s`` on the air: its planned transmissions (less the cancelled ones) are sent,
        sensed by every station (SCIs, S-RSSI, CBR) and decided at their receivers; packets
        whose last copy this was are finished."""
        txs = [t for t in txs if not t.frame.cancelled]
        for t in txs:
            self._planned[self._column(t.frame.sender)].discard(t.slot)
        if not txs:
            return
        self.processed_slots += 1
        self._mark_sent(s, txs)
        senders = np.array([self._idx.get(t.frame.sender, -1) for t in txs], dtype=np.int64)
        if self._nodes.shape[0]:
            air = self._sense(s, txs, senders)
            # receivers of packets whose first TB goes out now
            first = [k for k, t in enumerate(txs) if t.frame.rx_nodes is None]
            if first:
                self._set_receivers([txs[k].frame for k in first], senders[first])
        else:
            air = None
            for t in txs:
                if t.frame.rx_nodes is None:
                    self._set_receivers([t.frame], np.array([-1]))
        cause, sizes = self._receive(txs, senders, air)
        finished: list[SidelinkFrame] = []
        start = 0
        for k, t in enumerate(txs):
            f = t.frame
            c = cause[start:start + sizes[k]]
            start += sizes[k]
            ok_rx = f.tb_ok[t.tb]
            ok_rx |= c == _OK
            f.tb_cause[t.tb] = np.where(ok_rx, _OK, c)
            if self._copy_done(f, t, s):
                finished.append(f)
        if finished:
            self._finish_all(finished, s)

    def _mark_sent(self, s: int, txs: list[_Tx]) -> None:
        """Bookkeeping of the senders: queueing delay at a packet's first copy, the slot as one
        the sender did not monitor (it transmitted), the TB count."""
        slot_s = self.pool.slot_s
        for t in txs:
            f = t.frame
            if f.first_tx_at is None:
                f.first_tx_at = s * slot_s
                (self._cam_delays if f.kind == "cam" else self._delays).append(f.first_tx_at - f.enqueued_at)
            self._own_tx[self._column(f.sender)].append(s)
        self.tbs_sent += len(txs)

    def _sense(self, s: int, txs: list[_Tx], senders: np.ndarray) -> _Air:
        """What every station measures of slot ``s``: the SCIs it decodes (not while it
        transmits) and their PSSCH-RSRP (TS 36.214 §5.1.29 / TS 38.215 §5.1.22), its received
        power per sub-channel (S-RSSI) and busy sub-channels (CBR); and the interference each
        transmission meets in its own sub-channels."""
        pool = self.pool
        k = len(txs)
        on_air = senders >= 0
        x, L, prsvp, retx = np.array([(t.x, t.L, t.prsvp, t.retx) for t in txs], dtype=np.int64).T
        if on_air.all():
            Prow = self._P[senders]
        else:
            air = np.nonzero(on_air)[0]
            Prow = np.zeros((k, self._nodes.shape[0]))
            Prow[air] = self._P[senders[air]]
        share = self._share[x, L]  # (k, n_sub): each transmission's power share per sub-channel
        R = share.T @ Prow  # (n_sub, n): received power per sub-channel
        tx_mask = np.zeros(self._nodes.shape[0], dtype=bool)
        tx_mask[senders[on_air]] = True
        # each SCI's own power in its (first) sub-channel
        s_sub = Prow * share[np.arange(k), x][:, None] if self._emission else Prow / L[:, None]
        sci_ok = ((Prow >= self.sens_mw) & ~tx_mask[None, :]
                  & (s_sub >= self.sci_thr_lin * (pool.noise_sub_mw + R[x, :] - s_sub)))
        # PSSCH-RSRP where decoded (an absent sender's row is all undecoded: any row will do)
        rsrp = np.where(sci_ok, self._P_db[senders] - pool.rsrp_offset_by_l[L][:, None], np.nan)
        self._sci.write(s, self._present_cols, x, L, prsvp, retx, rsrp)
        if self._rssi.keep_power:
            self._rssi.write(s, self._present_cols, R.T.astype(np.float32))
        busy = ((R + pool.noise_sub_mw) >= self.cbr_thr_mw).sum(axis=0)
        self._write_busy(s, busy)
        self._busy_cells[self._present_cols] += busy
        self._active_slots[self._present_cols] += 1
        if k == 1:  # alone on the air: no interference (the general formula gives 0.0 exactly)
            interf = None
        elif self._emission:  # every other transmission's power in each TB's sub-channels
            coupling = pool.occ_float[x, L] @ share.T
            np.fill_diagonal(coupling, 0.0)
            interf = coupling @ Prow
        else:
            occ = pool.occ_float[x, L]
            ov = occ @ occ.T  # common sub-channels
            interf = (ov / L[None, :]) @ Prow - Prow  # interference in each TB's sub-channels
        return _Air(on_air, L, Prow, interf, tx_mask, sci_ok)

    def _rx_positions(self, t: _Tx) -> np.ndarray:
        """The station index of each receiver of ``t``'s packet (-1: not present), kept per
        packet until the next geometry update."""
        f = t.frame
        if f.receiver >= 0:
            return np.array([self._idx.get(f.receiver, -1)], dtype=np.int64)
        if f.rx_pos_geometry != self._geometry:
            f.rx_pos = self._positions_of(f.rx_nodes)
            f.rx_pos_geometry = self._geometry
        return f.rx_pos

    def _links(self, t: _Tx, sender: int, on_air: bool) -> _Links:
        """The links of ``t``'s copy to its packet's receivers at this geometry: which are
        decided (present, sender present) and their received power; kept per packet and width
        until the next geometry update (every TB of a policy segment reuses them, and their
        success probability, :meth:`_fill_clean`)."""
        f = t.frame
        if f.links_geometry != self._geometry:
            f.links_geometry = self._geometry
            f.links = {}
        links = f.links.get(t.L)
        if links is None:
            rp = self._rx_positions(t)
            live = rp >= 0 if on_air else np.zeros(rp.shape[0], dtype=bool)
            rl = rp[live]
            links = f.links[t.L] = _Links(rp.shape[0], t.L, live, rl, self._P[sender, rl])
        return links

    def _fill_clean(self, links: list[_Links]) -> None:
        """The success probability without interference (at the SNR, by the curve of the
        width) of the links that lack it, all in one pass."""
        todo = [lk for lk in links if lk.p_clean is None]
        if not todo:
            return
        pool = self.pool
        if len(todo) == 1:
            sig, widths = todo[0].sig, None
        else:
            sig = np.concatenate([lk.sig for lk in todo])
            widths = np.repeat([lk.width for lk in todo], [lk.sig.shape[0] for lk in todo])
        first = todo[0].width
        same = all(lk.width == first for lk in todo)
        noise = pool.formats[first].noise_mw if widths is None else pool.noise_mw_by_l[widths]
        snr_db = _db(sig / noise)
        if same:
            p = pool.formats[first].curve.success(snr_db)
        else:
            p = np.zeros(sig.shape[0])
            for width in np.unique(widths).tolist():
                sel = widths == width
                p[sel] = pool.formats[width].curve.success(snr_db[sel])
        start = 0
        for lk in todo:
            end = start + lk.sig.shape[0]
            lk.p_clean = p[start:end]
            start = end

    def _receive(self, txs: list[_Tx], senders: np.ndarray, air: _Air | None) -> tuple[np.ndarray, list[int]]:
        """The outcome (``_OK`` or a loss cause) of every copy at every one of its receivers,
        all pairs at once with one uniform number each, in the order of ``txs`` and of each
        packet's receivers; and the number of receivers of each copy (module docstring)."""
        if air is None:
            sizes = [self._rx_positions(t).shape[0] for t in txs]
            total = sum(sizes)
            self._rx_rng.random(total)  # drawn all the same: the stream stays in step
            return np.full(total, _BELOW, dtype=np.int8), sizes
        links = [self._links(t, int(senders[k]), bool(air.on_air[k])) for k, t in enumerate(txs)]
        sizes = [lk.size for lk in links]
        total = sum(sizes)
        cause = np.full(total, _BELOW, dtype=np.int8)
        u = self._rx_rng.random(total)
        if not total:
            return cause, sizes
        if self.snr_model:
            self._fill_clean(links)
            clean = [lk.p_clean for lk in links]
        else:  # the model's PRR of a packet: drawn at its first TB (each copy), 1 for the others
            clean = [self._prr_only(t.frame, t.frame.rx_nodes[lk.live]) if t.tb == 0 else np.ones(lk.rl.shape[0])
                     for t, lk in zip(txs, links)]
        if len(links) == 1:
            lk = links[0]
            live, rl, sig, p_clean = lk.live, lk.rl, lk.sig, clean[0]
            tl = np.zeros(rl.shape[0], dtype=np.int64)
        else:
            live = np.concatenate([lk.live for lk in links])
            rl = np.concatenate([lk.rl for lk in links])
            sig = np.concatenate([lk.sig for lk in links])
            p_clean = np.concatenate(clean)
            tl = np.repeat(np.arange(len(links)), [lk.rl.shape[0] for lk in links])
        p_ok = p_clean
        if air.interf is not None:
            interf = air.interf[tl, rl]
            if interf.any():  # else the SINR is the SNR, exactly, and nothing overlapped
                # PRR-only models: lost if anything else overlapped the TB at the receiver
                p_ok = (self._success_with(air.L, tl, sig, interf) if self.snr_model
                        else np.where(interf > 0.0, 0.0, p_clean))
        c = self._causes(u[live], p_ok, p_clean, air.sci_ok[tl, rl], sig, air.tx_mask[rl])
        cause[live] = c
        return cause, sizes

    def _success_with(self, L: np.ndarray, tl: np.ndarray, sig: np.ndarray, interf: np.ndarray) -> np.ndarray:
        """Decoding probability of each (copy, receiver) at its SINR (the curve of its width)."""
        pool = self.pool
        lt = L[tl]
        sinr_db = _db(sig / (pool.noise_mw_by_l[lt] + interf))
        if int(L.min()) == int(L.max()):
            return pool.formats[int(L[0])].curve.success(sinr_db)
        p_ok = np.zeros(tl.shape[0])
        for width in np.unique(lt).tolist():
            sel = lt == width
            p_ok[sel] = pool.formats[width].curve.success(sinr_db[sel])
        return p_ok

    def _causes(self, uu: np.ndarray, p_ok: np.ndarray, p_clean: np.ndarray, sci_ok: np.ndarray, sig: np.ndarray,
                half_duplex: np.ndarray) -> np.ndarray:
        """Outcome of each decided (copy, receiver): decoded if the data (at its SINR) and the
        SCI are; else a collision if it would have been decoded without the interference,
        propagation otherwise; below sensitivity, half duplex (receiver transmitting) first."""
        ok = (uu < p_ok) & sci_ok
        c = np.where(ok, _OK, np.where(uu < p_clean, _COL, _PROP)).astype(np.int8)
        c[sig < self.sens_mw] = _BELOW
        c[half_duplex] = _HD
        return c

    def _positions_of(self, nodes: np.ndarray) -> np.ndarray:
        if not self._nodes.shape[0]:
            return np.full(nodes.shape[0], -1, dtype=np.int64)
        p = np.minimum(np.searchsorted(self._nodes, nodes), self._nodes.shape[0] - 1)
        return np.where(self._nodes[p] == nodes, p, -1)

    def _prr_only(self, f: SidelinkFrame, receivers: np.ndarray) -> np.ndarray:
        if f.kind == "cam" and self.cam_prr is not None:
            return np.array([self.cam_prr(f.sender, int(r)) for r in receivers.tolist()], dtype=float)
        if self.prr is not None:
            return np.array([self.prr(f.sender, int(r), f.kind) for r in receivers.tolist()], dtype=float)
        return np.ones(receivers.shape[0])

    def _set_receivers(self, frames: list[SidelinkFrame], sender_pos: np.ndarray) -> None:
        """Who decides each packet: its receiver, or (broadcast) every station within
        ``broadcast_range_m`` of the sender when its first TB goes out."""
        rng_m = self.broadcast_range_m if self.broadcast_range_m is not None else self.range_m
        bcast = [i for i, f in enumerate(frames) if f.receiver < 0 and sender_pos[i] >= 0]
        if bcast:
            sp = sender_pos[bcast]
            diff = self._xy[None, :, :] - self._xy[sp][:, None, :]
            d2 = np.einsum("kij,kij->ki", diff, diff)
            near = d2 <= rng_m * rng_m
            near[np.arange(sp.shape[0]), sp] = False
        for i, f in enumerate(frames):
            if f.receiver >= 0:
                f.rx_nodes = np.array([f.receiver], dtype=np.int64)
                j = self._idx.get(f.receiver)
                ok = j is not None and sender_pos[i] >= 0
                f.rx_dist = np.array([float(np.hypot(*(self._xy[j] - self._xy[sender_pos[i]]))) if ok else math.nan])
            elif sender_pos[i] >= 0:
                row = bcast.index(i)
                f.rx_nodes = self._nodes[near[row]]
                f.rx_dist = np.sqrt(d2[row][near[row]])
            else:
                f.rx_nodes = np.empty(0, dtype=np.int64)
                f.rx_dist = np.empty(0)
            k = len(f.tb_subchannels)
            f.tb_ok = np.zeros((k, f.rx_nodes.shape[0]), dtype=bool)
            f.tb_cause = np.full((k, f.rx_nodes.shape[0]), _BELOW, dtype=np.int8)

    def _copy_done(self, f: SidelinkFrame, t: _Tx, s: int) -> bool:
        f.copies_left -= 1
        first_copy = t.retx == -1 or t.retx > t.slot
        if (not f.periodic and first_copy and t.tb == f.last_selected and f.pending
                and not f.cancelled and self._active.get(f.sender) is f):
            self._dynamic_tb(f, s + 1)  # the next TB is selected in the slot after this one's first copy
        return f.copies_left == 0 and not f.pending

    def _finish_all(self, frames: list[SidelinkFrame], s: int) -> None:
        """Packets whose last TB copy was decided in slot ``s``: outcomes, statistics, done; a
        unicast packet with lost TBs sends those again (up to ``retry_limit`` times)."""
        dist, causes = [], []
        done: list[SidelinkFrame] = []
        for f in frames:
            if f.tb_ok.shape[1]:
                ok = f.tb_ok.all(axis=0)
                first_bad = np.argmin(f.tb_ok, axis=0)
                cause = np.where(ok, _OK, f.tb_cause[first_bad, np.arange(ok.shape[0])]).astype(np.int64)
            else:
                cause = np.zeros(0, dtype=np.int64)
            if f.receiver >= 0:
                delivered = bool(cause.shape[0] and cause[0] == _OK)
                own = None if delivered else (RX_OUTCOMES[int(cause[0])] if cause.shape[0] else "below_sensitivity")
                c = None if own is None else CONTRACT_CAUSE[own]
                f.delivered, f.cause, f.last_cause = delivered, own, c
                self.packets_sent += 1
                if delivered:
                    self._delivered_bits += f.payload_bits
                else:
                    self.packets_lost[own] += 1
                if self.on_attempt is not None:
                    self.on_attempt(f, delivered, c)
                if not delivered and not f.cancelled and f.retries < self.retry_limit and self._active.get(f.sender) is f:
                    # HARQ feedback (NACK) for the lost TBs: they go again, from the next slot
                    f.retries += 1
                    self.retransmissions += 1
                    f.pending = deque(np.nonzero(~f.tb_ok[:, 0])[0].tolist())
                    self._dynamic_tb(f, s + 1)
                    continue
                if not delivered:
                    self.packets_given_up += 1
            else:
                self.broadcasts_sent += 1
                if self.measured_senders is None or f.sender in self.measured_senders:
                    dist.append(f.rx_dist)
                    causes.append(cause)
            f.finished = True
            done.append(f)
        if causes:
            cause = np.concatenate(causes)
            counts = np.bincount(cause, minlength=5)
            for i, name in enumerate(RX_OUTCOMES):
                self.broadcast_rx[name] += int(counts[i])
            nb = self.pdr_bin_edges_m.shape[0] - 1
            if nb > 0 and cause.shape[0]:
                b = np.searchsorted(self.pdr_bin_edges_m, np.concatenate(dist), side="right") - 1
                inside = (b >= 0) & (b < nb)
                np.add.at(self.pdr_bins, (b[inside], cause[inside]), 1)
        for f in done:
            if self._active.get(f.sender) is f:
                del self._active[f.sender]
                self._start_next(f.sender, s + 1)
            if not f.done.triggered:
                f.done.succeed(f)

    def _write_busy(self, s: int, busy: np.ndarray) -> None:
        w = self._busy.shape[0]
        if s > self._busy_upto:
            first = self._busy_upto + 1
            if s - first + 1 >= w:
                self._busy[:] = 0
            elif first % w <= s % w:  # the idle slots since the last written one, and s
                self._busy[first % w: s % w + 1] = 0
            else:
                self._busy[first % w:] = 0
                self._busy[: s % w + 1] = 0
            self._busy_upto = s
        else:
            self._busy[s % w] = 0
        self._busy[s % w, self._present_cols] = busy

    # ------------------------------------------------------------------ accounting

    def cbr(self, node: int) -> float:
        """CBR of ``node`` now (TS 36.214 §5.1.30 / TS 38.215 §5.1.25): the share of the pool's
        sub-channels with S-RSSI above ``cbr_threshold_dbm`` over the last 100 ms of slots."""
        col = self._col.get(node)
        if col is None:
            return math.nan
        n = self.pool.slot_of(self.env.now)
        w = self._busy.shape[0]
        slots = np.arange(n - w, n)
        valid = (slots <= self._busy_upto) & (slots > self._busy_upto - w)
        busy = self._busy[slots[valid] % w, col].sum()
        if self.pool.noise_sub_mw >= self.cbr_thr_mw:  # idle slots busy too
            busy += (~valid).sum() * self.pool.n_sub
        return float(busy) / (w * self.pool.n_sub)

    def reset_stats(self) -> None:
        """Zero the per-epoch counters (SPS reservations and sensing history are kept)."""
        now = self.env.now
        self.tbs_sent = 0
        self.packets_sent = 0
        self.packets_lost = {c: 0 for c in LOSS_CAUSES + ("no_resource",)}
        self.packets_dropped = 0
        self.packets_given_up = 0
        self.retransmissions = 0
        self.broadcasts_sent = 0
        self.broadcast_rx = {c: 0 for c in RX_OUTCOMES}
        self.sps_selections = 0
        self.sps_reselections = 0
        self.sps_kept = 0
        self.dynamic_selections = 0
        self.reevaluations = 0
        self.reevaluation_reselections = 0
        self.threshold_raises: list[float] = []
        self._delays: list[float] = []
        self._cam_delays: list[float] = []
        self._delivered_bits = 0
        self._stats_from = now
        nb = max(0, self.pdr_bin_edges_m.shape[0] - 1) if hasattr(self, "pdr_bin_edges_m") else 0
        self.pdr_bins = np.zeros((nb, len(RX_OUTCOMES)), dtype=np.int64)
        cols = len(self._col) if hasattr(self, "_col") else 0
        self._busy_cells = np.zeros(cols)
        self._active_slots = np.zeros(cols)
        self._presence_time: dict[int, float] = {}
        self._presence_from = {int(v): now for v in getattr(self, "_nodes", np.empty(0, dtype=np.int64)).tolist()}

    def set_pdr_bins(self, edges_m) -> None:
        """Distance bin edges (m) of the broadcast PDR (resets the bin counts)."""
        self.pdr_bin_edges_m = np.asarray(edges_m, dtype=float)
        self.pdr_bins = np.zeros((max(0, self.pdr_bin_edges_m.shape[0] - 1), len(RX_OUTCOMES)), dtype=np.int64)

    def busy_ratios(self) -> dict[int, float]:
        """CBR per node averaged over the slots since the last reset while present."""
        self._close_presence(self.env.now)
        out = {}
        idle_busy = self.pool.noise_sub_mw >= self.cbr_thr_mw
        for v, present in self._presence_time.items():
            slots = present / self.pool.slot_s
            if slots <= 0:
                continue
            col = self._col[v]
            busy = self._busy_cells[col] if col < self._busy_cells.shape[0] else 0.0
            if idle_busy:
                busy += self.pool.n_sub * max(0.0, slots - self._active_slots[col])
            out[v] = min(1.0, busy / (self.pool.n_sub * slots))
        return out

    def pdr_by_distance(self) -> list[tuple[float, float, float, int]]:
        """(from m, to m, PDR, receptions) of broadcast packets per distance bin since the reset."""
        out = []
        for i in range(self.pdr_bins.shape[0]):
            total = int(self.pdr_bins[i].sum())
            pdr = self.pdr_bins[i, 0] / total if total else math.nan
            out.append((float(self.pdr_bin_edges_m[i]), float(self.pdr_bin_edges_m[i + 1]), float(pdr), total))
        return out

    @property
    def cam_rx(self) -> dict[str, int]:
        """Receptions of broadcasts within the broadcast range by the contract's CAM outcomes
        (a propagation loss is a loss without interference: ``below_sensitivity``)."""
        rx = self.broadcast_rx
        return {"delivered": rx["delivered"], "collision": rx["collision"],
                "below_sensitivity": rx["below_sensitivity"] + rx["propagation"], "half_duplex": rx["half_duplex"]}

    def metrics(self) -> dict[str, float | int]:
        """Flat per-epoch metrics (docs/medium.md, the sidelink section): the contract's
        ``channel_busy_ratio_*`` (CBR) and ``mac_*`` columns (unicast packets: every attempt
        sent, lost attempts by the contract's causes, packets given up after the retries), and
        the sidelink's own ``sl_*`` columns."""
        cbr = self.busy_ratios()
        delays = np.asarray(self._delays, dtype=float)
        rx_total = sum(self.broadcast_rx.values())
        dt = self.env.now - self._stats_from
        lost = self.packets_lost
        out: dict[str, float | int] = {
            "channel_busy_ratio_mean": float(np.mean(list(cbr.values()))) if cbr else math.nan,
            "channel_busy_ratio_max": float(max(cbr.values())) if cbr else math.nan,
            "mac_frames_sent": int(self.packets_sent),
            "mac_frames_lost": int(sum(lost.values())),
            "mac_frames_lost_collision": int(lost["collision"] + lost["no_resource"]),
            "mac_frames_lost_below_sensitivity": int(lost["below_sensitivity"] + lost["propagation"]),
            "mac_frames_lost_half_duplex": int(lost["half_duplex"]),
            "mac_frames_lost_retry_limit": int(self.packets_given_up),
            "mac_cam_frames_sent": int(self.broadcasts_sent),
            "mac_queue_delay_mean_s": float(delays.mean()) if delays.size else math.nan,
            "mac_queue_delay_p95_s": float(np.percentile(delays, 95)) if delays.size else math.nan,
            "mac_link_goodput_mean_bps": float(self._delivered_bits / dt) if dt > 0 else math.nan,
        }
        for c in LOSS_CAUSES:
            out[f"sl_lost_{c}"] = int(lost[c])
        out["sl_retransmissions"] = int(self.retransmissions)
        out["sl_transport_blocks_sent"] = int(self.tbs_sent)
        out["sl_packets_dropped"] = int(self.packets_dropped)
        out["sl_sps_selections"] = int(self.sps_selections)
        out["sl_sps_reselections"] = int(self.sps_reselections)
        out["sl_sps_kept"] = int(self.sps_kept)
        out["sl_dynamic_selections"] = int(self.dynamic_selections)
        out["sl_reevaluations"] = int(self.reevaluations)
        out["sl_reevaluation_reselections"] = int(self.reevaluation_reselections)
        out["sl_rsrp_threshold_raises_mean"] = float(np.mean(self.threshold_raises)) if self.threshold_raises else math.nan
        out["sl_broadcast_pdr"] = float(self.broadcast_rx["delivered"] / rx_total) if rx_total else math.nan
        for c in RX_OUTCOMES:
            out[f"sl_broadcast_rx_{c}"] = int(self.broadcast_rx[c])
        if self.broadcast_range_m is not None:  # broadcasts (CAMs) on: PDR by distance bin
            for lo, hi, pdr, _total in self.pdr_by_distance():
                out[f"sl_pdr_{lo:g}_{hi:g}m"] = pdr
        return out


# channel.medium_params: the fields of SidelinkParams, with their defaults (the registry reads
# the parameters of a medium from the signature of from_setup)
_SETUP = inspect.Parameter("setup", inspect.Parameter.POSITIONAL_OR_KEYWORD)
SidelinkMedium.from_setup.__func__.__signature__ = inspect.Signature(
    [inspect.Parameter("cls", inspect.Parameter.POSITIONAL_OR_KEYWORD), _SETUP]
    + [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                         default=list(f.default) if isinstance(f.default, tuple) else f.default)
       for f in fields(SidelinkParams) if f.name != "key"])
