"""Transfer results and per-epoch channel accounting."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

__all__ = ["FailureCause", "TransferResult", "ChannelStats"]


class FailureCause(str, Enum):
    """Why a transfer failed (the value is used in metric names: ``transfers_failed_<value>``)."""

    NO_LINK = "no_link"
    """Requester and responder were not neighbours (or one was absent) when requested."""
    OUT_OF_RANGE = "out_of_range"
    """The edge disappeared during the transfer while both vehicles were still present."""
    NODE_LEFT = "node_left"
    """The requester or the responder left the network during the transfer."""
    REQUEST_LOST = "request_lost"
    """The request packet was lost 1 + max_retries times."""
    PACKET_LOST = "packet_lost"
    """A payload packet was lost 1 + max_retries times."""
    TIMEOUT = "timeout"
    """The transfer's time limit expired (queueing for link slots included)."""
    REFUSED = "refused"
    """The responder's ``respond()`` returned None."""
    CANCELLED = "cancelled"
    """The transfer process was interrupted (e.g. :meth:`Channel.cancel_all` at an epoch end)."""


@dataclass(frozen=True)
class TransferResult:
    """Value of a :meth:`Channel.pull` process.

    Attributes:
        ok: every packet arrived; ``payload`` is the response.
        requester, responder: node ids.
        payload: what ``respond()`` returned, or None unless ``ok``.
        size_bits: the response size in bits (0 if no response was produced).
        cause: a :class:`FailureCause`, None if ``ok``.
        started_at, finished_at: simulated times of the pull() call and of the outcome.
        responded_at: simulated time at which ``respond()`` was called (the payload snapshot),
            None if the request never arrived.
        queue_wait_s: seconds spent waiting for the two link slots (requester's and
            responder's), from the response to the grant of both, or to the outcome when the
            transfer timed out, broke or was cancelled before both were granted; 0.0 when it
            never queued (see ``queued``).
        packets_sent, packets_lost, bits_sent: of this transfer, request and retransmissions
            included, counted when an attempt ends: ``independent`` medium, a frame cut short
            by a break or a timeout counts as sent and lost; ``csma``, it stays on the air and
            counts when it ends. A frame still on the air when the transfer is cancelled (the
            epoch end) is not counted.
        queued: the transfer queued for link slots (its request arrived and the responder
            answered); only these count in ``transfer_queue_wait_mean_s``. Ideal mode: every
            transfer that got a response (a wait of 0).
    """

    ok: bool
    requester: int
    responder: int
    payload: Any
    size_bits: int
    cause: FailureCause | None
    started_at: float
    finished_at: float
    responded_at: float | None
    queue_wait_s: float
    packets_sent: int
    packets_lost: int
    bits_sent: int
    queued: bool = False

    @property
    def latency_s(self) -> float:
        """finished_at - started_at."""
        return self.finished_at - self.started_at


