"""The medium contract: how the channel's frames share the air.

The channel (:mod:`cosim.channel.channel`) owns the V2V graph, the transfers, the link slots and
the accounting. Every MAC frame of a transfer goes through a *medium*, which decides when the
frame goes on the air and whether its receiver gets it. Built-ins (``channel.medium``):
``independent`` (every link its own pipe, :mod:`cosim.channel.independent`) and ``csma`` (one
shared 802.11p EDCA medium, :mod:`cosim.channel.csma`); a medium of your own is named as a
registered name, an entry point of ``cosim.radio_media`` or ``package.module:Class``
(:mod:`cosim.plugins.medium_registry`, docs/extending.md), with its parameters in
``channel.medium_params``.

A medium is a subclass of :class:`Medium`. The channel calls, all at the current simulated time:

- :meth:`Medium.packet_framing` once per channel, before the medium exists: the limit and
  overheads of the frames the channel cuts packets into for this medium (default: 802.11's);
- :meth:`Medium.from_setup` once per channel (per epoch), with a :class:`MediumSetup` (the SimPy
  environment, the radio model, the framing, a random stream, the retry limit, a callback for
  every attempt, the current graph) and the medium's parameters;
- :meth:`Medium.update` after every traffic step: where the stations are (ids ascending,
  positions, antenna heights) and the graph just built, or with background CAMs every station
  of the medium (CAVs and equipped human-driven vehicles) and a graph over all of them;
- :meth:`Medium.send` for every frame: the medium returns a :class:`Frame` whose ``done`` event
  succeeds when it is finished with it, ``delivered`` telling whether the receiver got it
  (``last_cause`` why not: one of :data:`LOSS_CAUSES`, or ``out_of_range`` when the link is gone).
  Each attempt on the air is reported through ``setup.on_attempt(frame, delivered, cause)``:
  the channel counts frames there. A broadcast (receiver :data:`BROADCAST`) is decided at every
  station within ``broadcast_range_m`` of its sender, each on its own (media with
  ``broadcast = True`` only; background CAMs need one);
- :meth:`Medium.abort` when the transfer gives up on a frame (the link broke, the deadline
  passed: ``cancelled`` False; the transfer was cancelled at the epoch end: True);
- :meth:`Medium.reset_stats` at the start of an epoch and :meth:`Medium.metrics` at its end
  (columns of ``metrics.csv``; keys it leaves out take the link-only values, see
  :meth:`cosim.channel.Channel.metrics`).

A medium may schedule SimPy events of its own (timeouts with callbacks, processes), so one with
sub-channels and scheduled resources (C-V2X sidelink semi-persistent scheduling, TDMA) decides
when each frame goes out and which receivers decode it, and only reports through ``done`` and
``on_attempt``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import simpy

import radio_models

from .framing import Framing
from .topology import Topology

__all__ = ["BROADCAST", "CAM_OUTCOMES", "LOSS_CAUSES", "Frame", "Medium", "MediumSetup", "child_stream", "new_frame"]

BROADCAST = -1
"""The receiver of a broadcast frame."""

LOSS_CAUSES = ("collision", "below_sensitivity", "half_duplex", "retry_limit")
"""Why an attempt or a frame was lost (``mac_frames_lost_<cause>`` columns)."""

CAM_OUTCOMES = ("delivered", "collision", "below_sensitivity", "half_duplex")
"""What a broadcast CAM did at one receiver within the broadcast range (``cam_*`` columns)."""


@dataclass(eq=False)
class Frame:
    """One MSDU handed to the medium (unicast: ``receiver`` >= 0; broadcast: :data:`BROADCAST`)."""

    sender: int
    receiver: int
    payload_bits: int
    psdu_bytes: int
    rate_bps: float
    ac: str
    done: simpy.Event
    enqueued_at: float
    kind: str = "data"  # "data" | "request" | "cam": what the frame is for (stats, PRR choice)
    tag: Any = None
    retries: int = 0
    delivered: bool = False
    cancelled: bool = False
    first_tx_at: float | None = None
    last_cause: str | None = None


@dataclass(frozen=True)
class MediumSetup:
    """What the channel gives its medium.

    - ``env``: the SimPy environment (seconds); ``model``: the channel's radio model;
      ``framing``: frame overheads and PPDU airtimes (:class:`~cosim.channel.framing.Framing`).
    - ``rng``: the channel's loss stream: a medium draws from it or spawns streams of its own
      (:func:`child_stream`); nothing else draws from it while the medium exists.
    - ``retry_limit`` (``channel.max_retries``), ``extra_airtime_s``
      (``channel.per_packet_overhead_s``, added to every frame's airtime).
    - ``on_attempt(frame, delivered, cause)``: call it after every attempt of a frame on the air
      (not for broadcasts): the channel counts packets there.
    - ``graph()``: the V2V graph of the last update (edges, per-frame success probabilities and
      data rates, :class:`~cosim.channel.topology.Topology`).
    """

    env: simpy.Environment
    model: radio_models.RadioModel
    framing: Framing
    rng: np.random.Generator
    retry_limit: int
    extra_airtime_s: float
    on_attempt: Callable[[Frame, bool, "str | None"], None]
    graph: Callable[[], Topology]


def child_stream(rng: np.random.Generator) -> np.random.Generator:
    """A stream of its own for a medium: the first of two children spawned from ``rng``
    (SeedSequence spawning, no draw from ``rng``)."""
    try:
        return rng.spawn(2)[0]
    except (AttributeError, TypeError, ValueError):  # a bit generator without a SeedSequence
        return np.random.default_rng(int(rng.integers(0, 2**63, size=2)[0]))


class Medium(ABC):
    """A radio medium (see the module docstring).

    Class attributes: ``name`` (for messages), ``broadcast`` (whether it carries broadcast
    frames; background CAMs need it). Media with ``broadcast`` also keep ``cam_rx`` (receptions of
    CAMs within the broadcast range by :data:`CAM_OUTCOMES`) and ``cam_queue_delays`` (seconds
    from queueing to the air, per CAM) since the last :meth:`reset_stats`, and use
    ``broadcast_range_m`` and ``cam_prr(sender, receiver)`` (PRR-only radio models: a CAM's
    success probability when nothing else is on the air), which the channel sets.
    """

    name: ClassVar[str] = ""
    broadcast: ClassVar[bool] = False
    broadcast_range_m: float | None = None
    cam_prr: Callable[[int, int], float] | None = None

    @classmethod
    def from_setup(cls, setup: MediumSetup, **params: Any) -> "Medium":
        """The medium of one channel; ``params`` are ``channel.medium_params`` (the keyword
        parameters of this method, or of ``__init__`` after ``setup`` when not overridden)."""
        return cls(setup, **params)  # type: ignore[call-arg]

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[tuple[str, str]]:
        """``(parameter, what is wrong)`` for every bad value in ``params`` (names were already
        checked against :meth:`from_setup`'s signature); called when a scenario is loaded, so
        that ``cosim validate`` reports them. Default: none."""
        return []

    @classmethod
    def packet_framing(cls, framing: Framing, params: dict[str, Any]) -> Framing:
        """How the channel cuts packets into the frames it hands to this medium, given the
        channel's 802.11 framing (``channel.msdu_max_bytes`` and the per-frame overheads) and
        the medium's resolved parameters. Default: the 802.11 framing unchanged; a medium
        whose layer 2 segments packets itself (the sidelink's RLC) returns a larger limit."""
        return framing

    @abstractmethod
    def update(self, nodes: np.ndarray, positions: np.ndarray, heights: np.ndarray, topology: Topology,
               path_loss_db: Callable[[np.ndarray, np.ndarray, radio_models.LinkBatch], np.ndarray] | None = None
               ) -> None:
        """The stations now: ids ascending, positions ``(n, 2)`` or ``(n, 3)``, antenna heights,
        the graph over them; ``path_loss_db(u, v, links)`` the channel's correlated path loss of
        pairs (None: the medium draws its own)."""

    @abstractmethod
    def send(self, sender: int, receiver: int, payload_bits: int, rate_bps: float, *, ac: str = "AC_BE",
             kind: str = "data", tag: Any = None) -> Frame:
        """Queue one frame of ``payload_bits`` at ``sender`` (``receiver`` :data:`BROADCAST`: a
        broadcast), sent at ``rate_bps`` with access category ``ac``; ``tag`` is the caller's."""

    @abstractmethod
    def abort(self, frame: Frame, *, cancelled: bool = False) -> None:
        """The sender gave up on ``frame`` (``cancelled``: the transfer was cancelled, e.g. at
        the end of an epoch; otherwise the link broke or the deadline passed)."""

    @abstractmethod
    def reset_stats(self) -> None:
        """Zero the per-epoch counters."""

    @abstractmethod
    def metrics(self) -> dict[str, float | int]:
        """Per-epoch columns since :meth:`reset_stats` (``{}``: none of its own)."""

    def has_station(self, node: int) -> bool:
        """Whether ``node`` was a station at the last update."""
        return False

    @property
    def cam_queue_delays(self) -> list[float]:
        return []


def new_frame(env: simpy.Environment, framing: Framing, sender: int, receiver: int, payload_bits: int,
              rate_bps: float, ac: str, kind: str, tag: Any) -> Frame:
    """A :class:`Frame` queued now, with a fresh ``done`` event."""
    return Frame(int(sender), int(receiver), int(payload_bits), framing.psdu_bytes(payload_bits), float(rate_bps),
                 ac, env.event(), env.now, kind, tag)
