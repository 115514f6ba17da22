"""Where a Figure 8 epoch's wall time goes, and how fast `cosim run` learns next to a naive loop.

1. ``budget``: a default Figure 8 run (scenarios/figure8.yaml: RSM-MASAC over the csma medium,
   one learning phase every 10 steps) with every part of an epoch instrumented in the same
   process (``cosim.run.profiling.Budget``: nested calls count once, for the outermost part):

   - SUMO stepping: ``SumoTraffic.step``, ``reset``, ``apply_accelerations``;
   - observation: the observation vector and the reward of every step;
   - acting: the controller's batched forward pass;
   - replay writes: ``SACFleet.add``;
   - learning updates: ``SACFleet.update``;
   - channel: the V2V graph, transfers and the medium (every method of ``ChannelHook``,
     ``Channel`` and the built-in media, and the transfer processes);
   - CommMix: its hooks, rounds and mixing;
   - other: the rest of the epoch (SimPy's event loop, the engine's Python between them).

   Each as seconds and share of the epoch, per epoch, then the mean over the epochs after the
   first (which only fills the replay buffers). The learning part is also set against its FLOP
   floor: the matmul FLOPs of the updates the epoch did (``learners.perf.update_flops``) at the
   speed of ``torch.bmm`` of the fleet's dominant product, measured in the same process.

2. ``naive``: learning steps per second at the paper's network size, learning every step
   (``train.update_every=1``), ISAC, 500 learning steps after 260 warm-up steps:
   ``cosim run`` as shipped (wall time of a 760-step epoch minus a 260-step epoch, from
   timing.csv) against a naive script: one ``learners.SAC`` per CAV in a Python loop, SUMO
   through libsumo (the same adapter, observation and reward), torch's default threads; and
   ``cosim run --set sac.matmul_dtype=bfloat16`` (the updates' products in bfloat16, an opt-in
   that changes the numbers), ``--set sac.compile=true`` (the update passes through
   ``torch.compile``; its compile time, spent at the first update, is left out by timing the
   second of two epochs, which learns at every step since the warm-up counts once: 800 against
   300 steps) and both.
   All run in subprocesses of this script, one after the other (libsumo allows one SUMO per
   process), so run it on an otherwise idle machine.

Usage::

    python benchmarks/epoch.py                 # both parts, about 6 minutes on 2 cores
    python benchmarks/epoch.py --parts 1       # the budget only
    python benchmarks/epoch.py --epochs 3 --threads 1
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/learners.py is named like the package: keep this folder off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

ROOT = Path(__file__).resolve().parents[1]
FIGURE8 = ROOT / "scenarios" / "figure8.yaml"
PARTS = ("SUMO stepping", "observation", "acting", "replay writes", "learning updates", "channel", "CommMix")
NAIVE_SETTINGS = ["learner=sac", "comm.method=isac", "train.update_every=1", "train.warmup_steps=260",
                  "train.eval_every=0"]


def _instrument_class(budget, part: str, cls) -> None:
    """Every function defined in ``cls`` (generator functions as SimPy processes)."""
    for name, value in list(vars(cls).items()):
        if name.startswith("__") or not inspect.isfunction(value):
            continue
        budget.add(part, cls, name, generator=inspect.isgeneratorfunction(value))


def _bmm_gflops(n: int, batch: int, width: int, seconds: float = 0.5) -> float:
    import torch

    a, b = torch.randn(2 * n, batch, width), torch.randn(2 * n, width, width)
    torch.bmm(a, b)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.bmm(a, b)
        reps += 1
    return 2 * 2 * n * batch * width * width * reps / (time.perf_counter() - start) / 1e9


def budget(epochs: int, overrides: list[str]) -> None:
    import torch

    import cosim.sim.engine as engine
    from cosim.channel import csma, independent
    from cosim.channel.channel import Channel
    from cosim.channel.sidelink.medium import SidelinkMedium
    from cosim.config import load_config
    from cosim.run.experiment import run_experiment
    from cosim.run.profiling import Budget
    from cosim.sim.commmix import CommMix
    from cosim.sim.sac_controller import SACController
    from cosim.sim.v2v import ChannelHook
    from cosim.traffic.sumo import SumoTraffic
    from learners import SACFleet
    from learners.perf import update_flops

    b = Budget()
    for name in ("step", "reset", "apply_accelerations"):
        b.add("SUMO stepping", SumoTraffic, name)
    for name in ("observe", "reward"):
        b.add("observation", engine, name)
    b.add("acting", SACController, "act")
    b.add("replay writes", SACFleet, "add")
    b.add("learning updates", SACFleet, "update")
    for cls in (ChannelHook, Channel, csma.CsmaMedium, independent.IndependentMedium, SidelinkMedium):
        _instrument_class(b, "channel", cls)
    _instrument_class(b, "CommMix", CommMix)

    rows: list[tuple[float, dict[str, tuple[float, float]], dict]] = []
    run_epoch = engine.Engine.run_epoch

    def timed_epoch(self, *args, **kwargs):
        before, start = b.snapshot(), time.perf_counter()
        row = run_epoch(self, *args, **kwargs)
        after = b.snapshot()
        parts = {p: (after.get(p, (0, 0))[1] - before.get(p, (0, 0))[1]) for p in PARTS}
        rows.append((time.perf_counter() - start, parts, row))
        return row

    engine.Engine.run_epoch = timed_epoch
    config = load_config(FIGURE8, [f"train.epochs={epochs}", "train.eval_every=0", *overrides])
    bmm_before = _bmm_gflops(config.env.n_agents, config.sac.batch_size, config.sac.q_hidden[-1])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run_experiment(config, Path(tmp) / "run", progress=False)
    finally:
        engine.Engine.run_epoch = run_epoch
        b.restore()
    bmm = (bmm_before + _bmm_gflops(config.env.n_agents, config.sac.batch_size, config.sac.q_hidden[-1])) / 2
    critic_flops, policy_flops = update_flops(config.sac, 6, 1)

    print(f"1. a Figure 8 epoch at the defaults ({config.comm.method}, {config.channel.medium} medium, "
          f"learning every {config.train.update_every} steps, sac.hidden {list(config.sac.hidden)}), "
          f"torch threads {torch.get_num_threads()}; bmm of the critics' hidden layer: {bmm:.1f} GFLOP/s")
    head = f"   {'epoch':>5} {'wall s':>7} | " + " | ".join(f"{p[:12]:>12}" for p in (*PARTS, "other"))
    print(head)
    summary = {p: 0.0 for p in (*PARTS, "other")}
    wall_sum = floor_sum = 0.0
    first_kept = 1 if len(rows) > 1 else 0
    n = len(rows) - first_kept
    for k, (wall, parts, row) in enumerate(rows):
        other = wall - sum(parts.values())
        cells = [f"{parts[p]:6.2f} {100 * parts[p] / wall:4.1f}%" for p in PARTS]
        cells.append(f"{other:6.2f} {100 * other / wall:4.1f}%")
        print(f"   {k:>5} {wall:7.2f} | " + " | ".join(f"{c:>12}" for c in cells))
        if k >= first_kept:
            wall_sum += wall
            for p in PARTS:
                summary[p] += parts[p]
            summary["other"] += other
            flops = int(row["critic_updates"]) * critic_flops + int(row["policy_updates"]) * policy_flops
            floor_sum += flops / (bmm * 1e9)
    print(f"   mean of epochs {first_kept}-{len(rows) - 1}: {wall_sum / n:.2f} s per epoch")
    for p in (*PARTS, "other"):
        print(f"     {p:<17} {summary[p] / n:7.2f} s  {100 * summary[p] / wall_sum:5.1f} %")
    learning = summary["learning updates"]
    if learning > 0:
        print(f"   learning updates against their FLOP floor (their matmul FLOPs at the bmm speed): "
              f"{floor_sum / n:.2f} s of {learning / n:.2f} s = {100 * floor_sum / learning:.0f} %")


# ------------------------------------------------------------------------------ part 2
def naive_loop(steps: int, warmup: int) -> float:
    """One ``learners.SAC`` per CAV in a Python loop, learning every step after ``warmup``;
    returns learning steps per second."""
    import numpy as np

    from cosim.config import load_config
    from cosim.traffic.observation import OBS_DIM, observe, reward
    from cosim.traffic.sumo import SumoTraffic
    from learners import SAC, SACConfig

    cfg = load_config(FIGURE8, ["learner=idm"])
    n = cfg.env.n_agents
    low, high = cfg.env.accel_range
    agents = [SAC(OBS_DIM, low, high, SACConfig(), seed=i) for i in range(n)]
    traffic = SumoTraffic(cfg.sumo, cfg.network, cfg.vehicles, n)
    with traffic:
        state = traffic.reset(0, cfg.env.warmup_steps)
        length, vmax = traffic.geometry.length, cfg.env.max_speed
        obs = observe(state.slots, length, vmax)
        start = None
        for t in range(steps):
            if t == warmup:
                start = time.perf_counter()
            acted = [agent.act(obs[i]) for i, agent in enumerate(agents)]
            traffic.apply_accelerations(np.array([float(a[0]) for a, _ in acted]))
            state = traffic.step()
            r = reward(state.speeds, cfg.env.desired_speed, state.crashed, cfg.env.reward)
            nxt = observe(state.slots, length, vmax)
            for i, agent in enumerate(agents):
                agent.add(obs[i], acted[i][0], r, nxt[i], 0.0, acted[i][1])
                if t >= warmup:
                    agent.update()
            obs = nxt
    return (steps - warmup) / (time.perf_counter() - start)


def _cosim_epoch_wall(horizon: int, threads: int | None, extra: tuple[str, ...] = (), epochs: int = 1) -> float:
    """Wall time of the last training epoch of a ``cosim run`` with ``NAIVE_SETTINGS``."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "cosim", "run", str(FIGURE8), "--out", str(Path(tmp) / "run"), "--no-progress"]
        for s in (*NAIVE_SETTINGS, *extra, f"env.horizon={horizon}", f"train.epochs={epochs}"):
            cmd += ["--set", s]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        with open(Path(tmp) / "run" / "timing.csv", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["phase"] == "train"]
        return float(rows[-1]["wall_time_s"])


