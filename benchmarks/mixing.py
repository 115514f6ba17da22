"""Cost of CommMix: one regulated mix, the explicit-Fisher alternative, and CommMix's share of an epoch.

Prints:

1. the time of one regulated mix (M = 50 replay samples: the MERL advantage of eq. 19 with its
   min-Q and entropy terms and eq. 13's eps, then the Fisher quadratic form of eq. 20 by one jvp
   and the Theorem 2 bound) for the paper's 2x256 policy (d = 68,098), for one replica and for
   a wave of 9 replicas in one batched call, with each Fisher route (``comm.fisher``):
   ``batch_score`` (F ~ g g^T, the paper's experiments) and ``exact`` (the Gaussian Fisher);
2. in the same run, both quadratic forms through an explicit d x d matrix (the exact F from
   the per-state Jacobians; g g^T from g by one backward pass), then v^T F v, on the largest
   policies where F still fits in memory, next to the jvp routes on the same policy;
3. the share of a Figure 8 epoch spent in CommMix at the defaults: the time inside CommMix
   (its hooks, its round processes, the channel's transfer processes) over each epoch's wall
   time, measured in the same process; the first two epochs are left out of the summary (no
   policy update yet in the first; torch's one-time forward-mode AD set-up in the second).

Usage::

    python benchmarks/mixing.py            # about 4 minutes on 2 cores
    python benchmarks/mixing.py --quick    # parts 1-2 only, smaller explicit policy
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

# benchmarks/learners.py is named like the package: keep this folder off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import torch  # noqa: E402

from learners import SACConfig, SACFleet  # noqa: E402
from learners.mixing import (  # noqa: E402
    MixConfig,
    batch_score_quadratic_form,
    fisher_quadratic_form,
    fleet_regulated_inputs,
    merl_advantage,
    mixing_bound,
)
from learners.policy import policy_distribution, policy_log_prob_of_pre_tanh  # noqa: E402

from cosim.run.profiling import Clock  # noqa: E402

OBS_DIM = 6
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _best_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * min(times)


def _fleet(n: int, hidden: tuple[int, ...]) -> SACFleet:
    # different weights per agent, so that a referential policy differs from the current one
    fleet = SACFleet(n, OBS_DIM, -3.0, 3.0, SACConfig(hidden=hidden, shared_init=False), seeds=list(range(n)))
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(n, OBS_DIM, generator=g)
    for _ in range(300):
        nxt = torch.randn(n, OBS_DIM, generator=g)
        act, logp, u = fleet.act(obs)
        fleet.add(obs, act, torch.rand(n, generator=g), nxt, torch.zeros(n), logp, pre_tanh=u)
        obs = nxt
    return fleet


def regulated_mix(repeat: int) -> None:
    print("1. one regulated mix, M = 50, the paper's 2x256 policy")
    fleet = _fleet(9, (256, 256))
    gens = [torch.Generator().manual_seed(i) for i in range(9)]
    for fisher, b in ((f, b) for f in ("batch_score", "exact") for b in (1, 9)):
        cfg = MixConfig(rule="regulated", samples=50, fisher=fisher)
        agents = list(range(b))
        theta = fleet.get_policy_vectors(agents)
        ref = fleet.get_policy_vectors([(a + 1) % 9 for a in agents])

        def once():
            """What ``mix`` does when every replica has A+ > 0 (Algorithm 2, lines 5-10)."""
            r = fleet_regulated_inputs(fleet, agents, gens[:b], cfg)
            with torch.no_grad():
                adv, eps = merl_advantage(fleet.spec, theta, ref, r.obs, r.pre_tanh, r.behaviour_log_prob, r.min_q,
                                          r.alpha, r.noise, r.critic)
                if fisher == "exact":
                    q = fisher_quadratic_form(fleet.spec, theta, ref - theta, r.obs)
                else:
                    q = batch_score_quadratic_form(fleet.spec, theta, ref - theta, r.obs, r.noise[:, 0])
                zeta = torch.clamp(cfg.safety * mixing_bound(adv.abs(), eps, q, r.gamma), max=cfg.zeta_max)
                return theta + zeta.unsqueeze(1) * (ref - theta)

        ms = _best_ms(once, repeat)
        print(f"   fisher {fisher:11s} {b} replica(s) in one call: {ms:8.2f} ms  ({ms / b:.2f} ms per replica; "
              f"d = {fleet.policy_dim})")


def explicit_fisher_q(spec, theta, v, obs) -> torch.Tensor:
    """v^T F v with F = mean_s [J_mu^T diag(1/sigma^2) J_mu + 2 J_ls^T J_ls] built as d x d."""
    jac = torch.func.jacrev(lambda t: policy_distribution(t, obs, spec))(theta)  # ([M, A, d], [M, A, d])
    _, log_std = policy_distribution(theta, obs, spec)
    j_mu = jac[0].reshape(-1, theta.numel())
    j_ls = jac[1].reshape(-1, theta.numel())
    w = torch.exp(-2.0 * log_std).reshape(-1, 1)
    fisher = (j_mu * w).t() @ j_mu + 2.0 * j_ls.t() @ j_ls
    fisher /= obs.shape[0]
    return v @ fisher @ v


def explicit_batch_score_q(spec, theta, v, obs, noise) -> torch.Tensor:
    """v^T g g^T v with g = mean_t grad log pi(a_t|s_t) by one backward pass, g g^T built as d x d."""
    with torch.no_grad():
        mean, log_std = policy_distribution(theta, obs, spec)
        u = mean + log_std.exp() * noise
    t = theta.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(policy_log_prob_of_pre_tanh(t, obs, u, spec).mean(), t)
    return v @ torch.outer(g, g) @ v


def fisher_routes(hiddens: list[tuple[int, ...]], repeat: int) -> None:
    print("2. Fisher quadratic forms: explicit d x d matrix vs one jvp (M = 50)")
    for hidden in hiddens:
        fleet = _fleet(1, hidden)
        spec = fleet.spec
        theta = fleet.get_policy_vector(0)
        v = torch.randn(theta.numel()) * 1e-2
        obs = torch.randn(50, OBS_DIM)
        d = theta.numel()
        gib = d * d * 4 / 2**30
        t = time.perf_counter()
        q_explicit = explicit_fisher_q(spec, theta, v, obs)
        explicit_ms = 1e3 * (time.perf_counter() - t)
        jvp_ms = _best_ms(lambda: fisher_quadratic_form(spec, theta[None], v[None], obs[None]), repeat)
        q_jvp = fisher_quadratic_form(spec, theta[None], v[None], obs[None])[0]
        rel = abs(float(q_jvp - q_explicit)) / abs(float(q_explicit))
        print(f"   exact       hidden {hidden}: d = {d:7d}, F = {gib:5.2f} GiB; explicit {explicit_ms:9.1f} ms, "
              f"jvp {jvp_ms:7.2f} ms ({explicit_ms / jvp_ms:7.0f}x); relative difference {rel:.1e}")
        noise = torch.randn(50, 1)
        t = time.perf_counter()
        q_explicit = explicit_batch_score_q(spec, theta, v, obs, noise)
        explicit_ms = 1e3 * (time.perf_counter() - t)
        jvp_ms = _best_ms(lambda: batch_score_quadratic_form(spec, theta[None], v[None], obs[None], noise[None]),
                          repeat)
        q_jvp = batch_score_quadratic_form(spec, theta[None], v[None], obs[None], noise[None])[0]
        rel = abs(float(q_jvp - q_explicit)) / abs(float(q_explicit))
        print(f"   batch_score hidden {hidden}: d = {d:7d}, g g^T = {gib:5.2f} GiB; explicit {explicit_ms:9.1f} ms, "
              f"jvp {jvp_ms:7.2f} ms ({explicit_ms / jvp_ms:7.0f}x); relative difference {rel:.1e}")
    d = _fleet(1, (256, 256)).policy_dim
    print(f"   the paper's 2x256 policy: d = {d}, an explicit F would need {d * d * 4 / 1e9:.1f} GB (fp32)")


def epoch_share(epochs: int, skip: int) -> None:
    """Time inside CommMix (its hook calls, its round processes, the channel's transfer
    processes, which only CommMix starts) over the wall time of each epoch, in one process: a
    ratio measured in the same run, so a busy machine slows both sides alike."""
    from cosim.channel.channel import Channel
    from cosim.sim.commmix import CommMix
    from cosim.config import load_config
    from cosim.run.experiment import run_experiment

    clock = Clock()
    for name in ("begin_epoch", "after_traffic_step", "after_fleet_step", "before_act", "end_epoch", "_arrived"):
        setattr(CommMix, name, clock.function(getattr(CommMix, name)))
    CommMix._round = clock.generator(CommMix._round)
    Channel.pull = clock.function(Channel.pull)
    Channel._transfer = clock.generator(Channel._transfer)
    epoch_clock: list[float] = []
    import cosim.sim.engine as engine

    run_epoch = engine.Engine.run_epoch

    def timed_epoch(self, *args, **kwargs):
        before, t = clock.wall, time.perf_counter()
        row = run_epoch(self, *args, **kwargs)
        epoch_clock.append((time.perf_counter() - t, clock.wall - before, row["comm_rounds"]))
        return row

    engine.Engine.run_epoch = timed_epoch
    print(f"3. CommMix's share of a Figure 8 epoch at the defaults ({epochs} epochs; the first has no policy "
          "update yet, the second pays torch's one-time forward-mode AD set-up, ~2 s)")
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(os.path.join(ROOT, "scenarios", "figure8.yaml"), [f"train.epochs={epochs}"])
        run_experiment(config, os.path.join(tmp, "run"), progress=False)
    for k, (wall, comm, rounds) in enumerate(epoch_clock):
        print(f"   epoch {k + 1}: {wall:6.2f} s, CommMix {comm:5.2f} s = {100 * comm / wall:4.1f} % ({rounds} rounds)")
    wall = sum(w for w, _, _ in epoch_clock[skip:])
    comm = sum(c for _, c, _ in epoch_clock[skip:])
    print(f"   epochs {skip + 1}-{epochs}: CommMix takes {100 * comm / wall:.1f} % of the wall time, i.e. it adds "
          f"{100 * comm / (wall - comm):.1f} % to an epoch without it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="parts 1-2 only, smaller explicit policy")
    parser.add_argument("--parts", default="123", help="which parts to run, e.g. 3 (default: 123)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as cosim run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if "1" in args.parts:
        regulated_mix(repeat=5 if args.quick else 20)
    if "2" in args.parts:
        fisher_routes([(64, 64)] if args.quick else [(64, 64), (128, 128)], repeat=5 if args.quick else 20)
    if "3" in args.parts and not args.quick:
        epoch_share(epochs=5, skip=2)


if __name__ == "__main__":
    main()
