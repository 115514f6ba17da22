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
      timeout_s: null

``radio`` also accepts a bare model name (``radio: free_space``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

import radio_models

__all__ = ["ChannelConfig", "RadioConfig", "ChannelMode"]

ChannelMode = Literal["simulated", "ideal"]


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
        return radio_models.create(self.model, self.params)


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
            "one CPM (paper Section V-B, ETSI TR 103 562). To make one segment one packet "
            "(per-message PRR), set it above the segment size."
        ),
    )
    request_bytes: int = Field(
        default=64,
        gt=0,
        description="Size in bytes of the request packet (a small control message; an assumption).",
    )
    per_packet_overhead_s: float = Field(
        default=40e-6,
        ge=0.0,
        description=(
            "Time added to each packet's airtime bits/rate, in seconds. Default 40 us: the "
            "802.11p preamble + SIGNAL field at 10 MHz (channel access time not included)."
        ),
    )
    max_retries: int = Field(
        default=7,
        ge=0,
        description=(
            "Retransmissions of a lost packet before the transfer fails (0 = none). Default 7, "
            "the IEEE 802.11 short retry limit for unicast frames."
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
    antenna_height_m: float = Field(
        default=1.5,
        gt=0.0,
        le=10.0,
        description="Antenna height above ground in metres, the same on every vehicle (REFERENCE.md §5).",
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _lower_mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.lower()
            if value in ("async", "sync"):
                raise ValueError(f"'{value}' is no longer a channel mode: round timing moved to "
                                 f"comm.mode ({value}); channel.mode is 'simulated' or 'ideal'")
        return value
