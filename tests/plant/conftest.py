"""Shared fixtures for the plant simulator tests: the reference network and small scenarios."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from pumptwin.plant.scenario import OperationsSpec, Scenario
from pumptwin.plant.sensors import SensorConfig
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Network

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
