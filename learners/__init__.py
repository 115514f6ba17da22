"""Learning, pure torch: batched multi-agent Soft Actor-Critic and the policy math.

- ``SACConfig``: hyper-parameters (defaults: RSM-MASAC paper, Table IV), validated.
- ``SACFleet``: N independent SAC agents stored as stacked tensors and updated in one batched
  pass (act, add, masked update, counters, per-agent stats, flat policy vectors,
  save/load with exact resume).
- ``SAC``: a readable single-agent reference implementation (eqs. 6-9).
- ``PolicySpec``, ``policy_distribution``, ``policy_log_prob``, ``policy_sample``: the policy
  as a pure function of flat parameter vectors (for referential policies and Fisher forms).
- ``FleetReplayBuffer``, ``BatchedAdam``: the per-agent replay buffers and the maskable Adam.
- ``learners.losses``: the three passes of an update (soft Q target, critic and policy losses)
  as pure functions, eager or through ``torch.compile`` (``SACConfig.compile``).
- ``tune_malloc``: opt-in glibc malloc settings that spare a fleet update its page faults.

This package imports neither SimPy, SUMO nor ``cosim``.
"""

from .adam import BatchedAdam
from .config import SACConfig
from .fleet import SACFleet, UpdateStats, agent_seeds, atomic_torch_save
from .nets import LayerSlice
from .perf import tune_malloc
from .policy import PolicySpec, policy_distribution, policy_log_prob, policy_log_prob_of_pre_tanh, policy_sample
from .replay import FleetReplayBuffer, ReplayBatch
from .sac import SAC
from .squash import ActionScale

__all__ = [
    "ActionScale",
    "BatchedAdam",
    "FleetReplayBuffer",
    "LayerSlice",
    "PolicySpec",
    "ReplayBatch",
    "SAC",
    "SACConfig",
    "SACFleet",
    "UpdateStats",
    "agent_seeds",
    "atomic_torch_save",
    "policy_distribution",
    "policy_log_prob",
    "policy_log_prob_of_pre_tanh",
    "policy_sample",
    "tune_malloc",
]
