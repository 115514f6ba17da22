"""The ``comm:`` section: how agents pull their neighbours' policies and mix them (CommMix).

Three orthogonal choices describe a method (RSM-MASAC, Section V-A, and its baselines):

- ``exchange``: what is pulled. ``none`` (independent learners), ``full`` (the whole shared
  policy of every neighbour: one referential policy per neighbour), ``segments`` (P segments
  from P distinct neighbours per referential policy, kappa of them per round; eqs. 16-17);
- ``rule``: how a referential policy is mixed: the built-ins ``average``, ``fixed``,
  ``regulated`` (Theorem 2), ``reward_weighted`` (RS-PPS) (``learners.mixing``), or a rule of
  your own (``cosim.plugins.rule_registry``, docs/extending.md) with ``rule_params``;
- ``shared_layers``: which layers are exchanged and mixed (``all``, ``except_first``, or a
  list of layer names such as ``[fc1, mean, log_std]``).

``method`` names a preset of the three (the table below); keys given explicitly win over the
preset. Example (YAML)::

    comm:
      method: rsm_masac      # isac | avg | drl_de | drl_pa | rs_pps | pp_pps | rsm_masac
      mode: async            # async | sync
      interval: 8            # U: policy updates between rounds
      segments: 4            # P
      replicas: 3            # kappa
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cosim.plugins import rule_registry

Method = Literal["isac", "avg", "drl_de", "drl_pa", "rs_pps", "pp_pps", "rsm_masac"]
Exchange = Literal["none", "full", "segments"]

PRESETS: dict[str, dict[str, Any]] = {
    # independent SAC, no communication (the paper's ISAC, Fig. 5)
    "isac": {"exchange": "none", "rule": "regulated", "shared_layers": "all"},
    # naive decentralised FL: average with every neighbour (literature review, eq. 1; the paper's Avg)
    "avg": {"exchange": "full", "rule": "average", "shared_layers": "all"},
    # trustable policy collaboration's DRL-DE: fixed mixture metric 0.5 with every neighbour
    "drl_de": {"exchange": "full", "rule": "fixed", "shared_layers": "all"},
    # trustable policy collaboration's DRL-PA: whole policies, regulated by the advantage and bound
    "drl_pa": {"exchange": "full", "rule": "regulated", "shared_layers": "all"},
    # PPS-QMIX's RS-PPS: reward-weighted aggregation
    "rs_pps": {"exchange": "full", "rule": "reward_weighted", "shared_layers": "all"},
    # PPS-QMIX's PP-PPS: RS-PPS on every layer but a personalised input layer
    "pp_pps": {"exchange": "full", "rule": "reward_weighted", "shared_layers": "except_first"},
    # RSM-MASAC: segments, regulated (Algorithms 1-2)
    "rsm_masac": {"exchange": "segments", "rule": "regulated", "shared_layers": "all"},
}


class CommConfig(BaseModel):
    """CommMix rounds: when they start, what is pulled, how it is mixed, how long agents wait."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: Method = Field(
        "rsm_masac", description="A named method (preset of exchange, rule, shared_layers): "
        "isac, avg, drl_de, drl_pa, rs_pps, pp_pps, rsm_masac. Explicit keys override it.")
    exchange: Exchange = Field(
        None, validate_default=False, description="none | full (whole policy of every neighbour) | "
        "segments (P segments from P neighbours per replica, kappa replicas). Default: from method.")
    rule: str = Field(
        None, validate_default=False, description="The mixing rule: average | fixed | regulated | "
        "reward_weighted, a name registered with cosim.plugins.rule_registry.register_rule or by an "
        "installed package under the entry-point group 'cosim.mixing_rules', or 'package.module:Class' "
        "(a learners.rules.MixingRule; docs/extending.md). Default: from method.")
    rule_params: dict[str, Any] = Field(
        default_factory=dict, description="Keyword parameters of a rule of your own (the built-ins "
        "take theirs from the comm keys below: zeta, zeta_safety, ..., reward_window).")
    shared_layers: Literal["all", "except_first"] | list[str] = Field(
        None, validate_default=False, description="Layers exchanged and mixed: all, except_first "
        "(the first hidden layer stays personal), or layer names (fc0, fc1, ..., mean, log_std). "
        "Default: from method.")
    mode: Literal["async", "sync"] = Field(
        "async", description="async: agents keep learning while segments travel, so a replica "
        "is mixed into parameters that moved on (staleness). sync: every agent's learning "
        "updates wait while any round is in flight (the paper's rounds; vehicles keep driving).")
    interval: int = Field(8, ge=1, description="U: a round starts each time an agent's policy-update "
                          "counter k_i reaches a multiple of U (Table IV: 8).")
    segments: int = Field(4, ge=1, description="P: segments per referential policy; P_i = "
                          "min(P, |Omega_i|) (Table IV: 4).")
    replicas: int = Field(3, ge=1, description="kappa: referential policies per round; kappa_i = "
                          "min(kappa, |Omega_i|) (Table IV: 3).")
    samples: int = Field(50, ge=1, description="M: transitions of the agent's own buffer per "
                         "estimate of the MERL advantage (eq. 19; Table IV: 50).")
    zeta: float = Field(0.5, gt=0, le=1, description="Mixture metric of the 'fixed' rule (DRL-DE: 0.5).")
    zeta_safety: float = Field(0.9, gt=0, le=1, description="'regulated': zeta = safety x the "
                               "Theorem 2 bound ('marginally below' it) ...")
    zeta_max: float = Field(0.8, gt=0, le=1, description="... capped at zeta_max (the authors' code: 0.8).")
    fisher: Literal["batch_score", "exact"] = Field(
        "batch_score", description="'regulated': the Fisher of eq. (20) in q = (theta~ - theta)^T F "
        "(theta~ - theta). batch_score: F ~ g g^T with g the batch-mean score over the M samples "
        "(what RSM-MASAC's experiments used); exact: the Gaussian policy's Fisher (Theorem 2 as "
        "written; on average about M times larger q, so smaller zeta).")
    zeta_rule: Literal["theorem2", "trust_region"] = Field(
        "theorem2", description="'regulated': theorem2: zeta = min(zeta_safety x sqrt(2 A+ / (C q)), "
        "zeta_max) (Theorem 2); trust_region: zeta = min(sqrt(2 delta / q), zeta_max) with delta = "
        "trust_region_kl, a KL trust region as in TRPO (beyond the paper). Both mix only where A+ > 0.")
    trust_region_kl: float = Field(0.01, gt=0, allow_inf_nan=False, description="delta of "
                                   "zeta_rule trust_region: the largest KL(pi || pi_mix) one mix may cause "
                                   "(second-order estimate 1/2 zeta^2 q).")
    ratio_clip: float = Field(10.0, ge=1, allow_inf_nan=False, description="Truncation of the "
                              "importance ratios pi/mu of eq. (19).")
    entropy_samples: int = Field(4, ge=1, description="Reparameterised actions per state for the "
                                 "entropy terms of eq. (19).")
    lost_segment: Literal["drop", "zero_fill"] = Field(
        "drop", description="A replica with a lost, refused or timed-out segment is dropped, or "
        "mixed with that segment filled with zeros (as the authors' code did).")
    timeout_s: float | None = Field(
        None, gt=0, description="Time limit of one segment transfer (request to last packet, "
        "queueing included); null: the channel's timeout_s.")
    reward_window: int = Field(256, ge=1, description="'reward_weighted': an agent's weight R is the "
                               "sum of its last reward_window stored rewards (RS-PPS's reward "
                               "buffer, as long as a batch).")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        method = data.get("method", "rsm_masac")
        preset = PRESETS.get(method)
        if preset is None:  # the Literal check reports the bad method
            return data
        data = dict(data)
        for key, value in preset.items():
            if data.get(key) is None:
                data[key] = value
        return data

    @field_validator("rule")
    @classmethod
    def _rule_exists(cls, name: str) -> str:
        try:
            rule_registry.check_name(name)
        except rule_registry.MixingRuleError as exc:
            raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="after")
    def _rule_can_be_created(self) -> "CommConfig":
        # A built-in rule without rule_params needs no check (its options are validated keys of
        # this section); any other rule is created once, so that every bad parameter is
        # reported now, each under comm.rule_params.<name>.
        if not self.rule_params and rule_registry.is_builtin(self.rule):
            return self
        try:
            rule_registry.create(self.rule, {name: getattr(self, name) for name in type(self).model_fields},
                                 self.rule_params)
        except rule_registry.MixingRuleError as exc:
            problems = [(f"rule_params.{name}", text) for name, text in exc.problems] or [("rule_params", str(exc))]
            raise rule_registry.MixingRuleError(str(exc), problems) from None
        return self

    @property
    def active(self) -> bool:
        """Whether agents communicate at all."""
        return self.exchange != "none"
