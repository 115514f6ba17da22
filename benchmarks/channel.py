"""Benchmark of the V2V channel: graph rebuild per traffic step, transfer throughput with the
independent and the csma medium, and the channel's share of a Figure 8 epoch.

1. ``graph``: vehicles on a 2 km, 4-lane straight road (lanes 3.5 m apart), positions uniform
   along the road, speeds 20-30 m/s; every step moves them 0.1 s. For 10, 100 and 1000 vehicles
   and a 90 m (Figure 8) and 400 m (Merge) range, per step (mean wall time):

   - ``kdtree``: ``Channel.update`` as the engine calls it (cKDTree candidates, one vectorised
     radio evaluation, edge arrays; the networkx graph is not built);
   - ``all_pairs``: the same with every pair as a candidate instead of the spatial index;
   - ``+graph``: kdtree, then the networkx.Graph built (first access of ``Channel.graph``);
   - ``+neigh``: kdtree, then the neighbour lists of all vehicles (``Channel.neighbours``).

2. ``transfers``: 100 vehicles on that road, each pulling a 4-packet segment from up to 4
   neighbours every 0.5 s, updates every 0.1 s, with ``channel.medium: independent`` and
   ``csma`` in the same run: MAC frames simulated per second of CPU time (``time.process_time``,
   less sensitive than wall time to a shared machine) and of wall time, and their ratio.

3. ``epoch``: the channel's share of a Figure 8 epoch with CommMix at the defaults
   (scenarios/figure8.yaml: rsm_masac, async, unit disk 90 m), once with the shipped medium and
   once with ``channel.medium=csma``: the time inside the channel (``Channel.update``, ``pull``,
   ``close``, ``metrics``, every step of its transfer processes and every callback of the csma
   medium, outermost calls only) over each epoch's time, both measured in the same process, in
   CPU time and in wall time. The budget: under 15 % of the epoch's wall time (and CPU time). The first epoch of each run is
   left out of the summary when there are more (no policy update yet).

Usage: python benchmarks/channel.py [--quick] [--parts 123] [--model unit_disk|tr37885_highway|...]
       [--epochs N] [--threads N (torch threads of part 3, default 1: no spinning torch worker counted inside the channel)]  (--quick: fewer graph steps, 5 s of transfers, two figure8 epochs per medium)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

# benchmarks/learners.py is named like the package: keep this folder off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import numpy as np  # noqa: E402
import simpy  # noqa: E402

from cosim.run.profiling import Clock  # noqa: E402

from cosim.channel import Channel, ChannelConfig  # noqa: E402
from cosim.channel.topology import build_topology  # noqa: E402


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


def transfer_throughput(n: int, sim_seconds: float, model: str, seed: int = 0, medium: str = "independent") -> dict[str, float]:
    rng = np.random.default_rng(seed)
    pos, speed = road_layout(n, rng)
    env = simpy.Environment()
    cfg = ChannelConfig(radio=radio_for(model, 400.0), max_retries=3, medium=medium)
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
    t0, c0 = time.perf_counter(), time.process_time()
    env.run(until=sim_seconds)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = ch.metrics()
    done = m["transfers_ok"] + m["transfers_failed"]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "frames": m["mac_frames_sent"],
        "frames_per_cpu_s": m["mac_frames_sent"] / cpu,
        "frames_per_wall_s": m["mac_frames_sent"] / wall,
        "busy_ratio": m["channel_busy_ratio_mean"],
        "transfers": done,
        "transfers_per_wall_s": done / wall,
        "packets_per_wall_s": m["channel_packets"] / wall,
        "ok_fraction": m["transfers_ok"] / max(done, 1),
        "latency_mean_ms": 1e3 * m["transfer_latency_mean_s"],
        "latency_p95_ms": 1e3 * m["transfer_latency_p95_s"],
    }


_CHANNEL_FUNCTIONS = ("update", "pull", "close", "metrics", "reset")
_MEDIUM_FUNCTIONS = ("update", "send", "abort", "_expire", "_data_end", "_ack_start", "_ack_end", "_exchange_end",
                     "metrics", "reset_stats")
# the independent medium's attempts end in SimPy callbacks of its own, outside the channel's functions
_INDEPENDENT_FUNCTIONS = ("update", "send", "abort", "_decide", "_attempt")


def epoch_share(epochs: int, horizon: int | None, mediums: list[str]) -> list[dict[str, float]]:
    """Run figure8 (CommMix at its defaults) for each medium with the channel instrumented;
    print per-epoch times and the channel's share; return the summaries."""
    import tempfile
    from pathlib import Path

    import cosim.sim.engine as engine
    from cosim.channel.channel import Channel
    from cosim.channel.csma import CsmaMedium
    from cosim.channel.independent import IndependentMedium
    from cosim.config import load_config
    from cosim.run.experiment import run_experiment

    root = Path(__file__).resolve().parents[1]
    clock = Clock()
    saved = {}
    for cls, names in ((Channel, _CHANNEL_FUNCTIONS), (CsmaMedium, _MEDIUM_FUNCTIONS),
                       (IndependentMedium, _INDEPENDENT_FUNCTIONS)):
        for name in names:
            saved[(cls, name)] = getattr(cls, name)
            setattr(cls, name, clock.function(getattr(cls, name)))
    saved[(Channel, "_transfer")] = Channel._transfer
    Channel._transfer = clock.generator(Channel._transfer)
    run_epoch = engine.Engine.run_epoch
    rows: list[tuple[float, float, float, float, dict]] = []

    def timed_epoch(self, *args, **kwargs):
        c0, w0, cc0, cw0 = time.process_time(), time.perf_counter(), clock.cpu, clock.wall
        row = run_epoch(self, *args, **kwargs)
        rows.append((time.process_time() - c0, time.perf_counter() - w0, clock.cpu - cc0, clock.wall - cw0, row))
        return row

    engine.Engine.run_epoch = timed_epoch
    summaries = []
    try:
        for medium in mediums:
            rows.clear()
            overrides = [f"train.epochs={epochs}", f"channel.medium={medium}"]
            if horizon is not None:
                overrides.append(f"env.horizon={horizon}")
            config = load_config(str(root / "scenarios" / "figure8.yaml"), overrides)
            with tempfile.TemporaryDirectory() as tmp:
                run_experiment(config, Path(tmp) / "run", progress=False)
            print(f"   figure8, channel.medium={medium}, {config.env.horizon} steps per epoch:")
            for k, (cpu, wall, ch_cpu, ch_wall, row) in enumerate(rows):
                print(f"     epoch {k + 1}: {cpu:6.2f} s CPU ({wall:6.2f} s wall), channel {ch_cpu:5.2f} s CPU = "
                      f"{100 * ch_cpu / cpu:4.1f} % ({100 * ch_wall / wall:4.1f} % of wall); "
                      f"{row.get('comm_rounds', 0)} rounds, {row.get('channel_packets', 0)} frames, "
                      f"busy ratio {row.get('channel_busy_ratio_mean', float('nan')):.3f}")
            keep = rows[1:] if len(rows) > 1 else rows
            cpu = sum(r[0] for r in keep)
            ch_cpu = sum(r[2] for r in keep)
            wall = sum(r[1] for r in keep)
            ch_wall = sum(r[3] for r in keep)
            summaries.append({"medium": medium, "epoch_cpu_s": cpu / len(keep), "channel_cpu_s": ch_cpu / len(keep),
                              "share_cpu": ch_cpu / cpu, "share_wall": ch_wall / wall})
    finally:
        engine.Engine.run_epoch = run_epoch
        for (cls, name), f in saved.items():
            setattr(cls, name, f)
    for s in summaries:
        verdict = "under" if max(s["share_cpu"], s["share_wall"]) < 0.15 else "OVER"
        print(f"   {s['medium']:>11}: channel {100 * s['share_wall']:.1f} % of epoch wall time "
              f"({100 * s['share_cpu']:.1f} % of CPU time), {s['channel_cpu_s']:.2f} s of {s['epoch_cpu_s']:.2f} s "
              f"CPU per epoch: {verdict} the 15 % budget (in both)")
    if len(summaries) == 2:
        a, b = summaries
        print(f"   {b['medium']} vs {a['medium']}: epoch CPU time x{b['epoch_cpu_s'] / a['epoch_cpu_s']:.2f}, "
              f"channel CPU time x{b['channel_cpu_s'] / max(a['channel_cpu_s'], 1e-9):.1f}")
    return summaries


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, shorter runs")
    parser.add_argument("--model", default="unit_disk", help="radio model of parts 1-2 (default unit_disk)")
    parser.add_argument("--steps", type=int, default=None, help="graph steps per configuration")
    parser.add_argument("--parts", default="123", help="which parts to run, e.g. 23 (default 123)")
    parser.add_argument("--epochs", type=int, default=None, help="figure8 epochs per medium (default 3; quick 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of part 3 (default 1, so that torch's spinning worker thread is not counted inside the channel)")
    args = parser.parse_args(argv)
    steps = args.steps or (5 if args.quick else 30)

    if "1" in args.parts:
        print(f"1. graph rebuild per 0.1 s step, model={args.model}, mean over {steps} steps (ms)")
        header = (f"{'vehicles':>8} {'range m':>8} {'edges':>9} {'kdtree':>9} {'all_pairs':>10} {'ratio':>6} "
                  f"{'+graph':>9} {'+neigh':>9}")
        print(header)
        for n in (10, 100, 1000):
            for range_m in (90.0, 400.0):
                r = time_steps(n, range_m, args.model, steps)
                print(
                    f"{n:>8} {range_m:>8.0f} {r['edges']:>9.0f} {r['kdtree']:>9.3f} {r['all_pairs']:>10.3f} "
                    f"{r['all_pairs'] / r['kdtree']:>6.2f} {r['+graph']:>9.3f} {r['+neigh']:>9.3f}"
                )

    if "2" in args.parts:
        sim = 5.0 if args.quick else 20.0
        print(f"\n2. transfers: 100 vehicles, 400 m, model={args.model}, {sim:g} s simulated")
        results = {}
        for medium in ("independent", "csma"):
            t = results[medium] = transfer_throughput(100, sim, args.model, medium=medium)
            print(
                f"   {medium:>11}: {t['frames']} frames in {t['cpu_s']:.2f} s CPU ({t['wall_s']:.2f} s wall) -> "
                f"{t['frames_per_cpu_s']:.0f} frames per CPU s ({t['frames_per_wall_s']:.0f} per wall s); "
                f"{t['transfers']} transfers, ok {100 * t['ok_fraction']:.1f} %, latency mean "
                f"{t['latency_mean_ms']:.1f} ms, p95 {t['latency_p95_ms']:.1f} ms, busy ratio {t['busy_ratio']:.3f}"
            )
        i, c = results["independent"], results["csma"]
        print(f"   csma simulates {c['frames_per_cpu_s']:.0f} frames per CPU second, "
              f"{c['frames_per_cpu_s'] / i['frames_per_cpu_s']:.2f} x the independent medium's rate (same run)")

    if "3" in args.parts:
        import torch

        torch.set_num_threads(args.threads)
        epochs = args.epochs or (2 if args.quick else 3)
        print("\n3. the channel's share of a Figure 8 epoch, CommMix at the defaults")
        epoch_share(epochs, None, ["independent", "csma"])


if __name__ == "__main__":
    main()
