"""The V2V channel: the graph of the current step and pull transfers as SimPy processes.

Time model (docs/design.md, "The V2V channel"):

- :meth:`Channel.update` is called after every traffic step with the vehicles present; it
  rebuilds the graph (spatial index + one vectorised radio-model evaluation). Positions and
  link qualities are piecewise constant until the next update (as in Veins).
- :meth:`Channel.pull` starts one transfer process: a request packet (requester -> responder),
  then ``respond()`` at the responder, then the response cut into packets of ``payload_bytes``
  (responder -> requester) holding one link slot at each end. A packet goes out as one or more
  802.11p MAC frames (fragments at the MSDU limit, :mod:`cosim.channel.framing`); the
  "packets" of the accounting are these frames. ``medium: independent``: each frame takes its
  PPDU airtime + ``per_packet_overhead_s`` and arrives with the success probability of the edge
  (for a frame of that kind: request or payload) *at the end of its airtime*; a lost frame is
  resent up to ``max_retries`` times. ``medium: csma``: frames go through one shared 802.11p
  EDCA medium (:mod:`cosim.channel.csma`): they wait for the channel, collide, are ACKed and
  retried by the MAC, and arrive by SINR.
  An update that removes the edge (out of range, or a vehicle gone) fails the transfer at that
  moment. The request holds no slot (a short control message).
- ``ideal`` mode: zero time, no loss, but the pair must be neighbours at request time.
- :meth:`Channel.close` (end of an epoch) cancels what is in flight and records it.

Accounting of frames (``channel_*`` columns, ``TransferResult.packets_*``): a frame is counted
when its attempt ends (delivered or lost). ``independent``: a frame cut short by a break or a
timeout counts then, as sent and lost; ``csma``: the frame stays on the air and counts when it
ends (the transfer has already failed). Either medium: a frame still on the air when its
transfer is cancelled (:meth:`Channel.close` at the epoch end) is not counted, nor are frames
still queued.

Randomness: two streams spawned from the given Generator, one for the radio model (the graph)
and one for packet losses, so the sequence of graphs does not depend on the traffic of
transfers. Every packet draws one uniform number, whatever its probability.

Link state (SNR models with random terms): ``channel.link_state: redrawn`` draws shadowing, LOS
state and blockage afresh per link at every update; ``correlated`` keeps them per link and lets
them evolve with the distance moved (:mod:`cosim.channel.linkstate`, exponential
autocorrelation with the model's ``decorrelation_distance_m``), from the radio stream, and the
csma medium uses the same losses as the graph.

Background CAMs (``channel.cam.enabled``, csma only; docs/medium.md): every station of the
medium broadcasts a CAM of ``cam.bytes`` every ``1 / cam.rate_hz`` s at ``cam.access_category``
(AC_VO), from a phase drawn uniformly in [0, 1 / rate) when it appears. Stations are the CAVs
(``nodes``) and the equipped ones among ``background_ids`` (human-driven vehicles): a vehicle
is equipped iff its own uniform number u(key) < ``cam.penetration`` (binomial count), u a keyed
hash of the vehicle's key under a salt drawn once per channel (:meth:`Channel.equip_uniform`).
u depends on the seed and the key only, not on when the vehicle arrives, on the other vehicles
or on any other draw, so at every update the set equipped at p is a subset of the set at
p' > p (a penetration sweep adds senders instead of redrawing them), and a vehicle that comes
back keeps its answer. Background stations get node ids from :data:`BACKGROUND_ID_BASE` up (in
the sorted order of the keys equipped at an update); they are in the medium only, never in the
graph, so they take no part in transfers. A CAM still waiting for the medium when the next one
is generated is dropped (the newer one replaces it; ``cam_dropped_stale``).

Streams with CAMs: CAM phases, the equip salt, the PRR-only graph over all stations and the
correlated link state of pairs with a background station each come from child streams of the
loss stream; with ``link_state: correlated`` the CAV pairs keep the graph's state (evaluated
once per update, at the graph) and pairs with a background station a second
:class:`~cosim.channel.linkstate.CorrelatedLinkState` of their own. Turning CAMs on, or changing
their penetration, therefore leaves the CAV graph's draws and the CAV-to-CAV losses alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import simpy

import radio_models

from radio_models.snr import SnrRadioModel

from cosim.plugins import medium_registry

from .config import ChannelConfig
from .linkstate import CorrelatedLinkState
from .medium import BROADCAST, CAM_OUTCOMES, Frame, Medium, MediumSetup
from .stats import ChannelStats, FailureCause, TransferResult
from .topology import LinkState, Topology, build_topology

__all__ = ["Channel", "Respond", "BACKGROUND_ID_BASE"]

BACKGROUND_ID_BASE = 1 << 30
"""Node ids of background (CAM-only) stations start here, above every agent slot index."""

Respond = Callable[[], "tuple[Any, int] | None"]
"""Called at the responder when the request arrives: returns (payload, size in bits), or None
to refuse."""


@dataclass(eq=False)
class _Transfer:
    tid: int
    requester: int
    responder: int
    broken: simpy.Event
    process: simpy.Process | None = None
    started: bool = False
    cancel_requested: bool = False
    packets_sent: int = 0
    packets_lost: int = 0
    bits_sent: int = 0


class _Stop(Exception):
    """Internal: ends a transfer with a cause."""

    def __init__(self, cause: FailureCause):
        self.cause = cause


class Channel:
    """V2V channel of one simulation (see the module docstring).

    Args:
        env: the SimPy environment (time in seconds).
        config: the ``channel`` section.
        rng: the channel's random stream (e.g. ``cosim.sim.seeding.rng(seed, "channel")``).
        radio_model: an already created model, instead of ``config.radio.create_model()``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: ChannelConfig,
        rng: np.random.Generator,
        *,
        radio_model: radio_models.RadioModel | None = None,
    ):
        self.env = env
        self.config = config
        self.model = radio_model if radio_model is not None else config.radio.create_model()
        self.ideal = config.mode == "ideal"
        self.payload_bits = 8 * config.payload_bytes
        self.request_bits = 8 * config.request_bytes
        self.framing = medium_registry.packet_framing(config.medium, config.framing(), config.medium_params)
        self._radio_rng, self._loss_rng = _two_streams(rng)
        self.medium: Medium | None = None  # ideal mode: none
        if not self.ideal:
            setup = MediumSetup(env, self.model, self.framing, self._loss_rng, config.max_retries,
                                config.per_packet_overhead_s, self._on_attempt, lambda: self._topology)
            self.medium = medium_registry.create(config.medium, setup, config.medium_params)
        self.cam = config.cam if (config.cam.enabled and self.medium is not None and self.medium.broadcast) else None
        if self.cam is not None:
            self._cam_rng, self._bg_topology_rng = _two_streams(self._loss_rng)
            equip_rng, self._bg_link_rng = _two_streams(self._loss_rng)
            # one 64-bit salt: a vehicle's equip uniform is a function of (salt, its key) only
            self._equip_salt = int(equip_rng.integers(0, 2**63))
            self.cam_period_s = 1.0 / self.cam.rate_hz
            self.cam_bits = 8 * self.cam.bytes
            self.cam_rate_bps = float(getattr(self.model, "data_rate_mbps", 6.0)) * 1e6
            self.medium.broadcast_range_m = (float(self.cam.pdr_range_m) if self.cam.pdr_range_m is not None
                                             else float(self.model.max_range_m))
            self.medium.cam_prr = self._cam_prr
            self._bg_ids: dict[Any, int] = {}  # background key -> node id, equipped ones only
            self._bg_seen: set[Any] = set()
            self._cam_live: set[int] = set()  # stations with a CAM timer running
            self._cam_last: dict[int, Frame] = {}
            self._medium_topology = Topology.empty()
            self.cam_dropped_stale = 0
        self.link_state: CorrelatedLinkState | None = None
        self._bg_link_state: CorrelatedLinkState | None = None  # pairs with a background station
        if config.link_state == "correlated" and isinstance(self.model, SnrRadioModel) and self.model.random_terms:
            self.link_state = CorrelatedLinkState(self.model, self._radio_rng)
            if self.cam is not None:
                self._bg_link_state = CorrelatedLinkState(self.model, self._bg_link_rng)
        self._topology = Topology.empty()
        self._slots: dict[int, simpy.Resource] = {}
        self._active: dict[int, _Transfer] = {}
        self._next_tid = 0
        self.stats = ChannelStats()
        self.updates = 0
        self.last_update_s: float | None = None

    # ---------------------------------------------------------------- topology

    def update(
        self,
        nodes: Sequence[int] | np.ndarray,
        positions: np.ndarray,
        speeds: np.ndarray | None = None,
        *,
        antenna_heights_m: float | np.ndarray | None = None,
        background_ids: Sequence[Any] | None = None,
        background_positions: np.ndarray | None = None,
    ) -> Topology:
        """Rebuild the V2V graph for the vehicles present now.

        Args:
            nodes: ids (agent slot indices, ints >= 0, distinct) of the CAVs in the network.
            positions: shape (n, 2) x, y in metres, or (n, 3) with ground elevation z.
            speeds: shape (n,) in m/s, or None (passed to the radio model).
            antenna_heights_m: per-vehicle antenna heights, default ``config.antenna_height_m``.
            background_ids, background_positions: the human-driven vehicles (any hashable keys,
                e.g. SUMO ids; positions as ``positions``); used only with ``channel.cam``
                enabled, where the equipped ones join the medium as CAM senders (see the module
                docstring). Ignored otherwise.

        Transfers whose edge is gone fail now (``node_left`` or ``out_of_range``).
        """
        heights = self.config.antenna_height_m if antenna_heights_m is None else antenna_heights_m
        frame_bits = (8 * self.framing.psdu_bytes(self.framing.fragments(self.payload_bits)[0]),
                      8 * self.framing.psdu_bytes(self.framing.fragments(self.request_bits)[0]))
        loss_fn = None if self.link_state is None else self.link_state.path_loss_db
        self._topology = build_topology(nodes, positions, speeds, heights, self.model, self._radio_rng, frame_bits,
                                        path_loss_db=loss_fn)
        if self.cam is not None:
            self._update_with_background(nodes, positions, heights, loss_fn, background_ids, background_positions)
        elif self.link_state is not None:
            self.link_state.retain(self._topology.nodes)
        if self.medium is not None and self.cam is None:
            node_arr = np.asarray(nodes, dtype=np.int64)
            order = np.argsort(node_arr, kind="stable")
            pos = np.asarray(positions, dtype=float)[order]
            h = np.broadcast_to(np.asarray(heights, dtype=float), (node_arr.shape[0],))[order]
            self.medium.update(node_arr[order], pos, h, self._topology, path_loss_db=loss_fn)
        self.updates += 1
        self.last_update_s = self.env.now
        self._break_lost_links()
        return self._topology

    def _update_with_background(self, nodes, positions, heights, loss_fn, background_ids, background_positions):
        """The medium's stations: the CAVs plus the equipped background vehicles; CAM timers."""
        node_arr = np.asarray(nodes, dtype=np.int64)
        pos = np.asarray(positions, dtype=float)
        if not node_arr.shape[0]:
            cols = np.asarray(background_positions).shape[-1] if background_positions is not None else 2
            pos = np.zeros((0, cols if cols in (2, 3) else 2))
        h = np.broadcast_to(np.asarray(heights, dtype=float), (node_arr.shape[0],))
        bg_nodes, bg_rows = [], []
        if background_ids is not None and len(background_ids):
            keys = list(background_ids)
            bg_pos = np.asarray(background_positions, dtype=float).reshape(len(keys), -1)
            if bg_pos.shape[1] != pos.shape[1]:
                raise ValueError("background_positions must have as many columns as positions")
            for k in sorted(set(keys) - self._bg_seen, key=str):
                self._bg_seen.add(k)
                if self.equip_uniform(k) < self.cam.penetration:
                    self._bg_ids[k] = BACKGROUND_ID_BASE + len(self._bg_ids)
            for row, k in enumerate(keys):
                nid = self._bg_ids.get(k)
                if nid is not None:
                    bg_nodes.append(nid)
                    bg_rows.append(bg_pos[row])
        if bg_nodes:
            all_nodes = np.concatenate([node_arr, np.asarray(bg_nodes, dtype=np.int64)])
            all_pos = np.concatenate([pos, np.asarray(bg_rows)]) if node_arr.shape[0] else np.asarray(bg_rows)
            all_h = np.concatenate([h, np.full(len(bg_nodes), float(self.config.antenna_height_m))])
        else:
            all_nodes, all_pos, all_h = node_arr, pos, np.asarray(h)
        medium_loss_fn = loss_fn
        if self.link_state is not None:
            self.link_state.retain(all_nodes)
            self._bg_link_state.retain(all_nodes)
            medium_loss_fn = self._medium_path_loss_db
        order = np.argsort(all_nodes, kind="stable")
        all_nodes, all_pos, all_h = all_nodes[order], all_pos[order], all_h[order]
        topo = self._topology
        if not isinstance(self.model, SnrRadioModel):
            # PRR-only models: the medium's edges (powers) and CAM PRRs (for a CAM-sized frame)
            # come from a graph over all stations drawn from a stream of its own (the CAV graph's
            # draws stay as without CAMs; a deterministic model such as unit_disk gives the CAV
            # pairs the same edges in both)
            cam_frame_bits = 8 * self.framing.psdu_bytes(self.cam_bits)
            topo = build_topology(all_nodes, all_pos, None, all_h, self.model, self._bg_topology_rng,
                                  (cam_frame_bits, cam_frame_bits))
        self._medium_topology = topo
        self.medium.update(all_nodes, all_pos, all_h, topo, path_loss_db=medium_loss_fn)
        for station in all_nodes.tolist():
            if station not in self._cam_live:
                self._cam_live.add(station)
                self._schedule_cam(station, float(self._cam_rng.random()) * self.cam_period_s)

    def _medium_path_loss_db(self, u: np.ndarray, v: np.ndarray, links: radio_models.LinkBatch) -> np.ndarray:
        """Correlated losses of the medium's pairs (u < v): CAV pairs from the graph's link state
        (evaluated just before at the same positions: no draw), pairs with a background station
        from a state and stream of their own, so that background CAMs never shift the draws of
        the CAV graph."""
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        bg = v >= BACKGROUND_ID_BASE  # u < v: a pair with a background station has v in it
        loss = np.empty(u.shape[0])
        cav = ~bg
        if cav.any():
            loss[cav] = self.link_state.path_loss_db(u[cav], v[cav], _link_subset(links, cav))
        if bg.any():
            loss[bg] = self._bg_link_state.path_loss_db(u[bg], v[bg], _link_subset(links, bg))
        return loss

    def equip_uniform(self, key: Any) -> float:
        """The uniform number in [0, 1) that decides whether background vehicle ``key`` is
        equipped (equipped iff it is below ``channel.cam.penetration``): a function of the
        channel's seed and the key only (a keyed hash of ``repr(key)``, strings and integers
        taken as plain ``str`` / ``int``), not of the order in
        which vehicles appear or of how many draws other streams made. So at every update the
        vehicles equipped at p are a subset of those equipped at p' > p."""
        if isinstance(key, str):
            key = str(key)  # numpy.str_ and plain str alike
        elif isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            key = int(key)
        digest = hashlib.blake2b(repr(key).encode(), digest_size=8,
                                 key=self._equip_salt.to_bytes(8, "little")).digest()
        return (int.from_bytes(digest, "little") >> 11) * 2.0**-53

    def _schedule_cam(self, station: int, delay: float) -> None:
        ev = self.env.timeout(delay)
        ev.callbacks.append(lambda _ev, station=station: self._send_cam(station))

    def _send_cam(self, station: int) -> None:
        if not self.medium.has_station(station):  # the vehicle left: its timer ends (a new phase if it returns)
            self._cam_live.discard(station)
            self._cam_last.pop(station, None)
            return
        last = self._cam_last.get(station)
        if last is not None and not last.done.triggered and last.first_tx_at is None:
            self.medium.abort(last)  # never got the medium: the newer CAM replaces it
            self.cam_dropped_stale += 1
        self._cam_last[station] = self.medium.send(station, BROADCAST, self.cam_bits, self.cam_rate_bps,
                                                   ac=self.cam.access_category, kind="cam")
        self._schedule_cam(station, self.cam_period_s)

    def _cam_prr(self, sender: int, receiver: int) -> float:
        topo = self._medium_topology
        index = topo.edge_index(sender, receiver)
        return float(topo.success_probability[index]) if index >= 0 else 0.0

    @property
    def background_stations(self) -> dict[Any, int]:
        """Equipped background vehicles seen so far: key -> node id in the medium (CAMs on)."""
        return dict(self._bg_ids) if self.cam is not None else {}

    def _break_lost_links(self) -> None:
        live = [t for t in self._active.values() if t.started and not t.broken.triggered]
        if not live:
            return
        topo = self._topology
        a = np.fromiter((t.requester for t in live), dtype=np.int64, count=len(live))
        b = np.fromiter((t.responder for t in live), dtype=np.int64, count=len(live))
        missing = topo.edge_indices(a, b) < 0
        for t, gone in zip(live, missing.tolist()):
            if gone:
                left = not (topo.has_node(t.requester) and topo.has_node(t.responder))
                t.broken.succeed(FailureCause.NODE_LEFT if left else FailureCause.OUT_OF_RANGE)

    @property
    def topology(self) -> Topology:
        """The current step's edges as arrays (cheap; see :class:`Topology`)."""
        return self._topology

    @property
    def graph(self) -> nx.Graph:
        """The current V2V graph (frozen networkx.Graph, built on first access after an update).

        Nodes: vehicles present. Edge attributes: ``distance_m``, ``success_probability`` (per
        frame of a full payload packet's first fragment), ``request_success_probability`` (per
        request frame), ``rate_bps``.
        """
        return self._topology.graph

    @property
    def nodes(self) -> list[int]:
        """Vehicles present at the last update, ascending."""
        return self._topology.nodes.tolist()

    def neighbours(self, node: int) -> list[int]:
        """Neighbours of ``node`` in the current graph, ascending ([] if absent)."""
        return self._topology.neighbours(int(node))

    def link(self, a: int, b: int) -> LinkState | None:
        """The current edge {a, b}, or None."""
        return self._topology.link(int(a), int(b))

    # ---------------------------------------------------------------- transfers

    def pull(
        self,
        requester: int,
        responder: int,
        respond: Respond,
        timeout: float | None = None,
    ) -> simpy.Process:
        """Start a transfer: ``requester`` asks ``responder``, which answers with ``respond()``.

        ``respond()`` is called when the request arrives (the payload is taken then) and returns
        ``(payload, size_bits)`` or None to refuse. ``timeout`` (seconds, > 0) limits the whole
        transfer; None uses ``config.timeout_s``. The process's value is a
        :class:`TransferResult`; it never raises for channel reasons.
        """
        requester, responder = _node_id(requester, "requester"), _node_id(responder, "responder")
        if requester == responder:
            raise ValueError(f"requester and responder must differ; both are {requester}")
        if not callable(respond):
            raise TypeError("respond must be callable")
        if timeout is None:
            timeout = self.config.timeout_s
        elif not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0):
            raise ValueError(f"timeout must be a number > 0 or None; got {timeout!r}")
        tid = self._next_tid
        self._next_tid += 1
        rec = _Transfer(tid, requester, responder, self.env.event())
        self._active[tid] = rec
        self.stats.record_start()
        rec.process = self.env.process(self._transfer(rec, respond, timeout))
        return rec.process

    @property
    def transfers_in_flight(self) -> int:
        return len(self._active)

    def cancel_all(self) -> int:
        """Fail every transfer in flight with ``cancelled`` (e.g. at the end of an epoch).

        Returns how many were cancelled. Their results are recorded when their processes run.
        """
        count = 0
        for rec in list(self._active.values()):
            if rec.cancel_requested:
                continue
            if not rec.started:
                rec.cancel_requested = True
            elif rec.process is not None and rec.process.is_alive:
                rec.cancel_requested = True
                rec.process.interrupt("cancelled")
            else:
                continue
            count += 1
        return count

    def close(self) -> int:
        """Cancel every transfer in flight and let them finish now, so that their results are
        recorded (``transfers_cancelled``) and the accounting of the epoch is closed. Call it
        outside any SimPy process (e.g. after ``env.run`` returned). Returns how many were
        cancelled."""
        count = self.cancel_all()
        while self._active and self.env.peek() <= self.env.now:
            self.env.step()  # interrupts and not-yet-started transfers run at this instant
        if self._active:
            raise RuntimeError(f"{len(self._active)} transfers still in flight after close()")
        return count

    def _slot(self, node: int) -> simpy.Resource:
        res = self._slots.get(node)
        if res is None:
            res = self._slots[node] = simpy.Resource(self.env, capacity=self.config.max_parallel_links)
        return res

    def _finish(self, rec: _Transfer, start: float, *, cause=None, payload=None, size_bits=0,
                responded_at=None, queue_wait=None) -> TransferResult:
        """Record and return the transfer's result. ``queue_wait``: seconds it waited for its
        link slots, granted or not; None if it never queued for them (no result to average)."""
        self._active.pop(rec.tid, None)
        result = TransferResult(
            ok=cause is None,
            requester=rec.requester,
            responder=rec.responder,
            payload=payload if cause is None else None,
            size_bits=int(size_bits),
            cause=cause,
            started_at=start,
            finished_at=self.env.now,
            responded_at=responded_at,
            queue_wait_s=0.0 if queue_wait is None else float(queue_wait),
            queued=queue_wait is not None,
            packets_sent=rec.packets_sent,
            packets_lost=rec.packets_lost,
            bits_sent=rec.bits_sent,
        )
        self.stats.record_result(result)
        return result

    def _response(self, respond: Respond) -> tuple[Any, int] | None:
        reply = respond()
        if reply is None:
            return None
        try:
            payload, size_bits = reply
        except (TypeError, ValueError):
            raise TypeError(f"respond() must return (payload, size_bits) or None; got {reply!r}") from None
        if isinstance(size_bits, bool) or not isinstance(size_bits, (int, np.integer)) or size_bits < 0:
            raise ValueError(f"respond() returned size_bits={size_bits!r}; it must be an int >= 0")
        return payload, int(size_bits)

    def _packet_sizes(self, size_bits: int) -> list[int]:
        """Payload bits of each MAC frame of a response: packets of ``payload_bytes``, each cut
        into fragments at the MSDU limit."""
        full, rest = divmod(size_bits, self.payload_bits)
        sizes = [self.payload_bits] * full + ([rest] if rest else [])
        frames: list[int] = []
        for bits in sizes or [0]:  # an empty response still takes one (header-only) frame
            frames.extend(self.framing.fragments(bits))
        return frames

    def _transfer(self, rec: _Transfer, respond: Respond, timeout: float | None):
        try:
            return (yield from self._run_transfer(rec, respond, timeout))
        finally:  # also when respond() raises: the transfer is no longer in flight
            self._active.pop(rec.tid, None)

    def _run_transfer(self, rec: _Transfer, respond: Respond, timeout: float | None):
        env = self.env
        start = env.now
        rec.started = True
        if rec.cancel_requested:
            return self._finish(rec, start, cause=FailureCause.CANCELLED)
        if self._topology.edge_index(rec.requester, rec.responder) < 0:
            return self._finish(rec, start, cause=FailureCause.NO_LINK)
        if self.ideal:
            return self._ideal_transfer(rec, respond, start)

        deadline = env.timeout(timeout) if timeout is not None else None
        responded_at = None
        queue_wait: float | None = None  # None: never queued for link slots (request lost, refused)
        queued_since: float | None = None  # set while waiting for the slots
        payload, size_bits = None, 0
        try:
            for bits in self.framing.fragments(self.request_bits):
                yield from self._send_packet(rec, rec.requester, rec.responder, bits, True, deadline)
            responded_at = env.now
            reply = self._response(respond)
            if reply is None:
                raise _Stop(FailureCause.REFUSED)
            payload, size_bits = reply
            first, second = sorted((rec.requester, rec.responder))  # global order: no deadlock
            queued_since = env.now
            with self._slot(first).request() as slot_a:
                yield from self._wait(rec, slot_a, deadline)
                with self._slot(second).request() as slot_b:
                    yield from self._wait(rec, slot_b, deadline)
                    queue_wait, queued_since = env.now - queued_since, None
                    for bits in self._packet_sizes(size_bits):
                        yield from self._send_packet(rec, rec.responder, rec.requester, bits, False, deadline)
        except _Stop as stop:
            if queued_since is not None:  # timed out, broke off while still waiting for a slot
                queue_wait = env.now - queued_since
            return self._finish(rec, start, cause=stop.cause, size_bits=size_bits,
                                responded_at=responded_at, queue_wait=queue_wait)
        except simpy.Interrupt:
            if queued_since is not None:  # cancelled while still waiting for a slot
                queue_wait = env.now - queued_since
            return self._finish(rec, start, cause=FailureCause.CANCELLED, size_bits=size_bits,
                                responded_at=responded_at, queue_wait=queue_wait)
        return self._finish(rec, start, payload=payload, size_bits=size_bits,
                            responded_at=responded_at, queue_wait=queue_wait)

    def _ideal_transfer(self, rec: _Transfer, respond: Respond, start: float) -> TransferResult:
        for bits in self.framing.fragments(self.request_bits):
            self._count(rec, rec.requester, rec.responder, bits, True, request=True)
        reply = self._response(respond)
        if reply is None:
            return self._finish(rec, start, cause=FailureCause.REFUSED, responded_at=start)
        payload, size_bits = reply
        for bits in self._packet_sizes(size_bits):
            self._count(rec, rec.responder, rec.requester, bits, True, request=False)
        return self._finish(rec, start, payload=payload, size_bits=size_bits, responded_at=start, queue_wait=0.0)

    def _count(self, rec: _Transfer, sender: int, receiver: int, bits: int, delivered: bool, *, request: bool):
        rec.packets_sent += 1
        rec.bits_sent += bits
        rec.packets_lost += not delivered
        self.stats.record_packet(sender, receiver, bits, delivered, request=request)

    def _wait(self, rec: _Transfer, event: simpy.Event, deadline: simpy.Event | None):
        """Wait for ``event``; raise _Stop if the link breaks or the deadline passes first."""
        waits = [event, rec.broken] if deadline is None else [event, rec.broken, deadline]
        yield self.env.any_of(waits)
        if rec.broken.triggered:
            raise _Stop(rec.broken.value)
        # A Timeout is "triggered" from creation on; it has happened once processed. A resource
        # request has happened once triggered (granted).
        if event.processed if isinstance(event, simpy.events.Timeout) else event.triggered:
            return
        raise _Stop(FailureCause.TIMEOUT)

    def _send_packet(self, rec: _Transfer, sender: int, receiver: int, bits: int, request: bool,
                     deadline: simpy.Event | None):
        """Send one frame through the medium (which resends it up to max_retries times); raise
        _Stop on failure. A frame the transfer gives up on is aborted: cut short by a break or
        the deadline, or cancelled (e.g. by close() at the epoch end); the medium decides what
        was sent (:meth:`cosim.channel.medium.Medium.abort`)."""
        index = self._topology.edge_index(sender, receiver)
        if index < 0:  # defensive: updates break active transfers before this can happen
            raise _Stop(FailureCause.OUT_OF_RANGE)
        frame = self.medium.send(sender, receiver, bits, float(self._topology.rate_bps[index]),
                                 ac=self.config.access_category, kind="request" if request else "data",
                                 tag=rec)
        try:
            yield from self._wait(rec, frame.done, deadline)
        except _Stop:
            self.medium.abort(frame, cancelled=False)
            raise
        except simpy.Interrupt:
            self.medium.abort(frame, cancelled=True)
            raise
        if not frame.delivered:
            if frame.last_cause == "out_of_range":
                raise _Stop(FailureCause.OUT_OF_RANGE)
            raise _Stop(FailureCause.REQUEST_LOST if request else FailureCause.PACKET_LOST)

    def _on_attempt(self, frame: Frame, delivered: bool, cause: str | None) -> None:
        rec = frame.tag
        if isinstance(rec, _Transfer):
            self._count(rec, frame.sender, frame.receiver, frame.payload_bits, delivered,
                        request=frame.kind == "request")

    # ---------------------------------------------------------------- accounting

    def reset(self) -> None:
        """Zero the per-epoch counters (transfers in flight keep running and count in the new epoch)."""
        self.stats.reset()
        if self.medium is not None:
            self.medium.reset_stats()
        if self.cam is not None:
            self.cam_dropped_stale = 0

    def metrics(self) -> dict[str, float | int]:
        """Flat per-epoch metrics (see :meth:`ChannelStats.metrics`) plus ``transfers_in_flight``,
        and the medium's columns. Every medium has the same columns: those a medium does not
        report (the independent medium: all; ideal mode has no medium) take the link-only values,
        in which every frame the channel counted was sent and every loss is the link's own."""
        out = self.stats.metrics()
        out["transfers_in_flight"] = self.transfers_in_flight
        nan = float("nan")
        lost = int(self.stats.payload_packets_lost + self.stats.request_packets_lost)
        out.update({"channel_busy_ratio_mean": nan, "channel_busy_ratio_max": nan,
                    "mac_frames_sent": int(self.stats.payload_packets + self.stats.request_packets),
                    "mac_frames_lost": lost, "mac_frames_lost_collision": 0,
                    "mac_frames_lost_below_sensitivity": lost, "mac_frames_lost_half_duplex": 0,
                    "mac_frames_lost_retry_limit": int(self.stats.failures[FailureCause.REQUEST_LOST]
                                                       + self.stats.failures[FailureCause.PACKET_LOST]),
                    "mac_cam_frames_sent": 0, "mac_queue_delay_mean_s": nan, "mac_queue_delay_p95_s": nan,
                    "mac_link_goodput_mean_bps": nan})
        if self.medium is not None:
            out.update(self.medium.metrics())
            if self.cam is not None:
                out.update(self.cam_metrics())
        return out

    def cam_metrics(self) -> dict[str, float | int]:
        """CAM delivery since the last reset (only with ``channel.cam.enabled``): receptions within
        the PDR range by outcome, the packet delivery ratio, stale CAMs dropped, stations."""
        rx = self.medium.cam_rx
        expected = sum(rx[c] for c in CAM_OUTCOMES)
        out: dict[str, float | int] = {
            "cam_pdr": float(rx["delivered"] / expected) if expected else float("nan"),
            "cam_receptions": int(expected),
        }
        for c in CAM_OUTCOMES:
            out[f"cam_rx_{c}" if c == "delivered" else f"cam_lost_{c}"] = int(rx[c])
        delays = self.medium.cam_queue_delays
        out["cam_queue_delay_mean_s"] = float(np.mean(delays)) if delays else float("nan")
        out["cam_dropped_stale"] = int(self.cam_dropped_stale)
        out["cam_equipped_human_vehicles"] = len(self._bg_ids)
        return out


def _two_streams(rng: np.random.Generator) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent child streams of ``rng`` (SeedSequence spawning; no draws from ``rng``)."""
    try:
        radio, loss = rng.spawn(2)
    except (AttributeError, TypeError, ValueError):  # a bit generator without a SeedSequence
        radio, loss = (np.random.default_rng(s) for s in rng.integers(0, 2**63, size=2).tolist())
    return radio, loss


def _link_subset(links: radio_models.LinkBatch, mask: np.ndarray) -> radio_models.LinkBatch:
    """The rows of ``links`` where ``mask`` is True (every per-link array cut alike)."""
    cut = {f.name: (None if getattr(links, f.name) is None else getattr(links, f.name)[mask])
           for f in dataclasses.fields(links)}
    return radio_models.LinkBatch(**cut)


def _node_id(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a node id (int >= 0); got {value!r}")
    return int(value)

