"""CAVs that act with their own SAC policies and learn while they drive (Algorithm 1, lines 9-20).

One :class:`learners.SACFleet` holds the N agents; every fleet tick this controller

1. acts for all bound slots in one batched forward pass (stochastic policy, eq. 8) and keeps
   the behaviour log-probabilities (stored with each transition, needed by eq. 19);
2. stores the transitions of slots that kept their vehicle through the step (``Transition.valid``)
   in the slots' own replay buffers; a collision is terminal, the horizon T is not (the learner
   bootstraps through it);
3. every ``train.update_every`` environment steps, after ``train.warmup_steps`` of them, runs
   ``train.updates_per_step`` batched updates for the agents whose slot holds a vehicle now
   (a learner lives on its vehicle); critic every update, policy/alpha/targets every
   ``sac.policy_delay`` critic updates, plus Algorithm 1's ``t = T`` clause: the last step of
   every epoch (horizon or collision) is a learning step, whatever ``update_every``, and its
   last update also updates the policy.

The fleet's per-agent policy-update counters k_i are exposed for communication rounds (every U
policy updates, Algorithm 1 line 22; ``cosim/sim/commmix.py``). While ``hold_learning`` is set (a
synchronous round is in flight) learning phases are skipped, not deferred: vehicles keep driving
and transitions are still stored (``learning_phases_held`` counts them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cosim.sim import seeding
from cosim.config.schema import ScenarioConfig
from cosim.sim.contracts import Controller, EpochContext, Transition
from cosim.traffic.observation import OBS_DIM
from cosim.traffic.sumo import TrafficState
from learners import SACFleet, tune_malloc

STAT_COLUMNS = ("critic_loss", "q_mean", "policy_loss", "entropy", "alpha", "alpha_loss")


class SACController(Controller):
    """Multi-agent SAC (independent learners, one per agent slot) driving the CAVs."""

    def __init__(self, config: ScenarioConfig):
        self.train = config.train
        n = config.env.n_agents
        low, high = config.env.accel_range
        seeds = [seeding.int_seed(config.seed, "agent", i, "torch") for i in range(n)]
        tune_malloc()  # keep freed heap for the next update (10-25 % faster updates, learners/perf.py)
        self.fleet = SACFleet(n, OBS_DIM, low, high, config.sac, seeds=seeds)
        self.env_steps = 0
        self.hold_learning = False  # set by CommMix in sync mode while rounds are in flight
        self.evaluating = False  # an evaluation epoch: deterministic actions tanh(mean), no learning
        self._log_prob: torch.Tensor | None = None
        self._pre_tanh: torch.Tensor | None = None
        self._reset_epoch_stats()

    def _reset_epoch_stats(self) -> None:
        self.sums = {name: 0.0 for name in STAT_COLUMNS}
        self.counts = {name: 0 for name in STAT_COLUMNS}
        self.critic_updates = 0
        self.policy_updates = 0
        self.held_phases = 0

    # ------------------------------------------------------------------ Controller API
    def begin_epoch(self, ctx: EpochContext) -> None:
        self._reset_epoch_stats()
        self.evaluating = ctx.phase == "eval"

    def act(self, obs: np.ndarray, state: TrafficState) -> np.ndarray:
        actions, log_prob, pre_tanh = self.fleet.act(obs, deterministic=self.evaluating,
                                                     mask=torch.from_numpy(state.slots.active))
        self._log_prob, self._pre_tanh = log_prob, pre_tanh
        return actions[:, 0].numpy().astype(float)

    def observe(self, transition: Transition) -> None:
        if self.evaluating:  # evaluation: no buffer writes, no learning, no step counting
            return
        tr = transition
        n = self.fleet.n_agents
        if tr.valid.any():
            self.fleet.add(tr.obs, tr.actions.reshape(n, -1), np.full(n, tr.reward),
                           tr.next_obs, np.full(n, tr.terminated), self._log_prob,
                           mask=torch.from_numpy(tr.valid), pre_tanh=self._pre_tanh)
        self.env_steps += 1
        cfg = self.train
        last = tr.terminated or tr.truncated  # Algorithm 1, line 14's t = T: every epoch end learns
        if self.env_steps <= cfg.warmup_steps or (self.env_steps % cfg.update_every and not last):
            return
        if self.hold_learning:  # a synchronous round is in flight: this learning phase is skipped
            self.held_phases += 1
            return
        on_vehicle = torch.from_numpy(tr.next_active)
        for k in range(cfg.updates_per_step):
            force = on_vehicle if last and k == cfg.updates_per_step - 1 else None
            self._accumulate(self.fleet.update(mask=on_vehicle, force_policy=force))

    def _accumulate(self, stats) -> None:
        self.critic_updates += int(stats.updated.sum())
        self.policy_updates += int(stats.policy_updated.sum())
        for name in STAT_COLUMNS:
            values = getattr(stats, name)
            finite = values[~torch.isnan(values)]
            self.sums[name] += float(finite.sum())
            self.counts[name] += int(finite.numel())

    def end_epoch(self) -> dict[str, float]:
        """Learning activity of the epoch: means over all updates of all agents."""
        row: dict[str, float] = {name: (self.sums[name] / self.counts[name] if self.counts[name] else float("nan"))
                                 for name in STAT_COLUMNS}
        row["critic_updates"] = self.critic_updates
        row["policy_updates"] = self.policy_updates
        row["learning_phases_held"] = self.held_phases
        row["buffer_mean_size"] = float(self.fleet.buffer.size.float().mean())
        return row

    @property
    def policy_update_counts(self) -> np.ndarray:
        """k_i of every agent (Algorithm 1, line 18)."""
        return self.fleet.policy_updates.numpy()

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {"fleet": self.fleet.state_dict(include_buffers=True), "env_steps": self.env_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fleet.load_state_dict(state["fleet"])
        self.env_steps = int(state["env_steps"])
