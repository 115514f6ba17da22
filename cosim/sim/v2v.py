"""Keeps the V2V channel in step with the traffic: one channel per epoch, updated every tick.

The channel (``cosim/channel``) owns links and transfers; this hook creates it in each epoch's
SimPy environment with the epoch's own random stream, feeds it the positions of the CAVs bound to
agent slots after every SUMO step (nodes are slot indices), and reports its accounting plus the
topology seen over the epoch as metric columns.

With background CAMs (``channel.cam.enabled``) it also passes every vehicle not bound to an agent
slot (the human-driven ones, and CAVs that found no free slot) with its position; the channel
picks the equipped ones (``channel.cam.penetration``), which send CAMs on the shared medium and
never take part in policy exchange.
"""

from __future__ import annotations

import numpy as np

from cosim.channel import Channel
from cosim.sim.contracts import EpochContext, Hook


class ChannelHook(Hook):
    """Creates ``ctx.channel`` and refreshes its link graph after each traffic step.

    ``v2v_mean_links`` / ``v2v_mean_degree`` average the graphs after the epoch's traffic steps
    (one sample per step, as the other per-step means of the row); the graph of the reset state,
    built when the epoch begins so that the first actions see one, is not a sample.
    """

    def __init__(self) -> None:
        self.degree_sum = 0.0
        self.links_sum = 0
        self.updates = 0

    def begin_epoch(self, ctx: EpochContext) -> None:
        cfg = ctx.config
        ctx.channel = Channel(ctx.env, cfg.channel, ctx.rng("channel"))
        self._update(ctx)  # the reset state's graph: not a sample of the per-step means
        self.degree_sum, self.links_sum, self.updates = 0.0, 0, 0

    def after_traffic_step(self, ctx: EpochContext) -> None:
        nodes, topology = self._update(ctx)
        links = len(topology.u)
        self.links_sum += links
        self.degree_sum += 2.0 * links / len(nodes) if len(nodes) else 0.0
        self.updates += 1

    def _update(self, ctx: EpochContext):
        """Feed the channel the current positions; returns (nodes, the new topology)."""
        slots = ctx.state.slots
        nodes = np.flatnonzero(slots.active)
        if ctx.channel.cam is not None:
            ids, xy = background_vehicles(ctx)
            topology = ctx.channel.update(nodes, slots.xy[nodes], slots.speed[nodes],
                                          background_ids=ids, background_positions=xy)
        else:
            topology = ctx.channel.update(nodes, slots.xy[nodes], slots.speed[nodes])
        return nodes, topology

    def end_epoch(self, ctx: EpochContext) -> dict[str, float]:
        ctx.channel.close()
        n = self.updates
        nan = float("nan")
        return {"v2v_mean_links": self.links_sum / n if n else nan,
                "v2v_mean_degree": self.degree_sum / n if n else nan,
                **ctx.channel.metrics()}


def background_vehicles(ctx: EpochContext) -> tuple[list[str], np.ndarray]:
    """The vehicles of this step not bound to an agent slot and their x, y positions [m].

    ``TrafficState`` carries positions of bound CAVs only; where it has an ``xy`` array for every
    vehicle (aligned with ``vehicle_ids``) that is used, otherwise the positions are read from
    the traffic adapter's SUMO subscription results (every vehicle is subscribed to its
    position). A traffic feed with neither gives no background vehicles.
    """
    state = ctx.state
    bound = {v for v in state.slots.vehicle if v is not None}
    keep = [k for k, v in enumerate(state.vehicle_ids) if v not in bound]
    ids = [state.vehicle_ids[k] for k in keep]
    xy_all = getattr(state, "xy", None)
    if xy_all is not None:
        return ids, np.asarray(xy_all, dtype=float)[keep].reshape(len(ids), 2)
    api = getattr(ctx.traffic, "_api", None)
    if api is None or not ids:
        return [], np.zeros((0, 2))
    import traci.constants as tc

    results = api.vehicle.getAllSubscriptionResults()
    rows = [(v, results[v][tc.VAR_POSITION]) for v in ids if v in results and tc.VAR_POSITION in results[v]]
    return [v for v, _ in rows], np.array([p[:2] for _, p in rows], dtype=float).reshape(len(rows), 2)
