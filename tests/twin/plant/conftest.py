"""Shared fixtures for the plant simulator tests: the reference network and small scenarios."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from twin.io import load_network
from twin.network import Network
from twin.plant.scenario import OperationsSpec, Scenario
from twin.plant.sensors import SensorConfig

START = pd.Timestamp("2024-01-01T00:00:00Z")


@pytest.fixture(scope="session")
def network() -> Network:
    """The packaged reference pipeline (2 stations x 3 pumps)."""
    return load_network()


@pytest.fixture
def make_scenario() -> Callable[..., Scenario]:
    """Factory of small scenarios: one line, 3 h at 60 s, steady speed, ideal sensors unless overridden."""

    def make(**changes: Any) -> Scenario:
        base = Scenario(
            name="test",
            start=START,
            duration_s=3 * 3600.0,
            step_s=60.0,
            seed=3,
            operations=OperationsSpec(speed=0.95, daily_swing=0.0, nomination_s=0.0, nomination_jitter=0.0),
            sensors=SensorConfig.ideal(),
            truth_period_s=60.0,
        )
        return replace(base, **changes)

    return make
