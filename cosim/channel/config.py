"""The ``channel:`` section of a scenario (pydantic v2).

Example (YAML)::

    channel:
      mode: simulated        # simulated | ideal
      radio:
        model: unit_disk     # a registered name, an entry point, or package.module:Class
        params: {range_m: 400, prr: 0.8}
      payload_bytes: 4480
      max_retries: 7
      max_parallel_links: 4
      medium: independent    # independent | csma (shared 802.11p medium) | sidelink (C-V2X) | a name | package.module:Class
      medium_params: {}      # the medium's own parameters (csma: carrier_sense_dbm, fallback_rx_power_dbm)
      link_state: redrawn    # redrawn | correlated (shadowing/LOS kept per link, evolving with movement)
      timeout_s: null
      cam:                   # background CAMs on a broadcast medium: csma, sidelink (off by default)
        enabled: false
        rate_hz: 10          # ETSI EN 302 637-2: at most 10 Hz (T_GenCamMin = 100 ms)
        bytes: 300
        penetration: 0.0     # share of human-driven vehicles that also send CAMs

``radio`` also accepts a bare model name (``radio: free_space``). ``carrier_sense_dbm`` and
``fallback_rx_power_dbm`` given directly under ``channel:`` (their place before media were
plug-ins) are read as ``medium_params`` of a medium that takes them, and ignored by one that
does not (as the independent medium always ignored them).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

import radio_models
from cosim.plugins import loading, medium_registry

__all__ = ["ChannelConfig", "CamConfig", "RadioConfig", "ChannelMode", "LinkStateKind", "AccessCategory"]

ChannelMode = Literal["simulated", "ideal"]
LEGACY_MEDIUM_KEYS = ("carrier_sense_dbm", "fallback_rx_power_dbm")
"""Medium parameters that were keys of ``channel:`` before media were plug-ins."""
LinkStateKind = Literal["redrawn", "correlated"]
AccessCategory = Literal["AC_BK", "AC_BE", "AC_VI", "AC_VO"]


class RadioConfig(BaseModel):
    """Which radio model computes link existence, per-packet success and data rate."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="unit_disk",
        min_length=1,
        description=(
            "Radio model: a built-in name (unit_disk, free_space, log_distance, nakagami, "
            "tr37885_highway, tr37885_urban), the name of a model registered by an installed "
            "package under the entry-point group 'cosim.radio_models', or 'package.module:Class'."
        ),
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Keyword parameters of the model (see its docstring); omitted ones take the model's "
            "defaults (unit_disk: range_m 90, prr 1.0, data_rate_mbps 6)."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"model": data}
        return data

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: str) -> str:
        try:
            radio_models.resolve(value)
        except radio_models.RadioModelError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("params")
    @classmethod
    def _model_can_be_created(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Creating the model validates every parameter; the message names the parameter and
        # what is allowed. Skipped when `model` itself failed (its own error says why).
        model = info.data.get("model")
        if model is None:
            return value
        try:
            radio_models.create(model, value)
        except radio_models.RadioModelError as exc:
            raise ValueError(str(exc)) from None
        return value

    def create_model(self) -> radio_models.RadioModel:
        """A fresh instance of the configured radio model."""
        model = radio_models.create(self.model, self.params)
        if not type(model).__module__.startswith("radio_models."):
            # a plug-in that raises later in the run (in max_range_m, a helper it calls) is
            # named, as a failing mixing rule or medium is: exit status 2, not an internal error
            loading.remember(type(model), f"radio model {self.model!r}")
        return model


class CamConfig(BaseModel):
    """Background CAMs (ETSI EN 302 637-2 Cooperative Awareness Messages) on a medium that carries
    broadcasts (csma, sidelink)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description=(
            "Every CAV, and the equipped human-driven vehicles (penetration), broadcasts a CAM "
            "every 1 / rate_hz seconds on the shared medium (needs a medium that carries "
            "broadcasts, channel.medium: csma or sidelink, and channel.mode: simulated; on sidelink they go by "
            "semi-persistent scheduling). CAMs occupy the medium and are received by SINR like "
            "any frame; they take no part in policy exchange. Off by default."
        ),
    )
    rate_hz: float = Field(
        default=10.0,
        gt=0.0,
        le=100.0,
        description=(
            "CAMs per second per equipped vehicle, strictly periodic with a random phase per "
            "vehicle. Default 10 Hz: the upper CAM generation rate of ETSI EN 302 637-2 "
            "(T_GenCamMin = 100 ms); its lower one is 1 Hz (T_GenCamMax = 1000 ms). The "
            "standard's speed/heading/position triggers are not modelled."
        ),
    )
    bytes: int = Field(
        default=300,
        ge=1,
        le=2304,
        description=(
            "Size of one CAM in bytes above the LLC (CAM + BTP + GeoNetworking headers, and the "
            "signature unless channel.security_bytes counts it): one frame, never fragmented, "
            "plus the per-frame MAC header, FCS, LLC and security_bytes. Default 300 (ETSI CAMs "
            "are typically 200-300 bytes with security, up to ~800 with a certificate). Must fit "
            "in one MSDU: bytes + llc_bytes + security_bytes <= msdu_max_bytes."
        ),
    )
    penetration: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Share of human-driven vehicles (every vehicle not bound to an agent slot) that are "
            "equipped: each one is equipped independently with this probability when it first "
            "appears (a seeded draw, so the count is binomial; a vehicle equipped at p stays "
            "equipped at any higher p with the same seed). Equipped ones send CAMs, sense the "
            "medium and receive CAMs; they never exchange policies. Default 0: only CAVs."
        ),
    )
    access_category: AccessCategory = Field(
        default="AC_VO",
        description="EDCA access category of CAMs (AC_VO, as ETSI for CAMs; broadcast: no ACK, no retry).",
    )
    pdr_range_m: float | None = Field(
        default=None,
        gt=0.0,
        description=(
            "CAM packet delivery ratio is measured over every equipped receiver within this "
            "horizontal distance of the sender when the CAM goes out (null: the radio model's "
            "max_range_m, e.g. unit_disk's range_m)."
        ),
    )


class ChannelConfig(BaseModel):
    """V2V channel: radio model, message sizes, link slots, retransmissions, timing mode."""

    model_config = ConfigDict(extra="forbid")

    mode: ChannelMode = Field(
        default="simulated",
        description=(
            "simulated: transfers take airtime, can be lost and compete for link slots "
            "(default). ideal: transfers take zero time and are never lost; range still applies "
            "at request time (the paper's premise). Whether agents wait for a communication "
            "round is not a property of the channel: see comm.mode."
        ),
    )
    radio: RadioConfig = Field(
        default_factory=RadioConfig,
        description="Radio model and its parameters (default: unit disk, 90 m, PRR 1).",
    )
    payload_bytes: int = Field(
        default=4480,
        gt=0,
        description=(
            "Payload bytes per packet: a response is cut into packets of this size. 4480 bytes, "
            "one CPM (paper Section V-B, ETSI TR 103 562). A packet above the MSDU limit goes "
            "out as several MAC frames (msdu_max_bytes), each with its own airtime, loss and "
            "retries."
        ),
    )
    request_bytes: int = Field(
        default=64,
        gt=0,
        description="Size in bytes of the request packet (a small control message; an assumption).",
    )
    per_packet_overhead_s: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "Extra time in seconds added to every frame's airtime, on top of its 802.11p PPDU "
            "time (which already includes the 40 us preamble + SIGNAL). Default 0."
        ),
    )
    msdu_max_bytes: int = Field(
        default=2304,
        ge=64,
        le=2304,
        description=(
            "Largest MSDU (IEEE 802.11: 2304 bytes). A packet whose payload plus LLC and "
            "security overhead exceeds it is fragmented into several MAC frames."
        ),
    )
    mac_header_bytes: int = Field(
        default=26, ge=0, le=64,
        description="MAC header per frame in bytes (26: QoS data header, as 802.11p/WAVE data frames).",
    )
    fcs_bytes: int = Field(default=4, ge=0, le=8, description="Frame check sequence per frame in bytes (4).")
    llc_bytes: int = Field(
        default=8, ge=0, le=64, description="LLC/SNAP header per frame in bytes (8), counted in the MSDU."
    )
    security_bytes: int = Field(
        default=0, ge=0, le=1024,
        description=(
            "Security overhead per frame in bytes, counted in the MSDU. Default 0 (unsigned, as "
            "Veins); an ETSI TS 103 097 signature with a certificate digest adds about 100-150."
        ),
    )
    medium: str = Field(
        default="independent",
        min_length=1,
        description=(
            "How frames share the air. independent: every link is its own pipe (frames take "
            "airtime and are lost with the radio model's probability; no contention). csma: one "
            "shared medium per channel: 802.11p EDCA with carrier sense, backoff, half-duplex, "
            "ACKs and retries, and reception by SINR with the interference of every concurrent "
            "frame. sidelink: C-V2X sidelink, LTE-V2X mode 4 or NR-V2X mode 2 (sub-channels, "
            "sensing-based semi-persistent scheduling of CAMs, dynamic selection of segments, "
            "reception per transport block by SINR, half-duplex; docs/medium.md). Or a medium of "
            "your own: a name registered with "
            "cosim.plugins.medium_registry.register_medium or by an installed package under the "
            "entry-point group 'cosim.radio_media', or 'package.module:Class' (a "
            "cosim.channel.medium.Medium; docs/extending.md)."
        ),
    )
    medium_params: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,
        description=(
            "The medium's own parameters; omitted ones take the medium's defaults (filled in). "
            "csma: carrier_sense_dbm (-85: a node senses the medium busy when the received power "
            "of ongoing frames reaches it, in [-120, 0]) and fallback_rx_power_dbm (-65: with a "
            "radio model that only gives a PRR, such as unit_disk, the received power of every "
            "in-range link, in [-120, 30]; such a frame arrives with the model's PRR if no other "
            "frame overlaps it at the receiver). independent: none. sidelink: technology "
            "(lte_mode4 | nr_mode2), bandwidth_mhz, mcs, tx_power_dbm and the others of "
            "docs/medium.md (the sidelink section), each checked naming its key."
        ),
    )
    link_state: LinkStateKind = Field(
        default="redrawn",
        description=(
            "redrawn: the radio model draws every link's shadowing, LOS state and blockage afresh "
            "at every traffic step (uncorrelated). correlated: each link keeps them and they evolve "
            "with the distance moved, with exponential autocorrelation exp(-D / d) (Gudmundson), d "
            "the radio model's decorrelation_distance_m (25 m; tr37885_urban 10 m), so PRR changes "
            "smoothly; the csma medium then sees the same path losses as the graph. No effect on "
            "models without random terms (unit_disk, no shadowing)."
        ),
    )
    access_category: AccessCategory = Field(
        default="AC_BK",
        description="csma: EDCA access category of requests and policy segments (AC_BK, AC_BE, AC_VI, AC_VO).",
    )
    max_retries: int = Field(
        default=7,
        ge=0,
        description=(
            "Retransmissions of a lost frame before the transfer fails (0 = none). Default 7, "
            "the IEEE 802.11 short retry limit for unicast frames (csma: the MAC retry limit)."
        ),
    )
    max_parallel_links: int = Field(
        default=4,
        ge=1,
        description=(
            "Link slots per vehicle: a response holds one slot at each end for its duration; "
            "more concurrent responses queue. Default 4 = P (paper Table IV), so the segment "
            "requests of one round proceed in parallel."
        ),
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0.0,
        description=(
            "Default time limit of a transfer in seconds, from the request to the last packet "
            "(queueing included); null = none. A pull() call may override it."
        ),
    )
    cam: CamConfig = Field(
        default_factory=CamConfig,
        description=(
            "Background CAMs (off by default): periodic broadcasts of every CAV and of a share of "
            "the human-driven vehicles on a broadcast medium (csma, sidelink), so that policy exchange competes with "
            "safety traffic. Metrics: channel_busy_ratio_*, mac_cam_frames_sent, cam_* (see "
            "docs/metrics.md)."
        ),
    )
    antenna_height_m: float = Field(
        default=1.5,
        gt=0.0,
        le=10.0,
        description="Antenna height above ground in metres, the same on every vehicle (docs/reference.md §5).",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_medium_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(key in data for key in LEGACY_MEDIUM_KEYS):
            return data
        data = dict(data)
        legacy = {key: data.pop(key) for key in LEGACY_MEDIUM_KEYS if key in data}
        try:
            accepted = medium_registry.parameters(medium_registry.resolve(data.get("medium", cls.model_fields["medium"].default)))
        except (medium_registry.MediumError, TypeError):
            return data  # the medium's own error says why
        params = data.get("medium_params")
        params = dict(params) if isinstance(params, dict) else {}
        for key, value in legacy.items():
            if key in accepted.defaults or key in accepted.required or accepted.open_ended:
                params.setdefault(key, value)
        if params or "medium_params" in data:
            data["medium_params"] = params
        return data

    @field_validator("medium")
    @classmethod
    def _medium_exists(cls, name: str) -> str:
        try:
            medium_registry.resolve(name)
        except medium_registry.MediumError as exc:
            raise ValueError(str(exc)) from None
        return name

    @field_validator("medium_params")
    @classmethod
    def _medium_params_fit(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # every bad parameter at once, each under channel.medium_params.<name>; skipped when
        # `medium` itself failed (its own error says why)
        name = info.data.get("medium")
        if name is None:
            return params
        return medium_registry.resolve_params(name, params)

    @field_validator("mode", mode="before")
    @classmethod
    def _lower_mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.lower()
            if value in ("async", "sync"):
                raise ValueError(f"'{value}' is no longer a channel mode: round timing moved to "
                                 f"comm.mode ({value}); channel.mode is 'simulated' or 'ideal'")
        return value

    def framing(self):
        """The :class:`cosim.channel.framing.Framing` of these settings."""
        from .framing import Framing

        return Framing(self.msdu_max_bytes, self.mac_header_bytes, self.fcs_bytes, self.llc_bytes,
                       self.security_bytes)

    @model_validator(mode="after")
    def _framing_fits(self) -> "ChannelConfig":
        if self.msdu_max_bytes <= self.llc_bytes + self.security_bytes:
            raise ValueError("msdu_max_bytes must exceed llc_bytes + security_bytes")
        cam = self.cam
        if cam.enabled:
            if not medium_registry.carries_broadcast(self.medium):
                raise ValueError(f"channel.cam.enabled: true needs channel.medium: "
                                 f"{' | '.join(medium_registry.broadcast_media())} or another medium that carries "
                                 f"broadcasts (CAMs are background load on a shared medium; channel.medium is "
                                 f"{self.medium!r}, which carries none)")
            if self.mode != "simulated":
                raise ValueError("channel.cam.enabled: true needs channel.mode: simulated "
                                 f"(channel.mode is {self.mode!r}: no medium)")
        room = self.msdu_max_bytes - self.llc_bytes - self.security_bytes
        if cam.bytes > room:
            raise ValueError(f"channel.cam.bytes = {cam.bytes} does not fit in one MSDU: at most "
                             f"msdu_max_bytes - llc_bytes - security_bytes = {room}")
        return self
