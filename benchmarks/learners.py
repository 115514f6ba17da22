"""Throughput of the batched SAC fleet versus a loop over independent reference learners.

For N in {9, 13, 100} (paper Figure 8, Merge, and a large fleet) it prints:

- updates/s: one critic update per agent per call, with the policy/alpha/target update every
  ``policy_delay`` calls amortised (the timed window is a multiple of ``policy_delay``);
  batch 256 (paper Table IV);
- acting calls/s: one stochastic action for every agent;
- the fleet's achieved GFLOP/s, from a count of the matmul FLOPs of an update (forward and
  backward; elementwise work not counted), next to torch.bmm GFLOP/s of the same shape as the
  fleet's dominant product (the twin critics' hidden layer) measured around it in the same
  run, and their ratio;

at 1 and 2 torch threads, for the paper's networks (two hidden layers of 256) and for 3x256.

Both sides run in the same process, one after the other, so ratios are comparable even on a
busy machine; absolute figures are noisy. Usage:

    python benchmarks/learners.py            # full (a few minutes on 2 cores)
    python benchmarks/learners.py --quick    # a few seconds per N
    python benchmarks/learners.py --matmul-dtype bfloat16   # the fleet's products in bfloat16
                                             # (SACConfig.matmul_dtype; the loop stays float32)
    python benchmarks/learners.py --compile  # the fleet's update passes through torch.compile; an
                                             # eager fleet is timed in the same rounds ("vs eager")
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

# This file is named like the package it measures: drop its own folder from the import path
# so that ``import learners`` finds the package, not this script.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import torch  # noqa: E402

from learners import SAC, SACConfig, SACFleet, perf, tune_malloc  # noqa: E402

OBS_DIM, ACT_DIM = 6, 1


def update_flops(cfg: SACConfig, batch: int) -> float:
    """Matmul FLOPs of one agent's update, policy part amortised over policy_delay
    (``learners.perf.update_flops``: forward and backward, elementwise work not counted)."""
    critic, policy = perf.update_flops(cfg, OBS_DIM, ACT_DIM)
    return critic + policy / cfg.policy_delay


def fill(fleet: SACFleet, refs: list[SAC] | None, steps: int, gen: torch.Generator) -> None:
    n = fleet.n_agents
    for _ in range(steps):
        obs = torch.randn(n, OBS_DIM, generator=gen)
        act = torch.rand(n, ACT_DIM, generator=gen) * 6 - 3
        rew = torch.rand(n, generator=gen)
        nxt = torch.randn(n, OBS_DIM, generator=gen)
        term = torch.zeros(n)
        lp = torch.zeros(n)
        fleet.add(obs, act, rew, nxt, term, lp)
        if refs is not None:
            for i, r in enumerate(refs):
                r.add(obs[i], act[i], rew[i], nxt[i], term[i], lp[i])


def timed(fn, repeat: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return time.perf_counter() - t0


def mm_gflops(m: int, k: int, n: int, seconds: float = 1.0) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    reps, t = 0, 0.0
    while t < seconds:
        t += timed(lambda: torch.mm(a, b), 5)
        reps += 5
    return 2 * m * k * n * reps / t / 1e9


def bmm_gflops(batch: int, m: int, k: int, n: int, seconds: float = 1.0, dtype=torch.float32) -> float:
    a, b = torch.randn(batch, m, k, dtype=dtype), torch.randn(batch, k, n, dtype=dtype)
    torch.bmm(a, b)
    reps, t = 0, 0.0
    while t < seconds:
        t += timed(lambda: torch.bmm(a, b), 2)
        reps += 2
    return 2 * batch * m * k * n * reps / t / 1e9


def bench_adam(n: int, cfg: SACConfig, reps: int) -> dict:
    """One Adam step on the critic parameters of n agents (stacked [n, 2, ...] tensors)."""
    from learners.adam import BatchedAdam

    fleet = SACFleet(n, OBS_DIM, -3.0, 3.0, cfg, seeds=1)
    params = [p.clone() for p in fleet.critic]
    grads = [torch.randn_like(p) for p in params]
    batched = BatchedAdam(params, 1e-4)
    half = torch.arange(0, n, 2)
    grads_half = [g[half] for g in grads]
    stacked = [torch.nn.Parameter(p.clone()) for p in params]
    for p, g in zip(stacked, grads):
        p.grad = g
    torch_stacked = torch.optim.Adam(stacked, lr=1e-4, fused=True)
    per_agent = []
    for i in range(n):
        ps = [torch.nn.Parameter(p[i].clone()) for p in params]
        for p, g in zip(ps, grads):
            p.grad = g[i].clone()
        per_agent.append(torch.optim.Adam(ps, lr=1e-4, fused=True))
    out = {}
    for name, fn in (
        ("batched_all", lambda: batched.step(grads)),
        ("batched_half", lambda: batched.step(grads_half, half)),
        ("torch_stacked", torch_stacked.step),
        ("torch_per_agent", lambda: [o.step() for o in per_agent]),
    ):
        fn()
        out[name] = timed(fn, reps) / reps * 1e3
    return out


def bench(n: int, cfg: SACConfig, repeats: int, act_reps: int, chunk: int | None, bmm_seconds: float) -> dict:
    """Fleet, loop and same-shape bmm, measured in ``repeats`` interleaved rounds (a bmm window
    before and after every fleet window), so a change of machine load hits all three; each
    figure is the median over the rounds, and "% of bmm" the median of the per-round ratios."""
    gen = torch.Generator().manual_seed(0)
    fleet = SACFleet(n, OBS_DIM, -3.0, 3.0, cfg, seeds=1, chunk_size=chunk)
    # a compiled fleet is also timed against the same fleet run eagerly, in the same rounds
    eager = SACFleet(n, OBS_DIM, -3.0, 3.0, dataclasses.replace(cfg, compile=False), seeds=1,
                     chunk_size=chunk) if cfg.compile else None
    # the loop is the float32 reference (learners.SAC has no bfloat16 option)
    ref_cfg = dataclasses.replace(cfg, matmul_dtype="float32", compile=False)
    refs = [SAC(OBS_DIM, -3.0, 3.0, ref_cfg, seed=s, fused_adam=True) for s in fleet.seeds]
    fill(fleet, refs, max(cfg.batch_size, 300), gen)
    if eager is not None:
        fill(eager, None, max(cfg.batch_size, 300), torch.Generator().manual_seed(0))
        eager.update()
    d = cfg.policy_delay
    # warm-up (one update: allocations, first-call costs), then time whole delay cycles so
    # that each window holds exactly one policy step per agent
    fleet.update()
    for r in refs:
        r.update()
    flops = update_flops(cfg, cfg.batch_size) * n
    t_fleet, t_loop, ratios, bmms, vs_eager = [], [], [], [], []
    for _ in range(repeats):
        before = same_shape_bmm_gflops(n, cfg, bmm_seconds / 2)
        t = timed(fleet.update, d) / d
        bmm = (before + same_shape_bmm_gflops(n, cfg, bmm_seconds / 2)) / 2
        t_fleet.append(t)
        bmms.append(bmm)
        ratios.append(flops / t / 1e9 / bmm)
        t_loop.append(timed(lambda: [r.update() for r in refs], d) / d)
        if eager is not None:
            vs_eager.append(timed(eager.update, d) / d / t)

    obs = torch.randn(n, OBS_DIM, generator=gen)
    fleet.act(obs)
    t_act_fleet = timed(lambda: fleet.act(obs), act_reps) / act_reps
    t_act_loop = timed(lambda: [r.act(obs[i]) for i, r in enumerate(refs)], act_reps) / act_reps
    t_fleet, t_loop = statistics.median(t_fleet), statistics.median(t_loop)
    return dict(
        n=n,
        fleet_ups=1 / t_fleet,
        loop_ups=1 / t_loop,
        fleet_act=1 / t_act_fleet,
        loop_act=1 / t_act_loop,
        fleet_gflops=flops / t_fleet / 1e9,
        bmm_gflops=statistics.median(bmms),
        share_of_bmm=statistics.median(ratios),
        vs_eager=statistics.median(vs_eager) if vs_eager else None,
    )


def same_shape_bmm_gflops(n: int, cfg: SACConfig, seconds: float) -> float:
    """torch.bmm of the fleet's dominant product, the twin critics' hidden layer:
    2N x [batch x width @ width x width], in the precision of the fleet's products."""
    h = cfg.q_hidden[-1]
    return bmm_gflops(2 * n, cfg.batch_size, h, h, seconds, getattr(torch, cfg.matmul_dtype))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (fewer repetitions)")
    ap.add_argument("--agents", type=int, nargs="+", default=[9, 13, 100], help="fleet sizes N")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, nargs="+", action="append",
                    help="hidden widths (repeatable; default: the paper's 256 256, then 256 256 256)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to measure")
    ap.add_argument("--chunk", type=int, default=None, help="SACFleet chunk_size (default: auto)")
    ap.add_argument("--no-adam", action="store_true", help="skip the Adam comparison")
    ap.add_argument("--no-tune-malloc", action="store_true", help="keep glibc's default malloc settings")
    ap.add_argument("--matmul-dtype", choices=("float32", "bfloat16"), default="float32",
                    help="precision of the fleet's products (SACConfig.matmul_dtype); the loop stays float32, "
                         "bmm is measured in this precision")
    ap.add_argument("--compile", action="store_true",
                    help="the fleet's update passes through torch.compile (SACConfig.compile; the first "
                         "update, not timed, compiles)")
    args = ap.parse_args(argv)
    tuned = False if args.no_tune_malloc else tune_malloc()
    hiddens = [tuple(h) for h in args.hidden] if args.hidden else [(256, 256), (256, 256, 256)]
    secs = 0.3 if args.quick else 0.4
    print(f"torch {torch.__version__}, batch {args.batch}, policy_delay 10, obs {OBS_DIM}, act {ACT_DIM}, "
          f"chunk {args.chunk or 'auto'}, tune_malloc {tuned}, fleet products in {args.matmul_dtype}, "
          f"compiled {args.compile}")
    header = (f"{'thr':>3} {'hidden':>15} {'N':>4} | {'fleet upd/s':>11} {'loop upd/s':>10} {'speedup':>7} | "
              f"{'fleet act/s':>11} {'speedup':>7} | {'fleet GF/s':>10} {'bmm GF/s':>9} {'% of bmm':>8}"
              + (f" | {'vs eager':>8}" if args.compile else ""))
    print(header)
    print("-" * len(header))
    for threads in args.threads:
        torch.set_num_threads(threads)
        for hidden in hiddens:
            cfg = SACConfig(batch_size=args.batch, hidden=hidden, buffer_size=1000, matmul_dtype=args.matmul_dtype,
                            compile=args.compile)
            for n in args.agents:
                if args.quick:
                    repeats, act_reps = 1, 20
                else:
                    repeats = 7 if n <= 20 else 2
                    act_reps = 200 if n <= 20 else 50
                r = bench(n, cfg, repeats, act_reps, args.chunk, secs)
                print(f"{threads:>3} {str(hidden):>15} {r['n']:>4} | {r['fleet_ups']:>11.2f} {r['loop_ups']:>10.2f} "
                      f"{r['fleet_ups'] / r['loop_ups']:>6.2f}x | {r['fleet_act']:>11.1f} "
                      f"{r['fleet_act'] / r['loop_act']:>6.2f}x | {r['fleet_gflops']:>10.1f} {r['bmm_gflops']:>9.1f} "
                      f"{100 * r['share_of_bmm']:>7.0f}%"
                      + (f" | {r['vs_eager']:>7.2f}x" if r['vs_eager'] is not None else ""), flush=True)
    if not args.no_adam:
        torch.set_num_threads(args.threads[0])
        cfg = SACConfig(batch_size=args.batch, hidden=hiddens[0], buffer_size=1000)
        print(f"\nAdam step on all critic parameters (ms, {args.threads[0]} thread(s), hidden {hiddens[0]}): "
              "BatchedAdam all agents | BatchedAdam every")
        print("other agent (masked, per-agent step counts) | torch.optim.Adam(fused=True) on the stacked")
        print("tensors (one shared step count: not maskable) | N x torch.optim.Adam(fused=True), one per agent")
        for n in args.agents:
            a = bench_adam(n, cfg, 5 if args.quick else 20)
            print(f"{n:>4} | {a['batched_all']:8.2f} {a['batched_half']:8.2f} | {a['torch_stacked']:8.2f} | "
                  f"{a['torch_per_agent']:8.2f}", flush=True)
    print("\nupd/s: fleet-wide updates per second (every agent does one critic update; the loop runs")
    print("N reference SACs with torch.optim.Adam(fused=True)). act/s: one action for every agent.")
    print("GF/s: counted matmul FLOPs / time; bmm: torch.bmm of the twin critics' hidden layer,")
    print("2N x [batch x width @ width x width], measured before and after each fleet window; % of")
    print("bmm: how close the whole update (elementwise work, Adam, replay gathers included) comes to")
    print("that floor. Fleet, loop and bmm alternate in rounds (7 for N <= 20); each figure is the")
    print("median over the rounds, % of bmm the median of the per-round ratios.")
    if args.compile:
        print("vs eager: the same fleet updated eagerly, timed in the same rounds: eager time / compiled")
        print("time, median of the per-round ratios.")


if __name__ == "__main__":
    main()
