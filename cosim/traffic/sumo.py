"""SUMO traffic adapter: start, step, observe and drive the vehicles of one scenario.

One class hides the two ways of talking to SUMO: libsumo (SUMO inside this process, the
default, several times faster) and TraCI over a socket (a separate ``sumo`` process). Both are
driven through the same API object; per-step vehicle data come from subscriptions, so TraCI
needs one round trip per step instead of one per value.

CAVs (vehicles of ``vehicles.cav_type``) are bound to agent slots as they enter the network,
round robin: the next CAV that departs takes the first free slot after the one bound last, so
in open networks (Merge) experience spreads over all N agents instead of piling up in the first
few slots. A slot is freed when its vehicle arrives; on a closed network (Figure 8) the
bindings made at the first step last the whole epoch. CAVs that find no free slot are left to
SUMO's car following.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sumolib
import traci.constants as tc

from cosim.config.schema import NetworkConfig, SumoConfig, VehiclesConfig
from cosim.traffic.network import NetworkGeometry, measure_network, resolve_net_file

_SUBSCRIBED = (tc.VAR_SPEED, tc.VAR_POSITION, tc.VAR_ROAD_ID, tc.VAR_LANEPOSITION)
_labels = itertools.count()
_libsumo_owner: object | None = None  # libsumo is a process-wide singleton


class TrafficError(RuntimeError):
    """SUMO could not be started or stepped."""


@dataclass(frozen=True)
class Collision:
    """One collision SUMO reported in the last step."""

    collider: str
    victim: str
    kind: str
    lane: str


@dataclass
class SlotState:
    """Per agent slot (arrays of length N); rows of inactive slots are NaN/None.

    Gaps are bumper to bumper [m]; a missing leader or follower within the observation distance
    has NaN speed and gap.
    """

    vehicle: list[str | None]
    active: np.ndarray
    xy: np.ndarray
    speed: np.ndarray
    position: np.ndarray
    lead_speed: np.ndarray
    lead_gap: np.ndarray
    follow_speed: np.ndarray
    follow_gap: np.ndarray
    edge: list[str | None]

    @classmethod
    def empty(cls, n: int) -> SlotState:
        nan = lambda *shape: np.full(shape or (n,), np.nan)  # noqa: E731
        return cls([None] * n, np.zeros(n, bool), nan(n, 2), nan(), nan(), nan(), nan(), nan(), nan(), [None] * n)


@dataclass
class TrafficState:
    """Everything the fleet and the channel need to know after one SUMO step."""

    time: float
    vehicle_ids: list[str]
    speeds: np.ndarray
    slots: SlotState
    collisions: list[Collision] = field(default_factory=list)
    teleports: int = 0
    departed: int = 0
    arrived: int = 0
    edges: dict[str, str] = field(default_factory=dict)

    @property
    def crashed(self) -> bool:
        """A collision or a teleport (Flow counts any teleport as a crash) happened this step."""
        return bool(self.collisions) or self.teleports > 0


class SumoTraffic:
    """A running SUMO scenario with N agent slots.

    Lifecycle: ``reset(seed)`` starts SUMO (or reloads it in place between epochs, without a
    new process), ``step()`` advances one ``step_length`` and returns the new state,
    ``apply_accelerations`` sets the bound CAVs' speeds for the next step, ``close()`` ends SUMO.
    """

    def __init__(self, sumo: SumoConfig, network: NetworkConfig, vehicles: VehiclesConfig,
                 n_slots: int, observe_distance: float | None = None):
        self.sumo_cfg = sumo
        self.vehicles_cfg = vehicles
        self.n_slots = n_slots
        self.net_file: Path = resolve_net_file(network)
        self.route_files = list(network.routes)
        try:
            self.geometry: NetworkGeometry = measure_network(self.net_file, network.edge_order, self.route_files)
        except ValueError as exc:  # edge_order names edges the network does not have
            from cosim.config.loader import ConfigError

            raise ConfigError([f"network.edge_order: {exc}"]) from None
        self.observe_distance = observe_distance or self.geometry.length
        self.dt = sumo.step_length
        self._api = None
        self._label: str | None = None
        self._slot_of: dict[str, int] = {}
        self._slots: list[str | None] = [None] * n_slots
        self._next_slot = 0
        self._min_gap: dict[str, float] = {}
        self.state: TrafficState | None = None

    # ------------------------------------------------------------------ lifecycle
    def _args(self, seed: int) -> list[str]:
        cfg = self.sumo_cfg
        return [
            "-n", str(self.net_file), "-r", ",".join(str(p) for p in self.route_files),
            "--step-length", repr(cfg.step_length), "--seed", str(int(seed)),
            "--time-to-teleport", repr(cfg.time_to_teleport),
            "--collision.check-junctions", str(cfg.collision_check_junctions).lower(),
            "--collision.action", cfg.collision_action,
            "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true",
            *cfg.extra_args,
        ]

    def reset(self, seed: int, warmup_steps: int = 0) -> TrafficState:
        """Start a fresh epoch with SUMO seed ``seed``; returns the state after the first step."""
        global _libsumo_owner
        args = self._args(seed)
        try:
            if self._api is None:
                if self.sumo_cfg.backend == "libsumo":
                    import libsumo

                    if _libsumo_owner is not None:
                        raise TrafficError("libsumo runs one simulation per process and another "
                                           "is open; close it first or use backend: traci")
                    libsumo.start([sumolib.checkBinary("sumo"), *args])
                    self._api, _libsumo_owner = libsumo, self
                else:
                    import traci

                    self._label = f"cosim-{next(_labels)}"
                    with contextlib.redirect_stdout(io.StringIO()):  # "Retrying in 1 seconds"
                        traci.start([sumolib.checkBinary("sumo"), *args], label=self._label,
                                    stdout=subprocess.DEVNULL)
                    self._api = traci.getConnection(self._label)
            else:
                self._api.load(args)
        except Exception as exc:  # libsumo raises its own exception types
            if isinstance(exc, TrafficError):
                raise
            self.close()
            raise TrafficError(f"SUMO failed to start: {exc}") from exc
        self._slot_of.clear()
        self._slots = [None] * self.n_slots
        self._next_slot = 0
        self._min_gap.clear()
        self.state = None
        for _ in range(warmup_steps):
            self.step()
        return self.step()

    def close(self) -> None:
        """End SUMO (idempotent); frees the libsumo singleton or the TraCI process."""
        global _libsumo_owner
        if getattr(self, "_api", None) is None:  # also when __init__ failed before setting it
            return
        try:
            self._api.close()
        except Exception:  # already gone (e.g. SUMO crashed): nothing left to free
            pass
        if _libsumo_owner is self:
            _libsumo_owner = None
        self._api = None

    def __enter__(self) -> SumoTraffic:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit modules may already be gone
            pass

    # ------------------------------------------------------------------ stepping
    def step(self) -> TrafficState:
        """Advance SUMO one step; bind entering CAVs, free slots of leaving ones; read the state."""
        api = self._api
        if api is None:
            raise TrafficError("SUMO is not running; call reset() first")
        api.simulationStep()
        sim, veh = api.simulation, api.vehicle
        departed = sim.getDepartedIDList()
        for vid in departed:
            veh.subscribe(vid, _SUBSCRIBED)
            veh.subscribeLeader(vid, self.observe_distance)
            self._min_gap[vid] = veh.getMinGap(vid)
            if veh.getTypeID(vid) == self.vehicles_cfg.cav_type:
                self._bind(vid)
            elif self.vehicles_cfg.human_speed_mode is not None:
                veh.setSpeedMode(vid, self.vehicles_cfg.human_speed_mode)
        arrived = sim.getArrivedIDList()
        for vid in arrived:
            slot = self._slot_of.pop(vid, None)
            if slot is not None:
                self._slots[slot] = None
            self._min_gap.pop(vid, None)
        teleports = sim.getStartingTeleportNumber()
        collisions = [Collision(c.collider, c.victim, c.type, c.lane) for c in sim.getCollisions()]
        results = veh.getAllSubscriptionResults()
        self.state = self._read(sim.getTime(), results, collisions, teleports, len(departed), len(arrived))
        return self.state

    def _bind(self, vid: str) -> None:
        for k in range(self.n_slots):
            slot = (self._next_slot + k) % self.n_slots
            if self._slots[slot] is None:
                self._slots[slot] = vid
                self._slot_of[vid] = slot
                self._next_slot = (slot + 1) % self.n_slots
                self._api.vehicle.setSpeedMode(vid, self.vehicles_cfg.cav_speed_mode)
                return

    def _read(self, time: float, results: dict, collisions: list[Collision], teleports: int,
              departed: int, arrived: int) -> TrafficState:
        ids = sorted(results)  # libsumo and TraCI return different orders
        speeds = np.fromiter((results[v][tc.VAR_SPEED] for v in ids), float, len(ids))
        edges = {v: results[v][tc.VAR_ROAD_ID] for v in ids}
        n, nan, geo = self.n_slots, float("nan"), self.geometry
        # rows: active, x, y, speed, position, lead speed, lead gap, follow speed, follow gap
        rows = [(False, nan, nan, nan, nan, nan, nan, nan, nan)] * n
        slot_edges: list[str | None] = [None] * n
        get_follower = self._api.vehicle.getFollower
        for i, vid in enumerate(self._slots):
            res = results.get(vid) if vid is not None else None
            if res is None:  # free slot, or a vehicle SUMO has not placed yet
                continue
            edge, speed = res[tc.VAR_ROAD_ID], res[tc.VAR_SPEED]
            lead_v = lead_gap = follow_v = follow_gap = nan
            leader = res.get(tc.VAR_LEADER)
            if leader and leader[0] and leader[0] in results:
                lead_v = results[leader[0]][tc.VAR_SPEED]
                lead_gap = max(leader[1] + self._min_gap[vid], 0.0)
            follower = get_follower(vid, self.observe_distance)
            if follower and follower[0] and follower[0] in results:
                follow_v = results[follower[0]][tc.VAR_SPEED]
                follow_gap = max(follower[1] + self._min_gap.get(follower[0], 0.0), 0.0)
            x, y = res[tc.VAR_POSITION]
            position = geo.position(edge, res[tc.VAR_LANEPOSITION]) % geo.length
            rows[i] = (True, x, y, speed, position, lead_v, lead_gap, follow_v, follow_gap)
            slot_edges[i] = edge
        table = np.array(rows, dtype=float).reshape(n, 9)
        slots = SlotState(
            vehicle=list(self._slots), active=table[:, 0].astype(bool), xy=table[:, 1:3].copy(),
            speed=table[:, 3].copy(), position=table[:, 4].copy(), lead_speed=table[:, 5].copy(),
            lead_gap=table[:, 6].copy(), follow_speed=table[:, 7].copy(), follow_gap=table[:, 8].copy(),
            edge=slot_edges)
        return TrafficState(time, ids, speeds, slots, collisions, teleports, departed, arrived, edges)

    # ------------------------------------------------------------------ control
    def apply_accelerations(self, accel: np.ndarray) -> None:
        """Drive every bound CAV at v' = max(v + a dt, 0) during the next step (docs/reference.md §1).

        ``accel`` has one row per slot [m/s^2]; rows of inactive slots are ignored.
        """
        if self.state is None:
            raise TrafficError("no state yet; call reset() first")
        slots = self.state.slots
        accel = np.asarray(accel, float).reshape(self.n_slots)
        target = np.maximum(slots.speed + accel * self.dt, 0.0)
        set_speed = self._api.vehicle.setSpeed
        for i in np.flatnonzero(slots.active):
            set_speed(slots.vehicle[i], float(target[i]))