VARIANTS = (
    ("as shipped", ()),
    ("--set sac.matmul_dtype=bfloat16", ("sac.matmul_dtype=bfloat16",)),
    ("--set sac.compile=true", ("sac.compile=true",)),
    ("--set sac.compile=true --set sac.matmul_dtype=bfloat16", ("sac.compile=true", "sac.matmul_dtype=bfloat16")),
)


def naive(threads: int | None) -> None:
    print("2. learning steps per second, Figure 8, ISAC, learning every step, 500 learning steps after "
          "260 warm-up steps, the paper's networks")
    label = "--threads " + str(threads) if threads is not None else "no --threads (every core)"
    ours = {}
    for name, extra in VARIANTS:
        if "sac.compile=true" in extra:
            # the first update compiles (seconds that vary run to run): time the second epoch of
            # two, which learns at every step (the warm-up counts once), 800 against 300 steps
            horizons, epochs, which = (300, 800), 2, "second"
        else:
            horizons, epochs, which = (260, 760), 1, "first"
        short, long = (_cosim_epoch_wall(h, threads, extra, epochs) for h in horizons)
        ours[name] = 500 / (long - short)
        print(f"   cosim run {name} ({label}): {which} epoch of {horizons[1]} steps {long:.1f} s, of {horizons[0]} "
              f"steps {short:.1f} s -> {ours[name]:.1f} learning steps/s", flush=True)
    result = subprocess.run([sys.executable, __file__, "--naive-child"], check=True, capture_output=True, text=True)
    theirs = json.loads(result.stdout.strip().splitlines()[-1])["steps_per_s"]
    print(f"   naive loop (one learners.SAC per CAV, float32, torch's default threads): {theirs:.1f} learning steps/s")
    print("   cosim run / naive loop: " + ", ".join(f"{ours[name] / theirs:.2f}x {name}" for name, _ in VARIANTS))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="12", help="which parts to run (default 12)")
    parser.add_argument("--epochs", type=int, default=3, help="part 1: Figure 8 epochs (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as cosim run, every core)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="part 1: config overrides, e.g. --set comm.method=isac")
    parser.add_argument("--naive-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_child:
        print(json.dumps({"steps_per_s": naive_loop(760, 260)}))
        return
    import torch

    from cosim.run.threads import choose_threads

    torch.set_num_threads(choose_threads(args.threads))
    if "1" in args.parts:
        budget(args.epochs, args.overrides)
    if "2" in args.parts:
        naive(args.threads)


if __name__ == "__main__":
    main()
