"""Benchmark of the C-V2X sidelink medium (cosim.channel.sidelink): what it costs, measured.

1. ``tbs``: transport blocks simulated per CPU second (``time.process_time``), without and with
   in-band emission:
   - ``periodic``: the validation highway (tests/channel/test_sidelink_validation.py: LTE-V2X
     10 MHz, 4 sub-channels, 190-byte CAMs at 10 Hz by SPS, WINNER+ B1 with 3 dB shadowing
     redrawn every 100 ms) at 0.1, 0.2 and 0.3 veh/m on 3 km;
   - ``aperiodic``: 9 vehicles 10 m apart (a Figure 8 cluster), each sending 4480-byte unicast
     packets back to back to the next one (NR-V2X defaults: 20 MHz at 30 kHz, MCS 11, dynamic
     selection TB after TB, re-evaluation), and the same without re-evaluation.
2. ``scaling``: the radio medium's cost of one 60 s highway epoch against the number of
   vehicles (50, 100, 200, 500 on the 3 km ring of scenarios/highway.yaml: two carriageways of
   3 lanes, vehicles moving at 19.4 m/s, geometry updated every 0.1 s, TR 37.885 highway path
   loss), every vehicle broadcasting a 300-byte CAM at 10 Hz:
   - ``independent``: private pipes, no shared air: the graph rebuild of every step
     (``Channel.update``) is all it costs (CAMs have no medium to occupy);
   - ``csma``: the 802.11p medium (``CsmaMedium``), CAMs at AC_VO decided at every station
     within 400 m;
   - ``sidelink-lte`` / ``sidelink-nr``: the sidelink medium (SPS), CAMs decided within 400 m.
   CPU seconds per 60 s epoch (measured over ``--seconds`` of simulated time and scaled).
3. ``epoch``: the wall time of a whole highway epoch (``cosim run scenarios/highway.yaml`` with
   ``learner: idm``, SUMO included, 600 steps of 0.1 s, one torch thread) against the number of
   vehicles (route files written by scenarios/networks/highway/generate_highway.py), with the
   independent medium (no background load: it carries no broadcasts), and with csma and the
   sidelink carrying CAMs from every vehicle (``channel.cam.penetration: 1``): ``timing.csv``'s
   ``wall_time_s``.
4. ``figure8``: the channel's share of a default Figure 8 epoch (scenarios/figure8.yaml, SAC and
   CommMix at the defaults, 1500 steps) over the sidelink at its defaults: the time inside the
   channel (``Channel.update``, ``pull``, ``close``, ``metrics``, ``reset``, every step of its
   transfer processes) and inside the medium's own callbacks (slot ends, arrivals, NR
   re-evaluations), outermost calls only, over the epoch's time, CPU and wall, as
   benchmarks/channel.py part 3 does for independent and csma. The first epoch (no policy update yet) is left out of the summary.
5. ``reevaluation``: what NR re-evaluation changes where it can act: 60 vehicles 20 m apart
   sending CAMs by SPS and 4000-byte broadcasts by dynamic selection with blind retransmissions
   (whose SCIs announce the second copy), broadcast PDR with ``re_evaluation`` false and true,
   for ``dynamic_window_ms`` 20 and 50.

Usage: python benchmarks/sidelink.py [--parts 12345] [--epochs N (part 4)] [--quick] [--seconds S] [--sizes 50,100,200,500]
       [--plot FILE.png (part 2's curves)]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import numpy as np  # noqa: E402
import simpy  # noqa: E402

import radio_models  # noqa: E402
from cosim.channel import Channel, ChannelConfig  # noqa: E402
from cosim.channel.csma import CsmaMedium  # noqa: E402
from cosim.channel.framing import Framing  # noqa: E402
from cosim.channel.sidelink import SidelinkMedium  # noqa: E402
from cosim.channel.topology import Topology  # noqa: E402
from radio_models import sidelink_phy as phy  # noqa: E402
from radio_models.winner_plus_b1 import WinnerPlusB1  # noqa: E402

LENGTH = 3000.0
RADIUS = LENGTH / (2 * math.pi)
SPEED = 70 / 3.6


def periodic(beta: float, seconds: float, emission: bool = False) -> dict[str, float]:
    env = simpy.Environment()
    params = {"technology": "lte_mode4", "bandwidth_mhz": 10, "subchannel_size_rb": 12, "num_subchannels": 4,
              "mcs": 9, "tx_power_dbm": 23.0, "noise_figure_db": 9.0 + 10 * math.log10(10 / 9),
              "rsrp_threshold_dbm": -90.5 - 10 * math.log10(120), "range_m": 1500.0, "in_band_emission": emission}
    med = SidelinkMedium(env, WinnerPlusB1(), np.random.default_rng(0), params,
                         curve=phy.R1_160284_CURVES["r1_160284_qpsk_r0.7"])
    med.broadcast_range_m = 320.0
    n = int(round(LENGTH * beta))
    nodes, pos = np.arange(n), np.stack([np.arange(n) / beta, np.zeros(n)], axis=1)
    med.update(nodes, pos)
    phases = np.random.default_rng(1).random(n) * 0.1

    def geometry():
        while True:
            yield env.timeout(0.1)
            med.update(nodes, pos)

    def cams(node):
        yield env.timeout(phases[node])
        while True:
            med.send(node, -1, 8 * 190, kind="cam")
            yield env.timeout(0.1)

    env.process(geometry())
    for node in range(n):
        env.process(cams(node))
    env.run(1.0)
    tbs0, c0 = med.tbs_sent, time.process_time()
    env.run(1.0 + seconds)
    cpu = time.process_time() - c0
    return {"vehicles": n, "tbs": med.tbs_sent - tbs0, "cpu_s": cpu, "tb_per_cpu_s": (med.tbs_sent - tbs0) / cpu}


def aperiodic(seconds: float, emission: bool = False, re_evaluation: bool = True) -> dict[str, float]:
    env = simpy.Environment()
    med = SidelinkMedium(env, radio_models.create("free_space", {}), np.random.default_rng(0),
                         {"in_band_emission": emission, "re_evaluation": re_evaluation})
    n = 9
    med.update(np.arange(n), np.stack([np.arange(n) * 10.0, np.zeros(n)], axis=1))

    def source(i):
        while True:
            f = med.send(i, (i + 1) % n, 8 * 4480)
            yield f.done

    for i in range(n):
        env.process(source(i))
    c0 = time.process_time()
    env.run(seconds)
    cpu = time.process_time() - c0
    m = med.metrics()
    return {"vehicles": n, "tbs": med.tbs_sent, "cpu_s": cpu, "tb_per_cpu_s": med.tbs_sent / cpu,
            "packets": m["mac_frames_sent"], "lost": m["mac_frames_lost"], "reevaluations": m["sl_reevaluations"],
            "moved": m["sl_reevaluation_reselections"]}


def reevaluation_effect(re_evaluation: bool, window_ms: float, seed: int, seconds: float) -> dict[str, float]:
    """Part 5: 60 NR vehicles 20 m apart on a line (free space, 2 sub-channels of 25 RBs, blind
    retransmissions), each sending a 190-byte CAM at 10 Hz by SPS and, with probability 1/2
    after each, a 4000-byte broadcast by dynamic selection within ``window_ms``."""
    env = simpy.Environment()
    med = SidelinkMedium(env, radio_models.create("free_space", {}), np.random.default_rng(seed),
                         {"re_evaluation": re_evaluation, "blind_retransmissions": 1, "dynamic_window_ms": window_ms,
                          "num_subchannels": 2, "subchannel_size_rb": 25})
    n = 60
    med.update(np.arange(n), np.stack([np.arange(n) * 20.0, np.zeros(n)], axis=1))
    draws = np.random.default_rng(seed + 1)

    def source(node):
        yield env.timeout(draws.random() * 0.1)
        while True:
            med.send(node, -1, 8 * 190, kind="cam")
            if draws.random() < 0.5:
                med.send(node, -1, 8 * 4000)
            yield env.timeout(0.1)

    for node in range(n):
        env.process(source(node))
    env.run(1.0)
    med.reset_stats()
    env.run(1.0 + seconds)
    m = med.metrics()
    return {"pdr": m["sl_broadcast_pdr"], "moved": m["sl_reevaluation_reselections"],
            "checks": m["sl_reevaluations"]}


def ring_positions(n: int, t: float) -> np.ndarray:
    """n vehicles spread over the 6 lanes of the ring, moving at 19.4 m/s (ccw and cw)."""
    k = np.arange(n)
    direction = np.where(k % 2 == 0, 1.0, -1.0)
    lane = (k // 2) % 3
    r = RADIUS + np.where(direction > 0, -(lane + 0.5) * 4.0, (lane + 0.5) * 4.0)
    s0 = (k // 2) * (2 * LENGTH / n)
    ang = direction * (s0 + SPEED * t) / RADIUS
    return np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)


def scaling(medium: str, n: int, seconds: float) -> float:
    """CPU seconds of the medium per 60 s of highway epoch with n vehicles (see the docstring)."""
    env = simpy.Environment()
    model = radio_models.create("tr37885_highway", {"max_range_m": 400.0})
    nodes = np.arange(n)
    heights = np.full(n, 1.5)
    if medium == "independent":
        ch = Channel(env, ChannelConfig(radio={"model": "tr37885_highway", "params": {"max_range_m": 400.0}}),
                     np.random.default_rng(0))

        def step():
            while True:
                ch.update(nodes, ring_positions(n, env.now))
                yield env.timeout(0.1)
        env.process(step())
    else:
        if medium == "csma":
            med = CsmaMedium(env, model, Framing(), np.random.default_rng(0))
            med.broadcast_range_m = 400.0
            send = lambda i: med.send(i, -1, 8 * 300, 6e6, ac="AC_VO", kind="cam")  # noqa: E731
            update = lambda: med.update(nodes, ring_positions(n, env.now), heights, Topology.empty())  # noqa: E731
        else:
            tech = "lte_mode4" if medium == "sidelink-lte" else "nr_mode2"
            med = SidelinkMedium(env, model, np.random.default_rng(0),
                                 {"technology": tech, "bandwidth_mhz": 10 if tech == "lte_mode4" else 20})
            med.broadcast_range_m = 400.0
            send = lambda i: med.send(i, -1, 8 * 300, kind="cam")  # noqa: E731
            update = lambda: med.update(nodes, ring_positions(n, env.now), heights)  # noqa: E731
        phases = np.random.default_rng(1).random(n) * 0.1

        def step():
            while True:
                update()
                yield env.timeout(0.1)

        def cams(i):
            yield env.timeout(phases[i])
            while True:
                send(i)
                yield env.timeout(0.1)
        env.process(step())
        for i in range(n):
            env.process(cams(i))
    env.run(0.5)
    c0 = time.process_time()
    env.run(0.5 + seconds)
    return (time.process_time() - c0) * 60.0 / seconds


def epoch_wall_time(medium: str, n: int, horizon: int, workdir: str) -> float:
    """Wall seconds of one highway epoch with ``n`` vehicles (part 3)."""
    import csv
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    routes = Path(workdir) / f"routes_{n}"
    if not (routes / "highway.rou.xml").is_file():
        subprocess.run([sys.executable, str(root / "scenarios/networks/highway/generate_highway.py"), "--vehicles",
                        str(n), "--out", str(routes)], check=True, capture_output=True)
    out = Path(workdir) / f"run_{medium}_{n}"
    sets = ["learner=idm", "train.epochs=1", f"env.horizon={horizon}", "train.eval_every=1000",
            f"network.routes=[{routes / 'highway.rou.xml'}]", f"channel.medium={medium}"]
    if medium != "independent":
        sets += ["channel.cam.enabled=true", "channel.cam.penetration=1.0"]
    cmd = [sys.executable, "-m", "cosim", "run", str(root / "scenarios/highway.yaml"), "--out", str(out),
           "--restart", "--no-progress", "--threads", "1"]
    for item in sets:
        cmd += ["--set", item]
    subprocess.run(cmd, check=True, capture_output=True)
    with open(out / "timing.csv") as fh:
        return float(next(csv.DictReader(fh))["wall_time_s"])


def figure8_share(epochs: int) -> None:
    """Part 4 (see the module docstring)."""
    import tempfile
    from pathlib import Path

    import torch

    import cosim.sim.engine as engine
    from cosim.config import load_config
    from cosim.run.experiment import run_experiment
    from cosim.run.profiling import Clock

    torch.set_num_threads(1)
    root = Path(__file__).resolve().parents[1]
    clock = Clock()
    saved = {}
    for cls, names in ((Channel, ("update", "pull", "close", "metrics", "reset")),
                       (SidelinkMedium, ("_on_wake", "_process_arrivals", "_reevaluate", "update", "send", "abort",
                                         "metrics", "reset_stats"))):
        for name in names:
            saved[(cls, name)] = getattr(cls, name)
            setattr(cls, name, clock.function(getattr(cls, name)))
    saved[(Channel, "_transfer")] = Channel._transfer
    Channel._transfer = clock.generator(Channel._transfer)
    run_epoch = engine.Engine.run_epoch
    rows = []

    def timed_epoch(self, *args, **kwargs):
        c0, w0, cc0, cw0 = time.process_time(), time.perf_counter(), clock.cpu, clock.wall
        row = run_epoch(self, *args, **kwargs)
        rows.append((time.process_time() - c0, time.perf_counter() - w0, clock.cpu - cc0, clock.wall - cw0, row))
        return row

    engine.Engine.run_epoch = timed_epoch
    try:
        config = load_config(str(root / "scenarios" / "figure8.yaml"),
                             [f"train.epochs={epochs}", "channel.medium=sidelink", "train.eval_every=1000"])
        with tempfile.TemporaryDirectory() as tmp:
            run_experiment(config, Path(tmp) / "run", progress=False)
    finally:
        engine.Engine.run_epoch = run_epoch
        for (cls, name), f in saved.items():
            setattr(cls, name, f)
    print(f"4. the channel's share of a Figure 8 epoch over the sidelink ({config.env.horizon} steps, CommMix defaults)")
    for k, (cpu, wall, ch_cpu, ch_wall, row) in enumerate(rows):
        print(f"   epoch {k + 1}: {cpu:6.2f} s CPU ({wall:6.2f} s wall), channel {ch_cpu:5.2f} s CPU = "
              f"{100 * ch_cpu / cpu:4.1f} % ({100 * ch_wall / wall:4.1f} % of wall); {row.get('comm_rounds', 0)} rounds, "
              f"{row.get('channel_packets', 0)} frames, {row.get('sl_transport_blocks_sent', 0)} TBs, "
              f"segment latency {row.get('segment_latency_mean_s', float('nan')):.3f} s")
    keep = rows[1:] if len(rows) > 1 else rows
    cpu, ch_cpu = sum(r[0] for r in keep), sum(r[2] for r in keep)
    wall, ch_wall = sum(r[1] for r in keep), sum(r[3] for r in keep)
    print(f"   sidelink: channel {100 * ch_wall / wall:.1f} % of epoch wall time ({100 * ch_cpu / cpu:.1f} % of CPU), "
          f"{ch_cpu / len(keep):.2f} s of {cpu / len(keep):.2f} s CPU per epoch")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="12345")
    ap.add_argument("--quick", action="store_true", help="shorter runs (2 s of simulated time)")
    ap.add_argument("--seconds", type=float, default=None, help="simulated seconds per measurement")
    ap.add_argument("--sizes", default="50,100,200,500")
    ap.add_argument("--plot", default=None, help="write part 2's curves to this PNG")
    ap.add_argument("--horizon", type=int, default=600, help="steps of part 3's epoch")
    ap.add_argument("--epochs", type=int, default=3, help="Figure 8 epochs of part 4")
    a = ap.parse_args()
    seconds = a.seconds or (2.0 if a.quick else 5.0)
    if "1" in a.parts:
        print(f"1. transport blocks per CPU second ({seconds:g} s simulated)")
        for emission in (False, True):
            if emission:
                print("   with in-band emission (in_band_emission: true):")
            for beta in (0.1, 0.2, 0.3):
                r = periodic(beta, seconds, emission)
                print(f"   periodic  beta {beta:.1f} ({r['vehicles']} vehicles): {r['tbs']} TBs in {r['cpu_s']:.1f} s CPU: "
                      f"{r['tb_per_cpu_s']:,.0f} TB/s")
            for re_evaluation in (True, False) if not emission else (True,):
                r = aperiodic(seconds, emission, re_evaluation)
                what = (f"{r['reevaluations']} re-evaluations moved {r['moved']} resources" if re_evaluation
                        else "re_evaluation: false")
                print(f"   aperiodic 9 vehicles, 4480-byte unicast: {r['tbs']} TBs in {r['cpu_s']:.1f} s CPU: "
                      f"{r['tb_per_cpu_s']:,.0f} TB/s ({r['packets']} packets, {r['lost']} lost; {what})")
    if "2" in a.parts:
        sizes = [int(s) for s in a.sizes.split(",")]
        media = ["independent", "csma", "sidelink-lte", "sidelink-nr"]
        print(f"2. CPU seconds of the medium per 60 s highway epoch, CAMs 10 Hz from every vehicle ({seconds:g} s simulated)")
        print("   vehicles " + "".join(f"{m:>14}" for m in media))
        table = {m: [] for m in media}
        for n in sizes:
            for m in media:
                table[m].append(scaling(m, n, seconds))
            print(f"   {n:8d} " + "".join(f"{table[m][-1]:14.1f}" for m in media), flush=True)
        if a.plot:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(6, 4))
            for m in media:
                ax.plot(sizes, table[m], marker="o", label=m)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("vehicles on the 3 km highway (all sending 10 Hz CAMs)")
            ax.set_ylabel("CPU s of the medium per 60 s epoch")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
            fig.tight_layout()
            fig.savefig(a.plot, dpi=110)
            print(f"   wrote {a.plot}")
    if "3" in a.parts:
        import tempfile

        sizes = [int(s) for s in a.sizes.split(",")]
        media = ["independent", "csma", "sidelink"]
        print(f"3. wall seconds of a highway epoch ({a.horizon} steps, learner idm; csma and sidelink with CAMs "
              "from every vehicle)")
        print("   vehicles " + "".join(f"{m:>14}" for m in media))
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                print(f"   {n:8d} " + "".join(f"{epoch_wall_time(m, n, a.horizon, tmp):14.1f}" for m in media),
                      flush=True)
    if "4" in a.parts:
        figure8_share(a.epochs)
    if "5" in a.parts:
        seeds = range(2 if a.quick else 3)
        print(f"5. NR re-evaluation: broadcast PDR of 60 vehicles with blind retransmissions, seeds {list(seeds)} "
              f"({seconds:g} s simulated each)")
        for window in (20.0, 50.0):
            runs = {on: [reevaluation_effect(on, window, s, seconds) for s in seeds] for on in (False, True)}
            off_pdr = [r["pdr"] for r in runs[False]]
            on_pdr = [r["pdr"] for r in runs[True]]
            print(f"   dynamic_window_ms {window:g}: PDR {np.mean(off_pdr):.4f} without, {np.mean(on_pdr):.4f} with "
                  f"(per seed {', '.join(f'{x:.4f}' for x in off_pdr)} / {', '.join(f'{x:.4f}' for x in on_pdr)}); "
                  f"{sum(r['checks'] for r in runs[True])} re-evaluations moved "
                  f"{sum(r['moved'] for r in runs[True])} resources", flush=True)


if __name__ == "__main__":
    main()
