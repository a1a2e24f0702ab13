"""Scenario files: durations, shipped scenarios, round trip, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pumptwin.plant.health import MODE_INFO, Mode
from pumptwin.plant.scenario import (
    ScenarioError,
    parse_duration,
    read_scenario,
    shipped_scenario,
    shipped_scenarios,
    write_scenario,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("15m", 900.0), ("6h", 21600.0), ("2d", 172800.0), ("1w", 604800.0), ("1d12h", 129600.0),
     (45, 45.0), ("2.5h", 9000.0), ("120", 120.0)],
)  # fmt: skip
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@given(st.integers(0, 10**6))
def test_duration_of_parts(n: int) -> None:
    d, rest = divmod(n, 86400)
    h, rest = divmod(rest, 3600)
    assert parse_duration(f"{d}d{h}h{rest}s") == n


@pytest.mark.parametrize("bad", ["soon", "3x", "-1", True, None, "1d-2h"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ScenarioError):
        parse_duration(bad)


def test_shipped_scenarios_read_and_round_trip(tmp_path: Path) -> None:
    names = set(shipped_scenarios())
    assert {"healthy_month", "bearing_failure", "impeller_wear", "cavitation_event", "pipeline_leak"} <= names
    for name in names:
        scenario = shipped_scenario(name)
        back = read_scenario(write_scenario(scenario, tmp_path / f"{name}.yaml"))
        assert back == scenario
    bearing = shipped_scenario("bearing_failure")
    fault = bearing.faults[0]
    assert fault.mode is Mode.BEARING_WEAR and fault.trip
    assert (fault.onset_s, fault.failure_s) == (4 * 86400.0, 18 * 86400.0)
    assert shipped_scenario("healthy_month").duration_s == 30 * 86400.0


def test_defaults_and_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "start": "2024-05-01T00:00:00Z",
                "duration": "2d",
                "faults": [{"mode": "seal_failure", "target": "PS01.P1", "onset": "2024-05-01T06:00:00Z",
                            "failure": "1d"}],
            }
        )
    )  # fmt: skip
    s = read_scenario(path)
    f = s.faults[0]
    assert f.onset_s == 6 * 3600.0
    assert f.magnitude == MODE_INFO[Mode.SEAL_FAILURE].magnitude
    assert f.magnitude_si == pytest.approx(60e-3 / 3600)
    assert f.law == "exponential" and f.trip
    assert s.step_s == 60.0 and s.lines == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown fields"),
        ({"faults": [{"mode": "gremlins", "target": "PS01.P1"}]}, "unknown mode"),
        ({"faults": [{"mode": "bearing_wear", "target": "PS01.P1", "onset": "3d", "failure": "1d"}]}, "onset"),
        ({"operations": {"events": [{"at": "1h", "target": "PS01", "action": "dance"}]}}, "unknown action"),
        ({"sensors": {"dropout_rate": 3}}, "fraction"),
        ({"duration": "later"}, "duration"),
        ({"version": 7}, "version"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, change: dict[str, object], message: str) -> None:
    data: dict[str, object] = {"name": "x", "start": "2024-05-01T00:00:00Z", "duration": "1d", **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match=message) as info:
        read_scenario(path)
    assert "bad.yaml" in str(info.value)
