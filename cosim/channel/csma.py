"""One shared 802.11p medium: EDCA (CSMA/CA) with carrier sense, half-duplex, ACKs, SINR.

The built-in medium ``csma`` (:class:`cosim.channel.medium.Medium`; ``channel.medium: csma``,
parameters ``carrier_sense_dbm`` and ``fallback_rx_power_dbm`` in ``channel.medium_params``). Event-driven: no process
per station or per slot; every transmission schedules two callbacks (its end, and the end of its
ACK exchange) and every EDCA function at most one backoff-expiry callback at a time.

Model (as Veins ``Mac1609_4`` + ``Decider80211p`` and ns-3 WAVE, simplified where said):

- Power: ``P[i, j]``, the received power at j of a frame sent by i, set at every
  :meth:`CsmaMedium.update` for pairs closer than the radio model's ``max_range_m`` (farther
  ones neither interfere nor are sensed). SNR models (every built-in model but ``unit_disk``):
  transmit power + gains - path loss: with ``channel.link_state: correlated`` the loss of the
  channel's per-link state (the same as the graph's, :mod:`cosim.channel.linkstate`); with
  ``redrawn`` a sample from the medium's own stream (shadowing/LOS drawn independently of the
  draw that built the graph). PRR-only models (``unit_disk``, plug-ins
  without a link budget): ``fallback_rx_power_dbm`` on the graph's edges, nothing elsewhere.
- Carrier sense: node j is busy while the total power of the frames on air at j reaches
  ``carrier_sense_dbm`` or while j transmits. A unicast data frame also keeps busy every node
  that senses it (and its sender) until the end of its ACK slot (SIFS + ACK), whether or not the
  ACK is sent: this stands for the NAV of nodes that decoded the frame and for EIFS at those that
  did not (EIFS = SIFS + ACK + AIFS after the frame, the same instant).
- EDCA per (node, access category), the OCB parameter set (:data:`radio_models.ieee80211p.EDCA_OCB`):
  a frame that arrives with no backoff pending (none drawn yet, or the post-backoff has run out)
  while the medium is idle is sent once the medium has been idle for AIFS; one that arrives with
  no backoff pending while the medium is busy draws a backoff of uniform{0..CW} slots of 13 us; one
  that arrives during a post-backoff waits for its remaining count. A backoff counts down only
  while its node senses the medium idle and only after AIFS = SIFS + AIFSN x slot of idle; the
  count is frozen on busy and resumes after AIFS of idle. Every exchange is followed by a new
  backoff (post-backoff). EDCAFs are kept per node id across updates: a node absent from an
  update is frozen (it counts and sends nothing), and a node that (re)appears resumes after AIFS
  from the update if it finds the medium idle, at the next idle edge if busy. A unicast frame without ACK doubles CW (up to CWmax) and is retried up to
  ``max_retries`` times; broadcast frames are sent once. Two EDCAFs of one node that expire
  together: the higher-priority access category transmits, the lower one suffers an internal
  collision (CW doubled, retry counted), whatever order SimPy runs their events in.
- Half-duplex: a frame is lost at a receiver that transmits at any time during it.
- Reception by SINR: the interference of a frame is the largest total power of the other frames
  on air at its receiver during it (the minimum SINR over the frame, as Veins), re-evaluated at
  every frame start and every geometry update. A frame that spans an update is cut into
  segments (each that geometry's signal over the largest interference in that geometry) and
  decided on its minimum SINR and, for the cause, its minimum SNR over the segments. SNR models: the
  frame succeeds with the model's success probability at that SINR for its PSDU size (NIST error
  model, threshold, or Nakagami fading). PRR-only models: the edge's PRR if nothing else was on
  air at the receiver during the frame, else lost (no capture). One uniform number per frame
  decides it and its cause: lost even without interference = ``below_sensitivity``, lost only
  because of interference = ``collision``. ACKs (14 bytes at the highest basic rate not above
  the data rate; the basic rate set of an OCB station is the mandatory 3, 6, 12 Mb/s) are
  received by SINR the same way, with NIST reception at the ACK's own MCS (PRR-only models:
  lost only to interference). Propagation delay is zero; a receiver does not lock onto a preamble.
- Broadcast reception (CAMs, ``channel.cam``): with :attr:`CsmaMedium.broadcast_range_m` set,
  a broadcast frame of kind ``cam`` is decided at every node within that horizontal distance of
  its sender when it starts (not at farther ones): each receiver has its own interference (the
  largest total power of the other frames on air at it during the frame), its own half-duplex
  flag (it transmitted during the frame) and its own uniform number, with the same rules and
  causes as a unicast frame (PRR-only models: ``cam_prr(sender, receiver)`` if nothing else
  overlapped it there). Counted in :attr:`CsmaMedium.cam_rx`. Broadcasts are never ACKed or
  retried.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import simpy

import radio_models
from radio_models import ieee80211p
from radio_models.reception import NistReception, nist_packet_success_probability
from radio_models.snr import SnrRadioModel

from .framing import Framing
from .medium import CAM_OUTCOMES, LOSS_CAUSES, Frame, Medium, MediumSetup, child_stream, new_frame
from .topology import Topology, candidate_pairs

__all__ = ["CsmaMedium", "Frame", "LossCause", "LOSS_CAUSES", "CAM_OUTCOMES"]

_EPS = 1e-9  # s: events closer than this are simultaneous (float rounding of sums of airtimes)

LossCause = str


@lru_cache(maxsize=64)
def _ack_airtime(rate_bps: float) -> float:
    """PPDU time of the ACK to a frame sent at ``rate_bps`` (cached: numpy per call is slow)."""
    return float(ieee80211p.ofdm_airtime_s(ieee80211p.ACK_BYTES, ieee80211p.ack_rate_bps(rate_bps)))


def _mw(dbm: float) -> float:
    return 10.0 ** (dbm / 10.0)


@dataclass(eq=False)
class _Tx:
    sender: int
    receiver: int  # -1: broadcast
    frame: Frame | None
    start: float
    end: float
    is_ack: bool = False
    edcaf: _Edcaf | None = None
    max_interf_mw: float = 0.0  # largest interference at the receiver since the last geometry update
    min_snr: float = math.inf  # SNR models: the lowest SNR / SINR (linear) of the frame's segments
    min_sinr: float = math.inf  # before the last geometry update (inf: none yet)
    half_duplex: bool = False
    ack_ok: bool = False
    data_tx: _Tx | None = None  # an ACK's data frame
    rx_nodes: np.ndarray | None = None  # a broadcast's receivers (node ids), decided one by one
    rx_interf: np.ndarray | None = None  # their largest interference during it (mW)
    rx_hd: np.ndarray | None = None  # they transmitted during it
    rx_min_snr: np.ndarray | None = None  # as min_snr / min_sinr, per receiver (None: no update yet)
    rx_min_sinr: np.ndarray | None = None


@dataclass(eq=False)
class _Edcaf:
    node: int
    ac: str
    aifs_s: float
    cw_min: int
    cw_max: int
    priority: int
    queue: deque = field(default_factory=deque)
    cw: int = 0
    backoff: int | None = None  # remaining slots; None: no backoff pending
    drawn_at: float = -math.inf  # when the pending backoff was drawn
    count_from: float | None = None  # time the countdown (re)started; None: frozen
    version: int = 0
    expiry: float | None = None
    transmitting: bool = False


class CsmaMedium(Medium):
    """The shared medium of one channel (see the module docstring).

    A channel makes it with :meth:`from_setup` (the medium contract); tests may call the
    constructor directly.

    Args:
        env: SimPy environment.
        model: the channel's radio model.
        framing: frame overheads (PPDU sizes).
        rng: the medium's random stream (backoffs, reception draws, path-loss samples).
        carrier_sense_dbm, fallback_rx_power_dbm, retry_limit, extra_airtime_s: see ChannelConfig.
        on_attempt: called as ``on_attempt(frame, delivered, cause)`` after every data attempt.
        prr: ``prr(sender, receiver, kind)``: the graph's success probability of a frame (PRR-only
            models).
    """

    name = "csma"
    broadcast = True

    def __init__(
        self,
        env: simpy.Environment,
        model: radio_models.RadioModel,
        framing: Framing,
        rng: np.random.Generator,
        *,
        carrier_sense_dbm: float = -85.0,
        fallback_rx_power_dbm: float = -65.0,
        retry_limit: int = 7,
        extra_airtime_s: float = 0.0,
        on_attempt: Callable[[Frame, bool, str | None], None] | None = None,
        prr: Callable[[int, int, str], float] | None = None,
    ):
        self.env = env
        self.model = model
        self.framing = framing
        self.rng = rng
        self.cs_mw = _mw(carrier_sense_dbm) * (1.0 - 1e-9)
        self.fallback_mw = _mw(fallback_rx_power_dbm)
        self.retry_limit = int(retry_limit)
        self.extra_airtime_s = float(extra_airtime_s)
        self.on_attempt = on_attempt
        self.prr = prr
        self.snr_model = isinstance(model, SnrRadioModel)
        self.noise_mw = _mw(model.budget.noise_dbm) if self.snr_model else 0.0
        self.slot = ieee80211p.SLOT_S
        self.sifs = ieee80211p.SIFS_S
        self._idx: dict[int, int] = {}
        self._nodes = np.empty(0, dtype=np.int64)
        self._P = np.zeros((0, 0))
        self._D = np.zeros((0, 0))
        self._hears = np.zeros((0, 0), dtype=bool)
        self._busy = np.zeros(0, dtype=bool)
        self._busy_cache: dict[tuple[tuple[int, ...], tuple[int, ...]], np.ndarray] = {}
        self._idle_since: dict[int, float] = {}
        self._on_air: list[_Tx] = []
        self._reserved: list[_Tx] = []
        self._edcafs: dict[int, dict[str, _Edcaf]] = {}
        self._xy = np.zeros((0, 2))
        self.broadcast_range_m: float | None = None  # set: CAMs are decided at receivers within it
        self.cam_prr: Callable[[int, int], float] | None = None  # PRR-only models: a CAM's clean PRR
        self.reset_stats()

    _RANGES = {"carrier_sense_dbm": (-120.0, 0.0), "fallback_rx_power_dbm": (-120.0, 30.0)}

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[tuple[str, str]]:
        problems = []
        for key, value in params.items():
            low, high = cls._RANGES.get(key, (-math.inf, math.inf))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                problems.append((key, f"must be a number in [{low:g}, {high:g}] (dBm); got {value!r}"))
        return problems

    @classmethod
    def from_setup(cls, setup: MediumSetup, *, carrier_sense_dbm: float = -85.0,
                   fallback_rx_power_dbm: float = -65.0) -> "CsmaMedium":
        """The medium of a channel: ``carrier_sense_dbm`` (a node senses the medium busy when the
        power of ongoing frames reaches it, dBm, in [-120, 0]) and ``fallback_rx_power_dbm``
        (PRR-only radio models: the received power of every in-range link, dBm, in [-120, 30])."""
        problems = cls.check_params({"carrier_sense_dbm": carrier_sense_dbm,
                                     "fallback_rx_power_dbm": fallback_rx_power_dbm})
        if problems:
            raise ValueError("; ".join(f"{key} {text}" for key, text in problems))

        def prr(sender: int, receiver: int, kind: str) -> float:
            topo = setup.graph()
            index = topo.edge_index(sender, receiver)
            if index < 0:
                return 0.0
            return float(topo.request_success_probability[index] if kind == "request"
                         else topo.success_probability[index])

        return cls(setup.env, setup.model, setup.framing, child_stream(setup.rng),
                   carrier_sense_dbm=float(carrier_sense_dbm), fallback_rx_power_dbm=float(fallback_rx_power_dbm),
                   retry_limit=setup.retry_limit, extra_airtime_s=setup.extra_airtime_s,
                   on_attempt=setup.on_attempt, prr=prr)

    # ---------------------------------------------------------------- geometry

    def update(
        self,
        nodes: np.ndarray,
        positions: np.ndarray,
        heights: np.ndarray,
        topology: Topology,
        path_loss_db: Callable[[np.ndarray, np.ndarray, radio_models.LinkBatch], np.ndarray] | None = None,
    ) -> None:
        """New positions (nodes sorted ascending, as the topology): recompute received powers.

        ``path_loss_db(u, v, links)``: the path loss of each pair (u < v node ids), e.g. the
        channel's correlated link state, so that the medium sees the same losses as the graph;
        None: sampled from the medium's own stream.
        """
        now = self.env.now
        self._close_presence(now)
        self._close_segments()
        old_busy = {int(n): bool(b) for n, b in zip(self._nodes.tolist(), self._busy.tolist())}
        for gone in set(old_busy) - {int(v) for v in np.asarray(nodes).tolist()}:
            self._freeze(gone, now)  # a node away from the medium counts nothing down
        n = len(nodes)
        self._nodes = np.asarray(nodes, dtype=np.int64)
        self._idx = {int(v): i for i, v in enumerate(self._nodes.tolist())}
        P = np.zeros((n, n))
        D = np.zeros((n, n))
        if self.snr_model and n > 1:
            search = positions
            if positions.shape[1] == 3:
                search = positions.copy()
                search[:, 2] += heights
            pairs = candidate_pairs(search, float(self.model.max_range_m))
            if pairs.shape[0]:
                flat = np.sort(pairs[:, 0].astype(np.int64) * n + pairs[:, 1])
                a, b = np.divmod(flat, n)
                links = radio_models.LinkBatch.from_positions(
                    positions[a], positions[b], tx_height_m=heights[a], rx_height_m=heights[b]
                )
                if path_loss_db is not None:
                    loss = path_loss_db(self._nodes[a], self._nodes[b], links)
                else:
                    loss = self.model.sample_path_loss_db(links, self.rng)
                mw = np.power(10.0, (self.model.budget.eirp_plus_rx_gain_dbm - loss) / 10.0)
                P[a, b] = P[b, a] = mw
                D[a, b] = D[b, a] = links.horizontal_distance_m
        elif len(topology):
            a = np.array([self._idx[int(u)] for u in topology.u.tolist()], dtype=np.intp)
            b = np.array([self._idx[int(v)] for v in topology.v.tolist()], dtype=np.intp)
            P[a, b] = P[b, a] = self.fallback_mw
            D[a, b] = D[b, a] = topology.distance_m
        self._P, self._D = P, D
        self._xy = np.asarray(positions, dtype=float)[:, :2].copy() if n else np.zeros((0, 2))
        self._hears = P >= self.cs_mw
        self._busy_cache: dict[tuple[tuple[int, ...], tuple[int, ...]], np.ndarray] = {}
        self._busy = np.array([old_busy.get(int(v), False) for v in self._nodes.tolist()], dtype=bool)
        arrived = [int(v) for v in self._nodes.tolist() if int(v) not in old_busy]
        for v in self._nodes.tolist():
            self._idle_since.setdefault(int(v), now)
            self._presence_from.setdefault(int(v), now)
        for gone in [v for v in self._presence_from if v not in self._idx]:
            self._presence_from.pop(gone, None)
            if gone in self._busy_from:
                self._busy_time[gone] = self._busy_time.get(gone, 0.0) + now - self._busy_from.pop(gone)
        self._recompute_busy()
        # A node that (re)appears had no medium to sense: _recompute_busy froze it if it finds
        # the medium busy; if idle, its EDCAFs (kept per node id, e.g. of a reused agent slot,
        # frozen when the vehicle left) resume after AIFS of idle from now.
        for v in arrived:
            if not self._busy[self._idx[v]]:
                self._resume(v, now)
        self._update_interference()  # frames on the air: their interference in the new geometry

    def _close_segments(self) -> None:
        """Before the geometry changes (SNR models): fold each frame on the air's SNR and SINR
        so far (the old signal over the old interference) into its minimum, and start a new
        segment, so that a frame is decided on its minimum SINR over every geometry it spans.
        PRR-only models keep the largest interference over the whole frame (any overlap loses
        it)."""
        if not self.snr_model:
            return
        noise = self.noise_mw
        for t in self._on_air:
            i = self._idx.get(t.sender)
            if t.rx_nodes is not None:
                if not t.rx_nodes.shape[0]:
                    continue
                pos, present = self._rx_index(t.rx_nodes)
                signal = self._P[i, pos] * present if i is not None else np.zeros(t.rx_nodes.shape[0])
                if t.rx_min_snr is None:
                    t.rx_min_snr = np.full(signal.shape[0], math.inf)
                    t.rx_min_sinr = np.full(signal.shape[0], math.inf)
                np.minimum(t.rx_min_snr, signal / noise, out=t.rx_min_snr)
                np.minimum(t.rx_min_sinr, signal / (noise + t.rx_interf), out=t.rx_min_sinr)
                t.rx_interf[:] = 0.0
                continue
            j = self._idx.get(t.receiver) if t.receiver >= 0 else None
            signal = float(self._P[i, j]) if i is not None and j is not None else 0.0
            t.min_snr = min(t.min_snr, signal / noise)
            t.min_sinr = min(t.min_sinr, signal / (noise + t.max_interf_mw))
            t.max_interf_mw = 0.0

    def has_station(self, node: int) -> bool:
        return int(node) in self._idx

    @property
    def cam_queue_delays(self) -> list[float]:
        return self._cam_queue_delays

    def rx_power_dbm(self, sender: int, receiver: int) -> float:
        """Received power at ``receiver`` of a frame of ``sender`` (-inf where none)."""
        i, j = self._idx.get(sender), self._idx.get(receiver)
        if i is None or j is None or self._P[i, j] <= 0:
            return -math.inf
        return 10.0 * math.log10(self._P[i, j])

    # ---------------------------------------------------------------- frames in

    def send(
        self,
        sender: int,
        receiver: int,
        payload_bits: int,
        rate_bps: float,
        *,
        ac: str = "AC_BE",
        kind: str = "data",
        tag: Any = None,
    ) -> Frame:
        """Queue one frame at ``sender``'s EDCAF of ``ac`` (``receiver`` -1: broadcast).

        Its ``done`` event succeeds with the frame when the MAC is finished with it: ACKed,
        dropped after the retry limit (``delivered`` tells whether a copy arrived anyway), or
        sent (broadcast).
        """
        f = new_frame(self.env, self.framing, sender, receiver, payload_bits, rate_bps, ac, kind, tag)
        e = self._edcaf(f.sender, ac)
        e.queue.append(f)
        if len(e.queue) == 1 and not e.transmitting:
            busy = self._is_busy(f.sender)
            # No backoff pending: none drawn yet, or the post-backoff has run out (while the
            # medium is busy a countdown is frozen, so its remaining count is exact). A frame
            # that finds the medium busy then draws a backoff (IEEE 802.11 EDCA); one that finds
            # it idle may go once the medium has been idle for AIFS. A post-backoff still
            # counting is simply continued, and so is one drawn at this very instant (a frame
            # queued as the previous exchange ends, e.g. a saturated source, was waiting for it).
            ran_out = busy and e.count_from is None and e.backoff == 0 and e.drawn_at < self.env.now
            if e.backoff is None or ran_out:
                if busy:
                    e.backoff = self._draw(e.cw)
                    e.drawn_at = self.env.now
                    # frozen until the next idle edge (count_from may still hold the time of the
                    # last one: _freeze skips an EDCAF with no backoff pending)
                    e.count_from = None
                else:  # idle: may go at once once AIFS of idle has passed
                    e.backoff = 0
                    e.count_from = self._idle_since.get(f.sender, self.env.now) + e.aifs_s
            self._schedule(e)
        return f

    def abort(self, frame: Frame, *, cancelled: bool = False) -> None:
        """Forget ``frame`` (its transfer gave up): dropped from the queue unless on the air. A
        frame on the air stays there and counts when its attempt ends, cancelled or not."""
        frame.cancelled = True
        e = self._edcafs.get(frame.sender, {}).get(frame.ac)
        if e is not None and not (e.transmitting and e.queue and e.queue[0] is frame):
            try:
                e.queue.remove(frame)
            except ValueError:
                pass

    # ---------------------------------------------------------------- EDCA

    def _edcaf(self, node: int, ac: str) -> _Edcaf:
        per_node = self._edcafs.setdefault(node, {})
        e = per_node.get(ac)
        if e is None:
            aifsn, cw_min, cw_max = ieee80211p.EDCA_OCB[ac]
            e = per_node[ac] = _Edcaf(node, ac, ieee80211p.aifs_s(aifsn), cw_min, cw_max,
                                      ieee80211p.ACCESS_CATEGORIES.index(ac), cw=cw_min)
            if not self._is_busy(node):
                e.count_from = self._idle_since.get(node, self.env.now) + e.aifs_s
        return e

    def _draw(self, cw: int) -> int:
        return int(self.rng.integers(0, cw + 1))

    def _is_busy(self, node: int) -> bool:
        i = self._idx.get(node)
        if i is None:
            return any(t.sender == node for t in self._on_air) or any(t.sender == node for t in self._reserved)
        return bool(self._busy[i])

    def _schedule(self, e: _Edcaf) -> None:
        e.version += 1
        e.expiry = None
        if not e.queue or e.transmitting or e.backoff is None or e.count_from is None:
            return
        now = self.env.now
        at = max(now, e.count_from + e.backoff * self.slot)
        e.expiry = at
        version = e.version
        ev = self.env.timeout(at - now)
        ev.callbacks.append(lambda _ev, e=e, version=version: self._expire(e, version))

    def _freeze(self, node: int, now: float) -> None:
        for e in self._edcafs.get(node, {}).values():
            if e.backoff is None or e.count_from is None:
                continue
            if e.expiry is not None and e.expiry <= now + _EPS:
                continue  # its slot boundary is now: it transmits (the busy medium came too late)
            if now > e.count_from:
                elapsed = int(math.floor((now - e.count_from) / self.slot + 1e-6))
                e.backoff = max(0, e.backoff - elapsed)
            e.count_from = None
            e.version += 1
            e.expiry = None

    def _resume(self, node: int, now: float) -> None:
        self._idle_since[node] = now
        for e in self._edcafs.get(node, {}).values():
            if e.transmitting:
                continue
            e.count_from = now + e.aifs_s
            if e.backoff is not None:
                self._schedule(e)

    def _expire(self, e: _Edcaf, version: int) -> None:
        if version != e.version:
            return
        e.expiry = None
        while e.queue and e.queue[0].cancelled:
            e.queue.popleft()
        if not e.queue:
            e.backoff = None
            return
        if any(t.sender == e.node for t in self._on_air) or self._outranked(e):  # internal collision
            frame = e.queue[0]
            frame.retries += 1
            if frame.retries > self.retry_limit and frame.receiver >= 0:
                self._finish_frame(e, frame, "retry_limit")
            else:
                e.cw = min(2 * e.cw + 1, e.cw_max)
            e.backoff = self._draw(e.cw)
            e.drawn_at = self.env.now
            e.count_from = None
            return
        self._transmit(e, e.queue[0])

    def _outranked(self, e: _Edcaf) -> bool:
        """Whether a higher-priority EDCAF of the same node expires in this slot too: it gets the
        transmit opportunity, ``e`` suffers the internal collision (802.11 EDCA)."""
        now = self.env.now
        return any(o is not e and o.priority > e.priority and o.queue and o.expiry is not None
                   and abs(o.expiry - now) <= _EPS for o in self._edcafs.get(e.node, {}).values())

    # ---------------------------------------------------------------- air

    def _transmit(self, e: _Edcaf, frame: Frame) -> None:
        now = self.env.now
        e.transmitting = True
        e.backoff = None
        e.count_from = None
        if frame.first_tx_at is None:
            frame.first_tx_at = now
            (self._cam_queue_delays if frame.kind == "cam" else self._queue_delays).append(now - frame.enqueued_at)
        duration = self.framing.airtime_s(frame.payload_bits, frame.rate_bps) + self.extra_airtime_s
        tx = _Tx(frame.sender, frame.receiver, frame, now, now + duration, edcaf=e)
        self._start(tx)
        self.frames_sent += 1
        self.frames_sent_by_kind[frame.kind] = self.frames_sent_by_kind.get(frame.kind, 0) + 1
        self.airtime_s += duration
        ev = self.env.timeout(duration)
        ev.callbacks.append(lambda _ev, tx=tx: self._data_end(tx))

    def _start(self, tx: _Tx) -> None:
        if (tx.receiver < 0 and self.broadcast_range_m is not None and tx.frame is not None
                and tx.frame.kind == "cam"):
            self._broadcast_receivers(tx)
        for o in self._on_air:
            if o.receiver == tx.sender:
                o.half_duplex = True
            if tx.receiver >= 0 and o.sender == tx.receiver:
                tx.half_duplex = True
            if o.rx_nodes is not None:
                o.rx_hd |= o.rx_nodes == tx.sender
        self._on_air.append(tx)
        self._update_interference()
        self._recompute_busy()

    def _broadcast_receivers(self, tx: _Tx) -> None:
        """The nodes within ``broadcast_range_m`` of ``tx``'s sender (each decides on its own);
        those transmitting now lose it (half-duplex)."""
        i = self._idx.get(tx.sender)
        if i is None:
            tx.rx_nodes = np.empty(0, dtype=np.int64)
        else:
            d = self._xy - self._xy[i]
            near = np.einsum("ij,ij->i", d, d) <= self.broadcast_range_m ** 2
            near[i] = False
            tx.rx_nodes = self._nodes[near]
        tx.rx_interf = np.zeros(tx.rx_nodes.shape[0])
        tx.rx_hd = np.isin(tx.rx_nodes, [o.sender for o in self._on_air])

    def _rx_index(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Current matrix indices of ``nodes`` and which of them are still present."""
        if not self._nodes.shape[0]:
            return np.zeros(nodes.shape[0], dtype=np.intp), np.zeros(nodes.shape[0], dtype=bool)
        pos = np.minimum(np.searchsorted(self._nodes, nodes), self._nodes.shape[0] - 1)
        return pos, self._nodes[pos] == nodes

    def _update_interference(self) -> None:
        if len(self._on_air) < 2:
            return
        senders = [self._idx.get(t.sender) for t in self._on_air]
        for t, own in zip(self._on_air, senders):
            if t.rx_nodes is not None and t.rx_nodes.shape[0]:
                others = [s for o, s in zip(self._on_air, senders) if o is not t and s is not None]
                if others:
                    pos, present = self._rx_index(t.rx_nodes)
                    total = self._P[np.ix_(others, pos)].sum(axis=0) * present
                    np.maximum(t.rx_interf, total, out=t.rx_interf)
                continue
            r = self._idx.get(t.receiver) if t.receiver >= 0 else None
            if r is None:
                continue
            total = 0.0
            for o, s in zip(self._on_air, senders):
                if o is not t and s is not None:
                    total += self._P[s, r]
            if total > t.max_interf_mw:
                t.max_interf_mw = total

    def _data_end(self, tx: _Tx) -> None:
        self._on_air.remove(tx)
        frame = tx.frame
        e = tx.edcaf
        if frame.receiver < 0:  # broadcast: sent once, no ACK
            if tx.rx_nodes is not None:
                self._receive_broadcast(tx)
            e.transmitting = False
            self._finish_frame(e, frame, None)
            self._recompute_busy()
            return
        ok, cause = self._receive(tx, frame.psdu_bytes, frame.kind)
        if ok:
            frame.delivered = True
        else:
            frame.last_cause = cause
            self.frames_lost[cause] += 1
        if self.on_attempt is not None:
            self.on_attempt(frame, ok, cause)
        ack_s = self._ack_airtime(frame.rate_bps)
        tx.end = self.env.now  # the reservation below is measured from the true end
        self._reserved.append(tx)
        if ok:
            ev = self.env.timeout(self.sifs)
            ev.callbacks.append(lambda _ev, tx=tx, ack_s=ack_s: self._ack_start(tx, ack_s))
        else:
            ev = self.env.timeout(self.sifs + ack_s)
            ev.callbacks.append(lambda _ev, tx=tx: self._exchange_end(tx))
        self._recompute_busy()

    def _ack_airtime(self, rate_bps: float) -> float:
        return _ack_airtime(float(rate_bps))

    def _ack_start(self, data: _Tx, ack_s: float) -> None:
        now = self.env.now
        ack = _Tx(data.receiver, data.sender, None, now, now + ack_s, is_ack=True, data_tx=data)
        self._start(ack)
        self.airtime_s += ack_s
        ev = self.env.timeout(ack_s)
        ev.callbacks.append(lambda _ev, ack=ack: self._ack_end(ack))

    def _ack_end(self, ack: _Tx) -> None:
        self._on_air.remove(ack)
        ok, _cause = self._receive(ack, ieee80211p.ACK_BYTES, "ack", ack.data_tx.frame.rate_bps)
        ack.data_tx.ack_ok = ok
        self._exchange_end(ack.data_tx)

    def _exchange_end(self, tx: _Tx) -> None:
        self._reserved.remove(tx)
        e, frame = tx.edcaf, tx.frame
        e.transmitting = False
        if tx.ack_ok or frame.cancelled:
            self._finish_frame(e, frame, None)
        else:
            frame.retries += 1
            if frame.retries > self.retry_limit:
                self._finish_frame(e, frame, "retry_limit")
            else:
                e.cw = min(2 * e.cw + 1, e.cw_max)
                self.retransmissions += 1
        e.backoff = self._draw(e.cw)  # post-backoff, or the retry's backoff
        e.drawn_at = self.env.now
        e.count_from = None
        self._recompute_busy()
        if not self._is_busy(e.node):  # no idle edge comes (the node was idle already)
            e.count_from = self._idle_since.get(e.node, self.env.now) + e.aifs_s
            self._schedule(e)

    def _finish_frame(self, e: _Edcaf, frame: Frame, drop: str | None) -> None:
        if e.queue and e.queue[0] is frame:
            e.queue.popleft()
        e.cw = e.cw_min
        if drop is not None:
            self.frames_dropped += 1
            self.frames_lost["retry_limit"] += 1
        if not frame.done.triggered:
            frame.done.succeed(frame)
        if frame.receiver >= 0 and frame.delivered:
            self._delivered_bits[(frame.sender, frame.receiver)] = (
                self._delivered_bits.get((frame.sender, frame.receiver), 0) + frame.payload_bits
            )

    def _receive(self, tx: _Tx, psdu_bytes: int, kind: str, data_rate_bps: float | None = None) -> tuple[bool, str | None]:
        """Whether ``tx`` decodes at its receiver, and the cause of a loss. ``kind`` "ack": the
        ACK to a data frame sent at ``data_rate_bps``, decided at its own rate (see
        :meth:`_success`)."""
        u = float(self.rng.random())
        if tx.half_duplex:
            return False, "half_duplex"
        i, j = self._idx.get(tx.sender), self._idx.get(tx.receiver)
        if i is None or j is None or self._P[i, j] <= 0.0:
            return False, "below_sensitivity"
        signal = self._P[i, j]
        if self.snr_model:
            snr_lin = min(tx.min_snr, signal / self.noise_mw)  # the worst segment of the frame
            sinr_lin = min(tx.min_sinr, signal / (self.noise_mw + tx.max_interf_mw))
            if snr_lin <= 0.0:  # out of reach during part of it
                return False, "below_sensitivity"
            snr, sinr = 10.0 * math.log10(snr_lin), 10.0 * math.log10(sinr_lin)
            p_clean, p_sinr = self._success(np.array([snr, sinr]), self._D[i, j], psdu_bytes,
                                            ieee80211p.ack_rate_bps(data_rate_bps) if kind == "ack" else None)
        else:
            if kind == "ack":
                p_clean = 1.0
            else:
                p_clean = self.prr(tx.sender, tx.receiver, kind) if self.prr is not None else 1.0
            p_sinr = p_clean if tx.max_interf_mw <= 0.0 else 0.0
        if u < p_sinr:
            return True, None
        if u < p_clean:
            return False, "collision"
        return False, "below_sensitivity"

    def _success(self, snr_db: np.ndarray, distance_m: float, psdu_bytes: int, ack_rate_bps: float | None):
        """The SNR model's success probabilities of a frame at each of ``snr_db`` (two values:
        without and with the interference). ``ack_rate_bps``: the frame is an ACK sent at that
        basic rate; with NIST reception it is decided at that rate's MCS (as Veins' decider
        does for a frame at any rate), not at the model's data rate. Threshold and Nakagami
        reception have one SNR threshold, not one per rate: an ACK is decided against it as a
        data frame is."""
        if (ack_rate_bps is not None and isinstance(getattr(self.model, "reception", None), NistReception)
                and type(self.model)._success is SnrRadioModel._success
                and ack_rate_bps / 1e6 in ieee80211p.MCS_TABLE):
            p = nist_packet_success_probability(snr_db, 8 * psdu_bytes, ack_rate_bps / 1e6)
            return float(p[0]), float(p[1])
        links = radio_models.LinkBatch.from_distances(np.array([distance_m] * 2))
        p = self.model._success(snr_db, links, np.array([8 * psdu_bytes]))
        return float(p[0, 0]), float(p[1, 0])

    def _receive_broadcast(self, tx: _Tx) -> None:
        """Decide a CAM at each of its receivers still present (see the module docstring)."""
        pos, present = self._rx_index(tx.rx_nodes)
        k = int(present.sum())
        if not k:
            return
        j = pos[present]
        interf = tx.rx_interf[present]
        hd = tx.rx_hd[present]
        u = self.rng.random(k)
        i = self._idx.get(tx.sender)
        signal = self._P[i, j] if i is not None else np.zeros(k)
        heard = signal > 0.0
        p_clean = np.zeros(k)
        p_sinr = np.zeros(k)
        if heard.any():
            if self.snr_model:
                s = signal[heard]
                snr_lin = s / self.noise_mw
                sinr_lin = s / (self.noise_mw + interf[heard])
                if tx.rx_min_snr is not None:  # the frame spans geometry updates: worst segment
                    snr_lin = np.minimum(snr_lin, tx.rx_min_snr[present][heard])
                    sinr_lin = np.minimum(sinr_lin, tx.rx_min_sinr[present][heard])
                with np.errstate(divide="ignore"):  # 0 (out of reach in a segment): -inf dB, p = 0
                    snr, sinr = 10.0 * np.log10(snr_lin), 10.0 * np.log10(sinr_lin)
                d = self._D[i, j[heard]]
                links = radio_models.LinkBatch.from_distances(np.concatenate([d, d]))
                p = np.asarray(self.model._success(np.concatenate([snr, sinr]), links,
                                                   np.array([8 * tx.frame.psdu_bytes])), dtype=float)
                p = p.reshape(2 * int(heard.sum()), -1)[:, 0]
                p_clean[heard], p_sinr[heard] = p[: len(s)], p[len(s):]
            else:
                prr = self.cam_prr
                rx = self._nodes[j[heard]].tolist()
                clean = np.array([prr(tx.sender, r) if prr is not None else 1.0 for r in rx], dtype=float)
                p_clean[heard] = clean
                p_sinr[heard] = np.where(interf[heard] <= 0.0, clean, 0.0)
        ok = (u < p_sinr) & ~hd
        lost_hd = hd
        collision = ~hd & ~ok & (u < p_clean)
        below = ~hd & ~ok & ~(u < p_clean)
        self.cam_rx["delivered"] += int(ok.sum())
        self.cam_rx["half_duplex"] += int(lost_hd.sum())
        self.cam_rx["collision"] += int(collision.sum())
        self.cam_rx["below_sensitivity"] += int(below.sum())

    def _recompute_busy(self) -> None:
        n = self._nodes.shape[0]
        if n == 0:
            return
        idx = self._idx
        on_air = tuple(i for i in (idx.get(t.sender) for t in self._on_air) if i is not None)
        reserved = tuple(i for i in (idx.get(t.sender) for t in self._reserved) if i is not None)
        # Between two geometry updates the same senders come back on the air again and again
        # (every frame edge lands here): the busy vector of each set of senders is kept until
        # the next update. The arrays in the cache are never written to.
        key = (on_air, reserved)
        busy = self._busy_cache.get(key)
        if busy is None:
            # one vectorised reduction over the senders on the air and one over the
            # reservations (rows are added in the order of the list, as a loop of += would)
            if on_air:
                busy = self._P[list(on_air)].sum(axis=0) >= self.cs_mw
                busy[list(on_air)] = True
            else:
                busy = np.zeros(n, dtype=bool)
            if reserved:
                busy |= self._hears[list(reserved)].any(axis=0)
                busy[list(reserved)] = True
            busy.flags.writeable = False
            self._busy_cache[key] = busy
        if busy is self._busy:
            return
        changed = (busy != self._busy).nonzero()[0]
        self._busy = busy
        if not changed.size:
            return
        now = self.env.now
        for i in changed.tolist():
            node = int(self._nodes[i])
            if busy[i]:
                self._busy_from[node] = now
                self._freeze(node, now)
            else:
                start = self._busy_from.pop(node, None)
                if start is not None:
                    self._busy_time[node] = self._busy_time.get(node, 0.0) + now - start
                self._resume(node, now)

    # ---------------------------------------------------------------- accounting

    def reset_stats(self) -> None:
        now = self.env.now
        self.frames_sent = 0
        self.frames_sent_by_kind: dict[str, int] = {}
        self.frames_lost = {c: 0 for c in LOSS_CAUSES}
        self.cam_rx = {c: 0 for c in CAM_OUTCOMES}
        self.frames_dropped = 0
        self.retransmissions = 0
        self.airtime_s = 0.0
        self._queue_delays: list[float] = []  # data and request frames (CAMs apart)
        self._cam_queue_delays: list[float] = []
        self._delivered_bits: dict[tuple[int, int], int] = {}
        self._busy_time: dict[int, float] = {}
        self._presence_time: dict[int, float] = {}
        self._stats_from = now
        self._presence_from = {int(v): now for v in self._nodes.tolist()}
        self._busy_from = {int(v): now for v, b in zip(self._nodes.tolist(), self._busy.tolist()) if b}

    def _close_presence(self, now: float) -> None:
        for v, t0 in self._presence_from.items():
            self._presence_time[v] = self._presence_time.get(v, 0.0) + now - t0
            self._presence_from[v] = now

    def busy_ratios(self) -> dict[int, float]:
        """Channel busy ratio per node since the last reset: busy time / time present."""
        now = self.env.now
        self._close_presence(now)
        out = {}
        for v, present in self._presence_time.items():
            busy = self._busy_time.get(v, 0.0) + (now - self._busy_from[v] if v in self._busy_from else 0.0)
            if present > 0:
                out[v] = min(1.0, busy / present)
        return out

    def metrics(self) -> dict[str, float]:
        cbr = self.busy_ratios()
        now = self.env.now
        dt = now - self._stats_from
        lost = sum(self.frames_lost[c] for c in LOSS_CAUSES if c != "retry_limit")
        delays = np.asarray(self._queue_delays, dtype=float)
        goodput = [b / dt for b in self._delivered_bits.values()] if dt > 0 else []
        out = {
            "channel_busy_ratio_mean": float(np.mean(list(cbr.values()))) if cbr else float("nan"),
            "channel_busy_ratio_max": float(max(cbr.values())) if cbr else float("nan"),
            "mac_frames_sent": int(self.frames_sent),
            "mac_frames_lost": int(lost),
        }
        for c in LOSS_CAUSES:
            out[f"mac_frames_lost_{c}"] = int(self.frames_lost[c])
        out["mac_cam_frames_sent"] = int(self.frames_sent_by_kind.get("cam", 0))
        out["mac_queue_delay_mean_s"] = float(delays.mean()) if delays.size else float("nan")
        out["mac_queue_delay_p95_s"] = float(np.percentile(delays, 95)) if delays.size else float("nan")
        out["mac_link_goodput_mean_bps"] = float(np.mean(goodput)) if goodput else float("nan")
        return out

    def goodput_bps(self) -> dict[tuple[int, int], float]:
        """Payload bits delivered per (sender, receiver) since the last reset, per second."""
        dt = self.env.now - self._stats_from
        return {k: v / dt for k, v in self._delivered_bits.items()} if dt > 0 else {}
