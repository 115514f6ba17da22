"""The V2V graph of one traffic step: candidate pairs by spatial index, radio model once, arrays.

A :class:`Topology` keeps the edges as sorted numpy arrays (cheap to build every 0.1 s with
hundreds of vehicles) and builds the ``networkx.Graph`` and the neighbour lists lazily, on
first use, once per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

import radio_models
from radio_models.snr import SnrRadioModel

__all__ = ["Topology", "LinkState", "build_topology", "pair_key", "MAX_NODE_ID"]

MAX_NODE_ID = (1 << 31) - 1
_SHIFT = np.int64(1 << 32)


def pair_key(a: int, b: int) -> int:
    """Key of the unordered pair {a, b}: min * 2**32 + max."""
    return (a << 32) + b if a < b else (b << 32) + a


@dataclass(frozen=True)
class LinkState:
    """One edge of the V2V graph at the current step."""

    distance_m: float
    success_probability: float  # per payload-sized packet
    request_success_probability: float  # per request packet
    rate_bps: float


class Topology:
    """Nodes and edges of the V2V graph at one step (immutable; edges sorted by (u, v), u < v).

    Attributes (numpy arrays of length E unless said otherwise):
        nodes: node ids present, sorted ascending (length n).
        u, v: edge end points, u < v.
        distance_m, success_probability, request_success_probability, rate_bps: per edge.
    """

    def __init__(self, nodes, u, v, distance_m, success_probability, request_success_probability, rate_bps):
        self.nodes = nodes
        self.u = u
        self.v = v
        self.distance_m = distance_m
        self.success_probability = success_probability
        self.request_success_probability = request_success_probability
        self.rate_bps = rate_bps
        self.keys = u.astype(np.int64) * _SHIFT + v.astype(np.int64)
        self._node_set = frozenset(nodes.tolist())
        self._graph: nx.Graph | None = None
        self._adjacency: dict[int, list[int]] | None = None

    @classmethod
    def empty(cls) -> Topology:
        z = np.empty(0, dtype=np.int64)
        f = np.empty(0, dtype=float)
        return cls(z, z, z, f, f, f, f)

    def __len__(self) -> int:
        """Number of edges."""
        return int(self.u.shape[0])

    def has_node(self, node: int) -> bool:
        return node in self._node_set

    def edge_index(self, a: int, b: int) -> int:
        """Index of edge {a, b}, or -1 if absent (binary search on the sorted keys)."""
        key = pair_key(a, b)
        pos = int(self.keys.searchsorted(key))
        if pos < self.keys.shape[0] and int(self.keys[pos]) == key:
            return pos
        return -1

    def edge_indices(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`edge_index` (binary search on the sorted keys)."""
        lo = np.minimum(a, b).astype(np.int64)
        hi = np.maximum(a, b).astype(np.int64)
        keys = lo * _SHIFT + hi
        pos = np.searchsorted(self.keys, keys)
        pos_c = np.minimum(pos, max(len(self) - 1, 0))
        found = (pos < len(self)) & (self.keys[pos_c] == keys) if len(self) else np.zeros(keys.shape, bool)
        return np.where(found, pos, -1)

    def link(self, a: int, b: int) -> LinkState | None:
        i = self.edge_index(a, b)
        if i < 0:
            return None
        return LinkState(
            float(self.distance_m[i]),
            float(self.success_probability[i]),
            float(self.request_success_probability[i]),
            float(self.rate_bps[i]),
        )

    def neighbours(self, node: int) -> list[int]:
        """Neighbours of ``node``, ascending (empty if absent)."""
        if self._adjacency is None:
            adjacency: dict[int, list[int]] = {n: [] for n in self.nodes.tolist()}
            if len(self):
                ends = np.concatenate([self.u, self.v])
                others = np.concatenate([self.v, self.u])
                order = np.lexsort((others, ends))
                ends, others = ends[order], others[order]
                cuts = np.flatnonzero(np.diff(ends)) + 1
                for group_end, group in zip(np.split(ends, cuts), np.split(others, cuts)):
                    adjacency[int(group_end[0])] = group.tolist()
            self._adjacency = adjacency
        return list(self._adjacency.get(node, ()))

    @property
    def graph(self) -> nx.Graph:
        """The V2V graph (frozen): nodes = vehicles present, edges with attributes
        ``distance_m``, ``success_probability``, ``request_success_probability``, ``rate_bps``."""
        if self._graph is None:
            g = nx.Graph()
            g.add_nodes_from(self.nodes.tolist())
            if len(self):
                attrs = zip(
                    self.distance_m.tolist(),
                    self.success_probability.tolist(),
                    self.request_success_probability.tolist(),
                    self.rate_bps.tolist(),
                )
                g.add_edges_from(
                    (a, b, {"distance_m": d, "success_probability": p, "request_success_probability": q, "rate_bps": r})
                    for a, b, (d, p, q, r) in zip(self.u.tolist(), self.v.tolist(), attrs)
                )
            self._graph = nx.freeze(g)
        return self._graph


