"""The scenario schema: every key a scenario YAML may hold, with its default, range and meaning.

This file is the one place where defaults live. The built-in scenarios (``scenarios/*.yaml``)
only set what differs per scenario (paper Table III); everything else falls back to the values
here (paper Table IV, Flow's defaults).

Relative file paths are resolved against the directory of the YAML file that names them (passed
as validation context ``base_dir``), so a scenario can be run from anywhere.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated, Literal

from cosim.channel.config import ChannelConfig
from cosim.config.comm import CommConfig
from cosim.config.names import check_name
from learners import SACConfig
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are validated on assignment too, and
    numbers must be finite (no key gives infinity or NaN a meaning)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    base = Path((info.context or {}).get("base_dir", Path.cwd()))
    path = value if value.is_absolute() else (base / value)
    path = path.resolve()
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


ExistingFile = Annotated[Path, AfterValidator(_existing_file)]


def _xml_root(path: Path) -> ET.Element:
    """The root element of an XML file, reading (streaming) the whole file to check it is XML."""
    try:
        root = None
        for event, element in ET.iterparse(path, events=("start", "end")):
            if root is None:
                root = element
            elif event == "end" and element is not root:
                element.clear()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not an XML file ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror})") from None
    if root is None:
        raise ValueError(f"{path}: empty XML file")
    return root


def _sumo_xml(*roots: str):
    def check(value: Path) -> Path:
        tag = _xml_root(value).tag
        if tag not in roots:
            raise ValueError(f"{value}: a SUMO <{'> or <'.join(roots)}> file was expected, this one is <{tag}>")
        return value

    return AfterValidator(check)


NetFile = Annotated[ExistingFile, _sumo_xml("net")]
RouteFile = Annotated[ExistingFile, _sumo_xml("routes", "additional")]


def route_vehicle_types(route_files: list[Path]) -> tuple[set[str], set[str]]:
    """(vTypes defined, vTypes that vehicles, flows or trips use) in the route files; a
    vTypeDistribution used counts as using each of its members."""
    defined: set[str] = set()
    used: set[str] = set()
    members: dict[str, set[str]] = {}
    for path in route_files:
        for element in ET.parse(path).getroot().iter():
            if element.tag == "vType" and element.get("id"):
                defined.add(element.get("id"))
            elif element.tag == "vTypeDistribution" and element.get("id"):
                names = set((element.get("vTypes") or "").split())
                names |= {child.get("id") for child in element.iter("vType") if child.get("id")}
                members[element.get("id")] = names
            elif element.tag in ("vehicle", "flow", "trip"):
                used.add(element.get("type") or "DEFAULT_VEHTYPE")
    for dist, names in members.items():
        if dist in used:
            used |= names
    return defined, used


class SumoConfig(StrictModel):
    """How SUMO is started and stepped."""

    backend: Literal["libsumo", "traci"] = Field(
        "libsumo", description="libsumo runs SUMO in-process (fast); traci talks to a sumo "
        "process over a socket.")
    step_length: float = Field(0.1, gt=0, le=10, description="Seconds per SUMO step (Table III).")
    time_to_teleport: float = Field(
        -1, description="SUMO --time-to-teleport; -1 disables teleporting of jammed vehicles "
        "(Flow counts any teleport as a crash).")
    collision_check_junctions: bool = Field(True, description="Detect collisions inside junctions.")
    collision_action: Literal["warn", "teleport", "remove", "none"] = Field(
        "warn", description="SUMO --collision.action; 'warn' keeps vehicles in place so the epoch "
        "can end on the collision step.")
    extra_args: list[str] = Field(default_factory=list, description="Extra sumo command-line options.")


class NetworkConfig(StrictModel):
    """The road network and its traffic demand.

    Either ``net_file`` (a ready ``.net.xml``) or plain ``nodes`` + ``edges`` (+ optional
    ``connections``) sources that are built with netconvert into a cache at run time.
    """

    net_file: NetFile | None = None
    nodes: Annotated[ExistingFile, _sumo_xml("nodes")] | None = None
    edges: Annotated[ExistingFile, _sumo_xml("edges")] | None = None
    connections: Annotated[ExistingFile, _sumo_xml("connections")] | None = None
    netconvert_args: list[str] = Field(
        default_factory=lambda: ["--no-turnarounds", "true"],
        description="Extra netconvert options when building from plain sources.")
    routes: list[RouteFile] = Field(
        min_length=1, description="SUMO route files (vehicle types, vehicles, flows).")
    edge_order: list[str] | None = Field(
        None, description="Edges in the order that defines the 1-D position a CAV observes; "
        "default: edges in order of first appearance in the route files.")

    @model_validator(mode="after")
    def _one_network_source(self) -> NetworkConfig:
        plain = self.nodes is not None or self.edges is not None
        if self.net_file is None and not plain:
            raise ValueError("give either 'net_file' or 'nodes' and 'edges'")
        if self.net_file is not None and plain:
            raise ValueError("give either 'net_file' or 'nodes'/'edges', not both")
        if plain and (self.nodes is None or self.edges is None):
            raise ValueError("building from plain sources needs both 'nodes' and 'edges'")
        return self


class VehiclesConfig(StrictModel):
    """Which vehicles are CAVs and how SUMO lets controllers drive them."""

    cav_type: str = Field("cav", min_length=1, description="vType id of CAVs (agents bind to them).")
    cav_speed_mode: int = Field(
        1, ge=0, le=63, description="SUMO speed mode of bound CAVs; 1 = Flow's 'obey_safe_speed' "
        "(the chosen acceleration is applied unless it would cause a rear-end collision; right of "
        "way, acceleration and deceleration limits are not enforced); 0 = no checks at all.")
    human_speed_mode: int | None = Field(
        None, ge=0, le=63, description="Speed mode of human-driven vehicles; null keeps SUMO's "
        "default (31: all checks, including right of way).")


class EnvConfig(StrictModel):
    """The Markov game each CAV plays (docs/reference.md §1, RSM-MASAC Table III)."""

    n_agents: int = Field(9, ge=1, le=100_000, description="Agent slots N.")
    horizon: int = Field(1500, ge=1, description="Steps per epoch T.")
    warmup_steps: int = Field(
        0, ge=0, description="SUMO steps run before an epoch starts (CAVs driven by SUMO).")
    accel_range: tuple[float, float] = Field((-3.0, 3.0), description="Action bounds [m/s^2].")
    desired_speed: float = Field(20.0, gt=0, description="v_d of the reward [m/s].")
    max_speed: float = Field(30.0, gt=0, description="Speed limit; normalises observed speeds.")
    reward: Literal["desired_velocity", "mean_speed"] = Field(
        "desired_velocity", description="'desired_velocity': Flow's max(||v_d|| - ||v - v_d||, 0) "
        "/ ||v_d|| over all vehicles; 'mean_speed': mean speed / v_d. Both are 0 on a crash step.")
    end_on_collision: bool = Field(True, description="End the epoch at the first collision.")
    observe_distance: float | None = Field(
        None, gt=0, description="Leader/follower search distance [m]; default: network length.")

    @field_validator("accel_range")
    @classmethod
    def _ordered_bounds(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"must be [low, high] with low < high (got {list(value)})")
        return value


class IDMConfig(StrictModel):
    """Parameters of the built-in IDM controller for CAVs (Flow's IDMController defaults)."""

    v0: float = Field(30.0, gt=0, description="Desired speed [m/s].")
    T: float = Field(1.0, gt=0, description="Safe time headway [s].")
    a: float = Field(1.0, gt=0, description="Maximum acceleration [m/s^2].")
    b: float = Field(1.5, gt=0, description="Comfortable deceleration [m/s^2].")
    delta: float = Field(4.0, gt=0, description="Acceleration exponent.")
    s0: float = Field(2.0, ge=0, description="Minimum gap [m].")
    noise: float = Field(
        0.0, ge=0, description="Std of Gaussian acceleration noise, scaled by sqrt(step_length) "
        "as in Flow.")


class TrainConfig(StrictModel):
    """The run: how many epochs, the learning schedule, how often to checkpoint."""

    epochs: int = Field(300, ge=1, description="Training epochs (Table III).")
    update_every: int = Field(
        1, ge=1, description="Environment steps between learning phases (Algorithm 1: every "
        "step; the authors' code: 10).")
    updates_per_step: int = Field(
        1, ge=1, description="Batched critic updates per learning phase (policy, alpha and "
        "targets every sac.policy_delay critic updates).")
    warmup_steps: int = Field(
        1000, ge=0, description="Environment steps of the run before the first update (agents "
        "act with their initial policies and fill their buffers; an agent also waits until its "
        "buffer holds a batch).")
    eval_every: int = Field(
        10, ge=0, description="Training epochs between evaluations (Algorithm 1: every 10); 0 = never. "
        "An evaluation runs eval_epochs epochs with deterministic policies (tanh of the mean), no "
        "learning, no buffer writes and no communication, on random streams of its own; its rows "
        "have phase 'eval' and the number of the training epoch it followed.")
    eval_epochs: int = Field(1, ge=1, description="Epochs per evaluation.")
    checkpoint_every: int = Field(
        1, ge=1, description="Epochs between checkpoints; a killed run resumes from the last one.")


class ScenarioConfig(StrictModel):
    """A complete scenario: network, traffic, agents, learner and run settings."""

    # the default run directory is runs/<name>: a plain directory name only (cosim/config/names.py)
    name: Annotated[str, AfterValidator(check_name)] = Field("scenario", min_length=1)
    seed: int = Field(0, ge=0, description="Run seed; every random stream derives from it.")
    learner: str = Field(
        "sac", description="What drives the CAVs: 'sac' (multi-agent SAC, one learner per agent "
        "slot), 'idm' (built-in car following), 'random' (uniform accelerations), another name "
        "registered with cosim.plugins.controller_registry.register_controller, or a factory "
        "'package.module:function' taking the resolved config.")
    sumo: SumoConfig = Field(default_factory=SumoConfig)
    network: NetworkConfig
    vehicles: VehiclesConfig = Field(default_factory=VehiclesConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    idm: IDMConfig = Field(default_factory=IDMConfig)
    sac: SACConfig = Field(default_factory=SACConfig, description="SAC hyper-parameters "
                           "(learners/config.py; defaults: paper Table IV).")
    channel: ChannelConfig = Field(default_factory=ChannelConfig, description="The V2V channel "
                                   "(cosim/channel/config.py): radio model, packets, link slots, mode.")
    comm: CommConfig = Field(default_factory=CommConfig, description="CommMix rounds "
                             "(cosim/config/comm.py): method, exchange, rule, timing; used by "
                             "learner 'sac' (other learners do not communicate).")
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("learner")
    @classmethod
    def _known_learner(cls, name: str) -> str:
        from cosim.plugins import controller_registry

        if not controller_registry.is_known(name):
            raise ValueError(f"unknown learner {name!r}; allowed: {', '.join(controller_registry.available())} "
                             "or a factory named as 'package.module:function'")
        return name

    @field_validator("vehicles")
    @classmethod
    def _cavs_exist(cls, vehicles: VehiclesConfig, info: ValidationInfo) -> VehiclesConfig:
        network = info.data.get("network")
        if network is None:
            return vehicles
        defined, used = route_vehicle_types(list(network.routes))
        if vehicles.cav_type not in used:
            where = "is not defined there" if vehicles.cav_type not in defined else "is defined, but no vehicle uses it"
            raise ValueError(
                f"cav_type: no vehicle, flow or trip of the route files has vType {vehicles.cav_type!r} "
                f"(it {where}; vehicles use: {', '.join(sorted(used)) or 'none'}), so the run would have "
                "no agents; set vehicles.cav_type to one of those")
        return vehicles

    @field_validator("comm")
    @classmethod
    def _shared_layers_exist(cls, comm: CommConfig, info: ValidationInfo) -> CommConfig:
        sac = info.data.get("sac")
        if sac is None or isinstance(comm.shared_layers, str):
            return comm
        layers = [f"fc{k}" for k in range(len(sac.hidden))] + ["mean", "log_std"]
        unknown = [name for name in comm.shared_layers if name not in layers]
        if unknown or not comm.shared_layers:
            raise ValueError(f"shared_layers: unknown layer(s) {unknown} (the policy has "
                             f"{', '.join(layers)}; or use all, except_first)")
        return comm
