"""Shared helpers of the learners tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import torch
from torch.nn.utils import parameters_to_vector

from learners import SAC, SACConfig, SACFleet

OBS_DIM = 3
LOW = [-2.0, -1.0]
HIGH = [2.0, 3.0]


def small_config(**overrides) -> SACConfig:
    base = dict(
        hidden=(16, 16), batch_size=8, buffer_size=64, policy_delay=3, dtype="float64",
        actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-2, tau=0.05, init_alpha=0.2,
        shared_init=False,  # each agent its own weights, as the independent references it is compared with
    )
    base.update(overrides)
    return SACConfig(**base)


def make_fleet_and_refs(cfg: SACConfig, seeds: list[int]) -> tuple[SACFleet, list[SAC]]:
    fleet = SACFleet(len(seeds), OBS_DIM, LOW, HIGH, cfg, seeds=seeds)
    refs = [SAC(OBS_DIM, LOW, HIGH, cfg, seed=s) for s in seeds]
    return fleet, refs


def random_transitions(n: int, steps: int, seed: int, dtype=torch.float64):
    """``steps`` tuples (obs, next_obs, reward, terminated) of n agents."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        obs = torch.randn(n, OBS_DIM, generator=g, dtype=dtype)
        nxt = torch.randn(n, OBS_DIM, generator=g, dtype=dtype)
        rew = torch.randn(n, generator=g, dtype=dtype)
        term = (torch.rand(n, generator=g) < 0.25).to(dtype)
        out.append((obs, nxt, rew, term))
    return out


def collect(fleet: SACFleet, refs: list[SAC] | None, steps: int, seed: int, mask=None) -> None:
    """Act with the fleet (and the references, checking they agree) and store transitions."""
    for obs, nxt, rew, term in random_transitions(fleet.n_agents, steps, seed, fleet.dtype):
        act, logp, pre_tanh = fleet.act(obs, mask=mask)
        if refs is not None:
            for i, ref in enumerate(refs):
                if mask is None or mask[i]:
                    a_ref, lp_ref = ref.act(obs[i])
                    torch.testing.assert_close(a_ref, act[i], rtol=1e-12, atol=1e-12)
                    torch.testing.assert_close(lp_ref, logp[i], rtol=1e-10, atol=1e-10)
                    ref.add(obs[i], act[i], rew[i], nxt[i], term[i], logp[i])
        fleet.add(obs, act, rew, nxt, term, logp, mask=mask, pre_tanh=pre_tanh)


def linear_rows(params: list[torch.Tensor], i: int, q: int | None = None) -> torch.Tensor:
    """Agent i's (critic q's) stacked storage -> flat vector in nn.Linear order."""
    parts = []
    for p in params:
        t = p[i] if q is None else p[i, q]
        parts.append((t.t() if t.dim() == 2 else t).reshape(-1))
    return torch.cat(parts)


def ref_vectors(ref: SAC) -> dict[str, torch.Tensor]:
    v = lambda m: parameters_to_vector(m.parameters()).detach().clone()  # noqa: E731
    return {
        "actor": v(ref.actor),
        "q1": v(ref.qf1),
        "q2": v(ref.qf2),
        "q1_target": v(ref.qf1_target),
        "q2_target": v(ref.qf2_target),
        "log_alpha": ref.log_alpha.detach().clone().reshape(1),
    }


def fleet_vectors(fleet: SACFleet, i: int) -> dict[str, torch.Tensor]:
    return {
        "actor": fleet.get_policy_vector(i),
        "q1": linear_rows(fleet.critic, i, 0),
        "q2": linear_rows(fleet.critic, i, 1),
        "q1_target": linear_rows(fleet.critic_target, i, 0),
        "q2_target": linear_rows(fleet.critic_target, i, 1),
        "log_alpha": fleet.log_alpha[i].reshape(1).clone(),
    }


def full_state(fleet: SACFleet) -> dict[str, torch.Tensor]:
    """Every tensor of the fleet's state, flattened to one dict (for exact comparisons)."""
    sd = fleet.state_dict(include_buffers=True)
    out: dict[str, torch.Tensor] = {}

    def walk(prefix, obj):
        if isinstance(obj, torch.Tensor):
            out[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(obj, (list, tuple)):
            for k, v in enumerate(obj):
                walk(f"{prefix}.{k}", v)

    walk("", {k: v for k, v in sd.items() if k != "buffer"})
    # only the filled part of the buffers is meaningful
    buf = fleet.buffer
    for name in ("obs", "action", "reward", "next_obs", "terminated", "log_prob"):
        t = getattr(buf, name)
        for i in range(fleet.n_agents):
            out[f"buffer.{name}.{i}"] = t[i, : int(buf.size[i])].clone()
    out["buffer.ptr"] = buf.ptr.clone()
    out["buffer.size"] = buf.size.clone()
    return out


def assert_states_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"
