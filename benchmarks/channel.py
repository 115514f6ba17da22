"""Benchmark of the V2V channel: graph rebuild per traffic step, and transfer throughput.

Vehicles on a 2 km, 4-lane straight road (lanes 3.5 m apart), positions uniform along the road,
speeds 20-30 m/s; every step moves them 0.1 s. For 10, 100 and 1000 vehicles and a 90 m
(Figure 8) and 400 m (Merge) range, per step (mean wall time):

- ``kdtree``: ``Channel.update`` as the engine calls it (cKDTree candidates, one vectorised
  radio evaluation, edge arrays; the networkx graph is not built);
- ``all_pairs``: the same with every pair as a candidate instead of the spatial index;
- ``+graph``: kdtree, then the networkx.Graph built (first access of ``Channel.graph``);
- ``+neigh``: kdtree, then the neighbour lists of all vehicles (``Channel.neighbours``).

Then the transfer processes: 100 vehicles, each pulling a 4-packet segment from up to 4
neighbours every 0.5 s for 20 simulated seconds, updates every 0.1 s; simulated transfers and
packets per wall second.

Usage: python benchmarks/channel.py [--quick] [--model unit_disk|tr37885_highway|...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import simpy

from cosim.channel import Channel, ChannelConfig
from cosim.channel.topology import build_topology


def road_layout(n: int, rng: np.random.Generator, length: float = 2000.0, lanes: int = 4):
    x = rng.uniform(0.0, length, n)
    y = 3.5 * rng.integers(0, lanes, n)
    v = rng.uniform(20.0, 30.0, n)
    return np.column_stack([x, y]), v


def radio_for(model: str, range_m: float) -> dict:
    if model == "unit_disk":
        return {"model": "unit_disk", "params": {"range_m": range_m, "prr": 0.9}}
    return {"model": model, "params": {"max_range_m": range_m}}


def time_steps(n: int, range_m: float, model: str, steps: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    pos, speed = road_layout(n, rng)
    nodes = np.arange(n)
    env = simpy.Environment()
    ch = Channel(env, ChannelConfig(radio=radio_for(model, range_m)), np.random.default_rng(seed))
    times: dict[str, list[float]] = {"kdtree": [], "all_pairs": [], "+graph": [], "+neigh": []}
    edges = []
    for step in range(steps):
        p = pos.copy()
        p[:, 0] = (pos[:, 0] + speed * 0.1 * step) % 2000.0

        t0 = time.perf_counter()
        ch.update(nodes, p, speed)
        t1 = time.perf_counter()
        times["kdtree"].append(t1 - t0)
        edges.append(len(ch.topology))

        t0 = time.perf_counter()
        build_topology(nodes, p, speed, 1.5, ch.model, ch._radio_rng, (8 * 4480, 512), method="all_pairs")
        times["all_pairs"].append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        ch.update(nodes, p, speed)
        _ = ch.graph
        times["+graph"].append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        ch.update(nodes, p, speed)
        for i in range(n):
            ch.neighbours(i)
        times["+neigh"].append(time.perf_counter() - t0)
    out = {k: 1e3 * statistics.mean(v) for k, v in times.items()}
    out["edges"] = statistics.mean(edges)
    return out


def transfer_throughput(n: int, sim_seconds: float, model: str, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    pos, speed = road_layout(n, rng)
    env = simpy.Environment()
    cfg = ChannelConfig(radio=radio_for(model, 400.0), max_retries=3)
    ch = Channel(env, cfg, np.random.default_rng(seed))
    nodes = np.arange(n)
    segment_bits = 4 * 8 * 4480
    choice_rng = np.random.default_rng(seed + 1)

    def traffic():
        while True:
            p = pos.copy()
            p[:, 0] = (pos[:, 0] + speed * env.now) % 2000.0
            ch.update(nodes, p, speed)
            yield env.timeout(0.1)

    def rounds():
        yield env.timeout(1e-6)
        while True:
            for i in range(n):
                neigh = ch.neighbours(i)
                if not neigh:
                    continue
                for j in choice_rng.choice(neigh, size=min(4, len(neigh)), replace=False).tolist():
                    ch.pull(i, j, lambda: ("segment", segment_bits))
            yield env.timeout(0.5)

    env.process(traffic())
    env.process(rounds())
    t0 = time.perf_counter()
    env.run(until=sim_seconds)
    wall = time.perf_counter() - t0
    m = ch.metrics()
    done = m["transfers_ok"] + m["transfers_failed"]
    return {
        "wall_s": wall,
        "transfers": done,
        "transfers_per_wall_s": done / wall,
        "packets_per_wall_s": m["channel_packets"] / wall,
        "ok_fraction": m["transfers_ok"] / max(done, 1),
        "latency_mean_ms": 1e3 * m["transfer_latency_mean_s"],
        "latency_p95_ms": 1e3 * m["transfer_latency_p95_s"],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and a shorter transfer run")
    parser.add_argument("--model", default="unit_disk", help="radio model (default unit_disk)")
    parser.add_argument("--steps", type=int, default=None, help="steps per configuration")
    args = parser.parse_args(argv)
    steps = args.steps or (5 if args.quick else 30)

    print(f"graph rebuild per 0.1 s step, model={args.model}, mean over {steps} steps (ms)")
    header = f"{'vehicles':>8} {'range m':>8} {'edges':>9} {'kdtree':>9} {'all_pairs':>10} {'ratio':>6} {'+graph':>9} {'+neigh':>9}"
    print(header)
    for n in (10, 100, 1000):
        for range_m in (90.0, 400.0):
            r = time_steps(n, range_m, args.model, steps)
            print(
                f"{n:>8} {range_m:>8.0f} {r['edges']:>9.0f} {r['kdtree']:>9.3f} {r['all_pairs']:>10.3f} "
                f"{r['all_pairs'] / r['kdtree']:>6.2f} {r['+graph']:>9.3f} {r['+neigh']:>9.3f}"
            )

    sim = 5.0 if args.quick else 20.0
    t = transfer_throughput(100, sim, args.model)
    print(
        f"\ntransfers: 100 vehicles, 400 m, {sim:g} s simulated: {t['transfers']} transfers in {t['wall_s']:.2f} s wall "
        f"-> {t['transfers_per_wall_s']:.0f} transfers/s, {t['packets_per_wall_s']:.0f} packets/s; "
        f"ok {100 * t['ok_fraction']:.1f} %, latency mean {t['latency_mean_ms']:.1f} ms, p95 {t['latency_p95_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
