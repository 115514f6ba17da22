"""The radio-model interface: a batch of links in, per-link quality out.

A radio model turns the geometry of E links (one row per transmitter/receiver pair) into, for
each link:

- ``in_range``: whether the link exists at all (an edge of the V2V graph);
- ``success_probability``: the probability that one packet of a given size is received;
- ``data_rate_bps``: the PHY data rate in bit/s (airtime of a packet = bits / rate + overhead).

Everything is vectorised over links with numpy: the channel evaluates every candidate pair at
every 0.1 s traffic step. Randomness (shadowing, LOS state, ...) comes only from the numpy
``Generator`` passed to :meth:`RadioModel.evaluate`, drawn in a fixed order per call, so the
same seed gives the same outcome.

To write your own model, subclass :class:`RadioModel`, give ``__init__`` keyword parameters
(validate them; the helpers in ``radio_models._validation`` raise errors that name the
parameter), and implement :attr:`RadioModel.max_range_m` and :meth:`RadioModel._evaluate`.
Raise :class:`~radio_models.errors.RadioParameterError` for a bad parameter: ``create`` then
sets that parameter aside and creates the model again, so a config with several bad
parameters gets one message for each (any other exception stops at the first). Reading
``max_range_m`` must not raise; a plug-in whose property raises is refused, naming it.
Select it with ``create("my_pkg.my_module:MyModel", params)`` or register it under a name
through the entry-point group ``cosim.radio_models``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

__all__ = ["LinkBatch", "LinkQuality", "RadioModel", "as_packet_bits"]

DEFAULT_ANTENNA_HEIGHT_M = 1.5
"""Antenna height above ground (docs/reference.md §5: antenna 1.5 m)."""


def _column(value, n: int, name: str, *, dtype=float) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},); got shape {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class LinkBatch:
    """Geometry of E links, one row per (transmitter, receiver) pair; all arrays have length E.

    Attributes:
        distance_m: 3-D antenna-to-antenna distance in metres (the distance of the path-loss
            formulas).
        horizontal_distance_m: 2-D (ground-plane) distance in metres (used by LOS probabilities
            and distance-dependent fading parameters).
        tx_height_m, rx_height_m: antenna heights above ground in metres.
        tx_position, rx_position: positions, shape (E, 2) or (E, 3) (x, y[, ground z]), or None
            when the batch was built from distances only.
        tx_speed_mps, rx_speed_mps: speeds in m/s, or None when unknown (no built-in model uses
            them; they are there for user models, e.g. Doppler).
    """

    distance_m: np.ndarray
    horizontal_distance_m: np.ndarray
    tx_height_m: np.ndarray
    rx_height_m: np.ndarray
    tx_position: np.ndarray | None = None
    rx_position: np.ndarray | None = None
    tx_speed_mps: np.ndarray | None = None
    rx_speed_mps: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.distance_m.shape[0])

    @classmethod
    def from_positions(
        cls,
        tx_position,
        rx_position,
        *,
        tx_height_m=DEFAULT_ANTENNA_HEIGHT_M,
        rx_height_m=DEFAULT_ANTENNA_HEIGHT_M,
        tx_speed_mps=None,
        rx_speed_mps=None,
    ) -> LinkBatch:
        """Links between positions of shape (E, 2) (x, y) or (E, 3) (x, y, ground elevation z).

        The 3-D distance is between the antennas: ``z + height`` at each end.
        """
        tx = np.asarray(tx_position, dtype=float)
        rx = np.asarray(rx_position, dtype=float)
        if tx.ndim != 2 or tx.shape[1] not in (2, 3) or tx.shape != rx.shape:
            raise ValueError(
                "tx_position and rx_position must have the same shape (E, 2) or (E, 3); "
                f"got {tx.shape} and {rx.shape}"
            )
        n = tx.shape[0]
        htx = _column(tx_height_m, n, "tx_height_m")
        hrx = _column(rx_height_m, n, "rx_height_m")
        dxy = tx[:, :2] - rx[:, :2]
        horizontal = np.sqrt(np.einsum("ij,ij->i", dxy, dxy))
        dz = htx - hrx
        if tx.shape[1] == 3:
            dz = dz + (tx[:, 2] - rx[:, 2])
        distance = np.sqrt(horizontal * horizontal + dz * dz)
        return cls(
            distance_m=distance,
            horizontal_distance_m=horizontal,
            tx_height_m=htx,
            rx_height_m=hrx,
            tx_position=tx,
            rx_position=rx,
            tx_speed_mps=None if tx_speed_mps is None else _column(tx_speed_mps, n, "tx_speed_mps"),
            rx_speed_mps=None if rx_speed_mps is None else _column(rx_speed_mps, n, "rx_speed_mps"),
        )

    @classmethod
    def from_distances(
        cls,
        horizontal_distance_m,
        *,
        tx_height_m=DEFAULT_ANTENNA_HEIGHT_M,
        rx_height_m=DEFAULT_ANTENNA_HEIGHT_M,
    ) -> LinkBatch:
        """Links given by ground-plane distances (handy for tests, plots and tables)."""
        horizontal = np.atleast_1d(np.asarray(horizontal_distance_m, dtype=float))
        if horizontal.ndim != 1:
            raise ValueError(f"distances must be 1-D; got shape {horizontal.shape}")
        if np.any(horizontal < 0) or not np.all(np.isfinite(horizontal)):
            raise ValueError("distances must be finite and >= 0")
        n = horizontal.shape[0]
        htx = _column(tx_height_m, n, "tx_height_m")
        hrx = _column(rx_height_m, n, "rx_height_m")
        dz = htx - hrx
        return cls(
            distance_m=np.sqrt(horizontal * horizontal + dz * dz),
            horizontal_distance_m=horizontal,
            tx_height_m=htx,
            rx_height_m=hrx,
        )


@dataclass(frozen=True, eq=False)
class LinkQuality:
    """Per-link result of :meth:`RadioModel.evaluate`.

    Attributes:
        in_range: bool (E,): the link exists (an edge of the V2V graph).
        success_probability: float in [0, 1], shape (E,) for one packet size or (E, K) for K
            sizes; 0 where not in range.
        data_rate_bps: float (E,): PHY data rate in bit/s.
    """

    in_range: np.ndarray
    success_probability: np.ndarray
    data_rate_bps: np.ndarray


def as_packet_bits(packet_bits) -> tuple[np.ndarray, bool]:
    """Packet sizes as a 1-D int array (K,) and whether a single scalar size was given."""
    scalar = np.ndim(packet_bits) == 0
    bits = np.atleast_1d(np.asarray(packet_bits))
    if bits.ndim != 1 or bits.size == 0:
        raise ValueError(f"packet_bits must be an int or a 1-D sequence of ints; got {packet_bits!r}")
    if bits.dtype.kind not in "iu":
        if bits.dtype.kind == "f" and np.all(np.isfinite(bits)) and np.all(bits == np.round(bits)):
            bits = bits.astype(np.int64)
        else:
            raise ValueError(f"packet_bits must be whole numbers of bits; got {packet_bits!r}")
    if np.any(bits <= 0):
        raise ValueError(f"packet_bits must be > 0; got {packet_bits!r}")
    return bits.astype(np.int64), scalar


class RadioModel(ABC):
    """Base class of radio models (see the module docstring for how to write one).

    Subclasses implement :attr:`max_range_m` and :meth:`_evaluate`; :meth:`evaluate` checks the
    inputs and outputs around it. ``name`` is the registered name (informative only).
    """

    name: ClassVar[str] = ""

    @property
    @abstractmethod
    def max_range_m(self) -> float:
        """Distance (m, 3-D) beyond which links are out of range or their success negligible.

        The channel's spatial index only looks for pairs closer than this.
        """

    @abstractmethod
    def _evaluate(self, links: LinkBatch, rng: np.random.Generator, packet_bits: np.ndarray):
        """Return ``(in_range (E,) bool, success (E, K) float, data_rate_bps (E,) float)``.

        ``packet_bits`` is a 1-D int array of K packet sizes. Draw random numbers from ``rng``
        only, in an order that does not depend on the values drawn (same seed, same outcome).
        """

    def evaluate(
        self, links: LinkBatch, rng: np.random.Generator, packet_bits: int | Sequence[int] = 8 * 4480
    ) -> LinkQuality:
        """Quality of every link in ``links`` for packets of ``packet_bits`` bits.

        ``packet_bits`` is one size (success probability of shape (E,)) or a sequence of K sizes
        (shape (E, K), all computed from the same random draws). The default is one CPM of
        4480 bytes (paper, Section V-B).
        """
        bits, scalar = as_packet_bits(packet_bits)
        in_range, success, rate = self._evaluate(links, rng, bits)
        return self._quality(links, bits, scalar, in_range, success, rate)

    def _quality(self, links: LinkBatch, bits: np.ndarray, scalar: bool, in_range, success, rate) -> LinkQuality:
        """Check the shapes and range of a model's raw output and package it as a LinkQuality."""
        n = len(links)
        in_range = np.asarray(in_range, dtype=bool)
        success = np.asarray(success, dtype=float)
        rate = np.broadcast_to(np.asarray(rate, dtype=float), (n,))
        if success.shape == (n,):
            success = np.repeat(success[:, None], bits.size, axis=1)
        if in_range.shape != (n,) or success.shape != (n, bits.size):
            raise ValueError(
                f"{type(self).__name__}._evaluate returned in_range {in_range.shape} and success "
                f"{success.shape}; expected ({n},) and ({n}, {bits.size})"
            )
        if n and (np.any(~(success >= 0.0)) or np.any(~(success <= 1.0))):
            raise ValueError(f"{type(self).__name__} returned success probabilities outside [0, 1]")
        success = np.where(in_range[:, None], success, 0.0)
        return LinkQuality(
            in_range=in_range,
            success_probability=success[:, 0] if scalar else success,
            data_rate_bps=rate,
        )

    def parameters(self) -> dict[str, Any]:
        """The model's resolved parameters (for logs and resolved configs)."""
        return dict(getattr(self, "_params", {}))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.parameters().items())
        return f"{type(self).__name__}({args})"
