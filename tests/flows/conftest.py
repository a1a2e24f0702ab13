"""Shared fixtures of the flow tests: a short simulated plant run with a wearing impeller."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from pumptwin.plant.scenario import shipped_scenario
from pumptwin.plant.simulator import Plant

DAY_S = 86_400.0


@pytest.fixture(scope="session")
def worn_impeller_readings() -> pd.DataFrame:
    """Two days at 2-min steps: the impeller of PS02.P2 wears 8 % of its diameter from hour 7 to day 1.5."""
    base = shipped_scenario("impeller_wear")
    fault = replace(base.faults[0], onset_s=0.3 * DAY_S, failure_s=1.5 * DAY_S, magnitude=0.08)
    return Plant(replace(base, duration_s=2 * DAY_S, step_s=120.0, faults=(fault,))).run()
