"""The built-in medium ``independent``: every link is its own pipe (no contention).

A frame takes its PPDU airtime at the link's data rate plus ``channel.per_packet_overhead_s``
and arrives with the graph's success probability of the link for a frame of its kind (request
or payload) *at the end of its airtime*, one uniform number of the channel's loss stream per
attempt; a lost frame is sent again, up to ``channel.max_retries`` times. The link and its rate
are read from the graph at every attempt; a link that is gone when an attempt ends loses it
(``out_of_range``). No carrier sense, no collisions, no broadcasts.

Accounting (``setup.on_attempt``): every attempt when it ends; a frame cut short by a break or a
deadline (:meth:`IndependentMedium.abort`) counts then, as sent and lost; one cut short by a
cancellation is not counted. ``metrics()`` has no columns of its own: the channel's link-only
values (every loss below sensitivity, none by collision) are this medium's.

Timing within one instant: the outcome of an attempt is drawn one event after its airtime ends
and the frame's next attempt, or its ``done``, follows two events later, so frames of several
transfers that end together are drawn, and go on, in the order they were sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .medium import Frame, Medium, MediumSetup, new_frame
from .topology import Topology

__all__ = ["IndependentMedium"]


class IndependentMedium(Medium):
    """Every link its own pipe (see the module docstring). No parameters."""

    name = "independent"
    broadcast = False

    def __init__(self, setup: MediumSetup):
        self.env = setup.env
        self.framing = setup.framing
        self.rng = setup.rng
        self.retry_limit = int(setup.retry_limit)
        self.extra_airtime_s = float(setup.extra_airtime_s)
        self.on_attempt = setup.on_attempt
        self.graph = setup.graph
        self._stations: set[int] = set()

    # ---------------------------------------------------------------- the contract
    def update(self, nodes: np.ndarray, positions: np.ndarray, heights: np.ndarray, topology: Topology,
               path_loss_db: Callable[..., np.ndarray] | None = None) -> None:
        self._stations = {int(v) for v in np.asarray(nodes).tolist()}

    def has_station(self, node: int) -> bool:
        return int(node) in self._stations

    def send(self, sender: int, receiver: int, payload_bits: int, rate_bps: float, *, ac: str = "AC_BE",
             kind: str = "data", tag: Any = None) -> Frame:
        if receiver < 0:
            raise ValueError("the independent medium carries no broadcasts")
        frame = new_frame(self.env, self.framing, sender, receiver, payload_bits, rate_bps, ac, kind, tag)
        self._attempt(frame)
        return frame

    def abort(self, frame: Frame, *, cancelled: bool = False) -> None:
        if frame.cancelled or frame.done.triggered:
            return
        frame.cancelled = True
        if not cancelled:  # cut short by a break or the deadline: sent and lost
            self.on_attempt(frame, False, "aborted")

    def reset_stats(self) -> None:
        pass

    def metrics(self) -> dict[str, float | int]:
        return {}

    # ---------------------------------------------------------------- attempts
    def _link(self, frame: Frame) -> tuple[Topology, int]:
        topo = self.graph()
        return topo, topo.edge_index(frame.sender, frame.receiver)

    def _attempt(self, frame: Frame) -> None:
        """Put ``frame`` on its link for one airtime (rate: the link's now)."""
        topo, index = self._link(frame)
        if index < 0:  # the link went away between two attempts
            self._finish(frame, False, "out_of_range")
            return
        if frame.first_tx_at is None:
            frame.first_tx_at = self.env.now
        airtime = self.framing.airtime_s(frame.payload_bits, float(topo.rate_bps[index])) + self.extra_airtime_s
        self.env.timeout(airtime).callbacks.append(lambda _ev: self._later(lambda: self._decide(frame)))

    def _later(self, then: Callable[[], None], hops: int = 1) -> None:
        """Run ``then`` ``hops`` events from now, at this instant."""
        ev = self.env.event()
        ev.callbacks.append(lambda _ev: then() if hops == 1 else self._later(then, hops - 1))
        ev.succeed()

    def _decide(self, frame: Frame) -> None:
        if frame.cancelled:
            return
        topo, index = self._link(frame)
        if index < 0:  # the link went away during the airtime
            self.on_attempt(frame, False, "out_of_range")
            self._finish(frame, False, "out_of_range")
            return
        p = topo.request_success_probability[index] if frame.kind == "request" else topo.success_probability[index]
        delivered = bool(self.rng.random() < p)
        self.on_attempt(frame, delivered, None if delivered else "below_sensitivity")
        if delivered:
            self._finish(frame, True, None)
        elif frame.retries < self.retry_limit:
            frame.retries += 1
            self._later(lambda: None if frame.cancelled else self._attempt(frame), hops=2)
        else:
            self._finish(frame, False, "retry_limit")

    def _finish(self, frame: Frame, delivered: bool, cause: str | None) -> None:
        frame.delivered = delivered
        frame.last_cause = cause
        if not frame.done.triggered:
            frame.done.succeed(frame)

