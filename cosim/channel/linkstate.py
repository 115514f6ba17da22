"""Correlated channel state: each link's random terms evolve with movement (``channel.link_state: correlated``).

With ``link_state: redrawn`` an SNR radio model draws a link's shadowing, LOS state and
blockage afresh at every traffic step, so a link 0.1 s later (a metre farther) is independent
of what it was: its PRR can jump from 0 to 1 and back. Measured V2V shadowing is instead
correlated over distance; Gudmundson's model ("Correlation model for shadow fading in mobile
radio systems", Electronics Letters 27(23), 1991) gives it an exponential autocorrelation

    R(D) = exp(-D / d_corr)

over a displacement D, with the decorrelation distance d_corr of the environment (3GPP TR
36.885 / TR 37.885 V2V: 25 m highway, 10 m urban). :class:`CorrelatedLinkState` keeps, per
unordered pair of vehicles, the standard normals that drive the radio model's random terms
(:attr:`radio_models.snr.SnrRadioModel.random_terms`: the shadowing; for TR 37.885 also the
LOS/NLOSv/NLOS state, the blocker type and the blockage loss) and updates them at every step as
a first-order Gauss-Markov process in the distance moved:

    z_new = rho z_old + sqrt(1 - rho^2) e,    rho = exp(-D / d_corr),  e ~ N(0, 1),

which is exact for that autocorrelation (the product of rho over consecutive displacements along
a path is exp(-total / d_corr)) and keeps every z standard normal, so each link's marginal
distribution (shadowing std, LOS probability at its distance) is the model's. D is the change of
the link's relative position vector (receiver minus transmitter, 2-D) since it was last
evaluated, as in ns-3's ``ThreeGppPropagationLossModel`` shadowing update: a link whose two ends
move together keeps its state, a link whose end moves by D decorrelates by exp(-D / d_corr).

The LOS state comes from the same kind of process: the condition's uniform is Phi(z0), compared
with the LOS probability of the current distance (the spatially consistent LOS state of 3GPP TR
38.901 §7.6.3.3, here with the shadowing's decorrelation distance: TR 37.885 gives none for the
V2V LOS state; an assumption). A link therefore changes state only when it moves or when its
LOS probability crosses its value, and its PRR changes smoothly with distance.

A pair that leaves the search range keeps its state (and evolves from it by the displacement
when it comes back: the Gauss-Markov update is exact for any D); pairs whose vehicles are gone
are forgotten (:meth:`CorrelatedLinkState.retain`).
"""

from __future__ import annotations

import numpy as np

import radio_models
from radio_models.snr import SnrRadioModel

__all__ = ["CorrelatedLinkState"]

_SHIFT = np.int64(1 << 32)


class CorrelatedLinkState:
    """Per-link random terms of ``model`` as Gauss-Markov processes in the distance moved.

    Args:
        model: the channel's SNR radio model (its :attr:`random_terms` and
            :meth:`path_loss_from_normals_db`).
        rng: the stream that draws initial states and innovations.
        decorrelation_distance_m: d_corr; None = the model's ``decorrelation_distance_m``.
    """

    def __init__(self, model: SnrRadioModel, rng: np.random.Generator, decorrelation_distance_m: float | None = None):
        self.model = model
        self.rng = rng
        self.k = int(model.random_terms)
        d = model.decorrelation_distance_m if decorrelation_distance_m is None else decorrelation_distance_m
        if not d > 0:
            raise ValueError(f"decorrelation_distance_m must be > 0; got {d!r}")
        self.decorrelation_distance_m = float(d)
        self._keys = np.empty(0, dtype=np.int64)  # sorted
        self._rel = np.empty((0, 2))
        self._z = np.empty((0, self.k))

    def __len__(self) -> int:
        """Number of links with a kept state."""
        return int(self._keys.shape[0])

    def normals(self, u: np.ndarray, v: np.ndarray, links: radio_models.LinkBatch) -> np.ndarray:
        """The links' normals now, shape (E, k), updated by their displacement since last time.

        ``u``, ``v``: node ids of each link's transmitter and receiver with u < v, the
        transmitter at ``links.tx_position``. Links seen for the first time draw a fresh state;
        links that did not move (D = 0) keep theirs exactly and draw nothing, so calling twice
        with the same positions returns the same values. Draws: one (k,) normal per moved link,
        then per new link, in the order given (same inputs and seed, same outcome).
        """
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        if np.any(u >= v):
            raise ValueError("links must be given with u < v (one state per unordered pair)")
        keys = u * _SHIFT + v
        n = keys.shape[0]
        if links.tx_position is None or links.rx_position is None:
            raise ValueError("correlated link state needs links built from positions")
        rel = links.rx_position[:, :2] - links.tx_position[:, :2]
        z = np.empty((n, self.k))
        if n == 0:
            return z
        stored = self._keys.shape[0]
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, max(stored - 1, 0))
        known = (pos < stored) & (self._keys[pos_c] == keys) if stored else np.zeros(n, dtype=bool)
        idx = pos[known]
        zk = self._z[idx].copy()
        if idx.size and self.k:
            step = rel[known] - self._rel[idx]
            dist = np.sqrt(np.einsum("ij,ij->i", step, step))
            moved = dist > 0.0
            if moved.any():
                rho = np.exp(-dist[moved] / self.decorrelation_distance_m)[:, None]
                innovation = self.rng.standard_normal((int(moved.sum()), self.k))
                zk[moved] = rho * zk[moved] + np.sqrt(1.0 - rho * rho) * innovation
        z[known] = zk
        new = ~known
        if new.any():
            z[new] = self.rng.standard_normal((int(new.sum()), self.k))
        # keep: the states of links not evaluated now, then these links' new states
        others = np.ones(stored, dtype=bool)
        others[idx] = False
        all_keys = np.concatenate([self._keys[others], keys])
        order = np.argsort(all_keys, kind="stable")
        self._keys = all_keys[order]
        self._rel = np.concatenate([self._rel[others], rel])[order]
        self._z = np.concatenate([self._z[others], z])[order]
        return z

    def path_loss_db(self, u: np.ndarray, v: np.ndarray, links: radio_models.LinkBatch) -> np.ndarray:
        """Path loss of each link from its current state (see :meth:`normals`)."""
        return self.model.path_loss_from_normals_db(links, self.normals(u, v, links))

    def retain(self, nodes: np.ndarray) -> None:
        """Forget the links with an end not in ``nodes`` (vehicles gone)."""
        if not len(self):
            return
        present = np.asarray(nodes, dtype=np.int64)
        keep = np.isin(self._keys // _SHIFT, present) & np.isin(self._keys % _SHIFT, present)
        self._keys, self._rel, self._z = self._keys[keep], self._rel[keep], self._z[keep]