def candidate_pairs(positions: np.ndarray, max_range_m: float, *, method: str = "kdtree") -> np.ndarray:
    """Index pairs (i, j), i < j, closer than ``max_range_m`` (in position space), shape (P, 2).

    ``method`` "kdtree" (``cKDTree.query_pairs``) or "all_pairs" (every pair; for comparison).
    """
    n = positions.shape[0]
    if n < 2 or not max_range_m > 0:
        return np.empty((0, 2), dtype=np.intp)
    if method == "kdtree" and np.isfinite(max_range_m):
        return cKDTree(positions).query_pairs(max_range_m, output_type="ndarray")
    i, j = np.triu_indices(n, k=1)
    if np.isfinite(max_range_m):
        diff = positions[i] - positions[j]
        keep = np.einsum("ij,ij->i", diff, diff) <= max_range_m * max_range_m
        i, j = i[keep], j[keep]
    return np.stack([i, j], axis=1)


def build_topology(
    nodes: Sequence[int] | np.ndarray,
    positions: np.ndarray,
    speeds: np.ndarray | None,
    antenna_heights_m: float | np.ndarray,
    model: radio_models.RadioModel,
    rng: np.random.Generator,
    packet_bits: tuple[int, int],
    *,
    method: str = "kdtree",
    path_loss_db: Callable[[np.ndarray, np.ndarray, radio_models.LinkBatch], np.ndarray] | None = None,
) -> Topology:
    """Evaluate ``model`` once over all candidate pairs and keep the pairs in range.

    Pairs are put in canonical order (by node ids, not by the order of ``nodes``) before the
    model draws its random numbers, so the outcome does not depend on the order of the input.
    ``packet_bits`` = (payload packet bits, request packet bits). ``path_loss_db(u, v, links)``
    (SNR models only): the path loss of each candidate link (u < v node ids), e.g. from a
    :class:`cosim.channel.linkstate.CorrelatedLinkState`, instead of the model's own draws.
    """
    node_arr = np.asarray(nodes)
    if node_arr.ndim != 1:
        raise ValueError(f"nodes must be a 1-D sequence of ints; got shape {node_arr.shape}")
    if node_arr.size and node_arr.dtype.kind not in "iu":
        raise ValueError(f"nodes must be ints (agent slot indices); got dtype {node_arr.dtype}")
    node_arr = node_arr.astype(np.int64)
    n = node_arr.shape[0]
    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 2 or pos.shape[0] != n or pos.shape[1] not in (2, 3):
        raise ValueError(f"positions must have shape ({n}, 2) or ({n}, 3); got {pos.shape}")
    if n and (node_arr.min() < 0 or node_arr.max() > MAX_NODE_ID):
        raise ValueError(f"node ids must be in [0, {MAX_NODE_ID}]")
    if n and not np.all(np.isfinite(pos)):
        raise ValueError("positions must be finite")
    spd = None
    if speeds is not None:
        spd = np.asarray(speeds, dtype=float)
        if spd.shape != (n,):
            raise ValueError(f"speeds must have shape ({n},); got {spd.shape}")
    heights = np.broadcast_to(np.asarray(antenna_heights_m, dtype=float), (n,))

    # Canonical order: local index sorted by node id.
    order = np.argsort(node_arr, kind="stable")
    node_sorted = node_arr[order]
    if n > 1 and bool((node_sorted[1:] == node_sorted[:-1]).any()):
        raise ValueError("nodes must be distinct")
    pos = pos[order]
    heights = heights[order]
    if spd is not None:
        spd = spd[order]

    # Search in antenna space: the ground plane (2-D positions; the 3-D antenna distance is never
    # shorter) or ground elevation + antenna height (3-D positions).
    search = pos
    if pos.shape[1] == 3:
        search = pos.copy()
        search[:, 2] += heights
    pairs = candidate_pairs(search, float(model.max_range_m), method=method)
    if pairs.shape[0] == 0:
        empty = Topology.empty()
        return Topology(node_sorted, empty.u, empty.v, empty.distance_m, empty.success_probability,
                        empty.request_success_probability, empty.rate_bps)
    # Canonical pair order (i < j locally, so u < v in ids): sort one int64 key, then decode.
    flat = np.sort(pairs[:, 0].astype(np.int64) * n + pairs[:, 1])
    a, b = np.divmod(flat, n)
    links = radio_models.LinkBatch.from_positions(
        pos[a],
        pos[b],
        tx_height_m=heights[a],
        rx_height_m=heights[b],
        tx_speed_mps=None if spd is None else spd[a],
        rx_speed_mps=None if spd is None else spd[b],
    )
    if path_loss_db is not None and isinstance(model, SnrRadioModel):
        quality = model.quality_from_path_loss(links, path_loss_db(node_sorted[a], node_sorted[b], links), packet_bits)
    else:
        quality = model.evaluate(links, rng, packet_bits)
    success = np.asarray(quality.success_probability, dtype=float)
    if success.ndim == 1:
        success = np.stack([success, success], axis=1)
    keep = np.asarray(quality.in_range, dtype=bool)
    rate = np.asarray(quality.data_rate_bps, dtype=float)
    if np.any(rate[keep] <= 0) or not np.all(np.isfinite(rate[keep])):
        raise ValueError(f"radio model {model!r} returned a non-positive or non-finite data rate")
    return Topology(
        node_sorted,
        node_sorted[a[keep]],
        node_sorted[b[keep]],
        links.distance_m[keep],
        success[keep, 0],
        success[keep, 1],
        rate[keep],
    )
