"""What each CAV observes and the reward they share (docs/reference.md §1, Flow's multi-agent envs).

Observation of CAV i, all normalised (L = network length, v_max = speed limit):

    [x / L, v / v_max, (v_lead - v) / v_max, gap_lead / L, (v - v_follow) / v_max, gap_follow / L]

With no leader within the observation distance, Flow's convention applies: v_lead = v_max and
gap_lead = L; with no follower, v_follow = 0 and gap_follow = L. Gaps are capped at L. Rows of
inactive slots are zero.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from cosim.traffic.sumo import SlotState

OBS_DIM = 6


def observe(slots: SlotState, length: float, max_speed: float) -> np.ndarray:
    """The [N, 6] observation matrix of all agent slots."""
    v = slots.speed
    lead_v = np.where(np.isnan(slots.lead_speed), max_speed, slots.lead_speed)
    lead_gap = np.where(np.isnan(slots.lead_gap), length, np.minimum(slots.lead_gap, length))
    follow_v = np.where(np.isnan(slots.follow_speed), 0.0, slots.follow_speed)
    follow_gap = np.where(np.isnan(slots.follow_gap), length, np.minimum(slots.follow_gap, length))
    obs = np.stack([
        slots.position / length,
        v / max_speed,
        (lead_v - v) / max_speed,
        lead_gap / length,
        (v - follow_v) / max_speed,
        follow_gap / length,
    ], axis=1)
    obs[~slots.active] = 0.0
    return obs.astype(np.float32)


def reward(speeds: np.ndarray, desired_speed: float, crashed: bool,
           kind: Literal["desired_velocity", "mean_speed"] = "desired_velocity") -> float:
    """The shared reward of one step: normalised average speed of all vehicles, 0 on a crash.

    ``desired_velocity`` is Flow's ``rewards.desired_velocity``:
    max(||v_d 1|| - ||v - v_d 1||, 0) / ||v_d 1|| (L2 norms over the vehicles), equal to 1 when
    every vehicle drives at v_d. ``mean_speed`` is mean(v) / v_d.
    """
    if crashed or len(speeds) == 0:
        return 0.0
    if kind == "mean_speed":
        return float(np.mean(speeds) / desired_speed)
    best = desired_speed * np.sqrt(len(speeds))
    cost = float(np.linalg.norm(speeds - desired_speed))
    return max(best - cost, 0.0) / best
