"""Scenario configuration: the schema (every default in one place) and its loader."""

from cosim.config.loader import ConfigError, dump_config, load_config
from cosim.config.schema import ScenarioConfig

__all__ = ["ConfigError", "ScenarioConfig", "dump_config", "load_config"]
