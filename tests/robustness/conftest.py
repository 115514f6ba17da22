"""Fixtures of the robustness suite (the helpers live in robust_kit.py)."""

from robust_kit import _isolated_cache, cli, scenario_copy  # noqa: F401
