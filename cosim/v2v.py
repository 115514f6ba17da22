"""Keeps the V2V channel in step with the traffic: one channel per epoch, updated every tick.

The channel (``cosim/channel``) owns links and transfers; this hook creates it in each epoch's
SimPy environment with the epoch's own random stream, feeds it the positions of the CAVs bound to
agent slots after every SUMO step (nodes are slot indices), and reports its accounting plus the
topology seen over the epoch as metric columns.
"""

from __future__ import annotations

import numpy as np

from cosim.channel import Channel
from cosim.contracts import EpochContext, Hook


class ChannelHook(Hook):
    """Creates ``ctx.channel`` and refreshes its link graph after each traffic step."""

    def __init__(self) -> None:
        self.degree_sum = 0.0
        self.links_sum = 0
        self.updates = 0

    def begin_epoch(self, ctx: EpochContext) -> None:
        cfg = ctx.config
        ctx.channel = Channel(ctx.env, cfg.channel, ctx.rng("channel"))
        self.degree_sum, self.links_sum, self.updates = 0.0, 0, 0
        self.after_traffic_step(ctx)

    def after_traffic_step(self, ctx: EpochContext) -> None:
        slots = ctx.state.slots
        nodes = np.flatnonzero(slots.active)
        topology = ctx.channel.update(nodes, slots.xy[nodes], slots.speed[nodes])
        links = len(topology.u)
        self.links_sum += links
        self.degree_sum += 2.0 * links / len(nodes) if len(nodes) else 0.0
        self.updates += 1

    def end_epoch(self, ctx: EpochContext) -> dict[str, float]:
        ctx.channel.close()
        n = max(self.updates, 1)
        return {"v2v_mean_links": self.links_sum / n, "v2v_mean_degree": self.degree_sum / n,
                **ctx.channel.metrics()}