class ChannelStats:
    """Counters since the last :meth:`reset` (one epoch).

    N x N integer matrices, N = largest node id seen + 1, indexed [sender, receiver] for
    packets (requests go requester -> responder, payload responder -> requester):
    ``bits_sent``, ``packets_sent``, ``packets_lost``; and [requester, responder] for
    ``transfers_ok_by_pair``. Use :meth:`matrices` for a fixed N.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        n = getattr(self, "_n", 0)
        self._n = n
        self.bits_sent = np.zeros((n, n), dtype=np.int64)
        self.packets_sent = np.zeros((n, n), dtype=np.int64)
        self.packets_lost = np.zeros((n, n), dtype=np.int64)
        self.transfers_ok_by_pair = np.zeros((n, n), dtype=np.int64)
        self.payload_packets = 0
        self.payload_bits = 0
        self.payload_packets_lost = 0
        self.request_packets = 0
        self.request_bits = 0
        self.request_packets_lost = 0
        self.transfers_started = 0
        self.transfers_ok = 0
        self.failures: dict[FailureCause, int] = {cause: 0 for cause in FailureCause}
        self.latencies_s: list[float] = []
        self.queue_waits_s: list[float] = []

    def _grow(self, node: int) -> None:
        if node < self._n:
            return
        n = max(node + 1, 2 * self._n)
        pad = ((0, n - self._n), (0, n - self._n))
        self.bits_sent = np.pad(self.bits_sent, pad)
        self.packets_sent = np.pad(self.packets_sent, pad)
        self.packets_lost = np.pad(self.packets_lost, pad)
        self.transfers_ok_by_pair = np.pad(self.transfers_ok_by_pair, pad)
        self._n = n

    def record_packet(self, sender: int, receiver: int, bits: int, delivered: bool, *, request: bool) -> None:
        self._grow(max(sender, receiver))
        self.bits_sent[sender, receiver] += bits
        self.packets_sent[sender, receiver] += 1
        if not delivered:
            self.packets_lost[sender, receiver] += 1
        if request:
            self.request_packets += 1
            self.request_bits += bits
            self.request_packets_lost += not delivered
        else:
            self.payload_packets += 1
            self.payload_bits += bits
            self.payload_packets_lost += not delivered

    def record_start(self) -> None:
        self.transfers_started += 1

    def record_result(self, result: TransferResult) -> None:
        if result.ok:
            self.transfers_ok += 1
            self._grow(max(result.requester, result.responder))
            self.transfers_ok_by_pair[result.requester, result.responder] += 1
            self.latencies_s.append(result.latency_s)
        else:
            self.failures[result.cause] += 1
        if result.queued:  # granted, or given up while waiting: the time it actually waited
            self.queue_waits_s.append(result.queue_wait_s)

    def matrices(self, num_nodes: int) -> dict[str, np.ndarray]:
        """Copies of the N x N matrices cut or zero-padded to ``num_nodes``."""
        out = {}
        for name in ("bits_sent", "packets_sent", "packets_lost", "transfers_ok_by_pair"):
            m = getattr(self, name)
            full = np.zeros((num_nodes, num_nodes), dtype=m.dtype)
            k = min(num_nodes, m.shape[0])
            full[:k, :k] = m[:k, :k]
            out[name] = full
        return out

    def metrics(self) -> dict[str, float | int]:
        """Flat metrics for a per-epoch CSV row (the same keys every time).

        Every started transfer ends in exactly one of ``transfers_ok``, ``transfers_failed``
        (split by cause in ``transfers_failed_<cause>``) and ``transfers_cancelled`` (cut short
        by :meth:`Channel.close`/``cancel_all``, e.g. at the end of an epoch).
        """
        packets = self.payload_packets + self.request_packets
        lost = self.payload_packets_lost + self.request_packets_lost
        lat = np.asarray(self.latencies_s, dtype=float)
        waits = np.asarray(self.queue_waits_s, dtype=float)
        out: dict[str, float | int] = {
            "channel_bits": int(self.payload_bits + self.request_bits),
            "channel_packets": int(packets),
            "channel_packets_lost": int(lost),
            "channel_packet_loss_rate": float(lost / packets) if packets else float("nan"),
            "channel_payload_bits": int(self.payload_bits),
            "channel_payload_packets": int(self.payload_packets),
            "channel_payload_packets_lost": int(self.payload_packets_lost),
            "channel_request_packets": int(self.request_packets),
            "transfers_started": int(self.transfers_started),
            "transfers_ok": int(self.transfers_ok),
            "transfers_failed": int(sum(n for c, n in self.failures.items() if c is not FailureCause.CANCELLED)),
            "transfers_cancelled": int(self.failures[FailureCause.CANCELLED]),
        }
        for cause in FailureCause:
            if cause is not FailureCause.CANCELLED:
                out[f"transfers_failed_{cause.value}"] = int(self.failures[cause])
        out["transfer_latency_mean_s"] = float(lat.mean()) if lat.size else float("nan")
        out["transfer_latency_p95_s"] = float(np.percentile(lat, 95)) if lat.size else float("nan")
        out["transfer_latency_max_s"] = float(lat.max()) if lat.size else float("nan")
        out["transfer_queue_wait_mean_s"] = float(waits.mean()) if waits.size else float("nan")
        return out
