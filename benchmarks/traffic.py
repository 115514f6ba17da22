"""SUMO steps per second, libsumo vs TraCI, and what each layer of cosim adds on top.

For each scenario and backend, in one run:

* ``raw``     : ``simulationStep()`` alone (SUMO's own cost);
* ``adapter`` : :meth:`SumoTraffic.step` + ``apply_accelerations`` (subscriptions, slot binding,
                leader/follower reads, speed commands);
* ``engine``  : a full epoch of the SimPy engine with the IDM controller (traffic and fleet
                processes, V2V channel graph, observation, reward, metrics).

Run:  python benchmarks/traffic.py [--steps 1500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# benchmarks/learners.py is named like the package: keep this folder off the import path so that
# ``import learners`` (via cosim.config) finds the package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import numpy as np  # noqa: E402

from cosim.sim import seeding  # noqa: E402
from cosim.config import load_config  # noqa: E402
from cosim.sim.controllers import idm_acceleration  # noqa: E402
from cosim.run.experiment import make_controller, make_hooks  # noqa: E402
from cosim.sim.engine import Engine  # noqa: E402
from cosim.traffic.sumo import SumoTraffic  # noqa: E402

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _best(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def bench(scenario: str, backend: str, steps: int, repeat: int) -> dict[str, float]:
    cfg = load_config(SCENARIOS / f"{scenario}.yaml",
                      [f"sumo.backend={backend}", f"env.horizon={steps}", "learner=idm", "env.warmup_steps=0"])
    with SumoTraffic(cfg.sumo, cfg.network, cfg.vehicles, cfg.env.n_agents) as traffic:
        def raw() -> float:
            traffic.reset(seeding.int_seed(cfg.seed, "epoch", 0, "sumo"))
            api = traffic._api
            start = time.perf_counter()
            for _ in range(steps):
                api.simulationStep()
            return time.perf_counter() - start

        def adapter() -> float:  # same driving as the engine epoch, without SimPy
            state = traffic.reset(seeding.int_seed(cfg.seed, "epoch", 0, "sumo"))
            start = time.perf_counter()
            for _ in range(steps):
                traffic.apply_accelerations(np.clip(idm_acceleration(state, cfg.idm), *cfg.env.accel_range))
                state = traffic.step()
            return time.perf_counter() - start

        controller = make_controller(cfg)
        engine = Engine(cfg, traffic, controller, make_hooks(cfg, controller))

        def full() -> float:
            start = time.perf_counter()
            engine.run_epoch(0)
            return time.perf_counter() - start

        return {"raw": steps / _best(raw, repeat), "adapter": steps / _best(adapter, repeat),
                "engine": steps / _best(full, repeat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"steps per second (best of {args.repeat}, {args.steps} steps, IDM-driven CAVs)\n")
    print(f"{'scenario':9} {'backend':8} {'raw':>9} {'adapter':>9} {'engine':>9}   engine vs raw   engine vs adapter")
    results = {}
    for scenario in ("figure8", "merge"):
        for backend in ("libsumo", "traci"):
            r = results[scenario, backend] = bench(scenario, backend, args.steps, args.repeat)
            print(f"{scenario:9} {backend:8} {r['raw']:9.0f} {r['adapter']:9.0f} {r['engine']:9.0f}"
                  f"   {r['raw'] / r['engine']:8.2f}x slower  {r['adapter'] / r['engine']:8.2f}x slower")
    print()
    for scenario in ("figure8", "merge"):
        lib, tra = results[scenario, "libsumo"], results[scenario, "traci"]
        print(f"{scenario}: libsumo is {lib['raw'] / tra['raw']:.1f}x faster than TraCI for raw steps, "
              f"{lib['engine'] / tra['engine']:.1f}x for full engine epochs")
        overhead = 1e6 * (1 / lib["engine"] - 1 / lib["adapter"])
        print(f"{scenario}: SimPy engine + V2V graph + IDM + observation/reward add {overhead:.0f} us per step "
              f"over the adapter (libsumo)")


if __name__ == "__main__":
    main()
