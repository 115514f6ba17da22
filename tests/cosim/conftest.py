"""Shared fixtures of the co-simulation tests (real SUMO, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosim.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Built networks go to one cache per test session, not the user's home."""
    monkeypatch.setenv("COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def figure8():
    return load_config(SCENARIOS / "figure8.yaml")


@pytest.fixture
def merge():
    return load_config(SCENARIOS / "merge.yaml")
