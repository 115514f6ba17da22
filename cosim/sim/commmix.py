"""CommMix over the V2V channel: agents pull policy segments from neighbours and mix them
(RSM-MASAC, Algorithm 1 line 22 and Algorithm 2), with transfers that take simulated time.

A round of agent i starts when its policy-update counter k_i reaches a multiple of U
(``comm.interval``), right after the fleet step in which that happened:

1. Omega_i = i's neighbours in the current V2V graph; P_i = min(P, |Omega_i|),
   kappa_i = min(kappa, |Omega_i|) (``exchange: segments``), or one replica per neighbour with
   the whole shared policy (``exchange: full``, P_i = 1).
2. For each replica, P_i distinct responders are drawn (the round's own random stream) and
   segment p is pulled from responder j_p through :meth:`Channel.pull`; all pulls of a round
   start at once. The responder cuts *its parameters at response time* into P_i uniform
   segments (eq. 16) and sends segment p: 32 bits per parameter; if the rule needs
   ``rewards``, also the sum of its last ``reward_window`` rewards (32 bits more).
3. When the last segment of a replica arrives, the replica (eq. 17) waits for the next mixing
   point of the same instant or the next traffic tick, where every replica that is complete goes
   through one batched call of the configured mixing rule (``comm.rule``, created by
   ``cosim.plugins.rule_registry``; with what it ``needs``: reward sums, or replay samples
   and critics) into its agent's *current* parameters.
   In ``async`` mode those moved on since the request: staleness = k_i at the mix minus k_i at
   the earliest segment snapshot. In ``sync`` mode every agent's learning waits while any round
   is in flight, so staleness is 0.
4. A replica with a lost, refused or timed-out segment is dropped (``lost_segment: drop``) or
   mixed with zeros in its place (``zero_fill``). At the end of an epoch the channel cancels
   what is in flight: those replicas count as cancelled. Checkpoints are taken at epoch ends,
   hence always between rounds.

Accounting per epoch (paper's names): ``rho_total`` replicas reconstructed complete, ``rho_ef``
of those mixed, ``rho_r`` = rho_ef / rho_total, ``psi_gb`` = rho_total x 32 d bits in GB of
1024^3 bytes (Table V's count: d the shared parameters), ``messages`` payload packets; what the
channel really carried (lost segments and retransmissions included) is ``air_gb``. Zero-filled
replicas are counted apart (``replicas_zero_filled``, ``replicas_zero_filled_mixed``). Per run:
N x N matrices of segments received from and effective mixes from each neighbour, cumulative
over epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cosim.channel import FailureCause, TransferResult
from cosim.config.schema import ScenarioConfig
from cosim.sim.contracts import EpochContext, Hook
from cosim.sim.sac_controller import SACController
from cosim.plugins import rule_registry
from learners.mixing import fleet_regulated_inputs, segment_bounds, shared_mask
from learners.rules import MixContext

BITS_PER_PARAMETER = 32
"""Transmission size of one parameter (the paper's v = 32 d bits)."""

MATRIX_FILES = {"segments_received": "comm_segments_received.csv", "mixes": "comm_mixes.csv"}


@dataclass(eq=False)
class _Round:
    agent: int
    k_start: int
    mixed: int = 0  # replicas of this round mixed so far (the average rule's running count)
    weight_mixed: float = 0.0  # reward weight mixed so far (rules that need rewards)


@dataclass(eq=False)
class _Replica:
    round: _Round
    responders: list[int]
    bounds: list[tuple[int, int]]
    segments: list[torch.Tensor | None] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    snapshot_k: list[int] = field(default_factory=list)
    zero_filled: bool = False


class _EpochStats:
    def __init__(self) -> None:
        self.counts = dict.fromkeys(
            ("comm_rounds", "comm_rounds_no_neighbours", "comm_rounds_skipped_busy", "rho_total", "rho_ef",
             "segments_requested", "segments_received", "segments_lost", "segments_cancelled",
             "replicas_dropped", "replicas_zero_filled", "replicas_zero_filled_mixed", "replicas_cancelled",
             "mix_nonfinite_skips"), 0)
        self.latencies: list[float] = []
        self.staleness: list[int] = []  # of mixed replicas
        self.advantages: list[float] = []  # A+ of every replica the rule evaluated (mixed or not)
        self.qs: list[float] = []  # q and bound where the regulated rule computed them (A+ > 0)
        self.bounds: list[float] = []
        self.zetas: list[float] = []  # of mixed replicas
        self.capped = 0  # mixes at zeta_max


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


class CommMix(Hook):
    """The CommMix protocol of a run with ``learner: sac`` (see the module docstring)."""

    def __init__(self, config: ScenarioConfig, controller: SACController):
        self.cfg = config.comm
        self.controller = controller
        self.fleet = controller.fleet
        n = self.fleet.n_agents
        self.mask = shared_mask(self.fleet.policy_layout(), self.cfg.shared_layers)
        self.shared_idx = self.mask.nonzero().squeeze(1)
        self.shared_dim = int(self.shared_idx.numel())
        self.rule = rule_registry.create(self.cfg.rule, dict(self.cfg), self.cfg.rule_params)
        self.last_k = self.fleet.policy_updates.numpy().copy()
        self.segments_received = np.zeros((n, n), dtype=np.int64)  # [i, j]: segments i got from j
        self.mixes = np.zeros((n, n), dtype=np.int64)  # [i, j]: mixed replicas of i holding j's part
        self.busy = np.zeros(n, dtype=bool)
        self.rounds_in_flight = 0
        self.pending: list[_Replica] = []
        self.stats = _EpochStats()
        self.ctx: EpochContext | None = None

    # ------------------------------------------------------------------ engine hooks
    def begin_epoch(self, ctx: EpochContext) -> None:
        if ctx.channel is None:
            raise RuntimeError("CommMix needs the channel hook before it")
        self.ctx = ctx
        self.rng = ctx.rng("commmix")
        self.generators = [torch.Generator().manual_seed(ctx.int_seed("commmix", i)) for i in range(self.fleet.n_agents)]
        self.stats = _EpochStats()
        self.pending = []
        self.busy[:] = False
        self.rounds_in_flight = 0
        self.controller.hold_learning = False

    def after_traffic_step(self, ctx: EpochContext) -> None:
        self.flush()

    def after_fleet_step(self, ctx: EpochContext) -> None:
        if not self.cfg.active or ctx.phase != "train":  # evaluation epochs do not communicate
            return
        k = self.fleet.policy_updates.numpy()
        crossed = np.flatnonzero(k // self.cfg.interval > self.last_k // self.cfg.interval)
        self.last_k = k.copy()
        for i in crossed.tolist():
            self._start_round(ctx, i, int(k[i]))

    def before_act(self, ctx: EpochContext) -> None:
        self.flush()

    def end_epoch(self, ctx: EpochContext) -> dict[str, float]:
        # The channel hook closed the channel; let the rounds see their cancelled transfers.
        env = ctx.env
        for _ in range(1_000_000):
            if not self.rounds_in_flight or env.peek() > env.now:
                break
            env.step()
        if self.rounds_in_flight:
            raise RuntimeError(f"{self.rounds_in_flight} CommMix rounds did not end with the epoch")
        self.flush()
        return self._row(ctx)

    # ------------------------------------------------------------------ rounds
    def _start_round(self, ctx: EpochContext, i: int, k: int) -> None:
        s = self.stats.counts
        if self.busy[i]:
            s["comm_rounds_skipped_busy"] += 1
            return
        omega = ctx.channel.neighbours(i)
        if not omega:
            s["comm_rounds_no_neighbours"] += 1
            return
        s["comm_rounds"] += 1
        self.busy[i] = True
        self.rounds_in_flight += 1
        if self.cfg.mode == "sync":
            self.controller.hold_learning = True
        ctx.env.process(self._round(ctx, _Round(i, k), omega))

    def _round(self, ctx: EpochContext, rnd: _Round, omega: list[int]):
        if self.cfg.exchange == "full":
            groups = [[j] for j in omega]
        else:
            parts = min(self.cfg.segments, len(omega))
            count = min(self.cfg.replicas, len(omega))
            groups = [self.rng.choice(omega, size=parts, replace=False).tolist() for _ in range(count)]
        pulls = []
        for responders in groups:
            rep = _Replica(rnd, responders, segment_bounds(self.shared_dim, len(responders)))
            rep.segments = [None] * len(responders)
            procs = [ctx.channel.pull(rnd.agent, j, self._respond(rep, p, j), timeout=self.cfg.timeout_s)
                     for p, j in enumerate(responders)]
            self.stats.counts["segments_requested"] += len(procs)
            ctx.env.all_of(procs).callbacks.append(lambda _ev, rep=rep, procs=procs: self._arrived(rep, procs))
            pulls += procs
        yield ctx.env.all_of(pulls)
        self.busy[rnd.agent] = False
        self.rounds_in_flight -= 1
        if self.rounds_in_flight == 0:
            self.controller.hold_learning = False

    def _respond(self, rep: _Replica, p: int, j: int):
        """The responder's answer, computed when the request arrives (its parameters then)."""

        def respond():
            lo, hi = rep.bounds[p]
            vec = self.fleet.get_policy_vector(j)
            segment = vec.index_select(0, self.shared_idx[lo:hi])
            rep.snapshot_k.append(int(self.fleet.policy_updates[rep.round.agent]))
            bits = BITS_PER_PARAMETER * (hi - lo)
            reward = None
            if "rewards" in self.rule.needs:  # e.g. RS-PPS: the responder's reward buffer goes along
                reward = float(self.fleet.buffer.recent_reward_sums(self.rule.rule.reward_window)[j])
                bits += BITS_PER_PARAMETER
            return (segment, reward), bits

        return respond

    def _arrived(self, rep: _Replica, procs) -> None:
        """All pulls of a replica ended: reconstruct it (eq. 17), or drop it."""
        s = self.stats.counts
        for proc in procs:
            if not proc.ok:  # the transfer process itself failed (e.g. a medium plug-in): the run stops with it
                raise proc.value
        results: list[TransferResult] = [proc.value for proc in procs]
        cancelled = False
        for p, res in enumerate(results):
            if res.ok:
                segment, reward = res.payload
                rep.segments[p] = segment
                if reward is not None:
                    rep.rewards.append(reward)
                s["segments_received"] += 1
                self.segments_received[rep.round.agent, res.responder] += 1
                self.stats.latencies.append(res.latency_s)
            elif res.cause is FailureCause.CANCELLED:
                s["segments_cancelled"] += 1
                cancelled = True
            else:
                s["segments_lost"] += 1
        received = sum(seg is not None for seg in rep.segments)
        if cancelled:
            s["replicas_cancelled"] += 1
        elif received == len(rep.segments):
            s["rho_total"] += 1
            self.pending.append(rep)
        elif self.cfg.lost_segment == "zero_fill" and received:
            s["replicas_zero_filled"] += 1  # not in rho_total: that counts complete replicas
            rep.zero_filled = True
            for p, (lo, hi) in enumerate(rep.bounds):
                if rep.segments[p] is None:
                    rep.segments[p] = torch.zeros(hi - lo, dtype=self.fleet.dtype)
            self.pending.append(rep)
        else:
            s["replicas_dropped"] += 1

    # ------------------------------------------------------------------ mixing
    def flush(self) -> None:
        """Mix every complete replica: one batched call per wave (the k-th pending replica of
        each agent is in wave k, so an agent's replicas mix one after another)."""
        waves: list[list[_Replica]] = []
        seen: dict[int, int] = {}
        for rep in self.pending:
            i = rep.round.agent
            w = seen.get(i, 0)
            seen[i] = w + 1
            if w == len(waves):
                waves.append([])
            waves[w].append(rep)
        self.pending = []
        for wave in waves:
            self._mix_wave(wave)

    def _mix_wave(self, wave: list[_Replica]) -> None:
        fleet, st = self.fleet, self.stats
        agents = [rep.round.agent for rep in wave]
        theta = fleet.get_policy_vectors(agents)
        ref = theta.clone()
        ref[:, self.shared_idx] = torch.stack([torch.cat(rep.segments) for rep in wave]).to(theta.dtype)
        ctx = MixContext(fleet.spec, mixed_before=torch.tensor([rep.round.mixed for rep in wave]))
        rule = self.rule.rule
        if "rewards" in self.rule.needs:
            own = fleet.buffer.recent_reward_sums(rule.reward_window)[agents]
            ctx.weight_self = own + torch.tensor([rep.round.weight_mixed for rep in wave], dtype=own.dtype)
            ctx.weight_ref = torch.tensor([float(np.mean(rep.rewards)) if rep.rewards else 0.0
                                           for rep in wave], dtype=own.dtype)
        if "replay" in self.rule.needs:
            ctx.replay = fleet_regulated_inputs(fleet, agents, [self.generators[i] for i in agents], rule)
        with torch.no_grad():  # the Fisher form uses forward-mode AD, which needs no graph
            result = self.rule.apply(theta, ref, ctx)
        mixed = result.mixed.nonzero().squeeze(1).tolist()
        if mixed:
            fleet.set_policy_vectors([agents[b] for b in mixed], result.theta[mixed])
        k_now = fleet.policy_updates
        for value in result.advantage.tolist():
            if math.isfinite(value):
                st.advantages.append(value)
        computed = ~torch.isnan(result.q)
        st.qs += result.q[computed].tolist()
        st.bounds += result.bound[computed].tolist()
        for b in mixed:
            rep = wave[b]
            rep.round.mixed += 1
            if ctx.weight_ref is not None:
                rep.round.weight_mixed += float(ctx.weight_ref[b])
            for j in set(rep.responders):
                self.mixes[rep.round.agent, j] += 1
            st.staleness.append(int(k_now[rep.round.agent]) - min(rep.snapshot_k))
            st.zetas.append(float(result.zeta[b]))
            st.capped += int(result.capped[b])
            if rep.zero_filled:
                st.counts["replicas_zero_filled_mixed"] += 1
            else:
                st.counts["rho_ef"] += 1
        st.counts["mix_nonfinite_skips"] += int(result.nonfinite.sum())

    # ------------------------------------------------------------------ outputs
    def _row(self, ctx: EpochContext) -> dict[str, float]:
        st = self.stats
        c = st.counts
        lat = np.asarray(st.latencies, dtype=float)
        channel = ctx.channel.stats
        return {
            **c,
            "rho_r": c["rho_ef"] / c["rho_total"] if c["rho_total"] else float("nan"),
            "psi_gb": c["rho_total"] * BITS_PER_PARAMETER * self.shared_dim / (8 * 1024**3),
            "air_gb": channel.payload_bits / (8 * 1024**3),
            "messages": int(channel.payload_packets),
            "segment_latency_mean_s": float(lat.mean()) if lat.size else float("nan"),
            "segment_latency_p95_s": float(np.percentile(lat, 95)) if lat.size else float("nan"),
            "staleness_mean": _mean(st.staleness),
            "staleness_max": max(st.staleness) if st.staleness else float("nan"),
            "mix_advantage_mean": _mean(st.advantages),
            "mix_zeta_mean": _mean(st.zetas),
            "mix_q_mean": _mean(st.qs),
            "mix_bound_mean": _mean(st.bounds),
            "mix_cap_share": st.capped / len(st.zetas) if st.zetas else float("nan"),
        }

    def artifacts(self) -> dict[str, str]:
        out = {}
        for name, filename in MATRIX_FILES.items():
            m = getattr(self, name)
            header = "agent," + ",".join(f"from_{j}" for j in range(m.shape[1]))
            rows = [f"{i}," + ",".join(str(int(x)) for x in row) for i, row in enumerate(m)]
            out[filename] = "\n".join([header, *rows]) + "\n"
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"last_k": self.last_k.tolist(), "segments_received": self.segments_received.tolist(),
                "mixes": self.mixes.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_k = np.asarray(state["last_k"], dtype=np.int64)
        self.segments_received = np.asarray(state["segments_received"], dtype=np.int64)
        self.mixes = np.asarray(state["mixes"], dtype=np.int64)
