"""ChannelConfig: defaults, nesting, unknown keys, ranges, radio model errors."""

import pytest
from pydantic import BaseModel, ValidationError

import radio_models as rm
from cosim.channel import ChannelConfig, RadioConfig


class Scenario(BaseModel):
    channel: ChannelConfig = ChannelConfig()


def error_of(data) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        Scenario(channel=data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(x) for x in errors[0]["loc"]), errors[0]["msg"]


def test_defaults_from_paper_and_reference():
    cfg = Scenario().channel
    assert cfg.mode == "simulated"
    assert cfg.payload_bytes == 4480
    assert cfg.request_bytes == 64
    assert cfg.per_packet_overhead_s == 0.0  # the PPDU airtime includes the 40 us preamble + SIGNAL
    assert (cfg.msdu_max_bytes, cfg.mac_header_bytes, cfg.fcs_bytes, cfg.llc_bytes, cfg.security_bytes) == (
        2304, 26, 4, 8, 0)
    assert cfg.medium == "independent" and cfg.medium_params == {} and cfg.access_category == "AC_BK"
    # the csma medium's own parameters (channel keys before issue 17) with their defaults filled in
    assert ChannelConfig(medium="csma").medium_params == {"carrier_sense_dbm": -85.0, "fallback_rx_power_dbm": -65.0}
    assert cfg.max_retries == 7
    assert cfg.max_parallel_links == 4
    assert cfg.timeout_s is None
    assert cfg.antenna_height_m == 1.5
    assert cfg.radio.model == "unit_disk" and cfg.radio.params == {}
    model = cfg.radio.create_model()
    assert isinstance(model, rm.UnitDisk) and model.max_range_m == 90.0


def test_yaml_like_mapping_and_bare_radio_name():
    cfg = Scenario(
        channel={
            "mode": "ideal",
            "radio": {"model": "unit_disk", "params": {"range_m": 400, "prr": 0.6}},
            "payload_bytes": 1000,
            "max_retries": 0,
            "timeout_s": 2.5,
        }
    ).channel
    assert cfg.mode == "ideal" and cfg.radio.params == {"range_m": 400, "prr": 0.6}
    assert cfg.radio.create_model().prr == 0.6
    assert Scenario(channel={"radio": "tr37885_highway"}).channel.radio == RadioConfig(model="tr37885_highway")
    assert Scenario(channel={"mode": "IDEAL"}).channel.mode == "ideal"


def test_every_field_has_a_description():
    for model in (ChannelConfig, RadioConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


@pytest.mark.parametrize(
    "data, loc",
    [
        ({"payload_byte": 100}, "channel.payload_byte"),
        ({"radio": {"model": "unit_disk", "parms": {}}}, "channel.radio.parms"),
    ],
)
def test_unknown_keys_rejected(data, loc):
    where, msg = error_of(data)
    assert where == loc and "Extra inputs" in msg


@pytest.mark.parametrize(
    "field, value",
    [
        ("payload_bytes", 0),
        ("request_bytes", -1),
        ("per_packet_overhead_s", -1e-6),
        ("max_retries", -1),
        ("max_parallel_links", 0),
        ("timeout_s", 0),
        ("antenna_height_m", 0),
        ("antenna_height_m", 20),
        ("mode", "lossy"),
        ("mode", "sync"),
        ("mode", "async"),
        ("max_retries", 1.5),
    ],
)
def test_out_of_range_values_rejected(field, value):
    where, _ = error_of({field: value})
    assert where == f"channel.{field}"


def test_unknown_radio_model_lists_available():
    where, msg = error_of({"radio": {"model": "two_ray"}})
    assert where == "channel.radio.model"
    assert "two_ray" in msg
    for name in ("unit_disk", "free_space", "log_distance", "nakagami", "tr37885_highway", "tr37885_urban"):
        assert name in msg


def test_bad_radio_parameter_is_named():
    where, msg = error_of({"radio": {"model": "unit_disk", "params": {"prr": 1.4}}})
    assert where == "channel.radio.params"
    assert "'prr'" in msg and "[0, 1]" in msg and "1.4" in msg
    where, msg = error_of({"radio": {"model": "nakagami", "params": {"mm": 3}}})
    assert where == "channel.radio.params" and "'mm'" in msg and "distance_dependent_m" in msg
